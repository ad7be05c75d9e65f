# Copyright: llm-d wide-EP collection contributors
# Apache-2.0
"""The llm-d releases this collection reproduces (`wide_ep_llmd_version`): per release, the guide's commit, the
providers and DP modes it has, how vLLM is launched (launchers.py), its images, the routing sidecar, the router
chart that fronts the pool and the CRDs it needs. A profile is data: the renderer reads it and never tests a
release's name. What a provider's overlay changes per release is in providers.py."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Sidecar:
    """How the release's routing sidecar (decode's native sidecar) is called."""

    connector_flag: str             # --connector (llm-d-routing-sidecar) or --kv-connector (llm-d-router)
    port_name: str                  # its per-rank ports in DP-aware mode, %d = rank
    resources: bool                 # the guide writes `resources: {}`
    model_port_flag: str = "--vllm-port"   # how it is told the local vLLM's port
    model_port_default: int | None = None  # the sidecar's own default: the flag is passed only for another port


@dataclass(frozen=True)
class Profile:
    version: str
    guide: str                      # the pinned guide the profile reproduces
    providers: tuple
    dp_modes: tuple
    launchers: dict                 # dp_mode -> how vLLM starts: hybrid-lb, per-gpu, supervisor
    images: dict
    router: str                     # inferencepool (GAIE chart) or llm-d-router (standalone / gateway charts)
    release: str                    # the guide's helm release name (it names the EPP: <release>-epp)
    gateways: tuple                 # wide_ep_gateway values the release has a recipe for
    inference_crds: tuple           # (GAIE release, its manifest file) the guide applies
    gateway_api: str                # the Gateway API release whose standard CRDs the guide applies
    charts: dict                    # chart name -> OCI reference of what fronts the pool
    chart_version: str
    sidecar: Sidecar
    pod_monitor_name: str           # the model servers' PodMonitor, %s = role
    removed: dict = field(default_factory=dict)           # provider -> why this release has no such overlay
    image_env: tuple = ()           # (name, value) the release's image component appends to the vLLM container
    # role -> (name, value): a fix the release's guide lacks and its later guides carry, added to the vLLM
    # container (README "Will it run?" lists each)
    backported_env: dict = field(default_factory=dict)
    router_values: dict = field(default_factory=dict)     # merged over the router chart's values (helm -f order)
    # wide_ep_workload values: the LeaderWorkerSet pair, and where the guide has it, one DisaggregatedSet
    workloads: tuple = ("leaderworkersets",)
    # The router's plugin that keeps a request on one DisaggregatedSet revision across prefill and decode during
    # a rollout (llm-d-router v0.10.0, Alpha); None where the release's router has none.
    revision_screener: str | None = None

    @property
    def chart_makes_route(self):
        """llm-d-router's gateway chart makes the HTTPRoute (httpRoute.create); with GAIE's chart the collection
        does."""
        return self.router == "llm-d-router"


PROFILES = {
    "v0.5.0": Profile(
        version="v0.5.0",
        guide="llm-d/llm-d@59bebce guides/wide-ep-lws",
        providers=("gke", "gke-a4", "coreweave", "baremetal", "local"),
        dp_modes=("hybrid", "dp-aware"),
        launchers={"hybrid": "hybrid-lb", "dp-aware": "per-gpu"},
        images={"vllm": "ghcr.io/llm-d/llm-d-cuda:v0.5.0",
                "routing_sidecar": "ghcr.io/llm-d/llm-d-routing-sidecar:v0.5.0",
                "epp": "ghcr.io/llm-d/llm-d-inference-scheduler:v0.5.0"},
        router="inferencepool",
        release="llm-d-infpool",
        inference_crds=("v1.3.0", "manifests.yaml"),
        gateway_api="v1.4.0",
        charts={"inferencepool": "oci://registry.k8s.io/gateway-api-inference-extension/charts/inferencepool"},
        chart_version="v1.3.0",
        sidecar=Sidecar(connector_flag="--connector", port_name="proxy-rank%d", resources=True),
        pod_monitor_name="ms-wide-ep-llm-d-modelservice-%s-podmonitor",
        # llm-d#1564, #1686: uvicorn's 5 s keep-alive under the sidecar's 90 s idle pool resets reused
        # connections (502s); the guide sets 120 on prefill from v0.8.0
        backported_env={"prefill": (("VLLM_HTTP_TIMEOUT_KEEP_ALIVE", "120"),)},
        gateways=("istio", "kgateway", "kgateway-openshift", "gke-l7-regional-external-managed", "gke-l7-rilb",
                  "none"),
    ),
    # llm-d main at 7edda66 (2026-06), after the v0.8.0 tag: not llm-d v0.8.0, whose guide runs the dev build
    # on both roles (only main moved prefill to llm-d-cuda:v0.8.0, llm-d#1937). Named for what it reproduces.
    "main-7edda66": Profile(
        version="main-7edda66",
        guide="llm-d/llm-d@7edda66 guides/wide-ep-lws",
        providers=("coreweave", "gke", "gke-topology-aware", "dgx-cloud-gb200", "baremetal", "local"),
        dp_modes=("dp-aware",),
        launchers={"dp-aware": "supervisor"},
        # The guide pins decode to a development build of the CUDA image at that commit: reproduced as pinned.
        # The EPP image is the router chart's own (ROUTER_EPP_IMAGE:v0.9.0 in guides/env.sh): the guide sets none.
        images={"vllm": "ghcr.io/llm-d/llm-d-cuda:v0.8.0",
                "vllm_decode": "ghcr.io/llm-d/llm-d-cuda-dev:sha-a1bcf21",
                "routing_sidecar": "ghcr.io/llm-d/llm-d-router-disagg-sidecar:v0.9.0"},
        router="llm-d-router",
        release="wide-ep-lws",
        inference_crds=("v1.5.0", "v1-manifests.yaml"),   # guides/env.sh GAIE_VERSION
        gateway_api="v1.4.0",
        # none: the standalone chart (EPP with its own Envoy, the guide's default); the others: the gateway chart
        charts={"llm-d-router-standalone": "oci://ghcr.io/llm-d/charts/llm-d-router-standalone",
                "llm-d-router-gateway": "oci://ghcr.io/llm-d/charts/llm-d-router-gateway"},
        chart_version="v0.9.0",
        # decode's sidecar holds the rank names (the pool's target ports); its vLLM ranks are vllm-rankN
        sidecar=Sidecar(connector_flag="--kv-connector", port_name="rank%d", resources=False),
        pod_monitor_name="%s",     # guides/wide-ep-lws/monitoring
        gateways=("none", "istio", "gke-l7-regional-external-managed", "gke-l7-rilb"),
        removed={"gke-a4": "the wide-EP guide of llm-d main-7edda66 (llm-d/llm-d@7edda66) has no gke-a4 (B200) "
                           "overlay: its base was deleted in 46a675d; use wide_ep_llmd_version: v0.5.0 or v0.9.0 for "
                           "gke-a4"},
    ),
}
PROFILES["v0.9.0"] = Profile(
    version="v0.9.0",
    guide="llm-d/llm-d@e3dbeca1 guides/wide-ep-lws",      # release-0.9 (2026-08-18): no tag is published
    providers=("coreweave", "gke", "gke-topology-aware", "gke-a4", "dgx-cloud-gb200", "baremetal", "local"),
    dp_modes=("dp-aware",),
    launchers={"dp-aware": "supervisor"},
    # Both roles run llm-d-cuda:v0.9.0 (vLLM 0.26.0). The guide takes the sidecar from its nightly component
    # (:main, a floating tag); pinned here to v0.10.0, llm-d-router's release of v0.9.0 (guides/env.sh).
    images={"vllm": "ghcr.io/llm-d/llm-d-cuda:v0.9.0",
            "routing_sidecar": "ghcr.io/llm-d/llm-d-router-disagg-sidecar:v0.10.0"},
    router="llm-d-router",
    release="wide-ep-lws",
    inference_crds=("v1.5.0", "v1-manifests.yaml"),
    gateway_api="v1.5.1",                                 # guides/env.sh GATEWAY_API_VERSION
    charts=dict(PROFILES["main-7edda66"].charts),
    chart_version="v0.10.0",
    # v0.10.0's sidecar forwards to 8200 by default (llm-d-router#1723) and names the flag --model-server-port
    sidecar=Sidecar(connector_flag="--kv-connector", port_name="rank%d", resources=False,
                    model_port_flag="--model-server-port", model_port_default=8200),
    pod_monitor_name="%s",
    gateways=PROFILES["main-7edda66"].gateways,
    # recipes/modelserver/components/images/gpu-vllm/llm-d/release: torch 2.11 needs a USER (vllm#44548)
    image_env=(("USER", "llm-d"),),
    router_values={"router": {"proxy": {"proxyType": "envoy"}}},   # recipes/router/base.values.yaml
    # modelserver/gpu/vllm/disaggregatedset (0216b3f2): both roles in one object, needs LWS >= 0.9.0
    workloads=("leaderworkersets", "disaggregatedset"),
    # router v0.10.0 pkg/epp/framework/plugins/requestcontrol/screener/disaggregatedsetrollout (llm-d-router#2141);
    # the guide's main after v0.9.0 (llm-d#2379) makes it the EPP's first plugin
    revision_screener="disaggregatedset-rollout-screener",
)
DEFAULT_VERSION = "v0.5.0"

# Names a profile went by: still accepted (topology.build resolves them, with one warning saying what the name
# means now).
RENAMED = {
    "v0.8.0": ("main-7edda66",
               "wide_ep_llmd_version: v0.8.0 now means main-7edda66, the profile it always was: llm-d/llm-d main at "
               "7edda66 (prefill llm-d-cuda:v0.8.0, decode llm-d-cuda-dev:sha-a1bcf21), not llm-d's v0.8.0 tag, "
               "whose guide runs llm-d-cuda-dev:sha-a1bcf21 on both roles. Set main-7edda66 to keep this "
               "deployment as it is, or v0.9.0 for the current release."),
}

# The vLLM each pinned image ships (llm-d's docker/common-versions at the image's tag): the version whose parser
# its rendered `vllm serve` lines must pass (tests/vllm). sha-a1bcf21 has v0.8.0's vLLM pin (llm-d PR #1907).
VLLM_OF_IMAGE = {
    "ghcr.io/llm-d/llm-d-cuda:v0.5.0": "0.14.1",
    "ghcr.io/llm-d/llm-d-cuda:v0.8.0": "0.23.0",
    "ghcr.io/llm-d/llm-d-cuda-dev:sha-a1bcf21": "0.23.0",
    "ghcr.io/llm-d/llm-d-cuda-gb200:v0.8.0": "0.23.0",     # the v0.8.0 build for GB200 (aarch64)
    "ghcr.io/llm-d/llm-d-cuda:v0.9.0": "0.26.0",
}


def get(version):
    return PROFILES[version]
