# Copyright: llm-d wide-EP collection contributors
# Apache-2.0
"""Node maintenance: drain a node without splitting an EP group (a group's pods go together, and only when the
other nodes can take them or the user accepts the downtime), and uncordon it, waiting for the groups again.

A LeaderWorkerSet whose every group is on the way out would stop serving until they are back. Where the other
nodes have room for one more group, it is scaled up by one first (the scale subresource) and the drain waits for
that surge group to be Ready; the uncordon scales it back once every group is Ready again. The LeaderWorkerSet
carries SURGE_ANNOTATION meanwhile, so the uncordon (another run, maybe another day) knows what to give back."""
from __future__ import annotations

import time

from ansible_collections.llmd.wide_ep.plugins.module_utils.day2 import lease
from ansible_collections.llmd.wide_ep.plugins.module_utils.errors import WideEPError
from ansible_collections.llmd.wide_ep.plugins.module_utils.k8s import capacity
from ansible_collections.llmd.wide_ep.plugins.module_utils.k8s.client import describe
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


MAINTENANCE_MANAGER = "llmd.wide_ep.maintenance"
SURGE_ANNOTATION = "llmd.ai/maintenance-surge"   # "<node>=<replicas before the surge>"
LWS_API = "leaderworkerset.x-k8s.io/v1"


def set_unschedulable(client, node, value):
    client.apply({"apiVersion": "v1", "kind": "Node", "metadata": {"name": node}, "spec": {"unschedulable": value}},
                 field_manager=MAINTENANCE_MANAGER, force=True)


def lws_ref(namespace, name):
    return {"apiVersion": LWS_API, "kind": "LeaderWorkerSet", "metadata": {"name": name, "namespace": namespace}}


def surge_needs(client, keys, node, all_pods, nodes):
    """(LeaderWorkerSets to surge, those that would stop serving with no room to surge): a LeaderWorkerSet whose
    every group is among `keys`, and not a DisaggregatedSet's (its controller owns the replicas). The surge
    groups must fit together on the other nodes, the old groups still in place."""
    by_lws = {}
    for key in keys:
        ns, name, idx = key.split("/")
        by_lws.setdefault((ns, name), set()).add(idx)
    whole = []
    for (ns, name), idxs in sorted(by_lws.items()):
        live = client.get(lws_ref(ns, name))
        owners = [o.get("kind") for o in live["metadata"].get("ownerReferences") or []] if live else []
        if live and "DisaggregatedSet" not in owners and len(idxs) >= live["spec"].get("replicas", 1):
            whole.append(live)
    if not whole:
        return [], []
    free = capacity.free_gpus([n for n in nodes if n["metadata"]["name"] != node], all_pods)
    if capacity.fits(free, capacity.surge_pods([live["spec"] for live in whole])):
        return whole, []
    return [], whole


def scale_back(client, lws, replicas):
    """`lws` to `replicas` again, and the surge's traces gone: the annotation, and the scale's ownership of
    spec.replicas, which would make the site's next apply of another replica count a conflict (HTTP 409)."""
    client.scale(lws, replicas, MAINTENANCE_MANAGER)
    for attempt in range(10):   # a compare-and-swap: the controller writes the status meanwhile
        live = client.get(lws)
        keep = [m for m in live["metadata"].get("managedFields") or [] if m.get("manager") != MAINTENANCE_MANAGER]
        try:
            client.patch(live, {"metadata": {"resourceVersion": live["metadata"]["resourceVersion"],
                                             "managedFields": keep, "annotations": {SURGE_ANNOTATION: None}}})
            return
        except K8sError as exc:
            if exc.status != 409 or attempt == 9:
                raise
            time.sleep(0.5)


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
    surge = []
    if keys:  # would the groups fit elsewhere, once their own GPUs are given back?
        all_pods, nodes = client.list("v1", "Pod"), client.list("v1", "Node")
        leaving = {m["metadata"]["uid"] for group in members.values() for m in group}
        free = capacity.free_gpus([n for n in nodes if n["metadata"]["name"] != p["node"]],
                                  [x for x in all_pods if x["metadata"]["uid"] not in leaving])
        needed = [capacity.requested(m["spec"].get("containers", [])) for group in members.values() for m in group]
        if not capacity.fits(free, needed) and not p["accept_downtime"]:
            raise WideEPError("draining %s takes down EP group(s) %s (%d pods) and the other nodes have no room for "
                              "them (free GPUs: %s): they stay down until the node is back. Set accept_downtime "
                              "(maintenance_accept_downtime) to go ahead" % (
                                  p["node"], ", ".join(keys), len(needed),
                                  ", ".join("%s=%d" % kv for kv in sorted(free.items()))), groups=keys)
        if p["surge"]:
            surge, stopping = surge_needs(client, keys, p["node"], all_pods, nodes)
            if stopping and not p["accept_downtime"]:
                raise WideEPError("draining %s takes down every group of %s, and the other nodes have no room for "
                                  "one more beside them: it stops serving until its groups are Ready again. Free "
                                  "a node for a surge group, or set accept_downtime (maintenance_accept_downtime) "
                                  "to go ahead" % (p["node"], ", ".join(describe(x) for x in stopping)), groups=keys)
    evicted = ["%s/%s" % (x["metadata"]["namespace"], x["metadata"]["name"]) for x in others]
    result = {"changed": changed, "groups": keys, "evicted": evicted, "surged": [describe(x) for x in surge]}
    if check_mode or not changed:
        return result
    progress = Progress()
    set_unschedulable(client, p["node"], True)
    for lws in surge:  # first, so a surge group never lands on this node; the annotation says what to give back
        replicas = lws["spec"].get("replicas", 1)
        notes = {SURGE_ANNOTATION: "%s=%d" % (p["node"], replicas)}
        marked = lws_ref(lws["metadata"]["namespace"], lws["metadata"]["name"])
        marked["metadata"]["annotations"] = notes
        client.apply(marked, MAINTENANCE_MANAGER, force=True)
        client.scale(lws, replicas + 1, MAINTENANCE_MANAGER)
    if surge:
        wait_ready(client, [lws_ref(x["metadata"]["namespace"], x["metadata"]["name"]) for x in surge],
                   p["timeout"], 2, progress)
    for group in members.values():  # the whole group at once: LWS recreates it as one
        for pod in group:
            client.delete(pod)
    for pod in others:
        client.evict(pod)
    deadline = time.time() + p["timeout"]
    gone = {x["metadata"]["uid"] for x in others} | {m["metadata"]["uid"] for g in members.values() for m in g}
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
    workloads = [x for ns in p["namespaces"] for x in client.list(LWS_API, "LeaderWorkerSet", ns)]
    surged = {describe(x): int(mark.split("=", 1)[1]) for x in workloads
              for mark in [(x["metadata"].get("annotations") or {}).get(SURGE_ANNOTATION, "")]
              if mark.split("=", 1)[0] == p["node"]}
    changed = bool(node.get("spec", {}).get("unschedulable")) or bool(surged)
    result = {"changed": changed, "groups": [], "evicted": [], "surged": sorted(surged)}
    if check_mode:
        return result
    if node.get("spec", {}).get("unschedulable"):
        set_unschedulable(client, p["node"], False)
    progress = Progress()   # a long wait: shown live like the others
    wait_ready(client, [node_ref] + workloads, p["timeout"], 2, progress)
    back = [x for x in workloads if describe(x) in surged]
    for lws in back:   # every group Ready again: the surge group goes (the highest index), draining as any pod
        scale_back(client, lws, surged[describe(lws)])
    if back:
        wait_ready(client, back, p["timeout"], 2, progress)
    return result
