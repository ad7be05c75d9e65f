# Copyright: llm-d wide-EP collection contributors
# Apache-2.0
"""Readiness of the kinds the collection waits on, and the wait itself, saying what holds it up."""
from __future__ import annotations

import time

from ansible_collections.llmd.wide_ep.plugins.module_utils.k8s import disaggregatedset, lws
from ansible_collections.llmd.wide_ep.plugins.module_utils.k8s.client import describe, epoch
from ansible_collections.llmd.wide_ep.plugins.module_utils.k8s.errors import K8sError


def condition(obj, ctype):
    """The condition of type ctype of an object (or of a status-like mapping), or {}."""
    for cond in (obj or {}).get("status", {}).get("conditions", []) or []:
        if cond.get("type") == ctype:
            return cond
    return {}


def pod_state(pod):
    """Why a pod is not serving yet, in a few words: not scheduled (and the scheduler's reason), an image not
    pulled, a container crashing or starting, a readiness probe not passing; "Ready" when it is."""
    status = pod.get("status", {}) or {}
    if pod["metadata"].get("deletionTimestamp"):
        return "Terminating"
    scheduled = condition(pod, "PodScheduled")
    if scheduled.get("status") == "False":
        return "Pending, not scheduled: %s" % (scheduled.get("message") or scheduled.get("reason") or "?")[:160]
    for c in (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or []):
        waiting = (c.get("state") or {}).get("waiting")
        if waiting and waiting.get("reason") not in (None, "PodInitializing"):
            return "%s: %s" % (c["name"], waiting["reason"])  # ErrImagePull, ImagePullBackOff, CrashLoopBackOff
    if condition(pod, "Ready").get("status") == "True":
        return "Ready"
    if status.get("phase") == "Running":
        why = condition(pod, "Ready").get("reason")
        return "Running, not Ready%s: readiness probe not passing yet" % (" (%s)" % why if why else "")
    return status.get("phase") or "Pending"


def some_names(names):
    """'a, b, c, ...': the first three of the names, sorted."""
    names = sorted(names)
    return ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")


def pods_summary(pods):
    """'3/4 pods Ready; 1 Running, not Ready: readiness probe not passing yet (decode-0-1)' for a set of pods."""
    states = {}
    for pod in pods:
        states.setdefault(pod_state(pod), []).append(pod["metadata"]["name"])
    ready = len(states.pop("Ready", []))
    out = "%d/%d pods Ready" % (ready, len(pods))
    for state, names in sorted(states.items(), key=lambda kv: -len(kv[1])):
        out += "; %d %s (%s)" % (len(names), state, some_names(names))
    return out


def readiness(obj, client=None):
    """(ready, reason) for a live object. A DisaggregatedSet's is its LeaderWorkerSets': read over `client`."""
    kind = obj.get("kind")
    if kind == "DisaggregatedSet":
        return _ds_readiness(client, obj)[:2]
    spec, status = obj.get("spec", {}), obj.get("status", {}) or {}
    if kind == "LeaderWorkerSet":
        want = spec.get("replicas", 1)
        ready, updated = status.get("readyReplicas", 0), status.get("updatedReplicas", 0)
        available = condition(obj, "Available").get("status") == "True"
        ok = available and ready >= want and updated >= want
        if want == 0:  # scaled to zero: done when no group is left
            ok = status.get("replicas", 0) == 0
        reason = "%d/%d groups ready, %d updated, Available=%s" % (ready, want, updated, available)
        seen, generation = status.get("observedGeneration"), (obj.get("metadata") or {}).get("generation")
        if seen is not None and generation is not None and seen < generation:   # LWS 0.9.0 and later say
            ok, reason = False, reason + " (as of generation %s; %s not seen yet)" % (seen, generation)
        return ok, reason
    if kind == "Deployment":
        want = spec.get("replicas", 1)
        current = status.get("observedGeneration", 0) >= obj["metadata"].get("generation", 0)
        avail = status.get("availableReplicas", 0)
        ok = current and avail >= want and status.get("updatedReplicas", 0) >= want
        return ok, "%d/%d replicas available" % (avail, want)
    if kind == "Node":
        ok = condition(obj, "Ready").get("status") == "True"
        return ok, "Ready=%s" % ok
    if kind == "CustomResourceDefinition":
        ok = condition(obj, "Established").get("status") == "True"
        return ok, "Established=%s" % ok
    return True, "exists"


def fresh_pods(client, live, since):
    """(every pod of a LeaderWorkerSet exists, was created at or after `since` - epoch seconds, the server's
    clock - and is Ready; reason): that a pod-template change has rolled through, which the status of LWS before
    0.9.0 (no observedGeneration) cannot say right after the change."""
    meta, spec = live["metadata"], live["spec"]
    want = spec.get("replicas", 1) * spec.get("leaderWorkerTemplate", {}).get("size", 1)
    pods = [p for p in lws.lws_pods(client, meta["namespace"], meta["name"])
            if not p["metadata"].get("deletionTimestamp")]
    ready = [p for p in pods if epoch(p["metadata"].get("creationTimestamp")) >= int(since)
             and condition(p, "Ready").get("status") == "True"]
    return len(pods) == want and len(ready) >= want, "%d/%d pods of the new template Ready" % (len(ready), want)


def _ds_readiness(client, ds):
    return disaggregatedset.readiness(ds, disaggregatedset.children(client, ds), readiness)


def _why_not(client, cur):
    """(ready, reason) of a live object, with the pods that hold a LeaderWorkerSet (or a DisaggregatedSet's) up."""
    if cur.get("kind") == "DisaggregatedSet":
        ok, reason, held = _ds_readiness(client, cur)
    else:
        ok, reason = readiness(cur)
        held = [cur] if not ok and cur.get("kind") == "LeaderWorkerSet" else []
    for lws_obj in held:   # say which pods hold it up, and why
        meta = lws_obj["metadata"]
        pods = pods_summary(lws.lws_pods(client, meta["namespace"], meta["name"]))
        reason += "; " + (pods if lws_obj is cur else "%s: %s" % (meta["name"], pods))
    return ok, reason


def wait_ready(client, objs, timeout, sleep, progress, known=None, since=None):
    """Poll every object until all are ready; return the live objects. Raises K8sError on timeout. `known`:
    {describe(obj): live object} the caller has just read, used in place of the first read. `since`:
    {describe(obj): epoch} of LeaderWorkerSets whose pod template changed then: their pods must be newer."""
    since = since or {}
    deadline = time.time() + timeout
    pending = list(objs)
    live = {}
    last = {}
    known = dict(known or {})
    while True:
        still = []
        for obj in pending:
            cur = known.pop(describe(obj), None) or client.get(obj)
            ok, reason = _why_not(client, cur) if cur else (False, "not found")
            key = describe(obj)
            if ok and key in since and cur.get("kind") == "LeaderWorkerSet":
                ok, fresh = fresh_pods(client, cur, since[key])
                reason += "; " + fresh
            if last.get(key) != reason:
                progress.append("%s %s: %s" % (time.strftime("%H:%M:%S"), key, reason))
                last[key] = reason
            if ok:
                live[key] = cur
            else:
                still.append(obj)
        pending = still
        if not pending:
            return live
        if time.time() >= deadline:
            raise K8sError("timed out after %ss waiting for %s" % (
                timeout, "; ".join("%s (%s)" % (describe(o), last.get(describe(o))) for o in pending)))
        progress.still("still waiting for %s" % "; ".join(
            "%s (%s)" % (describe(o), last.get(describe(o))) for o in pending))
        time.sleep(sleep)
