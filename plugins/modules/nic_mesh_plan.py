#!/usr/bin/python
# Copyright: llm-d wide-EP collection contributors
# Apache-2.0
from __future__ import annotations

DOCUMENTATION = r"""
module: nic_mesh_plan
short_description: Plan the NIC mesh preflight - every NIC against every NIC of every other host, fewest rounds
description:
  - Builds the schedule of the NIC mesh preflight on the controller, touching no host. Every pair of NICs on
    different hosts is tested exactly once; in each round a NIC is in at most one test; the number of rounds is
    the minimum, (N-1)K for N hosts of K NICs when N x K is even and (N-1)K + 1 otherwise. Deterministic.
  - With O(output_dir), writes C(plan.json) with keys C(hosts), C(nics_per_host) and C(rounds), a list of rounds
    of tests C([host_a, nic_a, host_b, nic_b]), host names as in the inventory and NIC indexes from 0.
version_added: 0.1.0
author: llm-d wide-EP collection contributors (@llm-d)
options:
  hosts:
    description: Host names in inventory order.
    type: list
    elements: str
    required: true
  nics:
    description: Per host, its NICs in order - device names (C(mlx5_0)) or mappings with C(device), C(address),
      C(gid_index), C(port). Every host needs the same count.
    type: dict
    required: true
  addresses:
    description: Per host, the IP address of each NIC in the same order (for the tcp probe).
    type: dict
    default: {}
  output_dir:
    description: Where to write plan.json.
    type: path
"""

EXAMPLES = r"""
- name: Plan
  llmd.wide_ep.nic_mesh_plan:
    hosts: "{{ groups['gpu_nodes'] }}"
    nics: "{{ dict(groups['gpu_nodes'] | zip(groups['gpu_nodes'] | map('extract', hostvars, 'nic_mesh_nics'))) }}"
    output_dir: /tmp/mesh
"""

RETURN = r"""
plan:
  description: The plan (hosts, nics_per_host, rounds).
  returned: always
  type: dict
nics:
  description: The NIC table per host, normalized to mappings.
  returned: always
  type: dict
bound:
  description: The minimum number of rounds for this size.
  returned: always
  type: int
tests:
  description: Number of tests.
  returned: always
  type: int
"""

import json
import os

from ansible_collections.llmd.wide_ep.plugins.module_utils.errors import InvalidInput
from ansible_collections.llmd.wide_ep.plugins.module_utils.fabric import nic_mesh
from ansible_collections.llmd.wide_ep.plugins.module_utils.runner import run_module


def main():
    run_module({
        "hosts": {"type": "list", "elements": "str", "required": True},
        "nics": {"type": "dict", "required": True},
        "addresses": {"type": "dict", "default": {}},
        "output_dir": {"type": "path"},
    }, mesh_plan, cluster=False, supports_check_mode=True)


def mesh_plan(ctx):
    module, p = ctx.module, ctx.params
    missing = [h for h in p["hosts"] if not p["nics"].get(h)]
    if missing:
        raise InvalidInput("no NICs for %s: set nic_mesh_nics in their host_vars (device names, e.g. mlx5_0 ... "
                           "mlx5_7) or gather rdma_facts" % ", ".join(missing))
    if len(p["hosts"]) < 2:
        raise InvalidInput("the NIC mesh needs at least 2 hosts, got %d" % len(p["hosts"]))
    table = {h: [n if isinstance(n, dict) else {"device": n} for n in p["nics"][h]] for h in p["hosts"]}
    for h, addresses in p["addresses"].items():
        if h in table and addresses:
            if len(addresses) != len(table[h]):
                raise InvalidInput("%s: nic_mesh_addresses has %d entries for %d NICs in nic_mesh_nics" % (
                    h, len(addresses), len(table[h])))
            for nic, address in zip(table[h], addresses, strict=True):
                nic.setdefault("address", address)
    plan = nic_mesh.plan(p["hosts"], {h: [n["device"] for n in table[h]] for h in p["hosts"]})   # InvalidInput
    changed = False
    if p["output_dir"] and not module.check_mode:
        os.makedirs(p["output_dir"], exist_ok=True)
        path = os.path.join(p["output_dir"], "plan.json")
        text = json.dumps(plan, indent=1) + "\n"
        if not os.path.exists(path) or open(path).read() != text:
            with open(path, "w") as fh:
                fh.write(text)
            changed = True
    return {"changed": changed, "plan": plan, "nics": table,
            "bound": nic_mesh.min_rounds(plan["hosts"], plan["nics_per_host"]),
            "tests": sum(len(r) for r in plan["rounds"])}


if __name__ == "__main__":
    main()
