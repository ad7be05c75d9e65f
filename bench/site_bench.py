#!/usr/bin/env python3
"""site.yml, measured on the local cluster, two ways.

1. No-op re-run: `site.yml` again over a deployed stack, against the same content applied raw - `kubectl apply
   --server-side` of the CRDs and every object `playbooks/render.yml` exports, and `helm upgrade` of each helm
   release with its values - medians of --runs each, alternating; prints the ratio (target <= 1.5).
2. Growth: `site.yml` from an empty namespace on 4, 16 and 32 kwok nodes of 8 GPUs, prefill and decode groups
   filling them (decode DP 16 / 64 / 128); time and API requests per phase (render, preflight, apply, wait,
   verify, other), from bench/callback_plugins/bench_phases.py. Requests are the collection's own; helm's
   are not counted.

Run inside the cluster's namespace:
    tests/support/cluster/localcluster.py exec -- .venv/bin/python bench/site_bench.py [--runs 3] [--sizes 4,16,32]
"""
import argparse
import glob
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "collections"))
from ansible_collections.llmd.wide_ep.plugins.module_utils.k8s import apply as apply_  # noqa: E402
from ansible_collections.llmd.wide_ep.plugins.module_utils.k8s.client import Client  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("LLMD_CACHE", "/var/cache/llmd-wide-ep"))
BIN = CACHE / "bin"
KUBECONFIG = Path(os.environ.get("LLMD_CLUSTER_DIR", "/var/tmp/llmd-wide-ep/cluster")) / "kubeconfig"
NAMESPACE = "llm-d-wide-ep"
NODES = ROOT / "tests/support/cluster/nodes.yaml"
PHASES = ("render", "preflight", "apply", "wait", "verify", "other")


def sh(*argv, check=True):
    res = subprocess.run([str(a) for a in argv], cwd=ROOT, capture_output=True, text=True)
    if check and res.returncode:
        sys.exit("%s failed:\n%s%s" % (" ".join(map(str, argv[:4])), res.stdout[-3000:], res.stderr[-3000:]))
    return res.stdout


def kubectl(*args, check=True):
    return sh(BIN / "kubectl", "--kubeconfig", KUBECONFIG, *args, check=check)


def site(extra, phases_out=None):
    """Run site.yml; (seconds, changed, phases)."""
    env = {**os.environ, "ANSIBLE_CALLBACK_PLUGINS": str(ROOT / "bench/callback_plugins"),
           "ANSIBLE_CALLBACKS_ENABLED": "llmd.wide_ep.progress,bench_phases",
           "BENCH_PHASES_OUT": phases_out or os.devnull}
    t0 = time.perf_counter()
    res = subprocess.run([str(ROOT / ".venv/bin/ansible-playbook"), "site.yml", "-i", "inventories/local",
                          "-e", json.dumps(extra)], cwd=ROOT, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if res.returncode:
        sys.exit("site.yml failed:\n%s%s" % (res.stdout[-4000:], res.stderr[-2000:]))
    changed = int(re.search(r"changed=(\d+)", res.stdout.rsplit("PLAY RECAP", 1)[1]).group(1))
    phases = json.loads(Path(phases_out).read_text()) if phases_out else {}
    return seconds, changed, phases


def raw_content(workdir):
    """(kubectl apply argv, [helm upgrade argv]) of what site.yml applies."""
    render = workdir / "render"
    sh(ROOT / ".venv/bin/ansible-playbook", "playbooks/render.yml", "-i", "inventories/local",
       "-e", "render_dir=%s" % render)
    files = sorted(glob.glob(str(render / "[0-9][0-9]-*.yaml")))
    inventory = yaml.safe_load((ROOT / "inventories/local/group_vars/all/wide_ep.yml").read_text())
    crds = []
    for source in inventory["gateway_api_crds_sources"]:  # the CRDs site.yml applies each run, as it sends them
        for path in sorted(glob.glob(os.path.join(source.replace("{{ local_cache }}", str(CACHE)), "*.yaml"))):
            crds += [apply_.with_digest(o) for o in yaml.safe_load_all(Path(path).read_text()) if o]
    # not those site.yml leaves at a newer installed release (keep_newer_bundles): what it sends, nothing else
    crds = apply_.keep_newer_bundles(Client({"kubeconfig": str(KUBECONFIG)}), crds)[0]
    (workdir / "crds.yaml").write_text(yaml.safe_dump_all(crds))
    files.append(str(workdir / "crds.yaml"))
    apply = [BIN / "kubectl", "--kubeconfig", KUBECONFIG, "apply", "--server-side", "--field-manager=llmd.wide_ep",
             "--force-conflicts", "-R", *[a for f in files for a in ("-f", f)]]
    upgrades = []
    for release in json.loads(sh(BIN / "helm", "--kubeconfig", KUBECONFIG, "list", "-A", "-o", "json")):
        chart = glob.glob(str(CACHE / "data" / "**" / (release["chart"] + ".tgz")), recursive=True)
        if not chart:
            sys.exit("no local chart %s.tgz under %s/data for release %s" % (
                release["chart"], CACHE, release["name"]))
        values = workdir / ("%s-values.yaml" % release["name"])
        values.write_text(sh(BIN / "helm", "--kubeconfig", KUBECONFIG, "get", "values", release["name"], "-n",
                             release["namespace"], "-o", "yaml"))
        upgrades.append([BIN / "helm", "--kubeconfig", KUBECONFIG, "upgrade", release["name"], chart[0],
                         "-n", release["namespace"], "-f", values])
    return apply, upgrades


def timed(*commands):
    t0 = time.perf_counter()
    for argv in commands:
        sh(*argv)
    return time.perf_counter() - t0


def noop(runs):
    site({})  # deploy (or converge) first
    with tempfile.TemporaryDirectory() as tmp:
        apply, upgrades = raw_content(Path(tmp))
        timed(apply, *upgrades)  # warm-up, as site.yml's first run was
        ours, raw = [], []
        for _ in range(runs):
            seconds, changed, _ = site({})
            if changed:
                sys.exit("site.yml reported changed=%d on a no-op re-run" % changed)
            ours.append(seconds)
            raw.append(timed(apply, *upgrades))
    a, b = statistics.median(ours), statistics.median(raw)
    print("no-op re-run, medians of %d:" % runs)
    print("  site.yml (preflight, add-ons, model servers, verify)     %7.2f s" % a)
    print("  kubectl apply --server-side (%d files) + %d helm upgrade  %7.2f s" % (
        sum(1 for x in apply if str(x) == "-f"), len(upgrades), b))
    print("  ratio site.yml / raw kubectl + helm = %.2f   (target <= 1.5)" % (a / b))


def nodes(count):
    """Make the kwok fleet exactly `count` 8-GPU nodes (gpu-node-0..count-1), shaped like nodes.yaml's."""
    spec = yaml.safe_load(NODES.read_text())
    base = spec["defaults"]
    existing = set(kubectl("get", "nodes", "-o", "name").split())
    missing = []
    for i in range(count):
        node = spec["nodes"][i] if i < len(spec["nodes"]) else dict(spec["nodes"][i % len(spec["nodes"])],
                                                                    name="gpu-node-%d" % i)
        if "node/" + node["name"] in existing:
            continue
        labels = dict(base["labels"], **node.get("labels", {}), **{"kubernetes.io/hostname": node["name"]})
        missing.append({"apiVersion": "v1", "kind": "Node", "metadata": {
            "name": node["name"], "labels": labels, "annotations": base["annotations"]},
            "status": {"capacity": base["capacity"], "allocatable": base["capacity"]}})
    if missing:
        with tempfile.NamedTemporaryFile("w", suffix=".yaml") as fh:
            yaml.safe_dump_all(missing, fh)
            fh.flush()
            kubectl("create", "-f", fh.name)
    extra = [n for n in existing if n.startswith("node/gpu-node-") and int(n.rsplit("-", 1)[1]) >= count]
    if extra:
        kubectl("delete", *extra)
    kubectl("wait", "--for=condition=Ready", "--timeout=120s", "nodes", "-l", "type=kwok")


def growth(sizes):
    print("site.yml from an empty namespace (seconds / API requests per phase):")
    print("%-6s %-9s" % ("nodes", "decode DP") + "".join("%16s" % p for p in PHASES) + "%9s" % "total")
    try:
        for count in sizes:
            kubectl("delete", "namespace", NAMESPACE, "--ignore-not-found", "--timeout=300s")
            nodes(count)
            half = count // 2
            group = {"replicas": 1, "group_size": half, "dp_local": 8}
            with tempfile.NamedTemporaryFile(suffix=".json") as out:
                # routed (256) + redundant experts divisible by the EP size: 32 at DP 16, 64 at 64, 128 at 128
                seconds, _, phases = site({"wide_ep_prefill": group, "wide_ep_decode": group,
                                           "wide_ep_redundant_experts": max(32, half * 8),
                                           "modelserver_wait_timeout": 900}, out.name)
            cells = "".join("%16s" % ("%.1f s / %d" % (phases[p]["seconds"], phases[p]["requests"])
                                      if p in phases else "-") for p in PHASES)
            print("%-6d %-9d" % (count, half * 8) + cells + "%8.1fs" % seconds, flush=True)
    finally:
        kubectl("delete", "namespace", NAMESPACE, "--ignore-not-found", "--timeout=300s", check=False)
        nodes(4)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--sizes", default="4,16,32")
    ap.add_argument("--skip-noop", action="store_true")
    args = ap.parse_args()
    if not args.skip_noop:
        noop(args.runs)
    if args.sizes:
        growth([int(s) for s in args.sizes.split(",")])


if __name__ == "__main__":
    main()
