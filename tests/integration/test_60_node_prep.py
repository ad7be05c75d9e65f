"""Node preparation over real SSH: four hosts, each sshd chrooted in its own Debian tree in its own network and
mount namespaces (tests/support/fleet/prep_fleet.py), in two EP groups. NVIDIA packages are stand-ins from a local
repository; the reboot and the initramfs rebuild are stand-ins that log what they were asked to do."""
import json
import re
import subprocess

import pytest

from tests.support.fleet import prep_fleet
from tests.support.runs import run_playbook, task_results

HOSTS = ["h0", "h1", "h2", "h3"]
GROUPS = {"ep_group_a": ["h0", "h1"], "ep_group_b": ["h2", "h3"]}


@pytest.fixture(scope="module")
def fleet():
    inventory = prep_fleet.up(len(HOSTS))
    yield str(inventory)
    prep_fleet.down()


def prep(fleet, extra=None, check=False, diff=False):
    return run_playbook("playbooks/node_prep.yml", inventory=fleet, extra_vars=extra, check=check, diff=diff)


def events(kind):
    return {h: [float(t) for t, what in prep_fleet.events(int(h[1:])) if what.startswith(kind)] for h in HOSTS}


def installed(h):
    status = (prep_fleet.upper(int(h[1:])) / "var/lib/dpkg/status").read_text()
    return dict(re.findall(r"Package: (nvidia-\S+)\nStatus: install ok installed\n(?:.*\n)*?Version: (\S+)", status))


def in_host(h, *cmd):
    return subprocess.run(["ip", "netns", "exec", prep_fleet.host_ns(int(h[1:])), *cmd], capture_output=True,
                          text=True, check=True).stdout


def changed(stats):
    return sum(s["changed"] for s in stats.values())


def test_first_run_installs_and_reboots_each_group_once_never_two_at_a_time(fleet):
    rc, stats, out, log = prep(fleet)
    assert rc == 0, log
    for h in HOSTS:
        assert installed(h) == {"nvidia-open": "580.95.05-1", "nvidia-fabricmanager-580": "580.95.05-1",
                                "nvidia-container-toolkit": "1.17.8-1"}, h
        modprobe = (prep_fleet.upper(int(h[1:])) / "etc/modprobe.d/nvidia-wide-ep.conf").read_text()
        assert 'options nvidia NVreg_EnableStreamMemOPs=1 NVreg_RegistryDwords="PeerMappingOverride=1;"' in modprobe
    rebuilds, reboots, ups = events("initramfs"), events("reboot"), events("up")
    assert all(len(rebuilds[h]) == 1 and len(reboots[h]) == 1 for h in HOSTS), (rebuilds, reboots)
    # Group a is back up before group b starts going down.
    a_end = max(ups[h][0] for h in GROUPS["ep_group_a"])
    b_start = min(rebuilds[h][0] for h in GROUPS["ep_group_b"])
    assert a_end < b_start, (ups, rebuilds)
    assert stats["h0"]["changed"] >= 3


def test_rdma_settings_are_applied_and_come_back_after_the_reboot(fleet):
    """The first run applied the RDMA settings, then the driver's reboot dropped addresses and rules: the
    boot-time unit the role enabled put them back."""
    for h in HOSTS:
        n = int(h[1:])
        up = prep_fleet.upper(n)
        log = [what for _, what in prep_fleet.events(n)]
        assert log[-1] == "booted" and log.index("up") < len(log) - 1
        rules = in_host(h, "ip", "rule", "show")
        for i in range(8):
            addr = prep_fleet.nic_address(n, i)
            assert "%d:\tfrom %s lookup %d" % (1000 + i, addr.split("/")[0], 100 + i) in rules, rules
            assert "10.10.%d.0/24 dev eth%d" % (i, i + 2) in in_host(h, "ip", "route", "show", "table", str(100 + i))
            assert "inet %s" % addr in in_host(h, "ip", "-4", "addr", "show", "eth%d" % (i + 2))
            tc = up / ("var/lib/standin/sysfs/sys/class/infiniband/mlx5_%d/tc/1/traffic_class" % i)
            assert tc.read_text().strip() == "106"
        assert log.count("mlnx_qos -i eth5 --trust dscp --pfc 0,0,0,1,0,0,0,0") == 2     # applied, then at boot
        assert log.count("cma_roce_tos -d mlx5_3 -t 106") == 2
        env = (up / "etc/llmd/rdma.env").read_text()
        assert "NCCL_IB_HCA=mlx5_0,mlx5_1,mlx5_2,mlx5_3,mlx5_4,mlx5_5,mlx5_6,mlx5_7" in env
        assert "NCCL_IB_GID_INDEX=3" in env and "NVSHMEM_IB_GID_INDEX=3" in env
        assert "* hard memlock unlimited" in (up / "etc/security/limits.d/90-llmd-rdma.conf").read_text()
        assert "net.ipv4.conf.eth9.rp_filter = 2" in (up / "etc/sysctl.d/90-llmd-rdma.conf").read_text()
        assert in_host(h, "sysctl", "-n", "net.ipv4.conf.eth9.arp_ignore").strip() == "1"
        wants = up / "etc/systemd/system/multi-user.target.wants/llmd-rdma.service"
        assert wants.is_symlink() and str(wants.readlink()) == "/etc/systemd/system/llmd-rdma.service"
        status = (up / "var/lib/dpkg/status").read_text()
        assert re.search(r"Package: perftest\nStatus: install ok installed\n(?:.*\n)*?Version: 4\.5\+0\.17-1", status)


def test_second_run_changes_nothing(fleet):
    before = events("")
    rc, stats, _, log = prep(fleet)
    assert rc == 0 and changed(stats) == 0, log
    assert events("") == before


def test_check_mode_shows_an_option_change_and_does_nothing(fleet):
    before = events("")
    params = {"NVreg_EnableStreamMemOPs": 1, "NVreg_RegistryDwords": "PeerMappingOverride=1;RmForceStaticBar1=1;"}
    rc, stats, out, log = prep(fleet, {"nvidia_driver_params": params}, check=True, diff=True)
    assert rc == 0, log
    res = {h: r for batch in task_results(out, "NVreg options in modprobe.d") for h, r in batch.items()}
    assert sorted(res) == HOSTS and all(r["changed"] for r in res.values())
    assert "RmForceStaticBar1=1" in json.dumps(res["h0"]["diff"])
    assert events("") == before
    assert "RmForceStaticBar1" not in (prep_fleet.upper(0) / "etc/modprobe.d/nvidia-wide-ep.conf").read_text()


def test_an_option_change_rebuilds_and_reboots_exactly_once_and_is_verified(fleet):
    before_rebuilds, before_reboots = events("initramfs"), events("reboot")
    params = {"NVreg_EnableStreamMemOPs": 1, "NVreg_RegistryDwords": "PeerMappingOverride=1;RmForceStaticBar1=1;"}
    rc, stats, out, log = prep(fleet, {"nvidia_driver_params": params})
    assert rc == 0, log
    rebuilds, reboots = events("initramfs"), events("reboot")
    for h in HOSTS:
        assert len(rebuilds[h]) == len(before_rebuilds[h]) + 1 and len(reboots[h]) == len(before_reboots[h]) + 1
    proc = (prep_fleet.upper(2) / "var/lib/standin/proc/params").read_text()
    assert 'RegistryDwords: "PeerMappingOverride=1;RmForceStaticBar1=1;"' in proc
    assert task_results(out, "Check each NVreg option took effect")


def test_a_driver_upgrade_reboots_once_and_the_new_version_is_loaded(fleet):
    before = events("reboot")
    params = {"NVreg_EnableStreamMemOPs": 1, "NVreg_RegistryDwords": "PeerMappingOverride=1;RmForceStaticBar1=1;"}
    rc, _, _, log = prep(fleet, {"nvidia_driver_version": "580.105.08", "nvidia_driver_params": params})
    assert rc == 0, log
    after = events("reboot")
    assert all(len(after[h]) == len(before[h]) + 1 for h in HOSTS)
    assert installed("h3")["nvidia-open"] == installed("h3")["nvidia-fabricmanager-580"] == "580.105.08-1"
    assert "580.105.08" in (prep_fleet.upper(3) / "var/lib/standin/proc/version").read_text()


def test_a_branch_instead_of_a_version_is_refused_before_any_change(fleet):
    before = events("")
    rc, stats, out, log = prep(fleet, {"nvidia_driver_version": "580"})
    assert rc != 0
    (res,) = task_results(out, "Check the driver version and module flavour")
    assert "nvidia_driver_version must be an exact version such as 580.95.05 (got 580)" in res["h0"]["msg"]
    assert changed(stats) == 0 and events("") == before
    # the first group failed: the second was never touched (localhost ran the check that there are hosts)
    assert set(stats) - {"localhost"} == {"h0", "h1"}


def test_a_down_rdma_port_fails_the_node_with_its_name(fleet):
    state = prep_fleet.upper(1) / "var/lib/standin/sysfs/sys/class/infiniband/mlx5_5/ports/1/state"
    state.write_text("1: DOWN\n")
    try:
        rc, stats, out, log = prep(fleet)
    finally:
        state.write_text("4: ACTIVE\n")
    assert rc != 0
    (res,) = task_results(out, "Check every port is up on the expected fabric")
    assert res["h1"]["msg"].startswith("h1: RDMA ports not ready: mlx5_5 ")
    assert res["h0"].get("failed") is not True
    assert set(stats) - {"localhost"} == {"h0", "h1"}  # the group failed: the next group was never touched


def test_a_reboot_cordons_and_drains_the_kubernetes_node_and_gives_it_back(fleet, cluster):
    """Hosts h0-h3 play the local cluster's gpu-node-0..3: around each reboot the node is cordoned and drained
    (through the API server, delegated to the controller) and uncordoned once the host is back."""
    from tests.support.runs import KUBECONFIG

    before = events("reboot")
    params = {"NVreg_EnableStreamMemOPs": 1, "NVreg_RegistryDwords": "PeerMappingOverride=1;",
              "NVreg_EnableGpuFirmware": 1}  # an option no earlier test set: every host needs a reboot
    rc, _, out, log = prep(fleet, {
        "nvidia_driver_params": params, "nvidia_driver_version": "580.105.08", "wide_ep_kubeconfig": str(KUBECONFIG),
        "nvidia_driver_kube_node": "gpu-node-{{ inventory_hostname[1:] }}"})
    assert rc == 0, log
    assert all(len(events("reboot")[h]) == len(before[h]) + 1 for h in HOSTS)
    drained = {h: r for batch in task_results(out, "Cordon and drain the Kubernetes node") for h, r in batch.items()}
    back = {h: r for batch in task_results(out, "Uncordon the Kubernetes node") for h, r in batch.items()}
    assert sorted(drained) == sorted(back) == HOSTS
    assert all(r["changed"] for r in drained.values()) and all(r["changed"] for r in back.values())
    for n in range(4):
        assert not cluster.json("get", "node", "gpu-node-%d" % n)["spec"].get("unschedulable")
