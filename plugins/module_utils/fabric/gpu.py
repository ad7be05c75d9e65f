# Copyright: llm-d wide-EP collection contributors
# Apache-2.0
"""GPU facts from `nvidia-smi -q -x`, NVLink state from `nvidia-smi nvlink -s`, Xid events from the kernel log,
and the checks the gpu_check role makes of them. `query` runs nvidia-smi; the rest is pure parsing."""
from __future__ import annotations

import re
import xml.etree.ElementTree as ET

XID = re.compile(r"NVRM: Xid \((?:PCI:)?([0-9a-fA-F:.]+)\): (\d+)(?:, (.*))?")
# Xids that mean the GPU or its memory needs attention (NVIDIA's Xid catalogue): 48 DBE, 63/64 row remap,
# 74 NVLink, 79 fell off the bus, 92 high SBE rate, 94/95 contained/uncontained ECC, 119/120 GSP, 140 ECC.
SERIOUS_XIDS = {48, 63, 64, 74, 79, 92, 94, 95, 119, 120, 140}


def _text(node, path, default=None):
    found = node.find(path) if node is not None else None
    if found is None or found.text is None:
        return default
    text = found.text.strip()
    return default if text in ("N/A", "") else text


def _int(node, path):
    value = _text(node, path)
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def parse_smi_xml(text):
    """Facts of every GPU from nvidia-smi -q -x."""
    root = ET.fromstring(text)
    gpus = []
    for g in root.findall("gpu"):
        ecc = g.find("ecc_errors")
        gpus.append({
            "index": len(gpus),
            "bus_id": (g.get("id") or "").lower(),
            "name": _text(g, "product_name"),
            "uuid": _text(g, "uuid"),
            "serial": _text(g, "serial"),
            "persistence_mode": _text(g, "persistence_mode"),
            "ecc_mode": _text(g, "ecc_mode/current_ecc"),
            "ecc_uncorrectable_volatile": _int(ecc, "volatile/dram_uncorrectable")
            if _int(ecc, "volatile/dram_uncorrectable") is not None else _int(ecc, "volatile/double_bit/total"),
            "ecc_uncorrectable_aggregate": _int(ecc, "aggregate/dram_uncorrectable")
            if _int(ecc, "aggregate/dram_uncorrectable") is not None else _int(ecc, "aggregate/double_bit/total"),
            "retired_pages_pending": _text(g, "retired_pages/pending_retirement"),
            "remapped_rows_uncorrectable": _int(g, "remapped_rows/remapped_row_unc"),
            "remapped_rows_pending": _text(g, "remapped_rows/remapped_row_pending"),
            "remapped_rows_failure": _text(g, "remapped_rows/remapped_row_failure"),
            "fabric_state": _text(g, "fabric/state"),
            "fabric_status": _text(g, "fabric/status"),
            "memory_total_mib": _int(g, "fb_memory_usage/total") or
            int(re.sub(r"\D", "", _text(g, "fb_memory_usage/total", "0")) or 0),
            "pcie_gen": _text(g, "pci/pci_gpu_link_info/pcie_gen/current_link_gen"),
            "pcie_width": _text(g, "pci/pci_gpu_link_info/link_widths/current_link_width"),
        })
    return {"driver_version": _text(root, "driver_version"), "cuda_version": _text(root, "cuda_version"),
            "count": _int(root, "attached_gpus") or len(gpus), "gpus": gpus}


def query(module, nvidia_smi):
    """(facts, links) of this host's GPUs; links is None when nvidia-smi reports no NVLink (PCIe-only GPUs)."""
    rc, out, err = module.run_command([nvidia_smi, "-q", "-x"])
    if rc != 0:
        module.fail_json(msg="nvidia-smi -q -x failed (rc %d): %s" % (rc, (err or out)[-1000:]))
    facts = parse_smi_xml(out)
    rc, out, dummy = module.run_command([nvidia_smi, "nvlink", "-s"])
    return facts, parse_nvlink_status(out) if rc == 0 and "Link" in out else None


def parse_nvlink_status(text):
    """{gpu index: [(link, state, GB/s)]} from `nvidia-smi nvlink -s`; a link reads '<inactive>' when down."""
    links, current = {}, None
    for line in text.splitlines():
        m = re.match(r"GPU (\d+):", line)
        if m:
            current = int(m.group(1))
            links[current] = []
            continue
        m = re.match(r"\s+Link (\d+): (.*)", line)
        if m and current is not None:
            value = m.group(2).strip()
            speed = re.match(r"([\d.]+) GB/s", value)
            links[current].append({"link": int(m.group(1)), "up": bool(speed),
                                   "gbps": float(speed.group(1)) if speed else 0.0})
    return links


def parse_xids(text):
    """[(pci bus id, xid, detail)] from kernel log lines."""
    return [{"bus_id": m.group(1).lower(), "xid": int(m.group(2)), "detail": (m.group(3) or "").strip()}
            for m in map(XID.search, text.splitlines()) if m]


def memory_problems(gpu):
    """What is wrong with one GPU's memory: uncorrectable errors, pages or rows waiting for a reset."""
    out = []
    if (gpu["ecc_uncorrectable_volatile"] or 0) > 0:
        out.append("%d uncorrectable ECC errors since the driver loaded" % gpu["ecc_uncorrectable_volatile"])
    if (gpu["remapped_rows_uncorrectable"] or 0) > 0:
        out.append("%d rows remapped for uncorrectable errors" % gpu["remapped_rows_uncorrectable"])
    if gpu["retired_pages_pending"] == "Yes":
        out.append("page retirement pending (reset the GPU)")
    if gpu["remapped_rows_pending"] == "Yes":
        out.append("row remap pending (reset the GPU)")
    if gpu["remapped_rows_failure"] == "Yes":
        out.append("row remapping failed (replace the GPU)")
    return out


def version_tuple(text):
    """A driver version as numbers. This runs on the GPU node, where `packaging` (what the controller's
    comparisons use, module_utils/versions.py) need not be installed; NVIDIA driver versions are dotted
    numbers (570.124.06), never pre-releases, so numbers order them."""
    return tuple(int(x) for x in re.findall(r"\d+", text or "")[:3])


# SXM modules of HGX/DGX boards: their GPUs talk over NVLink (NVSwitch), so a GPU with no NVLink is broken, not
# "PCIe-only". PCIe cards (names with PCIe; NVL cards only have NVLink where a bridge is fitted) are not.
SXM_NAME = re.compile(r"SXM|^NVIDIA (H100 80GB HBM3|H100 94GB|H200|H800|H20|B200|B300|GB200|GB300)\b")
PCIE_NAME = re.compile(r"PCIe|\bNVL\b")


def nvlink_required(gpu):
    """Why this GPU must show NVLink links, or None where it may have none (a PCIe card)."""
    if gpu.get("fabric_state"):
        return "it belongs to an NVLink fabric (fabric state %s)" % gpu["fabric_state"]
    name = gpu.get("name") or ""
    if SXM_NAME.search(name) and not PCIE_NAME.search(name):
        return "%s is an SXM module of an NVLink board" % name
    return None


def _nvlink_check(facts, links):
    """(status, detail): every GPU that must have NVLink shows links and all of them are up."""
    links = links or {}
    required = {g["index"]: nvlink_required(g) for g in facts["gpus"]}
    missing = ["GPU %d (%s)" % (i, why) for i, why in required.items() if why and not links.get(i)]
    down = ["GPU %d link %d" % (gpu, ln["link"]) for gpu, ls in sorted(links.items()) for ln in ls if not ln["up"]]
    total = sum(len(ls) for ls in links.values())
    if missing:
        return "fail", "no NVLink reported on %s: is the fabric manager running and the driver's NVLink up?" % (
            "; ".join(missing))
    if down:
        return "fail", "; ".join(down) + " down"
    if total == 0:
        names = ", ".join(sorted({g["name"] or "?" for g in facts["gpus"]}))
        return "skip", "no NVLink on these GPUs (%s: PCIe cards, none of them on an NVLink board)" % names
    return "ok", "%d links up on %d GPUs" % (total, len(links))


def evaluate(facts, links, xids, busbw, p):
    """The checks, each {check, status (ok, fail or skip), ok, detail}, in the order of the issue: driver, count,
    ECC, Xid, NVLink, busbw. `xids` and `busbw` are a string (why they were not measured) when they could not be:
    those checks say SKIP with the reason, never OK."""
    checks = []

    def check(name, status, detail):
        if status in (True, False):
            status = "ok" if status else "fail"
        checks.append({"check": name, "status": status, "ok": status != "fail", "detail": detail})

    drv = facts["driver_version"]
    check("driver", bool(drv) and version_tuple(drv) >= version_tuple(p["min_driver"]),
          "driver %s (minimum %s), CUDA %s" % (drv, p["min_driver"], facts["cuda_version"]))
    count = len(facts["gpus"])
    check("gpu count", count == p["gpu_count"] if p["gpu_count"] else count > 0,
          "%d GPUs (%s)%s" % (count, ", ".join(sorted({g["name"] or "?" for g in facts["gpus"]})),
                              ", expected %d" % p["gpu_count"] if p["gpu_count"] else ""))
    bad_ecc = ["GPU %d: %s" % (g["index"], ", ".join(memory_problems(g))) for g in facts["gpus"]
               if memory_problems(g)]
    check("ecc", not bad_ecc, "; ".join(bad_ecc) or "no uncorrectable ECC errors, nothing pending retirement or remap")
    if isinstance(xids, str):  # the kernel log could not be read: say so rather than pass quietly
        check("xid", "skip", "not checked: %s" % xids)
    else:
        serious = [x for x in xids if x["xid"] in SERIOUS_XIDS]
        check("xid", not serious, "; ".join("Xid %d on %s" % (x["xid"], x["bus_id"]) for x in serious) or
              "%d Xid events in the kernel log, none serious" % len(xids))
    check("nvlink", *_nvlink_check(facts, links))
    if isinstance(busbw, str) or busbw is None:
        check("nccl all-reduce", "skip", "not measured: %s" % (busbw or "no result"))
    else:
        check("nccl all-reduce", busbw["busbw_gbps"] >= p["min_busbw_gbps"],
              "%.1f GB/s bus bandwidth over %d GPUs (%s MiB, %d iterations; minimum %.0f GB/s)" % (
                  busbw["busbw_gbps"], busbw["world"], busbw["size_mib"], busbw["iters"], p["min_busbw_gbps"]))
    return checks


def report_lines(checks):
    """One line per check: OK, FAIL or SKIP, the check, what was seen."""
    return ["%-4s  %-16s %s" % (c["status"].upper(), c["check"], c["detail"]) for c in checks]
