# Copyright: llm-d wide-EP collection contributors
# Apache-2.0
"""LeaderWorkerSet labels and pods."""
from __future__ import annotations

LWS_NAME_LABEL = "leaderworkerset.sigs.k8s.io/name"
LWS_GROUP_LABEL = "leaderworkerset.sigs.k8s.io/group-index"


def lws_pods(client, namespace, lws_name, group=None):
    """The pods of one LeaderWorkerSet (of one of its groups when `group` is given)."""
    selector = "%s=%s" % (LWS_NAME_LABEL, lws_name)
    if group is not None:
        selector += ",%s=%s" % (LWS_GROUP_LABEL, group)
    return client.list("v1", "Pod", namespace, label_selector=selector)


def identity(obj):
    """Which object a LeaderWorkerSet (or DisaggregatedSet) is: kind, namespace, name and UID - a recreated one has
    the same name and another UID."""
    meta = obj["metadata"]
    return {"kind": obj["kind"], "namespace": meta["namespace"], "name": meta["name"], "uid": meta["uid"]}


LWS_WORKER_LABEL = "leaderworkerset.sigs.k8s.io/worker-index"
REVISION_LABEL = "leaderworkerset.sigs.k8s.io/template-revision-hash"
# A group's workers are made by its worker StatefulSet within seconds of it (the leader makes the StatefulSet, the
# StatefulSet its pods), or once their predecessors ended (their grace period); one made this long after that was
# recreated alone (kubernetes-sigs/lws#998).
SPLIT_WINDOW = 60
DEFAULT_GRACE = 30   # a pod's terminationGracePeriodSeconds when it sets none


def split_groups(pods, statefulsets, window=SPLIT_WINDOW):
    """The groups whose pods are not one incarnation: [{group, leader, why}]. LWS restarts a group whole
    (RecreateGroupOnPodRestart) by deleting its leader, whose worker StatefulSet and workers go with it; when the
    StatefulSet recreates a deleted worker first, LWS skips the restart (kubernetes-sigs/lws#998, unfixed up to
    0.10.0) and the worker rejoins ranks that never restarted - DeepEP/NCCL hang while every pod reads Ready."""
    from ansible_collections.llmd.wide_ep.plugins.module_utils.k8s.client import epoch

    by_name = {s["metadata"]["name"]: s for s in statefulsets}
    groups = {}
    for pod in pods:
        labels = pod["metadata"].get("labels") or {}
        groups.setdefault(labels.get(LWS_GROUP_LABEL), []).append(pod)
    out = []
    for group, members in sorted(groups.items(), key=lambda kv: int(kv[0] or 0)):
        leader = next((p for p in members if (p["metadata"].get("labels") or {}).get(LWS_WORKER_LABEL) == "0"), None)
        why = []
        revisions = sorted({(p["metadata"].get("labels") or {}).get(REVISION_LABEL) for p in members} - {None})
        if len(revisions) > 1:
            why.append("its pods are of revisions %s" % ", ".join(revisions))
        for pod in members:
            if pod is leader:
                continue
            owner = next((o for o in pod["metadata"].get("ownerReferences") or [] if o.get("kind") == "StatefulSet"),
                         None)
            sts = by_name.get(owner["name"]) if owner else None
            if sts is None:
                continue
            leader_ref = next((o for o in sts["metadata"].get("ownerReferences") or [] if o.get("kind") == "Pod"), {})
            if leader is not None and leader_ref and leader_ref.get("uid") != leader["metadata"]["uid"]:
                why.append("worker %s belongs to another leader" % pod["metadata"]["name"])
                continue
            # A group restarted whole makes its workers only once the old ones are gone: up to their grace period.
            grace = (pod.get("spec") or {}).get("terminationGracePeriodSeconds", DEFAULT_GRACE)
            late = epoch(pod["metadata"]["creationTimestamp"]) - epoch(sts["metadata"]["creationTimestamp"])
            if late > window + grace:
                why.append("worker %s was recreated alone %ds after its group started: its leader and the other "
                           "ranks never restarted (kubernetes-sigs/lws#998)" % (pod["metadata"]["name"], late))
        if why:
            out.append({"group": group, "leader": leader["metadata"]["name"] if leader else None, "why": why})
    return out
