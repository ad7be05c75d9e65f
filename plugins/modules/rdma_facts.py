#!/usr/bin/python
# Copyright: llm-d wide-EP collection contributors
# Apache-2.0
from __future__ import annotations

DOCUMENTATION = r"""
module: rdma_facts
short_description: RDMA devices of a node from sysfs, with the GPUs next to each NIC
description:
  - Reads C(/sys/class/infiniband) and C(/sys/bus/pci/devices) - per device its PCI address, NUMA node,
    firmware, node GUID and netdevs; per port the state, physical state, rate, link layer, LID, subnet manager
    LID, every GID with its type (C(IB/RoCE v1), C(RoCE v2)), index and netdev, and the GID index NCCL and
    NVSHMEM should use (RoCE v2 with an IPv4-mapped address on Ethernet, 0 on InfiniBand); the NVIDIA GPUs behind
    the same PCIe switch and on the same NUMA node.
  - With O(link_layer), also judges the ports (RV(problems)) and derives the node's NCCL and NVSHMEM settings
    (RV(env)) - the active HCAs, and on RoCE the GID index and the traffic class O(roce_tos).
  - Read-only; returns C(ansible_facts.rdma).
version_added: 0.2.0
author: llm-d wide-EP collection contributors (@llm-d)
options:
  root:
    description: Filesystem root holding C(sys/) (a fixture tree in tests).
    type: path
    default: /
  link_layer:
    description: The fabric every port must be on - C(roce) (Ethernet) or C(infiniband).
    type: str
    choices: [roce, infiniband]
  roce_tos:
    description: Traffic class of the lossless RoCE priority (C(NCCL_IB_TC), C(NVSHMEM_IB_TRAFFIC_CLASS)).
    type: int
    default: 106
"""

EXAMPLES = r"""
- name: RDMA facts
  llmd.wide_ep.rdma_facts:
"""

RETURN = r"""
ansible_facts:
  description: C(rdma) with C(devices), C(gpus), C(active) (active ports) and C(link_layers).
  returned: always
  type: dict
problems:
  description:
    - Ports not ready - not ACTIVE, on another fabric, no subnet manager, no usable GID; empty when all are.
  returned: when O(link_layer) is given
  type: list
  elements: str
env:
  description:
    - C(NCCL_IB_HCA), and on RoCE C(NCCL_IB_GID_INDEX), C(NVSHMEM_IB_GID_INDEX), C(NCCL_IB_TC) and
      C(NVSHMEM_IB_TRAFFIC_CLASS).
  returned: when O(link_layer) is given
  type: dict
"""


from ansible_collections.llmd.wide_ep.plugins.module_utils.fabric import rdma
from ansible_collections.llmd.wide_ep.plugins.module_utils.runner import run_module


def main():
    run_module({
        "root": {"type": "path", "default": "/"},
        "link_layer": {"type": "str", "choices": ["roce", "infiniband"]},
        "roce_tos": {"type": "int", "default": 106},
    }, rdma_facts, cluster=False, supports_check_mode=True)


def rdma_facts(ctx):
    p = ctx.params
    facts = rdma.scan(p["root"])
    result = {"changed": False, "ansible_facts": {"rdma": facts}}
    if p["link_layer"]:
        result.update(problems=rdma.problems(facts, p["link_layer"]),
                      env=rdma.env(facts, p["link_layer"], p["roce_tos"]))
    return result


if __name__ == "__main__":
    main()
