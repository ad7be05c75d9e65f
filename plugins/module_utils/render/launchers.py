# Copyright: llm-d wide-EP collection contributors
# Apache-2.0
"""How each llm-d release starts vLLM in a model-server pod: its command line, env, container ports and probes.
One launcher per way of starting it (a release profile names which, per DP mode); the flags and env are tables
in the guide's order, so a new release with new flags is a new table, not a branch.

A flag or env entry is a string with %(name)s fields (filled from `fields()`), `EP(...)` for what only an
expert-parallel role passes, `GROUP` for the DP group's wiring, `NIXL_PORT` for the side-channel port when it is
not vLLM's default. Env entries are (name, value) pairs or ready-made env dicts (secret and field refs)."""
from __future__ import annotations

import json
import shlex

from ansible_collections.llmd.wide_ep.plugins.module_utils.render import topology

KV_TRANSFER_CONFIG = '{"kv_connector":"NixlConnector","kv_role":"kv_both","kv_load_failure_policy":"fail"}'
GROUP = "<group>"
NIXL_PORT = "<nixl-port>"
PREAMBLE = [
    "# Stale NCCL segments from a crashed run fill /dev/shm and turn one crash into a crash loop (llm-d#352).",
    "find /dev/shm -type f -delete",
    "START_RANK=$(( ${LWS_WORKER_INDEX:-0} * DP_SIZE_LOCAL ))",
]


class EP(str):
    """A flag only an expert-parallel role passes."""


# The DP group's wiring, from LWS's env: its size, this pod's share and first rank, the leader's RPC address,
# and the KV transfer over NIXL. One `vllm serve` per pod (hybrid LB and the supervisor) passes it so.
GROUP_FLAGS = (
    "--data-parallel-size $((LWS_GROUP_SIZE * DP_SIZE_LOCAL))",
    "--data-parallel-size-local $DP_SIZE_LOCAL",
    "--data-parallel-address ${LWS_LEADER_ADDRESS}",
    "--data-parallel-rpc-port %(dp_rpc)s",
    "--data-parallel-start-rank $START_RANK",
    "--kv_transfer_config '%(kv_transfer_config)s'",
)
EPLB = (EP("--enable-eplb"), EP("--eplb-config '%(eplb_config)s'"))

HF_TOKEN_ENV = {"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {"name": "llm-d-hf-token", "key": "HF_TOKEN"}}}
POD_IP_ENV = {"name": "VLLM_NIXL_SIDE_CHANNEL_HOST", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}
LOCAL_ENV = (("DP_SIZE_LOCAL", "%(dp_local)s"), ("TP_SIZE", "%(tp)s"), ("TRITON_LIBCUDA_PATH", "/usr/lib64"),
             ("VLLM_SKIP_P2P_CHECK", "1"))
NVSHMEM_ENV = (("NVSHMEM_REMOTE_TRANSPORT", "ibgda"), ("NVSHMEM_IB_ENABLE_IBGDA", "true"),
               ("NVSHMEM_BOOTSTRAP_UID_SOCK_IFNAME", "eth0"), ("GLOO_SOCKET_IFNAME", "eth0"),
               ("NCCL_SOCKET_IFNAME", "eth0"), ("VLLM_LOGGING_LEVEL", "INFO"))
CACHE_ENV = (("CUDA_CACHE_PATH", "/var/cache/vllm/cuda"), ("CCACHE_DIR", "/var/cache/vllm/ccache"),
             ("VLLM_CACHE_ROOT", "/var/cache/vllm/vllm"), ("FLASHINFER_WORKSPACE_BASE", "/var/cache/vllm/flashinfer"),
             ("HF_HUB_CACHE", "/var/cache/huggingface"))


def fields(topo, role):
    """The values a flag or env table may name."""
    eplb = json.dumps({"window_size": "1000", "step_interval": "3000",
                       "num_redundant_experts": str(topo.redundant_experts), "log_balancedness": "False"},
                      separators=(",", ":"))
    return {"vllm_port": role.vllm_port, "dp_rpc": topo.ports["dp_rpc"], "tp": role.tp, "dp_local": role.dp_local,
            "supervisor_port": role.supervisor_port, "eplb_config": eplb, "kv_transfer_config": KV_TRANSFER_CONFIG}


def expand_flags(table, topo, role):
    values = fields(topo, role)
    out = []
    for entry in table:
        if entry == GROUP:
            out += [f % values for f in GROUP_FLAGS]
        elif not isinstance(entry, EP) or role.expert_parallel:
            out.append(entry % values)
    return out + [shlex.quote(a) for a in role.extra_args]


def expand_env(table, topo, role):
    values = fields(topo, role)
    out = []
    for entry in table:
        if entry == NIXL_PORT:
            if topo.ports["nixl"] != topology.DEFAULT_PORTS["nixl"]:
                out.append(env("VLLM_NIXL_SIDE_CHANNEL_PORT", topo.ports["nixl"]))
        elif isinstance(entry, dict):
            out.append(dict(entry))
        else:
            out.append(env(entry[0], entry[1] % values))
    return out


def env(name, value):
    return {"name": name, "value": str(value)}


class Launcher:
    name = ""
    flags = {}              # role name -> flag table
    env = {}                # role name -> env table
    health_port = ""        # the container port the probes ask
    ready_path = "/v1/models"
    script_args = ()        # after the bash -c script ($0, ...)
    no_ephemeral_storage = ()   # roles whose guide requests no ephemeral-storage

    def script(self, topo, role):
        flags = expand_flags(self.flags[role.name], topo, role)
        lines = PREAMBLE + ["exec vllm serve %s \\" % topo.model]
        lines += ["  %s%s" % (f, " \\" if i < len(flags) - 1 else "") for i, f in enumerate(flags)]
        return "\n".join(lines) + "\n"

    def container_env(self, topo, role):
        return expand_env(self.env[role.name], topo, role)

    def ports(self, topo, role):
        raise NotImplementedError


_V050_ENV = (("VLLM_USE_DEEP_GEMM", "1"), ("NVIDIA_GDRCOPY", "enabled")) + NVSHMEM_ENV + (POD_IP_ENV,) + \
    CACHE_ENV + (NIXL_PORT,)
# vLLM's default is 256; above 510 NVSHMEM_QP_DEPTH must be >= 2*(chunk+1).
_V050_DECODE_ENV = (("VLLM_MOE_DP_CHUNK_SIZE", "384"),)


class HybridLB(Launcher):
    """llm-d v0.5.0, hybrid: one `vllm serve` per pod that load-balances its local DP ranks."""

    name = "hybrid-lb"
    _head = ("--port %(vllm_port)s", "--trust-remote-code", "--disable-uvicorn-access-log",
             "--data-parallel-hybrid-lb", EP("--enable-expert-parallel"), "--tensor-parallel-size $TP_SIZE", GROUP,
             "--async-scheduling", "--enable-dbo") + EPLB
    flags = {
        "prefill": _head + ("--dbo-prefill-token-threshold 32", "--all2all-backend deepep_high_throughput",
                            "--gpu-memory-utilization 0.75"),
        "decode": _head + ("--dbo-decode-token-threshold 32", "--all2all-backend deepep_low_latency",
                           "--kv-cache-memory-bytes=${KV_CACHE_MEMORY_BYTES-}",
                           "--compilation_config '{\"cudagraph_mode\": \"FULL_DECODE_ONLY\"}'"),
    }
    _env = LOCAL_ENV + (("VLLM_RANDOMIZE_DP_DUMMY_INPUTS", "1"),) + _V050_ENV
    env = {"prefill": _env, "decode": _env + _V050_DECODE_ENV}
    health_port = "vllm"

    def ports(self, topo, role):
        return [{"containerPort": role.vllm_port, "name": "vllm", "protocol": "TCP"},
                {"containerPort": topo.ports["nixl"], "name": "nixl", "protocol": "TCP"}]


class PerGPU(Launcher):
    """llm-d v0.5.0, DP-aware: one `vllm serve` per GPU (CUDA_VISIBLE_DEVICES=i), each its own DP rank and port.
    No --data-parallel-size-local: vLLM asserts it is 1 (or unset) whenever --data-parallel-rank is given;
    DP_SIZE_LOCAL only feeds START_RANK."""

    name = "per-gpu"
    _group = ("--data-parallel-size $((LWS_GROUP_SIZE*DP_SIZE_LOCAL))",
              '--data-parallel-address="${LWS_LEADER_ADDRESS}"', "--data-parallel-rpc-port=%(dp_rpc)s",
              EP("--enable-expert-parallel"), "--kv_transfer_config '%(kv_transfer_config)s'")
    flags = {
        "prefill": ("--max-model-len 65536", "--disable-uvicorn-access-log", "--tensor-parallel-size=%(tp)s") +
        _group + ("--all2all-backend deepep_high_throughput",),
        "decode": ("--disable-uvicorn-access-log",) + _group + (
            "--all2all-backend deepep_low_latency", "--enable-dbo", "--dbo-decode-token-threshold 32") + EPLB + (
            "--kv-cache-memory-bytes=${KV_CACHE_MEMORY_BYTES-}",),
    }
    env = {"prefill": LOCAL_ENV + _V050_ENV, "decode": LOCAL_ENV + _V050_ENV + _V050_DECODE_ENV}
    health_port = "rank0"
    script_args = ("vllm-parallel-launcher",)
    no_ephemeral_storage = ("decode",)

    def script(self, topo, role):
        lines = PREAMBLE + ["COMMON_VLLM_ARGS=("] + \
            ["  %s" % f for f in expand_flags(self.flags[role.name], topo, role)] + [")"]
        for i, port in enumerate(role.vllm_ports):
            lines.append('CUDA_VISIBLE_DEVICES="%d" vllm serve %s --host=0.0.0.0 --port=%d '
                         '--data-parallel-rank=$((START_RANK + %d)) "${COMMON_VLLM_ARGS[@]}" &'
                         % (i, topo.model, port, i))
        lines.append("wait")
        return "\n".join(lines) + "\n"

    def ports(self, topo, role):
        return [{"containerPort": p, "name": "rank%d" % i, "protocol": "TCP"} for i, p in enumerate(role.vllm_ports)]


class Supervisor(Launcher):
    """llm-d main at 7edda66 and v0.9.0: one `vllm serve` per pod under vLLM's DP supervisor, which starts one
    process per local rank, each on its own port (--data-parallel-multi-port-external-lb), and reports health on
    --data-parallel-supervisor-port."""

    name = "supervisor"
    _ports = ("--disable-access-log-for-endpoints=/health,/metrics", "--data-parallel-multi-port-external-lb")
    flags = {
        "prefill": ("--port %(vllm_port)s", "--gpu-memory-utilization 0.80") + _ports + (
            "--data-parallel-supervisor-port %(supervisor_port)s", EP("--enable-expert-parallel"),
            "--tensor-parallel-size $TP_SIZE", GROUP, "--moe-backend deep_gemm",
            "--all2all-backend deepep_high_throughput"),
        "decode": ("--port %(vllm_port)s",) + _ports + (
            "--data-parallel-supervisor-port=%(supervisor_port)s", EP("--enable-expert-parallel"),
            "--tensor-parallel-size $TP_SIZE", "--max-num-batched-tokens ${MAX_TOKENS}",
            "--max-num-seqs ${MAX_TOKENS}", GROUP, "--enable-dbo", "--dbo-decode-token-threshold 32",
            "--all2all-backend deepep_low_latency", "--moe-backend deep_gemm"),
    }
    _tail = (("NVIDIA_GDRCOPY", "enabled"),) + NVSHMEM_ENV
    env = {
        "prefill": (HF_TOKEN_ENV, ("VLLM_ENGINE_READY_TIMEOUT_S", "3000"),
                    ("VLLM_MEMORY_PROFILER_ESTIMATE_CUDAGRAPHS", "1"), ("VLLM_RANDOMIZE_DP_DUMMY_INPUTS", "1"))
        + LOCAL_ENV + _tail + (("VLLM_HTTP_TIMEOUT_KEEP_ALIVE", "120"), POD_IP_ENV) + CACHE_ENV + (NIXL_PORT,),
        "decode": (HF_TOKEN_ENV, ("VLLM_MEMORY_PROFILER_ESTIMATE_CUDAGRAPHS", "1"), ("MAX_TOKENS", "256"))
        + LOCAL_ENV + (("VLLM_RANDOMIZE_DP_DUMMY_INPUTS", "1"), ("VLLM_USE_DEEP_GEMM", "1"),
                       ("NVIDIA_GDRCOPY", "enabled"), ("NVSHMEM_SYMMETRIC_SIZE", "16G"))
        + NVSHMEM_ENV + (POD_IP_ENV,) + CACHE_ENV + (NIXL_PORT,),
    }
    health_port = "supervisor"
    ready_path = "/readyz"

    def ports(self, topo, role):
        # with a routing sidecar, the sidecar holds the rank names (the pool's target ports)
        name = "vllm-rank%d" if role.sidecar_ports else "rank%d"
        return [{"containerPort": p, "name": name % i, "protocol": "TCP"} for i, p in enumerate(role.vllm_ports)] + \
            [{"containerPort": role.supervisor_port, "name": "supervisor", "protocol": "TCP"}]


LAUNCHERS = {launcher.name: launcher for launcher in (HybridLB(), PerGPU(), Supervisor())}


def get(name):
    return LAUNCHERS[name]
