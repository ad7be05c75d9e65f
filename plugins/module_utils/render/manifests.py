# Copyright: llm-d wide-EP collection contributors
# Apache-2.0
"""Kubernetes objects of the wide-EP model servers, rendered from a topology.Topology as the guide's kustomize
build makes them: the base LeaderWorkerSet (this file), the release's launcher (launchers.py: command, env,
ports, probes), the provider's overlay (providers.Overlay, applied by `apply_overlay`), then the inventory's own
env and resources. Numbers that depend on the topology (GPUs, DP sizes, ports, ranks) come from the Topology
object; what differs by release or provider comes from profiles.py and providers.py, never from a branch here.
"""
from __future__ import annotations

from ansible_collections.llmd.wide_ep.plugins.module_utils.k8s.disaggregatedset import DS_API
from ansible_collections.llmd.wide_ep.plugins.module_utils.render import launchers, providers

GUIDE = "wide-ep-lws"
LWS_NAME = {"prefill": "wide-ep-llm-d-prefill", "decode": "wide-ep-llm-d-decode"}
DS_NAME = "wide-ep-lws-nvidia-gpu-vllm"     # modelserver/gpu/vllm/disaggregatedset (v0.9.0)
SERVICE_ACCOUNT = "deepseek-r1"
GATEWAY_NAME = "llm-d-inference-gateway"
ROUTE_NAME = "llm-d-route"
CACHE_MOUNTS = (("dshm", "/dev/shm"), ("hf-cache", "/var/cache/huggingface"), ("jit-cache", "/var/cache/vllm"))


def labels(topo, role):
    return {
        "llm-d.ai/inference-serving": "true",
        "llm-d.ai/guide": GUIDE,
        "llm-d.ai/accelerator-variant": "gpu",
        "llm-d.ai/accelerator-vendor": "nvidia",
        "llm-d.ai/model": topo.model_label,
        "llm-d.ai/role": role.name,
    }


def standard_labels(topo):
    """The guide's four labels of the DisaggregatedSet and its ServiceAccount (scripts/generate-disaggregatedset.py
    STANDARD_LABELS): no role and no inference-serving, which only the pods carry."""
    return {"llm-d.ai/model": topo.model_label, "llm-d.ai/guide": GUIDE, "llm-d.ai/accelerator-variant": "gpu",
            "llm-d.ai/accelerator-vendor": "nvidia"}


def pool_selector(topo):
    """The InferencePool's selector: every model-server pod of this guide and model, both roles."""
    return {"llm-d.ai/inference-serving": "true", "llm-d.ai/guide": GUIDE, "llm-d.ai/model": topo.model_label}


def launcher(role):
    return launchers.get(role.launcher)


def overlay(topo):
    return providers.get(topo.provider).overlay(topo.llmd_version)


def vllm_script(topo, role):
    return launcher(role).script(topo, role)


# --- the base ---------------------------------------------------------------------------------------------
def _probe(path, port, period, failures, initial=None):
    probe = {"httpGet": {"path": path, "port": port}}
    if initial is not None:
        probe["initialDelaySeconds"] = initial
    probe.update({"periodSeconds": period, "timeoutSeconds": 5, "failureThreshold": failures})
    return probe


def base_resources(role):
    gpus = str(role.gpus_per_pod)
    requests = {"cpu": "32", "memory": "512Gi", "ephemeral-storage": "1Ti", "nvidia.com/gpu": gpus}
    limits = {"memory": "512Gi", "ephemeral-storage": "1Ti", "nvidia.com/gpu": gpus}
    if role.name in launcher(role).no_ephemeral_storage:
        requests.pop("ephemeral-storage")
        limits.pop("ephemeral-storage")
    return {"limits": limits, "requests": requests}


def vllm_container(topo, role):
    start = launcher(role)
    return {
        "name": "vllm",
        "image": topo.images.get("vllm_" + role.name, topo.images["vllm"]),
        "imagePullPolicy": "Always",
        "securityContext": {"capabilities": {"add": ["IPC_LOCK", "SYS_RAWIO"]}, "runAsUser": 0, "runAsGroup": 0},
        "command": ["/bin/bash", "-c"],
        "args": [start.script(topo, role)] + list(start.script_args),
        "env": start.container_env(topo, role) + [launchers.env(k, v) for k, v in topo.profile.image_env
                                                  + topo.profile.backported_env.get(role.name, ())],
        "ports": start.ports(topo, role),
        "resources": base_resources(role),
        "volumeMounts": [{"name": n, "mountPath": p} for n, p in CACHE_MOUNTS],
        # 2700 x 1 s: DeepSeek-R1 at DP=16 can take up to 45 minutes to load and warm up.
        "startupProbe": _probe("/health", start.health_port, 1, 2700, initial=0),
        "livenessProbe": _probe("/health", start.health_port, 30, 3),
        "readinessProbe": _probe(start.ready_path, start.health_port, 10, 3),
        # not the guide's (wide_ep_drain_seconds): a deleted pod leaves the endpoint picker at once, and the wait
        # lets vLLM finish the requests it holds before SIGTERM stops it
        **({"lifecycle": {"preStop": {"exec": {"command": ["sleep", str(topo.drain_seconds)]}}}}
           if topo.drain_seconds else {}),
    }


def routing_sidecar(topo, role):
    """Decode's routing proxy: a native sidecar that takes the EPP's request, runs prefill remotely (header
    x-prefiller-host-port) and forwards to the local vLLM."""
    spec = topo.profile.sidecar
    args = ["--port=%d" % role.sidecar_port]
    if role.vllm_port != spec.model_port_default:
        args.append("%s=%d" % (spec.model_port_flag, role.vllm_port))
    if role.per_rank_endpoints:
        args.append("--data-parallel-size=%d" % role.servers_per_pod)  # listens on port+i, forwards to vllm-port+i
    args += ["%s=nixlv2" % spec.connector_flag, "--zap-log-level=1", "--secure-proxy=false",
             "--enable-prefiller-sampling"]
    if role.per_rank_endpoints:
        ports = [{"containerPort": p, "name": spec.port_name % i, "protocol": "TCP"}
                 for i, p in enumerate(role.sidecar_ports)]
    else:
        ports = [{"containerPort": role.sidecar_port, "name": "sidecar", "protocol": "TCP"}]
    sidecar = {
        "name": "routing-proxy",
        "image": topo.images["routing_sidecar"],
        "imagePullPolicy": "Always",
        "restartPolicy": "Always",
        "args": args,
        "ports": ports,
        "resources": {},
        "securityContext": {"allowPrivilegeEscalation": False, "runAsNonRoot": True},
    }
    if not spec.resources:
        del sidecar["resources"]
    return sidecar


def pod_spec(topo, role):
    spec = {"serviceAccountName": SERVICE_ACCOUNT}
    if role.sidecar_ports:
        spec["initContainers"] = [routing_sidecar(topo, role)]
    spec["containers"] = [vllm_container(topo, role)]
    spec["volumes"] = [{"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": "2Gi"}},
                       {"name": "hf-cache", "emptyDir": {}}, {"name": "jit-cache", "emptyDir": {}}]
    if topo.termination_grace_seconds:
        spec["terminationGracePeriodSeconds"] = topo.termination_grace_seconds
    return spec


def base_leaderworkerset(topo, role):
    return {
        "apiVersion": "leaderworkerset.x-k8s.io/v1",
        "kind": "LeaderWorkerSet",
        "metadata": {"name": LWS_NAME[role.name], "namespace": topo.namespace, "labels": labels(topo, role)},
        "spec": {
            "replicas": role.replicas,
            "leaderWorkerTemplate": {
                "size": role.group_size,
                "workerTemplate": {"metadata": {"labels": labels(topo, role)}, "spec": pod_spec(topo, role)},
            },
        },
    }


# --- the provider's overlay, then the inventory's --------------------------------------------------------
def apply_overlay(lws, over, role):
    """Patch a base LeaderWorkerSet as the provider's kustomize overlay does."""
    lws["metadata"]["labels"].update(over.lws_labels)
    template = lws["spec"]["leaderWorkerTemplate"]["workerTemplate"]
    pod = template["spec"]
    vllm = pod["containers"][0]
    annotations = {}
    if over.gke_networking:
        annotations.update({"networking.gke.io/default-interface": "eth0",
                            "networking.gke.io/interfaces": providers.gke_interfaces(role)})
        pod["affinity"] = providers.gke_affinity(role)
    annotations.update(over.pod_annotations)
    if annotations:
        template["metadata"]["annotations"] = annotations
    for entry in over.env + over.role_env.get(role.name, ()):
        name, value = entry
        vllm["env"].append(launchers.env(name, value(role) if callable(value) else value))
    if over.privileged:
        vllm["securityContext"]["privileged"] = True
    res = vllm["resources"]
    if over.gke_rdma_networks:
        # GKE Warden injects both rdma-N and rdma-N.IP from the interfaces annotation; A3 Ultra nodes advertise
        # only .IP, so the legacy request is pinned to 0 (llm-d#1730).
        for i in range(role.gpus_per_pod):
            res["requests"]["networking.gke.io.networks/rdma-%d" % i] = "0"
            res["limits"]["networking.gke.io.networks/rdma-%d" % i] = "0"
    if over.rdma_resource:
        res["requests"][over.rdma_resource] = res["limits"][over.rdma_resource] = "1"
    if over.host_caches:
        caches = dict(zip(("hf-cache", "jit-cache"), over.host_caches, strict=True))
        for vol in pod["volumes"]:
            if vol["name"] in caches:
                vol.pop("emptyDir")
                vol["hostPath"] = {"path": caches[vol["name"]], "type": "DirectoryOrCreate"}
    if over.gib:
        vllm["volumeMounts"].append({"name": "gib", "mountPath": "/usr/local/gib"})
        pod["volumes"].append({"name": "gib", "hostPath": {"path": "/home/kubernetes/bin/gib", "type": ""}})
    if over.affinity:
        pod["affinity"] = dict(over.affinity)
    if over.scheduler:
        pod["schedulerName"] = over.scheduler
    return lws


def apply_inventory(lws, role):
    """The inventory's env wins over the guide's; its sizes too, a limit only where the guide sets one."""
    vllm = lws["spec"]["leaderWorkerTemplate"]["workerTemplate"]["spec"]["containers"][0]
    for name, value in role.env.items():
        vllm["env"] = [e for e in vllm["env"] if e["name"] != name] + [launchers.env(name, value)]
    res = vllm["resources"]
    for key, value in role.resources.items():
        res["requests"][key] = value
        if key in res["limits"]:
            res["limits"][key] = value
    return lws


def leaderworkerset(topo, role):
    return apply_inventory(apply_overlay(base_leaderworkerset(topo, role), overlay(topo), role), role)


def vllm_resources(topo, role):
    """The vLLM container's resources as rendered (base, overlay, inventory)."""
    return leaderworkerset(topo, role)["spec"]["leaderWorkerTemplate"]["workerTemplate"]["spec"][
        "containers"][0]["resources"]


def service_account(topo):
    meta = {"name": SERVICE_ACCOUNT, "namespace": topo.namespace}
    if topo.workload == "disaggregatedset":   # that kustomization's labels transformer reaches only the SA
        meta["labels"] = standard_labels(topo)
    return {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta}


def disaggregated_set(topo):
    """Both roles in one DisaggregatedSet, as the guide's generate-disaggregatedset.py maps its two
    LeaderWorkerSets: a role is the LeaderWorkerSet's labels (over the four standard ones) and its whole spec.
    Each role is that provider's LeaderWorkerSet, overlay and inventory included: upstream's overlay has no
    provider variants (its patches target LeaderWorkerSets only), the collection's records do. The roles set no
    rolloutStrategy: the DisaggregatedSet controller rolls both, a new revision's group beside the old (surge 1)."""
    roles = []
    for role in topo.roles:       # prefill first: the guide's image component patches roles/0 and roles/1
        lws = leaderworkerset(topo, role)
        labels = dict(standard_labels(topo), **lws["metadata"]["labels"])
        labels["llm-d.ai/role"] = role.name
        roles.append({"name": role.name, "metadata": {"labels": labels}, "spec": lws["spec"]})
    return {"apiVersion": DS_API, "kind": "DisaggregatedSet",
            "metadata": {"name": DS_NAME, "namespace": topo.namespace, "labels": standard_labels(topo)},
            "spec": {"roles": roles}}


def pod_monitors(topo):
    """The model servers' PodMonitors (v0.5.0: CoreWeave's overlay; later: guides/wide-ep-lws/monitoring):
    every rank's port where each rank serves, else the server's."""
    if not topo.pod_monitors:
        return []
    out = []
    for role in (topo.decode, topo.prefill):
        selector = {k: v for k, v in labels(topo, role).items() if k in (
            "llm-d.ai/inference-serving", "llm-d.ai/guide", "llm-d.ai/model", "llm-d.ai/role")}
        ports = ["rank%d" % i for i in range(role.servers_per_pod)] if role.per_rank_endpoints else ["vllm"]
        out.append({
            "apiVersion": "monitoring.coreos.com/v1", "kind": "PodMonitor",
            "metadata": {"name": topo.profile.pod_monitor_name % role.name, "namespace": topo.namespace,
                         "labels": dict(selector)},
            "spec": {"selector": {"matchLabels": selector},
                     "podMetricsEndpoints": [{"port": p, "path": "/metrics", "interval": "5s"} for p in ports]},
        })
    return out


def workloads(topo):
    """The model servers' workload objects: the LeaderWorkerSet pair, or the one DisaggregatedSet."""
    if topo.workload == "disaggregatedset":
        return [disaggregated_set(topo)]
    return [leaderworkerset(topo, topo.prefill), leaderworkerset(topo, topo.decode)]


def model_server_objects(topo):
    """What `kubectl apply -k manifests/modelserver/<overlay>` creates, in apply order."""
    return [service_account(topo)] + workloads(topo)
