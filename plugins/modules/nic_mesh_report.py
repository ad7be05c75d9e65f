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
author: llm-d wide-EP collection contributors
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

import json
import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.llmd.wide_ep.plugins.module_utils import nic_mesh


def table(result):
    lines = ["NIC mesh preflight: %s" % result["summary"], "",
             "%-28s %-28s %-10s %-6s %12s %s" % ("NIC A", "NIC B", "rail", "grade", "Gbit/s", "error")]
    order = {"fail": 0, "warn": 1, "pass": 2}
    for r in sorted(result["results"], key=lambda r: (order[r["grade"]], r["host_a"], r["nic_a"], r["host_b"])):
        rate = "%.2f" % (r["rate"] / 1e9) if r.get("rate") is not None else "-"
        lines.append("%-28s %-28s %-10s %-6s %12s %s" % ("%s:%s" % (r["host_a"], r["nic_a"]),
                                                         "%s:%s" % (r["host_b"], r["nic_b"]), r["rail"],
                                                         r["grade"], rate, r.get("error", "")))
    return "\n".join(lines) + "\n"


def heatmap(result, path, link_rate):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    names = sorted({"%s:%s" % (r["host_" + s], r["nic_" + s]) for r in result["results"] for s in "ab"},
                   key=lambda n: (n.split(":")[0], n))
    index = {n: i for i, n in enumerate(names)}
    grid = [[float("nan")] * len(names) for _ in names]
    for r in result["results"]:
        a, b = index["%s:%s" % (r["host_a"], r["nic_a"])], index["%s:%s" % (r["host_b"], r["nic_b"])]
        value = 0.0 if not r.get("connected") else (r.get("fraction", 1.0) if link_rate else 1.0)
        grid[a][b] = grid[b][a] = min(value, 1.0)
    size = max(6, len(names) * 0.22)
    fig, ax = plt.subplots(figsize=(size + 1.5, size))
    img = ax.imshow(grid, cmap="RdYlGn", vmin=0, vmax=1, interpolation="nearest")
    ax.set_xticks(range(len(names)), names, rotation=90, fontsize=6)
    ax.set_yticks(range(len(names)), names, fontsize=6)
    ax.set_title("NIC mesh: fraction of link rate (red = no connection)\n%s" % result["verdict"])
    fig.colorbar(img, ax=ax, fraction=0.046)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main():
    module = AnsibleModule(argument_spec={
        "records": {"type": "list", "elements": "dict", "required": True},
        "link_rate": {"type": "float"},
        "thresholds": {"type": "dict", "default": {"pass": 0.9, "warn": 0.75}},
        "report_dir": {"type": "path"},
        "fail_on_error": {"type": "bool", "default": True},
    }, supports_check_mode=True)
    p = module.params
    if not p["records"]:
        module.fail_json(msg="no test records: did the agents run?")
    result = nic_mesh.verdict(p["records"], p["link_rate"], {k: float(v) for k, v in p["thresholds"].items()})
    files = []
    if p["report_dir"]:
        os.makedirs(p["report_dir"], exist_ok=True)
        with open(os.path.join(p["report_dir"], "report.json"), "w") as fh:
            json.dump(result, fh, indent=1)
        with open(os.path.join(p["report_dir"], "report.txt"), "w") as fh:
            fh.write(table(result))
        files = [os.path.join(p["report_dir"], f) for f in ("report.json", "report.txt")]
        try:
            heatmap(result, os.path.join(p["report_dir"], "heatmap.png"), p["link_rate"])
            files.append(os.path.join(p["report_dir"], "heatmap.png"))
        except ImportError:
            module.warn("matplotlib is not installed on the controller: no heatmap.png")
    out = {k: v for k, v in result.items() if k != "results"}
    out.update(changed=False, files=files)
    if p["fail_on_error"] and not result["ok"]:
        module.fail_json(msg="NIC mesh preflight failed: %s" % result["summary"], **out)
    module.exit_json(**out)


if __name__ == "__main__":
    main()
