#!/usr/bin/python
# Copyright: llm-d wide-EP collection contributors
# Apache-2.0
from __future__ import annotations

DOCUMENTATION = r"""
module: modelserver_rollout
short_description: Roll the prefill/decode LeaderWorkerSets one at a time behind health gates, with rollback
description:
  - For each LeaderWorkerSet in O(definitions), in order - compares it with the live object (server-side dry
    run); when it differs, sets the LWS rolling update (C(maxSurge) from O(surge); C(maxUnavailable) 0 with a
    surge group, so no old group goes down before the new one is Ready, else 1; under its own field manager so
    later C(site.yml) runs leave it alone), applies it, and waits for the gate - the
    LWS Ready with every group updated, every expected pod created after the change and Ready, and selected by
    the InferencePool of O(refs). A surged LeaderWorkerSet that passed its gate is set to one group at a time
    again (C(maxSurge) 0, C(maxUnavailable) 1), so a later change never waits for a surge group with no room.
  - When a gate fails within O(gate_timeout), every role already rolled is applied back to its live spec from
    before the run and must pass the gate again; the module then fails, saying which gate failed and that the
    stack was rolled back.
  - Keeps a record of revisions (what was applied, when, by which note, and how it ended) in ConfigMap
    C(wide-ep-revisions) of the namespace; O(action=rollback) undoes the last upgrade from it.
  - A DisaggregatedSet in O(definitions) is one step - its controller rolls every role together, surging a
    new group of each beside the old (C(maxSurge) 1, C(maxUnavailable) 0) or, with no surge, taking the old
    groups down first (C(maxUnavailable) 1); its gate waits until every role runs the new revision, the old
    revision's groups are gone, and every pod is new, Ready and selected by the InferencePool.
  - Nothing is ever deleted. An unchanged role is still gated, so a re-run after an interrupted run converges.
  - One run at a time - a run takes the Lease C(wide-ep-rollout) of the namespace before it reads the record
    and gives it back at the end; while another live run holds it, this one fails and changes nothing.
  - Check mode returns the plan and changes nothing.
version_added: 0.2.0
author: llm-d wide-EP collection contributors (@llm-d)
options:
  definitions:
    description: The LeaderWorkerSets (or the one DisaggregatedSet) to roll, in order.
    type: list
    elements: dict
    default: []
  action:
    description:
      - C(upgrade) applies O(definitions). C(rollback) undoes the last upgrade - applies the deployed revision
        before the newest deployed one (or O(to_revision)) and marks the undone one C(rolled-back).
    type: str
    choices: [upgrade, rollback]
    default: upgrade
  to_revision:
    description: With C(action=rollback) - the revision to apply.
    type: int
  refs:
    description:
      - The plan's references (C(wide_ep_plan.refs)) - the namespace of the record and the lease, and the
        InferencePool whose selector must cover the new pods.
    type: dict
    required: true
  surge:
    description:
      - C(maxSurge) per LeaderWorkerSet name (0 when absent), as O(action=upgrade)'s plan decided it.
      - Not given (what C(rollback.yml) does unless C(rollback_surge=never)) - C(1) for each object whose one
        more group fits the free GPUs, else C(0).
    type: dict
  lws_version:
    description: The LWS controller's version, for O(surge) not given - before 0.9.0 (or unknown) a one-group
      LeaderWorkerSet rolls one group at a time, as that controller releases its surge group at once.
    type: str
  gate_timeout:
    description: Seconds a rolled role has to pass its gate.
    type: int
    default: 2700
  rollback:
    description: Roll back when a gate fails.
    type: bool
    default: true
  rollback_timeout:
    description: Seconds the rolled-back roles have to pass the gate.
    type: int
    default: 2700
  gate_sleep:
    description: Seconds between gate checks.
    type: float
    default: 5
  note:
    description: What this upgrade is, for the record.
    type: str
    default: upgrade
  force_conflicts:
    description: Take over fields another manager owns.
    type: bool
    default: false
  lock_duration:
    description:
      - Seconds of the rollout lease (Lease C(wide-ep-rollout) in the namespace). The run renews it while it
        works; another run that finds it held waits up to this long and stops if it is renewed meanwhile, or takes
        it over when it is not (its holder died). At least 10, and at least 3 x O(gate_sleep).
    type: int
    default: 90
extends_documentation_fragment:
  - llmd.wide_ep.k8s
"""

EXAMPLES = r"""
- name: Roll the model servers
  llmd.wide_ep.modelserver_rollout:
    definitions: "{{ wide_ep_plan.objects.workloads }}"
    refs: "{{ wide_ep_plan.refs }}"
    surge: "{{ upgrade_plan_result.surge }}"
"""

RETURN = r"""
plan:
  description: Per LeaderWorkerSet, C(name), C(changed) and C(changes).
  returned: always
  type: list
  elements: dict
revision:
  description: The record entry of this run (revision, time, status, note, changes, reason), without objects.
  returned: when something changed
  type: dict
progress:
  description: Gate progress lines.
  returned: always
  type: list
  elements: str
"""


from ansible_collections.llmd.wide_ep.plugins.module_utils.day2 import rollout
from ansible_collections.llmd.wide_ep.plugins.module_utils.errors import WideEPError
from ansible_collections.llmd.wide_ep.plugins.module_utils.render.refs import check
from ansible_collections.llmd.wide_ep.plugins.module_utils.runner import run_module


def main():
    run_module(dict(definitions={"type": "list", "elements": "dict", "default": []},
                    action={"type": "str", "choices": ["upgrade", "rollback"], "default": "upgrade"},
                    to_revision={"type": "int"}, refs={"type": "dict", "required": True},
                    surge={"type": "dict"}, lws_version={"type": "str"}, gate_timeout={"type": "int", "default": 2700},
                    rollback={"type": "bool", "default": True}, rollback_timeout={"type": "int", "default": 2700},
                    gate_sleep={"type": "float", "default": 5}, note={"type": "str", "default": "upgrade"},
                    force_conflicts={"type": "bool", "default": False}, lock_duration={"type": "int", "default": 90}),
               roll, supports_check_mode=True)


def roll(ctx):
    p, result = ctx.params, {}
    try:
        run = rollout.Rollout(ctx.client, check(p["refs"], "pool"), p["lock_duration"],
                              p["note"], p["force_conflicts"], p["gate_sleep"], ctx.check_mode)
        result["progress"] = run.progress
        with run:
            return run.run(p["definitions"], p["surge"], p["gate_timeout"], p["rollback"], p["rollback_timeout"],
                           p["to_revision"], p["action"], p["lws_version"])
    except WideEPError as exc:   # what the rollout did so far goes with the failure
        raise WideEPError(str(exc), **dict(result, **exc.extra)) from exc


if __name__ == "__main__":
    main()
