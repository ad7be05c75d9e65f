# Copyright: llm-d wide-EP collection contributors
# Apache-2.0
"""Kubernetes objects and chart values of the wide-EP deployment, rendered from a topology.Topology.

Field by field this follows llm-d/llm-d@59bebce guides/wide-ep-lws (manifests/modelserver/{base,gke,gke-a4,
coreweave}, dp-aware/, manifests/inferencepool.values.yaml, guides/recipes/gateway). Numbers that depend on
the topology (GPUs, DP sizes, ports, ranks) come from the Topology object, never from here.
"""
from __future__ import annotations

import json
import shlex

GUIDE = "wide-ep-lws"
LWS_NAME = {"prefill": "wide-ep-llm-d-prefill", "decode": "wide-ep-llm-d-decode"}
SERVICE_ACCOUNT = "deepseek-r1"
GATEWAY_NAME = "llm-d-inference-gateway"
ROUTE_NAME = "llm-d-route"
KV_TRANSFER_CONFIG = '{"kv_connector":"NixlConnector","kv_role":"kv_both","kv_load_failure_policy":"fail"}'
CACHE_MOUNTS = (("dshm", "/dev/shm"), ("hf-cache", "/var/cache/huggingface"), ("jit-cache", "/var/cache/vllm"))
HOST_CACHES = {
    "gke": ("/mnt/stateful_partition/kube-ephemeral-ssd/shared_disk/vllm-hf-cache/",
            "/mnt/stateful_partition/kube-ephemeral-ssd/shared_disk/vllm-jit-cache/"),
    "coreweave": ("/mnt/local/hf-cache", "/mnt/local/jit-cache"),
}
HOST_CACHES["gke-a4"] = HOST_CACHES["gke-topology-aware"] = HOST_CACHES["gke"]
RDMA_RESOURCE = {"coreweave": "rdma/ib", "local": "rdma/ib"}


def is_gke(topo):
    return topo.provider in ("gke", "gke-a4", "gke-topology-aware")


def supervised(topo):
    """llm-d v0.8.0: one `vllm serve` per pod under vLLM's DP supervisor."""
    return topo.prefill.launcher == "supervisor"


def labels(topo, role):
    return {
        "llm-d.ai/inference-serving": "true",
        "llm-d.ai/guide": GUIDE,
        "llm-d.ai/accelerator-variant": "gpu",
        "llm-d.ai/accelerator-vendor": "nvidia",
        "llm-d.ai/model": topo.model_label,
        "llm-d.ai/role": role.name,
    }


def pool_selector(topo):
    """The InferencePool's selector: every model-server pod of this guide and model, both roles."""
    return {"llm-d.ai/inference-serving": "true", "llm-d.ai/guide": GUIDE, "llm-d.ai/model": topo.model_label}


# --- vLLM command -----------------------------------------------------------------------------------------
def _eplb_config(topo):
    return json.dumps({"window_size": "1000", "step_interval": "3000",
                       "num_redundant_experts": str(topo.redundant_experts), "log_balancedness": "False"},
                      separators=(",", ":"))


def _q(value):
    return "'%s'" % value


def _group_flags(topo):
    """The DP group's wiring, from LWS's env: its size, this pod's share and first rank, the leader's RPC address,
    and the KV transfer over NIXL. One `vllm serve` per pod (hybrid LB and the v0.8.0 supervisor) passes it so."""
    return [
        "--data-parallel-size $((LWS_GROUP_SIZE * DP_SIZE_LOCAL))",
        "--data-parallel-size-local $DP_SIZE_LOCAL",
        "--data-parallel-address ${LWS_LEADER_ADDRESS}",
        "--data-parallel-rpc-port %d" % topo.ports["dp_rpc"],
        "--data-parallel-start-rank $START_RANK",
        "--kv_transfer_config %s" % _q(KV_TRANSFER_CONFIG),
    ]


def hybrid_flags(topo, role):
    """One `vllm serve` per pod that load-balances its local DP ranks (--data-parallel-hybrid-lb)."""
    flags = [
        "--port %d" % role.vllm_port,
        "--trust-remote-code",
        "--disable-uvicorn-access-log",
        "--data-parallel-hybrid-lb",
    ]
    if role.expert_parallel:
        flags.append("--enable-expert-parallel")
    flags += ["--tensor-parallel-size $TP_SIZE"] + _group_flags(topo) + ["--async-scheduling", "--enable-dbo"]
    if role.expert_parallel:
        flags += ["--enable-eplb", "--eplb-config %s" % _q(_eplb_config(topo))]
    if role.name == "prefill":
        flags += ["--dbo-prefill-token-threshold 32", "--all2all-backend deepep_high_throughput",
                  "--gpu-memory-utilization 0.75"]
    else:
        flags += ["--dbo-decode-token-threshold 32", "--all2all-backend deepep_low_latency",
                  "--kv-cache-memory-bytes=${KV_CACHE_MEMORY_BYTES-}",
                  "--compilation_config %s" % _q('{"cudagraph_mode": "FULL_DECODE_ONLY"}')]
    return flags + [shlex.quote(a) for a in role.extra_args]


def dp_aware_common_flags(topo, role):
    """COMMON_VLLM_ARGS shared by the per-GPU servers of a pod. No --data-parallel-size-local: vLLM asserts it
    is 1 (or unset) whenever --data-parallel-rank is given; DP_SIZE_LOCAL only feeds START_RANK."""
    p = topo.ports
    flags = ["--max-model-len 65536"] if role.name == "prefill" else []
    flags.append("--disable-uvicorn-access-log")
    if role.name == "prefill":
        flags.append("--tensor-parallel-size=%d" % role.tp)
    flags += [
        "--data-parallel-size $((LWS_GROUP_SIZE*DP_SIZE_LOCAL))",
        '--data-parallel-address="${LWS_LEADER_ADDRESS}"',
        "--data-parallel-rpc-port=%d" % p["dp_rpc"],
    ]
    if role.expert_parallel:
        flags.append("--enable-expert-parallel")
    flags.append("--kv_transfer_config %s" % _q(KV_TRANSFER_CONFIG))
    if role.name == "prefill":
        flags.append("--all2all-backend deepep_high_throughput")
    else:
        flags += ["--all2all-backend deepep_low_latency", "--enable-dbo", "--dbo-decode-token-threshold 32"]
        if role.expert_parallel:
            flags += ["--enable-eplb", "--eplb-config %s" % _q(_eplb_config(topo))]
        flags.append("--kv-cache-memory-bytes=${KV_CACHE_MEMORY_BYTES-}")
    return flags + [shlex.quote(a) for a in role.extra_args]


def supervisor_flags(topo, role):
    """The flags of the guide at llm-d/llm-d@7edda66: the supervisor starts one process per local rank, each on
    its own port (--data-parallel-multi-port-external-lb), and reports health on --data-parallel-supervisor-port."""
    prefill = role.name == "prefill"
    flags = ["--port %d" % role.vllm_port]
    if prefill:
        flags.append("--gpu-memory-utilization 0.80")
    flags += ["--disable-access-log-for-endpoints=/health,/metrics", "--data-parallel-multi-port-external-lb",
              ("--data-parallel-supervisor-port %d" if prefill else "--data-parallel-supervisor-port=%d")
              % role.supervisor_port]
    if role.expert_parallel:
        flags.append("--enable-expert-parallel")
    flags.append("--tensor-parallel-size $TP_SIZE")
    if not prefill:
        flags += ["--max-num-batched-tokens ${MAX_TOKENS}", "--max-num-seqs ${MAX_TOKENS}"]
    flags += _group_flags(topo)
    if prefill:
        flags += ["--moe-backend deep_gemm", "--all2all-backend deepep_high_throughput"]
    else:
        flags += ["--enable-dbo", "--dbo-decode-token-threshold 32", "--all2all-backend deepep_low_latency",
                  "--moe-backend deep_gemm"]
    return flags + [shlex.quote(a) for a in role.extra_args]


PREAMBLE = [
    "# Stale NCCL segments from a crashed run fill /dev/shm and turn one crash into a crash loop (llm-d#352).",
    "find /dev/shm -type f -delete",
    "START_RANK=$(( ${LWS_WORKER_INDEX:-0} * DP_SIZE_LOCAL ))",
]


def vllm_script(topo, role):
    if role.dp_mode == "hybrid" or role.launcher == "supervisor":
        lines = PREAMBLE + ["exec vllm serve %s \\" % topo.model]
        flags = hybrid_flags(topo, role) if role.dp_mode == "hybrid" else supervisor_flags(topo, role)
        lines += ["  %s%s" % (f, " \\" if i < len(flags) - 1 else "") for i, f in enumerate(flags)]
        return "\n".join(lines) + "\n"
    lines = PREAMBLE + ["COMMON_VLLM_ARGS=("] + ["  %s" % f for f in dp_aware_common_flags(topo, role)] + [")"]
    for i, port in enumerate(role.vllm_ports):
        lines.append('CUDA_VISIBLE_DEVICES="%d" vllm serve %s --host=0.0.0.0 --port=%d '
                     '--data-parallel-rank=$((START_RANK + %d)) "${COMMON_VLLM_ARGS[@]}" &' % (i, topo.model, port, i))
    lines.append("wait")
    return "\n".join(lines) + "\n"


# --- containers -------------------------------------------------------------------------------------------
def _env(name, value):
    return {"name": name, "value": str(value)}


HF_TOKEN_ENV = {"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {"name": "llm-d-hf-token", "key": "HF_TOKEN"}}}
POD_IP_ENV = {"name": "VLLM_NIXL_SIDE_CHANNEL_HOST", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}
CACHE_ENV = (("CUDA_CACHE_PATH", "/var/cache/vllm/cuda"), ("CCACHE_DIR", "/var/cache/vllm/ccache"),
             ("VLLM_CACHE_ROOT", "/var/cache/vllm/vllm"), ("FLASHINFER_WORKSPACE_BASE", "/var/cache/vllm/flashinfer"),
             ("HF_HUB_CACHE", "/var/cache/huggingface"))
NVSHMEM_ENV = (("NVSHMEM_REMOTE_TRANSPORT", "ibgda"), ("NVSHMEM_IB_ENABLE_IBGDA", "true"),
               ("NVSHMEM_BOOTSTRAP_UID_SOCK_IFNAME", "eth0"), ("GLOO_SOCKET_IFNAME", "eth0"),
               ("NCCL_SOCKET_IFNAME", "eth0"), ("VLLM_LOGGING_LEVEL", "INFO"))


def supervisor_env(topo, role):
    """The env of the guide at llm-d/llm-d@7edda66, in its order, then the provider overlay's."""
    local = [("DP_SIZE_LOCAL", role.dp_local), ("TP_SIZE", role.tp), ("TRITON_LIBCUDA_PATH", "/usr/lib64"),
             ("VLLM_SKIP_P2P_CHECK", "1")]
    if role.name == "prefill":
        pairs = [("VLLM_ENGINE_READY_TIMEOUT_S", "3000"), ("VLLM_MEMORY_PROFILER_ESTIMATE_CUDAGRAPHS", "1"),
                 ("VLLM_RANDOMIZE_DP_DUMMY_INPUTS", "1")] + local + [("NVIDIA_GDRCOPY", "enabled")] + \
            list(NVSHMEM_ENV) + [("VLLM_HTTP_TIMEOUT_KEEP_ALIVE", "120")]
    else:
        pairs = [("VLLM_MEMORY_PROFILER_ESTIMATE_CUDAGRAPHS", "1"), ("MAX_TOKENS", "256")] + local + [
            ("VLLM_RANDOMIZE_DP_DUMMY_INPUTS", "1"), ("VLLM_USE_DEEP_GEMM", "1"), ("NVIDIA_GDRCOPY", "enabled"),
            ("NVSHMEM_SYMMETRIC_SIZE", "16G")] + list(NVSHMEM_ENV)
    env = [HF_TOKEN_ENV] + [_env(k, v) for k, v in pairs] + [POD_IP_ENV] + [_env(k, v) for k, v in CACHE_ENV]
    if topo.ports["nixl"] != 5600:
        env.append(_env("VLLM_NIXL_SIDE_CHANNEL_PORT", topo.ports["nixl"]))
    if topo.provider == "coreweave":
        env += [_env("NCCL_IB_HCA", "ibp"), _env("NVSHMEM_HCA_PREFIX", "ibp")]
    if is_gke(topo):
        mapping = ",".join("%d:mlx5_%d:1" % (i, i) for i in range(role.gpus_per_pod))
        env += [_env("NCCL_TUNER_PLUGIN", "none"), _env("NCCL_NET_PLUGIN", ""),   # no gIB plugins on GKE
                _env("DEEP_EP_DEVICE_TO_HCA_MAPPING", mapping), _env("NVSHMEM_DISABLED_GDRCOPY", "true")]
    for name, value in role.env.items():   # the inventory's env wins over the guide's
        env = [e for e in env if e["name"] != name] + [_env(name, value)]
    return env


def vllm_env(topo, role):
    if role.launcher == "supervisor":
        return supervisor_env(topo, role)
    env = [_env("DP_SIZE_LOCAL", role.dp_local), _env("TP_SIZE", role.tp),
           _env("TRITON_LIBCUDA_PATH", "/usr/lib64"), _env("VLLM_SKIP_P2P_CHECK", "1")]
    if role.dp_mode == "hybrid":
        env.append(_env("VLLM_RANDOMIZE_DP_DUMMY_INPUTS", "1"))
    env += [
        _env("VLLM_USE_DEEP_GEMM", "1"), _env("NVIDIA_GDRCOPY", "enabled"),
        _env("NVSHMEM_REMOTE_TRANSPORT", "ibgda"), _env("NVSHMEM_IB_ENABLE_IBGDA", "true"),
        _env("NVSHMEM_BOOTSTRAP_UID_SOCK_IFNAME", "eth0"), _env("GLOO_SOCKET_IFNAME", "eth0"),
        _env("NCCL_SOCKET_IFNAME", "eth0"), _env("VLLM_LOGGING_LEVEL", "INFO"),
        {"name": "VLLM_NIXL_SIDE_CHANNEL_HOST", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
        _env("CUDA_CACHE_PATH", "/var/cache/vllm/cuda"), _env("CCACHE_DIR", "/var/cache/vllm/ccache"),
        _env("VLLM_CACHE_ROOT", "/var/cache/vllm/vllm"),
        _env("FLASHINFER_WORKSPACE_BASE", "/var/cache/vllm/flashinfer"),
        _env("HF_HUB_CACHE", "/var/cache/huggingface"),
    ]
    if topo.ports["nixl"] != 5600:
        env.append(_env("VLLM_NIXL_SIDE_CHANNEL_PORT", topo.ports["nixl"]))
    if role.name == "decode":
        # vLLM's default is 256; above 510 NVSHMEM_QP_DEPTH must be >= 2*(chunk+1).
        env.append(_env("VLLM_MOE_DP_CHUNK_SIZE", "384"))
    if is_gke(topo):
        mapping = ",".join("%d:mlx5_%d:1" % (i, i) for i in range(role.gpus_per_pod))
        env += [_env("DEEP_EP_DEVICE_TO_HCA_MAPPING", mapping),
                _env("BASH_ENV", "/usr/local/gib/scripts/set_nccl_env.sh"),
                _env("NVSHMEM_DISABLED_GDRCOPY", "true")]
        if topo.provider == "gke-a4" and role.name == "decode":
            # B200 OOMs with --gpu-memory-utilization (vllm#25597): size the KV cache explicitly.
            env.append(_env("KV_CACHE_MEMORY_BYTES", "63000000000"))
    if topo.provider == "coreweave":
        env += [_env("HF_HUB_DISABLE_XET", "1"), _env("NCCL_IB_HCA", "ibp"), _env("NVSHMEM_HCA_PREFIX", "ibp")]
    for name, value in role.env.items():   # the inventory's env wins over the guide's
        env = [e for e in env if e["name"] != name] + [_env(name, value)]
    return env


def vllm_ports(topo, role):
    if role.launcher == "supervisor":
        # decode's sidecar holds the rank names (the pool's target ports); its vLLM ranks are vllm-rankN
        name = "rank%d" if role.name == "prefill" else "vllm-rank%d"
        return [{"containerPort": p, "name": name % i, "protocol": "TCP"} for i, p in enumerate(role.vllm_ports)] + \
            [{"containerPort": role.supervisor_port, "name": "supervisor", "protocol": "TCP"}]
    if role.dp_mode == "dp-aware":
        return [{"containerPort": p, "name": "rank%d" % i, "protocol": "TCP"} for i, p in enumerate(role.vllm_ports)]
    return [{"containerPort": role.vllm_port, "name": "vllm", "protocol": "TCP"},
            {"containerPort": topo.ports["nixl"], "name": "nixl", "protocol": "TCP"}]


def vllm_resources(topo, role):
    gpus = str(role.gpus_per_pod)
    requests = {"cpu": "32", "memory": "512Gi", "ephemeral-storage": "1Ti", "nvidia.com/gpu": gpus}
    limits = {"memory": "512Gi", "ephemeral-storage": "1Ti", "nvidia.com/gpu": gpus}
    if role.dp_mode == "dp-aware" and role.name == "decode" and role.launcher != "supervisor":
        requests.pop("ephemeral-storage")
        limits.pop("ephemeral-storage")
    if is_gke(topo) and role.launcher == "supervisor":
        # GKE Warden injects both rdma-N and rdma-N.IP from the interfaces annotation; A3 Ultra nodes advertise
        # only .IP, so the legacy request is pinned to 0 (llm-d#1730).
        for i in range(role.gpus_per_pod):
            requests["networking.gke.io.networks/rdma-%d" % i] = limits["networking.gke.io.networks/rdma-%d" % i] = "0"
    rdma = RDMA_RESOURCE.get(topo.provider)
    if rdma:
        requests[rdma] = limits[rdma] = "1"
    for key, value in role.resources.items():   # the user's sizes; a limit only where the guide sets one
        requests[key] = value
        if key in limits:
            limits[key] = value
    return {"limits": limits, "requests": requests}


def _probe(path, port, period, failures, initial=None):
    probe = {"httpGet": {"path": path, "port": port}}
    if initial is not None:
        probe["initialDelaySeconds"] = initial
    probe.update({"periodSeconds": period, "timeoutSeconds": 5, "failureThreshold": failures})
    return probe


def vllm_container(topo, role):
    port = "supervisor" if role.launcher == "supervisor" else "rank0" if role.dp_mode == "dp-aware" else "vllm"
    gib = is_gke(topo) and role.launcher != "supervisor"   # v0.8.0 turns GKE's NCCL plugins off: no gIB
    security = {"capabilities": {"add": ["IPC_LOCK", "SYS_RAWIO"]}, "runAsUser": 0, "runAsGroup": 0}
    if is_gke(topo):
        security["privileged"] = True  # GPU-initiated RDMA on GKE; elsewhere PeerMappingOverride=1 does it
    mounts = [{"name": n, "mountPath": p} for n, p in CACHE_MOUNTS]
    if gib:
        mounts.append({"name": "gib", "mountPath": "/usr/local/gib"})
    args = [vllm_script(topo, role)]
    if role.launcher == "per-gpu":
        args.append("vllm-parallel-launcher")  # $0 of the bash -c script
    image = topo.images["vllm_decode"] if role.name == "decode" and "vllm_decode" in topo.images else \
        topo.images["vllm"]
    ready = "/readyz" if role.launcher == "supervisor" else "/v1/models"
    return {
        "name": "vllm",
        "image": image,
        "imagePullPolicy": "Always",
        "securityContext": security,
        "command": ["/bin/bash", "-c"],
        "args": args,
        "env": vllm_env(topo, role),
        "ports": vllm_ports(topo, role),
        "resources": vllm_resources(topo, role),
        "volumeMounts": mounts,
        # 2700 x 1 s: DeepSeek-R1 at DP=16 can take up to 45 minutes to load and warm up.
        "startupProbe": _probe("/health", port, 1, 2700, initial=0),
        "livenessProbe": _probe("/health", port, 30, 3),
        "readinessProbe": _probe(ready, port, 10, 3),
    }


def routing_sidecar(topo, role):
    """Decode's routing proxy: a native sidecar that takes the EPP's request, runs prefill remotely (header
    x-prefiller-host-port) and forwards to the local vLLM."""
    supervisor = role.launcher == "supervisor"
    args = ["--port=%d" % role.sidecar_port, "--vllm-port=%d" % role.vllm_port]
    if role.dp_mode == "dp-aware":
        args.append("--data-parallel-size=%d" % role.servers_per_pod)  # listens on port+i, forwards to vllm-port+i
    args += ["--kv-connector=nixlv2" if supervisor else "--connector=nixlv2", "--zap-log-level=1",
             "--secure-proxy=false", "--enable-prefiller-sampling"]
    if role.dp_mode == "dp-aware":
        ports = [{"containerPort": p, "name": ("rank%d" if supervisor else "proxy-rank%d") % i, "protocol": "TCP"}
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
    if supervisor:
        del sidecar["resources"]   # the v0.8.0 guide sets none
    return sidecar


def volumes(topo):
    host = HOST_CACHES.get(topo.provider)
    vols = [{"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": "2Gi"}}]
    for name, path in zip(("hf-cache", "jit-cache"), host or (None, None), strict=True):
        if path:
            vols.append({"name": name, "hostPath": {"path": path, "type": "DirectoryOrCreate"}})
        else:
            vols.append({"name": name, "emptyDir": {}})
    if is_gke(topo) and not supervised(topo):
        vols.append({"name": "gib", "hostPath": {"path": "/home/kubernetes/bin/gib", "type": ""}})
    return vols


def gke_interfaces(role):
    nets = [{"interfaceName": "eth0", "network": "default"}]
    nets += [{"interfaceName": "eth%d" % (i + 2), "network": "rdma-%d" % i} for i in range(role.gpus_per_pod)]
    return json.dumps(nets, separators=(",", ":"))


def pod_spec(topo, role):
    spec = {"serviceAccountName": SERVICE_ACCOUNT}
    if role.name == "decode":
        spec["initContainers"] = [routing_sidecar(topo, role)]
    spec["containers"] = [vllm_container(topo, role)]
    spec["volumes"] = volumes(topo)
    if is_gke(topo):
        terms = [{"weight": w, "podAffinityTerm": {
            "labelSelector": {"matchLabels": {"llm-d.ai/role": role.name}},
            "matchLabelKeys": ["component"], "topologyKey": key}}
            for w, key in ((2, "cloud.google.com/gce-topology-block"), (1, "cloud.google.com/gce-topology-subblock"))]
        spec["affinity"] = {"podAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": terms}}
    if topo.provider in ("coreweave", "local") and not supervised(topo):
        # The sizing does not fit H100 memory.
        spec["affinity"] = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchExpressions": [{"key": "gpu.nvidia.com/model", "operator": "In", "values": ["H200"]}]}]}}}
    if topo.provider == "coreweave" and not supervised(topo):
        spec["schedulerName"] = "custom-binpack-scheduler"
    return spec


def leaderworkerset(topo, role):
    meta = {"labels": labels(topo, role)}
    lws_labels = labels(topo, role)
    if is_gke(topo):
        meta["annotations"] = {"networking.gke.io/default-interface": "eth0",
                               "networking.gke.io/interfaces": gke_interfaces(role)}
    if topo.provider == "gke-topology-aware":
        # Kueue admits each group whole inside one GCE topology block.
        lws_labels["kueue.x-k8s.io/queue-name"] = "default"
        meta["annotations"].update({"kueue.x-k8s.io/podset-required-topology": "cloud.google.com/gce-topology-block",
                                    "kueue.x-k8s.io/podset-group-name": "llm-d-wide-ep"})
    return {
        "apiVersion": "leaderworkerset.x-k8s.io/v1",
        "kind": "LeaderWorkerSet",
        "metadata": {"name": LWS_NAME[role.name], "namespace": topo.namespace, "labels": lws_labels},
        "spec": {
            "replicas": role.replicas,
            "leaderWorkerTemplate": {
                "size": role.group_size,
                "workerTemplate": {"metadata": meta, "spec": pod_spec(topo, role)},
            },
        },
    }


def service_account(topo):
    return {"apiVersion": "v1", "kind": "ServiceAccount",
            "metadata": {"name": SERVICE_ACCOUNT, "namespace": topo.namespace}}


def pod_monitors(topo):
    if not topo.pod_monitors:
        return []
    out = []
    for role in (topo.decode, topo.prefill):
        selector = {k: v for k, v in labels(topo, role).items() if k in (
            "llm-d.ai/inference-serving", "llm-d.ai/guide", "llm-d.ai/model", "llm-d.ai/role")}
        ports = ["rank%d" % i for i in range(role.servers_per_pod)] if role.dp_mode == "dp-aware" else ["vllm"]
        if supervised(topo):   # guides/wide-ep-lws/monitoring (v0.8.0): every rank port, named after the role
            out.append({
                "apiVersion": "monitoring.coreos.com/v1", "kind": "PodMonitor",
                "metadata": {"name": role.name, "namespace": topo.namespace, "labels": dict(selector)},
                "spec": {"selector": {"matchLabels": selector}, "podMetricsEndpoints": [
                    {"port": "rank%d" % i, "path": "/metrics", "interval": "5s"} for i in range(role.servers_per_pod)]},
            })
            continue
        out.append({
            "apiVersion": "monitoring.coreos.com/v1", "kind": "PodMonitor",
            "metadata": {"name": "ms-wide-ep-llm-d-modelservice-%s-podmonitor" % role.name,
                         "namespace": topo.namespace, "labels": dict(selector)},
            "spec": {"selector": {"matchLabels": selector},
                     "podMetricsEndpoints": [{"port": p, "path": "/metrics", "interval": "5s"} for p in ports]},
        })
    return out


def model_server_objects(topo):
    """What `kubectl apply -k manifests/modelserver/<overlay>` creates, in apply order."""
    return [service_account(topo), leaderworkerset(topo, topo.prefill), leaderworkerset(topo, topo.decode)]
