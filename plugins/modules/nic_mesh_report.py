#!/usr/bin/python
# Copyright: llm-d wide-EP collection contributors
# Apache-2.0
from __future__ import annotations

DOCUMENTATION = r"""
module: nic_mesh_report
short_description: Verdict and report of the NIC mesh preflight - JSON, a table, and a NIC x NIC heatmap
description:
  - Grades every tested link against its link rate (pass at 0.9 or more, warn at 0.75 or more, else fail, by
    default) and gives one verdict - C(full-mesh), C(rail-only) (same-rail pairs pass, cross-rail pairs fail),
    C(bad-nics), C(bad-links) or C(slow-links) - naming the NICs and links at fault.
  - Writes C(report.json), C(report.txt) and C(heatmap.png) to O(report_dir). Fails when the fabric is not fit
    for DeepEP, unless O(fail_on_error) is false.
version_added: 0.1.0
author: llm-d wide-EP collection contributors (@llm-d)
options:
  records:
    description: The agents' records, all hosts together.
    type: list
    elements: dict
    required: true
  link_rate:
    description: Link rate in bit/s that bandwidth is graded against; omit to check connectivity only.
    type: float
  thresholds:
    description: C(pass) and C(warn) fractions of the link rate.
    type: dict
    default: {pass: 0.9, warn: 0.75}
  report_dir:
    description: Where to write the report.
    type: path
  fail_on_error:
    description: Fail the task when the verdict is not OK.
    type: bool
    default: true
"""

EXAMPLES = r"""
- name: Verdict
  llmd.wide_ep.nic_mesh_report:
    records: "{{ agents.results | map(attribute='records') | flatten }}"
    link_rate: 400e9
    report_dir: /tmp/mesh
"""

RETURN = r"""
verdict:
  description: full-mesh, rail-only, bad-nics, bad-links or slow-links.
  returned: always
  type: str
ok:
  description: Whether the fabric passes.
  returned: always
  type: bool
summary:
  description: One sentence naming what is wrong.
  returned: always
  type: str
bad_nics:
  description: NICs with no working link.
  returned: always
  type: list
failed_links:
  description: Links that do not connect.
  returned: always
  type: list
slow_links:
  description: Links below the pass threshold.
  returned: always
  type: list
counts:
  description: Tests per grade.
  returned: always
  type: dict
"""

from ansible_collections.llmd.wide_ep.plugins.module_utils.errors import InvalidInput, WideEPError
from ansible_collections.llmd.wide_ep.plugins.module_utils.fabric import mesh_report, nic_mesh
from ansible_collections.llmd.wide_ep.plugins.module_utils.runner import run_module


def main():
    run_module({"records": {"type": "list", "elements": "dict", "required": True}, "link_rate": {"type": "float"},
                "thresholds": {"type": "dict", "default": {"pass": 0.9, "warn": 0.75}},
                "report_dir": {"type": "path"}, "fail_on_error": {"type": "bool", "default": True}},
               report, cluster=False, supports_check_mode=True)


def report(ctx):
    p = ctx.params
    if not p["records"]:
        raise InvalidInput("no test records: did the agents run?")
    thresholds = {k: float(v) for k, v in p["thresholds"].items()}
    result = nic_mesh.verdict(p["records"], p["link_rate"], thresholds)
    files = []
    if p["report_dir"] and not ctx.check_mode:
        files = mesh_report.write(result, p["report_dir"], p["link_rate"], thresholds, ctx.module.warn)
    out = {k: v for k, v in result.items() if k != "results"}
    out.update(changed=bool(files), files=files)   # the report files are (re)written on every run
    if p["fail_on_error"] and not result["ok"]:
        raise WideEPError("NIC mesh preflight failed: %s" % result["summary"], **out)
    return out


if __name__ == "__main__":
    main()
