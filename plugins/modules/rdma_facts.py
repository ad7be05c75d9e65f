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
  - Read-only; returns C(ansible_facts.rdma).
version_added: 0.2.0
author: llm-d wide-EP collection contributors (@llm-d)
options:
  root:
    description: Filesystem root holding C(sys/) (a fixture tree in tests).
    type: path
    default: /
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
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.llmd.wide_ep.plugins.module_utils import rdma


def main():
    module = AnsibleModule(argument_spec={"root": {"type": "path", "default": "/"}}, supports_check_mode=True)
    module.exit_json(changed=False, ansible_facts={"rdma": rdma.scan(module.params["root"])})


if __name__ == "__main__":
    main()
