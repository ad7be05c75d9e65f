#!/usr/bin/python
# Copyright: llm-d wide-EP collection contributors
# Apache-2.0
from __future__ import annotations

DOCUMENTATION = r"""
module: nic_mesh_pods
short_description: Run the NIC mesh preflight as one pod per node, for clusters without node SSH
description:
  - For managed clusters such as CoreWeave CKS, where nodes cannot be reached over SSH. Creates a ConfigMap with
    the agent (the same code M(llmd.wide_ep.nic_mesh_agent) runs) and the plan, and one pod per node, pinned to
    it, with host networking and the RDMA device-plugin resource. Each pod runs its node's side of every round;
    the module waits for them, reads each pod's records from its log, and removes what it created.
  - Returns the records in the form M(llmd.wide_ep.nic_mesh_report) takes.
version_added: 0.1.0
author: llm-d wide-EP collection contributors (@llm-d)
options:
  rounds:
    description: The plan's rounds (node names as hosts).
    type: list
    elements: list
    required: true
  nics:
    description:
      - Per node, its NICs in plan order (C(device), C(address), C(gid_index), C(port)). For the rdma probe the
        address is any address of the node the peer can reach for the tools' out-of-band exchange.
    type: dict
    required: true
  namespace:
    description: Namespace for the pods.
    type: str
    default: llm-d-nic-mesh
  image:
    description: Image with python3 and, for the rdma probe, rdma-core and perftest.
    type: str
    default: ghcr.io/llm-d/llm-d-cuda:v0.5.0
  rdma_resource:
    description: Device-plugin resource each pod requests (empty for none).
    type: str
    default: rdma/ib
  probe:
    description: tcp or rdma.
    type: str
    choices: [tcp, rdma]
    default: rdma
  duration:
    description: Seconds of traffic per link.
    type: float
    default: 2.0
  port_base:
    description: First TCP port of the probes.
    type: int
    default: 20000
  rendezvous_timeout:
    description: Seconds a test waits for its peer.
    type: float
    default: 60.0
  connect_timeout:
    description: Seconds per connection attempt.
    type: float
    default: 3.0
  run:
    description: Wait for the pods and collect their records; false only creates them.
    type: bool
    default: true
  cleanup:
    description: Delete the pods and the ConfigMap afterwards.
    type: bool
    default: true
  wait_timeout:
    description: Seconds to wait for all pods to finish.
    type: int
    default: 3600
extends_documentation_fragment:
  - llmd.wide_ep.k8s
"""

EXAMPLES = r"""
- name: NIC mesh as pods
  llmd.wide_ep.nic_mesh_pods:
    rounds: "{{ plan.plan.rounds }}"
    nics: "{{ plan.nics }}"
  register: mesh
"""

RETURN = r"""
records:
  description: All nodes' records.
  returned: when run
  type: list
  elements: dict
pods:
  description: The pods created, one per node.
  returned: always
  type: list
  elements: str
"""

from ansible_collections.llmd.wide_ep.plugins.module_utils.fabric import mesh_pods
from ansible_collections.llmd.wide_ep.plugins.module_utils.runner import run_module


def main():
    run_module(dict(
        rounds={"type": "list", "elements": "list", "required": True}, nics={"type": "dict", "required": True},
        namespace={"type": "str", "default": "llm-d-nic-mesh"},
        image={"type": "str", "default": "ghcr.io/llm-d/llm-d-cuda:v0.5.0"},
        rdma_resource={"type": "str", "default": "rdma/ib"},
        probe={"type": "str", "default": "rdma", "choices": ["tcp", "rdma"]},
        duration={"type": "float", "default": 2.0}, port_base={"type": "int", "default": 20000},
        rendezvous_timeout={"type": "float", "default": 60.0}, connect_timeout={"type": "float", "default": 3.0},
        run={"type": "bool", "default": True}, cleanup={"type": "bool", "default": True},
        wait_timeout={"type": "int", "default": 3600}),
        lambda ctx: mesh_pods.run(ctx.client, ctx.params), supports_check_mode=False)


if __name__ == "__main__":
    main()
