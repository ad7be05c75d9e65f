# Copyright: llm-d wide-EP collection contributors
# Apache-2.0
"""The live move of a running LeaderWorkerSet pair onto one DisaggregatedSet (upgrade.yml with
upgrade_from_workload). The pool selects the model servers by label, so both workloads serve from it while they
overlap; the old LeaderWorkerSets go last. With free GPUs for every new group the set comes up whole beside the
pair. Otherwise the pair is scaled to zero first and both roles stop serving until the set is Ready: a set cannot
start one role alone (its CRD refuses replicas zero for some roles and not all), and with both roles' new pods
pending on the GPUs one old role frees, the scheduler, not the plan, would choose which role comes back first.
A failure at any step deletes the set and returns the pair to the spec it ran; the revision record says what
happened."""
from __future__ import annotations

import time

from ansible_collections.llmd.wide_ep.plugins.module_utils.day2.rollout import (
    Failed,
    Rollout,
    applied_at,
    restorable,
    wait_gate,
)
from ansible_collections.llmd.wide_ep.plugins.module_utils.k8s import capacity
from ansible_collections.llmd.wide_ep.plugins.module_utils.k8s.client import FIELD_MANAGER, describe
from ansible_collections.llmd.wide_ep.plugins.module_utils.k8s.errors import K8sError
from ansible_collections.llmd.wide_ep.plugins.module_utils.k8s.readiness import readiness

MOVE_MANAGER = "llmd.wide_ep.move"   # owns only the old pair's replicas while it is scaled down
DOWN_FOR = "7-45 minutes for DeepSeek-R1"


def plan(client, old_lws, ds):
    """{mode, plan, problems, warnings} of the move, changing nothing. old_lws: {role: LeaderWorkerSet ref}."""
    out = {"mode": None, "plan": [], "problems": [], "warnings": []}
    live = {role: client.get(r) for role, r in old_lws.items()}
    for role, obj in live.items():
        if obj is None:
            out["problems"].append("%s is not deployed: nothing to move (site.yml deploys the DisaggregatedSet "
                                   "on an empty namespace)" % describe(old_lws[role]))
        elif not readiness(obj)[0]:
            out["problems"].append("%s is not healthy before the move: %s" % (describe(obj), readiness(obj)[1]))
    if client.get(ds) is not None:
        out["problems"].append("%s already exists: the move creates it; delete it or run site.yml on it" %
                               describe(ds))
    if out["problems"]:
        return out
    free = capacity.free_gpus(client.list("v1", "Node"), client.list("v1", "Pod"))
    need = [g for r in ds["spec"]["roles"] for g in capacity.group_pods(r["spec"])]
    names = ", ".join(o["metadata"]["name"] for o in live.values())
    if capacity.fits(free, need):
        out["mode"] = "side-by-side"
        out["plan"] = ["create %s whole beside %s (%d pods fit the free GPUs); both serve from the pool while they "
                       "overlap" % (describe(ds), names, len(need)),
                       "gate: every role of the set Ready, every pod selected by the pool",
                       "then delete %s" % names]
        return out
    out["mode"] = "stop-then-start"
    roles = ", ".join(r["name"] for r in ds["spec"]["roles"])
    out["plan"] = ["scale %s to 0: every role (%s) stops serving until the set's groups are Ready (%s)" % (
        names, roles, DOWN_FOR),
        "create %s on the GPUs they free, gate it: every role Ready, every pod selected by the pool" % describe(ds),
        "then delete %s" % names]
    out["warnings"].append("no free GPUs for the DisaggregatedSet beside the LeaderWorkerSets (%d pods needed, "
                           "free per node: %s): the model servers stop serving from the pair's scale-down until "
                           "the set is Ready (%s); free the GPUs for the set to move without a stop" % (
                               len(need), ", ".join("%s=%d" % kv for kv in sorted(free.items())) or "none",
                               DOWN_FOR))
    return out


def _replicas(lws, n):
    return {"apiVersion": lws["apiVersion"], "kind": lws["kind"],
            "metadata": {"name": lws["metadata"]["name"], "namespace": lws["metadata"]["namespace"]},
            "spec": {"replicas": n}}


class Move(Rollout):
    """The move, with the rollout lease and the revision record of an upgrade."""

    def run(self, old_lws, ds, mode, gate_timeout=2700, rollback=True):
        previous = {role: restorable(self.client.get(r)) for role, r in old_lws.items()}
        current = self.record.current
        if current is None or set(current["leaderworkersets"]) != {o["metadata"]["name"] for o in previous.values()}:
            # the pair as it runs is the revision a failure returns to (the record may end on another workload)
            self.record.add("deployed", list(previous.values()), "found running before the workload move")
        rev = self.record.add("in-progress", [ds], "workload leaderworkersets -> disaggregatedset (%s)" % mode)
        try:
            if mode == "stop-then-start":   # the pair's GPUs hold the set
                for lws in previous.values():
                    self.client.apply(_replicas(lws, 0), MOVE_MANAGER, force=True)
                    self.progress.append("scaled %s to 0" % describe(lws))
            self.lock.renew(force=True)
            after = self.client.apply(ds, force=True)
            self.progress.append("applied %s" % describe(ds))
            passed, reason = wait_gate(self.client, ds, applied_at(after, FIELD_MANAGER), self.pool_ref, gate_timeout,
                                       self.sleep, self.progress, tick=self.lock.renew)
            if not passed:
                raise Failed("%s did not pass its gate in %ss: %s" % (describe(ds), gate_timeout, reason))
            for lws in previous.values():
                self.client.delete(lws)
                self.progress.append("deleting %s" % describe(lws))
            self._wait_gone(list(previous.values()), gate_timeout)
        except (Failed, K8sError) as exc:
            failure = str(exc)
            if not rollback:
                self.record.update(rev, status="failed", reason=failure)
                raise Failed(failure + " (rollback disabled: the set and the pair are left as they are)",
                             revision=rev) from None
            again = self._back_to_pair(ds, previous, gate_timeout)
            self.record.update(rev, status="rolled-back" if not again else "failed", reason=failure)
            raise Failed("%s; %s" % (failure, again or "returned to the LeaderWorkerSet pair (the DisaggregatedSet "
                                                       "deleted), which passed its gate again"), revision=rev) from None
        self.record.update(rev, status="deployed")
        return {"changed": True, "mode": mode, "revision": rev, "progress": self.progress}

    def _wait_gone(self, objs, timeout):
        """Until the pair is gone (a foreground delete: its groups' pods first), renewing the lease."""
        deadline = time.time() + timeout
        while True:
            left = [o for o in objs if self.client.get(o) is not None]
            if not left:
                self.progress.append("deleted %s" % ", ".join(describe(o) for o in objs))
                return
            if time.time() >= deadline:
                raise K8sError("%s still there %ss after its deletion" % (", ".join(describe(o) for o in left),
                                                                          timeout))
            self.progress.still("waiting for the deletion of %s" % ", ".join(describe(o) for o in left))
            self.lock.renew()
            time.sleep(self.sleep)

    def _back_to_pair(self, ds, previous, timeout):
        """Delete the set (its LeaderWorkerSets go with it), restore the pair; '' when its gate passes again."""
        try:
            self.client.delete(ds)
            for lws in previous.values():
                self.client.apply(lws, FIELD_MANAGER, force=True)   # its replicas back under the collection
                passed, reason = wait_gate(self.client, lws, None, self.pool_ref, timeout, self.sleep, self.progress,
                                           tick=self.lock.renew)
                if not passed:
                    return "the LeaderWorkerSet pair did not pass its gate again: %s: %s" % (describe(lws), reason)
        except K8sError as exc:
            return "returning to the LeaderWorkerSet pair failed too: %s" % exc
        return ""
