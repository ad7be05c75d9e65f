#!/usr/bin/python
# Copyright: llm-d wide-EP collection contributors
# Apache-2.0
from __future__ import annotations

DOCUMENTATION = r"""
module: modelserver_rollout
short_description: Roll the prefill/decode LeaderWorkerSets one at a time behind health gates, with rollback
description:
  - For each LeaderWorkerSet in O(definitions), in order - compares it with the live object (server-side dry
    run); when it differs, sets the LWS rolling update (C(maxUnavailable 1), C(maxSurge) from O(surge), under
    its own field manager so later C(site.yml) runs leave it alone), applies it, and waits for the gate - the
    LWS Ready with every group updated, every expected pod created after the change and Ready, and selected by
    the InferencePool O(pool).
  - When a gate fails within O(gate_timeout), every role already rolled is applied back to its live spec from
    before the run and must pass the gate again; the module then fails, saying which gate failed and that the
    stack was rolled back.
  - Keeps a record of revisions (what was applied, when, by which note, and how it ended) in ConfigMap
    C(wide-ep-revisions) of the namespace; O(action=rollback) undoes the last upgrade from it.
  - Nothing is ever deleted. An unchanged role is still gated, so a re-run after an interrupted run converges.
  - One run at a time - a run takes the Lease C(wide-ep-rollout) of the namespace before it reads the record
    and gives it back at the end; while another live run holds it, this one fails and changes nothing.
  - Check mode returns the plan and changes nothing.
version_added: 0.2.0
author: llm-d wide-EP collection contributors (@llm-d)
options:
  definitions:
    description: The LeaderWorkerSets to roll, in order.
    type: list
    elements: dict
    default: []
  action:
    description:
      - C(upgrade) applies O(definitions). C(rollback) undoes the last upgrade - applies the deployed revision
        before the newest deployed one (or O(to_revision)) and marks the undone one C(rolled-back).
    type: str
    choices: [upgrade, rollback]
    default: upgrade
  to_revision:
    description: With C(action=rollback) - the revision to apply.
    type: int
  namespace:
    description: Namespace of the record (for C(action=rollback)).
    type: str
  surge:
    description: C(maxSurge) per LeaderWorkerSet name (0 when absent).
    type: dict
    default: {}
  pool:
    description: InferencePool whose selector must cover the new pods (name).
    type: str
  gate_timeout:
    description: Seconds a rolled role has to pass its gate.
    type: int
    default: 2700
  rollback:
    description: Roll back when a gate fails.
    type: bool
    default: true
  rollback_timeout:
    description: Seconds the rolled-back roles have to pass the gate.
    type: int
    default: 2700
  gate_sleep:
    description: Seconds between gate checks.
    type: float
    default: 5
  note:
    description: What this upgrade is, for the record.
    type: str
    default: upgrade
  force_conflicts:
    description: Take over fields another manager owns.
    type: bool
    default: false
  lock_duration:
    description:
      - Seconds of the rollout lease (Lease C(wide-ep-rollout) in the namespace). The run renews it while it
        works; another run that finds it held waits up to this long and stops if it is renewed meanwhile, or takes
        it over when it is not (its holder died). At least 10, and at least 3 x O(gate_sleep).
    type: int
    default: 90
extends_documentation_fragment:
  - llmd.wide_ep.k8s
"""

EXAMPLES = r"""
- name: Roll the model servers
  llmd.wide_ep.modelserver_rollout:
    definitions: "{{ wide_ep_plan.objects.leaderworkersets }}"
    surge: "{{ upgrade_plan_result.surge }}"
    pool: llm-d-infpool
"""

RETURN = r"""
plan:
  description: Per LeaderWorkerSet, C(name), C(changed) and C(changes).
  returned: always
  type: list
  elements: dict
revision:
  description: The record entry of this run (revision, time, status, note, changes, reason), without objects.
  returned: when something changed
  type: dict
progress:
  description: Gate progress lines.
  returned: always
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.llmd.wide_ep.plugins.module_utils import lease, rollout
from ansible_collections.llmd.wide_ep.plugins.module_utils.k8s import (
    AUTH_ARG_SPEC,
    FIELD_MANAGER,
    Client,
    K8sError,
    describe,
    normalize,
)
from ansible_collections.llmd.wide_ep.plugins.module_utils.progress import Progress


class Failed(Exception):
    def __init__(self, msg, **extra):
        super().__init__(msg)
        self.extra = extra


def brief(rev):
    """A record entry without its objects, for the task result."""
    return {k: v for k, v in rev.items() if k != "leaderworkersets"} if rev else None


def apply(client, obj, force, **kw):
    try:
        return client.apply(obj, force=force, **kw)
    except K8sError as exc:
        msg = str(exc)
        if "failed calling webhook" in msg:
            msg += " (the LeaderWorkerSet controller serves this webhook: is it running?)"
        raise K8sError(msg) from None


def roll(client, p, objs, surge, progress, pool_ref, timeout, lock):
    """Apply each object that differs and gate it; gate unchanged ones too. Returns (rolled names, failure)."""
    rolled = []
    for obj in objs:
        name = obj["metadata"]["name"]
        try:
            lock.renew(force=True)
            before = client.get(obj)
            preview = apply(client, obj, p["force_conflicts"], dry_run=True)
            since = None
            if normalize(preview) != normalize(before):
                apply(client, rollout.strategy_patch(obj, int(surge.get(name, 0))), True,
                      field_manager=rollout.STRATEGY_MANAGER)
                rolled.append(name)
                after = apply(client, obj, p["force_conflicts"])
                if rollout.template(after) != rollout.template(before):
                    since = rollout.applied_at(after, FIELD_MANAGER)
                progress.append("applied %s (maxSurge %s)" % (describe(obj), surge.get(name, 0)))
            passed, reason = rollout.wait_gate(client, obj, since, pool_ref, timeout, p["gate_sleep"], progress,
                                               tick=lock.renew)
        except K8sError as exc:
            return rolled, "%s: %s" % (describe(obj), exc)
        if not passed:
            return rolled, "%s did not pass its gate in %ss: %s" % (describe(obj), timeout, reason)
    return rolled, None


def run(module, client, ns, lock, progress):
    """The rollout itself, under the lease. Returns the result; raises Failed with what to report."""
    p = module.params
    record = rollout.Record(client, ns)
    objs, undone, target = p["definitions"], None, None
    if p["action"] == "rollback":
        deployed = [r for r in record.revisions if r["status"] == "deployed"]
        target = ([r for r in record.revisions if r["revision"] == p["to_revision"]] if p["to_revision"]
                  else deployed[-2:-1])
        if not target:
            raise Failed("no revision %s in ConfigMap %s/%s to roll back to (revisions: %s)" % (
                p["to_revision"] or "before the last deployed one", ns, rollout.RECORD_NAME,
                ", ".join("%d %s" % (r["revision"], r["status"]) for r in record.revisions) or "none"))
        target = target[0]
        undone = deployed[-1] if deployed and deployed[-1] is not target else None
        objs = list(target["leaderworkersets"].values())
    pool_ref = ({"apiVersion": "inference.networking.k8s.io/v1", "kind": "InferencePool",
                 "metadata": {"name": p["pool"], "namespace": ns}} if p["pool"] else None)

    plan, previous = [], {}
    for obj in objs:
        live = client.get(obj)
        if live is None:
            raise Failed("%s is not deployed: run site.yml first; an upgrade only changes what runs" % describe(obj))
        previous[obj["metadata"]["name"]] = rollout.restorable(live)
        preview = apply(client, obj, p["force_conflicts"], dry_run=True)
        changed = normalize(preview) != normalize(live)
        plan.append({"name": obj["metadata"]["name"], "changed": changed,
                     "changes": rollout.changes(live, preview) if changed else []})
    changed = any(x["changed"] for x in plan)
    if module.check_mode:
        return dict(changed=changed, plan=plan, progress=progress)

    rev = None
    if changed:
        if record.current is None:  # the first upgrade: record what runs now, so there is a way back
            record.add("deployed", list(previous.values()), "found running before the first recorded change")
        note = p["note"] if p["action"] == "upgrade" else "rollback to revision %d" % target["revision"]
        rev = record.add("in-progress", objs, note, changes={x["name"]: x["changes"] for x in plan})
    elif record.revisions and record.revisions[-1]["status"] != "deployed" and \
            record.revisions[-1]["leaderworkersets"] == {o["metadata"]["name"]: o for o in objs}:
        rev = record.revisions[-1]  # an interrupted or failed run applied this already: this run finishes it

    rolled, failure = roll(client, p, objs, p["surge"], progress, pool_ref, p["gate_timeout"], lock)
    if failure and p["rollback"] and rolled:
        progress.append("rolling back %s" % ", ".join(rolled))
        back = [previous[n] for n in rolled]
        dummy, again = roll(client, dict(p, force_conflicts=True), back, {}, progress, pool_ref,
                            p["rollback_timeout"], lock)
        if rev:
            record.update(rev, status="rolled-back" if not again else "failed", reason=failure)
        if again:
            failure = "%s; the rollback did not pass the gate either: %s" % (failure, again)
        else:
            failure = "%s; rolled back %s to the previous spec, which passed its gate again" % (
                failure, ", ".join(rolled))
        raise Failed(failure, plan=plan, revision=brief(rev))
    if failure:
        if rev:
            record.update(rev, status="failed", reason=failure)
        raise Failed(failure + ("" if p["rollback"] else " (rollback disabled)"), plan=plan, revision=brief(rev))
    if rev:
        record.update(rev, status="deployed", **({"completed_by_rerun": True} if not changed else {}))
    if undone and changed:
        record.update(undone, status="rolled-back", reason="undone by revision %d" % rev["revision"])
    return dict(changed=changed, plan=plan, progress=progress, revision=brief(rev))


def main():
    spec = dict(AUTH_ARG_SPEC)
    spec.update(definitions={"type": "list", "elements": "dict", "default": []},
                action={"type": "str", "choices": ["upgrade", "rollback"], "default": "upgrade"},
                to_revision={"type": "int"}, namespace={"type": "str"}, surge={"type": "dict", "default": {}},
                pool={"type": "str"}, gate_timeout={"type": "int", "default": 2700},
                rollback={"type": "bool", "default": True}, rollback_timeout={"type": "int", "default": 2700},
                gate_sleep={"type": "float", "default": 5}, note={"type": "str", "default": "upgrade"},
                force_conflicts={"type": "bool", "default": False},
                lock_duration={"type": "int", "default": 90})
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True)
    p = module.params
    if p["lock_duration"] < 10 or p["gate_sleep"] * 3 > p["lock_duration"]:
        module.fail_json(msg="lock_duration is %s and gate_sleep %s: the lease is renewed between gate checks, so "
                             "give lock_duration at least 10 seconds and 3 x gate_sleep" % (
                                 p["lock_duration"], p["gate_sleep"]))
    ns = p["namespace"] or (p["definitions"] or [{}])[0].get("metadata", {}).get("namespace")
    if not ns:
        module.fail_json(msg="no namespace: give definitions or namespace")
    progress, lock = Progress(), None
    try:
        client = Client(p["kubeconfig"], p["context"])
        lock = lease.Lease(client, ns, p["lock_duration"], note=p["note"])
        if not module.check_mode:  # before reading the record: a run that holds the lease may still change it
            lock.acquire(progress)
        result = run(module, client, ns, lock, progress)
    except Failed as exc:
        result = dict(exc.extra, failed=True, msg=str(exc), progress=progress)
    except (lease.Held, K8sError) as exc:
        result = dict(failed=True, msg=str(exc), progress=progress)
    try:
        if lock is not None:
            lock.release()
    except K8sError:
        pass  # a lost API server: the lease expires on its own
    if result.pop("failed", False):
        module.fail_json(**result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
