# Copyright: llm-d wide-EP collection contributors
# Apache-2.0
"""The NIC mesh report: the verdict as a table (report.txt), JSON, and a NIC x NIC heatmap in pass / warn / fail
bands with the thresholds and counts in its legend and every verdict in its title."""
from __future__ import annotations

import json
import os
import textwrap

from ansible_collections.llmd.wide_ep.plugins.module_utils.fabric import nic_mesh


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


# The grid's bands, worst first: each cell is the grade of its link (nic_mesh.grade), never a blend of them.
BANDS = ((nic_mesh.FAIL, "#c62828"), (nic_mesh.WARN, "#f9a825"), (nic_mesh.PASS, "#2e7d32"))
UNTESTED = "#d9d9d9"


def band_labels(link_rate, thresholds):
    """The legend: what each band means, with the thresholds of this run."""
    if not link_rate:
        return {nic_mesh.FAIL: "fail: no connection", nic_mesh.WARN: "warn: (no link rate given)",
                nic_mesh.PASS: "pass: connected (no link rate given: bandwidth not graded)"}
    rate = link_rate / 1e9
    return {nic_mesh.FAIL: "fail: no connection, or below %.0f %% of %.0f Gbit/s" % (100 * thresholds["warn"], rate),
            nic_mesh.WARN: "warn: %.0f-%.0f %% of %.0f Gbit/s" % (
                100 * thresholds["warn"], 100 * thresholds["pass"], rate),
            nic_mesh.PASS: "pass: at least %.0f %% of %.0f Gbit/s" % (100 * thresholds["pass"], rate)}


def title(result):
    """Every verdict of the run, not only the worst: what failed, what is slow, and the counts per grade."""
    found = []
    if result.get("bad_nics"):
        found.append("%d NIC(s) with no working link" % len(result["bad_nics"]))
    if result.get("failed_links"):
        found.append("%d failing link(s)" % len(result["failed_links"]))
    slow = [r["grade"] for r in result["results"] if r.get("connected") and r.get("grade") != nic_mesh.PASS]
    if nic_mesh.FAIL in slow:
        found.append("%d link(s) too slow (fail)" % slow.count(nic_mesh.FAIL))
    if nic_mesh.WARN in slow:
        found.append("%d slow link(s) (warn)" % slow.count(nic_mesh.WARN))
    counts = result.get("counts") or {}
    graded = ", ".join("%d %s" % (counts.get(g, 0), g) for g in dict(BANDS))
    head = "NIC mesh preflight: %s (%s)" % ("OK" if result.get("ok") else "FAILED", result["verdict"])
    return "%s\n%s; %s of %d tests" % (head, "; ".join(found) or "every link passes", graded,
                                       counts.get("tests", len(result["results"])))


def heatmap(result, path, link_rate, thresholds=None):
    """The mesh as a NIC x NIC grid, grouped by host, one colour per grade (pass / warn / fail, grey for NICs of
    one host, which are not tested). Sized and labelled for the grid: up to 64 NICs every NIC is named; beyond,
    each host's block is (hosts x 8 NICs stays legible at 64 hosts)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    from matplotlib.colors import BoundaryNorm, ListedColormap
    from matplotlib.patches import Patch

    thresholds = dict(nic_mesh.DEFAULT_THRESHOLDS, **(thresholds or {}))
    names = sorted({"%s:%s" % (r["host_" + s], r["nic_" + s]) for r in result["results"] for s in "ab"},
                   key=lambda n: (n.split(":")[0], n))
    index = {n: i for i, n in enumerate(names)}
    hosts = sorted({n.split(":")[0] for n in names})
    band = {g: i for i, g in enumerate(dict(BANDS))}
    grid = np.full((len(names), len(names)), np.nan)
    for r in result["results"]:
        a, b = index["%s:%s" % (r["host_a"], r["nic_a"])], index["%s:%s" % (r["host_b"], r["nic_b"])]
        grid[a][b] = grid[b][a] = band[r["grade"]]   # graded once, by nic_mesh.verdict
    n = len(names)
    side = min(16.0, max(6.0, 4.0 + n * 0.03))             # inches; 150 dpi: at most 2400 px a side
    labels_per_side = n if n <= 64 else len(hosts)
    cell_px = side * 0.85 * 150 / max(labels_per_side, 1)    # room per label at 150 dpi
    font = min(11.0, max(7.0, 0.8 * cell_px / (150 / 72)))   # points: 4/5 of the room, never below 7
    fig, ax = plt.subplots(figsize=(side + 1.8, side + 1.6))
    cmap = ListedColormap(list(dict(BANDS).values())).with_extremes(bad=UNTESTED)
    ax.imshow(np.ma.masked_invalid(grid), cmap=cmap, norm=BoundaryNorm([-0.5, 0.5, 1.5, 2.5], cmap.N),
              interpolation="nearest")
    bounds = [i for i in range(1, n) if names[i].split(":")[0] != names[i - 1].split(":")[0]]
    for b in bounds:
        ax.axhline(b - 0.5, color="white", linewidth=0.6)
        ax.axvline(b - 0.5, color="white", linewidth=0.6)
    if n <= 64:
        ax.set_xticks(range(n), names, rotation=90, fontsize=font)
        ax.set_yticks(range(n), names, fontsize=font)
    else:                                                    # one label per host block
        starts = [0] + bounds
        ends = bounds + [n]
        centers = [(a + e - 1) / 2 for a, e in zip(starts, ends, strict=True)]
        labels = [names[a].split(":")[0] for a in starts]
        ax.set_xticks(centers, labels, rotation=90, fontsize=font)
        ax.set_yticks(centers, labels, fontsize=font)
    heading = title(result)
    chars = int((side + 1.8) * 72 / ((font + 3) * 0.6))   # what a line of the figure's width holds
    ax.set_title("\n".join(textwrap.fill(line, chars) for line in heading.split("\n")), fontsize=font + 3)
    meaning = band_labels(link_rate, thresholds)
    counts = result.get("counts") or {}
    entries = [Patch(color=colour, label="%s (%d)" % (meaning[g], counts.get(g, 0))) for g, colour in BANDS
               if link_rate or g != nic_mesh.WARN]
    entries.append(Patch(color=UNTESTED, label="not tested: NICs of one host"))
    per_host = n // max(len(hosts), 1)
    caption = "%d hosts x %d NICs, grouped by host (white lines)" % (len(hosts), per_host)
    legend = fig.legend(handles=entries, loc="lower center", ncol=2, fontsize=font + 1, frameon=False,
                        title=caption, title_fontsize=font + 1)
    fig.tight_layout(rect=(0, 0.11, 1, 1))
    fig.savefig(path, dpi=150)
    plt.close(fig)
    return {"labels": len(ax.get_xticklabels()), "font_pt": round(font, 1), "title": heading,
            "legend": [t.get_text() for t in legend.get_texts()], "caption": caption}


def write(result, report_dir, link_rate, thresholds, warn):
    """report.json, report.txt and heatmap.png (when matplotlib is there; else `warn` says so) under
    report_dir; returns the files written."""
    os.makedirs(report_dir, exist_ok=True)
    with open(os.path.join(report_dir, "report.json"), "w") as fh:
        json.dump(result, fh, indent=1)
    with open(os.path.join(report_dir, "report.txt"), "w") as fh:
        fh.write(table(result))
    files = [os.path.join(report_dir, f) for f in ("report.json", "report.txt")]
    try:
        heatmap(result, os.path.join(report_dir, "heatmap.png"), link_rate, thresholds)
        files.append(os.path.join(report_dir, "heatmap.png"))
    except ImportError:
        warn("matplotlib is not installed on the controller: no heatmap.png")
    return files
