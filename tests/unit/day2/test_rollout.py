"""Day-2 logic (module_utils/day2/rollout.py) over the in-memory API server with a stand-in LeaderWorkerSet
controller: the read-only plan, a rollout that passes its gates and records the revision, one that fails and
rolls back, and a rollback from the record."""
import copy
import time

import pytest

from ansible_collections.llmd.wide_ep.plugins.module_utils.day2 import lease, rollout
from ansible_collections.llmd.wide_ep.plugins.module_utils.day2.revisions import Record
from ansible_collections.llmd.wide_ep.plugins.module_utils.errors import InvalidInput
from ansible_collections.llmd.wide_ep.plugins.module_utils.k8s.client import Client
from ansible_collections.llmd.wide_ep.plugins.module_utils.k8s.lws import LWS_NAME_LABEL
from ansible_collections.llmd.wide_ep.plugins.module_utils.progress import Progress
from ansible_collections.llmd.wide_ep.plugins.module_utils.render import plan
from tests.support.fake_api import FakeApi, stamp

SETTINGS = {"provider": "local", "dp_mode": "dp-aware", "gateway": "istio", "namespace": "ns",
            "model": "m/model", "model_label": "model", "epp_prometheus": False}
NEVER_READY = "example.com/never-ready:1.0.0"


def image(lws):
    return lws["spec"]["leaderWorkerTemplate"]["workerTemplate"]["spec"]["containers"][0]["image"]


def lws_controller(api):
    """On every real apply of a LeaderWorkerSet: its pods replaced by new ones, Ready unless the image is the
    never-ready one; the status follows."""
    def react(obj):
        if obj["kind"] != "LeaderWorkerSet":
            return
        meta, spec = obj["metadata"], obj["spec"]
        for path in [p for p, o in api.objects.items() if o["kind"] == "Pod"
                     and o["metadata"]["labels"].get(LWS_NAME_LABEL) == meta["name"]]:
            del api.objects[path]
        ready = image(obj) != NEVER_READY
        size = spec["leaderWorkerTemplate"].get("size", 1)
        labels = dict(spec["leaderWorkerTemplate"]["workerTemplate"]["metadata"]["labels"],
                      **{LWS_NAME_LABEL: meta["name"]})
        for i in range(spec.get("replicas", 1) * size):
            api.put({"apiVersion": "v1", "kind": "Pod", "metadata": {
                "name": "%s-%d" % (meta["name"], i), "namespace": meta["namespace"], "labels": labels,
                "creationTimestamp": stamp()}, "spec": {}, "status": {"phase": "Running", "conditions": [
                    {"type": "Ready", "status": "True" if ready else "False"}]}})
        n = spec.get("replicas", 1)
        obj["status"] = {"replicas": n, "readyReplicas": n if ready else 0, "updatedReplicas": n,
                         "conditions": [{"type": "Available", "status": "True" if ready else "False"}]}
    return react


@pytest.fixture
def stack():
    """A deployed plan on a fake cluster of two free 8-GPU nodes beyond the deployment's four."""
    api = FakeApi()
    api.on_apply.append(lws_controller(api))
    the_plan = plan.render(SETTINGS)
    c = Client(transport=api)
    for i in range(6):
        api.put({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n%d" % i},
                 "spec": {}, "status": {"allocatable": {"nvidia.com/gpu": "8"}}})
    for obj in the_plan["objects"]["leaderworkersets"]:
        c.apply(obj)
    refs = the_plan["refs"]
    api.put(dict(refs["epp"], spec={"replicas": 1}, status={
        "observedGeneration": 1, "availableReplicas": 1, "updatedReplicas": 1}))
    api.put(dict(refs["pool"], spec={"selector": {"matchLabels": the_plan["inferencepool_values"]["inferencePool"][
        "modelServers"]["matchLabels"]}}))
    api.log.clear()
    return api, the_plan


def changed_decode(the_plan, **container):
    objs = copy.deepcopy(the_plan["objects"]["leaderworkersets"])
    objs[1]["spec"]["leaderWorkerTemplate"]["workerTemplate"]["spec"]["containers"][0].update(container)
    return objs


def run_plan(api, the_plan, objs, lws="0.9.0", **kw):
    return rollout.plan(Client(transport=api), objs, the_plan["refs"], the_plan["summary"], {"lws": lws}, {}, **kw)


def test_plan_of_an_unchanged_stack_is_nothing(stack):
    api, the_plan = stack
    out = run_plan(api, the_plan, the_plan["objects"]["leaderworkersets"])
    assert out["steps"] == [] and out["problems"] == []
    assert out["plan"] == ["nothing to upgrade: everything already runs the wanted versions and specs"]
    assert api.writes() == []


def test_plan_surges_the_changed_role_when_a_group_fits(stack):
    api, the_plan = stack
    out = run_plan(api, the_plan, changed_decode(the_plan, image="example.com/vllm:2"))
    assert out["steps"] == ["modelservers"] and out["surge"] == {"wide-ep-llm-d-decode": 1}
    assert "image ghcr.io/llm-d/llm-d-cuda:v0.5.0 -> example.com/vllm:2" in out["plan"][0]
    assert api.writes() == []


@pytest.mark.parametrize("lws,target", [("0.8.0", None), (None, None), ("0.8.0", "0.9.0")])
def test_a_one_group_role_surges_only_under_a_controller_that_keeps_the_surge_group(stack, lws, target):
    """LWS before 0.9.0 releases a one-group LeaderWorkerSet's surge group at once: no surge then (its
    maxUnavailable 0 would never move), said in the plan; an upgrade that brings 0.9.0 first rolls with it."""
    api, the_plan = stack
    out = rollout.plan(Client(transport=api), changed_decode(the_plan, image="example.com/vllm:2"),
                       the_plan["refs"], the_plan["summary"], {"lws": lws}, {"lws": target})
    if target:
        assert out["steps"] == ["lws", "modelservers"] and out["surge"] == {"wide-ep-llm-d-decode": 1}
        return
    assert out["surge"] == {"wide-ep-llm-d-decode": 0}
    assert out["warnings"] == [
        "wide-ep-llm-d-decode has one group and no surge group (the LWS controller (%s) releases a one-group "
        "LeaderWorkerSet's surge group at once (kept from 0.9.0)): it stops serving until the new group is Ready "
        "(7-45 minutes for DeepSeek-R1)" % (lws or "version unknown")]


def test_an_inferencepool_chart_upgrade_warns_that_the_picker_restarts(stack):
    api, the_plan = stack
    out = rollout.plan(Client(transport=api), the_plan["objects"]["leaderworkersets"], the_plan["refs"],
                       the_plan["summary"], {"inferencepool_chart": "v1.2.0"}, {"inferencepool_chart": "v1.3.0"})
    assert out["steps"] == ["inferencepool_chart"] and out["warnings"] == [rollout.EPP_RECREATE]
    assert "Recreate" in rollout.EPP_RECREATE
    other = rollout.plan(Client(transport=api), the_plan["objects"]["leaderworkersets"], the_plan["refs"],
                         dict(the_plan["summary"], router_chart="llm-d-router"), {"inferencepool_chart": "v1.2.0"},
                         {"inferencepool_chart": "v1.3.0"})
    assert other["steps"] == ["inferencepool_chart"] and other["warnings"] == []


def test_plan_refuses_what_cannot_start(stack):
    api, the_plan = stack
    for i in range(5):   # one node left free (8 GPUs), where a decode group needs two pods of 8
        api.put({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "hog%d" % i, "namespace": "x"},
                 "spec": {"nodeName": "n%d" % i, "containers": [{"resources": {"requests": {"nvidia.com/gpu": "8"}}}]},
                 "status": {"phase": "Running"}})
    holder = lease.Lease(Client(transport=api), "ns", 60)
    holder.acquire(Progress())
    epp = api.objects[next(p for p in api.objects if p.endswith("/deployments/llm-d-infpool-epp"))]
    epp["status"]["availableReplicas"] = 0
    out = run_plan(api, the_plan, changed_decode(the_plan, image="example.com/vllm:2"), surge="required")
    problems = " | ".join(out["problems"])
    assert "no room for a surge group of 2 pods x 8 GPUs" in problems
    assert "another upgrade or rollback is running: Lease ns/wide-ep-rollout is held by " + holder.identity in problems
    assert "EPP llm-d-infpool-epp is not healthy before the upgrade" in problems
    allowed = run_plan(api, the_plan, changed_decode(the_plan, image="example.com/vllm:2"), allow_unhealthy=True)
    assert not any("not healthy" in p for p in allowed["problems"])


def roll(api, the_plan, objs, check=False, **kw):
    run = rollout.Rollout(Client(transport=api), the_plan["refs"], lock_duration=10, note="test",
                          gate_sleep=0.01, check_mode=check)
    with run:
        return run.run(objs, **kw)


def test_check_mode_returns_the_plan_and_changes_nothing(stack):
    api, the_plan = stack
    out = roll(api, the_plan, changed_decode(the_plan, image="example.com/vllm:2"), check=True)
    assert out["changed"] and [x["changed"] for x in out["plan"]] == [False, True]
    assert api.writes() == []


def test_a_passing_rollout_is_recorded_and_gives_the_lease_back(stack):
    api, the_plan = stack
    objs = changed_decode(the_plan, image="example.com/vllm:2")
    out = roll(api, the_plan, objs, surge={"wide-ep-llm-d-decode": 1}, gate_timeout=5)
    assert out["changed"] and out["revision"]["status"] == "deployed"
    revs = Record(Client(transport=api), "ns").revisions
    assert [(r["revision"], r["status"]) for r in revs] == [(1, "deployed"), (2, "deployed")]
    live = Client(transport=api).get(objs[1])
    assert image(live) == "example.com/vllm:2"
    # it surged, and once the gate passed the strategy is one group at a time again: a later change (site.yml's)
    # would otherwise wait for a surge group the GPUs may no longer hold (maxUnavailable 0 never moves)
    assert "applied LeaderWorkerSet ns/wide-ep-llm-d-decode (maxSurge 1)" in out["progress"], out["progress"]
    assert live["spec"]["rolloutStrategy"]["rollingUpdateConfiguration"] == {"maxSurge": 0, "maxUnavailable": 1}
    assert Client(transport=api).get(lease.ref("ns")) is None
    again = roll(api, the_plan, objs, gate_timeout=5)
    assert again["changed"] is False and len(Record(Client(transport=api), "ns").revisions) == 2


def test_a_failed_gate_rolls_back_and_says_so(stack):
    api, the_plan = stack
    objs = changed_decode(the_plan, image=NEVER_READY)
    with pytest.raises(rollout.Failed) as err:
        roll(api, the_plan, objs, gate_timeout=0.05)
    assert "did not pass its gate" in str(err.value) and "rolled back wide-ep-llm-d-decode" in str(err.value)
    assert image(Client(transport=api).get(objs[1])) == "ghcr.io/llm-d/llm-d-cuda:v0.5.0"
    revs = Record(Client(transport=api), "ns").revisions
    assert [r["status"] for r in revs] == ["deployed", "rolled-back"]


def test_rollback_from_the_record(stack):
    api, the_plan = stack
    roll(api, the_plan, changed_decode(the_plan, image="example.com/vllm:2"), gate_timeout=5)
    out = roll(api, the_plan, [], action="rollback", gate_timeout=5)
    assert out["changed"] and out["revision"]["note"] == "rollback to revision 1"
    assert image(Client(transport=api).get(the_plan["refs"]["leaderworkersets"]["decode"])) == \
        "ghcr.io/llm-d/llm-d-cuda:v0.5.0"
    statuses = [r["status"] for r in Record(Client(transport=api), "ns").revisions]
    assert statuses == ["deployed", "rolled-back", "deployed"]


def test_a_short_lease_is_refused_before_anything():
    with pytest.raises(InvalidInput, match="give lock_duration at least 10 seconds and 3 x gate_sleep"):
        rollout.Rollout(Client(transport=FakeApi()), {"namespace": "ns"}, lock_duration=9)


def test_rollback_after_a_failed_upgrade_returns_to_the_last_good_revision(stack):
    api, the_plan = stack
    with pytest.raises(rollout.Failed):
        roll(api, the_plan, changed_decode(the_plan, image=NEVER_READY), gate_timeout=0.05, rollback=False)
    assert [r["status"] for r in Record(Client(transport=api), "ns").revisions] == ["deployed", "failed"]
    out = roll(api, the_plan, [], action="rollback", gate_timeout=5)
    assert out["revision"]["note"] == "rollback to revision 1"
    assert image(Client(transport=api).get(the_plan["refs"]["leaderworkersets"]["decode"])) == \
        "ghcr.io/llm-d/llm-d-cuda:v0.5.0"


def test_a_step_gate_that_failed_is_noted_on_the_newest_revision_without_changing_its_status():
    api = FakeApi()
    record = Record(Client(transport=api), "ns")
    assert record.note_gate("lws", ["gone"]) is None            # nothing recorded yet: nothing to note it on
    record.add("deployed", [], "site.yml")
    record.note_gate("lws", ["LeaderWorkerSet ns/m: gone (uid u)"])
    (rev,) = Record(Client(transport=api), "ns").revisions
    assert rev["status"] == "deployed"
    assert [(g["step"], g["problems"]) for g in rev["gates"]] == [("lws", ["LeaderWorkerSet ns/m: gone (uid u)"])]


def test_a_rollback_after_a_surge_roll_leaves_the_rollout_strategy_to_its_manager(stack, monkeypatch):
    """The strategy a surge roll set (maxSurge 1, owned by STRATEGY_MANAGER) is not in what is recorded or
    restored: the site's own apply of a defaulted maxSurge 0 is a conflict on a real API server (HTTP 409)."""
    api, the_plan = stack
    sent = []
    real_apply = Client.apply

    def apply(self, obj, field_manager=rollout.FIELD_MANAGER, force=False, dry_run=False):
        sent.append((field_manager, obj))
        return real_apply(self, obj, field_manager, force, dry_run)

    monkeypatch.setattr(Client, "apply", apply)
    decode = the_plan["refs"]["leaderworkersets"]["decode"]["metadata"]["name"]
    roll(api, the_plan, changed_decode(the_plan, image="example.com/vllm:2"), surge={decode: 1}, gate_timeout=5)
    patch, after = [obj for manager, obj in sent if manager == rollout.STRATEGY_MANAGER]
    assert after["spec"]["rolloutStrategy"]["rollingUpdateConfiguration"] == {"maxSurge": 0, "maxUnavailable": 1}
    # the surge group first, and no old group down before it is Ready (LWS moves by maxUnavailable + surge)
    assert patch["spec"] == {"rolloutStrategy": {"type": "RollingUpdate", "rollingUpdateConfiguration": {
        "maxSurge": 1, "maxUnavailable": 0}}}
    # a record written before the rule kept the strategy the cluster had defaulted
    record = Record(Client(transport=api), "ns")
    record.revisions[0]["leaderworkersets"][decode]["spec"]["rolloutStrategy"] = {
        "type": "RollingUpdate", "rollingUpdateConfiguration": {"maxUnavailable": 1, "maxSurge": 0}}
    record.save()
    sent.clear()
    roll(api, the_plan, [], action="rollback", gate_timeout=5, lws_version="0.9.0")
    ours = [obj for manager, obj in sent if manager == rollout.FIELD_MANAGER and obj["kind"] == "LeaderWorkerSet"]
    assert ours and not [obj for obj in ours if "rolloutStrategy" in obj["spec"]]
    # the rollback surges too where the free GPUs hold a group (two free nodes here)
    patch, after = [obj for manager, obj in sent if manager == rollout.STRATEGY_MANAGER]
    assert patch["spec"]["rolloutStrategy"]["rollingUpdateConfiguration"] == {"maxSurge": 1, "maxUnavailable": 0}
    assert after["spec"]["rolloutStrategy"]["rollingUpdateConfiguration"] == {"maxSurge": 0, "maxUnavailable": 1}
    assert image(Client(transport=api).get(the_plan["refs"]["leaderworkersets"]["decode"])) == \
        "ghcr.io/llm-d/llm-d-cuda:v0.5.0"
    revisions = Record(Client(transport=api), "ns").revisions
    assert len(revisions) == 3 and all("rolloutStrategy" not in obj["spec"] for rev in revisions[1:]  # not the planted
                                       for obj in rev["leaderworkersets"].values())


def test_a_pod_of_the_old_spec_left_behind_is_named_at_the_gate():
    """A worker pod from before the change that nothing removed (its StatefulSet gone, the garbage collector
    behind) holds its name, so its replacement cannot be made: the gate fails and names it."""
    api = FakeApi()
    lws = {"apiVersion": "leaderworkerset.x-k8s.io/v1", "kind": "LeaderWorkerSet",
           "metadata": {"name": "d", "namespace": "ns"},
           "spec": {"replicas": 1, "leaderWorkerTemplate": {"size": 2}},
           "status": {"replicas": 1, "readyReplicas": 1, "updatedReplicas": 1,
                      "conditions": [{"type": "Available", "status": "True"}]}}
    api.put(lws)
    for name, created in (("d-0", stamp()), ("d-0-1", "2026-01-01T00:00:00Z")):
        api.put({"apiVersion": "v1", "kind": "Pod", "metadata": {
            "name": name, "namespace": "ns", "labels": {LWS_NAME_LABEL: "d"}, "creationTimestamp": created},
            "spec": {}, "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}})
    since = time.time() - 5
    passed, reason = rollout.gate(Client(transport=api), lws, since)
    assert not passed
    assert reason.endswith("; 1/2 new pods Ready; 1 from before the change still there (d-0-1)"), reason
    passed, reason = rollout.gate(Client(transport=api), lws, None)   # no template change: every pod counts
    assert passed and "before the change" not in reason, reason
