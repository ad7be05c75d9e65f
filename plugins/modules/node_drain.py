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
    description: Drain even when the groups cannot be placed elsewhere.
    type: bool
    default: false
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
evicted:
  description: Other pods evicted.
  returned: always
  type: list
  elements: str
"""

import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.llmd.wide_ep.plugins.module_utils import capacity, lease
from ansible_collections.llmd.wide_ep.plugins.module_utils.k8s.auth import AUTH_ARG_SPEC
from ansible_collections.llmd.wide_ep.plugins.module_utils.k8s.client import Client
from ansible_collections.llmd.wide_ep.plugins.module_utils.k8s.errors import K8sError
from ansible_collections.llmd.wide_ep.plugins.module_utils.k8s.lws import LWS_GROUP_LABEL, LWS_NAME_LABEL, lws_pods
from ansible_collections.llmd.wide_ep.plugins.module_utils.k8s.readiness import wait_ready
from ansible_collections.llmd.wide_ep.plugins.module_utils.progress import Progress


def node_pods(client, node):
    return client.list("v1", "Pod", field_selector="spec.nodeName=%s" % node)


def group_key(pod):
    labels = pod["metadata"].get("labels", {})
    if LWS_NAME_LABEL in labels and LWS_GROUP_LABEL in labels:
        return "%s/%s/%s" % (pod["metadata"]["namespace"], labels[LWS_NAME_LABEL], labels[LWS_GROUP_LABEL])
    return None


def is_daemon(pod):
    return any(o.get("kind") == "DaemonSet" for o in pod["metadata"].get("ownerReferences", []) or [])


def set_unschedulable(client, node, value):
    client.apply({"apiVersion": "v1", "kind": "Node", "metadata": {"name": node}, "spec": {"unschedulable": value}},
                 field_manager="llmd.wide_ep.maintenance", force=True)


def drain(module, client, p):
    node = client.get({"apiVersion": "v1", "kind": "Node", "metadata": {"name": p["node"]}})
    if node is None:
        module.fail_json(msg="node %s not found" % p["node"])
    on_node = [x for x in node_pods(client, p["node"])
               if x.get("status", {}).get("phase") not in ("Succeeded", "Failed")]
    keys = sorted({k for k in map(group_key, on_node) if k})
    members = {}
    for key in keys:
        ns, name, idx = key.split("/")
        members[key] = lws_pods(client, ns, name, group=idx)
    others = [x for x in on_node if not group_key(x) and not is_daemon(x)]
    for ns in sorted({key.split("/")[0] for key in keys}):  # a rollout's gate would see its groups vanish
        held = lease.running(client, ns)
        if held:
            module.fail_json(msg="an upgrade or rollback is rolling the model servers of namespace %s (Lease %s "
                                 "held by %s, renewed %s): drain %s after it ends" % (
                                     ns, lease.LEASE_NAME, *held[:2], p["node"]), groups=keys)
    cordoned = bool(node.get("spec", {}).get("unschedulable"))
    changed = bool(keys or others or not cordoned)
    if keys:  # would the groups fit elsewhere, once their own GPUs are given back?
        all_pods = client.list("v1", "Pod")
        leaving = {m["metadata"]["uid"] for group in members.values() for m in group}
        free = capacity.free_gpus([n for n in client.list("v1", "Node")
                                   if n["metadata"]["name"] != p["node"]],
                                  [x for x in all_pods if x["metadata"]["uid"] not in leaving])
        needed = [capacity.requested(m["spec"].get("containers", [])) for group in members.values() for m in group]
        if capacity.placeable(free, needed) < len(needed) and not p["accept_downtime"]:
            module.fail_json(msg="draining %s takes down EP group(s) %s (%d pods) and the other nodes have no room "
                                 "for them (free GPUs: %s): they stay down until the node is back. Set "
                                 "accept_downtime (maintenance_accept_downtime) to go ahead" % (
                                     p["node"], ", ".join(keys), len(needed),
                                     ", ".join("%s=%d" % kv for kv in sorted(free.items()))), groups=keys)
    evicted = ["%s/%s" % (x["metadata"]["namespace"], x["metadata"]["name"]) for x in others]
    result = {"changed": changed, "groups": keys, "evicted": evicted}
    if module.check_mode or not changed:
        return result
    set_unschedulable(client, p["node"], True)
    for group in members.values():  # the whole group at once: LWS recreates it as one
        for pod in group:
            client.delete(pod)
    for pod in others:
        client.evict(pod)
    deadline = time.time() + p["timeout"]
    gone = {x["metadata"]["uid"] for x in others} | {m["metadata"]["uid"] for g in members.values() for m in g}
    progress = Progress()
    while True:
        left = [x["metadata"]["name"] for x in node_pods(client, p["node"]) if x["metadata"]["uid"] in gone]
        if not left:
            break
        if time.time() > deadline:
            raise K8sError("pods still on %s after %ss: %s" % (p["node"], p["timeout"], ", ".join(left)))
        progress.still("draining %s: %d pods still on it (%s)" % (p["node"], len(left), ", ".join(left[:4])))
        time.sleep(2)
    return result


def uncordon(module, client, p):
    node_ref = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": p["node"]}}
    node = client.get(node_ref)
    if node is None:
        module.fail_json(msg="node %s not found" % p["node"])
    changed = bool(node.get("spec", {}).get("unschedulable"))
    result = {"changed": changed, "groups": [], "evicted": []}
    if module.check_mode:
        return result
    if changed:
        set_unschedulable(client, p["node"], False)
    waiting = [node_ref]  # then every LeaderWorkerSet of the namespaces
    for ns in p["namespaces"]:
        waiting += client.list("leaderworkerset.x-k8s.io/v1", "LeaderWorkerSet", ns)
    wait_ready(client, waiting, p["timeout"], 2, Progress())   # a long wait: shown live like the others
    return result


def main():
    spec = dict(AUTH_ARG_SPEC, node={"type": "str", "required": True},
                state={"type": "str", "choices": ["drained", "uncordoned"], "default": "drained"},
                namespaces={"type": "list", "elements": "str", "default": []},
                accept_downtime={"type": "bool", "default": False}, timeout={"type": "int", "default": 2700})
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True)
    p = module.params
    try:
        client = Client(p)
        result = drain(module, client, p) if p["state"] == "drained" else uncordon(module, client, p)
    except K8sError as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
