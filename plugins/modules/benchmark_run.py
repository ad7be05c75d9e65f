#!/usr/bin/python
# Copyright: llm-d wide-EP collection contributors
# Apache-2.0
from __future__ import annotations

DOCUMENTATION = r"""
module: benchmark_run
short_description: Run the guide's inference-perf benchmark against the gateway and collect its reports
description:
  - Builds inference-perf's configuration from the guide's wide-EP template - constant load, one stage per
    O(stages) rate for O(stage_duration) seconds, streaming completions, random prompts of exactly
    O(input_tokens) tokens asking for exactly O(output_tokens) with C(ignore_eos), O(prompts) of them.
  - C(transport=job) (the guide's way) applies ConfigMap C(inference-perf-config) and Job C(wide-ep-benchmark)
    in the namespace, with the gateway's in-cluster URL; waits for the Job; reads each report back from the
    pod's log (no volume needed); writes them to O(results_dir). A previous Job of this collection is deleted
    first; one it did not make is never touched.
  - C(transport=local) runs O(inference_perf) on the controller against O(base_url) and writes its reports to
    O(results_dir) (used for a port-forwarded gateway, and for the simulator proof of this collection).
  - In check mode returns the configuration and the objects and changes nothing.
version_added: 0.2.0
author: llm-d wide-EP collection contributors (@llm-d)
options:
  refs:
    description: The plan's references (C(wide_ep_plan.refs)) - the namespace (of the Job too) and the Gateway.
    type: dict
    required: true
  model:
    description: Model the requests name (the served model).
    type: str
    required: true
  transport:
    description: Where inference-perf runs.
    type: str
    choices: [job, local]
    default: job
  base_url:
    description: Gateway URL; default - the Gateway's address, else its Service's cluster DNS name.
    type: str
  stages:
    description: Request rates (QPS) of the stages.
    type: list
    elements: float
    default: [80, 100, 150, 200, 250]
  stage_duration:
    description: Seconds per stage.
    type: int
    default: 30
  input_tokens:
    description: Prompt length in tokens.
    type: int
    default: 1000
  output_tokens:
    description: Output length in tokens.
    type: int
    default: 1000
  prompts:
    description: Prompts generated.
    type: int
    default: 8000
  workers:
    description: inference-perf worker processes; default - its own (the CPU count).
    type: int
  tokenizer:
    description: Tokenizer name or path; default - the model.
    type: str
  image:
    description: inference-perf image of the Job.
    type: str
    default: quay.io/inference-perf/inference-perf:v0.7.0
  hf_token_secret:
    description: Secret with key C(HF_TOKEN) for the tokenizer download (the key is optional).
    type: str
    default: llm-d-hf-token
  inference_perf:
    description: inference-perf executable for C(transport=local).
    type: path
    default: inference-perf
  results_dir:
    description: Directory on the controller that receives the reports.
    type: path
    required: true
  timeout:
    description: Seconds allowed for the run; default - the stages' time plus 15 minutes.
    type: int
extends_documentation_fragment:
  - llmd.wide_ep.k8s
"""

EXAMPLES = r"""
- name: Benchmark the stack the guide's way
  llmd.wide_ep.benchmark_run:
    refs: "{{ wide_ep_plan.refs }}"
    model: deepseek-ai/DeepSeek-R1-0528
    results_dir: /tmp/wide-ep-bench/raw
"""

RETURN = r"""
config:
  description: inference-perf's configuration.
  returned: always
  type: dict
files:
  description: Report files written to O(results_dir).
  returned: success
  type: list
  elements: str
base_url:
  description: The gateway URL the requests went to.
  returned: always
  type: str
"""

import json
import os
import subprocess
import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.llmd.wide_ep.plugins.module_utils import benchmark, serving
from ansible_collections.llmd.wide_ep.plugins.module_utils.k8s.auth import AUTH_ARG_SPEC
from ansible_collections.llmd.wide_ep.plugins.module_utils.k8s.client import Client, describe
from ansible_collections.llmd.wide_ep.plugins.module_utils.k8s.errors import K8sError
from ansible_collections.llmd.wide_ep.plugins.module_utils.k8s.readiness import condition
from ansible_collections.llmd.wide_ep.plugins.module_utils.progress import Progress


def run_job(module, client, p, config, timeout):
    objs = benchmark.job_objects(p, p["namespace"], config, p["image"], timeout, p["hf_token_secret"])
    job = objs[1]
    old = client.get(job)
    if old is not None:
        if old["metadata"].get("labels", {}).get("app.kubernetes.io/managed-by") != "llmd.wide_ep":
            module.fail_json(msg="Job %s/%s exists and was not made by this collection: not touching it" % (
                p["namespace"], benchmark.JOB_NAME))
        client.delete(old)
        deadline = time.time() + 120
        while client.get(job) is not None:
            if time.time() > deadline:
                raise K8sError("the previous Job %s did not go away in 120s" % benchmark.JOB_NAME)
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
            progress.append("%s Job %s: %s" % (time.strftime("%H:%M:%S"), benchmark.JOB_NAME, state))
            last = state
        if done:
            break
        if time.time() > deadline:
            raise K8sError("the benchmark Job did not finish in %ss (%s); it is left in place for its logs" % (
                timeout, state))
        time.sleep(5)
    pods = client.list("v1", "Pod", p["namespace"], label_selector="job-name=%s" % benchmark.JOB_NAME)
    if not pods:
        raise K8sError("the benchmark Job finished (%s) but its pod is gone: no log to read" % last)
    pod = sorted(pods, key=lambda x: x["metadata"]["creationTimestamp"])[-1]
    name = pod["metadata"]["name"]
    try:
        log = client.logs(p["namespace"], name, container="inference-perf")
    except K8sError as exc:
        raise K8sError("the benchmark Job finished (%s) but the log of pod %s cannot be read (%s); the "
                       "reports are only in that log" % (last, name, exc)) from None
    results = benchmark.results_from_log(log)
    if last == "Failed" or not results:
        tail = "\n".join(log.splitlines()[-20:])
        module.fail_json(msg="the benchmark Job %s; last log lines:\n%s" % (
            "failed" if last == "Failed" else "wrote no reports", tail), progress=progress)
    return results, progress


def run_local(module, p, config, timeout):
    os.makedirs(p["results_dir"], exist_ok=True)
    cfg_path = os.path.join(p["results_dir"], "inference-perf-config.json")
    with open(cfg_path, "w") as f:
        json.dump(config, f, indent=2)
    try:
        proc = subprocess.run([p["inference_perf"], "--config_file", cfg_path], capture_output=True, text=True,
                              timeout=timeout, cwd=p["results_dir"], check=False)
    except FileNotFoundError:
        module.fail_json(msg="inference-perf not found at %r (benchmark_inference_perf): install inference-perf "
                             "0.7.0 (Python >= 3.12) or use transport job" % p["inference_perf"])
    except subprocess.TimeoutExpired:
        module.fail_json(msg="inference-perf did not finish in %ss" % timeout)
    if proc.returncode != 0:
        module.fail_json(msg="inference-perf exited %d: %s" % (proc.returncode, proc.stderr[-2000:]))
    results = {}
    for name in os.listdir(p["results_dir"]):
        if name.endswith(".json") and name != "inference-perf-config.json":
            with open(os.path.join(p["results_dir"], name)) as f:
                results[name] = json.load(f)
    return results, proc.stdout.splitlines()[-15:]


def main():
    spec = dict(AUTH_ARG_SPEC)
    spec.update(
        refs={"type": "dict", "required": True}, model={"type": "str", "required": True},
        transport={"type": "str", "choices": ["job", "local"], "default": "job"}, base_url={"type": "str"},
        stages={"type": "list", "elements": "float", "default": [80, 100, 150, 200, 250]},
        stage_duration={"type": "int", "default": 30},
        input_tokens={"type": "int", "default": 1000, "no_log": False},    # token counts, not secrets
        output_tokens={"type": "int", "default": 1000, "no_log": False},
        prompts={"type": "int", "default": 8000},
        workers={"type": "int"}, tokenizer={"type": "str", "no_log": False},
        image={"type": "str", "default": "quay.io/inference-perf/inference-perf:v0.7.0"},
        hf_token_secret={"type": "str", "default": "llm-d-hf-token", "no_log": False},
        inference_perf={"type": "path", "default": "inference-perf"}, results_dir={"type": "path", "required": True},
        timeout={"type": "int"},
    )
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True)
    p = module.params
    p["namespace"] = p["refs"]["namespace"]
    p["stages"] = [int(s) if float(s).is_integer() else s for s in p["stages"]]
    problems = benchmark.validate(p)
    if problems:
        module.fail_json(msg="; ".join(problems))
    timeout = p["timeout"] or int(len(p["stages"]) * p["stage_duration"] + 900)
    try:
        need_api = p["transport"] == "job" or not p["base_url"]
        client = Client(p) if need_api else None
        gateway = p["refs"].get("gateway")
        base_url = p["base_url"] or serving.gateway_url_in_cluster(client, gateway, p["refs"].get("standalone_entry"))
        if not base_url:
            module.fail_json(msg="no gateway URL: %s; set benchmark_base_url" % (
                "Gateway %s has no address and no Service carries its label" % describe(gateway) if gateway
                else "the deployment has no gateway (wide_ep_gateway: none)"))
        results_path = benchmark.RESULTS_DIR if p["transport"] == "job" else p["results_dir"]
        config = benchmark.perf_config(p, base_url.rstrip("/"), p["tokenizer"] or p["model"], results_path)
        out = {"config": config, "base_url": base_url}
        if module.check_mode:
            if p["transport"] == "job":
                out["objects"] = benchmark.job_objects(p, p["namespace"], config, p["image"], timeout,
                                                       p["hf_token_secret"])
            module.exit_json(changed=True, **out)
        if p["transport"] == "job":
            results, progress = run_job(module, client, p, config, timeout)
        else:
            results, progress = run_local(module, p, config, timeout)
    except K8sError as exc:
        module.fail_json(msg=str(exc))
    os.makedirs(p["results_dir"], exist_ok=True)
    files = []
    for name, doc in sorted(results.items()):
        path = os.path.join(p["results_dir"], name)
        if p["transport"] == "job":  # local runs wrote their files themselves
            with open(path, "w") as f:
                json.dump(doc, f, indent=1)
        files.append(path)
    module.exit_json(changed=True, files=files, progress=progress, **out)


if __name__ == "__main__":
    main()
