#!/usr/bin/python
# Copyright: llm-d wide-EP collection contributors
# Apache-2.0
from __future__ import annotations

DOCUMENTATION = r"""
module: lws_crds
short_description: Keep the LeaderWorkerSet CRDs (and every LeaderWorkerSet) through a change of the LWS chart
description:
  - With O(state=protect), before the chart is installed or upgraded - takes the LeaderWorkerSet CRDs out of
    helm's hands (annotation C(helm.sh/resource-policy=keep), which helm honours on upgrade, rollback and uninstall)
    and applies the target chart's CRDs server-side with their conversion and webhook sections as the chart has
    them (helm installs C(crds/) only on a first install; up to 0.7.0 the chart rendered them as templates, so an
    upgrade to 0.8.0 or later made helm delete them, and with them every LeaderWorkerSet of every team -
    kubernetes-sigs/lws#880). Returns every LeaderWorkerSet and DisaggregatedSet of the cluster as they are.
  - With O(state=intact), after the chart change - fails, naming each one, when any of O(expect) is gone, was
    recreated or changed; annotates keep the CRDs the chart made as templates (a first install up to 0.7.0).
  - Check mode reports what would be done to each CRD and changes nothing.
version_added: 0.6.0
author: llm-d wide-EP collection contributors (@llm-d)
options:
  state:
    description: C(protect) before the chart changes, C(intact) after it.
    type: str
    choices: [protect, intact]
    default: protect
  release: {description: The chart's helm release (for rendering it)., type: str, default: lws}
  namespace: {description: The controller's namespace., type: str, default: lws-system}
  chart_ref: {description: The target chart (OCI reference or a local chart)., type: str}
  chart_version: {description: The target chart's version., type: str}
  values: {description: The chart's values., type: dict, default: {}}
  protect:
    description: Annotate and apply the CRDs (false only to show what an unprotected upgrade loses).
    type: bool
    default: true
  expect:
    description: With O(state=intact), the O(state=protect) result's C(workloads).
    type: list
    elements: dict
    default: []
  settle:
    description:
      - With O(state=intact), seconds to watch the groups once the new controller holds its leader lease (a
        controller that takes every LeaderWorkerSet for changed restarts them within them - kubernetes-sigs/lws#797);
        0 checks at once without waiting for the controller (after a failed chart change).
    type: int
    default: 15
  accept_group_restart:
    description: With O(state=intact), groups the controller restarted are waited for rather than reported lost.
    type: bool
    default: false
  wait_timeout:
    description: Seconds for the controller to take its lease, and for restarted groups to be Ready again.
    type: int
    default: 300
extends_documentation_fragment:
  - llmd.wide_ep.k8s
  - llmd.wide_ep.k8s.helm
"""

EXAMPLES = r"""
- name: Keep the CRDs through the chart upgrade
  llmd.wide_ep.lws_crds:
    chart_ref: oci://registry.k8s.io/lws/charts/lws
    chart_version: "0.9.0"
  register: lws_crds
- name: Check nothing was lost
  llmd.wide_ep.lws_crds:
    state: intact
    expect: "{{ lws_crds.workloads }}"
"""

RETURN = r"""
crds:
  description: What was done (or, in check mode, would be) to each CRD - C(name) and C(actions).
  returned: with O(state=protect)
  type: list
  elements: dict
plan:
  description: One line for each CRD - what was done (or would be) to it.
  returned: with O(state=protect)
  type: list
  elements: str
restarted:
  description: With O(state=intact), the pods of each workload the controller change recreated.
  returned: with O(state=intact)
  type: dict
progress:
  description: With O(state=intact), what the wait for the controller and the groups saw.
  returned: with O(state=intact)
  type: list
  elements: str
annotated:
  description: The CRDs annotated keep after the chart change.
  returned: with O(state=intact)
  type: list
  elements: str
workloads:
  description: Every LeaderWorkerSet and DisaggregatedSet - C(kind), C(namespace), C(name), C(uid), C(generation).
  returned: always
  type: list
  elements: dict
"""

import time

from ansible_collections.llmd.wide_ep.plugins.module_utils.day2 import lws_controller
from ansible_collections.llmd.wide_ep.plugins.module_utils.errors import WideEPError
from ansible_collections.llmd.wide_ep.plugins.module_utils.k8s.client import normalize, ref
from ansible_collections.llmd.wide_ep.plugins.module_utils.k8s.errors import K8sError
from ansible_collections.llmd.wide_ep.plugins.module_utils.k8s.helm import HELM_ARG_SPEC, Helm, HelmError
from ansible_collections.llmd.wide_ep.plugins.module_utils.k8s.readiness import wait_ready
from ansible_collections.llmd.wide_ep.plugins.module_utils.progress import Progress
from ansible_collections.llmd.wide_ep.plugins.module_utils.runner import run_module

CRD_API = "apiextensions.k8s.io/v1"


def crd_names(objects):
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == "CustomResourceDefinition"}


def keep_only(name):
    """The keep annotation alone, applied server-side: every other field stays as its owners left it."""
    return {"apiVersion": CRD_API, "kind": "CustomResourceDefinition",
            "metadata": {"name": name, "annotations": dict(lws_controller.KEEP)}}


def kept(live):
    return (live["metadata"].get("annotations") or {}).get("helm.sh/resource-policy") == "keep"


def protect(module, client, p):
    """Annotate every live LWS CRD keep; apply the target chart's crds/ (annotated) server-side; leave the CRDs the
    target renders as templates to helm (the `intact` step annotates them once helm made them). [{name, actions}]"""
    helm = Helm(module, p["helm_binary"], p)
    args = (p["release"], p["namespace"], p["chart_ref"], p["chart_version"], p["values"])
    target = crd_names(helm.template(*args))
    templated = crd_names(helm.template(*args, include_crds=False))
    if lws_controller.LWS_CRD not in target:
        raise HelmError("the chart %s %s renders no %s CRD: is it the LeaderWorkerSet chart?" % (
            p["chart_ref"], p["chart_version"] or "", lws_controller.LWS_CRD))
    source = "chart %s" % (p["chart_version"] or p["chart_ref"])
    done = []
    for name in sorted(set(target) | {lws_controller.LWS_CRD, lws_controller.DS_CRD}):
        live = client.get(ref(CRD_API, "CustomResourceDefinition", name))
        if live is None and name not in target:
            continue
        actions, want = [], keep_only(name)
        if live is not None and not kept(live):
            actions.append("annotated helm.sh/resource-policy=keep")
        if name in templated:   # helm applies it with the release; a CRD helm made is annotated after it
            if live is None:
                actions.append("made by helm from %s (a template), then annotated keep" % source)
        elif name in target:    # crds/: helm creates it on a first install only, never updates it
            want = dict(target[name], metadata=dict(target[name]["metadata"], annotations=dict(
                target[name]["metadata"].get("annotations") or {}, **lws_controller.KEEP)))
            if live is None:
                actions.append("created from %s" % source)
            elif normalize(client.apply(want, lws_controller.CRD_MANAGER, force=True, dry_run=True)) != normalize(live):
                actions.append("applied server-side from %s" % source)
        # else: a CRD the target chart no longer has - kept as it is
        if actions and not module.check_mode and (live is not None or name not in templated):
            client.apply(want, lws_controller.CRD_MANAGER, force=True)
        done.append({"name": name, "actions": actions})
    return done


def controller_pods(client, namespace):
    return [pod["metadata"]["name"] for pod in client.list("v1", "Pod", namespace,
                                                           label_selector="control-plane=controller-manager")
            if not pod["metadata"].get("deletionTimestamp") and pod.get("status", {}).get("phase") == "Running"]


def wait_for_controller(client, namespace, timeout, progress):
    """Until a pod of the controller as it now runs holds its leader lease: from then on it reconciles, and
    what it does to the groups shows."""
    lease_ref = ref("coordination.k8s.io/v1", "Lease", lws_controller.LEADER_ELECTION_ID, namespace)
    deadline, start, last = time.time() + timeout, time.time(), None
    while True:
        lease = client.get(lease_ref) or {}
        holder = (lease.get("spec") or {}).get("holderIdentity") or ""
        running = controller_pods(client, namespace)
        if holder.split("_")[0] in running:
            progress.append("%ds: the LWS controller %s holds its lease" % (time.time() - start, holder.split("_")[0]))
            return
        state = "lease held by %s, controller pods running: %s" % (holder or "nobody", ", ".join(running) or "none")
        if state != last:
            progress.append("%ds: %s" % (time.time() - start, state))
            last = state
        if time.time() >= deadline:
            raise K8sError("the LWS controller took no lease within %ds (%s)" % (timeout, state))
        time.sleep(2)


def watch_groups(module, client, p, progress):
    """The workloads after `settle` seconds of the new controller, or as soon as it restarts a group; when the
    restart was accepted, once every LeaderWorkerSet is Ready again."""
    deadline = time.time() + p["settle"]
    while True:
        now = lws_controller.workloads(client)
        moved = lws_controller.restarted(p["expect"], now)
        if moved or time.time() >= deadline:
            break
        time.sleep(3)
    if moved:
        progress.append("the controller restarted groups: %s" % "; ".join(
            "%s (%s)" % (what, ", ".join(pods)) for what, pods in moved.items()))
    if moved and p["accept_group_restart"]:
        refs = [ref("leaderworkerset.x-k8s.io/v1", "LeaderWorkerSet", w["name"], w["namespace"])
                for w in now if w["kind"] == "LeaderWorkerSet"]
        wait_ready(client, refs, p["wait_timeout"], 5, progress)
        now = lws_controller.workloads(client)
    return now


def intact(module, client, p):
    """Fail naming what the controller change lost; annotate keep the CRDs helm made meanwhile (a first install)."""
    progress = Progress()
    if p["settle"]:
        wait_for_controller(client, p["namespace"], p["wait_timeout"], progress)
        now = watch_groups(module, client, p, progress)
    else:
        now = lws_controller.workloads(client)
    problems = lws_controller.lost(p["expect"], now, p["accept_group_restart"])
    if problems:
        raise WideEPError("the LeaderWorkerSet controller change lost %d workload(s): %s" % (
            len(problems), "; ".join(problems)), lost=problems, workloads=now, progress=progress)
    annotated = []
    for name in (lws_controller.LWS_CRD, lws_controller.DS_CRD) if p["protect"] else ():
        live = client.get(ref(CRD_API, "CustomResourceDefinition", name))
        if live is not None and not kept(live):
            if not module.check_mode:
                client.apply(keep_only(name), lws_controller.CRD_MANAGER, force=True)
            annotated.append(name)
    module.exit_json(changed=bool(annotated), annotated=annotated, workloads=now, progress=progress,
                     restarted=lws_controller.restarted(p["expect"], now))


def main():
    run_module(dict(
        state={"type": "str", "default": "protect", "choices": ["protect", "intact"]},
        release={"type": "str", "default": "lws"}, namespace={"type": "str", "default": "lws-system"},
        chart_ref={"type": "str"}, chart_version={"type": "str"}, values={"type": "dict", "default": {}},
        protect={"type": "bool", "default": True}, expect={"type": "list", "elements": "dict", "default": []},
        accept_group_restart={"type": "bool", "default": False}, settle={"type": "int", "default": 15},
        wait_timeout={"type": "int", "default": 300}, **HELM_ARG_SPEC),
        crds_around_upgrade, required_if=[("state", "protect", ["chart_ref"])], supports_check_mode=True)


def crds_around_upgrade(ctx):
    module, client, p = ctx.module, ctx.client, ctx.params
    if p["state"] == "intact":
        intact(module, client, p)
    crds = protect(module, client, p) if p["protect"] else []
    plan = ["%s: %s" % (c["name"], ", ".join(c["actions"]) or "as the chart has it, kept") for c in crds] or [
        "not protected (protect: false): helm may delete CRDs the target chart no longer renders"]
    return {"changed": any(c["actions"] for c in crds), "crds": crds, "plan": plan,
            "workloads": lws_controller.workloads(client)}


if __name__ == "__main__":
    main()
