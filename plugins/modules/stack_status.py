#!/usr/bin/python
# Copyright: llm-d wide-EP collection contributors
# Apache-2.0
from __future__ import annotations

DOCUMENTATION = r"""
module: stack_status
short_description: Check a deployed wide-EP stack the way the guide's "Verifying the installation" does
description:
  - Reads, over one API connection (and one C(helm list)), the InferencePool helm release, the prefill/decode
    LeaderWorkerSets and their pods with ready container counts per role, the EPP Deployment, the InferencePool,
    the Gateway's C(Programmed) condition and the HTTPRoute's C(Accepted) condition.
  - Never changes anything. Returns a report and the list of problems; fails when there is any.
version_added: 0.1.0
author: llm-d wide-EP collection contributors (@llm-d)
options:
  require_programmed:
    description:
      - Require the Gateway to be C(Programmed). Only a running gateway controller sets it; on a cluster without
        one (the local test cluster) set C(false) and only acceptance of the objects is checked.
    type: bool
    default: true
  split_window:
    description:
      - Seconds after its worker StatefulSet within which a worker pod counts as made with its group; a worker made
        later was recreated alone (kubernetes-sigs/lws#998) and its group is reported split.
    type: int
    default: 60
  repair_split_groups:
    description:
      - Recreate every split group whole (its leader pod deleted, which takes its worker StatefulSet and workers
        with it), wait until the LeaderWorkerSet is Ready again, and check again.
    type: bool
    default: false
  repair_timeout: {description: Seconds to wait for a repaired group., type: int, default: 2700}
  wait_timeout:
    description:
      - Seconds to check again, every 5 s, until every check passes (0 - check once); a lost LeaderWorkerSet ends
        the wait at once.
    type: int
    default: 0
  baseline:
    description:
      - The plan's LeaderWorkerSets as they were before the step (C(upgrade_plan)'s RV(workloads)) - each must still
        be there with the same UID.
    type: list
    elements: dict
    default: []
  step:
    description: The upgrade step this gate ends; a failed gate is written to the revision record under it.
    type: str
extends_documentation_fragment:
  - llmd.wide_ep.k8s
  - llmd.wide_ep.k8s.helm
  - llmd.wide_ep.k8s.plan
notes:
  - The Gateway and HTTPRoute are checked when the plan has them (O(refs) C(gateway) is not null).
"""

EXAMPLES = r"""
- name: Verify the stack
  llmd.wide_ep.stack_status:
    refs: "{{ wide_ep_plan.refs }}"
    expected: "{{ wide_ep_plan.summary }}"
"""

RETURN = r"""
report:
  description: One line per check, C(OK) or C(FAIL) first.
  returned: always
  type: list
  elements: str
problems:
  description: The failed checks.
  returned: always
  type: list
  elements: str
workloads:
  description: The plan's LeaderWorkerSets found - C(kind), C(namespace), C(name), C(uid).
  returned: success
  type: list
  elements: dict
progress:
  description: What the wait saw, as it changed.
  returned: always
  type: list
  elements: str
repaired:
  description: The split groups recreated whole (with O(repair_split_groups)) - C(lws), C(group), C(why).
  returned: always
  type: list
  elements: dict
"""

import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.llmd.wide_ep.plugins.module_utils.checklist import Checklist
from ansible_collections.llmd.wide_ep.plugins.module_utils.helm import HELM_ARG_SPEC, Helm, HelmError
from ansible_collections.llmd.wide_ep.plugins.module_utils.k8s.auth import AUTH_ARG_SPEC
from ansible_collections.llmd.wide_ep.plugins.module_utils.k8s.client import Client, ref
from ansible_collections.llmd.wide_ep.plugins.module_utils.k8s.errors import K8sError
from ansible_collections.llmd.wide_ep.plugins.module_utils.k8s.lws import LWS_GROUP_LABEL, LWS_NAME_LABEL, split_groups
from ansible_collections.llmd.wide_ep.plugins.module_utils.k8s.readiness import condition, readiness, wait_ready
from ansible_collections.llmd.wide_ep.plugins.module_utils.progress import Progress
from ansible_collections.llmd.wide_ep.plugins.module_utils.refs import PLAN_ARG_SPEC, check, name
from ansible_collections.llmd.wide_ep.plugins.module_utils.revisions import Record
from ansible_collections.llmd.wide_ep.plugins.module_utils.serving import role_pods


def check_release(helm, refs, rep):
    rel = helm.release(refs["release"], refs["namespace"])
    ok = bool(rel) and rel["status"] == "deployed"
    rep.add(ok, "helm release %s: %s" % (refs["release"], "%s-%s %s" % (rel["chart"], rel["version"], rel["status"])
                                         if rel else "not installed"))


def check_role(client, lws_ref, role, want, rep):
    lws = client.get(lws_ref)
    if lws is None:
        rep.add(False, "LeaderWorkerSet %s: missing" % name(lws_ref))
        return
    ok, why = readiness(lws)
    rep.add(ok, "LeaderWorkerSet %s: %s" % (name(lws_ref), why))
    pods = role_pods(client, lws_ref)
    expected_pods = want["replicas"] * want["group_size"]
    ready = []
    for pod in pods:
        statuses = pod.get("status", {}).get("containerStatuses", []) or []
        statuses += [s for s in pod.get("status", {}).get("initContainerStatuses", []) or []
                     if s.get("name") == "routing-proxy"]
        count = sum(1 for s in statuses if s.get("ready"))
        if count >= want["containers"]:
            ready.append(pod["metadata"]["name"])
    rep.add(len(ready) == expected_pods == len(pods), "%s pods: %d/%d with %d/%d containers ready" % (
        role, len(ready), expected_pods, want["containers"], want["containers"]))


def find_split(client, lws_ref, window):
    meta = lws_ref["metadata"]
    selector = "%s=%s" % (LWS_NAME_LABEL, meta["name"])
    return split_groups(client.list("v1", "Pod", meta["namespace"], label_selector=selector),
                        client.list("apps/v1", "StatefulSet", meta["namespace"], label_selector=selector), window)


def check_groups(client, lws_ref, split, rep):
    rep.add(not split, "LeaderWorkerSet %s: %s" % (name(lws_ref), "; ".join(
        "group %s split: %s" % (g["group"], ", ".join(g["why"])) for g in split) or "every group is one incarnation"))


def repair(client, lws_ref, split, timeout):
    """Recreate each split group whole: its leader pod deleted (its worker StatefulSet and workers go with it),
    then every pod of the LeaderWorkerSet a new one for those groups, all Ready."""
    namespace = lws_ref["metadata"]["namespace"]
    groups = {g["group"] for g in split if g["leader"]}
    old = {pod["metadata"]["uid"] for pod in role_pods(client, lws_ref)
           if (pod["metadata"].get("labels") or {}).get(LWS_GROUP_LABEL) in groups}
    for group in split:
        if group["leader"]:
            client.delete(ref("v1", "Pod", group["leader"], namespace))
    deadline = time.time() + timeout
    live = wait_ready(client, [lws_ref], timeout, 2, Progress())
    want = sum(o["spec"].get("replicas", 1) * o["spec"]["leaderWorkerTemplate"].get("size", 1) for o in live.values())
    while True:   # LWS reads Ready on stale status: wait for the new pods themselves
        pods = role_pods(client, lws_ref)
        stale = [pod for pod in pods if pod["metadata"]["uid"] in old]
        ready = [pod for pod in pods if condition(pod, "Ready").get("status") == "True"]
        if not stale and len(ready) >= want:
            return
        if time.time() >= deadline:
            raise K8sError("the repaired groups of %s have not all their %d pods new and Ready after %ds" % (
                name(lws_ref), want, timeout))
        time.sleep(2)


def identity(obj):
    meta = obj["metadata"]
    return {"kind": obj["kind"], "namespace": meta["namespace"], "name": meta["name"], "uid": meta["uid"]}


def check_baseline(client, refs, baseline, rep):
    """Each LeaderWorkerSet of the plan that was there before the step is still there, the same object."""
    for was in baseline:
        now = client.get(ref("leaderworkerset.x-k8s.io/v1", was["kind"], was["name"], was["namespace"]))
        if now is None:
            rep.add(False, "LeaderWorkerSet %s/%s: gone (uid %s)" % (was["namespace"], was["name"], was["uid"]))
        elif now["metadata"]["uid"] != was["uid"]:
            rep.add(False, "LeaderWorkerSet %s/%s: deleted and recreated (uid %s, was %s)" % (
                was["namespace"], was["name"], now["metadata"]["uid"], was["uid"]))
    if baseline:
        rep.add(True, "LeaderWorkerSets before the step: %d checked for their UID" % len(baseline))


def check_pool(client, refs, want_ports, rep):
    pool = client.get(refs["pool"])
    ports = [t.get("number") for t in (pool or {}).get("spec", {}).get("targetPorts", [])]
    rep.add(pool is not None and ports == want_ports,
            "InferencePool %s: target ports %s" % (name(refs["pool"]), ports if pool else "missing"))
    if pool is not None:   # the pool selects the model servers of every role (v1 matchLabels, v1alpha2 flat)
        selector = pool["spec"].get("selector") or {}
        labels = selector.get("matchLabels", selector)
        selected = client.list("v1", "Pod", refs["namespace"], label_selector=",".join(
            "%s=%s" % kv for kv in sorted(labels.items()))) if labels else []
        per_role = {role: sum(1 for pod in selected if (pod["metadata"].get("labels") or {}).get(LWS_NAME_LABEL)
                              == lws_ref["metadata"]["name"]) for role, lws_ref in refs["leaderworkersets"].items()}
        rep.add(all(per_role.values()) and bool(per_role), "InferencePool %s selects %s" % (
            name(refs["pool"]), ", ".join("%d %s pod(s)" % (n, role) for role, n in per_role.items()) or "no role"))
    epp = client.get(refs["epp"])
    rep.add(bool(epp) and readiness(epp)[0],
            "EPP %s: %s" % (name(refs["epp"]), readiness(epp)[1] if epp else "missing"))


def check_gateway(client, refs, require_programmed, rep):
    gw = client.get(refs["gateway"])
    gw_name, route_name = name(refs["gateway"]), name(refs["route"])
    programmed = condition(gw, "Programmed").get("status") == "True"
    if require_programmed:
        rep.add(programmed, "Gateway %s: Programmed=%s" % (gw_name, programmed if gw else "missing"))
    else:
        rep.add(gw is not None, "Gateway %s: %s (Programmed not required: no gateway controller)" % (
            gw_name, "exists" if gw else "missing"))
    route = client.get(refs["route"])
    parents = (route or {}).get("status", {}).get("parents", []) or []
    accepted = any(condition({"status": par}, "Accepted").get("status") == "True" for par in parents)
    if require_programmed:
        rep.add(accepted, "HTTPRoute %s: Accepted=%s" % (route_name, accepted if route else "missing"))
    else:
        rep.add(route is not None, "HTTPRoute %s: %s" % (route_name, "exists" if route else "missing"))


def check_all(module, client, refs, p, rep, repair_now):
    """One pass of every check into `rep`; the split groups repaired first when asked. Returns the repaired."""
    repaired = []
    check_baseline(client, refs, p["baseline"], rep)
    check_release(Helm(module, p["helm_binary"], p, client=client), refs, rep)
    for role, lws_ref in refs["leaderworkersets"].items():
        split = find_split(client, lws_ref, p["split_window"])
        if split and repair_now:
            repair(client, lws_ref, split, p["repair_timeout"])
            repaired += [dict(g, lws=name(lws_ref)) for g in split]
            split = find_split(client, lws_ref, p["split_window"])
        check_role(client, lws_ref, role, p["expected"][role], rep)
        check_groups(client, lws_ref, split, rep)
    check_pool(client, refs, p["expected"]["target_ports"], rep)
    if refs["gateway"]:
        check_gateway(client, refs, p["require_programmed"], rep)
    return repaired


def main():
    spec = dict(AUTH_ARG_SPEC, **PLAN_ARG_SPEC)
    spec.update(require_programmed={"type": "bool", "default": True}, split_window={"type": "int", "default": 60},
                repair_split_groups={"type": "bool", "default": False}, repair_timeout={"type": "int", "default": 2700},
                wait_timeout={"type": "int", "default": 0}, step={"type": "str"},
                baseline={"type": "list", "elements": "dict", "default": []}, **HELM_ARG_SPEC)
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True)
    p = module.params
    rep, repaired, progress, client = Checklist(), [], Progress(), None
    try:
        refs = check(p["refs"], "pool", "epp", "leaderworkersets", "gateway", "route")
        client = Client(p)
        deadline, start, last = time.time() + p["wait_timeout"], time.time(), None
        while True:   # with wait_timeout: until every check passes, one is final (a lost object) or time is up
            rep = Checklist()
            repaired += check_all(module, client, refs, p, rep, p["repair_split_groups"] and not repaired
                                  and not module.check_mode)
            lost = any(" gone (uid " in line or " recreated (uid " in line for line in rep.problems)
            if not rep.problems or lost or time.time() >= deadline:
                break
            if rep.problems != last:
                progress.append("%ds: waiting for %s" % (time.time() - start, "; ".join(rep.problems)))
                last = rep.problems
            time.sleep(5)
        workloads = [identity(o) for o in (client.get(r) for r in refs["leaderworkersets"].values()) if o]
    except (K8sError, HelmError, ValueError) as exc:
        module.fail_json(msg=str(exc), report=rep.report, problems=rep.problems + [str(exc)], repaired=repaired)
    if rep.problems:
        step = " after the %s step" % p["step"] if p["step"] else ""
        if p["step"] and not module.check_mode:
            try:
                Record(client, p["refs"]["namespace"]).note_gate(p["step"], rep.problems)
            except K8sError as exc:
                rep.add(False, "the revision record could not be written: %s" % exc)
        module.fail_json(msg="%d check(s) failed%s: %s" % (len(rep.problems), step, "; ".join(rep.problems)),
                         report=rep.report, problems=rep.problems, repaired=repaired, progress=progress)
    module.exit_json(changed=bool(repaired), report=rep.report, problems=[], repaired=repaired,
                     workloads=workloads, progress=progress)


if __name__ == "__main__":
    main()
