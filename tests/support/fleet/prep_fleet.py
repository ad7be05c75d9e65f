#!/usr/bin/env python3
"""A test fleet for the node-preparation roles: H hosts, each a network namespace `llmd-ph<h>` with only
loopback and a real sshd running chrooted in a Debian bookworm tree of its own (an overlay over one debootstrap
tree, mounted in a mount namespace of the host's own, so nothing the roles install or write reaches the
machine running the tests). Reached with `ssh -o ProxyCommand='ip netns exec llmd-ph<h> nc 127.0.0.1 22'`.

What cannot run here is replaced by stand-ins, each named as such:
- the NVIDIA packages (driver, fabric manager, container toolkit) come from a local apt repository of STAND-IN
  .debs built here; the driver's `nvidia-smi` prints what nvidia-smi printed on a real 2x H200 node, with the
  installed version;
- no RDMA hardware: each host gets netdevs eth2-eth9 (veth) and, under /var/lib/standin/sysfs, the sysfs tree
  of an 8x H200 + 8x ConnectX-7 RoCE node (tests/support/fleet/sysfs_tree.py); `mlnx_qos` and `cma_roce_tos` are
  stand-ins that log their arguments;
- `update-initramfs` and the reboot (`/usr/local/sbin/standin-reboot`) log what they were asked to do to
  /var/log/standin/events.log; the reboot gives the host a new boot id and "loads" the NVIDIA module: it writes
  /var/lib/standin/proc/{version,params} from the installed package and modprobe.d, as the kernel module would
  report them in /proc/driver/nvidia after a real reboot; it drops the NICs' addresses and source-routing rules,
  as a reboot would, and runs the units enabled in multi-user.target.wants, as systemd would at boot.

    prep_fleet.py base-spec       # "<tree> <packages>": what scripts/setup.sh debootstraps ($LLMD_CACHE/hosts)
    prep_fleet.py up [--hosts 4]  # writes $STATE/inventory.json (groups ep_group_a, ep_group_b)
    prep_fleet.py down
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import mesh_fleet  # noqa: E402
import sysfs_tree  # noqa: E402

CACHE = Path(os.environ.get("LLMD_CACHE", "/var/cache/llmd-wide-ep"))
STATE = Path(os.environ.get("LLMD_PREP_FLEET_DIR", "/var/tmp/llmd-wide-ep/prep-fleet"))
HERE = Path(__file__).resolve().parent
INCLUDE = "python3,python3-apt,openssh-server,kmod,iproute2,procps,rdma-core,ibverbs-utils,infiniband-diags,perftest"
BASE = CACHE / "hosts" / "bookworm"
STANDIN = {  # package: version
    "nvidia-open": ["580.95.05-1", "580.105.08-1"],
    "nvidia-fabricmanager-580": ["580.95.05-1", "580.105.08-1"],
    "nvidia-container-toolkit": ["1.17.8-1"],
}


NICS = 8


def nic_address(h, i):
    return "10.10.%d.%d/24" % (i, h + 1)


def sh(*cmd, check=True, **kw):
    return subprocess.run(cmd, check=check, capture_output=True, text=True, **kw)


def host_ns(h):
    return "llmd-ph%d" % h


def base_ready():
    """Whether scripts/setup.sh built the tree with today's package list (it writes the list as the stamp)."""
    stamp = BASE / ".llmd-stamp"
    return stamp.exists() and stamp.read_text() == INCLUDE


STANDIN_SMI = r'''#!/usr/bin/python3
# STAND-IN nvidia-smi (llmd.wide_ep tests): prints what nvidia-smi printed on a real 2x H200 node, with the
# driver version of this stand-in package.
import sys
VERSION = "%(version)s"
if sys.argv[1:] == ["-q", "-x"]:
    sys.stdout.write(open("/usr/share/standin/nvidia-smi-q-x.xml").read().replace("580.159.04", VERSION))
elif sys.argv[1:2] == ["nvlink"]:
    sys.stdout.write(open("/usr/share/standin/nvlink-s.txt").read())
else:
    print("NVIDIA-SMI STAND-IN %%s" %% VERSION)
'''

STANDIN_REBOOT = r'''#!/bin/sh
# STAND-IN reboot (llmd.wide_ep tests): what a reboot changes that the roles can see, without a kernel: a new
# boot id, and the NVIDIA module "loaded" from the installed package with the options in modprobe.d, reported
# where /proc/driver/nvidia would report them.
set -e
echo "$(date +%s.%N) reboot" >> /var/log/standin/events.log
sleep 1
v=$(dpkg-query -W -f '${Version}' nvidia-open 2>/dev/null | cut -d- -f1)
mkdir -p /var/lib/standin/proc
echo "NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  $v  Release Build  (stand-in)" \
  > /var/lib/standin/proc/version
sed -n 's/^options nvidia //p' /etc/modprobe.d/*.conf 2>/dev/null | tr ' ' '\n' \
  | sed -n 's/^NVreg_\([^=]*\)=\(.*\)/\1: \2/p' > /var/lib/standin/proc/params
cat /proc/sys/kernel/random/uuid > /var/lib/standin/boot_id
echo "$(date +%s.%N) up" >> /var/log/standin/events.log
'''

STANDIN_REBOOT_NET = r'''
# What a reboot loses of the RDMA settings (addresses, source-routing rules), then what systemd would run at boot
# of the collection's units (the base tree's own units need a real system).
for d in $(ip -o link show type veth | awk -F'[:@ ]+' '{print $2}' | grep '^eth'); do ip addr flush dev "$d"; done
for p in $(ip rule show | awk -F: '$1 >= 1000 && $1 < 2000 {print $1}'); do ip rule del pref "$p"; done
for u in $(grep -l "Managed by llmd.wide_ep" /etc/systemd/system/multi-user.target.wants/*.service); do
  sh -c "$(sed -n 's/^ExecStart=//p' "$u")"
done
echo "$(date +%s.%N) booted" >> /var/log/standin/events.log
'''

STANDIN_LOGGER = '''#!/bin/sh
# STAND-IN %s (llmd.wide_ep tests): no ConnectX here; logs what it was asked to set.
echo "$(date +%%s.%%N) %s $*" >> /var/log/standin/events.log
'''

STANDIN_INITRAMFS = '''#!/bin/sh
# STAND-IN update-initramfs (llmd.wide_ep tests): logs the rebuild it was asked for.
echo "$(date +%s.%N) initramfs $*" >> /var/log/standin/events.log
'''


def build_repo(repo):
    """STAND-IN .debs for the NVIDIA packages, in a flat apt repository."""
    shutil.rmtree(repo, ignore_errors=True)
    repo.mkdir(parents=True)
    fixtures = HERE.parents[1] / "fixtures" / "gpu"
    for name, versions in STANDIN.items():
        for version in versions:
            root = repo / ("build-%s-%s" % (name, version))
            (root / "DEBIAN").mkdir(parents=True)
            (root / "DEBIAN" / "control").write_text(
                "Package: %s\nVersion: %s\nArchitecture: all\nMaintainer: llmd.wide_ep tests <none@invalid>\n"
                "Description: STAND-IN for %s (llmd.wide_ep node-prep tests)\n" % (name, version, name))
            if name == "nvidia-open":
                (root / "usr/bin").mkdir(parents=True)
                smi = root / "usr/bin/nvidia-smi"
                smi.write_text(STANDIN_SMI % {"version": version.split("-")[0]})
                smi.chmod(0o755)
                (root / "usr/share/standin").mkdir(parents=True)
                shutil.copy(fixtures / "h200x2-nvidia-smi-q-x.xml", root / "usr/share/standin/nvidia-smi-q-x.xml")
                shutil.copy(fixtures / "h200x2-nvlink-s.txt", root / "usr/share/standin/nvlink-s.txt")
            sh("dpkg-deb", "--root-owner-group", "-b", str(root), str(repo / ("%s_%s_all.deb" % (name, version))))
            shutil.rmtree(root)
    packages = sh("dpkg-scanpackages", "-m", ".", "/dev/null", cwd=repo).stdout
    (repo / "Packages").write_text(packages)


def write(path, text, mode=0o644):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)


def prepare_upper(upper, pubkey):
    """This host's own files over the shared tree."""
    write(upper / "root/.ssh/authorized_keys", pubkey, 0o600)
    (upper / "root/.ssh").chmod(0o700)
    write(upper / "etc/apt/sources.list", "deb [trusted=yes] file:/srv/standin-repo ./\n")
    write(upper / "usr/sbin/update-initramfs", STANDIN_INITRAMFS, 0o755)
    write(upper / "usr/local/sbin/standin-reboot", STANDIN_REBOOT + STANDIN_REBOOT_NET, 0o755)
    for tool in ("mlnx_qos", "cma_roce_tos"):
        write(upper / "usr/local/sbin" / tool, STANDIN_LOGGER % (tool, tool), 0o755)
    sysfs_tree.build(str(upper / "var/lib/standin/sysfs"), "Ethernet")
    write(upper / "var/lib/standin/boot_id", "first-boot\n")
    write(upper / "var/log/standin/events.log", "")
    (upper / "srv/standin-repo").mkdir(parents=True, exist_ok=True)


def down():
    mesh_fleet.remove_namespaces(lambda name: name.startswith("llmd-ph"))
    time.sleep(0.5)


def require_base():
    """The tests run where nothing can be downloaded: a missing tree fails at once and names the step that builds
    it, instead of a debootstrap that cannot reach the mirror."""
    if not base_ready():
        sys.exit("the node-prep test hosts' Debian tree %s is missing or stale (it must hold %s): build it with "
                 "scripts/setup.sh (step \"node-prep test hosts' Debian tree\"), outside the cluster's network "
                 "namespace" % (BASE, INCLUDE))


def up(hosts):
    require_base()
    down()
    shutil.rmtree(STATE, ignore_errors=True)
    STATE.mkdir(parents=True)
    key = STATE / "id_ed25519"
    sh("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key))
    build_repo(STATE / "repo")
    for h in range(hosts):
        d = STATE / ("h%d" % h)
        for sub in ("upper", "work", "merged"):
            (d / sub).mkdir(parents=True)
        prepare_upper(d / "upper", Path(str(key) + ".pub").read_text())
        sh("ip", "netns", "add", host_ns(h))
        sh("ip", "netns", "exec", host_ns(h), "ip", "link", "set", "lo", "up")
        for i in range(NICS):  # the netdevs of the 8 RDMA NICs (the sysfs tree's mlx5_<i>)
            sh("ip", "netns", "exec", host_ns(h), "ip", "link", "add", "eth%d" % (i + 2), "type", "veth",
               "peer", "name", "peer%d" % (i + 2))  # no dummy driver on these machines: a veth pair
        m = d / "merged"
        script = " && ".join([
            "mount -t overlay overlay -o lowerdir=%s,upperdir=%s,workdir=%s %s" % (BASE, d / "upper", d / "work", m),
            "mount -t proc proc %s/proc" % m, "mount --rbind /dev %s/dev" % m, "mount -t tmpfs tmpfs %s/run" % m,
            "mount -t tmpfs tmpfs %s/tmp" % m, "mkdir -p %s/run/sshd" % m,
            "mount --bind -o ro %s %s/srv/standin-repo" % (STATE / "repo", m),
            "exec chroot %s /usr/sbin/sshd -D -e -o ListenAddress=127.0.0.1 -o PermitRootLogin=prohibit-password"
            % m])
        log = open(d / "sshd.log", "ab")
        subprocess.Popen(["ip", "netns", "exec", host_ns(h), "unshare", "--mount", "--propagation", "private",
                          "sh", "-c", script], stdout=log, stderr=log, start_new_session=True)
    deadline = time.time() + 30
    for h in range(hosts):
        while sh("ip", "netns", "exec", host_ns(h), "sh", "-c", "echo | nc -w1 127.0.0.1 22", check=False
                 ).stdout.find("SSH-") < 0:
            if time.time() > deadline:
                sys.exit("sshd of host %d did not start: %s" % (h, (STATE / ("h%d" % h) / "sshd.log").read_text()))
            time.sleep(0.2)
    groups = {"ep_group_a": ["h%d" % h for h in range(hosts // 2)],
              "ep_group_b": ["h%d" % h for h in range(hosts // 2, hosts)]}
    inventory = {"all": {"children": {"gpu_nodes": {"children": {g: {"hosts": {n: {} for n in hs}}
                                                                 for g, hs in groups.items()}}},
                         "hosts": {"h%d" % h: {
                             "ansible_host": host_ns(h), "ansible_user": "root",
                             "ansible_ssh_private_key_file": str(key),
                             "ansible_ssh_common_args": (
                                 "-o ProxyCommand='ip netns exec %s nc 127.0.0.1 22' -o StrictHostKeyChecking=no "
                                 "-o UserKnownHostsFile=/dev/null" % host_ns(h)),
                             "ansible_python_interpreter": "/usr/bin/python3",
                             "rdma_nics": [{"device": "mlx5_%d" % i, "netdev": "eth%d" % (i + 2),
                                            "address": nic_address(h, i)} for i in range(NICS)]}
                                   for h in range(hosts)},
                         "vars": {"nvidia_driver_reboot_command": "/usr/local/sbin/standin-reboot",
                                  "nvidia_driver_boot_time_command": "cat /var/lib/standin/boot_id",
                                  "nvidia_driver_proc_dir": "/var/lib/standin/proc",
                                  "nvidia_driver_services": False,
                                  "nvidia_driver_apt_cache_valid_time": 0,
                                  "rdma_apt_cache_valid_time": 0,
                                  "rdma_sysfs_root": "/var/lib/standin/sysfs"}}}
    (STATE / "inventory.json").write_text(json.dumps(inventory, indent=1))
    return STATE / "inventory.json"


def upper(h):
    """Host h's own files (what the roles wrote), as seen from the machine running the tests."""
    return STATE / ("h%d" % h) / "upper"


def events(h):
    path = upper(h) / "var/log/standin/events.log"
    return [line.split(" ", 1) for line in path.read_text().splitlines()] if path.exists() else []


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("command", choices=["base-spec", "up", "down"])
    ap.add_argument("--hosts", type=int, default=4)
    args = ap.parse_args()
    if args.command == "base-spec":
        print(BASE, INCLUDE)
    elif args.command == "up":
        print(up(args.hosts))
    else:
        down()


if __name__ == "__main__":
    main()
