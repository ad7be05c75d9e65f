"""The cluster preflight's checks (module_utils/k8s/preflight.py) on nodes and pods as the API returns them: each
fault gives its own FAIL, missing data a SKIP, never an OK."""
import json

from ansible_collections.llmd.wide_ep.plugins.module_utils.k8s import preflight
from ansible_collections.llmd.wide_ep.plugins.module_utils.render import plan, topology
from tests.unit.k8s.test_placement import node

GKE = {"provider": "gke", "dp_mode": "hybrid", "gateway": "gke-l7-rilb"}
RDMA = ["rdma-%d" % i for i in range(8)]


class Seen(preflight.Cluster):
    """What preflight.Cluster reads, given."""

    def __init__(self, nodes=(), pods=(), networks=None):
        self.nodes, self.pods, self._networks, self._candidates = list(nodes), list(pods), networks, {}

    def gke_networks(self):
        return self._networks


def rendered(**over):
    return plan.render(dict(topology.DEFAULT_SETTINGS, **over))


def test_placement_without_nodes_is_a_skip_not_an_ok():
    status, why = preflight.check_placement(Seen(), rendered()["objects"]["workloads"], lambda p: False)
    assert status == "SKIP" and "no node is visible" in why


def test_a_scheduler_nobody_runs_fails_and_one_that_runs_passes():
    workloads = rendered(provider="coreweave")["objects"]["workloads"]
    status, lines = preflight.check_scheduler(Seen(), workloads)
    assert status == "FAIL" and lines[0].startswith("custom-binpack-scheduler: no pod of the cluster runs it")
    runner = {"metadata": {"namespace": "kube-system", "name": "binpack-0"}, "spec": {"containers": [
        {"command": ["/scheduler"], "args": ["--scheduler-name=custom-binpack-scheduler"]}]}}
    assert preflight.check_scheduler(Seen(pods=[runner]), workloads) == (
        "OK", ["custom-binpack-scheduler: pod kube-system/binpack-0 runs it"])
    assert preflight.check_scheduler(Seen(), rendered(provider="local")["objects"]["workloads"])[0] == "OK"


def test_gke_nodes_with_only_the_ip_resources_fail_unless_the_overlay_pins_rdma_n():
    only_ip = node("a3u-0", **{"networking.gke.io.networks/%s.IP" % n: "1" for n in RDMA})
    v050 = rendered(**GKE)["objects"]["workloads"]
    status, lines = preflight.check_gke_rdma_resources(Seen([only_ip]), v050)
    assert status == "FAIL" and "llm-d#1730" in lines[0] and "a3u-0 advertises only" in lines[0]
    both = node("a3u-1", **{"networking.gke.io.networks/%s%s" % (n, s): "1" for n in RDMA for s in ("", ".IP")})
    assert preflight.check_gke_rdma_resources(Seen([both]), v050)[0] == "OK"
    pinned = rendered(**dict(GKE, llmd_version="v0.9.0", dp_mode="dp-aware", gateway="istio"))["objects"][
        "workloads"]
    status, lines = preflight.check_gke_rdma_resources(Seen([only_ip]), pinned)
    assert status == "OK" and "pinned to 0" in lines[0]
    assert preflight.check_gke_rdma_resources(Seen([only_ip]), rendered()["objects"]["workloads"])[0] == "OK"


def test_gke_networks_must_exist():
    workloads = rendered(**GKE)["objects"]["workloads"]
    assert preflight.check_gke_networks(Seen(networks=None), workloads)[0] == "FAIL"
    status, why = preflight.check_gke_networks(Seen(networks=set(RDMA[:6])), workloads)
    assert status == "FAIL" and why.endswith("do not exist: rdma-6, rdma-7 (Network objects, with their "
                                             "GKENetworkParamSet; the guide's gke/README)")
    assert preflight.check_gke_networks(Seen(networks=set(RDMA)), workloads)[0] == "OK"


def test_the_bad_driver_branch_fails_and_no_labels_is_a_skip():
    p = rendered(**GKE)
    workloads, blocked = p["objects"]["workloads"], p["needs"]["driver_blocklist"]
    r580 = node("a3u-0", labels={"nvidia.com/cuda.driver-version.major": "580"})
    r570 = node("a3u-1", labels={"nvidia.com/cuda.driver-version.major": "570"})
    status, lines = preflight.check_driver(Seen([r580, r570]), workloads, blocked)
    assert status == "FAIL" and lines == ["prefill runs deepep_high_throughput, which driver R580 crashes "
                                          "(cudaErrorIllegalAddress on GKE, llm-d#2379): a3u-0"]
    assert preflight.check_driver(Seen([r570]), workloads, blocked)[0] == "OK"
    status, lines = preflight.check_driver(Seen([node("a3u-2")]), workloads, blocked)
    assert status == "SKIP" and "cannot be ruled out" in lines[0]


def test_a_stray_pod_the_pool_selects_fails_the_ports():
    p = rendered(provider="local", dp_mode="dp-aware")
    selector, ports = p["router"]["selector"], p["summary"]["target_ports"]
    ns = p["summary"]["namespace"]
    stray = {"metadata": {"namespace": ns, "name": "debug-0", "labels": dict(selector)},
             "spec": {"containers": [{"ports": [{"containerPort": 8000}]}]}}
    status, lines = preflight.check_pool_ports(Seen(pods=[stray]), p["objects"]["workloads"], selector, ns, ports,
                                               lambda pod: False)
    assert status == "FAIL" and lines == ["pod debug-0 is selected by the pool but listens on none of 8001, 8002, "
                                          "8003, 8004, 8005, 8006, 8007: requests routed there fail (relabel or "
                                          "remove it)"]
    assert preflight.check_pool_ports(Seen(pods=[stray]), p["objects"]["workloads"], selector, ns, ports,
                                      lambda pod: True)[0] == "OK"


def test_interfaces_annotation_is_read_as_the_guide_writes_it():
    notes = {"networking.gke.io/interfaces": json.dumps([{"interfaceName": "eth0", "network": "default"},
                                                         {"interfaceName": "eth2", "network": "rdma-0"}])}
    assert preflight._gke_network_names(notes) == ["rdma-0"]


def test_keepalive_shorter_than_the_sidecars_idle_pool_fails():
    for version in ("v0.5.0", "v0.9.0"):     # v0.5.0's guide lacks it: the collection backports 120 s
        status, lines = preflight.check_keepalive(rendered(llmd_version=version)["objects"]["workloads"])
        assert status == "OK" and lines == ["prefill: vLLM keeps idle connections 120 s, longer than the routing "
                                            "sidecar's 90 s"], version
    lowered = rendered(prefill={"env": {"VLLM_HTTP_TIMEOUT_KEEP_ALIVE": "60"}})["objects"]["workloads"]
    status, lines = preflight.check_keepalive(lowered)
    assert status == "FAIL" and lines[0].startswith("prefill: vLLM closes idle connections after 60 s "
                                                    "(VLLM_HTTP_TIMEOUT_KEEP_ALIVE=60), before the routing")
    workloads = rendered()["objects"]["workloads"]
    for obj in workloads:                     # the env unset: uvicorn's 5 s
        for c in obj["spec"]["leaderWorkerTemplate"]["workerTemplate"]["spec"]["containers"]:
            c["env"] = [e for e in c["env"] if e["name"] != "VLLM_HTTP_TIMEOUT_KEEP_ALIVE"]
    status, lines = preflight.check_keepalive(workloads)
    assert status == "FAIL" and "after 5 s (VLLM_HTTP_TIMEOUT_KEEP_ALIVE unset)" in lines[0]


def test_an_upstream_vllm_image_on_roce_fails_and_an_unknown_fabric_skips():
    upstream = {"vllm": "vllm/vllm-openai:v0.10.1"}
    gke = rendered(**GKE, images=upstream)
    status, why = preflight.check_nvshmem_roce(gke["objects"]["workloads"], gke["needs"]["fabric"])
    assert status == "FAIL" and why.startswith("vllm/vllm-openai:v0.10.1 is not an llm-d image: upstream vLLM "
                                               "images pin NVSHMEM 3.4.5")
    ours = rendered(**GKE)
    assert preflight.check_nvshmem_roce(ours["objects"]["workloads"], "roce")[0] == "OK"
    coreweave = rendered(provider="coreweave", dp_mode="dp-aware", images=upstream)
    assert preflight.check_nvshmem_roce(coreweave["objects"]["workloads"], coreweave["needs"]["fabric"]) == (
        "OK", "the provider's fabric is infiniband, not RoCE")
    bare = rendered(provider="baremetal", images=upstream)
    status, why = preflight.check_nvshmem_roce(bare["objects"]["workloads"], bare["needs"]["fabric"])
    assert status == "SKIP" and why.endswith("this provider's record does not say whether the fabric is RoCE")
