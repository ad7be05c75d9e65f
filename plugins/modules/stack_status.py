#!/usr/bin/python
# Copyright: llm-d wide-EP collection contributors
# Apache-2.0
from __future__ import annotations

DOCUMENTATION = r"""
module: stack_status
short_description: Check a deployed wide-EP stack the way the guide's "Verifying the installation" does
description:
  - Reads, over one API connection (and one C(helm list)), the InferencePool helm release, the prefill/decode
    LeaderWorkerSets and their pods with ready container counts per role, the EPP Deployment, the InferencePool,
    the Gateway's C(Programmed) condition and the HTTPRoute's C(Accepted) condition.
  - Never changes anything (but a split group with O(repair_split_groups)). Returns a report and the list of
    problems, each report line also shown on the progress lines; fails when there is any, with the report and
    what failed as its message.
version_added: 0.1.0
author: llm-d wide-EP collection contributors (@llm-d)
options:
  require_programmed:
    description:
      - Require the Gateway to be C(Programmed). Only a running gateway controller sets it; on a cluster without
        one (the local test cluster) set C(false) and only acceptance of the objects is checked.
    type: bool
    default: true
  split_window:
    description:
      - Seconds after its worker StatefulSet within which a worker pod counts as made with its group; a worker made
        later was recreated alone (kubernetes-sigs/lws#998) and its group is reported split.
    type: int
    default: 60
  repair_split_groups:
    description:
      - Recreate every split group whole (its leader pod deleted, which takes its worker StatefulSet and workers
        with it), wait until the LeaderWorkerSet is Ready again, and check again.
    type: bool
    default: false
  repair_timeout: {description: Seconds to wait for a repaired group., type: int, default: 2700}
  wait_timeout:
    description:
      - Seconds to check again, every 5 s, until every check passes (0 - check once); a lost LeaderWorkerSet ends
        the wait at once.
    type: int
    default: 0
  baseline:
    description:
      - The plan's LeaderWorkerSets as they were before the step (C(upgrade_plan)'s RV(workloads)) - each must still
        be there with the same UID.
    type: list
    elements: dict
    default: []
  step:
    description: The upgrade step this gate ends; a failed gate is written to the revision record under it.
    type: str
  smoke:
    description:
      - After the checks, send the smoke request of M(llmd.wide_ep.smoke_request) (whether or not a check failed)
        and add its hops to the report; RV(smoke) is its result. With O(smoke.send=false) the report says it was
        skipped. The verify role's one task; left out (an upgrade gate), the checks alone.
    type: dict
    suboptions:
      send: {description: Send it., type: bool, default: true}
      endpoint: {description: Base URL of the gateway as the controller reaches it., type: str}
      prompt: {description: Prompt of the completion., type: str, default: "Hi, how are you?"}
      max_tokens: {description: Tokens to generate., type: int, default: 8}
      timeout: {description: Seconds allowed for each HTTP request., type: int, default: 60}
  deployed_by_this_play:
    description:
      - The play deployed the stack before this task (C(site.yml)). In check mode nothing was deployed, so nothing
        is checked and the report says so.
    type: bool
    default: false
extends_documentation_fragment:
  - llmd.wide_ep.k8s
  - llmd.wide_ep.k8s.helm
  - llmd.wide_ep.k8s.plan
notes:
  - The Gateway and HTTPRoute are checked when the plan has them (O(refs) C(gateway) is not null).
"""

EXAMPLES = r"""
- name: Verify the stack
  llmd.wide_ep.stack_status:
    refs: "{{ wide_ep_plan.refs }}"
    expected: "{{ wide_ep_plan.summary }}"
"""

RETURN = r"""
report:
  description: One line per check, C(OK) or C(FAIL) first.
  returned: always
  type: list
  elements: str
problems:
  description: The failed checks.
  returned: always
  type: list
  elements: str
workloads:
  description: The plan's LeaderWorkerSets found - C(kind), C(namespace), C(name), C(uid).
  returned: success
  type: list
  elements: dict
progress:
  description: What the wait saw, as it changed.
  returned: always
  type: list
  elements: str
smoke:
  description: The smoke request's result as M(llmd.wide_ep.smoke_request) returns it (C(hops), C(completion)).
  returned: when O(smoke.send)
  type: dict
repaired:
  description: The split groups recreated whole (with O(repair_split_groups)) - C(lws), C(group), C(why).
  returned: always
  type: list
  elements: dict
"""

from ansible_collections.llmd.wide_ep.plugins.module_utils.day2 import smoke, verify
from ansible_collections.llmd.wide_ep.plugins.module_utils.k8s.helm import HELM_ARG_SPEC, Helm
from ansible_collections.llmd.wide_ep.plugins.module_utils.render.refs import PLAN_ARG_SPEC
from ansible_collections.llmd.wide_ep.plugins.module_utils.runner import run_module


def main():
    run_module(dict(PLAN_ARG_SPEC, require_programmed={"type": "bool", "default": True},
                    split_window={"type": "int", "default": 60},
                    repair_split_groups={"type": "bool", "default": False},
                    repair_timeout={"type": "int", "default": 2700}, wait_timeout={"type": "int", "default": 0},
                    step={"type": "str"}, baseline={"type": "list", "elements": "dict", "default": []},
                    smoke={"type": "dict", "options": dict(smoke.SMOKE_ARG_SPEC,
                                                           send={"type": "bool", "default": True})},
                    deployed_by_this_play={"type": "bool", "default": False}, **HELM_ARG_SPEC),
               lambda ctx: verify.verify(ctx.client, Helm(ctx.module, ctx.params["helm_binary"], ctx.params,
                                                          client=ctx.client), ctx.params, ctx.check_mode),
               supports_check_mode=True)


if __name__ == "__main__":
    main()
