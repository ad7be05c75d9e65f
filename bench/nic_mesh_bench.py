#!/usr/bin/env python3
"""NIC mesh preflight performance: schedule size and planning time, and the fleet's wall time vs its bound.

    bench/nic_mesh_bench.py [--duration 0.5]     (as root; builds and removes the 4 x 8 netns fleet)

Prints: rounds vs the lower bound for several sizes, the time to plan 64 hosts x 8 NICs (target < 1 s), and on
the 4 x 8 full-mesh fleet the agents' wall time against rounds x the time of one probe run alone
(target ratio <= 1.2), plus the whole playbook's wall time for reference.
"""
import argparse
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "collections"))
sys.path.insert(0, str(ROOT / "tests" / "support" / "fleet"))

import mesh_fleet  # noqa: E402

from ansible_collections.llmd.wide_ep.plugins.module_utils.fabric import nic_mesh  # noqa: E402

AGENT = """
import json, sys
sys.path.insert(0, %r)
from ansible_collections.llmd.wide_ep.plugins.module_utils.fabric.mesh_probe import run_agent
a = json.load(open(sys.argv[1]))
print(json.dumps(run_agent(a["host"], a["rounds"], a["nics"], "tcp", a["duration"], 21000, 60, 1.0)))
"""


def agents(plan, table, duration, hosts):
    out, threads = {}, []
    for h in hosts:
        cfg = Path("/tmp/llmd-mesh-bench-%s.json" % h)
        cfg.write_text(json.dumps({"host": h, "rounds": plan["rounds"], "nics": table, "duration": duration}))

        def work(h=h, cfg=cfg):
            res = subprocess.run(["ip", "netns", "exec", mesh_fleet.host_ns(int(h[1:])), "/usr/bin/python3", "-c",
                                  AGENT % str(ROOT / "collections"), str(cfg)], capture_output=True, text=True)
            out[h] = json.loads(res.stdout)
        th = threading.Thread(target=work)
        th.start()
        threads.append(th)
    t0 = time.perf_counter()
    for th in threads:
        th.join()
    return time.perf_counter() - t0, out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=float, default=0.5)
    ap.add_argument("--rate-mbit", type=int, default=100)
    args = ap.parse_args()
    print("schedule: rounds vs bound")
    for n, k in ((4, 8), (5, 8), (5, 7), (16, 8), (64, 8)):
        rounds = len(nic_mesh.schedule(n, k))
        print("  %2d hosts x %d NICs: %4d rounds, bound %4d, ratio %.3f" % (
            n, k, rounds, nic_mesh.min_rounds(n, k), rounds / nic_mesh.min_rounds(n, k)))
    t0 = time.perf_counter()
    nic_mesh.schedule(64, 8)
    print("plan 64 x 8: %.3f s (target < 1 s)" % (time.perf_counter() - t0))

    inv = json.loads(Path(mesh_fleet.up(4, 8, "full", args.rate_mbit)).read_text())
    try:
        hosts = sorted(inv["all"]["children"]["gpu_nodes"]["hosts"])
        hv = inv["all"]["children"]["gpu_nodes"]["hosts"]
        table = {h: [{"device": d, "address": a} for d, a in zip(hv[h]["nic_mesh_nics"], hv[h]["nic_mesh_addresses"],
                                                                  strict=True)] for h in hosts}
        one = nic_mesh.plan(hosts[:2], {h: hv[h]["nic_mesh_nics"] for h in hosts[:2]})
        one["rounds"] = [one["rounds"][0][:1]]          # a single probe, alone
        probe = sorted(agents(one, table, args.duration, hosts[:2])[0] for _ in range(3))[1]  # median of 3
        plan = nic_mesh.plan(hosts, {h: hv[h]["nic_mesh_nics"] for h in hosts})
        wall, out = agents(plan, table, args.duration, hosts)
        ok = sum(r["connected"] for o in out.values() for r in o["records"])
        rounds = len(plan["rounds"])
        print("fleet 4 x 8 full mesh: %d rounds, %d/%d links connected" % (rounds, ok, sum(map(len, plan["rounds"]))))
        print("  one probe alone: %.3f s; agents' wall time %.2f s; bound rounds x probe = %.2f s" % (
            probe, wall, rounds * probe))
        print("  ratio wall / (rounds x probe) = %.3f (target <= 1.2)" % (wall / (rounds * probe)))
        t0 = time.perf_counter()
        playbook = str(Path(sys.executable).parent / "ansible-playbook")
        res = subprocess.run([playbook, "playbooks/preflight.yml", "-i", str(mesh_fleet.STATE / "inventory.json"),
                              "-e", "nic_mesh_link_rate=%de6" % (args.rate_mbit * 0.95),
                              "-e", "nic_mesh_duration=%s" % args.duration,
                              "-e", "nic_mesh_report_dir=/tmp/llmd-mesh-bench"], cwd=ROOT, capture_output=True)
        print("  whole playbook (plan, agents over SSH, report): %.1f s, rc=%d" % (time.perf_counter() - t0,
                                                                                 res.returncode))
    finally:
        mesh_fleet.down()


if __name__ == "__main__":
    main()
