#!/usr/bin/python
# Copyright: llm-d wide-EP collection contributors
# Apache-2.0
from __future__ import annotations

DOCUMENTATION = r"""
module: node_drain
short_description: Take a GPU node out of service without breaking an EP group halfway, and bring it back
description:
  - C(state=drained) - cordons the node, then takes down every LeaderWorkerSet group that has a pod on it as a
    whole (all pods of the group, on every node, deleted together, so the controller recreates the group
    elsewhere in one piece rather than leaving its other pods waiting for a peer), then evicts the node's other
    pods through the Eviction API (PodDisruptionBudgets apply; DaemonSet pods stay). Before any change, checks
    whether the groups fit on the other nodes; when they do not, fails unless O(accept_downtime), saying which
    groups would stay down until the node returns. Refuses while an upgrade or rollback holds the rollout lease
    (Lease C(wide-ep-rollout)) of a namespace whose groups it would take down.
  - C(state=uncordoned) - uncordons the node, waits until it is Ready and every LeaderWorkerSet of the
    namespaces given is Ready again.
  - Idempotent; check mode reports what would be cordoned, deleted and evicted.
version_added: 0.2.0
author: llm-d wide-EP collection contributors (@llm-d)
options:
  node:
    description: The node.
    type: str
    required: true
  state:
    description: What to do.
    type: str
    choices: [drained, uncordoned]
    default: drained
  namespaces:
    description: Namespaces whose LeaderWorkerSets must be Ready after C(uncordoned).
    type: list
    elements: str
    default: []
  accept_downtime:
    description: Drain even when the groups cannot be placed elsewhere, or a LeaderWorkerSet would stop serving
      (every group of it on the way out and no room for a surge group).
    type: bool
    default: false
  surge:
    description:
      - With C(drained), a LeaderWorkerSet whose every group would go down is first scaled up by one group
        where the other nodes have room for it (beside the old groups), and the drain waits for that group to
        be Ready, so the role keeps serving; the LeaderWorkerSet is annotated C(llmd.ai/maintenance-surge).
        With C(uncordoned), once every group is Ready again, those LeaderWorkerSets are scaled back and the
        annotation goes. Not for a DisaggregatedSet's LeaderWorkerSets (its controller owns their replicas).
    type: bool
    default: true
  timeout:
    description: Seconds to wait for evictions, the node Ready and the groups Ready.
    type: int
    default: 2700
extends_documentation_fragment:
  - llmd.wide_ep.k8s
"""

EXAMPLES = r"""
- name: Drain gpu-node-1 and its EP groups
  llmd.wide_ep.node_drain:
    node: gpu-node-1
"""

RETURN = r"""
groups:
  description: The EP groups taken down (C(namespace/lws/group-index)).
  returned: always
  type: list
  elements: str
surged:
  description: LeaderWorkerSets scaled up by one group for the drain (C(drained)), or scaled back (C(uncordoned)).
  returned: always
  type: list
  elements: str
evicted:
  description: Other pods evicted.
  returned: always
  type: list
  elements: str
"""

from ansible_collections.llmd.wide_ep.plugins.module_utils.day2.drain import drain, uncordon
from ansible_collections.llmd.wide_ep.plugins.module_utils.runner import run_module


def main():
    run_module(dict(node={"type": "str", "required": True},
                    state={"type": "str", "choices": ["drained", "uncordoned"], "default": "drained"},
                    namespaces={"type": "list", "elements": "str", "default": []},
                    accept_downtime={"type": "bool", "default": False}, surge={"type": "bool", "default": True},
                    timeout={"type": "int", "default": 2700}),
               node_state, supports_check_mode=True)


def node_state(ctx):
    change = drain if ctx.params["state"] == "drained" else uncordon
    return change(ctx.client, ctx.params, ctx.check_mode)


if __name__ == "__main__":
    main()
