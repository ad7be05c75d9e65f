"""rdma_facts on sysfs trees laid out like an 8x H200 + 8x ConnectX-7 (mlx5) node: two sockets, four PCIe
switches each holding one GPU and one NIC (the HGX layout), the NIC's PCI function under the switch's downstream
port, and /sys/class/infiniband entries linking to it. One tree on InfiniBand (NDR, subnet manager present),
one on RoCE (GIDs: link-local v1/v2, then IPv4-mapped v1/v2)."""
import json
import os
import subprocess
import sys

import pytest

from ansible_collections.llmd.wide_ep.plugins.module_utils.fabric import rdma
from tests.support.fleet.sysfs_tree import build

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


@pytest.fixture
def ib_tree(tmp_path):
    return build(str(tmp_path / "ib"), "InfiniBand")


@pytest.fixture
def roce_tree(tmp_path):
    return build(str(tmp_path / "roce"), "Ethernet", down=(5,))


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


def test_problems_name_each_port_and_cause(roce_tree, ib_tree):
    assert rdma.problems(rdma.scan(roce_tree), "roce") == ["mlx5_5 port 1: state DOWN, not ACTIVE"]
    wrong = rdma.problems(rdma.scan(ib_tree), "roce")
    assert len(wrong) == 8 and wrong[0] == "mlx5_0 port 1: link layer InfiniBand, not Ethernet"
    assert rdma.problems(rdma.scan(ib_tree), "infiniband") == []
    assert rdma.problems({"devices": []}, "roce") == ["no RDMA device found under /sys/class/infiniband"]


def test_env_of_the_active_hcas(roce_tree, ib_tree):
    assert rdma.env(rdma.scan(roce_tree), "roce", 106) == {
        "NCCL_IB_HCA": "mlx5_0,mlx5_1,mlx5_2,mlx5_3,mlx5_4,mlx5_6,mlx5_7",      # mlx5_5 is down
        "NCCL_IB_GID_INDEX": "3", "NVSHMEM_IB_GID_INDEX": "3", "NCCL_IB_TC": "106", "NVSHMEM_IB_TRAFFIC_CLASS": "106"}
    assert rdma.env(rdma.scan(ib_tree), "infiniband", 106) == {"NCCL_IB_HCA": ",".join("mlx5_%d" % i for i in range(8))}
