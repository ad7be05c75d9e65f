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
  namespace:
    description: Namespace of the deployment.
    type: str
    required: true
  release:
    description: InferencePool release.
    type: str
    default: llm-d-infpool
  expected:
    description:
      - What should be there, from M(llmd.wide_ep.topology)'s summary. Keys C(prefill)/C(decode) with
        C(replicas), C(group_size) and C(containers) (ready containers per pod); C(target_ports).
    type: dict
    required: true
  gateway:
    description: Check the Gateway and HTTPRoute (names from the recipe); C(false) when the recipe is C(none).
    type: bool
    default: true
  require_programmed:
    description:
      - Require the Gateway to be C(Programmed). Only a running gateway controller sets it; on a cluster without
        one (the local test cluster) set C(false) and only acceptance of the objects is checked.
    type: bool
    default: true
  helm_binary:
    description: helm 3 on the controller.
    type: str
    default: helm
extends_documentation_fragment:
  - llmd.wide_ep.k8s
"""

EXAMPLES = r"""
- name: Verify the stack
  llmd.wide_ep.stack_status:
    namespace: llm-d-wide-ep
    expected:
      prefill: {replicas: 1, group_size: 2, containers: 1}
      decode: {replicas: 1, group_size: 2, containers: 2}
      target_ports: [8000]
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
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.llmd.wide_ep.plugins.module_utils import manifests
from ansible_collections.llmd.wide_ep.plugins.module_utils.helm import Helm, HelmError
from ansible_collections.llmd.wide_ep.plugins.module_utils.k8s import (
    AUTH_ARG_SPEC,
    Client,
    K8sError,
    condition,
    lws_pods,
    readiness,
)


class Report:
    def __init__(self):
        self.lines, self.problems = [], []

    def check(self, ok, what):
        self.lines.append("%s  %s" % ("OK  " if ok else "FAIL", what))
        if not ok:
            self.problems.append(what)


def check_release(helm, p, rep):
    rel = helm.release(p["release"], p["namespace"])
    ok = bool(rel) and rel["status"] == "deployed"
    rep.check(ok, "helm release %s: %s" % (p["release"], "%s-%s %s" % (rel["chart"], rel["version"], rel["status"])
                                           if rel else "not installed"))


def check_role(client, p, role, want, rep):
    name = manifests.LWS_NAME[role]
    lws = client.get({"apiVersion": "leaderworkerset.x-k8s.io/v1", "kind": "LeaderWorkerSet",
                      "metadata": {"name": name, "namespace": p["namespace"]}})
    if lws is None:
        rep.check(False, "LeaderWorkerSet %s: missing" % name)
        return
    ok, why = readiness(lws)
    rep.check(ok, "LeaderWorkerSet %s: %s" % (name, why))
    pods = lws_pods(client, p["namespace"], name)
    expected_pods = want["replicas"] * want["group_size"]
    ready = []
    for pod in pods:
        statuses = pod.get("status", {}).get("containerStatuses", []) or []
        statuses += [s for s in pod.get("status", {}).get("initContainerStatuses", []) or []
                     if s.get("name") == "routing-proxy"]
        count = sum(1 for s in statuses if s.get("ready"))
        if count >= want["containers"]:
            ready.append(pod["metadata"]["name"])
    rep.check(len(ready) == expected_pods == len(pods), "%s pods: %d/%d with %d/%d containers ready" % (
        role, len(ready), expected_pods, want["containers"], want["containers"]))


def check_pool(client, p, rep):
    ns, rel = p["namespace"], p["release"]
    pool = client.get({"apiVersion": "inference.networking.k8s.io/v1", "kind": "InferencePool",
                       "metadata": {"name": rel, "namespace": ns}})
    ports = [t.get("number") for t in (pool or {}).get("spec", {}).get("targetPorts", [])]
    rep.check(pool is not None and ports == p["expected"].get("target_ports", ports),
              "InferencePool %s: target ports %s" % (rel, ports if pool else "missing"))
    epp = client.get({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": rel + "-epp",
                                                                                  "namespace": ns}})
    rep.check(bool(epp) and readiness(epp)[0], "EPP %s-epp: %s" % (rel, readiness(epp)[1] if epp else "missing"))


def check_gateway(client, p, rep):
    ns = p["namespace"]
    gw = client.get({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
                     "metadata": {"name": manifests.GATEWAY_NAME, "namespace": ns}})
    programmed = condition(gw, "Programmed").get("status") == "True"
    if p["require_programmed"]:
        rep.check(programmed, "Gateway %s: Programmed=%s" % (manifests.GATEWAY_NAME, programmed if gw else "missing"))
    else:
        rep.check(gw is not None, "Gateway %s: %s (Programmed not required: no gateway controller)" % (
            manifests.GATEWAY_NAME, "exists" if gw else "missing"))
    route = client.get({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
                        "metadata": {"name": manifests.ROUTE_NAME, "namespace": ns}})
    parents = (route or {}).get("status", {}).get("parents", []) or []
    accepted = any(condition({"status": par}, "Accepted").get("status") == "True" for par in parents)
    if p["require_programmed"]:
        rep.check(accepted, "HTTPRoute %s: Accepted=%s" % (manifests.ROUTE_NAME, accepted if route else "missing"))
    else:
        rep.check(route is not None, "HTTPRoute %s: %s" % (manifests.ROUTE_NAME, "exists" if route else "missing"))


def main():
    spec = dict(AUTH_ARG_SPEC)
    spec.update(namespace={"type": "str", "required": True}, release={"type": "str", "default": "llm-d-infpool"},
                expected={"type": "dict", "required": True}, gateway={"type": "bool", "default": True},
                require_programmed={"type": "bool", "default": True}, helm_binary={"type": "str", "default": "helm"})
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True)
    p = module.params
    rep = Report()
    try:
        client = Client(p["kubeconfig"], p["context"])
        check_release(Helm(module, p["helm_binary"], p["kubeconfig"], p["context"]), p, rep)
        for role in ("prefill", "decode"):
            check_role(client, p, role, p["expected"][role], rep)
        check_pool(client, p, rep)
        if p["gateway"]:
            check_gateway(client, p, rep)
    except (K8sError, HelmError) as exc:
        module.fail_json(msg=str(exc), report=rep.lines, problems=rep.problems + [str(exc)])
    if rep.problems:
        module.fail_json(msg="%d check(s) failed: %s" % (len(rep.problems), "; ".join(rep.problems)),
                         report=rep.lines, problems=rep.problems)
    module.exit_json(changed=False, report=rep.lines, problems=[])


if __name__ == "__main__":
    main()
