#!/usr/bin/python
# Copyright: llm-d wide-EP collection contributors
# Apache-2.0
from __future__ import annotations

DOCUMENTATION = r"""
module: gpu_capacity
short_description: Check the cluster has room for the pods a scale-up or a surge adds
description:
  - Reads the nodes' allocatable GPUs and the GPU requests of every pod that holds them (not Succeeded or
    Failed), and counts how many more pods of O(gpus_per_pod) GPUs fit, node by node (a pod needs all its GPUs on
    one node). Fails, before any change, when fewer than O(pods) fit, naming the free GPUs per node.
  - Read-only.
version_added: 0.1.0
author: llm-d wide-EP collection contributors (@llm-d)
options:
  pods:
    description: Pods to place (with O(gpus_per_pod)).
    type: int
    default: 0
  gpus_per_pod:
    description: GPUs each pod requests.
    type: int
    default: 0
  groups:
    description:
      - LeaderWorkerSets at their new size, each C(name), C(namespace), C(replicas), C(group_size) and
        C(gpus_per_pod). The pods to place are those of the groups beyond each LeaderWorkerSet's current replicas.
      - A group with C(disaggregatedset) and C(role) (the plan's, for that workload) counts the groups of every
        LeaderWorkerSet the DisaggregatedSet runs for the role.
    type: list
    elements: dict
    default: []
  resource:
    description: The GPU resource name.
    type: str
    default: nvidia.com/gpu
  node_selector:
    description: Only nodes with these labels.
    type: dict
    default: {}
  what:
    description: What the pods are for, for the message.
    type: str
    default: the new pods
extends_documentation_fragment:
  - llmd.wide_ep.k8s
"""

EXAMPLES = r"""
- name: Room for one more decode group of 2 x 8 GPUs?
  llmd.wide_ep.gpu_capacity:
    pods: 2
    gpus_per_pod: 8
"""

RETURN = r"""
free:
  description: Free GPUs per node.
  returned: always
  type: dict
needed:
  description: The pods to place, as GPU counts.
  returned: always
  type: list
"""


from ansible_collections.llmd.wide_ep.plugins.module_utils.errors import WideEPError
from ansible_collections.llmd.wide_ep.plugins.module_utils.k8s import disaggregatedset
from ansible_collections.llmd.wide_ep.plugins.module_utils.k8s.capacity import free_gpus, placeable
from ansible_collections.llmd.wide_ep.plugins.module_utils.runner import run_module


def main():
    run_module(dict(pods={"type": "int", "default": 0}, gpus_per_pod={"type": "int", "default": 0},
                    groups={"type": "list", "elements": "dict", "default": []},
                    resource={"type": "str", "default": "nvidia.com/gpu"},
                    node_selector={"type": "dict", "default": {}}, what={"type": "str", "default": "the new pods"}),
               check_capacity, supports_check_mode=True)


def running_groups(client, group):
    """Groups of a capacity group that exist: its LeaderWorkerSet's replicas, or those of every LeaderWorkerSet of
    the DisaggregatedSet's role (every revision: an old one's groups hold GPUs until drained)."""
    if group.get("disaggregatedset"):
        children = client.list("leaderworkerset.x-k8s.io/v1", "LeaderWorkerSet", group["namespace"],
                               label_selector="%s=%s,%s=%s" % (disaggregatedset.SET_LABEL, group["disaggregatedset"],
                                                               disaggregatedset.ROLE_LABEL, group["role"]))
        return sum(c["spec"].get("replicas", 1) for c in children)
    live = client.get({"apiVersion": "leaderworkerset.x-k8s.io/v1", "kind": "LeaderWorkerSet",
                       "metadata": {"name": group["name"], "namespace": group["namespace"]}})
    return (live or {}).get("spec", {}).get("replicas", 0)


def check_capacity(ctx):
    p, client = ctx.params, ctx.client
    nodes = client.list("v1", "Node")
    pods = client.list("v1", "Pod")
    needed = [p["gpus_per_pod"]] * p["pods"]
    for g in p["groups"]:
        current = running_groups(client, g)
        needed += [int(g["gpus_per_pod"])] * (max(0, int(g["replicas"]) - current) * int(g["group_size"]))
    free = free_gpus(nodes, pods, p["resource"], p["node_selector"])
    placed = placeable(free, needed)
    if placed < len(needed):
        raise WideEPError("%s need %d more pods (%s GPUs each); only %d fit (free %s per node: %s)" % (
            p["what"], len(needed), "/".join(str(g) for g in sorted(set(needed))), placed, p["resource"],
            ", ".join("%s=%d" % kv for kv in sorted(free.items())) or "no schedulable nodes"),
            free=free, needed=needed)
    return {"changed": False, "free": free, "needed": needed}


if __name__ == "__main__":
    main()
