"""Node maintenance (module_utils/day2/drain.py) over the in-memory API server: a group leaves whole or not at
all, the refusals come before any change, check mode changes nothing."""
import pytest

from ansible_collections.llmd.wide_ep.plugins.module_utils.day2 import drain, lease
from ansible_collections.llmd.wide_ep.plugins.module_utils.errors import WideEPError
from ansible_collections.llmd.wide_ep.plugins.module_utils.k8s.client import Client
from ansible_collections.llmd.wide_ep.plugins.module_utils.k8s.lws import LWS_GROUP_LABEL, LWS_NAME_LABEL
from tests.support.fake_api import FakeApi, status

NS = "llm-d-wide-ep"


def node(name, gpus=8, unschedulable=False):
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name},
            "spec": {"unschedulable": unschedulable} if unschedulable else {},
            "status": {"allocatable": {"nvidia.com/gpu": str(gpus)},
                       "conditions": [{"type": "Ready", "status": "True"}]}}


def pod(name, on, group=None, gpus=8, daemon=False):
    meta = {"name": name, "namespace": NS, "uid": name}
    if group is not None:
        meta["labels"] = {LWS_NAME_LABEL: "wide-ep-llm-d-decode", LWS_GROUP_LABEL: str(group)}
    if daemon:
        meta["ownerReferences"] = [{"kind": "DaemonSet", "name": "d"}]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "status": {"phase": "Running"},
            "spec": {"nodeName": on, "containers": [{"name": "vllm", "resources": {
                "requests": {"nvidia.com/gpu": str(gpus)}}}] if gpus else [{"name": "c"}]}}


@pytest.fixture
def api():
    api = FakeApi()
    for n in ("gpu-1", "gpu-2", "gpu-3"):
        api.put(node(n))
    api.put(pod("decode-0", "gpu-1", group=0))
    api.put(pod("decode-0-1", "gpu-2", group=0))
    api.put(pod("agent", "gpu-1", gpus=0, daemon=True))
    return api


def params(**over):
    return dict({"node": "gpu-1", "namespaces": [NS], "accept_downtime": False, "surge": True, "timeout": 5}, **over)


def names(api):
    return sorted(o["metadata"]["name"] for p, o in api.objects.items() if "/pods/" in p)


def test_no_room_elsewhere_is_refused_before_anything_changes(api):
    """The group's two 8-GPU pods need two free 8-GPU nodes besides gpu-1 (gpu-2 gets its own back): gpu-3 has 4."""
    api.put(node("gpu-3", gpus=4))
    with pytest.raises(WideEPError, match=r"draining gpu-1 takes down EP group\(s\) llm-d-wide-ep/"
                                          r"wide-ep-llm-d-decode/0 \(2 pods\).*free GPUs: gpu-2=8, gpu-3=4\)"):
        drain.drain(Client(transport=api), params())
    assert api.writes() == []
    assert drain.drain(Client(transport=api), params(accept_downtime=True), check_mode=True)["changed"] is True


def test_the_group_leaves_whole_and_daemons_stay(api):
    result = drain.drain(Client(transport=api), params())
    assert result == {"changed": True, "groups": ["llm-d-wide-ep/wide-ep-llm-d-decode/0"], "evicted": [],
                      "surged": []}
    assert names(api) == ["agent"]   # both pods of the group, on either node; the DaemonSet's stays
    assert Client(transport=api).get({"apiVersion": "v1", "kind": "Node",
                                      "metadata": {"name": "gpu-1"}})["spec"]["unschedulable"] is True


def test_check_mode_says_what_would_go_and_changes_nothing(api):
    assert drain.drain(Client(transport=api), params(), check_mode=True)["groups"] == [
        "llm-d-wide-ep/wide-ep-llm-d-decode/0"]
    assert api.writes() == [] and "decode-0" in names(api)


def test_a_running_rollout_holds_the_drain(api):
    mine = lease.Lease(Client(transport=api), NS, 60, note="upgrade.yml")
    mine.acquire(None)
    with pytest.raises(WideEPError, match="an upgrade or rollback is rolling the model servers of namespace "):
        drain.drain(Client(transport=api), params())
    assert "decode-0" in names(api)


def test_an_unknown_node_is_named():
    with pytest.raises(WideEPError, match="node gpu-9 not found"):
        drain.drain(Client(transport=FakeApi()), params(node="gpu-9"))


def test_uncordon_waits_for_the_node_and_the_groups(api):
    api.put(node("gpu-1", unschedulable=True))
    assert drain.uncordon(Client(transport=api), params(namespaces=[]))["changed"] is True
    live = Client(transport=api).get({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "gpu-1"}})
    assert live["spec"]["unschedulable"] is False
    assert drain.uncordon(Client(transport=api), params(namespaces=[]))["changed"] is False


DECODE = {"apiVersion": "leaderworkerset.x-k8s.io/v1", "kind": "LeaderWorkerSet",
          "metadata": {"name": "wide-ep-llm-d-decode", "namespace": NS},
          "spec": {"replicas": 1, "leaderWorkerTemplate": {"size": 2, "workerTemplate": {"spec": {"containers": [
              {"name": "vllm", "resources": {"requests": {"nvidia.com/gpu": "8"}}}]}}}}}


def ready_on_apply(obj):
    """A stand-in controller: every group of a LeaderWorkerSet Ready as soon as it is asked for."""
    if obj["kind"] == "LeaderWorkerSet":
        n = obj["spec"].get("replicas", 1)
        obj["status"] = {"replicas": n, "readyReplicas": n, "updatedReplicas": n,
                         "conditions": [{"type": "Available", "status": "True"}]}


def lws_live(api):
    return Client(transport=api).get(DECODE)


def test_a_role_left_without_a_group_and_no_room_for_one_more_is_refused(api):
    """Its group fits elsewhere once gone (gpu-2 and gpu-3), but not one more beside it: it would stop serving."""
    Client(transport=api).apply(DECODE)
    with pytest.raises(WideEPError, match=r"draining gpu-1 takes down every group of LeaderWorkerSet "
                                          r"llm-d-wide-ep/wide-ep-llm-d-decode, and the other nodes have no room"):
        drain.drain(Client(transport=api), params())
    assert [w for w in api.writes() if "leaderworkersets" not in w[1]] == []
    assert drain.drain(Client(transport=api), params(surge=False))["surged"] == []   # the guide's way: it goes


def test_a_surge_group_serves_while_the_node_is_out_and_goes_when_it_is_back(api):
    api.on_apply.append(ready_on_apply)
    api.put(node("gpu-4"))
    Client(transport=api).apply(DECODE)
    result = drain.drain(Client(transport=api), params())
    assert result["surged"] == ["LeaderWorkerSet llm-d-wide-ep/wide-ep-llm-d-decode"]
    live = lws_live(api)
    assert live["spec"]["replicas"] == 2 and live["metadata"]["annotations"][drain.SURGE_ANNOTATION] == "gpu-1=1"
    scaled = [i for i, (m, p, q) in enumerate(api.log) if p.endswith("/scale")]
    deleted = [i for i, (m, p, q) in enumerate(api.log) if m == "DELETE" and "/pods/" in p]
    assert scaled and deleted and max(scaled) < min(deleted)         # the surge group first, then the old group
    assert names(api) == ["agent"]
    # the controller writes the status between the read and the hand-back: the compare-and-swap is tried again
    api.fail[("PATCH", "/apis/leaderworkerset.x-k8s.io/v1/namespaces/%s/leaderworkersets/%s" % (
        NS, DECODE["metadata"]["name"]))] = status(409, "Conflict", "the object has been modified")
    back = drain.uncordon(Client(transport=api), params())
    assert not api.fail                                               # the conflict was met, and ridden out
    assert back["changed"] and back["surged"] == ["LeaderWorkerSet llm-d-wide-ep/wide-ep-llm-d-decode"]
    live = lws_live(api)
    assert live["spec"]["replicas"] == 1 and drain.SURGE_ANNOTATION not in (live["metadata"].get("annotations") or {})
    assert drain.MAINTENANCE_MANAGER not in {m["manager"] for m in live["metadata"]["managedFields"]}
    assert drain.uncordon(Client(transport=api), params())["changed"] is False
