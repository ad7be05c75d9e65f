# Copyright: llm-d wide-EP collection contributors
# Apache-2.0
"""Day-2 upgrades of the model servers: what an upgrade changes, whether a surge group fits, the health gate
a rolled role must pass, and the record of deployed revisions kept in the cluster (ConfigMap
`wide-ep-revisions`) from which a failed upgrade is rolled back."""
from __future__ import annotations

import json
import re
import time

from ansible_collections.llmd.wide_ep.plugins.module_utils.k8s import (
    condition,
    describe,
    epoch,
    lws_pods,
    normalize,
    pods_summary,
    readiness,
)

RECORD_NAME = "wide-ep-revisions"
KEEP_REVISIONS = 10
STRATEGY_MANAGER = "llmd.wide_ep.rollout"  # owns only spec.rolloutStrategy, so site.yml never reverts it


# --- versions ---------------------------------------------------------------------------------------------
def version_tuple(text):
    m = re.search(r"(\d+)\.(\d+)\.(\d+)", str(text or ""))
    return tuple(int(x) for x in m.groups()) if m else None


# Minimums this collection's manifests need, with why (checked before anything changes).
MINIMUMS = {
    "lws": ("0.7.0", "the guide's pin: rollout surge, group restart and the defaulting these manifests rely on"),
    "inferencepool_chart": ("1.0.0", "InferencePool inference.networking.k8s.io/v1, which the HTTPRoute references"),
    "istio": ("1.28.1", "the first Istio that routes to an InferencePool with several target ports (DP-aware)"),
}


def compatibility(current, target, dp_mode, gateway, allow_downgrade):
    """Problems with the target versions: below a minimum, a downgrade (unless allowed), or a multi-port pool
    on an Istio that cannot route it."""
    problems = []
    for key, (minimum, why) in MINIMUMS.items():
        want = version_tuple(target.get(key))
        if want is None:
            continue
        if key == "istio" and not (dp_mode == "dp-aware" and gateway == "istio"):
            continue
        if want < version_tuple(minimum):
            problems.append("%s %s is below %s: %s" % (key, target[key], minimum, why))
        have = version_tuple(current.get(key))
        if have and want < have and not allow_downgrade:
            problems.append("%s %s would downgrade %s (set upgrade_allow_downgrade to mean it)" % (
                key, target[key], current[key]))
    return problems


# --- what changes -----------------------------------------------------------------------------------------
def restorable(live):
    """A live LeaderWorkerSet as an object that can be applied again to restore it."""
    obj = normalize(live)
    meta = obj["metadata"]
    obj["metadata"] = {k: meta[k] for k in ("name", "namespace", "labels", "annotations") if k in meta}
    return obj


def _containers(lws, part):
    tmpl = lws.get("spec", {}).get("leaderWorkerTemplate", {}).get(part) or {}
    spec = tmpl.get("spec", {})
    return {c["name"]: c for c in spec.get("containers", []) + spec.get("initContainers", [])}


def changes(before, after):
    """Short lines saying what differs between two LeaderWorkerSets (images, args, env, replicas, other)."""
    lines = []
    if before.get("spec", {}).get("replicas") != after.get("spec", {}).get("replicas"):
        lines.append("replicas %s -> %s" % (before["spec"].get("replicas"), after["spec"].get("replicas")))
    for part in ("workerTemplate", "leaderTemplate"):
        old, new = _containers(before, part), _containers(after, part)
        for name in sorted(set(old) | set(new)):
            o, n = old.get(name, {}), new.get(name, {})
            if o.get("image") != n.get("image"):
                lines.append("%s %s image %s -> %s" % (part, name, o.get("image"), n.get("image")))
            o_args, n_args = o.get("command", []) + o.get("args", []), n.get("command", []) + n.get("args", [])
            if o_args != n_args:
                old_t, new_t = _tokens(o_args), _tokens(n_args)
                diff = ["+" + t for t in new_t if t not in old_t] + ["-" + t for t in old_t if t not in new_t]
                lines.append("%s %s command/args %s" % (part, name, " ".join(diff[:8]) or "reordered"))
            if o.get("env") != n.get("env"):
                lines.append("%s %s env changed" % (part, name))
    if template(before) != template(after) and not any("Template" in x for x in lines):
        lines.append("pod template changed")
    return sorted(set(lines), key=lines.index)


def _tokens(args):
    return [t for a in args for t in str(a).split()]


def template(lws):
    return (lws or {}).get("spec", {}).get("leaderWorkerTemplate")


def strategy_patch(lws, max_surge):
    """The apply body that sets only the rollout strategy (under its own field manager)."""
    return {"apiVersion": lws["apiVersion"], "kind": lws["kind"],
            "metadata": {"name": lws["metadata"]["name"], "namespace": lws["metadata"]["namespace"]},
            "spec": {"rolloutStrategy": {"type": "RollingUpdate", "rollingUpdateConfiguration": {
                "maxUnavailable": 1, "maxSurge": max_surge}}}}


# --- the health gate --------------------------------------------------------------------------------------
def applied_at(obj, manager):
    """When `manager` last applied to the object, by the server's clock (from managedFields)."""
    times = [epoch(m["time"]) for m in obj.get("metadata", {}).get("managedFields", []) or []
             if m.get("manager") == manager and m.get("operation") == "Apply" and m.get("time")]
    return max(times) if times else time.time()


def gate(client, lws, since, pool=None):
    """(passed, reason) for one LeaderWorkerSet after a change applied at `since` (epoch seconds; None when the
    pod template did not change): the LWS is Ready with every group updated, every expected pod exists, was
    created after the change and is Ready, and the InferencePool selects them all."""
    live = client.get(lws)
    if live is None:
        return False, "LeaderWorkerSet is gone"
    ok, why = readiness(live)
    spec = live["spec"]
    want = spec.get("replicas", 1) * spec.get("leaderWorkerTemplate", {}).get("size", 1)
    pods = [p for p in lws_pods(client, lws["metadata"]["namespace"], lws["metadata"]["name"])
            if not p["metadata"].get("deletionTimestamp")]
    fresh = [p for p in pods if since is None or epoch(p["metadata"]["creationTimestamp"]) >= int(since)]
    ready = [p for p in fresh if condition(p, "Ready").get("status") == "True"]
    waiting = [p for p in fresh if p not in ready]
    not_ready = " (not Ready: %s)" % pods_summary(waiting).split("; ", 1)[-1] if waiting else ""
    reason = "%s; %d/%d new pods Ready%s" % (why, len(ready), want, not_ready)
    passed = ok and len(ready) >= want and len(pods) == want
    if passed and pool is not None:
        wanted = pool.get("spec", {}).get("selector", {}).get("matchLabels", {})
        selected = [p for p in ready if all(p["metadata"].get("labels", {}).get(k) == v for k, v in wanted.items())]
        if not selected and want:
            passed = False
            reason += "; the InferencePool selects none of them"
        else:
            reason += "; InferencePool selects %d" % len(selected)
    return passed, reason


def wait_gate(client, lws, since, pool_ref, timeout, sleep, progress, tick=None):
    """Poll the gate until it passes or `timeout` ends; `tick` runs each round (the rollout lease's renewal)."""
    deadline = time.time() + timeout
    last = None
    while True:
        if tick:
            tick()
        pool = client.get(pool_ref) if pool_ref else None
        passed, reason = gate(client, lws, since, pool)
        if reason != last:
            progress.append("%s %s: %s" % (time.strftime("%H:%M:%S"), describe(lws), reason))
            last = reason
        if passed:
            return True, reason
        if time.time() >= deadline:
            return False, reason
        progress.still("%s %s: still at the gate: %s" % (time.strftime("%H:%M:%S"), describe(lws), reason))
        time.sleep(sleep)


# --- the record -------------------------------------------------------------------------------------------
class Record:
    """Revisions of the model servers, newest last, in one ConfigMap of the deployment's namespace."""

    def __init__(self, client, namespace, name=RECORD_NAME):
        self.client, self.ref = client, {"apiVersion": "v1", "kind": "ConfigMap",
                                         "metadata": {"name": name, "namespace": namespace}}
        live = client.get(self.ref)
        data = (live or {}).get("data", {}) or {}
        self.revisions = sorted((json.loads(v) for k, v in data.items() if k.startswith("rev-")),
                                key=lambda r: r["revision"])

    @property
    def current(self):
        done = [r for r in self.revisions if r["status"] == "deployed"]
        return done[-1] if done else None

    def add(self, status, objects, note, **extra):
        for old in self.revisions:
            if old["status"] == "in-progress":  # a run that was killed or lost its connection
                old.update(status="interrupted", reason="superseded by a later run")
        rev = {"revision": (self.revisions[-1]["revision"] + 1) if self.revisions else 1,
               "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "status": status, "note": note,
               "leaderworkersets": {o["metadata"]["name"]: o for o in objects}, **extra}
        self.revisions.append(rev)
        self.save()
        return rev

    def update(self, rev, **fields):
        rev.update(fields, time=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
        self.save()

    def save(self):
        keep = self.revisions[-KEEP_REVISIONS:]
        body = dict(self.ref)
        body["metadata"] = dict(self.ref["metadata"], labels={"app.kubernetes.io/managed-by": "llmd.wide_ep"})
        body["data"] = {"rev-%04d" % r["revision"]: json.dumps(r, sort_keys=True) for r in keep}
        # The whole map each time under its own field manager: keys left out (pruned revisions) go away.
        self.client.apply(body, field_manager="llmd.wide_ep.record", force=True)
