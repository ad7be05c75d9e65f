"""The cluster preflight (role preflight_cluster, module workload_preflight) on the local cluster's real API server,
with kwok nodes planted to show each fault: each gives exactly its own FAIL and nothing is applied; the healthy
sets are all OK, and a deployment that passed schedules every pod.

Planted nodes are `probe-*` (kwok runs them, so they are Ready); the GKE checks read a Network CRD written for this
test (tests/support/cluster/gke-network-crd.yaml: GKE's CRD is not published in a module we can fetch), and every
planted object is removed at the end."""
import json

import pytest
import yaml

from tests.support.runs import ROOT, run_playbook, task_results

NS = "preflight-probe"
GUIDE = {"wide_ep_namespace": NS, "wide_ep_provider": "local", "wide_ep_dp_mode": "dp-aware"}
# v0.5.0's GKE overlay: no rdma-N pin, networks rdma-0..7 by annotation, R580 blocked for DeepEP high-throughput
GKE = {"wide_ep_namespace": NS, "wide_ep_provider": "gke", "wide_ep_dp_mode": "hybrid",
       "wide_ep_gateway": "gke-l7-rilb", "wide_ep_epp_prometheus": False}
RDMA = ["rdma-%d" % i for i in range(8)]
NETWORK_API = "networking.gke.io/v1"


def preflight(extra):
    rc, stats, out, log = run_playbook("playbooks/preflight_cluster.yml", extra_vars=extra)
    results = task_results(out, "Check the cluster can run the model servers")
    assert results, log[-3000:]
    res = results[0]["localhost"]
    return rc, {c["name"]: c["status"] for c in res.get("checks", [])}, res, log


def failing(checks):
    return {name for name, status in checks.items() if status == "FAIL"}


def probe_node(name, gpus=8, labels=None, allocatable=None):
    alloc = {"cpu": "128", "memory": "2Ti", "ephemeral-storage": "4Ti", "pods": "110", "nvidia.com/gpu": str(gpus),
             **(allocatable or {})}
    return {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "annotations": {"kwok.x-k8s.io/node": "fake"},
                         "labels": {"type": "kwok", "kubernetes.io/hostname": name, "probe": "true", **(labels or {})}},
            "status": {"capacity": alloc, "allocatable": alloc}}


@pytest.fixture
def probes(cluster, tmp_path):
    """Plant nodes (and anything else) for one test; all of it goes at the end."""
    planted = []

    def plant(*objects):
        path = tmp_path / ("plant-%d.yaml" % len(planted))
        path.write_text(yaml.safe_dump_all(objects))
        planted.extend(objects)           # first: whatever of them a failed create made goes too
        cluster("create", "-f", str(path))
        nodes = [o["metadata"]["name"] for o in objects if o["kind"] == "Node"]
        if nodes:
            cluster("wait", "--for=condition=Ready", "--timeout=60s", *("node/" + n for n in nodes))
    yield plant
    for obj in reversed(planted):
        kind = obj["kind"].lower() + ("s.networking.gke.io" if obj["apiVersion"] == NETWORK_API else "")
        cluster("delete", kind, obj["metadata"]["name"], "--ignore-not-found", "--timeout=60s",
                *(["-n", obj["metadata"]["namespace"]] if obj["metadata"].get("namespace") else []),
                check=False)      # a Network goes with its CRD, which gke_networks removes first


@pytest.fixture
def clean(cluster):
    cluster("delete", "namespace", NS, "--ignore-not-found", "--wait=true", "--timeout=120s")
    yield cluster
    cluster("delete", "namespace", NS, "--ignore-not-found", "--wait=true", "--timeout=120s")


@pytest.fixture
def gke_networks(cluster, probes):
    """The GKE healthy set: the Network CRD and rdma-0..7, and nodes that advertise rdma-N and .IP, on R570."""
    crd = ROOT / "tests/support/cluster/gke-network-crd.yaml"
    cluster("apply", "--server-side", "-f", str(crd))
    cluster("wait", "--for=condition=Established", "--timeout=60s", "crd/networks.networking.gke.io")
    both = {"networking.gke.io.networks/%s%s" % (n, s): "1" for n in RDMA for s in ("", ".IP")}
    probes(*[probe_node("probe-gke-%d" % i, labels={"nvidia.com/cuda.driver-version.major": "570"},
                        allocatable=both) for i in range(2)],
           *[{"apiVersion": NETWORK_API, "kind": "Network", "metadata": {"name": n}, "spec": {"type": "Device"}}
             for n in RDMA])
    yield probes
    cluster("delete", "networks.networking.gke.io", "--all", "--wait=false")
    cluster("delete", "-f", str(crd), "--ignore-not-found", "--wait=false")


def test_the_guides_size_on_four_free_nodes_is_all_ok_and_schedules_every_pod(clean):
    rc, checks, res, log = preflight(GUIDE)
    assert rc == 0, log[-3000:]
    assert set(checks.values()) == {"OK"}, res["report"]
    assert res["report"][0].startswith("OK    placement - every group fits the nodes as they are: prefill 1 x 2 "
                                       "pod(s), decode 1 x 2 pod(s)"), res["report"]
    rc, stats, out, log = run_playbook("playbooks/model_servers.yml", extra_vars={**GUIDE, "modelserver_wait": True,
                                                                                 "modelserver_wait_timeout": 180})
    assert rc == 0, log[-3000:]
    pods = clean.json("get", "pods", "-n", NS, "-l", "leaderworkerset.sigs.k8s.io/name")["items"]
    assert len(pods) == 4 and all(p["spec"].get("nodeName") and p["status"]["phase"] == "Running" for p in pods)
    rc, checks, res, log = preflight(GUIDE)      # its own pods hold the GPUs it would use again: still OK
    assert rc == 0 and checks["placement"] == "OK", res["report"]


def test_too_few_gpus_names_the_group_and_applies_nothing(clean):
    rc, checks, res, log = preflight({**GUIDE, "wide_ep_decode": {"replicas": 2, "group_size": 2, "dp_local": 8}})
    assert rc != 0 and failing(checks) == {"placement"}, res.get("report")
    line = next(x for x in res["report"] if "decode group 1" in x)
    assert "decode group 1: needs 2 node(s) with 8 nvidia.com/gpu and 1 rdma/ib: no such node is free" in line
    assert "(after prefill group 0)" in line or "(after decode group 0)" in line
    assert "nothing was changed" in res["msg"]
    assert clean("get", "namespace", NS, check=False).returncode != 0


def test_a_taint_and_the_wrong_pool_label_are_named(clean):
    clean("taint", "node", "gpu-node-3", "nvidia.com/maintenance=drain:NoSchedule")
    clean("label", "node", "gpu-node-2", "gpu.nvidia.com/model=H100", "--overwrite")
    try:
        rc, checks, res, log = preflight(GUIDE)
    finally:
        clean("taint", "node", "gpu-node-3", "nvidia.com/maintenance-")
        clean("label", "node", "gpu-node-2", "gpu.nvidia.com/model=H200", "--overwrite")
    assert rc != 0 and failing(checks) == {"placement"}, res.get("report")
    report = "\n".join(res["report"])
    assert "gpu-node-3 tainted nvidia.com/maintenance=drain:NoSchedule" in report, report
    assert "gpu-node-2 outside the required node affinity (gpu.nvidia.com/model In H200)" in report, report


def test_gke_healthy_set_is_all_ok(clean, gke_networks):
    rc, checks, res, log = preflight(GKE)
    assert rc == 0 and set(checks.values()) == {"OK"}, res["report"]


def test_gke_nodes_with_only_the_ip_resources_fail_llm_d_1730(clean, gke_networks):
    only_ip = {"networking.gke.io.networks/%s.IP" % n: "1" for n in RDMA}
    gke_networks(probe_node("probe-ip-only", labels={"nvidia.com/cuda.driver-version.major": "570"},
                            allocatable=only_ip))
    rc, checks, res, log = preflight(GKE)
    assert rc != 0 and failing(checks) == {"gke_rdma_resources"}, res["report"]
    assert "probe-ip-only advertises only networking.gke.io.networks/rdma-0.IP" in "\n".join(res["report"])


def test_gke_r580_fails_the_driver_check(clean, gke_networks):
    gke_networks(probe_node("probe-r580", labels={"nvidia.com/cuda.driver-version.major": "580"}))
    rc, checks, res, log = preflight(GKE)
    assert rc != 0 and failing(checks) == {"driver"}, res["report"]
    assert "which driver R580 crashes" in "\n".join(res["report"]) and "probe-r580" in "\n".join(res["report"])


def test_a_missing_gke_network_fails(clean, gke_networks, cluster):
    cluster("delete", "networks.networking.gke.io", "rdma-7")
    rc, checks, res, log = preflight(GKE)
    assert rc != 0 and failing(checks) == {"gke_networks"}, res["report"]
    assert "do not exist: rdma-7" in "\n".join(res["report"])


def test_a_pod_the_pool_selects_without_the_ports_fails(clean, probes):
    clean("create", "namespace", NS)
    stray = {"apiVersion": "v1", "kind": "Pod", "metadata": {
        "name": "debug-shell", "namespace": NS, "labels": {"llm-d.ai/inference-serving": "true",
                                                            "llm-d.ai/guide": "wide-ep-lws",
                                                            "llm-d.ai/model": "DeepSeek-R1-0528"}},
        "spec": {"containers": [{"name": "sh", "image": "busybox", "ports": [{"containerPort": 8000}]}],
                 "tolerations": [{"operator": "Exists"}]}}
    probes(stray)
    rc, checks, res, log = preflight(GUIDE)
    assert rc != 0 and failing(checks) == {"pool_ports"}, res["report"]
    assert "pod debug-shell is selected by the pool but listens on none of 8001" in "\n".join(res["report"])
    rc, checks, res, log = preflight({**GUIDE, "preflight_ignore": ["pool_ports"]})
    assert rc == 0 and checks["pool_ports"] == "FAIL", res["report"]
    assert "FAIL  pool_ports - " in "\n".join(res["report"]) and "[ignored]" in "\n".join(res["report"])
    assert json.dumps(res).count("FAIL (ignored)") >= 1


VLLM = "ghcr.io/llm-d/llm-d-cuda:v0.5.0"
SIDECAR = "ghcr.io/llm-d/llm-d-routing-sidecar:v0.5.0"


def imaged_node(name, images, **kw):
    node = probe_node(name, labels={"gpu.nvidia.com/model": "H200"}, allocatable={"rdma/ib": "1"}, **kw)
    node["status"]["images"] = [{"names": [image], "sizeBytes": 1 << 30} for image in images]
    return node


def prepull(clean, check=False):
    rc, stats, out, log = run_playbook("playbooks/model_servers.yml", check=check, extra_vars=GUIDE,
                                       extra=("--tags", "modelserver_prepull"))
    results = task_results(out, "Pull the model server images onto their nodes")
    assert rc == 0 and results, log[-3000:]
    return results[0]["localhost"]


def test_the_prepull_pulls_what_each_node_lacks_and_leaves_the_rest(clean, probes):
    # kwok's nodes list no images, so planted ones say what they hold; kwok runs the pull pods as a kubelet would
    probes(imaged_node("probe-pull-0", ["registry.k8s.io/pause:3.10", VLLM]),
           imaged_node("probe-pull-1", ["registry.k8s.io/pause:3.10", VLLM, SIDECAR]),
           {**imaged_node("probe-pull-2", ["registry.k8s.io/pause:3.10"]),
            "spec": {"taints": [{"key": "dedicated", "value": "infra", "effect": "NoSchedule"}]}})
    clean("create", "namespace", NS)
    planned = prepull(clean, check=True)
    assert planned["changed"] and planned["pulled"] == {"probe-pull-0": [SIDECAR]}, planned
    assert clean.json("get", "pods", "-n", NS)["items"] == [], "check mode creates no pod"
    res = prepull(clean)
    assert res["changed"] and res["pulled"] == {"probe-pull-0": [SIDECAR]} and res["failures"] == {}, res
    assert res["present"] == ["probe-pull-1"], res
    assert {"gpu-node-%d" % i for i in range(4)} <= set(res["unknown"]), res   # kwok's own: no image list
    assert "probe-pull-2" not in res["unknown"] + res["present"], "the tainted node is no candidate"
    assert any(line.startswith("image pre-pull: 1/1 node(s) done in") for line in res["progress"]), res["progress"]
    left = clean.json("get", "pods", "-n", NS, "-l", "llmd.ai/prepull")["items"]
    assert all(p["metadata"].get("deletionTimestamp") for p in left), "the pull pods are deleted at the end"
