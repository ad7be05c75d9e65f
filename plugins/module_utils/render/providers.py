# Copyright: llm-d wide-EP collection contributors
# Apache-2.0
"""The providers (`wide_ep_provider`): one record each, with what its kustomize overlay changes in each llm-d
release that has it. The renderer applies an `Overlay` to the base objects; it never tests a provider's name.

A new provider is a record here (and its releases' `providers` in profiles.py) plus its fidelity test."""
from __future__ import annotations

import json
from dataclasses import dataclass, field

GKE_CACHES = ("/mnt/stateful_partition/kube-ephemeral-ssd/shared_disk/vllm-hf-cache/",
              "/mnt/stateful_partition/kube-ephemeral-ssd/shared_disk/vllm-jit-cache/")
COREWEAVE_CACHES = ("/mnt/local/hf-cache", "/mnt/local/jit-cache")
GKE_TOPOLOGY_KEYS = ((2, "cloud.google.com/gce-topology-block"), (1, "cloud.google.com/gce-topology-subblock"))
# The sizing does not fit H100 memory (v0.5.0's CoreWeave overlay and the local stand-in for it).
H200_ONLY = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
    {"matchExpressions": [{"key": "gpu.nvidia.com/model", "operator": "In", "values": ["H200"]}]}]}}}
KUEUE_LABELS = {"kueue.x-k8s.io/queue-name": "default"}
# Kueue admits each group whole inside one GCE topology block.
KUEUE_ANNOTATIONS = {"kueue.x-k8s.io/podset-required-topology": "cloud.google.com/gce-topology-block",
                     "kueue.x-k8s.io/podset-group-name": "llm-d-wide-ep"}


def hca_mapping(role):
    """DeepEP's GPU -> HCA pairing on GKE's A3 Ultra / A4 nodes: GPU i uses mlx5_i."""
    return ",".join("%d:mlx5_%d:1" % (i, i) for i in range(role.gpus_per_pod))


def gke_interfaces(role):
    """GKE multi-networking: eth0 on the default network, one RDMA network per GPU."""
    nets = [{"interfaceName": "eth0", "network": "default"}]
    nets += [{"interfaceName": "eth%d" % (i + 2), "network": "rdma-%d" % i} for i in range(role.gpus_per_pod)]
    return json.dumps(nets, separators=(",", ":"))


def gke_affinity(role):
    """Prefer the group's pods in one GCE topology block, then sub-block."""
    terms = [{"weight": weight, "podAffinityTerm": {
        "labelSelector": {"matchLabels": {"llm-d.ai/role": role.name}},
        "matchLabelKeys": ["component"], "topologyKey": key}} for weight, key in GKE_TOPOLOGY_KEYS]
    return {"podAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": terms}}


@dataclass(frozen=True)
class Overlay:
    """What one provider's overlay of one llm-d release changes on every LeaderWorkerSet. An env value is a
    string or a function of the role (a per-GPU mapping)."""

    env: tuple = ()                        # (name, value) after the launcher's env, both roles
    role_env: dict = field(default_factory=dict)   # role name -> (name, value) pairs after `env`
    rdma_resource: str | None = None       # one device per pod, request = limit
    gke_rdma_networks: bool = False        # pin networking.gke.io.networks/rdma-N to 0 (llm-d#1730)
    privileged: bool = False               # GPU-initiated RDMA needs it on GKE; elsewhere PeerMappingOverride=1
    host_caches: tuple | None = None       # (hf, jit) hostPaths; None: emptyDir
    gib: bool = False                      # GKE's gIB NCCL plugin, mounted from the host
    gke_networking: bool = False           # multi-network annotations and the topology-block pod affinity
    affinity: dict | None = None
    scheduler: str | None = None
    lws_labels: dict = field(default_factory=dict)
    pod_annotations: dict = field(default_factory=dict)
    images: dict = field(default_factory=dict)   # image key -> reference, the overlay's kustomize `images:`
    pod_monitors: bool = False             # the overlay ships the model servers' PodMonitors


NONE = Overlay()


# GKE's R580 drivers crash DeepEP's high-throughput kernels (cudaErrorIllegalAddress): the wide-EP guide's GKE
# README after v0.9.0 (llm-d#2379 review, 2026-09). Read by the cluster preflight from the nodes' GFD labels.
GKE_DRIVER_BLOCKLIST = ({"kernel": "deepep_high_throughput", "branch": "580",
                         "why": "cudaErrorIllegalAddress on GKE, llm-d#2379"},)


@dataclass(frozen=True)
class Provider:
    name: str
    description: str
    gke: bool = False                      # a GKE cluster: its add-ons manage the Gateway API and GAIE CRDs
    overlays: dict = field(default_factory=dict)   # llm-d release -> Overlay (missing: the base as it is)
    driver_blocklist: tuple = ()           # {kernel, branch, why}: GPU driver branches that break a kernel here
    fabric: str | None = None              # roce, infiniband, none; None: the cluster's own (not known here)

    @property
    def platform_managed_crds(self):
        return self.gke

    def overlay(self, release):
        return self.overlays.get(release, NONE)


_V050_GKE = Overlay(
    env=(("DEEP_EP_DEVICE_TO_HCA_MAPPING", hca_mapping), ("BASH_ENV", "/usr/local/gib/scripts/set_nccl_env.sh"),
         ("NVSHMEM_DISABLED_GDRCOPY", "true")),
    privileged=True, host_caches=GKE_CACHES, gib=True, gke_networking=True)
# main at 7edda66 turns GKE's NCCL plugins off (no gIB) and pins the legacy RDMA resources.
_7EDDA66_GKE = Overlay(
    env=(("NCCL_TUNER_PLUGIN", "none"), ("NCCL_NET_PLUGIN", ""), ("DEEP_EP_DEVICE_TO_HCA_MAPPING", hca_mapping),
         ("NVSHMEM_DISABLED_GDRCOPY", "true")),
    privileged=True, host_caches=GKE_CACHES, gke_rdma_networks=True, gke_networking=True)

_7EDDA66_TOPOLOGY_AWARE = Overlay(
    env=_7EDDA66_GKE.env, privileged=True, host_caches=GKE_CACHES, gke_rdma_networks=True, gke_networking=True,
    lws_labels=KUEUE_LABELS, pod_annotations=KUEUE_ANNOTATIONS)
_7EDDA66_COREWEAVE = Overlay(env=(("NCCL_IB_HCA", "ibp"), ("NVSHMEM_HCA_PREFIX", "ibp")), rdma_resource="rdma/ib",
                             host_caches=COREWEAVE_CACHES)
_7EDDA66_LOCAL = Overlay(rdma_resource="rdma/ib")

# v0.9.0 (llm-d/llm-d@e3dbeca1) keeps main-7edda66's provider patches as they were; its topology-aware/gke-a4 builds
# on gke with the same Kueue patch (no B200 delta), and dgx-cloud-gb200 lost its image override (= the base).
PROVIDERS = {p.name: p for p in (
    Provider("gke", "GKE A3 Ultra (H200), RDMA over GKE multi-networking", gke=True, fabric="roce",
             driver_blocklist=GKE_DRIVER_BLOCKLIST,
             overlays={"v0.5.0": _V050_GKE, "main-7edda66": _7EDDA66_GKE, "v0.9.0": _7EDDA66_GKE}),
    Provider("gke-a4", "GKE A4 (B200)", gke=True, fabric="roce", driver_blocklist=GKE_DRIVER_BLOCKLIST, overlays={
        "v0.5.0": Overlay(env=_V050_GKE.env, privileged=True, host_caches=GKE_CACHES, gib=True, gke_networking=True,
                          # B200 OOMs with --gpu-memory-utilization (vllm#25597): size the KV cache explicitly.
                          role_env={"decode": (("KV_CACHE_MEMORY_BYTES", "63000000000"),)}),
        "v0.9.0": _7EDDA66_TOPOLOGY_AWARE}),
    Provider("coreweave", "CoreWeave H200 with InfiniBand (rdma/ib)", fabric="infiniband", overlays={
        "v0.5.0": Overlay(env=(("HF_HUB_DISABLE_XET", "1"), ("NCCL_IB_HCA", "ibp"), ("NVSHMEM_HCA_PREFIX", "ibp")),
                          rdma_resource="rdma/ib", host_caches=COREWEAVE_CACHES, affinity=H200_ONLY,
                          scheduler="custom-binpack-scheduler", pod_monitors=True),
        "main-7edda66": _7EDDA66_COREWEAVE, "v0.9.0": _7EDDA66_COREWEAVE}),
    Provider("baremetal", "the guide's base: any cluster with GPUs and RDMA set up by hand"),
    Provider("local", "the embedded test cluster (kwok / kind): CoreWeave's resources without its host paths",
             fabric="none",
             overlays={"v0.5.0": Overlay(rdma_resource="rdma/ib", affinity=H200_ONLY),
                       "main-7edda66": _7EDDA66_LOCAL, "v0.9.0": _7EDDA66_LOCAL}),
    Provider("gke-topology-aware", "GKE with Kueue admitting each group inside one GCE topology block", gke=True,
             fabric="roce", driver_blocklist=GKE_DRIVER_BLOCKLIST,
             overlays={"main-7edda66": _7EDDA66_TOPOLOGY_AWARE, "v0.9.0": _7EDDA66_TOPOLOGY_AWARE}),
    # kustomize `images:` renames only ghcr.io/llm-d/llm-d-cuda (prefill); decode keeps its dev build.
    Provider("dgx-cloud-gb200", "NVIDIA DGX Cloud GB200 (arm64 image)", overlays={
        "main-7edda66": Overlay(images={"vllm": "ghcr.io/llm-d/llm-d-cuda-gb200:v0.8.0"})}),
)}


def get(name):
    return PROVIDERS[name]
