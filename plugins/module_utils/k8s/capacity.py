# Copyright: llm-d wide-EP collection contributors
# Apache-2.0
"""Free GPUs per node and whether a set of pods fits them (a pod needs all its GPUs on one node)."""
from __future__ import annotations

GPU = "nvidia.com/gpu"


def free_gpus(nodes, pods, resource=GPU, selector=None):
    """Allocatable GPUs of each schedulable node (matching `selector`) minus what its live pods request."""
    free = {}
    for node in nodes:
        labels = node["metadata"].get("labels", {})
        if any(labels.get(k) != v for k, v in (selector or {}).items()):
            continue
        if node.get("spec", {}).get("unschedulable"):
            continue
        free[node["metadata"]["name"]] = int(node.get("status", {}).get("allocatable", {}).get(resource, 0))
    for pod in pods:
        name = pod.get("spec", {}).get("nodeName")
        if name not in free or pod.get("status", {}).get("phase") in ("Succeeded", "Failed"):
            continue
        free[name] -= requested(pod["spec"].get("containers", []) + pod["spec"].get("initContainers", []), resource)
    return free


def requested(containers, resource=GPU):
    """GPUs the containers ask for (requests, else limits: the API server copies one to the other)."""
    total = 0
    for c in containers:
        req = c.get("resources", {}).get("requests", {}) or c.get("resources", {}).get("limits", {})
        total += int(req.get(resource, 0))
    return total


def placeable(free, needed):
    """How many of the pods (GPU counts) fit: largest first, each on the emptiest node that has room."""
    left, placed = dict(free), 0
    for gpus in sorted(needed, reverse=True):
        node = max(left, key=lambda n: left[n], default=None)
        if node is None or left[node] < gpus:
            break
        left[node] -= gpus
        placed += 1
    return placed


def fits(free, needed):
    """Whether all the pods (GPU counts) fit the free GPUs together."""
    return placeable(free, needed) == len(needed)


def pod_gpus(lws, resource=GPU):
    """GPUs one pod of a LeaderWorkerSet requests (its worker template)."""
    return requested(lws["spec"]["leaderWorkerTemplate"]["workerTemplate"]["spec"].get("containers", []), resource)


def group_pods(spec, groups=None, resource=GPU):
    """GPUs of each pod of `groups` groups (default: all its replicas) of a LeaderWorkerSet spec, or of a
    DisaggregatedSet role's spec."""
    groups = spec.get("replicas", 1) if groups is None else groups
    return [pod_gpus({"spec": spec}, resource)] * (groups * spec["leaderWorkerTemplate"].get("size", 1))


def surge_pods(specs):
    """GPUs of each pod of one more group of every spec (LeaderWorkerSet or DisaggregatedSet role): a surge,
    whose groups come up together."""
    return [gpus for spec in specs for gpus in group_pods(spec, groups=1)]
