# Copyright: llm-d wide-EP collection contributors
# Apache-2.0
"""Node maintenance: drain a node without splitting an EP group (a group's pods go together, and only when the
other nodes can take them or the user accepts the downtime), and uncordon it, waiting for the groups again."""
from __future__ import annotations

import time

from ansible_collections.llmd.wide_ep.plugins.module_utils.day2 import lease
from ansible_collections.llmd.wide_ep.plugins.module_utils.errors import WideEPError
from ansible_collections.llmd.wide_ep.plugins.module_utils.k8s import capacity
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


def drain(client, p, check_mode=False):
    node = client.get({"apiVersion": "v1", "kind": "Node", "metadata": {"name": p["node"]}})
    if node is None:
        raise WideEPError("node %s not found" % p["node"])
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
            raise WideEPError("an upgrade or rollback is rolling the model servers of namespace %s (Lease %s held "
                              "by %s, renewed %s): drain %s after it ends" % (
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
            raise WideEPError("draining %s takes down EP group(s) %s (%d pods) and the other nodes have no room for "
                              "them (free GPUs: %s): they stay down until the node is back. Set accept_downtime "
                              "(maintenance_accept_downtime) to go ahead" % (
                                  p["node"], ", ".join(keys), len(needed),
                                  ", ".join("%s=%d" % kv for kv in sorted(free.items()))), groups=keys)
    evicted = ["%s/%s" % (x["metadata"]["namespace"], x["metadata"]["name"]) for x in others]
    result = {"changed": changed, "groups": keys, "evicted": evicted}
    if check_mode or not changed:
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


def uncordon(client, p, check_mode=False):
    node_ref = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": p["node"]}}
    node = client.get(node_ref)
    if node is None:
        raise WideEPError("node %s not found" % p["node"])
    changed = bool(node.get("spec", {}).get("unschedulable"))
    result = {"changed": changed, "groups": [], "evicted": []}
    if check_mode:
        return result
    if changed:
        set_unschedulable(client, p["node"], False)
    waiting = [node_ref]  # then every LeaderWorkerSet of the namespaces
    for ns in p["namespaces"]:
        waiting += client.list("leaderworkerset.x-k8s.io/v1", "LeaderWorkerSet", ns)
    wait_ready(client, waiting, p["timeout"], 2, Progress())   # a long wait: shown live like the others
    return result
