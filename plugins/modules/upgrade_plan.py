#!/usr/bin/python
# Copyright: llm-d wide-EP collection contributors
# Apache-2.0
from __future__ import annotations

DOCUMENTATION = r"""
module: upgrade_plan
short_description: Check an upgrade can start, and say what it will do, before anything changes
description:
  - Compares the target versions of the LWS controller, the inferencepool chart and Istio with what runs
    (O(current)) - a target below what this collection needs, or a downgrade, is refused.
  - Requires the stack to be healthy before it starts - every LeaderWorkerSet Ready, the EPP available -
    unless O(allow_unhealthy), or the record shows an upgrade that was interrupted mid-rollout (then the
    rollout's own gate judges it).
  - Refuses while another upgrade or rollback holds the rollout lease (Lease C(wide-ep-rollout), renewed by
    M(llmd.wide_ep.modelserver_rollout) while it works) and says when a dead run's lease expires.
  - For each LeaderWorkerSet that would change (server-side dry run), decides the rollout - a surge group
    (C(maxSurge 1)) when the free GPUs fit one more group of that role, else one group at a time; with
    O(surge=required) a missing surge capacity is an error. Warns when a role has a single group and no surge
    room, as its only group will go down.
  - Read-only. Returns the ordered steps and the plan as lines; fails with every problem at once.
version_added: 0.2.0
author: llm-d wide-EP collection contributors (@llm-d)
options:
  definitions:
    description: The LeaderWorkerSets as they should be.
    type: list
    elements: dict
    required: true
  release:
    description: InferencePool release (EPP C(<release>-epp)).
    type: str
    default: llm-d-infpool
  current:
    description: Versions running - C(lws), C(inferencepool_chart), C(istio).
    type: dict
    default: {}
  target:
    description: Versions wanted - same keys.
    type: dict
    default: {}
  dp_mode:
    description: The topology's DP mode.
    type: str
    default: dp-aware
  gateway:
    description: The gateway recipe.
    type: str
    default: istio
  surge:
    description: Surge policy.
    type: str
    choices: [auto, required, never]
    default: auto
  allow_unhealthy:
    description: Start even when the stack is not healthy.
    type: bool
    default: false
  allow_downgrade:
    description: Allow a target version below the running one.
    type: bool
    default: false
  helm_binary:
    description: helm 3, to read the chart and Istio versions that run.
    type: str
    default: helm
extends_documentation_fragment:
  - llmd.wide_ep.k8s
"""

EXAMPLES = r"""
- name: Plan
  llmd.wide_ep.upgrade_plan:
    definitions: "{{ wide_ep_plan.objects.leaderworkersets }}"
    current: {lws: 0.7.0, inferencepool_chart: v1.3.0}
    target: {lws: 0.7.0, inferencepool_chart: v1.3.0}
"""

RETURN = r"""
steps:
  description: Components that change, in order - C(lws), C(istio), C(inferencepool_chart), C(modelservers).
  returned: always
  type: list
  elements: str
surge:
  description: maxSurge per LeaderWorkerSet that changes.
  returned: always
  type: dict
plan:
  description: The plan as lines.
  returned: always
  type: list
  elements: str
current:
  description: The versions found running.
  returned: always
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.llmd.wide_ep.plugins.module_utils import capacity, lease, rollout
from ansible_collections.llmd.wide_ep.plugins.module_utils.helm import Helm, HelmError
from ansible_collections.llmd.wide_ep.plugins.module_utils.k8s import (
    AUTH_ARG_SPEC,
    Client,
    K8sError,
    describe,
    normalize,
    readiness,
)

STEP_ORDER = (("lws", "LWS controller"), ("istio", "gateway control plane (Istio)"),
              ("inferencepool_chart", "inferencepool chart (EPP)"))


def main():
    spec = dict(AUTH_ARG_SPEC)
    spec.update(definitions={"type": "list", "elements": "dict", "required": True},
                release={"type": "str", "default": "llm-d-infpool"}, current={"type": "dict", "default": {}},
                target={"type": "dict", "default": {}}, dp_mode={"type": "str", "default": "dp-aware"},
                gateway={"type": "str", "default": "istio"},
                surge={"type": "str", "choices": ["auto", "required", "never"], "default": "auto"},
                allow_unhealthy={"type": "bool", "default": False}, allow_downgrade={"type": "bool", "default": False},
                helm_binary={"type": "str", "default": "helm"})
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True)
    p = module.params
    cur, tgt = dict(p["current"] or {}), {k: v for k, v in (p["target"] or {}).items() if v}
    ns = p["definitions"][0]["metadata"]["namespace"]
    try:
        helm = Helm(module, p["helm_binary"], p["kubeconfig"], p["context"])
        if "inferencepool_chart" in tgt and not cur.get("inferencepool_chart"):
            rel = helm.release(p["release"], ns)
            cur["inferencepool_chart"] = rel and rel["version"]
        if "istio" in tgt and p["gateway"] == "istio" and not cur.get("istio"):
            rel = helm.release("istiod", "istio-system")
            cur["istio"] = rel and (rel.get("app_version") or rel["version"])
    except HelmError as exc:
        module.fail_json(msg=str(exc))
    problems = rollout.compatibility(cur, tgt, p["dp_mode"], p["gateway"], p["allow_downgrade"])
    plan, steps, surge, warnings = [], [], {}, []
    for key, label in STEP_ORDER:
        if tgt.get(key) and rollout.version_tuple(tgt[key]) != rollout.version_tuple(cur.get(key)):
            steps.append(key)
            plan.append("%s: %s -> %s" % (label, cur.get(key) or "not found", tgt[key]))
    try:
        client = Client(p["kubeconfig"], p["context"])
        held = lease.running(client, ns)
        if held:
            holder, renewed, duration = held
            problems.append("another upgrade or rollback is running: Lease %s/%s is held by %s (renewed %s). Let "
                            "it finish; if its controller died, the lease expires %ss after that renewal and a "
                            "run after then takes it over" % (ns, lease.LEASE_NAME, holder, renewed, duration))
        last = (rollout.Record(client, ns).revisions or [None])[-1]
        # A run killed mid-rollout (in-progress), or one whose rollback failed too (failed), left the roles in
        # an unknown state: this run takes them to the wanted spec, and their gate judges them.
        resuming = bool(last and last["status"] in ("in-progress", "failed"))
        if resuming:
            plan.append("finishing revision %d (%s, %s at %s)" % (
                last["revision"], last["note"], last["status"], last["time"]))
        epp = client.get({"apiVersion": "apps/v1", "kind": "Deployment",
                          "metadata": {"name": p["release"] + "-epp", "namespace": ns}})
        ok, why = readiness(epp) if epp else (False, "missing")
        if not ok:
            problems.append("EPP %s-epp is not healthy before the upgrade: %s" % (p["release"], why))
        free = capacity.free_gpus(client.request("GET", "/api/v1/nodes")["items"],
                                  client.request("GET", "/api/v1/pods")["items"])
        for obj in p["definitions"]:
            live = client.get(obj)
            name = obj["metadata"]["name"]
            if live is None:
                problems.append("%s is not deployed: run site.yml first" % describe(obj))
                continue
            ok, why = readiness(live)
            if not ok:
                problems.append("%s is not healthy before the upgrade: %s" % (describe(obj), why))
            preview = client.apply(obj, dry_run=True)
            if normalize(preview) == normalize(live):
                continue
            group = obj["spec"]["leaderWorkerTemplate"].get("size", 1)
            fits = capacity.placeable(free, [capacity.pod_gpus(obj)] * group) == group
            surge[name] = 1 if fits and p["surge"] != "never" else 0
            if p["surge"] == "required" and not fits:
                problems.append("%s: no room for a surge group of %d pods x %d GPUs (free per node: %s)" % (
                    name, group, capacity.pod_gpus(obj), ", ".join("%s=%d" % kv for kv in sorted(free.items()))))
            how = "surge: one extra group, then the old ones go" if surge[name] else "one group at a time"
            if not surge[name] and live["spec"].get("replicas", 1) == 1:
                warnings.append("%s has one group and no surge room: it stops serving until the new group is "
                                "Ready (7-45 minutes for DeepSeek-R1)" % name)
            plan.append("model servers %s (%s): %s" % (name, how, "; ".join(rollout.changes(live, preview))))
        if surge or resuming:
            steps.append("modelservers")
    except K8sError as exc:
        module.fail_json(msg=str(exc))
    if problems and (p["allow_unhealthy"] or resuming):
        problems = [x for x in problems if "not healthy" not in x]
    if problems:
        module.fail_json(msg="the upgrade cannot start: " + "; ".join(problems), problems=problems, plan=plan)
    for w in warnings:
        module.warn(w)
    if not plan:
        plan.append("nothing to upgrade: everything already runs the wanted versions and specs")
    module.exit_json(changed=False, steps=steps, surge=surge, plan=plan, current=cur)


if __name__ == "__main__":
    main()
