# Copyright: llm-d wide-EP collection contributors
# Apache-2.0
""""Will it run?": what the cluster's API says, before anything is applied, about the plan's workload. The nodes
and pods are read once; each check gives OK, FAIL or SKIP with why - a check whose data is missing says SKIP,
never OK. The failures users meet 7-45 minutes into a start (upstream-2026 pain points) are found here in
seconds: groups that cannot be placed, a scheduler nobody runs, GKE RDMA resources and networks, a driver branch
that crashes the kernels, a pool pod that does not listen on every target port."""
from __future__ import annotations

import json

from ansible_collections.llmd.wide_ep.plugins.module_utils.k8s import placement
from ansible_collections.llmd.wide_ep.plugins.module_utils.k8s.errors import K8sError

OK, FAIL, SKIP = "OK", "FAIL", "SKIP"
DEFAULT_SCHEDULER = "default-scheduler"
GKE_NETWORK_RESOURCE = "networking.gke.io.networks/"
GKE_INTERFACES = "networking.gke.io/interfaces"
GKE_NETWORK_API = "networking.gke.io/v1"
SIDECAR = "routing-proxy"
LLMD_IMAGES = "ghcr.io/llm-d/"
KEEPALIVE_ENV = "VLLM_HTTP_TIMEOUT_KEEP_ALIVE"
UVICORN_KEEPALIVE = 5      # vLLM's default (envs.py)
SIDECAR_IDLE = 90          # the sidecar's reverse proxy: net/http's DefaultTransport IdleConnTimeout
# GPU feature discovery's driver labels, newest name first
DRIVER_LABELS = ("nvidia.com/cuda.driver-version.major", "nvidia.com/cuda.driver.major")


class Cluster:
    """What the checks read, once: nodes, every bound pod, and what else a check asks for (cached)."""

    def __init__(self, client):
        self.client = client
        self.nodes = client.list("v1", "Node")
        self.pods = client.list("v1", "Pod", field_selector="status.phase!=Succeeded,status.phase!=Failed")
        self._networks = None
        self._candidates = {}

    def candidates(self, role, spec):
        """The nodes a pod of the role may run on at all (resources aside), worked out once per role."""
        if role not in self._candidates:
            self._candidates[role] = [n for n in self.nodes if placement.why_not(n, spec) is None]
        return self._candidates[role]

    def gke_networks(self):
        """Names of GKE's Network objects; None when the cluster does not serve networking.gke.io/v1."""
        if self._networks is None:
            try:
                self._networks = {n["metadata"]["name"] for n in self.client.list(GKE_NETWORK_API, "Network")}
            except K8sError as exc:
                if exc.status != 404:
                    raise
                self._networks = False
        return self._networks or None


def _role_specs(workloads):
    return [(role, spec, notes) for role, dummy, dummy2, spec, notes in placement.roles(workloads)]


def check_placement(cluster, workloads, own):
    if not cluster.nodes:
        return SKIP, "no node is visible to this identity (an empty cluster, or nodes it may not list)"
    verdicts = placement.simulate(cluster.nodes, cluster.pods, workloads, own)
    failed = ["%s group %d: %s" % (role, index, why) for role, index, size, need, why in verdicts if why]
    if failed:
        return FAIL, failed
    counts = {}
    for verdict in verdicts:
        role, size = verdict[0], verdict[2]
        counts.setdefault(role, [0, size])[0] += 1
    return OK, "every group fits the nodes as they are: " + ", ".join(
        "%s %d x %d pod(s)" % (role, n, size) for role, (n, size) in counts.items())


def check_scheduler(cluster, workloads):
    asked = {spec.get("schedulerName") for dummy, spec, dummy2 in _role_specs(workloads)}
    names = sorted(asked - {None, DEFAULT_SCHEDULER})
    if not names:
        return OK, "the pods use the cluster's default scheduler"
    lines, status = [], OK
    for name in names:
        bound = [p for p in cluster.pods if p["spec"].get("schedulerName") == name and p["spec"].get("nodeName")]
        runs = [p for p in cluster.pods if any(name in " ".join(c.get("command", []) + c.get("args", []))
                                               for c in p["spec"].get("containers", []))]
        if runs:
            lines.append("%s: pod %s/%s runs it" % (name, runs[0]["metadata"]["namespace"],
                                                    runs[0]["metadata"]["name"]))
        elif bound:
            lines.append("%s: it placed pod %s/%s" % (name, bound[0]["metadata"]["namespace"],
                                                      bound[0]["metadata"]["name"]))
        else:
            status = FAIL
            lines.append("%s: no pod of the cluster runs it (none names it in its command) and none was placed "
                         "by it; the model servers would stay Pending. Deploy that scheduler, or check it runs "
                         "outside the cluster and add 'scheduler' to preflight_ignore" % name)
    return status, lines


def _gke_network_names(notes):
    try:
        return [i["network"] for i in json.loads(notes.get(GKE_INTERFACES, "[]")) if i.get("network") != "default"]
    except (TypeError, ValueError):
        return []


def check_gke_rdma_resources(cluster, workloads):
    """llm-d#1730: GKE's webhook adds networking.gke.io.networks/rdma-N and rdma-N.IP requests for each RDMA
    network a pod names; H200 nodes advertise only the .IP ones, so a pod that still asks for rdma-N stays
    Pending. Overlays from main-7edda66 pin rdma-N to 0 (prevented); otherwise every candidate node must have it."""
    lines, status, any_gke = [], OK, False
    for role, spec, notes in _role_specs(workloads):
        nets = _gke_network_names(notes)
        if not nets:
            continue
        any_gke = True
        asked = placement.pod_requests(spec)
        pinned = [n for n in nets if GKE_NETWORK_RESOURCE + n in _declared(spec)
                  and asked.get(GKE_NETWORK_RESOURCE + n, 0) == 0]
        unpinned = [n for n in nets if n not in pinned]
        if not unpinned:
            lines.append("%s: rdma-N requests pinned to 0 by the overlay (llm-d#1738)" % role)
            continue
        candidates = cluster.candidates(role, spec)
        if not candidates:
            lines.append("%s: no candidate node to look at" % role)
            status = SKIP if status == OK else status
            continue
        bad = []
        for node in candidates:
            alloc = node.get("status", {}).get("allocatable", {})
            only_ip = [n for n in unpinned if GKE_NETWORK_RESOURCE + n not in alloc
                       and GKE_NETWORK_RESOURCE + n + ".IP" in alloc]
            if only_ip:
                bad.append("%s advertises only %s" % (node["metadata"]["name"], ", ".join(
                    GKE_NETWORK_RESOURCE + n + ".IP" for n in only_ip[:2]) + (" ..." if len(only_ip) > 2 else "")))
        if bad:
            status = FAIL
            lines.append("%s: GKE adds networking.gke.io.networks/rdma-N requests for its RDMA networks, which these "
                         "nodes do not advertise (llm-d#1730): %s. Use wide_ep_llmd_version v0.9.0, whose GKE "
                         "overlays pin rdma-N to 0" % (role, "; ".join(bad[:placement.SHOWN_NODES])))
        else:
            lines.append("%s: every candidate node advertises the RDMA network resources" % role)
    if not any_gke:
        return OK, "the pods name no GKE RDMA network"
    return status, lines


def _declared(spec):
    declared = set()
    for c in spec.get("containers", []):
        res = c.get("resources", {})
        declared |= set(res.get("requests") or {}) | set(res.get("limits") or {})
    return declared


def check_gke_networks(cluster, workloads):
    wanted = sorted({n for dummy, dummy2, notes in _role_specs(workloads) for n in _gke_network_names(notes)})
    if not wanted:
        return OK, "the pods name no GKE network"
    have = cluster.gke_networks()
    if have is None:
        why = "the pods attach GKE networks %s, but the cluster does not serve %s Network" % (
            ", ".join(wanted), GKE_NETWORK_API)
        return FAIL, why + ": enable GKE multi-networking and create them (the guide's gke/README)"
    missing = [n for n in wanted if n not in have]
    if missing:
        return FAIL, ("the pods attach GKE networks that do not exist: %s (Network objects, with their "
                      "GKENetworkParamSet; the guide's gke/README)" % ", ".join(missing))
    return OK, "GKE networks %s exist" % ", ".join(wanted)


def _kernels(spec):
    text = json.dumps(spec.get("containers", []))
    return {k for k in ("deepep_high_throughput", "deepep_low_latency") if k in text}


def check_driver(cluster, workloads, blocked):
    """`blocked`: [{kernel, branch, why}] the provider's record names (GKE R580 with DeepEP high-throughput)."""
    if not blocked:
        return OK, "no driver branch is known to break this provider's kernels"
    lines, status = [], OK
    for role, spec, _notes in _role_specs(workloads):
        for rule in blocked:
            if rule["kernel"] not in _kernels(spec):
                continue
            candidates = cluster.candidates(role, spec)
            labelled = [(n["metadata"]["name"], next((n["metadata"].get("labels", {})[k] for k in DRIVER_LABELS
                                                      if k in n["metadata"].get("labels", {})), None))
                        for n in candidates]
            known = [(name, major) for name, major in labelled if major is not None]
            bad = [name for name, major in known if str(major) == str(rule["branch"])]
            if bad:
                status = FAIL
                lines.append("%s runs %s, which driver R%s crashes (%s): %s" % (
                    role, rule["kernel"], rule["branch"], rule["why"], ", ".join(bad[:placement.SHOWN_NODES])))
            elif not known:
                status = SKIP if status == OK else status
                lines.append("%s runs %s: no candidate node carries GPU feature discovery's driver labels (%s), so "
                             "R%s cannot be ruled out" % (role, rule["kernel"], DRIVER_LABELS[0], rule["branch"]))
            else:
                lines.append("%s: no candidate node runs driver R%s" % (role, rule["branch"]))
    return status, lines or "no role runs a kernel with a known bad driver branch"


def check_pool_ports(cluster, workloads, selector, namespace, target_ports, own):
    """llm-d#2488: the pool's targetPorts are pool-wide; every pod it selects must listen on each one."""
    lines, status = [], OK
    for role, spec, _notes in _role_specs(workloads):
        missing = [p for p in target_ports if p not in _ports(spec)]
        if missing:
            status = FAIL
            lines.append("%s pods declare no port %s of the pool's targetPorts" % (role, ", ".join(map(str, missing))))
    strays = [p for p in cluster.pods if p["metadata"].get("namespace") == namespace and not own(p)
              and all(p["metadata"].get("labels", {}).get(k) == v for k, v in selector.items())]
    for pod in strays[:placement.SHOWN_NODES]:
        missing = [p for p in target_ports if p not in _ports(pod["spec"])]
        if missing:
            status = FAIL
            lines.append("pod %s is selected by the pool but listens on none of %s: requests routed there fail "
                         "(relabel or remove it)" % (pod["metadata"]["name"], ", ".join(map(str, missing))))
    return status, lines or "every pool pod declares the target ports %s" % ", ".join(map(str, target_ports))


def _env(container, name):
    """The value the container sees: the last entry of that name (as the runtime takes it), else None."""
    found = [e.get("value") for e in container.get("env", []) if e["name"] == name]
    return found[-1] if found else None


def check_keepalive(workloads):
    """llm-d#1564, #1686: the routing sidecar keeps idle connections to prefill's vLLM for 90 s (Go's
    IdleConnTimeout); vLLM's uvicorn closes them after 5 s unless VLLM_HTTP_TIMEOUT_KEEP_ALIVE says longer, and a
    request sent on a closed one fails with a 502."""
    specs = _role_specs(workloads)
    if not any(c.get("name") == SIDECAR for dummy, spec, dummy2 in specs
               for c in spec.get("initContainers", []) + spec.get("containers", [])):
        return OK, "no routing sidecar: no connection is reused across requests"
    lines, status = [], OK
    for role, spec, _notes in specs:
        if role != "prefill":
            continue
        for c in [c for c in spec.get("containers", []) if c.get("name") == "vllm"]:
            value = _env(c, KEEPALIVE_ENV)
            try:
                seconds = int(value) if value is not None else UVICORN_KEEPALIVE
            except ValueError:
                status = FAIL
                lines.append("%s: %s=%r is not a number of seconds" % (role, KEEPALIVE_ENV, value))
                continue
            if seconds <= SIDECAR_IDLE:
                status = FAIL
                lines.append("%s: vLLM closes idle connections after %d s (%s%s), before the routing sidecar's %d s "
                             "idle pool does: reused connections fail with 502 (llm-d#1564). Set %s above %d in "
                             "the role's env" % (role, seconds, KEEPALIVE_ENV, "=%s" % value if value else " unset",
                                                 SIDECAR_IDLE, KEEPALIVE_ENV, SIDECAR_IDLE))
            else:
                lines.append("%s: vLLM keeps idle connections %d s, longer than the routing sidecar's %d s"
                             % (role, seconds, SIDECAR_IDLE))
    return status, lines or "no prefill vLLM container behind the routing sidecar"


def check_nvshmem_roce(workloads, fabric):
    """llm-d#1934: NVSHMEM 3.4.5, which upstream vLLM images pin, cannot create address handles on RoCE ("Unable
    to create ah") without the ibv_ah_attr patch that llm-d's images build in."""
    images = sorted({c["image"] for dummy, spec, dummy2 in _role_specs(workloads)
                     for c in spec.get("containers", []) if c.get("name") == "vllm"})
    foreign = [i for i in images if not i.startswith(LLMD_IMAGES)]
    if not foreign:
        return OK, "the vLLM image is llm-d's (%s), whose NVSHMEM carries the RoCE fix" % ", ".join(images)
    if fabric in ("infiniband", "none"):
        return OK, "the provider's fabric is %s, not RoCE" % fabric
    why = ("%s is not an llm-d image: upstream vLLM images pin NVSHMEM 3.4.5, which fails on RoCE with "
           "'Unable to create ah' (llm-d#1934, vllm#46743)" % ", ".join(foreign))
    if fabric == "roce":
        return FAIL, why + "; use the release's llm-d image, or add 'nvshmem_roce' to preflight_ignore for an " \
                           "image built with the fix"
    return SKIP, why + "; this provider's record does not say whether the fabric is RoCE"


def _ports(spec):
    """The ports a pod declares, its native sidecars' (init containers) included."""
    return {p["containerPort"] for c in spec.get("containers", []) + spec.get("initContainers", [])
            for p in c.get("ports", [])}


def run(client, workloads, namespace, selector, target_ports, driver_blocklist, own_names, fabric=None):
    """[(check, status, detail lines)]. `own_names`: the deployment's LeaderWorkerSet/DisaggregatedSet names,
    whose pods the plan replaces."""
    cluster = Cluster(client)

    def own(pod):
        labels = pod["metadata"].get("labels", {})
        return pod["metadata"].get("namespace") == namespace and (
            labels.get("leaderworkerset.sigs.k8s.io/name") in own_names
            or labels.get("disaggregatedset.x-k8s.io/name") in own_names)

    checks = [("placement", lambda: check_placement(cluster, workloads, own)),
              ("scheduler", lambda: check_scheduler(cluster, workloads)),
              ("gke_rdma_resources", lambda: check_gke_rdma_resources(cluster, workloads)),
              ("gke_networks", lambda: check_gke_networks(cluster, workloads)),
              ("driver", lambda: check_driver(cluster, workloads, driver_blocklist)),
              ("pool_ports", lambda: check_pool_ports(cluster, workloads, selector, namespace, target_ports, own)),
              ("keepalive", lambda: check_keepalive(workloads)),
              ("nvshmem_roce", lambda: check_nvshmem_roce(workloads, fabric))]
    out = []
    for name, check in checks:
        status, detail = check()
        out.append((name, status, [detail] if isinstance(detail, str) else list(detail)))
    return out
