#!/usr/bin/python
# Copyright: llm-d wide-EP collection contributors
# Apache-2.0
from __future__ import annotations

DOCUMENTATION = r"""
module: nic_mesh_agent
short_description: Run one host's side of every round of the NIC mesh preflight
description:
  - Runs on a GPU node. For each round of the plan, runs every test of that round that involves this host, all
    at once (one per local NIC), then moves to the next round. The two agents of a test meet by themselves (the
    client retries while the server's agent is still busy), so one task on all hosts runs the whole mesh with no
    per-round round trip to the controller.
  - Returns the measured records of the tests where this host is the client side (host_b).
version_added: 0.1.0
author: llm-d wide-EP collection contributors (@llm-d)
options:
  host:
    description: This host's name in the plan.
    type: str
    required: true
  rounds:
    description: The plan's rounds (from M(llmd.wide_ep.nic_mesh_plan)).
    type: list
    elements: list
    required: true
  nics:
    description: For every host, its NICs in plan order, each C(device), C(address) (IP of the NIC), optional
      C(gid_index) and C(port).
    type: dict
    required: true
  probe:
    description: C(tcp) measures over the NICs' IP addresses; C(rdma) runs ibv_rc_pingpong then ib_write_bw.
    type: str
    choices: [tcp, rdma]
    default: tcp
  duration:
    description: Seconds of traffic per bandwidth test.
    type: float
    default: 2.0
  port_base:
    description: First TCP port; a test uses port_base + 2 x the client NIC's index in the plan.
    type: int
    default: 20000
  rendezvous_timeout:
    description: Seconds a test waits for its peer agent.
    type: float
    default: 60.0
  connect_timeout:
    description: Seconds a connection attempt may take.
    type: float
    default: 3.0
  cuda_devices:
    description: GPUDirect RDMA - NIC device to CUDA device index (ib_write_bw --use_cuda).
    type: dict
    default: {}
"""

EXAMPLES = r"""
- name: Run the mesh
  llmd.wide_ep.nic_mesh_agent:
    host: "{{ inventory_hostname }}"
    rounds: "{{ plan.plan.rounds }}"
    nics: "{{ plan.nics }}"
"""

RETURN = r"""
records:
  description: One per test where this host is host_b, with C(connected), C(rate) (bit/s) and C(error).
  returned: always
  type: list
  elements: dict
seconds:
  description: Wall time of this agent.
  returned: always
  type: float
"""


from ansible_collections.llmd.wide_ep.plugins.module_utils.errors import WideEPError
from ansible_collections.llmd.wide_ep.plugins.module_utils.fabric.mesh_probe import run_agent
from ansible_collections.llmd.wide_ep.plugins.module_utils.runner import run_module


def main():
    run_module({
        "host": {"type": "str", "required": True},
        "rounds": {"type": "list", "elements": "list", "required": True},
        "nics": {"type": "dict", "required": True},
        "probe": {"type": "str", "default": "tcp", "choices": ["tcp", "rdma"]},
        "duration": {"type": "float", "default": 2.0},
        "port_base": {"type": "int", "default": 20000},
        "rendezvous_timeout": {"type": "float", "default": 60.0},
        "connect_timeout": {"type": "float", "default": 3.0},
        "cuda_devices": {"type": "dict", "default": {}},
    }, agent, cluster=False, supports_check_mode=False)


def agent(ctx):
    p = ctx.params
    if p["host"] not in p["nics"]:
        raise WideEPError("host %s is not in the plan's NIC table" % p["host"])
    result = run_agent(p["host"], p["rounds"], p["nics"], p["probe"], p["duration"], p["port_base"],
                       p["rendezvous_timeout"], p["connect_timeout"], p["cuda_devices"])
    return dict(result, changed=False)


if __name__ == "__main__":
    main()
