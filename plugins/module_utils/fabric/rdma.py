# Copyright: llm-d wide-EP collection contributors
# Apache-2.0
"""RDMA facts from sysfs (under a root, so fixture trees can stand in for a host): devices, ports, state, rate,
link layer, subnet manager, GIDs with type and index, netdev, PCI address, NUMA node, and the GPUs that share a
PCIe switch or NUMA node with each NIC."""
from __future__ import annotations

import os
import re

NVIDIA_VENDOR = "0x10de"
GPU_CLASSES = ("0x030200", "0x030000")  # 3D controller (SXM/PCIe data-centre GPUs), VGA


def _read(path, default=None):
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return default


def _pci_path(root, link):
    """The PCI addresses from the root complex down to the device, from a sysfs device symlink."""
    real = os.path.realpath(link)
    return [p for p in real[len(os.path.realpath(root)):].split("/") if re.match(r"^[0-9a-f]{4}:[0-9a-f]{2}:", p)]


def gpus(root="/"):
    """NVIDIA GPUs on the PCI bus: address, NUMA node, PCI path."""
    base = os.path.join(root, "sys/bus/pci/devices")
    out = []
    for addr in sorted(os.listdir(base)) if os.path.isdir(base) else []:
        dev = os.path.join(base, addr)
        if _read(os.path.join(dev, "vendor")) == NVIDIA_VENDOR and _read(os.path.join(dev, "class")) in GPU_CLASSES:
            out.append({"pci": addr, "numa_node": int(_read(os.path.join(dev, "numa_node"), "-1")),
                        "pci_path": _pci_path(root, dev)})
    return out


def _gids(port_dir):
    out = []
    gid_dir = os.path.join(port_dir, "gids")
    for idx in sorted(os.listdir(gid_dir), key=int) if os.path.isdir(gid_dir) else []:
        gid = _read(os.path.join(gid_dir, idx))
        if not gid or gid.replace("0", "").replace(":", "") == "":
            continue
        out.append({"index": int(idx), "gid": gid,
                    "type": _read(os.path.join(port_dir, "gid_attrs/types", idx)),
                    "netdev": _read(os.path.join(port_dir, "gid_attrs/ndevs", idx))})
    return out


def gid_index(port):
    """The GID index NCCL/NVSHMEM should use: RoCE v2 with an IPv4-mapped address on Ethernet, 0 on InfiniBand."""
    if port["link_layer"] == "InfiniBand":
        return 0 if port["gids"] else None
    v2 = [g for g in port["gids"] if (g["type"] or "").lower() == "roce v2"]
    v4 = [g for g in v2 if g["gid"].startswith("0000:0000:0000:0000:0000:ffff:")]
    return (v4 or v2 or [{"index": None}])[0]["index"]


def scan(root="/"):
    base = os.path.join(root, "sys/class/infiniband")
    local_gpus = gpus(root)
    devices = []
    for name in sorted(os.listdir(base)) if os.path.isdir(base) else []:
        dev = os.path.join(base, name)
        pci_path = _pci_path(root, os.path.join(dev, "device"))
        numa = int(_read(os.path.join(dev, "device/numa_node"), "-1"))
        net_dir = os.path.join(dev, "device/net")
        ports = []
        for num in sorted(os.listdir(os.path.join(dev, "ports")), key=int):
            pd = os.path.join(dev, "ports", num)
            rate = _read(os.path.join(pd, "rate"), "")
            m = re.match(r"([\d.]+) Gb/sec", rate)
            port = {"port": int(num), "state": (_read(os.path.join(pd, "state"), "") .split(": ") + [""])[1],
                    "phys_state": (_read(os.path.join(pd, "phys_state"), "").split(": ") + [""])[1],
                    "rate_gbps": float(m.group(1)) if m else None, "rate": rate,
                    "link_layer": _read(os.path.join(pd, "link_layer")), "lid": _read(os.path.join(pd, "lid")),
                    "sm_lid": _read(os.path.join(pd, "sm_lid")), "gids": _gids(pd)}
            port["gid_index"] = gid_index(port)
            port["subnet_manager"] = port["link_layer"] != "InfiniBand" or (
                port["sm_lid"] not in (None, "0x0", "0") and port["state"] == "ACTIVE")
            ports.append(port)
        # GPUs behind the same PCIe switch (sharing everything but the last two hops), else on the same NUMA node.
        near = [g["pci"] for g in local_gpus if pci_path[:-2] and g["pci_path"][:-2] == pci_path[:-2]]
        devices.append({
            "name": name, "pci": pci_path[-1] if pci_path else None, "numa_node": numa,
            "fw_ver": _read(os.path.join(dev, "fw_ver")), "node_guid": _read(os.path.join(dev, "node_guid")),
            "netdevs": sorted(os.listdir(net_dir)) if os.path.isdir(net_dir) else [], "ports": ports,
            "gpus_same_switch": near, "gpus_same_numa": [g["pci"] for g in local_gpus if g["numa_node"] == numa]})
    return {"devices": devices, "gpus": local_gpus,
            "active": sum(1 for d in devices for p in d["ports"] if p["state"] == "ACTIVE"),
            "link_layers": sorted({p["link_layer"] for d in devices for p in d["ports"] if p["link_layer"]})}


LINK_LAYERS = {"infiniband": "InfiniBand", "roce": "Ethernet"}


def problems(facts, link_layer):
    """Why the ports are not ready for DeepEP/NCCL, one line per port and cause: not ACTIVE, on the wrong fabric,
    no subnet manager (InfiniBand) or no usable GID. No device at all is a problem too."""
    want = LINK_LAYERS[link_layer]
    out = [] if facts["devices"] else ["no RDMA device found under /sys/class/infiniband"]
    for dev in facts["devices"]:
        for port in dev["ports"]:
            where = "%s port %d" % (dev["name"], port["port"])
            if port["state"] != "ACTIVE":
                out.append("%s: state %s, not ACTIVE" % (where, port["state"] or "unknown"))
            if port["link_layer"] != want:
                out.append("%s: link layer %s, not %s" % (where, port["link_layer"], want))
            elif not port["subnet_manager"]:
                out.append("%s: no subnet manager (sm_lid %s)" % (where, port["sm_lid"]))
            if port["gid_index"] is None:
                out.append("%s: no usable GID%s" % (where, " (no RoCE v2 GID)" if want == "Ethernet" else ""))
    return out


def env(facts, link_layer, roce_tos):
    """The NCCL and NVSHMEM settings of this node: its active HCAs, and on RoCE the GID index (when every active
    port agrees on one) and the traffic class of the lossless priority."""
    active = [d for d in facts["devices"] if d["ports"] and d["ports"][0]["state"] == "ACTIVE"]
    out = {"NCCL_IB_HCA": ",".join(d["name"] for d in active)}
    if link_layer == "roce":
        gids = sorted({d["ports"][0]["gid_index"] for d in active}, key=str)
        if len(gids) == 1 and gids[0] is not None:
            out.update(NCCL_IB_GID_INDEX=str(gids[0]), NVSHMEM_IB_GID_INDEX=str(gids[0]))
        out.update(NCCL_IB_TC=str(roce_tos), NVSHMEM_IB_TRAFFIC_CLASS=str(roce_tos))
    return out
