# Copyright: llm-d wide-EP collection contributors
# Apache-2.0
"""Day-2 upgrades of the model servers: `plan()` says whether an upgrade can start and what it will do
(read-only); a `Rollout` (client, rollout lease, revision record) rolls the LeaderWorkerSets one at a time
behind health gates and rolls a failed role back. The modules upgrade_plan and modelserver_rollout are their
argument specs around these."""
from __future__ import annotations

import copy
import time

from ansible_collections.llmd.wide_ep.plugins.module_utils import versions
from ansible_collections.llmd.wide_ep.plugins.module_utils.day2 import lease
from ansible_collections.llmd.wide_ep.plugins.module_utils.day2.revisions import RECORD_NAME, Record
from ansible_collections.llmd.wide_ep.plugins.module_utils.errors import InvalidInput, WideEPError
from ansible_collections.llmd.wide_ep.plugins.module_utils.k8s import capacity, disaggregatedset
from ansible_collections.llmd.wide_ep.plugins.module_utils.k8s.apply import would_change
from ansible_collections.llmd.wide_ep.plugins.module_utils.k8s.client import (
    FIELD_MANAGER,
    applied_at,
    describe,
    epoch,
    normalize,
)
from ansible_collections.llmd.wide_ep.plugins.module_utils.k8s.errors import K8sError
from ansible_collections.llmd.wide_ep.plugins.module_utils.k8s.lws import lws_pods
from ansible_collections.llmd.wide_ep.plugins.module_utils.k8s.readiness import (
    condition,
    pods_summary,
    readiness,
    some_names,
)
from ansible_collections.llmd.wide_ep.plugins.module_utils.progress import Progress

STRATEGY_MANAGER = "llmd.wide_ep.rollout"  # owns only spec.rolloutStrategy, so site.yml never reverts it


# --- versions ---------------------------------------------------------------------------------------------
# Minimums this collection's manifests need, with why (checked before anything changes).
MINIMUMS = {
    "lws": ("0.7.0", "the guide's pin: rollout surge, group restart and the defaulting these manifests rely on"),
    "istio": ("1.28.1", "the first Istio that routes to an InferencePool with several target ports (DP-aware)"),
}
# The router chart's minimum, by the plan's chart: llm-d-router's charts (v0.9.0 on) numbered afresh and all
# serve InferencePool v1.
CHART_MINIMUMS = {
    "inferencepool": ("1.0.0", "InferencePool inference.networking.k8s.io/v1, which the HTTPRoute references"),
}


def compatibility(current, target, dp_mode, gateway, allow_downgrade, router_chart="inferencepool"):
    """Problems with the target versions: below a minimum, a downgrade (unless allowed), or a multi-port pool
    on an Istio that cannot route it. router_chart: the plan's router chart (the minimum is GAIE's)."""
    problems = []
    minimums = {"lws": MINIMUMS["lws"], "inferencepool_chart": CHART_MINIMUMS.get(router_chart, (None, None)),
                "istio": MINIMUMS["istio"]}   # the order the problems are reported in
    for key, (minimum, why) in minimums.items():
        want = versions.parse(target.get(key))
        if want is None:
            continue
        if key == "istio" and not (dp_mode == "dp-aware" and gateway == "istio"):
            continue
        if minimum and want < versions.parse(minimum):
            problems.append("%s %s is below %s: %s" % (key, target[key], minimum, why))
        have = versions.parse(current.get(key))
        if have and want < have and not allow_downgrade:
            problems.append("%s %s would downgrade %s (set upgrade_allow_downgrade to mean it)" % (
                key, target[key], current[key]))
    return problems


# --- what changes -----------------------------------------------------------------------------------------
def restorable(live):
    """A live LeaderWorkerSet as an object that can be applied again to restore it."""
    obj = without_strategy(normalize(live))
    meta = obj["metadata"]
    obj["metadata"] = {k: meta[k] for k in ("name", "namespace", "labels", "annotations") if k in meta}
    return obj


def without_strategy(obj):
    """`obj` without its rollout strategy: STRATEGY_MANAGER owns it (each run sets it for its own roll), and an
    object read back from the cluster - a restorable revision, a record written before this rule - carries the
    one the last run left, whose maxSurge a plain apply would fight over (HTTP 409)."""
    spec = obj.get("spec") or {}
    if "rolloutStrategy" not in spec and not any("rolloutStrategy" in (r.get("spec") or {})
                                                 for r in spec.get("roles") or []):
        return obj
    out = copy.deepcopy(obj)
    out["spec"].pop("rolloutStrategy", None)
    for role in out["spec"].get("roles") or []:
        (role.get("spec") or {}).pop("rolloutStrategy", None)
    return out


def _containers(lws, part):
    tmpl = lws.get("spec", {}).get("leaderWorkerTemplate", {}).get(part) or {}
    spec = tmpl.get("spec", {})
    return {c["name"]: c for c in spec.get("containers", []) + spec.get("initContainers", [])}


def changes(before, after):
    """Short lines saying what differs between two LeaderWorkerSets (images, args, env, replicas, other), or
    between two DisaggregatedSets, role by role."""
    if before.get("kind") == "DisaggregatedSet":
        old = {r["name"]: r for r in before["spec"].get("roles") or []}
        lines = []
        for role in after["spec"].get("roles") or []:
            was = old.get(role["name"])
            if was is None:
                lines.append("role %s added" % role["name"])
                continue
            lines += ["%s: %s" % (role["name"], line) for line in changes(was, role)]
        return lines + ["role %s removed" % n for n in old if n not in {r["name"] for r in after["spec"]["roles"]}]
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


def template(obj):
    """What a change of restarts pods: a LeaderWorkerSet's template, a DisaggregatedSet's roles' templates."""
    spec = (obj or {}).get("spec", {})
    if (obj or {}).get("kind") == "DisaggregatedSet":
        return [(r["name"], r.get("spec", {}).get("leaderWorkerTemplate")) for r in spec.get("roles") or []]
    return spec.get("leaderWorkerTemplate")


def strategy_patch(obj, max_surge):
    """The apply body that sets only the rollout strategy (under its own field manager). With surge, a new group
    comes up beside the old ones and none goes down before it is Ready (maxUnavailable 0): LWS moves its
    partition by maxUnavailable plus the surge it has, so maxUnavailable 1 would take an old group down while
    the surge group still starts, and reclaim the surge group while the last updated one is not Ready yet (both
    seen as failed requests under load on kind). Without surge, one group at a time (maxUnavailable 1). A
    DisaggregatedSet's controller applies the same to every role at once."""
    meta = {"name": obj["metadata"]["name"], "namespace": obj["metadata"]["namespace"]}
    strategy = {"type": "RollingUpdate",
                "rollingUpdateConfiguration": {"maxSurge": max_surge, "maxUnavailable": 0 if max_surge else 1}}
    if obj["kind"] == "DisaggregatedSet":
        roles = [{"name": r["name"], "spec": {"rolloutStrategy": strategy}} for r in obj["spec"]["roles"]]
        return {"apiVersion": obj["apiVersion"], "kind": obj["kind"], "metadata": meta, "spec": {"roles": roles}}
    return {"apiVersion": obj["apiVersion"], "kind": obj["kind"], "metadata": meta,
            "spec": {"rolloutStrategy": strategy}}


# --- the health gate --------------------------------------------------------------------------------------
def _gate_pods(client, live):
    """(pods expected, live pods) of a LeaderWorkerSet, or of every LeaderWorkerSet of a DisaggregatedSet (the
    old revision's too: the gate passes only once they are gone)."""
    ns = live["metadata"]["namespace"]
    if live["kind"] == "DisaggregatedSet":
        want = sum(r["spec"].get("replicas", 1) * r["spec"]["leaderWorkerTemplate"].get("size", 1)
                   for r in live["spec"]["roles"])
        pods = [p for child in disaggregatedset.children(client, live)
                for p in lws_pods(client, ns, child["metadata"]["name"])]
        return want, pods
    spec = live["spec"]
    return (spec.get("replicas", 1) * spec.get("leaderWorkerTemplate", {}).get("size", 1),
            lws_pods(client, ns, live["metadata"]["name"]))


def gate(client, lws, since, pool=None):
    """(passed, reason) for one LeaderWorkerSet (or DisaggregatedSet) after a change applied at `since` (epoch
    seconds; None when no pod template changed): it is Ready with every group updated, every expected pod exists,
    was created after the change and is Ready, and the InferencePool selects them all."""
    live = client.get(lws)
    if live is None:
        return False, "%s is gone" % lws["kind"]
    ok, why = readiness(live, client)
    want, pods = _gate_pods(client, live)
    pods = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
    fresh = [p for p in pods if since is None or epoch(p["metadata"]["creationTimestamp"]) >= int(since)]
    ready = [p for p in fresh if condition(p, "Ready").get("status") == "True"]
    waiting = [p for p in fresh if p not in ready]
    not_ready = " (not Ready: %s)" % pods_summary(waiting).split("; ", 1)[-1] if waiting else ""
    # A pod of the old spec that nothing removes blocks its replacement (same name): say which one.
    old = [p["metadata"]["name"] for p in pods if p not in fresh]
    left = "; %d from before the change still there (%s)" % (len(old), some_names(old)) if old else ""
    reason = "%s; %d/%d new pods Ready%s%s" % (why, len(ready), want, not_ready, left)
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


# --- the plan (read-only) -------------------------------------------------------------------------------
STEP_ORDER = (("lws", "LWS controller"), ("istio", "gateway control plane (Istio)"),
              ("inferencepool_chart", "inferencepool chart (EPP)"))


# GAIE's inferencepool chart (v1.2.0 to v1.5.0 read) runs its EPP as a Recreate Deployment: one active picker
EPP_RECREATE = ("the inferencepool chart's EPP Deployment is Recreate (one active picker): the old EPP stops before "
                "the new one starts, and requests through the gateway fail until the new one is Ready")


def running_versions(helm, refs, gateway, current, target):
    """`current` with the chart and Istio versions read from helm where a target names them and none was given."""
    cur = dict(current)
    if "inferencepool_chart" in target and not cur.get("inferencepool_chart"):
        rel = helm.release(refs["release"], refs["namespace"])
        cur["inferencepool_chart"] = rel and rel["version"]
    if "istio" in target and gateway == "istio" and not cur.get("istio"):
        rel = helm.release("istiod", "istio-system")
        cur["istio"] = rel and (rel.get("app_version") or rel["version"])
    return cur


def plan(client, definitions, refs, expected, current, target, surge="auto", allow_unhealthy=False,
         allow_downgrade=False):
    """Whether an upgrade can start and what it will do, changing nothing. Returns {steps, surge, plan, problems,
    warnings}: the components that change in order, maxSurge per LeaderWorkerSet that changes, the plan as
    lines, what refuses the start, and what the user should know (a role that goes down whole)."""
    target = {k: v for k, v in target.items() if v}
    out = {"steps": [], "surge": {}, "plan": [], "warnings": [],
           "problems": compatibility(current, target, expected["dp_mode"], expected["gateway"], allow_downgrade,
                                     expected.get("router_chart", "inferencepool"))}
    for key, label in STEP_ORDER:
        if target.get(key) and not versions.same(target[key], current.get(key)):
            out["steps"].append(key)
            out["plan"].append("%s: %s -> %s" % (label, current.get(key) or "not found", target[key]))
    if "inferencepool_chart" in out["steps"] and expected.get("router_chart", "inferencepool") == "inferencepool":
        out["warnings"].append(EPP_RECREATE)
    resuming = _check_running(client, refs, out)
    # the controller that rolls the model servers: the new one when this upgrade changes it first
    lws_version = target.get("lws") if "lws" in out["steps"] else current.get("lws")
    _plan_model_servers(client, definitions, surge, out, lws_version)
    if out["surge"] or resuming:
        out["steps"].append("modelservers")
    if allow_unhealthy or resuming:
        out["problems"] = [x for x in out["problems"] if "not healthy" not in x]
    if not out["plan"]:
        out["plan"].append("nothing to upgrade: everything already runs the wanted versions and specs")
    return out


def _check_running(client, refs, out):
    """Another run's lease, the last revision and the EPP; True when this run finishes an unfinished revision."""
    ns = refs["namespace"]
    held = lease.running(client, ns)
    if held:
        holder, renewed, duration = held
        out["problems"].append(
            "another upgrade or rollback is running: Lease %s/%s is held by %s (renewed %s). Let it finish; if its "
            "controller died, the lease expires %ss after that renewal and a run after then takes it over" % (
                ns, lease.LEASE_NAME, holder, renewed, duration))
    last = (Record(client, ns).revisions or [None])[-1]
    # A run killed mid-rollout (in-progress), or one whose rollback failed too (failed), left the roles in an
    # unknown state: this run takes them to the wanted spec, and their gate judges them.
    resuming = bool(last and last["status"] in ("in-progress", "failed"))
    if resuming:
        out["plan"].append("finishing revision %d (%s, %s at %s)" % (
            last["revision"], last["note"], last["status"], last["time"]))
    epp = client.get(refs["epp"])
    ok, why = readiness(epp) if epp else (False, "missing")
    if not ok:
        out["problems"].append("EPP %s is not healthy before the upgrade: %s" % (refs["epp"]["metadata"]["name"], why))
    return resuming


# LWS before 0.9.0 releases the surge group of a LeaderWorkerSet with one group as soon as the roll starts (its
# burst count is replicas + unready - 1), so maxSurge 1 there is no surge, and with maxUnavailable 0 the roll
# never moves; 0.9.0 keeps the surge group until the updated groups are Ready (calculateRollingUpdateReplicas).
ONE_GROUP_SURGE_LWS = "0.9.0"


def surge_room(free, obj, lws_version):
    """(1 when one more group of `obj` can serve beside the old ones during its roll, else 0; why not): it fits
    the free GPUs - a DisaggregatedSet's controller surges a group of every role at once, all of them together -
    and the LWS controller `lws_version` keeps it."""
    roles = obj["spec"]["roles"] if obj["kind"] == "DisaggregatedSet" else [obj]
    pods = capacity.surge_pods([r["spec"] for r in roles])
    if obj["kind"] == "LeaderWorkerSet" and obj["spec"].get("replicas", 1) <= 1 and not (
            lws_version and versions.at_least(lws_version, ONE_GROUP_SURGE_LWS)):
        return 0, "the LWS controller (%s) releases a one-group LeaderWorkerSet's surge group at once (kept from " \
                  "%s)" % (lws_version or "version unknown", ONE_GROUP_SURGE_LWS)
    if capacity.fits(free, pods):
        return 1, None
    return 0, "no room for a surge group%s of %d pods x %s GPUs (free per node: %s)" % (
        " of every role" if len(roles) > 1 else "", len(pods), "/".join(str(g) for g in sorted(set(pods))),
        ", ".join("%s=%d" % kv for kv in sorted(free.items())) or "none")


def free_gpus(client):
    return capacity.free_gpus(client.list("v1", "Node"), client.list("v1", "Pod"))


def _plan_model_servers(client, definitions, surge, out, lws_version):
    """Per LeaderWorkerSet: deployed and healthy, what changes, and a surge group when the free GPUs hold one."""
    free = free_gpus(client)
    for obj in definitions:
        live = client.get(obj)
        if live is None:
            out["problems"].append("%s is not deployed: run site.yml first" % describe(obj))
            continue
        ok, why = readiness(live, client)
        if not ok:
            out["problems"].append("%s is not healthy before the upgrade: %s" % (describe(obj), why))
        changed, live, preview = would_change(client, obj, live)
        if not changed:
            continue
        name = obj["metadata"]["name"]
        room, why = surge_room(free, obj, lws_version) if surge != "never" else (0, "upgrade_surge is never")
        out["surge"][name] = room
        if surge == "required" and not room:
            out["problems"].append("%s: %s" % (name, why))
        roles = obj["spec"]["roles"] if obj["kind"] == "DisaggregatedSet" else [obj]
        single = [r.get("name", name) for r in roles if r["spec"].get("replicas", 1) == 1]
        if not out["surge"][name] and obj["kind"] == "DisaggregatedSet":
            out["warnings"].append("%s has no surge group (%s): its controller takes the old groups of every role "
                                   "down together (%s), and the stack stops serving until the new ones are Ready "
                                   "(7-45 minutes for DeepSeek-R1)" % (name, why, ", ".join(r["name"] for r in roles)))
        elif not out["surge"][name] and single:
            out["warnings"].append("%s has one group and no surge group (%s): it stops serving until the new group "
                                   "is Ready (7-45 minutes for DeepSeek-R1)" % (name, why))
        if obj["kind"] == "DisaggregatedSet":
            how = ("surge: a new group of every role, then the old ones go" if out["surge"][name] else
                   "the old groups of every role first, then the new ones")
        else:
            how = "surge: one extra group, then the old ones go" if out["surge"][name] else "one group at a time"
        out["plan"].append("model servers %s (%s): %s" % (name, how, "; ".join(changes(live, preview))))


# --- the rollout ----------------------------------------------------------------------------------------
class Failed(WideEPError):
    """The rollout failed (and was rolled back where it could be); `extra` goes into the task result."""


def brief(rev):
    """A record entry without its objects, for the task result."""
    return {k: v for k, v in rev.items() if k != "leaderworkersets"} if rev else None


class Rollout:
    """One upgrade or rollback of the model servers: the client, the rollout lease (one run at a time) and the
    record of revisions. Use as a context manager: the lease is taken on entry (not in check mode, which changes
    nothing) and given back on exit."""

    def __init__(self, client, refs, lock_duration=90, note="upgrade", force_conflicts=False, gate_sleep=5.0,
                 check_mode=False):
        if lock_duration < 10 or gate_sleep * 3 > lock_duration:
            raise InvalidInput("lock_duration is %s and gate_sleep %s: the lease is renewed between gate checks, so "
                               "give lock_duration at least 10 seconds and 3 x gate_sleep" % (
                                   lock_duration, gate_sleep))
        self.client, self.ns, self.pool_ref = client, refs["namespace"], refs.get("pool")
        self.note, self.force, self.sleep, self.check_mode = note, force_conflicts, gate_sleep, check_mode
        self.lock = lease.Lease(client, self.ns, lock_duration, note=note)
        self.progress = Progress()
        self.record = None

    def __enter__(self):
        if not self.check_mode:  # before reading the record: a run that holds the lease may still change it
            self.lock.acquire(self.progress)
        self.record = Record(self.client, self.ns)
        return self

    def __exit__(self, *exc_info):
        try:
            self.lock.release()
        except K8sError:
            pass  # a lost API server: the lease expires on its own
        return False

    # --- what to apply -------------------------------------------------------------------------------
    def rollback_target(self, to_revision=None):
        """(objects, the revision they come from, the deployed revision this undoes) of a rollback."""
        revisions = self.record.revisions
        deployed = [r for r in revisions if r["status"] == "deployed"]
        # After an upgrade that did not deploy (failed with its rollback off, interrupted) the way back is the last
        # good revision; after one that did, the one before it.
        back = deployed[-1:] if revisions and revisions[-1]["status"] != "deployed" else deployed[-2:-1]
        target = [r for r in revisions if r["revision"] == to_revision] if to_revision else back
        if not target:
            raise Failed("no revision %s in ConfigMap %s/%s to roll back to (revisions: %s)" % (
                to_revision or "before the last deployed one", self.ns, RECORD_NAME,
                ", ".join("%d %s" % (r["revision"], r["status"]) for r in revisions) or "none"))
        target = target[0]
        undone = deployed[-1] if deployed and deployed[-1] is not target else None
        kinds = {r["revision"]: sorted({o["kind"] for o in r["leaderworkersets"].values()}) for r in (target, undone)
                 if r}
        if undone and kinds[target["revision"]] != kinds[undone["revision"]]:
            raise Failed("revision %d runs %s and revision %d %s: a rollback does not move the model servers "
                         "between workloads (it would start the old one beside the new). Roll back to a revision "
                         "of the same workload, or tear down and deploy the other one" % (
                             target["revision"], " and ".join(kinds[target["revision"]]), undone["revision"],
                             " and ".join(kinds[undone["revision"]])))
        return list(target["leaderworkersets"].values()), target, undone

    def preview(self, objs):
        """(per object {name, changed, changes}, the live specs to restore by name). Fails on a missing one."""
        rows, previous = [], {}
        for obj in objs:
            live = self.client.get(obj)
            if live is None:
                raise Failed("%s is not deployed: run site.yml first; an upgrade only changes what runs"
                             % describe(obj))
            previous[obj["metadata"]["name"]] = restorable(live)
            changed, live, preview = would_change(self.client, obj, live, self.force)
            rows.append({"name": obj["metadata"]["name"], "changed": changed,
                         "changes": changes(live, preview) if changed else []})
        return rows, previous

    # --- rolling ---------------------------------------------------------------------------------------
    def roll(self, objs, surge, timeout, force):
        """Apply each object that differs and gate it; gate unchanged ones too. Returns (rolled names, failure)."""
        rolled = []
        for obj in objs:
            name = obj["metadata"]["name"]
            try:
                self.lock.renew(force=True)
                changed, before, dummy = would_change(self.client, obj, self.client.get(obj), force)
                since = None
                if changed:
                    self.client.apply(strategy_patch(obj, int(surge.get(name, 0))), STRATEGY_MANAGER, force=True)
                    rolled.append(name)
                    after = self.client.apply(obj, force=force)
                    if template(after) != template(before):
                        since = applied_at(after, FIELD_MANAGER)
                    self.progress.append("applied %s (maxSurge %s)" % (describe(obj), surge.get(name, 0)))
                passed, reason = wait_gate(self.client, obj, since, self.pool_ref, timeout, self.sleep,
                                           self.progress, tick=self.lock.renew)
                if passed and changed and int(surge.get(name, 0)):
                    # one group at a time again: a later change (site.yml's, another tool's) would otherwise
                    # wait for a surge group the GPUs may no longer hold, and maxUnavailable 0 never moves
                    self.client.apply(strategy_patch(obj, 0), STRATEGY_MANAGER, force=True)
            except K8sError as exc:
                return rolled, "%s: %s" % (describe(obj), exc)
            if not passed:
                return rolled, "%s did not pass its gate in %ss: %s" % (describe(obj), timeout, reason)
        return rolled, None

    def run(self, objs, surge=None, gate_timeout=2700, rollback=True, rollback_timeout=2700, to_revision=None,
            action="upgrade", lws_version=None):
        """Upgrade to `objs` (or, with action=rollback, return to an earlier revision) behind the gates. Returns
        the task result; raises Failed saying what failed and whether the rollback passed."""
        record, target, undone = self.record, None, None
        if action == "rollback":
            objs, target, undone = self.rollback_target(to_revision)
        objs = [without_strategy(obj) for obj in objs]
        if surge is None:   # a rollback: a surge group where the free GPUs hold one, as an upgrade's plan decides
            free, surge = free_gpus(self.client), {}
            for obj in objs:
                name = obj["metadata"]["name"]
                surge[name], why = surge_room(free, obj, lws_version)
                if why:
                    self.progress.append("%s: one group at a time: %s" % (name, why))
        rows, previous = self.preview(objs)
        changed = any(x["changed"] for x in rows)
        if self.check_mode:
            return dict(changed=changed, plan=rows, progress=self.progress)
        rev = None
        if changed:
            if record.current is None:  # the first upgrade: record what runs now, so there is a way back
                record.add("deployed", list(previous.values()), "found running before the first recorded change")
            note = self.note if action == "upgrade" else "rollback to revision %d" % target["revision"]
            rev = record.add("in-progress", objs, note, changes={x["name"]: x["changes"] for x in rows})
        elif record.revisions and record.revisions[-1]["status"] != "deployed" and \
                record.revisions[-1]["leaderworkersets"] == {o["metadata"]["name"]: o for o in objs}:
            rev = record.revisions[-1]  # an interrupted or failed run applied this already: this run finishes it

        rolled, failure = self.roll(objs, surge or {}, gate_timeout, self.force)
        if failure:
            self._fail(failure, rolled, previous, rev, rollback, rollback_timeout, rows)
        if rev:
            record.update(rev, status="deployed", **({"completed_by_rerun": True} if not changed else {}))
        if undone and changed:
            record.update(undone, status="rolled-back", reason="undone by revision %d" % rev["revision"])
        return dict(changed=changed, plan=rows, progress=self.progress, revision=brief(rev))

    def _fail(self, failure, rolled, previous, rev, rollback, rollback_timeout, rows):
        """Roll back what this run rolled (when allowed), record how it ended, and raise Failed."""
        if rollback and rolled:
            self.progress.append("rolling back %s" % ", ".join(rolled))
            dummy, again = self.roll([previous[n] for n in rolled], {}, rollback_timeout, True)
            if rev:
                self.record.update(rev, status="rolled-back" if not again else "failed", reason=failure)
            if again:
                failure = "%s; the rollback did not pass the gate either: %s" % (failure, again)
            else:
                failure = "%s; rolled back %s to the previous spec, which passed its gate again" % (
                    failure, ", ".join(rolled))
            raise Failed(failure, plan=rows, revision=brief(rev))
        if rev:
            self.record.update(rev, status="failed", reason=failure)
        raise Failed(failure + ("" if rollback else " (rollback disabled)"), plan=rows, revision=brief(rev))
