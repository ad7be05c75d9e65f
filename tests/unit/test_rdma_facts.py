"""rdma_facts on sysfs trees laid out like an 8x H200 + 8x ConnectX-7 (mlx5) node: two sockets, four PCIe
switches each holding one GPU and one NIC (the HGX layout), the NIC's PCI function under the switch's downstream
port, and /sys/class/infiniband entries linking to it. One tree on InfiniBand (NDR, subnet manager present),
one on RoCE (GIDs: link-local v1/v2, then IPv4-mapped v1/v2)."""
import json
import os
import subprocess
import sys

import pytest

from ansible_collections.llmd.wide_ep.plugins.module_utils import rdma

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text + "\n")


def build(root, link_layer, down=()):
    """8 switches: root port 0000:<bus>:01.0 on socket bus//4; GPU at <sec>:00.0, NIC at <sec+1>:00.0."""
    for i in range(8):
        socket = i // 4
        rp = "0000:%02x:01.0" % (0x15 + 0x20 * i)
        gpu, nic = "0000:%02x:00.0" % (0x18 + 0x20 * i), "0000:%02x:00.0" % (0x19 + 0x20 * i)
        sw = "/sys/devices/pci0000:%02x/%s/0000:%02x:00.0" % (0x15 + 0x20 * i, rp, 0x16 + 0x20 * i)
        for addr, vendor, cls in ((gpu, "0x10de", "0x030200"), (nic, "0x15b3", "0x020700")):
            dev = root + sw + "/0000:%02x:%02x.0/%s" % (0x17 + 0x20 * i, 0 if addr == gpu else 1, addr)
            write(dev + "/vendor", vendor)
            write(dev + "/class", cls)
            write(dev + "/numa_node", str(socket))
            os.makedirs(root + "/sys/bus/pci/devices", exist_ok=True)
            os.symlink(os.path.relpath(dev, root + "/sys/bus/pci/devices"), root + "/sys/bus/pci/devices/" + addr)
            if addr == nic:
                netdev = "ibp%ds0" % (0x19 + 0x20 * i) if link_layer == "InfiniBand" else "eth%d" % (i + 2)
                os.makedirs(dev + "/net/" + netdev, exist_ok=True)
                ib = root + "/sys/class/infiniband/mlx5_%d" % i
                os.makedirs(ib, exist_ok=True)
                os.symlink(os.path.relpath(dev, ib), ib + "/device")
                write(ib + "/fw_ver", "28.43.1014")
                write(ib + "/node_guid", "a088:c203:00%02x:0001" % i)
                port = ib + "/ports/1"
                active = i not in down
                write(port + "/state", "4: ACTIVE" if active else "1: DOWN")
                write(port + "/phys_state", "5: LinkUp" if active else "3: Disabled")
                write(port + "/link_layer", link_layer)
                if link_layer == "InfiniBand":
                    write(port + "/rate", "400 Gb/sec (4X NDR)")
                    write(port + "/lid", "0x%x" % (i + 10))
                    write(port + "/sm_lid", "0x1")
                    gids = [("fe80:0000:0000:0000:a088:c203:00%02x:0001" % i, "IB/RoCE v1")]
                else:
                    write(port + "/rate", "400 Gb/sec (4X)")
                    write(port + "/lid", "0x0")
                    write(port + "/sm_lid", "0x0")
                    ll = "fe80:0000:0000:0000:a288:c2ff:fe03:%04x" % i
                    v4 = "0000:0000:0000:0000:0000:ffff:0a00:%02x01" % i
                    gids = [(ll, "IB/RoCE v1"), (ll, "RoCE v2"), (v4, "IB/RoCE v1"), (v4, "RoCE v2")]
                for idx in range(255):  # the kernel lists the whole table, unused entries as zeros
                    gid, typ = gids[idx] if idx < len(gids) else ("0000:" * 7 + "0000", "")
                    write(port + "/gids/%d" % idx, gid)
                    if typ:
                        write(port + "/gid_attrs/types/%d" % idx, typ)
                        write(port + "/gid_attrs/ndevs/%d" % idx, netdev)
    return root


@pytest.fixture
def ib_tree(tmp_path):
    return build(str(tmp_path), "InfiniBand")


@pytest.fixture
def roce_tree(tmp_path):
    return build(str(tmp_path), "Ethernet", down=(5,))


def test_infiniband_node(ib_tree):
    facts = rdma.scan(ib_tree)
    assert [d["name"] for d in facts["devices"]] == ["mlx5_%d" % i for i in range(8)]
    assert facts["active"] == 8 and facts["link_layers"] == ["InfiniBand"]
    d = facts["devices"][3]
    port = d["ports"][0]
    assert (port["state"], port["phys_state"], port["rate_gbps"], port["gid_index"]) == ("ACTIVE", "LinkUp", 400.0, 0)
    assert port["subnet_manager"] is True
    assert (d["pci"], d["numa_node"], d["netdevs"]) == ("0000:79:00.0", 0, ["ibp121s0"])
    assert d["gpus_same_switch"] == ["0000:78:00.0"]        # the GPU under the same PCIe switch
    assert len(d["gpus_same_numa"]) == 4 and len(facts["gpus"]) == 8


def test_roce_node_gid_index_and_a_down_port(roce_tree):
    facts = rdma.scan(roce_tree)
    assert facts["active"] == 7 and facts["link_layers"] == ["Ethernet"]
    port = facts["devices"][0]["ports"][0]
    # NCCL_IB_GID_INDEX: the RoCE v2 GID carrying the IPv4 address, index 3 in the kernel's usual table.
    assert port["gid_index"] == 3
    assert [(g["index"], g["type"], g["netdev"]) for g in port["gids"]] == [
        (0, "IB/RoCE v1", "eth2"), (1, "RoCE v2", "eth2"), (2, "IB/RoCE v1", "eth2"), (3, "RoCE v2", "eth2")]
    down = facts["devices"][5]
    assert (down["ports"][0]["state"], down["ports"][0]["phys_state"]) == ("DOWN", "Disabled")
    assert facts["devices"][6]["numa_node"] == 1 and facts["devices"][6]["gpus_same_switch"] == ["0000:d8:00.0"]


def test_the_module_returns_the_facts(roce_tree, tmp_path):
    args = tmp_path / "args.json"
    args.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": {"root": roce_tree}}))
    env = {**os.environ, "PYTHONPATH": os.path.join(ROOT, "collections")}
    res = subprocess.run([sys.executable, os.path.join(ROOT, "plugins/modules/rdma_facts.py"), str(args)],
                         capture_output=True, text=True, env=env)
    out = json.loads(res.stdout)
    assert out["ansible_facts"]["rdma"]["active"] == 7 and out["changed"] is False
