"""Property tests of the topology model (hypothesis): random topologies across providers, DP modes, gateways, group
sizes, DP/TP, ports and replicas. Every accepted one renders objects that the real kube-apiserver of the local
cluster accepts in a server-side dry run (CRD schemas and the LWS admission webhook included; the InferencePool
chart rendered by helm from the values), with one DP rank per GPU, ports unique per pod and the pool's target
ports equal to the ports the pods serve. Every rejected one gives errors that each name a `wide_ep_*` variable
and say what would be valid. Kinds the local cluster has no CRD for are counted as not checked, never as passed."""
import collections
import re
import subprocess

import pytest
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from ansible_collections.llmd.wide_ep.plugins.module_utils.k8s.client import Client
from ansible_collections.llmd.wide_ep.plugins.module_utils.k8s.errors import K8sError
from ansible_collections.llmd.wide_ep.plugins.module_utils.render import plan as plan_model
from ansible_collections.llmd.wide_ep.plugins.module_utils.render import profiles, topology
from tests.support.runs import BIN, CACHE, KUBECONFIG

NS = "t-topology-properties"
CHART = CACHE / "data/gaie/inferencepool-v1.3.0.tgz"
SERVING_PORT = re.compile(r"^(vllm|sidecar|rank\d+|proxy-rank\d+)$")
HINT = re.compile(r"must|valid|one of|use |set |change|lower|at most|above")
SEEN = collections.Counter()

ROLE = st.fixed_dictionaries({
    "replicas": st.integers(0, 3), "group_size": st.integers(1, 4), "dp_local": st.sampled_from([1, 2, 4, 8, 16]),
    "tp": st.sampled_from([1, 1, 1, 2, 4])})
PORT = st.integers(1024, 65535)
SETTINGS = st.fixed_dictionaries({
    "provider": st.sampled_from(topology.PROVIDERS), "dp_mode": st.sampled_from(topology.DP_MODES),
    "gateway": st.sampled_from(topology.GATEWAYS), "allow_unverified_gateway": st.booleans(),
    "namespace": st.just(NS), "model": st.just("deepseek-ai/DeepSeek-R1-0528"),
    "model_label": st.just("DeepSeek-R1-0528"),
    "prefill": ROLE, "decode": ROLE, "node_gpus": st.sampled_from([4, 8]),
    "redundant_experts": st.sampled_from([0, 16, 32, 64]),
    "ports": st.fixed_dictionaries({}, optional={k: PORT for k in ("prefill", "decode", "sidecar", "nixl", "dp_rpc")}),
})


@st.composite
def likely_valid(draw):
    """Topologies built to pass validation (so accepted ones are many): a gateway proven for the mode, pods that
    fit a node, TP 1 in DP-aware mode, redundant experts that make the expert count divide by both EP sizes."""
    version = draw(st.sampled_from(["v0.5.0", "v0.5.0", "main-7edda66"]))
    profile = profiles.get(version)
    dp_mode = draw(st.sampled_from(profile.dp_modes))
    node_gpus = draw(st.sampled_from([4, 8]))
    roles = {}
    for name in topology.ROLES:
        tp = 1 if dp_mode == "dp-aware" else draw(st.sampled_from([1, 2]))
        dp_local = draw(st.sampled_from([d for d in (1, 2, 4, 8) if d * tp <= node_gpus]))
        roles[name] = {"replicas": draw(st.integers(1, 3)), "group_size": draw(st.integers(1, 4)),
                       "dp_local": dp_local, "tp": tp}
    if dp_mode == "dp-aware":
        roles["decode"]["dp_local"] = roles["prefill"]["dp_local"]   # the pool's ports must match on both roles
    sizes = [r["group_size"] * r["dp_local"] * r["tp"] for r in roles.values()]
    redundant = next(n for n in range(0, 4096) if all((256 + n) % size == 0 for size in sizes))
    gateway = draw(st.sampled_from(["istio", "none"] if dp_mode == "dp-aware" else list(profile.gateways)))
    return {"llmd_version": version, "provider": draw(st.sampled_from(profile.providers)), "dp_mode": dp_mode,
            "gateway": gateway,
            "namespace": NS, "model": "deepseek-ai/DeepSeek-R1-0528", "model_label": "DeepSeek-R1-0528",
            "node_gpus": node_gpus, "redundant_experts": redundant, **roles}


@pytest.fixture(scope="module")
def client(cluster):
    cluster("delete", "namespace", NS, "--ignore-not-found", "--wait=true", "--timeout=120s")   # an earlier run's
    cluster("create", "namespace", NS)
    yield Client({"kubeconfig": str(KUBECONFIG)})
    cluster("delete", "namespace", NS, "--wait=false", check=False)


def served_ports(lws):
    """Ports the pods of a role take requests on: the routing sidecar's where there is one, else vLLM's."""
    spec = lws["spec"]["leaderWorkerTemplate"]["workerTemplate"]["spec"]
    front = (spec.get("initContainers") or []) + spec["containers"]
    front = [c for c in front if c["name"] == "routing-proxy"] or [c for c in front if c["name"] == "vllm"]
    return [p["containerPort"] for p in front[0]["ports"] if SERVING_PORT.match(p["name"])]


def check_pods(lws, node_gpus, dp_mode):
    spec = lws["spec"]["leaderWorkerTemplate"]["workerTemplate"]["spec"]
    containers = (spec.get("initContainers") or []) + spec["containers"]
    numbers = [p["containerPort"] for c in containers for p in c.get("ports", [])]
    names = [p["name"] for c in containers for p in c.get("ports", [])]
    assert len(numbers) == len(set(numbers)) and len(names) == len(set(names)), (numbers, names)
    vllm = next(c for c in spec["containers"] if c["name"] == "vllm")
    env = {e["name"]: e.get("value") for e in vllm["env"]}
    dp_local, tp = int(env["DP_SIZE_LOCAL"]), int(env["TP_SIZE"])
    gpus = int(vllm["resources"]["limits"]["nvidia.com/gpu"])
    assert gpus == dp_local * tp <= node_gpus        # every GPU of the pod serves exactly one DP rank's shard
    if dp_mode == "dp-aware":                         # one server, one port, per rank
        assert len([p for p in vllm["ports"] if re.match(r"^(vllm-)?rank\d+$", p["name"])]) == dp_local


def dry_run(client, objs):
    for obj in objs:
        obj = dict(obj, metadata=dict(obj["metadata"], namespace=NS))   # helm template leaves some unset
        if obj["kind"] in ("Namespace", "ClusterRole", "ClusterRoleBinding"):
            obj["metadata"].pop("namespace")
        try:
            client.path(obj)
        except K8sError as exc:
            if "is its CRD installed" in str(exc) or "is the CRD up to date" in str(exc):
                SEEN["not checked: %s (no CRD on the local cluster)" % obj["kind"]] += 1
                continue
            raise
        client.apply(obj, dry_run=True)               # raises on any schema, webhook or validation refusal
        SEEN["dry-run accepted: %s" % obj["kind"]] += 1


def chart_objects(values):
    res = subprocess.run([str(BIN / "helm"), "template", "llm-d-infpool", str(CHART), "-n", NS, "-f", "-"],
                         input=yaml.safe_dump(values), capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    return [o for o in yaml.safe_load_all(res.stdout) if o]


@settings(max_examples=300, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(st.one_of(SETTINGS, likely_valid()))
def test_every_topology_is_rendered_right_or_refused_clearly(client, s):
    try:
        plan = plan_model.render(s)
    except topology.TopologyError as err:
        SEEN["rejected"] += 1
        event("rejected")
        assert str(err).startswith("invalid wide-EP topology (")
        for problem in err.problems:
            assert re.match(r"^wide_ep_[a-z_]+", problem), problem
            assert HINT.search(problem), problem
        return
    SEEN["accepted"] += 1
    event("accepted")
    objects = plan["objects"]
    for lws in objects["leaderworkersets"]:
        check_pods(lws, s["node_gpus"], s["dp_mode"])
        assert lws["spec"]["replicas"] >= 1
    values = plan["router"]["chart_values"]
    if plan["router"]["chart"] != "inferencepool":   # llm-d v0.8.0: the router charts cannot be obtained here
        targets = [p["number"] for p in values["router"]["modelServers"]["targetPorts"]]
        for lws in objects["leaderworkersets"]:
            assert served_ports(lws) == targets, (lws["metadata"]["name"], served_ports(lws), targets)
        SEEN["main-7edda66 accepted"] += 1
        dry_run(client, objects["model_servers"] + objects["pod_monitors"] + objects["gateway"])
        return
    targets = [p["number"] for p in values["inferencePool"].get("targetPorts", [{"number": 8000}])]
    for lws in objects["leaderworkersets"]:
        assert served_ports(lws) == targets, (lws["metadata"]["name"], served_ports(lws), targets)
    chart = chart_objects(values)
    pool = next(o for o in chart if o["kind"] == "InferencePool")
    assert [p["number"] for p in pool["spec"]["targetPorts"]] == targets
    # the plan's refs name what the chart really creates
    refs = plan["refs"]
    assert pool["metadata"]["name"] == refs["pool"]["metadata"]["name"]
    assert {(o["kind"], o["metadata"]["name"]) for o in chart} >= {
        ("Deployment", refs["epp"]["metadata"]["name"]), ("Service", refs["epp_service"]["metadata"]["name"])}
    dry_run(client, objects["model_servers"] + objects["pod_monitors"] + objects["gateway"] + chart)


def test_both_outcomes_were_exercised():
    """Runs after the property test: it must have accepted and rejected topologies, and dry-run LWS objects."""
    print("topology property cases:", dict(SEEN))
    assert SEEN["accepted"] >= 50 and SEEN["rejected"] >= 50 and SEEN["main-7edda66 accepted"] >= 10, SEEN
    assert SEEN["dry-run accepted: LeaderWorkerSet"] >= 100, SEEN
