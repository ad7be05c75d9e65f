# Copyright: llm-d wide-EP collection contributors
# Apache-2.0
"""A DisaggregatedSet's LeaderWorkerSets and its readiness. The LWS 0.9.0 controller writes no status on the
DisaggregatedSet: it makes one LeaderWorkerSet per role and revision, <ds>-<revision>-<role>, labelled with the
set, role and revision (pkg/utils/disaggregatedset), and on a change of any role's template it surges the new
revision's groups beside the old ones, then drains and deletes the old (pkg/controllers/disaggregatedset). So
readiness is read from the children: per role, the one whose template is the role's, Ready at the role's
replicas, and no older revision still holding groups."""
from __future__ import annotations

from ansible_collections.llmd.wide_ep.plugins.module_utils.k8s.client import ref

LWS_API = "leaderworkerset.x-k8s.io/v1"
DS_API = "disaggregatedset.x-k8s.io/v1"
SET_LABEL = "disaggregatedset.x-k8s.io/name"
ROLE_LABEL = "disaggregatedset.x-k8s.io/role"
REVISION_LABEL = "disaggregatedset.x-k8s.io/revision"


def children(client, ds):
    """Every LeaderWorkerSet of the DisaggregatedSet `ds` (a live object or a reference), any revision."""
    meta = ds["metadata"]
    return client.list(LWS_API, "LeaderWorkerSet", meta["namespace"],
                       label_selector="%s=%s" % (SET_LABEL, meta["name"]))


def _replicas(spec):
    return 1 if spec.get("replicas") is None else spec["replicas"]


def _go(value):
    """A value as Go writes it back: fields at their zero value or empty are dropped. The controller copies the
    role's template through Go structs, so `initialDelaySeconds: 0` goes (omitempty) and `resources: {}` comes
    (a struct is never omitted); compared this way the two copies of one template are equal."""
    if isinstance(value, dict):
        out = {k: _go(v) for k, v in value.items()}
        return {k: v for k, v in out.items() if v not in (None, 0, "", False, {}, [])}
    if isinstance(value, list):
        return [_go(v) for v in value]
    return value


def is_current(child, role):
    """Whether a child LeaderWorkerSet runs the role's template as the set now has it. The controller copies the
    role's spec and adds only its own labels (and the LWS webhook's defaults, outside the pod templates), so the
    pod specs and the group size compare equal exactly when the revision is the set's current one."""
    want, have = role["spec"]["leaderWorkerTemplate"], child["spec"]["leaderWorkerTemplate"]
    return (want.get("size", 1) == have.get("size", 1)
            and _go(want["workerTemplate"].get("spec")) == _go(have["workerTemplate"].get("spec"))
            and _go((want.get("leaderTemplate") or {}).get("spec")) == _go((have.get("leaderTemplate") or {}).get(
                "spec")))


def by_role(ds, lws_list):
    """{role: {"current": child or None, "old": [children of other revisions still holding groups]}}."""
    out = {}
    for role in ds["spec"].get("roles") or []:
        mine = [c for c in lws_list if (c["metadata"].get("labels") or {}).get(ROLE_LABEL) == role["name"]]
        current = [c for c in mine if is_current(c, role)]
        out[role["name"]] = {"role": role, "current": current[0] if current else None,
                             "old": [c for c in mine if c not in current and _replicas(c["spec"]) > 0]}
    return out


def readiness(ds, lws_list, lws_readiness):
    """(ready, reason, pending children) of a live DisaggregatedSet; lws_readiness is readiness.readiness."""
    parts, ok, pending = [], True, []
    for name, r in by_role(ds, lws_list).items():
        want = _replicas(r["role"]["spec"])
        child = r["current"]
        if child is None:
            ok = False
            parts.append("%s: no LeaderWorkerSet of the current revision yet" % name)
            continue
        rev = (child["metadata"].get("labels") or {}).get(REVISION_LABEL, "?")
        child_ok, why = lws_readiness(child)
        at_target = _replicas(child["spec"]) == want
        text = "%s (revision %s): %s" % (name, rev, why)
        if not at_target:
            text += ", scaling to %d" % want
        if r["old"]:
            text += "; %d older revision(s) still hold %d group(s)" % (
                len(r["old"]), sum(_replicas(o["spec"]) for o in r["old"]))
        parts.append(text)
        if not (child_ok and at_target and not r["old"]):
            ok = False
            if not child_ok:
                pending.append(child)
    if not parts:
        return False, "no roles", []
    return ok, "; ".join(parts), pending


def resolve_refs(client, refs):
    """(refs, problems): the plan's refs with `leaderworkersets` naming the DisaggregatedSet's current children,
    for checks written against a LeaderWorkerSet per role; unchanged for the LeaderWorkerSet pair. A role whose
    current template has no LeaderWorkerSet yet is left out and named in problems, so no check passes on it."""
    ds_ref = refs.get("disaggregatedset")
    if not ds_ref:
        return refs, []
    live = client.get(ds_ref)
    return current_refs(refs, live, children(client, live) if live else [])


def current_refs(refs, live, lws_list):
    """resolve_refs over the set and its children as already read (None: the set is missing)."""
    ds_ref = refs["disaggregatedset"]
    if live is None:
        return dict(refs, leaderworkersets={}), ["DisaggregatedSet %s/%s: missing" % (
            ds_ref["metadata"]["namespace"], ds_ref["metadata"]["name"])]
    found = {name: r["current"] for name, r in by_role(live, lws_list).items()}
    problems = ["DisaggregatedSet %s: role %s has no LeaderWorkerSet of its current template" % (
        ds_ref["metadata"]["name"], role) for role, child in found.items() if child is None]
    lws_refs = {role: ref(LWS_API, "LeaderWorkerSet", child["metadata"]["name"], ds_ref["metadata"]["namespace"])
                for role, child in found.items() if child is not None}
    return dict(refs, leaderworkersets=lws_refs), problems
