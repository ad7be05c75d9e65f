#!/usr/bin/python
# Copyright: llm-d wide-EP collection contributors
# Apache-2.0
from __future__ import annotations

DOCUMENTATION = r"""
module: workload_move
short_description: Move a running prefill/decode LeaderWorkerSet pair onto one DisaggregatedSet, behind a gate
description:
  - Checks, changing nothing, that the pair in O(old) runs and is Ready and that O(definition) does not exist yet,
    and plans the move - C(side-by-side) when the free GPUs hold every pod of the DisaggregatedSet (it comes up
    whole beside the pair), else C(stop-then-start) (the pair scaled to 0 first, so the model servers stop
    serving until the set is Ready; a set cannot start one role alone - its CRD wants replicas zero for all roles
    or none). Check mode returns the plan.
  - Then, holding the namespace's rollout Lease C(wide-ep-rollout) - applies the DisaggregatedSet, gates it
    (every role Ready on its current revision, every pod new, Ready and selected by the InferencePool of
    O(refs)), and deletes the old LeaderWorkerSets last.
  - A failure at any step deletes the DisaggregatedSet, applies the pair again as it ran and gates it; the module
    fails saying so. The revision record (ConfigMap C(wide-ep-revisions)) keeps the pair and the move.
version_added: 0.8.0
author: llm-d wide-EP collection contributors (@llm-d)
options:
  old:
    description: The running LeaderWorkerSets by role (the old plan's C(refs.leaderworkersets)).
    type: dict
    required: true
  definition:
    description: The DisaggregatedSet to move to (the plan's C(objects.workloads[0])).
    type: dict
    required: true
  refs:
    description: The plan's refs (namespace and pool).
    type: dict
    required: true
  gate_timeout: {description: Seconds each step has to pass its gate., type: int, default: 2700}
  rollback: {description: Return to the pair when a step fails., type: bool, default: true}
  lock_duration: {description: Seconds of the rollout lease., type: int, default: 90}
  note: {description: Recorded with the revision., type: str, default: upgrade}
extends_documentation_fragment:
  - llmd.wide_ep.k8s
"""

EXAMPLES = r"""
- name: Move the LeaderWorkerSet pair onto the DisaggregatedSet
  llmd.wide_ep.workload_move:
    old: "{{ old_plan.refs.leaderworkersets }}"
    definition: "{{ wide_ep_plan.objects.workloads[0] }}"
    refs: "{{ wide_ep_plan.refs }}"
"""

RETURN = r"""
mode:
  description: C(side-by-side) or C(stop-then-start).
  returned: always
  type: str
plan:
  description: The move, step by step.
  returned: always
  type: list
  elements: str
warnings:
  description: What the user should know first (a role that stops serving, and for how long).
  returned: always
  type: list
  elements: str
revision:
  description: The revision record entry of the move.
  returned: when the move ran
  type: dict
progress:
  description: Each step and gate change, timestamped.
  returned: when the move ran
  type: list
  elements: str
"""

from ansible_collections.llmd.wide_ep.plugins.module_utils.day2 import workload_move
from ansible_collections.llmd.wide_ep.plugins.module_utils.errors import WideEPError
from ansible_collections.llmd.wide_ep.plugins.module_utils.render.refs import check
from ansible_collections.llmd.wide_ep.plugins.module_utils.runner import run_module


def main():
    run_module(dict(old={"type": "dict", "required": True}, definition={"type": "dict", "required": True},
                    refs={"type": "dict", "required": True}, gate_timeout={"type": "int", "default": 2700},
                    rollback={"type": "bool", "default": True}, lock_duration={"type": "int", "default": 90},
                    note={"type": "str", "default": "upgrade"}),
               move, supports_check_mode=True)


def move(ctx):
    p, client = ctx.params, ctx.client
    if p["definition"].get("kind") != "DisaggregatedSet":
        raise WideEPError("definition: a %s; the move goes to a DisaggregatedSet (wide_ep_workload: "
                          "disaggregatedset)" % p["definition"].get("kind"))
    planned = workload_move.plan(client, p["old"], p["definition"])
    result = {"changed": False, "mode": planned["mode"], "plan": planned["plan"], "warnings": planned["warnings"]}
    if planned["problems"]:
        raise WideEPError("the move cannot start: " + "; ".join(planned["problems"]), problems=planned["problems"],
                          **result)
    for warning in planned["warnings"]:
        ctx.module.warn(warning)
    if ctx.check_mode:
        return dict(result, changed=True)
    run = workload_move.Move(client, check(p["refs"], "pool"), p["lock_duration"], p["note"])
    try:
        with run:
            return dict(result, **run.run(p["old"], p["definition"], planned["mode"], p["gate_timeout"],
                                          p["rollback"]))
    except WideEPError as exc:
        raise WideEPError(str(exc), **dict(result, progress=run.progress, **exc.extra)) from exc


if __name__ == "__main__":
    main()
