#!/usr/bin/python
# Copyright: llm-d wide-EP collection contributors
# Apache-2.0
from __future__ import annotations

DOCUMENTATION = r"""
module: gpu_facts
short_description: NVIDIA GPU facts of a node from nvidia-smi
description:
  - From C(nvidia-smi -q -x) - driver and CUDA versions, GPU count, and per GPU its model, UUID, PCI address,
    persistence mode, ECC mode, uncorrectable ECC counts, page retirement and row remapping state, fabric
    manager state and memory; from C(nvidia-smi nvlink -s) every NVLink's state and speed.
  - Read-only; returns C(ansible_facts.gpu). Without nvidia-smi (no driver yet) returns C(present=false).
version_added: 0.2.0
author: llm-d wide-EP collection contributors (@llm-d)
options:
  nvidia_smi:
    description: nvidia-smi.
    type: str
    default: nvidia-smi
"""

EXAMPLES = r"""
- name: GPU facts
  llmd.wide_ep.gpu_facts:
"""

RETURN = r"""
ansible_facts:
  description: C(gpu) with C(present), C(driver_version), C(cuda_version), C(count), C(gpus) and C(nvlink).
  returned: always
  type: dict
"""


from ansible_collections.llmd.wide_ep.plugins.module_utils.fabric import gpu
from ansible_collections.llmd.wide_ep.plugins.module_utils.runner import run_module


def main():
    run_module({"nvidia_smi": {"type": "str", "default": "nvidia-smi"}}, gpu_facts, cluster=False,
               supports_check_mode=True)


def gpu_facts(ctx):
    module = ctx.module
    smi = module.get_bin_path(ctx.params["nvidia_smi"])
    if not smi:
        return dict(changed=False, ansible_facts={"gpu": {"present": False, "count": 0, "gpus": []}})
    facts, links = gpu.query(module, smi)
    facts.update(present=True, nvlink=links or {})
    return dict(changed=False, ansible_facts={"gpu": facts})


if __name__ == "__main__":
    main()
