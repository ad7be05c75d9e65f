"""The stack's checklist (module_utils/day2/stack.py) over the in-memory API server: a healthy stack passes, a
LeaderWorkerSet gone or recreated since the step's baseline ends the wait at once, the pool must select every
role, and a failed gate is noted on the revision record."""
import pytest

from ansible_collections.llmd.wide_ep.plugins.module_utils.day2 import stack
from ansible_collections.llmd.wide_ep.plugins.module_utils.day2.revisions import Record
from ansible_collections.llmd.wide_ep.plugins.module_utils.errors import WideEPError
from ansible_collections.llmd.wide_ep.plugins.module_utils.k8s.client import Client
from ansible_collections.llmd.wide_ep.plugins.module_utils.k8s.lws import LWS_NAME_LABEL, identity
from ansible_collections.llmd.wide_ep.plugins.module_utils.render import plan, topology
from tests.support.fake_api import FakeApi

PLAN = plan.render(dict(topology.DEFAULT_SETTINGS, provider="baremetal", dp_mode="hybrid", gateway="none"))
REFS, NS = PLAN["refs"], PLAN["refs"]["namespace"]


class Helm:
    def release(self, name, namespace):
        return {"chart": "inferencepool", "version": "v1.3.0", "status": "deployed"}


def healthy():
    api = FakeApi()
    for lws in PLAN["objects"]["leaderworkersets"]:
        obj = dict(lws, status={"readyReplicas": 1, "updatedReplicas": 1,
                                "conditions": [{"type": "Available", "status": "True"}]})
        obj["metadata"] = dict(lws["metadata"], uid=lws["metadata"]["name"] + "-uid")
        api.put(obj)
        for i in range(2):
            api.put({"apiVersion": "v1", "kind": "Pod", "metadata": {
                "name": "%s-0%s" % (lws["metadata"]["name"], "-1" if i else ""), "namespace": NS,
                "labels": dict(lws["metadata"]["labels"], **{LWS_NAME_LABEL: lws["metadata"]["name"]})},
                "status": {"containerStatuses": [{"ready": True}], "initContainerStatuses": [
                    {"name": "routing-proxy", "ready": True}]}})
    api.put({"apiVersion": "inference.networking.k8s.io/v1", "kind": "InferencePool",
             "metadata": {"name": REFS["release"], "namespace": NS},
             "spec": {"targetPorts": [{"number": 8000}], "selector": {"matchLabels": PLAN["router"]["selector"]}}})
    api.put({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": REFS["release"] + "-epp",
                                                                         "namespace": NS, "generation": 1},
             "spec": {"replicas": 1}, "status": {"observedGeneration": 1, "availableReplicas": 1,
                                                 "updatedReplicas": 1}})
    return api


def params(**over):
    return dict({"refs": REFS, "expected": PLAN["summary"], "require_programmed": True, "split_window": 60,
                 "repair_split_groups": False, "repair_timeout": 10, "wait_timeout": 0, "step": None,
                 "baseline": []}, **over)


def test_a_healthy_stack_passes_and_says_which_objects_it_saw():
    api = healthy()
    out = stack.status(Client(transport=api), Helm(), params())
    assert out["problems"] == [] and out["changed"] is False
    assert {w["name"] for w in out["workloads"]} == {"wide-ep-llm-d-prefill", "wide-ep-llm-d-decode"}
    assert "OK    InferencePool llm-d-infpool selects 2 prefill pod(s), 2 decode pod(s)" in out["report"]


def test_a_recreated_leaderworkerset_ends_the_wait_at_once_and_is_noted(monkeypatch):
    api = healthy()
    client = Client(transport=api)
    baseline = [identity(client.get(r)) for r in REFS["leaderworkersets"].values()]
    Record(client, NS).add("deployed", PLAN["objects"]["leaderworkersets"], "site.yml")
    decode = client.get(REFS["leaderworkersets"]["decode"])
    decode["metadata"]["uid"] = "new-uid"
    api.put(decode)
    monkeypatch.setattr(stack.time, "sleep", lambda s: pytest.fail("a lost object must end the wait"))
    with pytest.raises(WideEPError) as err:
        stack.status(client, Helm(), params(baseline=baseline, wait_timeout=600, step="lws"))
    assert "LeaderWorkerSet llm-d-wide-ep/wide-ep-llm-d-decode: deleted and recreated (uid new-uid, was " \
           "wide-ep-llm-d-decode-uid)" in err.value.extra["problems"]
    assert str(err.value).startswith("1 check(s) failed after the lws step")
    assert Record(client, NS).revisions[-1]["gates"][0]["step"] == "lws"


def test_a_pool_that_selects_one_role_only_fails():
    api = healthy()
    for path in [p for p in api.objects if "/pods/wide-ep-llm-d-decode" in p]:
        del api.objects[path]
    with pytest.raises(WideEPError) as err:
        stack.status(Client(transport=api), Helm(), params())
    assert "InferencePool llm-d-infpool selects 2 prefill pod(s), 0 decode pod(s)" in err.value.extra["problems"]
