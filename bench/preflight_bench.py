#!/usr/bin/env python3
"""The cluster preflight (module workload_preflight) at the guide's size and at 32 nodes, on the local cluster.

For each fleet size (kwok nodes of 8 GPUs, gpu-node-0..N-1, as bench/site_bench.py makes them) and the topology
that fills it (prefill and decode groups of N/2 pods): `playbooks/preflight_cluster.yml`, the module's own time
and API requests (from its result), against the raw reads it makes - `kubectl get nodes` and `kubectl get pods
-A` - timed in the same run. Medians of --runs.

    tests/support/cluster/localcluster.py exec -- .venv/bin/python bench/preflight_bench.py [--sizes 4,32] [--runs 3]
"""
import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from site_bench import BIN, KUBECONFIG, nodes  # noqa: E402

from tests.support.runs import run_playbook, task_results  # noqa: E402


def preflight(count):
    """(module seconds, API requests, verdicts) of one preflight_cluster.yml run for `count` nodes."""
    half = count // 2
    group = {"replicas": 1, "group_size": half, "dp_local": 8}
    # the deployment's own namespace: a stack it already runs there counts as free (the plan replaces it)
    extra = {"wide_ep_prefill": group, "wide_ep_decode": group, "wide_ep_redundant_experts": max(32, half * 8)}
    rc, stats, out, log = run_playbook("playbooks/preflight_cluster.yml", extra_vars=extra)
    for result in task_results(out, "Check the cluster can run the model servers"):
        result = result["localhost"]
        if rc:
            sys.exit("preflight failed at %d nodes:\n%s" % (count, "\n".join(result.get("report", [log[-2000:]]))))
        return result["seconds"], result["api_requests"], {c["name"]: c["status"] for c in result["checks"]}
    sys.exit("no preflight task ran:\n%s" % log[-2000:])


def raw_reads():
    t0 = time.perf_counter()
    for args in (("get", "nodes", "-o", "json"), ("get", "pods", "-A", "-o", "json")):
        subprocess.run([str(BIN / "kubectl"), "--kubeconfig", str(KUBECONFIG), *args], check=True,
                       capture_output=True)
    return time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="4,32")
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    print("%-6s %-10s %-12s %-14s %-9s %s" % ("nodes", "decode DP", "preflight", "raw reads", "requests", "ratio"))
    try:
        for count in [int(s) for s in args.sizes.split(",")]:
            nodes(count)
            ours, raw, requests, verdicts = [], [], 0, {}
            for _ in range(args.runs):
                seconds, requests, verdicts = preflight(count)
                ours.append(seconds)
                raw.append(raw_reads())
            a, b = statistics.median(ours), statistics.median(raw)
            print("%-6d %-10d %-12s %-14s %-9d %.2f   %s" % (count, count // 2 * 8, "%.3f s" % a, "%.3f s" % b,
                                                            requests, a / b, verdicts), flush=True)
    finally:
        nodes(4)


if __name__ == "__main__":
    main()
