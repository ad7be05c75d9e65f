#!/usr/bin/python
# Copyright: llm-d wide-EP collection contributors
# Apache-2.0
from __future__ import annotations

DOCUMENTATION = r"""
module: gpu_check
short_description: Read-only GPU health check of one node - driver, count, ECC, Xid, NVLink, NCCL all-reduce
description:
  - Runs C(nvidia-smi -q -x) and C(nvidia-smi nvlink -s), reads the kernel log for Xid events, and runs a short
    NCCL all-reduce over all local GPUs with PyTorch (one process per GPU) to measure the bus bandwidth.
  - Checks - driver at least O(min_driver); O(gpu_count) GPUs; no uncorrectable ECC error, no page retirement or
    row remap pending or failed; no serious Xid; every NVLink up; bus bandwidth at least O(min_busbw_gbps).
  - A check that could not run says SKIP with the reason (kernel log unreadable, one GPU so no all-reduce, PCIe
    cards without NVLink); it never reads OK. No NVLink on an SXM board (H100/H200/B200 SXM, or any GPU in an
    NVLink fabric) fails.
  - Writes C(gpu-check.json) and C(gpu-check.txt) to O(report_dir) on the node (so it reports C(changed), except
    in check mode, where it writes nothing) and fails when a check fails. Changes nothing else.
version_added: 0.2.0
author: llm-d wide-EP collection contributors (@llm-d)
options:
  min_driver:
    description: Lowest acceptable driver version.
    type: str
    default: "570.0.0"
  gpu_count:
    description: GPUs the node must have; 0 - any number above zero.
    type: int
    default: 0
  min_busbw_gbps:
    description: Lowest acceptable all-reduce bus bandwidth (GB/s).
    type: float
    default: 300
  busbw:
    description: Run the NCCL all-reduce.
    type: bool
    default: true
  size_mib:
    description: All-reduce size in MiB.
    type: int
    default: 1024
  iters:
    description: Timed all-reduce iterations.
    type: int
    default: 20
  python:
    description: Python with PyTorch (CUDA) on the node.
    type: str
    default: python3
  nvidia_smi:
    description: nvidia-smi on the node.
    type: str
    default: nvidia-smi
  kernel_log_command:
    description: Command printing the kernel log.
    type: list
    elements: str
    default: [dmesg]
  report_dir:
    description: Directory on the node for the report.
    type: path
    default: /var/tmp/gpu-check
"""

EXAMPLES = r"""
- name: GPU health
  llmd.wide_ep.gpu_check:
    gpu_count: 8
    min_busbw_gbps: 400
"""

RETURN = r"""
checks:
  description: Per check C(check), C(status) (ok, fail or skip), C(ok) (false only when it failed) and C(detail).
  returned: always
  type: list
  elements: dict
facts:
  description: What nvidia-smi reported.
  returned: always
  type: dict
busbw:
  description: The all-reduce result, or why it was not measured.
  returned: always
  type: raw
report:
  description: The report as lines.
  returned: always
  type: list
  elements: str
"""

import json
import os
import socket
import time

from ansible_collections.llmd.wide_ep.plugins.module_utils.errors import WideEPError
from ansible_collections.llmd.wide_ep.plugins.module_utils.fabric import gpu
from ansible_collections.llmd.wide_ep.plugins.module_utils.fabric.nccl_allreduce import SCRIPT
from ansible_collections.llmd.wide_ep.plugins.module_utils.runner import run_module


def run(module, argv, what):
    rc, out, err = module.run_command(argv)
    if rc != 0:
        raise WideEPError("%s failed (%s, rc %d): %s" % (what, " ".join(argv), rc, (err or out)[-1000:]))
    return out


def main():
    run_module({
        "min_driver": {"type": "str", "default": "570.0.0"}, "gpu_count": {"type": "int", "default": 0},
        "min_busbw_gbps": {"type": "float", "default": 300}, "busbw": {"type": "bool", "default": True},
        "size_mib": {"type": "int", "default": 1024}, "iters": {"type": "int", "default": 20},
        "python": {"type": "str", "default": "python3"}, "nvidia_smi": {"type": "str", "default": "nvidia-smi"},
        "kernel_log_command": {"type": "list", "elements": "str", "default": ["dmesg"]},
        "report_dir": {"type": "path", "default": "/var/tmp/gpu-check"}},
        check_gpus, cluster=False, supports_check_mode=True)


def check_gpus(ctx):
    module, p = ctx.module, ctx.params
    started = time.time()
    facts, links = gpu.query(module, p["nvidia_smi"])
    rc, out, err = module.run_command(p["kernel_log_command"])
    if rc == 0:
        xids = gpu.parse_xids(out)
    else:
        xids = "%s failed: %s" % (" ".join(p["kernel_log_command"]), (err or out).strip()[-200:])
        module.warn("Xid events not checked: " + xids)
    busbw = "disabled (busbw: false)"
    if p["busbw"] and len(facts["gpus"]) < 2:
        busbw = "%d GPU on this host: an all-reduce needs at least 2" % len(facts["gpus"])
    elif p["busbw"]:
        script = os.path.join(module.tmpdir, "nccl_allreduce.py")
        with open(script, "w") as f:
            f.write(SCRIPT)
        out = run(module, [p["python"], script, str(p["size_mib"] * 2 ** 20), str(p["iters"]), "5"],
                  "the NCCL all-reduce")
        busbw = json.loads(out.strip().splitlines()[-1])
        if "error" in busbw:
            busbw = busbw["error"]
        elif not busbw["correct"]:
            raise WideEPError("the NCCL all-reduce gave a wrong sum on some rank: the GPUs or NCCL are broken",
                              busbw=busbw)
    checks = gpu.evaluate(facts, links, xids, busbw, p)
    report = gpu.report_lines(checks)
    doc = {"host": socket.gethostname(), "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
           "seconds": round(time.time() - started, 1), "ok": all(c["ok"] for c in checks), "checks": checks,
           "facts": facts, "nvlink": links, "xids": xids, "busbw": busbw}
    if not module.check_mode:
        os.makedirs(p["report_dir"], exist_ok=True)
        with open(os.path.join(p["report_dir"], "gpu-check.json"), "w") as f:
            json.dump(doc, f, indent=1)
        with open(os.path.join(p["report_dir"], "gpu-check.txt"), "w") as f:
            f.write("GPU check of %s at %s (%.1f s)\n%s\n" % (
                doc["host"], doc["time"], doc["seconds"], "\n".join(report)))
    # Nothing on the GPUs changes; the two report files written on the node do, so the task says changed.
    result = {"changed": not module.check_mode, "checks": checks, "facts": facts, "busbw": busbw, "report": report,
              "seconds": doc["seconds"]}
    failed = [c for c in checks if not c["ok"]]
    if failed:
        raise WideEPError("GPU check failed: " + "; ".join("%s: %s" % (c["check"], c["detail"]) for c in failed),
                          **result)
    return result


if __name__ == "__main__":
    main()
