# Copyright: llm-d wide-EP collection contributors
# Apache-2.0
"""Running inference-perf against the gateway: as a Kubernetes Job (its reports read back from the pod's log) or
as a local process, and the stage reports written where benchmark_report reads them."""
from __future__ import annotations

import json
import os
import subprocess
import time

from ansible_collections.llmd.wide_ep.plugins.module_utils.benchmark import inference_perf
from ansible_collections.llmd.wide_ep.plugins.module_utils.errors import InvalidInput, WideEPError
from ansible_collections.llmd.wide_ep.plugins.module_utils.k8s import serving
from ansible_collections.llmd.wide_ep.plugins.module_utils.k8s.client import describe
from ansible_collections.llmd.wide_ep.plugins.module_utils.k8s.errors import K8sError
from ansible_collections.llmd.wide_ep.plugins.module_utils.k8s.readiness import condition
from ansible_collections.llmd.wide_ep.plugins.module_utils.progress import Progress


def run_job(client, p, config, timeout):
    objs = inference_perf.job_objects(p, p["namespace"], config, p["image"], timeout, p["hf_token_secret"])
    job = objs[1]
    old = client.get(job)
    if old is not None:
        if old["metadata"].get("labels", {}).get("app.kubernetes.io/managed-by") != "llmd.wide_ep":
            raise WideEPError("Job %s/%s exists and was not made by this collection: not touching it" % (
                p["namespace"], inference_perf.JOB_NAME))
        client.delete(old)
        deadline = time.time() + 120
        while client.get(job) is not None:
            if time.time() > deadline:
                raise K8sError("the previous Job %s did not go away in 120s" % inference_perf.JOB_NAME)
            time.sleep(1)
    for obj in objs:
        client.apply(obj, force=True)
    progress, last = Progress(), None
    deadline = time.time() + timeout
    while True:
        live = client.get(job)
        done = [c for c in ("Complete", "Failed") if condition(live, c).get("status") == "True"]
        state = done[0] if done else "active=%s" % live.get("status", {}).get("active", 0)
        if state != last:
            progress.append("%s Job %s: %s" % (time.strftime("%H:%M:%S"), inference_perf.JOB_NAME, state))
            last = state
        if done:
            break
        if time.time() > deadline:
            raise K8sError("the benchmark Job did not finish in %ss (%s); it is left in place for its logs" % (
                timeout, state))
        time.sleep(5)
    pods = client.list("v1", "Pod", p["namespace"], label_selector="job-name=%s" % inference_perf.JOB_NAME)
    if not pods:
        raise K8sError("the benchmark Job finished (%s) but its pod is gone: no log to read" % last)
    pod = sorted(pods, key=lambda x: x["metadata"]["creationTimestamp"])[-1]
    name = pod["metadata"]["name"]
    try:
        log = client.logs(p["namespace"], name, container="inference-perf")
    except K8sError as exc:
        raise K8sError("the benchmark Job finished (%s) but the log of pod %s cannot be read (%s); the "
                       "reports are only in that log" % (last, name, exc)) from None
    results = inference_perf.results_from_log(log)
    if last == "Failed" or not results:
        tail = "\n".join(log.splitlines()[-20:])
        raise WideEPError("the benchmark Job %s; last log lines:\n%s" % (
            "failed" if last == "Failed" else "wrote no reports", tail), progress=progress)
    return results, progress


def run_local(p, config, timeout):
    os.makedirs(p["results_dir"], exist_ok=True)
    cfg_path = os.path.join(p["results_dir"], "inference-perf-config.json")
    with open(cfg_path, "w") as f:
        json.dump(config, f, indent=2)
    try:
        proc = subprocess.run([p["inference_perf"], "--config_file", cfg_path], capture_output=True, text=True,
                              timeout=timeout, cwd=p["results_dir"], check=False)
    except FileNotFoundError:
        raise InvalidInput("inference-perf not found at %r (benchmark_inference_perf): install inference-perf "
                           "0.7.0 (Python >= 3.12) or use transport job" % p["inference_perf"]) from None
    except subprocess.TimeoutExpired:
        raise WideEPError("inference-perf did not finish in %ss" % timeout) from None
    if proc.returncode != 0:
        raise WideEPError("inference-perf exited %d: %s" % (proc.returncode, proc.stderr[-2000:]))
    results = {}
    for name in os.listdir(p["results_dir"]):
        if name.endswith(".json") and name != "inference-perf-config.json":
            with open(os.path.join(p["results_dir"], name)) as f:
                results[name] = json.load(f)
    return results, proc.stdout.splitlines()[-15:]


def needs_api(p):
    """The Job runs in the cluster; a local run needs the API only to find the gateway's address."""
    return p["transport"] == "job" or not p["base_url"]


def benchmark(client, p, check_mode=False):
    """Validate, configure and run inference-perf (as a Job or locally) and write its stage reports under
    results_dir. In check mode: the configuration and the Job's objects, nothing run."""
    p = dict(p, namespace=p["refs"]["namespace"],
             stages=[int(s) if float(s).is_integer() else s for s in p["stages"]])
    problems = inference_perf.validate(p)
    if problems:
        raise InvalidInput("; ".join(problems))
    timeout = p["timeout"] or int(len(p["stages"]) * p["stage_duration"] + 900)
    gateway = p["refs"].get("gateway")
    base_url = p["base_url"] or serving.gateway_url_in_cluster(client, gateway, p["refs"].get("standalone_entry"))
    if not base_url:
        raise WideEPError("no gateway URL: %s; set benchmark_base_url" % (
            "Gateway %s has no address and no Service carries its label" % describe(gateway) if gateway
            else "the deployment has no gateway (wide_ep_gateway: none)"))
    results_path = inference_perf.RESULTS_DIR if p["transport"] == "job" else p["results_dir"]
    config = inference_perf.perf_config(p, base_url.rstrip("/"), p["tokenizer"] or p["model"], results_path)
    out = {"changed": True, "config": config, "base_url": base_url}
    if check_mode:
        if p["transport"] == "job":
            out["objects"] = inference_perf.job_objects(p, p["namespace"], config, p["image"], timeout,
                                                        p["hf_token_secret"])
        return out
    if p["transport"] == "job":
        results, progress = run_job(client, p, config, timeout)
    else:
        results, progress = run_local(p, config, timeout)
    os.makedirs(p["results_dir"], exist_ok=True)
    files = []
    for name, doc in sorted(results.items()):
        path = os.path.join(p["results_dir"], name)
        if p["transport"] == "job":  # local runs wrote their files themselves
            with open(path, "w") as f:
                json.dump(doc, f, indent=1)
        files.append(path)
    return dict(out, files=files, progress=progress)
