#!/usr/bin/python
# Copyright: llm-d wide-EP collection contributors
# Apache-2.0
from __future__ import annotations

DOCUMENTATION = r"""
module: leaderworkerset
short_description: Apply the model servers' workload (LeaderWorkerSets or a DisaggregatedSet), wait until Ready
description:
  - Applies one or many C(leaderworkerset.x-k8s.io/v1) LeaderWorkerSets, or the
    C(disaggregatedset.x-k8s.io/v1) DisaggregatedSet that holds both roles, in one call with server-side apply, or
    deletes them.
  - With O(wait), polls until every LeaderWorkerSet has all its groups ready and updated and reports
    C(Available); each change of readiness is returned in RV(progress), visible with C(-v).
  - A DisaggregatedSet is Ready when, for every role, the LeaderWorkerSet its controller made for the role's
    current template is Ready at the role's replicas and no older revision still holds groups (the LWS 0.9.0
    controller writes no status of its own).
  - Take the definitions from M(llmd.wide_ep.topology), which renders them from the inventory's topology.
  - Refuses, before any change (and in check mode), to change a LeaderWorkerSet while an upgrade or rollback
    holds the namespace's rollout Lease C(wide-ep-rollout); a no-op apply still passes.
version_added: 0.1.0
author: llm-d wide-EP collection contributors (@llm-d)
options:
  definitions:
    description: LeaderWorkerSet or DisaggregatedSet manifests. Any other kind is refused before anything is applied.
    type: list
    elements: dict
    required: true
  namespace:
    description: Namespace for definitions that name none.
    type: str
  replaces:
    description:
      - The other workload of the same deployment (the plan's C(refs.replaces)) - the LeaderWorkerSet pair for a
        DisaggregatedSet and the other way round. While one of them exists, a change is refused before it is
        made, naming the move (the two would ask for the GPUs twice).
    type: list
    elements: dict
    default: []
extends_documentation_fragment:
  - llmd.wide_ep.k8s
  - llmd.wide_ep.k8s.APPLY
"""

EXAMPLES = r"""
- name: Render the deployment
  llmd.wide_ep.topology:
    settings: "{{ wide_ep_settings }}"
  register: plan

- name: Prefill and decode LeaderWorkerSets, Ready within the guide's 45-minute start budget
  llmd.wide_ep.leaderworkerset:
    definitions: "{{ plan.objects.workloads }}"
    wait: true
    wait_timeout: 2700
"""

RETURN = r"""
results:
  description: One entry per LeaderWorkerSet with its status and, after O(wait), a readiness summary.
  returned: always
  type: list
  elements: dict
  sample: [{kind: LeaderWorkerSet, name: wide-ep-llm-d-decode, changed: true, ready: "1/1 groups ready"}]
api_requests:
  description: API requests of the call, both LeaderWorkerSets and every wait poll included.
  returned: always
  type: int
progress:
  description:
    - Each change of a LeaderWorkerSet's readiness while waiting, timestamped, with the pods holding it up and why
      (not scheduled, image not pulled, probe not passing).
  returned: when O(wait) waited
  type: list
  elements: str
timings:
  description: Seconds and API requests spent applying, and then waiting.
  returned: always
  type: dict
  sample: {apply_seconds: 0.2, apply_requests: 5, wait_seconds: 64.0, wait_requests: 96}
"""


from ansible_collections.llmd.wide_ep.plugins.module_utils.day2.guards import (
    refuse_beside_the_other_workload,
    refuse_during_rollout,
)
from ansible_collections.llmd.wide_ep.plugins.module_utils.k8s import apply
from ansible_collections.llmd.wide_ep.plugins.module_utils.k8s.apply import APPLY_ARG_SPEC
from ansible_collections.llmd.wide_ep.plugins.module_utils.runner import run_module


def main():
    run_module(dict(APPLY_ARG_SPEC, definitions={"type": "list", "elements": "dict", "required": True},
                    namespace={"type": "str"}, replaces={"type": "list", "elements": "dict", "default": []}),
               apply_workloads, supports_check_mode=True)


def apply_workloads(ctx):
    p = ctx.params

    def guard(client, obj):
        refuse_during_rollout(client, obj)
        refuse_beside_the_other_workload(client, obj, p["replaces"])

    return apply.run(ctx.module, p["definitions"], kinds=("LeaderWorkerSet", "DisaggregatedSet"), client=ctx.client,
                     before_change=guard)


if __name__ == "__main__":
    main()
