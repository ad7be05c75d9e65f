"""The move's plan (module_utils/day2/workload_move.py) over the in-memory API server: side by side when the free
GPUs hold every new pod, else stop then start with the downtime said, and what refuses the start. The move
itself runs against the real LWS 0.9.0 controller in tests/integration/test_27_disaggregatedset.py."""
import pytest

from ansible_collections.llmd.wide_ep.plugins.module_utils.day2 import workload_move
from ansible_collections.llmd.wide_ep.plugins.module_utils.k8s.client import Client
from ansible_collections.llmd.wide_ep.plugins.module_utils.render import plan
from tests.support.fake_api import FakeApi

SETTINGS = {"llmd_version": "v0.9.0", "provider": "local", "gateway": "istio", "namespace": "ns", "model": "m/model",
            "model_label": "model", "epp_prometheus": False}


def cluster(nodes, deployed=True, ready=True):
    """nodes 8-GPU nodes; the LWS pair running on the first four (16 GPUs per role)."""
    api = FakeApi()
    pair = plan.render(SETTINGS)
    for i in range(nodes):
        api.put({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n%d" % i}, "spec": {},
                 "status": {"allocatable": {"nvidia.com/gpu": "8"}}})
    if deployed:
        for k, lws in enumerate(pair["objects"]["leaderworkersets"]):
            live = dict(lws, status={"replicas": 1, "readyReplicas": int(ready), "updatedReplicas": 1,
                                     "conditions": [{"type": "Available", "status": str(ready)}]})
            api.put(live)
            for w in range(2):
                api.put({"apiVersion": "v1", "kind": "Pod", "metadata": {
                    "name": "%s-%d" % (lws["metadata"]["name"], w), "namespace": "ns"},
                    "spec": {"nodeName": "n%d" % (2 * k + w), "containers": [{"name": "vllm", "resources": {
                        "requests": {"nvidia.com/gpu": "8"}}}]}, "status": {"phase": "Running"}})
    ds = plan.render(dict(SETTINGS, workload="disaggregatedset"))["objects"]["workloads"][0]
    return Client(transport=api), pair["refs"]["leaderworkersets"], ds, api


def test_side_by_side_when_the_free_gpus_hold_the_whole_set():
    client, old, ds, _ = cluster(8)
    out = workload_move.plan(client, old, ds)
    assert out["problems"] == [] and out["warnings"] == []
    assert out["mode"] == "side-by-side"
    assert out["plan"][0].startswith("create DisaggregatedSet ns/wide-ep-lws-nvidia-gpu-vllm whole beside "
                                     "wide-ep-llm-d-prefill, wide-ep-llm-d-decode (4 pods fit the free GPUs)")
    assert out["plan"][-1] == "then delete wide-ep-llm-d-prefill, wide-ep-llm-d-decode"


def test_without_room_for_the_whole_set_the_pair_stops_first_and_the_plan_says_for_how_long():
    client, old, ds, _ = cluster(6)      # 16 free GPUs: one role's groups, not both
    out = workload_move.plan(client, old, ds)
    assert out["mode"] == "stop-then-start"
    assert out["plan"][0] == ("scale wide-ep-llm-d-prefill, wide-ep-llm-d-decode to 0: every role (prefill, decode) "
                              "stops serving until the set's groups are Ready (7-45 minutes for DeepSeek-R1)")
    (warning,) = out["warnings"]
    assert "4 pods needed, free per node: n0=0, n1=0, n2=0, n3=0, n4=8, n5=8" in warning


@pytest.mark.parametrize("deployed,ready,says", [
    (False, True, "LeaderWorkerSet ns/wide-ep-llm-d-prefill is not deployed: nothing to move"),
    (True, False, "is not healthy before the move: 0/1 groups ready"),
])
def test_what_refuses_the_start(deployed, ready, says):
    client, old, ds, _ = cluster(4, deployed, ready)
    out = workload_move.plan(client, old, ds)
    assert out["mode"] is None and any(says in p for p in out["problems"]), out["problems"]


def test_an_existing_set_refuses_the_move():
    client, old, ds, api = cluster(8)
    api.put(ds)
    out = workload_move.plan(client, old, ds)
    assert out["problems"] == ["DisaggregatedSet ns/wide-ep-lws-nvidia-gpu-vllm already exists: the move creates "
                               "it; delete it or run site.yml on it"]
