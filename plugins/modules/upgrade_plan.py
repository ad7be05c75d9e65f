#!/usr/bin/python
# Copyright: llm-d wide-EP collection contributors
# Apache-2.0
from __future__ import annotations

DOCUMENTATION = r"""
module: upgrade_plan
short_description: Check an upgrade can start, and say what it will do, before anything changes
description:
  - Compares the target versions of the LWS controller, the inferencepool chart and Istio with what runs
    (O(current)) - a target below what this collection needs, or a downgrade, is refused.
  - Requires the stack to be healthy before it starts - every LeaderWorkerSet Ready, the EPP available -
    unless O(allow_unhealthy), or the record shows an upgrade that was interrupted mid-rollout (then the
    rollout's own gate judges it).
  - Refuses while another upgrade or rollback holds the rollout lease (Lease C(wide-ep-rollout), renewed by
    M(llmd.wide_ep.modelserver_rollout) while it works) and says when a dead run's lease expires.
  - For each LeaderWorkerSet that would change (server-side dry run), decides the rollout - a surge group
    (C(maxSurge 1)) when the free GPUs fit one more group of that role, else one group at a time; with
    O(surge=required) a missing surge capacity is an error. Warns when a role has a single group and no surge
    room, as its only group will go down.
  - Read-only. Returns the ordered steps and the plan as lines; fails with every problem at once.
version_added: 0.2.0
author: llm-d wide-EP collection contributors (@llm-d)
options:
  definitions: {description: The LeaderWorkerSets as they should be., type: list, elements: dict, required: true}
  current:
    description: Versions running - C(lws), C(inferencepool_chart), C(istio).
    type: dict
    default: {}
  target: {description: Versions wanted - same keys., type: dict, default: {}}
  surge: {description: Surge policy., type: str, choices: [auto, required, never], default: auto}
  allow_unhealthy: {description: Start even when the stack is not healthy., type: bool, default: false}
  allow_downgrade: {description: Allow a target version below the running one., type: bool, default: false}
extends_documentation_fragment:
  - llmd.wide_ep.k8s
  - llmd.wide_ep.k8s.helm
  - llmd.wide_ep.k8s.plan
notes:
  - The DP mode and gateway (for the Istio minimum) and C(router_chart) (the plan's; the 1.0.0 chart minimum is
    GAIE's inferencepool chart's) come from O(expected); the EPP and release from O(refs).
"""

EXAMPLES = r"""
- name: Plan
  llmd.wide_ep.upgrade_plan:
    definitions: "{{ wide_ep_plan.objects.workloads }}"
    refs: "{{ wide_ep_plan.refs }}"
    expected: "{{ wide_ep_plan.summary }}"
    current: {lws: 0.7.0, inferencepool_chart: v1.3.0}
    target: {lws: 0.7.0, inferencepool_chart: v1.3.0}
"""

RETURN = r"""
steps:
  description: Components that change, in order - C(lws), C(istio), C(inferencepool_chart), C(modelservers).
  returned: always
  type: list
  elements: str
surge:
  description: maxSurge per LeaderWorkerSet that changes.
  returned: always
  type: dict
plan:
  description: The plan as lines.
  returned: always
  type: list
  elements: str
workloads:
  description: The plan's LeaderWorkerSets as they run before the upgrade - C(kind), C(namespace), C(name), C(uid).
  returned: always
  type: list
  elements: dict
current:
  description: The versions found running.
  returned: always
  type: dict
"""


from ansible_collections.llmd.wide_ep.plugins.module_utils.day2 import rollout
from ansible_collections.llmd.wide_ep.plugins.module_utils.errors import WideEPError
from ansible_collections.llmd.wide_ep.plugins.module_utils.k8s.helm import HELM_ARG_SPEC, Helm
from ansible_collections.llmd.wide_ep.plugins.module_utils.k8s.lws import identity
from ansible_collections.llmd.wide_ep.plugins.module_utils.render.refs import PLAN_ARG_SPEC, check, workload_refs
from ansible_collections.llmd.wide_ep.plugins.module_utils.runner import run_module


def main():
    run_module(dict(PLAN_ARG_SPEC, definitions={"type": "list", "elements": "dict", "required": True},
                    current={"type": "dict", "default": {}}, target={"type": "dict", "default": {}},
                    surge={"type": "str", "choices": ["auto", "required", "never"], "default": "auto"},
                    allow_unhealthy={"type": "bool", "default": False},
                    allow_downgrade={"type": "bool", "default": False}, **HELM_ARG_SPEC),
               plan_upgrade, supports_check_mode=True)


def plan_upgrade(ctx):
    p, client = ctx.params, ctx.client
    target = {k: v for k, v in (p["target"] or {}).items() if v}
    refs = check(p["refs"], "epp")
    helm = Helm(ctx.module, p["helm_binary"], p, client=client)
    current = rollout.running_versions(helm, refs, p["expected"]["gateway"], p["current"] or {}, target)
    out = rollout.plan(client, p["definitions"], refs, p["expected"], current,
                       target, p["surge"], p["allow_unhealthy"], p["allow_downgrade"])
    workloads = [identity(o) for o in (client.get(r) for r in workload_refs(refs)) if o]
    if out["problems"]:
        raise WideEPError("the upgrade cannot start: " + "; ".join(out["problems"]), problems=out["problems"],
                          plan=out["plan"])
    for warning in out["warnings"]:
        ctx.module.warn(warning)
    return {"changed": False, "steps": out["steps"], "surge": out["surge"], "plan": out["plan"], "current": current,
            "workloads": workloads}


if __name__ == "__main__":
    main()
