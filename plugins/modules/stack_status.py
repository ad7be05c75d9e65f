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
repaired:
  description: The split groups recreated whole (with O(repair_split_groups)) - C(lws), C(group), C(why).
  returned: always
  type: list
  elements: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.llmd.wide_ep.plugins.module_utils.checklist import Checklist
from ansible_collections.llmd.wide_ep.plugins.module_utils.helm import HELM_ARG_SPEC, Helm, HelmError
from ansible_collections.llmd.wide_ep.plugins.module_utils.k8s.auth import AUTH_ARG_SPEC
from ansible_collections.llmd.wide_ep.plugins.module_utils.k8s.client import Client, ref
from ansible_collections.llmd.wide_ep.plugins.module_utils.k8s.errors import K8sError
from ansible_collections.llmd.wide_ep.plugins.module_utils.k8s.lws import LWS_NAME_LABEL, split_groups
from ansible_collections.llmd.wide_ep.plugins.module_utils.k8s.readiness import condition, readiness, wait_ready
from ansible_collections.llmd.wide_ep.plugins.module_utils.progress import Progress
from ansible_collections.llmd.wide_ep.plugins.module_utils.refs import PLAN_ARG_SPEC, check, name
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
    """Recreate each split group whole: its leader pod deleted (foreground), then the LeaderWorkerSet Ready."""
    namespace = lws_ref["metadata"]["namespace"]
    for group in split:
        if group["leader"]:
            client.delete(ref("v1", "Pod", group["leader"], namespace))
    wait_ready(client, [lws_ref], timeout, 2, Progress())


def check_pool(client, refs, want_ports, rep):
    pool = client.get(refs["pool"])
    ports = [t.get("number") for t in (pool or {}).get("spec", {}).get("targetPorts", [])]
    rep.add(pool is not None and ports == want_ports,
            "InferencePool %s: target ports %s" % (name(refs["pool"]), ports if pool else "missing"))
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


def main():
    spec = dict(AUTH_ARG_SPEC, **PLAN_ARG_SPEC)
    spec.update(require_programmed={"type": "bool", "default": True}, split_window={"type": "int", "default": 60},
                repair_split_groups={"type": "bool", "default": False}, repair_timeout={"type": "int", "default": 2700},
                **HELM_ARG_SPEC)
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True)
    p = module.params
    rep = Checklist()
    repaired = []
    try:
        refs = check(p["refs"], "pool", "epp", "leaderworkersets", "gateway", "route")
        client = Client(p)
        check_release(Helm(module, p["helm_binary"], p, client=client), refs, rep)
        for role, lws_ref in refs["leaderworkersets"].items():
            split = find_split(client, lws_ref, p["split_window"])
            if split and p["repair_split_groups"] and not module.check_mode:
                repair(client, lws_ref, split, p["repair_timeout"])
                repaired += [dict(g, lws=name(lws_ref)) for g in split]
                split = find_split(client, lws_ref, p["split_window"])
            check_role(client, lws_ref, role, p["expected"][role], rep)
            check_groups(client, lws_ref, split, rep)
        check_pool(client, refs, p["expected"]["target_ports"], rep)
        if refs["gateway"]:
            check_gateway(client, refs, p["require_programmed"], rep)
    except (K8sError, HelmError, ValueError) as exc:
        module.fail_json(msg=str(exc), report=rep.report, problems=rep.problems + [str(exc)], repaired=repaired)
    if rep.problems:
        module.fail_json(msg="%d check(s) failed: %s" % (len(rep.problems), "; ".join(rep.problems)),
                         report=rep.report, problems=rep.problems, repaired=repaired)
    module.exit_json(changed=bool(repaired), report=rep.report, problems=[], repaired=repaired)


if __name__ == "__main__":
    main()
