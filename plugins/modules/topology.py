#!/usr/bin/python
# Copyright: llm-d wide-EP collection contributors
# Apache-2.0
from __future__ import annotations

DOCUMENTATION = r"""
module: topology
short_description: Validate the wide-EP topology and render every object of the deployment
description:
  - Builds the collection's one topology model (DP/EP/TP sizes, ranks, ports, labels, selectors) from the
    inventory's C(wide_ep_*) settings, validates it, and renders the model-server LeaderWorkerSets, their
    ServiceAccount and PodMonitors, the Gateway and HTTPRoute, and the InferencePool chart values.
  - Talks to no cluster and changes nothing. All problems are reported together, each naming the inventory
    variable and the valid values.
version_added: 0.1.0
author: llm-d wide-EP collection contributors (@llm-d)
options:
  settings:
    description:
      - The C(wide_ep_*) variables without their prefix, for example C(provider), C(dp_mode), C(gateway),
        C(namespace), C(model), C(model_label), C(images), C(prefill), C(decode), C(ports), C(node_gpus),
        C(routed_experts), C(redundant_experts), C(release), C(epp_prometheus), C(pod_monitors). See the
        C(wide_ep_defaults) role's argument spec for each.
    type: dict
    required: true
  export_dir:
    description:
      - When set, also write every object to this directory, one YAML file per object in apply order, plus
        C(inferencepool-values.yaml). Files of an earlier export that are no longer rendered are removed.
    type: path
"""

EXAMPLES = r"""
- name: Validate and render
  llmd.wide_ep.topology:
    settings:
      provider: coreweave
      dp_mode: dp-aware
      gateway: istio
      namespace: llm-d-wide-ep
      model: deepseek-ai/DeepSeek-R1-0528
      model_label: DeepSeek-R1-0528
  register: plan
"""

RETURN = r"""
msg:
  description: The topology in one line - provider, DP mode, GPUs, DP size x replicas per role, target ports.
  returned: always
  type: str
warnings:
  description: What the settings ask that still works but should change (a renamed llm-d release), as task
    warnings.
  returned: when there is one
  type: list
  elements: str
summary:
  description: Derived numbers per role (DP size, start ranks, ports, GPUs) and the InferencePool target ports.
  returned: always
  type: dict
objects:
  description: Rendered objects by group, in apply order.
  returned: always
  type: dict
  contains:
    namespace:
      description: The Namespace.
      type: list
    model_servers:
      description: ServiceAccount and the prefill/decode LeaderWorkerSets.
      type: list
    leaderworkersets:
      description: The LeaderWorkerSets alone.
      type: list
    pod_monitors:
      description: PodMonitors (CoreWeave overlay only).
      type: list
    gateway:
      description: Gateway, HTTPRoute and the gateway's parameters object.
      type: list
    workloads:
      description: The model servers' workloads alone (the LeaderWorkerSet pair or the DisaggregatedSet).
      type: list
    support:
      description:
        - What the modelserver role applies before the workloads - the Namespace, the model servers' other objects
          (their ServiceAccount) and the PodMonitors.
      type: list
refs:
  description:
    - Every name and reference of the deployment - C(namespace), C(release), C(pool), C(epp), C(epp_service),
      C(leaderworkersets) (by role), C(gateway) and C(route) (null without a gateway). Each reference is an
      object with C(apiVersion), C(kind) and C(metadata.name)/C(namespace). Modules take these; none rebuilds them.
  returned: always
  type: dict
router:
  description:
    - What fronts the pool - C(chart) (C(inferencepool), C(llm-d-router-standalone) or C(llm-d-router-gateway)),
      C(chart_ref), C(chart_version), C(chart_values) and C(selector) (the pool's matchLabels).
  returned: always
  type: dict
groups:
  description:
    - The LeaderWorkerSets as GPU capacity groups - C(name), C(namespace), C(replicas), C(group_size) and
      C(gpus_per_pod).
  returned: always
  type: list
  elements: dict
needs:
  description:
    - What the cluster must serve - C(monitoring_api) (the API group/version of the monitoring objects, or null
      when there are none), C(monitoring_kinds), C(pod_monitors) (the deployment has PodMonitors) and
      C(gateway_api_crds) (the Gateway API and InferencePool CRDs are this collection's to apply; not on GKE).
  returned: always
  type: dict
inferencepool_values:
  description: Values for the inferencepool chart (C(router.chart_values)).
  returned: when the release's router is the GAIE inferencepool chart (llm-d v0.5.0)
  type: dict
files:
  description: Files written under O(export_dir).
  returned: when O(export_dir) is set
  type: list
  elements: str
"""


from ansible_collections.llmd.wide_ep.plugins.module_utils.render import plan
from ansible_collections.llmd.wide_ep.plugins.module_utils.runner import run_module


def main():
    run_module({"settings": {"type": "dict", "required": True}, "export_dir": {"type": "path"}}, render,
               cluster=False, supports_check_mode=True)


def render(ctx):
    p = ctx.params
    result = plan.render(p["settings"])   # TopologyError: every problem, with `problems`
    for warning in result.pop("warnings"):   # returned once, as Ansible's own task warnings
        ctx.module.warn(warning)
    changed = False
    if p["export_dir"]:
        changed, result["files"], diffs = plan.export(result, p["export_dir"], check=ctx.check_mode)
        if ctx.module._diff and diffs:
            result["diff"] = diffs
    summary = result["summary"]
    result["msg"] = "%s / %s: %d GPUs; prefill DP=%d x %d, decode DP=%d x %d; InferencePool target ports %s" % (
        summary["provider"], summary["dp_mode"], summary["gpus"], summary["prefill"]["dp_size"],
        summary["prefill"]["replicas"], summary["decode"]["dp_size"], summary["decode"]["replicas"],
        ",".join(str(p) for p in summary["target_ports"]))   # what -v shows first
    return dict(result, changed=changed)


if __name__ == "__main__":
    main()
