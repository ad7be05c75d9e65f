#!/usr/bin/env python3
"""No-op re-apply of the whole object set: this collection's modules vs kubernetes.core.k8s tasks.

Both run with the same ansible-core from the bench-only environment (bench/requirements.txt), against the same
local cluster, alternating, after one warm-up run each; prints the medians and their ratio (target <= 0.25).
Run inside the cluster's namespace:  tests/support/cluster/localcluster.py exec -- bench/apply_bench.py [--runs N]
"""
import argparse
import hashlib
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("LLMD_CACHE", "/var/cache/llmd-wide-ep"))
VENV = CACHE / "bench-venv"
KUBECONFIG = Path(os.environ.get("LLMD_CLUSTER_DIR", "/var/tmp/llmd-wide-ep/cluster")) / "kubeconfig"


def ensure_venv():
    """The bench runs inside the cluster's namespace, where nothing can be installed: setup.sh --bench builds the
    venv outside it, stamped with bench/requirements.txt."""
    want = hashlib.sha256((ROOT / "bench/requirements.txt").read_bytes()).hexdigest()[:16]
    stamp = VENV / ".stamp"
    if not (VENV / "bin" / "ansible-playbook").exists() or not stamp.exists() or stamp.read_text().strip() != want:
        sys.exit(f"the benchmark venv {VENV} is missing or older than bench/requirements.txt: "
                 "build it with ./scripts/setup.sh --bench (outside the cluster's network namespace)")


def run(playbook, in_process=True):
    env = {**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"), "LLMD_WIDE_EP_IN_PROCESS": str(int(in_process)),
           # kubernetes.core from the `ansible` package; llmd.wide_ep from the checkout
           "ANSIBLE_COLLECTIONS_PATH": f"{ROOT / 'collections'}:{VENV}/lib/python3.11/site-packages"}
    t0 = time.perf_counter()
    res = subprocess.run([str(VENV / "bin/ansible-playbook"), str(ROOT / playbook), "-i", "inventories/local"],
                         cwd=ROOT, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - t0
    if res.returncode:
        sys.exit(f"{playbook} failed:\n{res.stdout[-3000:]}{res.stderr[-2000:]}")
    changed = int(re.search(r"changed=(\d+)", res.stdout).group(1))
    apply_seconds = float(re.search(r"APPLY_SECONDS=([0-9.]+)", res.stdout).group(1))
    return elapsed, apply_seconds, changed


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    ensure_venv()
    try:
        measure(args.runs)
    finally:  # give the local cluster's GPUs back
        subprocess.run([str(CACHE / "bin/kubectl"), "--kubeconfig", str(KUBECONFIG), "delete", "namespace",
                        "llm-d-wide-ep", "--ignore-not-found", "--timeout=120s"], capture_output=True)


def measure(runs):
    ours, roles, base = "bench/apply_ours.yml", "bench/apply_roles.yml", "bench/apply_kubernetes_core.yml"
    spawned = "spawned"  # apply_ours.yml with each module in a Python of its own (LLMD_WIDE_EP_IN_PROCESS=0)
    variants = {ours: (ours, True), roles: (roles, True), base: (base, True), spawned: (ours, False)}
    for pb, in_process in variants.values():  # warm-up: creates the objects, fills kubernetes.core's cache
        run(pb, in_process)
    walls, applies = {k: [] for k in variants}, {k: [] for k in variants}
    for _ in range(runs):
        for key, (pb, in_process) in variants.items():
            elapsed, apply_seconds, changed = run(pb, in_process)
            if changed:
                sys.exit(f"{pb} reported changed={changed} on a no-op re-apply")
            walls[key].append(elapsed)
            applies[key].append(apply_seconds)
    med = {k: (statistics.median(walls[k]), statistics.median(applies[k])) for k in walls}
    print(f"objects: Namespace, ServiceAccount, 2 LeaderWorkerSets, Gateway, HTTPRoute; runs: {runs}")
    print(f"{'':28}{'apply tasks':>14}{'whole playbook':>17}")
    for label, key in (("llmd.wide_ep, one call", ours), ("llmd.wide_ep, as the roles", roles),
                       ("llmd.wide_ep, module process", spawned), ("kubernetes.core.k8s tasks", base)):
        print(f"{label:28}{med[key][1]:12.2f} s{med[key][0]:15.2f} s")
    print(f"ratio apply, one call / kubernetes.core      = {med[ours][1] / med[base][1]:.3f}   (target <= 0.25)")
    print(f"ratio apply, as the roles / kubernetes.core  = {med[roles][1] / med[base][1]:.3f}")
    print(f"ratio apply, module process / kubernetes.core = {med[spawned][1] / med[base][1]:.3f}")
    print(f"ratio whole playbook, one call               = {med[ours][0] / med[base][0]:.3f}")


if __name__ == "__main__":
    main()
