#!/usr/bin/env python3
"""A test fleet for the NIC mesh preflight: H hosts x K NICs as network namespaces with real sshd.

Each host is a namespace `llmd-mh<h>` with sshd on its loopback (reached with
`ssh -o ProxyCommand='ip netns exec llmd-mh<h> nc 127.0.0.1 22'`) and K NICs `nic<i>` with addresses
198.18.<i>.<h+1> (RFC 2544 benchmark range), each with its own source-routing table. Every NIC is a veth into
one fabric namespace `llmd-mfab` that routes between them; the wiring decides what it lets through:

- full: everything; rail-only: only NIC i to NIC i; broken: full minus one link; slow: full with one link
  shaped to a quarter of the link rate. Every fabric port is shaped to the nominal link rate, so measured
  bandwidth is the link's, not the CPU's.

    mesh_fleet.py up --wiring full|rail-only|broken|slow [--hosts 4 --nics 8 --rate-mbit 200]
    mesh_fleet.py down
"""
import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

STATE = Path(os.environ.get("LLMD_FLEET_DIR", "/var/tmp/llmd-wide-ep/mesh-fleet"))
FABRIC = "llmd-mfab"
BROKEN = ((0, 2), (3, 5))     # host 0 NIC 2 <-> host 3 NIC 5
SLOW = ((1, 4), (2, 6))       # host 1 NIC 4 <-> host 2 NIC 6


def sh(*cmd, check=True):
    return subprocess.run(cmd, check=check, capture_output=True, text=True)


def ns(name, *cmd, check=True):
    return sh("ip", "netns", "exec", name, *cmd, check=check)


def host_ns(h):
    return "llmd-mh%d" % h


def addr(h, i):
    return "198.18.%d.%d" % (i, h + 1)


def remove_namespaces(wanted):
    """Kill what runs in each network namespace whose name `wanted` accepts, then delete the namespace."""
    for name in sh("ip", "netns", "list").stdout.split():
        if wanted(name):
            for pid in sh("ip", "netns", "pids", name, check=False).stdout.split():
                sh("kill", pid, check=False)
            sh("ip", "netns", "del", name, check=False)


def down():
    remove_namespaces(lambda name: name.startswith("llmd-mh") or name == FABRIC)


def shape(dev, rate_mbit, slow_src=None):
    """Egress of a fabric port at the link rate; traffic from slow_src at a quarter of it."""
    ns(FABRIC, "tc", "qdisc", "add", "dev", dev, "root", "handle", "1:", "htb", "default", "10")
    ns(FABRIC, "tc", "class", "add", "dev", dev, "parent", "1:", "classid", "1:10", "htb",
       "rate", "%dmbit" % rate_mbit, "ceil", "%dmbit" % rate_mbit)
    if slow_src:
        quarter = max(1, rate_mbit // 4)
        ns(FABRIC, "tc", "class", "add", "dev", dev, "parent", "1:", "classid", "1:20", "htb",
           "rate", "%dmbit" % quarter, "ceil", "%dmbit" % quarter)
        ns(FABRIC, "tc", "filter", "add", "dev", dev, "parent", "1:", "protocol", "ip", "prio", "1", "u32",
           "match", "ip", "src", slow_src + "/32", "flowid", "1:20")


def up(hosts, nics, wiring, rate_mbit):
    down()
    STATE.mkdir(parents=True, exist_ok=True)
    key = STATE / "id_ed25519"
    if not key.exists():
        sh("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key))
    (STATE / "authorized_keys").write_text(Path(str(key) + ".pub").read_text())
    os.chmod(STATE / "authorized_keys", 0o600)
    Path("/run/sshd").mkdir(exist_ok=True)
    sh("ip", "netns", "add", FABRIC)
    ns(FABRIC, "ip", "link", "set", "lo", "up")
    # no ICMP rate limit: the fabric answers every blocked packet, as a switch with ACLs would
    ns(FABRIC, "sysctl", "-qw", "net.ipv4.ip_forward=1", "net.ipv4.conf.all.rp_filter=0", "net.ipv4.icmp_ratelimit=0",
       "net.ipv4.icmp_msgs_per_sec=100000")
    for h in range(hosts):
        name = host_ns(h)
        sh("ip", "netns", "add", name)
        ns(name, "ip", "link", "set", "lo", "up")
        ns(name, "sysctl", "-qw", "net.ipv4.conf.all.rp_filter=0", "net.ipv4.conf.all.arp_ignore=1",
           "net.ipv4.conf.all.arp_announce=2", "net.ipv4.icmp_ratelimit=0", "net.ipv4.icmp_msgs_per_sec=100000")
        for i in range(nics):
            inner, outer = "nic%d" % i, "f%dn%d" % (h, i)
            sh("ip", "link", "add", outer, "netns", FABRIC, "type", "veth", "peer", "name", inner, "netns", name)
            ns(name, "ip", "addr", "add", addr(h, i) + "/32", "dev", inner)
            ns(name, "ip", "link", "set", inner, "up")
            # multi-rail source routing: traffic from NIC i leaves through NIC i
            ns(name, "ip", "route", "add", "default", "dev", inner, "table", str(100 + i))
            ns(name, "ip", "rule", "add", "from", addr(h, i), "table", str(100 + i))
            ns(FABRIC, "ip", "addr", "add", "198.19.0.1/32", "dev", outer)
            ns(FABRIC, "ip", "link", "set", outer, "up")
            # proxy ARP answers at once (the kernel default delays each answer up to 0.8 s)
            ns(FABRIC, "sysctl", "-qw", "net.ipv4.conf.%s.proxy_arp=1" % outer, "net.ipv4.conf.%s.rp_filter=0" % outer,
               "net.ipv4.neigh.%s.proxy_delay=0" % outer)
            ns(FABRIC, "ip", "route", "add", addr(h, i) + "/32", "dev", outer)
            slow_src = None
            if wiring == "slow" and (h, i) in SLOW:
                other = SLOW[1] if (h, i) == SLOW[0] else SLOW[0]
                slow_src = addr(*other)
            shape(outer, rate_mbit, slow_src)
        cfg = STATE / ("sshd-%d.conf" % h)
        hostkey = STATE / ("hostkey-%d" % h)
        if not hostkey.exists():
            sh("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(hostkey))
        cfg.write_text("\n".join([
            "ListenAddress 127.0.0.1", "Port 22", "HostKey %s" % hostkey, "PidFile %s/sshd-%d.pid" % (STATE, h),
            "AuthorizedKeysFile %s" % (STATE / "authorized_keys"), "PermitRootLogin prohibit-password",
            "PasswordAuthentication no", "KbdInteractiveAuthentication no", "UsePAM no", "StrictModes no",
            "MaxSessions 64", "MaxStartups 64", "Subsystem sftp internal-sftp", ""]))
        ns(name, "/usr/sbin/sshd", "-f", str(cfg))
    if wiring == "rail-only":
        for i in range(nics):
            ns(FABRIC, "ip", "rule", "add", "pref", "100", "from", "198.18.%d.0/24" % i, "to", "198.18.%d.0/24" % i,
               "lookup", "main")
        ns(FABRIC, "ip", "rule", "add", "pref", "200", "from", "198.18.0.0/16", "to", "198.18.0.0/16", "unreachable")
    if wiring == "broken":
        a, b = addr(*BROKEN[0]), addr(*BROKEN[1])
        ns(FABRIC, "ip", "rule", "add", "pref", "50", "from", a, "to", b, "unreachable")
        ns(FABRIC, "ip", "rule", "add", "pref", "50", "from", b, "to", a, "unreachable")
    inventory = {"all": {"children": {"gpu_nodes": {"hosts": {
        "h%d" % h: {
            # a name per host: the ProxyCommand picks the namespace, and SSH connection sharing stays per host
            "ansible_host": host_ns(h), "ansible_user": "root",
            "ansible_ssh_private_key_file": str(key),
            "ansible_ssh_common_args": ("-o ProxyCommand='ip netns exec %s nc 127.0.0.1 22' "
                                        "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null" % host_ns(h)),
            "ansible_python_interpreter": "/usr/bin/python3",
            "nic_mesh_nics": ["nic%d" % i for i in range(nics)],
            "nic_mesh_addresses": [addr(h, i) for i in range(nics)],
        } for h in range(hosts)}}}}}
    (STATE / "inventory.json").write_text(json.dumps(inventory, indent=1))
    return STATE / "inventory.json"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("action", choices=["up", "down"])
    ap.add_argument("--wiring", choices=["full", "rail-only", "broken", "slow"], default="full")
    ap.add_argument("--hosts", type=int, default=4)
    ap.add_argument("--nics", type=int, default=8)
    ap.add_argument("--rate-mbit", type=int, default=200)
    args = ap.parse_args()
    if args.action == "down":
        down()
    else:
        print(up(args.hosts, args.nics, args.wiring, args.rate_mbit))


if __name__ == "__main__":
    sys.exit(main())
