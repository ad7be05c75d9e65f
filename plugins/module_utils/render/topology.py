# Copyright: llm-d wide-EP collection contributors
# Apache-2.0
"""The one topology model of a wide-EP deployment: DP/EP/TP sizes, ranks, ports, labels and selectors.

Everything else (the manifests, the InferencePool values, roles, modules, the export) asks this module; nothing
else computes a rank, a port or a DP size. Validation collects every problem and raises one TopologyError that
names the inventory variable, what is wrong and what would be valid, before anything talks to a cluster.
"""
from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field

from ansible.module_utils.common.validation import check_type_bool, check_type_int

from ansible_collections.llmd.wide_ep.plugins.module_utils.errors import InvalidInput
from ansible_collections.llmd.wide_ep.plugins.module_utils.render import gateways, profiles, providers

PROVIDERS = tuple(providers.PROVIDERS)
DP_MODES = ("hybrid", "dp-aware")
GATEWAYS = tuple(gateways.GATEWAYS)
ROLES = ("prefill", "decode")
MULTI_PORT_GATEWAYS = {g.name: g.multi_port for g in gateways.GATEWAYS.values() if g.multi_port}

DEFAULT_ROLE = {
    "replicas": 1,        # LWS replicas: independent DP groups
    "group_size": 2,      # pods per group (LWS size)
    "dp_local": 8,        # DP ranks per pod = GPUs per pod at TP=1
    "tp": 1,
    "expert_parallel": True,
    "dp_size": None,      # optional; when given it must equal group_size * dp_local
    "extra_args": [],
    "env": {},
    "resources": {},      # cpu / memory / ephemeral-storage of the vLLM container, over the guide's
}
# The vLLM container's requests that a node's size may call for changing (the GPUs and RDMA devices follow from
# the topology and the provider). A Kubernetes quantity: digits, an optional fraction, an optional suffix.
RESOURCE_KEYS = ("cpu", "memory", "ephemeral-storage")
QUANTITY = re.compile(r"^[0-9]+(\.[0-9]+)?(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$")
# The wide_ep_* settings a user may leave out, and what they default to: the guide's values. The defaults role
# (roles/wide_ep_defaults) writes them for Ansible; tests/unit/render/test_defaults.py keeps the two equal.
DEFAULT_SETTINGS = {
    "llmd_version": profiles.DEFAULT_VERSION, "provider": "coreweave", "dp_mode": None, "gateway": "istio",
    "allow_unverified_gateway": False, "allow_floating_tags": False,
    "namespace": "llm-d-wide-ep", "model": "deepseek-ai/DeepSeek-R1-0528", "model_label": "DeepSeek-R1-0528",
    "images": {}, "prefill": {}, "decode": {}, "ports": {}, "node_gpus": 8, "routed_experts": 256,
    "redundant_experts": 32, "release": None, "epp_prometheus": True, "pod_monitors": None,
    "workload": "leaderworkersets", "drain_seconds": 30,
}
# vLLM's own shutdown after SIGTERM, added to the drain for the pod's terminationGracePeriodSeconds
SHUTDOWN_SECONDS = 30
# How the model servers run: two LeaderWorkerSets, or one DisaggregatedSet holding both roles (LWS >= 0.9.0).
WORKLOADS = ("leaderworkersets", "disaggregatedset")
DEFAULT_PORTS = {"prefill": 8000, "decode": 8200, "sidecar": 8000, "dp_rpc": 5555, "nixl": 5600}
# A Kubernetes InferencePool accepts 1-8 unique target ports (GAIE PR #1653).
MAX_TARGET_PORTS = 8

# Flags whose value the model derives per rank or per group. Users may not set them in extra_args: a second
# copy on one rank and not another is exactly the mismatch that hangs vLLM's DP coordinator (vllm#26187).
OWNED_FLAGS = (
    "--port", "--host", "--data-parallel-size", "--data-parallel-size-local", "--data-parallel-rank",
    "--data-parallel-start-rank", "--data-parallel-address", "--data-parallel-rpc-port",
    "--data-parallel-hybrid-lb", "--tensor-parallel-size", "--enable-expert-parallel",
    "--data-parallel-supervisor-port", "--data-parallel-multi-port-external-lb",
)
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


class TopologyError(InvalidInput):
    """All validation problems of one inventory, as one message."""

    def __init__(self, problems):
        self.problems = list(dict.fromkeys(problems))
        count = len(self.problems)
        lines = ["invalid wide-EP topology (%d problem%s):" % (count, "" if count == 1 else "s")]
        lines += ["  - %s" % p for p in self.problems]
        super().__init__("\n".join(lines), problems=self.problems)


@dataclass
class Role:
    """One role (prefill or decode): a LeaderWorkerSet of `replicas` groups of `group_size` pods."""

    name: str
    replicas: int
    group_size: int
    dp_local: int
    tp: int
    expert_parallel: bool
    dp_mode: str
    vllm_port: int
    sidecar_port: int | None
    extra_args: list = field(default_factory=list)
    env: dict = field(default_factory=dict)
    launcher: str = "hybrid-lb"   # hybrid-lb (one server, --data-parallel-hybrid-lb), per-gpu, supervisor
    resources: dict = field(default_factory=dict)   # cpu / memory / ephemeral-storage over the guide's

    @property
    def supervisor_port(self):
        """vLLM's DP supervisor (main-7edda66 and later): one port above the ranks' (8008 prefill, 8208 decode)."""
        return self.vllm_port + self.dp_local if self.launcher == "supervisor" else None

    @property
    def dp_size(self):
        return self.group_size * self.dp_local

    @property
    def per_rank_endpoints(self):
        """DP-aware: the EPP sees every rank as its own endpoint (one port each)."""
        return self.dp_mode == "dp-aware"

    @property
    def ep_size(self):
        return self.dp_size * self.tp if self.expert_parallel else 1

    @property
    def gpus_per_pod(self):
        return self.dp_local * self.tp

    @property
    def gpus(self):
        return self.replicas * self.group_size * self.gpus_per_pod

    @property
    def servers_per_pod(self):
        """vLLM API servers in one pod: one in hybrid mode, one per local DP rank in DP-aware mode."""
        return self.dp_local if self.per_rank_endpoints else 1

    def start_rank(self, worker_index):
        """First DP rank served by pod `worker_index` of a group (LWS_WORKER_INDEX * DP_SIZE_LOCAL)."""
        return worker_index * self.dp_local

    def ranks(self, worker_index):
        start = self.start_rank(worker_index)
        return list(range(start, start + self.dp_local))

    @property
    def vllm_ports(self):
        return [self.vllm_port + i for i in range(self.servers_per_pod)]

    @property
    def sidecar_ports(self):
        if self.sidecar_port is None:
            return []
        return [self.sidecar_port + i for i in range(self.servers_per_pod)]

    @property
    def endpoint_ports(self):
        """Ports the InferencePool targets on this role's pods: the sidecar's where there is one."""
        return self.sidecar_ports or self.vllm_ports

    def nixl_ports(self, nixl_base, worker_index):
        """NIXL side-channel ports pod `worker_index` binds: vLLM uses base + global DP rank * TP per rank."""
        return [nixl_base + rank * self.tp for rank in self.ranks(worker_index)]


@dataclass
class Topology:
    provider: str
    dp_mode: str
    gateway: str
    namespace: str
    model: str
    model_label: str
    images: dict
    node_gpus: int
    routed_experts: int
    redundant_experts: int
    ports: dict
    prefill: Role
    decode: Role
    release: str = "llm-d-infpool"
    llmd_version: str = profiles.DEFAULT_VERSION
    epp_prometheus: bool = True
    pod_monitors: bool = False
    warnings: tuple = ()            # what the settings ask that still works but should change (a renamed release)
    workload: str = "leaderworkersets"
    drain_seconds: int = 0          # the vLLM container's preStop wait; 0: the guide's (no preStop)

    @property
    def termination_grace_seconds(self):
        """The drain, then vLLM's shutdown; None: the guide's (Kubernetes' 30 s)."""
        return self.drain_seconds + SHUTDOWN_SECONDS if self.drain_seconds else None

    @property
    def profile(self):
        return profiles.get(self.llmd_version)

    @property
    def epp_name(self):
        """The EPP Deployment and Service: the inferencepool chart names them <release>-epp."""
        return "%s-epp" % self.release

    @property
    def roles(self):
        return (self.prefill, self.decode)

    @property
    def target_ports(self):
        """InferencePool target ports. Prefill and decode endpoints must share them: the EPP picks both."""
        return self.prefill.endpoint_ports

    @property
    def gpus(self):
        return sum(r.gpus for r in self.roles)

    def summary(self):
        out = {"provider": self.provider, "dp_mode": self.dp_mode, "gateway": self.gateway,
               "namespace": self.namespace, "model": self.model, "gpus": self.gpus, "target_ports": self.target_ports,
               "release": self.release, "llmd_version": self.llmd_version, "workload": self.workload}
        for r in self.roles:
            out[r.name] = {
                "replicas": r.replicas, "group_size": r.group_size, "dp_size": r.dp_size, "dp_local": r.dp_local,
                "tp": r.tp, "ep_size": r.ep_size, "gpus_per_pod": r.gpus_per_pod, "gpus": r.gpus,
                "vllm_ports": r.vllm_ports, "sidecar_ports": r.sidecar_ports, "endpoint_ports": r.endpoint_ports,
                "containers": 2 if r.sidecar_ports else 1, "launcher": r.launcher,
                "supervisor_port": r.supervisor_port,
                "start_ranks": [r.start_rank(w) for w in range(r.group_size)],
            }
        return out


# A pinned image: a digest, or a tag that names a release (1.2.3, v0.10.0, 0.26.0-gpu-py312) or a commit build
# (sha-a1bcf21). Anything else - no tag (latest), latest, main, nightly, v0 - moves under the same name.
PINNED_TAG = re.compile(r"^(v?[0-9]+\.[0-9]+\.[0-9]+([-.+][0-9A-Za-z.-]+)?|sha-[0-9a-f]{7,40})$")


def floating(image):
    """True when an image reference does not pin one image."""
    if "@sha256:" in image:
        return False
    name, sep, tag = image.rpartition(":")
    if not sep or "/" in tag:   # no tag at all (a registry port is not a tag)
        return True
    return not PINNED_TAG.match(tag)


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _flag_name(arg):
    return arg.split("=", 1)[0] if isinstance(arg, str) else arg


# Settings typed bool or int: a string (every `-e key=value`) is read as Ansible reads such an option.
BOOL_SETTINGS = ("allow_unverified_gateway", "epp_prometheus", "pod_monitors", "allow_floating_tags")
INT_SETTINGS = ("node_gpus", "routed_experts", "redundant_experts", "drain_seconds")
ROLE_BOOLS = ("expert_parallel",)
ROLE_INTS = ("replicas", "group_size", "dp_local", "tp", "dp_size")


def _as_ansible(value, check):
    """A string as Ansible reads a bool or int option ('true', 'yes', 'off', '4'); anything else unchanged, so
    the model's own check names it."""
    if not isinstance(value, str):
        return value
    try:
        return check(value)
    except TypeError:
        return value


def _read_as_ansible(s):
    out = dict(s)
    for key in BOOL_SETTINGS + INT_SETTINGS:
        if key in out:
            out[key] = _as_ansible(out[key], check_type_bool if key in BOOL_SETTINGS else check_type_int)
    if isinstance(out.get("ports"), dict):
        out["ports"] = {k: _as_ansible(v, check_type_int) for k, v in out["ports"].items()}
    for role in ROLES:
        if isinstance(out.get(role), dict):
            out[role] = dict(out[role], **{k: _as_ansible(v, check_type_bool) for k, v in out[role].items()
                                           if k in ROLE_BOOLS},
                             **{k: _as_ansible(v, check_type_int) for k, v in out[role].items() if k in ROLE_INTS})
    return out


def build(settings):
    """Validate the inventory settings (the `wide_ep_*` variables, without prefix) and build the Topology."""
    s = _read_as_ansible(settings or {})
    problems, warnings = [], []

    def check_choice(key, choices):
        value = s.get(key)
        if not isinstance(value, str) or value not in choices:   # a list or mapping is no name (nor hashable)
            problems.append("wide_ep_%s: %r is not one of %s" % (key, value, ", ".join(choices)))

    # a list or mapping where a name belongs: one problem, then the default, so the checks below can compare it
    for key, choices in (("llmd_version", profiles.PROFILES), ("provider", PROVIDERS), ("dp_mode", DP_MODES),
                         ("gateway", GATEWAYS), ("workload", WORKLOADS)):
        if s.get(key) is not None and not isinstance(s[key], str):
            check_choice(key, choices)
            s[key] = DEFAULT_SETTINGS[key]
    version = s.get("llmd_version") or profiles.DEFAULT_VERSION
    if version in profiles.RENAMED:
        version, warning = profiles.RENAMED[version]
        warnings.append(warning)
    if version not in profiles.PROFILES:
        problems.append("wide_ep_llmd_version: %r is not one of %s" % (version, ", ".join(profiles.PROFILES)))
        version = profiles.DEFAULT_VERSION
    profile = profiles.get(version)
    if s.get("dp_mode") is None:
        s["dp_mode"] = profile.dp_modes[0]
    if s.get("provider") in profile.removed:
        problems.append("wide_ep_provider: %s" % profile.removed[s["provider"]])
    elif s.get("provider") in PROVIDERS and s["provider"] not in profile.providers:
        problems.append("wide_ep_provider: %r is not a provider of llm-d %s; valid: %s" % (
            s["provider"], version, ", ".join(profile.providers)))
    else:
        check_choice("provider", PROVIDERS)
    if s.get("dp_mode") in DP_MODES and s["dp_mode"] not in profile.dp_modes:
        problems.append("wide_ep_dp_mode: %r is not in the wide-EP guide of llm-d %s, which runs only %s (vLLM's DP "
                        "supervisor, one `vllm serve` per pod); set wide_ep_dp_mode: %s or leave it unset" % (
                            s["dp_mode"], version, ", ".join(profile.dp_modes), profile.dp_modes[0]))
    else:
        check_choice("dp_mode", DP_MODES)
    if s.get("gateway") in GATEWAYS and s["gateway"] not in profile.gateways:
        problems.append("wide_ep_gateway: %r has no recipe in the wide-EP guide of llm-d %s; valid: %s" % (
            s["gateway"], version, ", ".join(profile.gateways)))
    else:
        check_choice("gateway", GATEWAYS)
    workload = s.get("workload") or "leaderworkersets"
    if workload in WORKLOADS and workload not in profile.workloads:
        problems.append("wide_ep_workload: %r is not in the wide-EP guide of llm-d %s, which runs only %s; the guides "
                        "of %s have it (wide_ep_llmd_version), or leave wide_ep_workload unset" % (
                            workload, version, ", ".join(profile.workloads),
                            ", ".join(v for v, p in profiles.PROFILES.items() if workload in p.workloads)))
    elif workload not in WORKLOADS:
        problems.append("wide_ep_workload: %r is not one of %s" % (workload, ", ".join(WORKLOADS)))
    namespace = s.get("namespace")
    if not isinstance(namespace, str) or not DNS_LABEL.match(namespace) or len(namespace) > 63:
        problems.append("wide_ep_namespace: %r is not a valid namespace name (lowercase letters, digits and '-', "
                        "at most 63 characters)" % (namespace,))
    release = s.get("release") or profile.release   # the guide's release name unless the inventory names one
    if not isinstance(release, str) or not DNS_LABEL.match(release) or len(release) > 53:
        problems.append("wide_ep_release: %r is not a valid helm release name (lowercase letters, digits and '-', "
                        "at most 53 characters; it also names the InferencePool and <release>-epp)" % (release,))
    for key in ("model", "model_label"):
        if not isinstance(s.get(key), str) or not s.get(key):
            problems.append("wide_ep_%s: must be a non-empty string" % key)
    label_value = r"^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"
    if isinstance(s.get("model_label"), str) and not re.match(label_value, s["model_label"]):
        problems.append("wide_ep_model_label: %r is not a valid label value (at most 63 alphanumerics, '-', "
                        "'_' or '.')" % s["model_label"])

    overlay = providers.get(s["provider"]).overlay(version) if s.get("provider") in PROVIDERS else providers.NONE
    images = dict(profile.images, **overlay.images)
    user_images = s.get("images") or {}
    if not isinstance(user_images, dict):
        problems.append("wide_ep_images: must be a mapping with keys %s" % ", ".join(profile.images))
        user_images = {}
    for key, value in user_images.items():
        if key not in profile.images:
            problems.append("wide_ep_images.%s: unknown image of llm-d %s; valid keys are %s" % (
                key, version, ", ".join(profile.images)))
        elif not isinstance(value, str) or not value or " " in value:
            problems.append("wide_ep_images.%s: %r is not an image reference" % (key, value))
        elif floating(value) and s.get("allow_floating_tags") is not True:
            problems.append("wide_ep_images.%s: %r is a floating tag, a different image on every pull (two pods of "
                            "one group can differ, a rollback does not return to what ran); use a release tag or a "
                            "digest, e.g. %s (llm-d %s's), or set wide_ep_allow_floating_tags: true" % (
                                key, value, images[key], version))
        else:
            images[key] = value

    ports = dict(DEFAULT_PORTS)
    valid = {"ports": True, "experts": True}  # what the cross-role checks may trust
    given = s.get("ports") or {}
    if not isinstance(given, dict):
        problems.append("wide_ep_ports: must be a mapping of %s to port numbers, got %r" % (
            ", ".join(DEFAULT_PORTS), given))
        valid["ports"], given = False, {}
    for key, value in given.items():
        if key not in DEFAULT_PORTS:
            problems.append("wide_ep_ports.%s: unknown port; valid keys are %s" % (key, ", ".join(DEFAULT_PORTS)))
        elif not _is_int(value) or not 1 <= value <= 65535:
            problems.append("wide_ep_ports.%s: %r is not a port number (1-65535)" % (key, value))
            valid["ports"] = False
        else:
            ports[key] = value

    for key in ("epp_prometheus", "pod_monitors", "allow_floating_tags"):
        if s.get(key) is not None and not isinstance(s.get(key), bool):
            problems.append("wide_ep_%s: %r must be true or false%s" % (
                key, s[key], " (or null: the provider's overlay decides)" if key == "pod_monitors" else ""))
    pod_monitors = s.get("pod_monitors")
    if not isinstance(pod_monitors, bool):
        # v0.5.0: only the CoreWeave overlay has PodMonitors; later: the optional guides/wide-ep-lws/monitoring
        pod_monitors = overlay.pod_monitors
    node_gpus = s.get("node_gpus", DEFAULT_SETTINGS["node_gpus"])
    if not _is_int(node_gpus) or node_gpus < 1:
        problems.append("wide_ep_node_gpus: %r must be a positive integer (GPUs per node)" % (node_gpus,))
        node_gpus = 8
    drain = s.get("drain_seconds", DEFAULT_SETTINGS["drain_seconds"])
    if not _is_int(drain) or not 0 <= drain <= 3600:
        problems.append("wide_ep_drain_seconds: %r must be an integer from 0 (the guide's: no preStop) to 3600 "
                        "(seconds a stopping vLLM keeps serving what it has, after the endpoint picker stopped "
                        "sending to it)" % (drain,))
        drain = 0
    experts = {"routed": s.get("routed_experts", DEFAULT_SETTINGS["routed_experts"]),
               "redundant": s.get("redundant_experts", DEFAULT_SETTINGS["redundant_experts"])}
    for key, value in experts.items():
        if not _is_int(value) or value < 0 or (key == "routed" and value == 0):
            problems.append("wide_ep_%s_experts: %r must be a %s integer" % (
                key, value, "positive" if key == "routed" else "non-negative"))
            experts[key] = 0
            valid["experts"] = False

    dp_mode = s.get("dp_mode") if s.get("dp_mode") in profile.dp_modes else profile.dp_modes[0]
    allow_unverified = s.get("allow_unverified_gateway", False)
    if not isinstance(allow_unverified, bool):
        problems.append("wide_ep_allow_unverified_gateway: %r must be true or false" % (allow_unverified,))
    elif dp_mode == "dp-aware" and s.get("gateway") in GATEWAYS and s.get("gateway") not in MULTI_PORT_GATEWAYS \
            and not allow_unverified:
        problems.append(
            "wide_ep_gateway: %s with wide_ep_dp_mode: dp-aware is refused: DP-aware routing needs a gateway that "
            "sends requests to every InferencePool targetPort, proven only for %s (open bugs elsewhere: %s, where "
            "87.5 %% of requests failed); use wide_ep_gateway: istio, or wide_ep_dp_mode: hybrid, or set "
            "wide_ep_allow_unverified_gateway: true to accept the risk" % (
                s["gateway"], MULTI_PORT_GATEWAYS["istio"], gateways.MULTI_PORT_BUGS))
    roles = {}
    for name in ROLES:
        before = len(problems)
        roles[name] = _build_role(name, s.get(name), dp_mode, ports, node_gpus, problems, profile.launchers[dp_mode])
        valid[name] = len(problems) == before
    # Whatever else failed, what the roles must agree on is checked among the values that are valid.
    _check_cross_role(roles, experts, ports, problems, valid)
    if problems:
        raise TopologyError(problems)
    return Topology(
        provider=s["provider"], dp_mode=dp_mode, gateway=s["gateway"], namespace=namespace, model=s["model"],
        model_label=s["model_label"], images=images, node_gpus=node_gpus, routed_experts=experts["routed"],
        redundant_experts=experts["redundant"], ports=ports, prefill=roles["prefill"], decode=roles["decode"],
        release=release, llmd_version=version, epp_prometheus=s.get("epp_prometheus") is not False,
        pod_monitors=pod_monitors, warnings=tuple(warnings), workload=workload, drain_seconds=drain)


def _build_role(name, raw, dp_mode, ports, node_gpus, problems, launcher):
    var = "wide_ep_%s" % name
    raw = {} if raw is None else raw
    if not isinstance(raw, dict):
        problems.append("%s: must be a mapping of %s" % (var, ", ".join(DEFAULT_ROLE)))
        raw = {}
    spec = copy.deepcopy(DEFAULT_ROLE)
    for key, value in raw.items():
        if key not in DEFAULT_ROLE:
            problems.append("%s.%s: unknown setting; valid settings are %s" % (var, key, ", ".join(DEFAULT_ROLE)))
        else:
            spec[key] = value
    for key in ("replicas", "group_size", "dp_local", "tp"):
        value = spec[key]
        if not _is_int(value) or value < 1:
            hint = ("; a role with no group serves nothing (the EPP would route to no %s pod): to take the "
                    "deployment down use playbooks/teardown.yml" % name) if key == "replicas" and value == 0 else ""
            problems.append("%s.%s: %r must be an integer >= 1%s" % (var, key, value, hint))
            spec[key] = 1
    if not isinstance(spec["expert_parallel"], bool):
        problems.append("%s.expert_parallel: %r must be true or false" % (var, spec["expert_parallel"]))
        spec["expert_parallel"] = True
    dp_size = spec["group_size"] * spec["dp_local"]
    if spec["dp_size"] is not None and spec["dp_size"] != dp_size:
        problems.append("%s.dp_size: %r does not equal group_size (%d) x dp_local (%d) = %d; set dp_size to %d or "
                        "change group_size/dp_local" % (var, spec["dp_size"], spec["group_size"], spec["dp_local"],
                                                        dp_size, dp_size))
    gpus_per_pod = spec["dp_local"] * spec["tp"]
    if gpus_per_pod > node_gpus:
        problems.append("%s: dp_local (%d) x tp (%d) = %d GPUs per pod does not fit a node of wide_ep_node_gpus=%d; "
                        "use at most %d GPUs per pod and raise group_size instead" % (
                            var, spec["dp_local"], spec["tp"], gpus_per_pod, node_gpus, node_gpus))
    if dp_mode == "dp-aware" and spec["tp"] != 1:
        problems.append("%s.tp: %r, but DP-aware mode runs one vLLM server per GPU (CUDA_VISIBLE_DEVICES=i); use "
                        "tp: 1 or wide_ep_dp_mode: hybrid" % (var, spec["tp"]))
    if dp_mode == "dp-aware" and spec["dp_local"] > MAX_TARGET_PORTS:
        problems.append("%s.dp_local: %d servers per pod need %d InferencePool target ports; an InferencePool "
                        "accepts at most %d" % (var, spec["dp_local"], spec["dp_local"], MAX_TARGET_PORTS))

    extra = spec["extra_args"]
    if not isinstance(extra, list) or not all(isinstance(a, str) for a in extra):
        problems.append("%s.extra_args: must be a list of strings (one vLLM argument each)" % var)
        extra = []
    for arg in extra:
        flag = _flag_name(arg).replace("_", "-")
        if flag in OWNED_FLAGS:
            problems.append("%s.extra_args: %r is derived from the topology for every rank and may not be set by "
                            "hand; change %s.group_size/dp_local/tp or wide_ep_ports instead" % (var, arg, var))
    env = spec["env"]
    if not isinstance(env, dict):
        problems.append("%s.env: must be a mapping of NAME: value" % var)
        env = {}
    for key, value in env.items():
        if not isinstance(key, str) or not ENV_NAME.match(key):
            problems.append("%s.env: %r is not a valid environment variable name" % (var, key))
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            problems.append("%s.env.%s: %r must be a string or number (quote booleans)" % (var, key, value))
    resources = spec["resources"]
    if not isinstance(resources, dict):
        problems.append("%s.resources: must be a mapping of %s to quantities" % (var, ", ".join(RESOURCE_KEYS)))
        resources = {}
    for key, value in resources.items():
        if key not in RESOURCE_KEYS:
            problems.append("%s.resources.%s: not a resource the collection sets; valid keys are %s (GPUs and RDMA "
                            "devices follow from dp_local, tp and the provider)" % (var, key, ", ".join(RESOURCE_KEYS)))
        elif isinstance(value, bool) or not QUANTITY.match(str(value)):
            problems.append("%s.resources.%s: %r is not a Kubernetes quantity such as \"16\", \"500m\" or \"256Gi\""
                            % (var, key, value))
    sidecar = ports["sidecar"] if name == "decode" else None
    return Role(name=name, replicas=spec["replicas"], group_size=spec["group_size"], dp_local=spec["dp_local"],
                tp=spec["tp"], expert_parallel=spec["expert_parallel"], dp_mode=dp_mode,
                vllm_port=ports[name], sidecar_port=sidecar, extra_args=list(extra),
                env={k: str(v) for k, v in env.items()}, launcher=launcher,
                resources={k: str(v) for k, v in resources.items() if k in RESOURCE_KEYS})


def _check_cross_role(roles, experts, ports, problems, trusted):
    """The checks across settings, each on values that passed their own check (trusted: key -> bool), so a
    substituted default never produces a problem of its own."""
    for role in roles.values():
        if not trusted[role.name]:
            continue
        var = "wide_ep_%s" % role.name
        total = experts["routed"] + experts["redundant"]
        if trusted["experts"] and role.expert_parallel and total % role.ep_size:
            valid = [n for n in range(experts["redundant"], experts["redundant"] + role.ep_size + 1)
                     if (experts["routed"] + n) % role.ep_size == 0][:1]
            problems.append(
                "%s: routed (%d) + redundant (%d) experts = %d is not divisible by the EP size %d "
                "(dp_size %d x tp %d); set wide_ep_redundant_experts to %s or change the group" % (
                    var, experts["routed"], experts["redundant"], total, role.ep_size, role.dp_size, role.tp,
                    valid[0] if valid else "a multiple that fits"))
        for worker in range(role.group_size if trusted["ports"] else 0):
            _check_pod_ports(role, worker, ports, problems)
    prefill, decode = roles["prefill"], roles["decode"]
    comparable = trusted["ports"] and trusted["prefill"] and trusted["decode"]
    if comparable and prefill.endpoint_ports != decode.endpoint_ports:
        problems.append("wide_ep_ports: the InferencePool's target ports must match on prefill (%s) and decode (%s) "
                        "pods; set wide_ep_ports.prefill equal to wide_ep_ports.sidecar and give both roles the same "
                        "dp_local in DP-aware mode" % (prefill.endpoint_ports, decode.endpoint_ports))


def _check_pod_ports(role, worker, ports, problems):
    used = {}
    for label, pod_ports in (("vLLM", role.vllm_ports), ("routing sidecar", role.sidecar_ports),
                             ("NIXL side channel", role.nixl_ports(ports["nixl"], worker)),
                             ("DP RPC", [ports["dp_rpc"]] if worker == 0 else []),
                             ("DP supervisor", [role.supervisor_port] if role.supervisor_port else [])):
        for port in pod_ports:
            if port > 65535:
                problems.append("wide_ep_%s: the %s would need port %d (above 65535); lower wide_ep_ports" % (
                    role.name, label, port))
            elif port in used:
                problems.append("wide_ep_%s: port %d of pod %d is used by both the %s and the %s; change "
                                "wide_ep_ports" % (role.name, port, worker, used[port], label))
            used.setdefault(port, label)
