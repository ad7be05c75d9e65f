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

from ansible_collections.llmd.wide_ep.plugins.module_utils.benchmark import run
from ansible_collections.llmd.wide_ep.plugins.module_utils.runner import run_module


def main():
    run_module(dict(
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
        timeout={"type": "int"}),
        lambda ctx: run.benchmark(ctx.client if run.needs_api(ctx.params) else None, ctx.params, ctx.check_mode),
        supports_check_mode=True)


if __name__ == "__main__":
    main()
