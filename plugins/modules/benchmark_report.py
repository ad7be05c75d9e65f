#!/usr/bin/python
# Copyright: llm-d wide-EP collection contributors
# Apache-2.0
from __future__ import annotations

DOCUMENTATION = r"""
module: benchmark_report
short_description: Turn inference-perf's reports into the guide's figures, beside the published result
description:
  - Reads the per-stage C(stage_<n>_lifecycle_metrics.json) reports of an inference-perf run from O(results_dir).
  - Per stage - requested and achieved QPS, successes and failures, input/output/total tok/s, requests/s, input
    tok/s per prefill GPU, output tok/s per decode GPU, total tok/s per GPU, TTFT/TPOT/latency medians.
  - Compares the best stage with the published result (51,218 input and 49,784 output tok/s on 16 + 16 B200
    GPUs at 250 QPS) and writes C(report.json), C(report.md), C(throughput_vs_qps.png) and
    C(throughput_vs_latency.png) to O(report_dir).
version_added: 0.2.0
author: llm-d wide-EP collection contributors (@llm-d)
options:
  results_dir:
    description: Directory with inference-perf's JSON reports.
    type: path
    required: true
  report_dir:
    description: Directory for the report files.
    type: path
    required: true
  gpus:
    description: GPUs per role, C(prefill) and C(decode).
    type: dict
    required: true
  title:
    description: Title of the Markdown report.
    type: str
    default: wide-EP benchmark
  note:
    description: A line written under the title (e.g. that the numbers come from a simulator).
    type: str
"""

EXAMPLES = r"""
- name: Report
  llmd.wide_ep.benchmark_report:
    results_dir: /tmp/bench/raw
    report_dir: /tmp/bench
    gpus: {prefill: 16, decode: 16}
"""

RETURN = r"""
best:
  description: The stage with the highest total tok/s.
  returned: success
  type: dict
ratio_to_published:
  description: Best stage over the published figures.
  returned: success
  type: dict
files:
  description: Files written.
  returned: success
  type: list
  elements: str
"""

import json
import os

from ansible_collections.llmd.wide_ep.plugins.module_utils.benchmark import inference_perf
from ansible_collections.llmd.wide_ep.plugins.module_utils.errors import InvalidInput
from ansible_collections.llmd.wide_ep.plugins.module_utils.runner import run_module


def main():
    run_module({
        "results_dir": {"type": "path", "required": True}, "report_dir": {"type": "path", "required": True},
        "gpus": {"type": "dict", "required": True}, "title": {"type": "str", "default": "wide-EP benchmark"},
        "note": {"type": "str"}}, write_report, cluster=False, supports_check_mode=True)


def write_report(ctx):
    module, p = ctx.module, ctx.params
    gpus = {role: int(p["gpus"].get(role, 0)) for role in ("prefill", "decode")}
    if min(gpus.values()) <= 0:
        raise InvalidInput("gpus needs positive prefill and decode counts, got %r" % p["gpus"])
    results = {}
    if not os.path.isdir(p["results_dir"]):
        raise InvalidInput("no results directory %s" % p["results_dir"])
    for name in os.listdir(p["results_dir"]):
        if name.endswith("_lifecycle_metrics.json"):
            with open(os.path.join(p["results_dir"], name)) as f:
                results[name] = json.load(f)
    try:
        report = inference_perf.summarize(results, gpus)
    except InvalidInput as exc:
        raise InvalidInput("%s: %s" % (p["results_dir"], exc)) from exc
    if p["note"]:
        report["note"] = p["note"]
    files = []
    if not module.check_mode:
        os.makedirs(p["report_dir"], exist_ok=True)
        files = [os.path.join(p["report_dir"], "report.json"), os.path.join(p["report_dir"], "report.md")]
        with open(files[0], "w") as f:
            json.dump(report, f, indent=1)
        md = inference_perf.markdown(report, p["title"])
        if p["note"]:
            md = md.replace("\n\n", "\n\n%s\n\n" % p["note"], 1)
        with open(files[1], "w") as f:
            f.write(md)
        try:
            files += [picture["path"] for picture in inference_perf.plots(report, p["report_dir"])]
        except ImportError:
            module.warn("matplotlib is not installed on the controller: no plots")
    return {"changed": bool(files), "best": report["best"], "ratio_to_published": report["ratio_to_published"],
            "stages": report["stages"], "files": files}


if __name__ == "__main__":
    main()
