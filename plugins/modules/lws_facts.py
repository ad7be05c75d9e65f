#!/usr/bin/python
# Copyright: llm-d wide-EP collection contributors
# Apache-2.0
from __future__ import annotations

DOCUMENTATION = r"""
module: lws_facts
short_description: Find an existing LeaderWorkerSet controller, how it was installed and its version
description:
  - Looks for the LeaderWorkerSet CRD, a helm release of the LWS chart, the C(lws-controller-manager) Deployment
    and the LWS webhook configurations, and says who manages the controller - C(helm), C(manifest) (a Deployment
    without a release, e.g. C(kubectl apply --server-side -f manifests.yaml)), C(external) (webhooks that call a
    URL, that is a controller outside the cluster) or C(none) - and which version runs.
  - With O(want_version), also says what the lws role does about it - C(install) (none found), C(upgrade) (an
    older install), C(replace) (O(force_version)), or C(keep) (as new or newer, an unknown version, or a
    controller outside the cluster) - and why.
  - Read-only.
version_added: 0.1.0
author: llm-d wide-EP collection contributors (@llm-d)
options:
  namespace:
    description: Namespace of the controller.
    type: str
    default: lws-system
  release:
    description: Helm release name of the chart.
    type: str
    default: lws
  want_version:
    description: The version the lws role installs; sets RV(action) and RV(reason).
    type: str
  force_version:
    description: Replace whatever runs with O(want_version).
    type: bool
    default: false
  need_disaggregatedset:
    description:
      - The deployment runs a DisaggregatedSet. A helm release of 0.9.0 or later without it is upgraded in place
        with C(enableDisaggregatedSet); a controller left alone that does not serve it, or an O(want_version)
        before 0.9.0, is refused with the fix.
    type: bool
    default: false
  admission_timeout:
    description:
      - With O(need_disaggregatedset), wait up to this many seconds until the API server admits a DisaggregatedSet
        through the controller's webhook (a server-side dry run in namespace C(default), nothing stored); 0 does
        not probe. Fails naming the last refusal.
      - With O(want_version), only a controller that is kept is probed (the lws role probes a changed one again
        after its change).
    type: int
    default: 0
  accept_group_restart:
    description:
      - Make a move that restarts every group of every LeaderWorkerSet (0.7.0 to 0.8.0, kubernetes-sigs/lws#797)
        instead of refusing it.
    type: bool
    default: false
extends_documentation_fragment:
  - llmd.wide_ep.k8s
  - llmd.wide_ep.k8s.helm
"""

EXAMPLES = r"""
- name: Is LWS there already?
  llmd.wide_ep.lws_facts:
  register: lws
"""

RETURN = r"""
lws:
  description: What was found.
  returned: always
  type: dict
  contains:
    crd:
      description: The LeaderWorkerSet CRD exists.
      type: bool
    managed_by:
      description: helm, manifest, external or none.
      type: str
    version:
      description: Version without a leading v, or null when unknown.
      type: str
    webhook_url:
      description: URL the webhooks call, for an external controller.
      type: str
    ds_crd:
      description: The DisaggregatedSet CRD exists (read with O(need_disaggregatedset) only).
      type: bool
    ds_webhook:
      description: A validating webhook admits DisaggregatedSets (the chart's C(enableDisaggregatedSet)).
      type: bool
action:
  description: What to do - C(install), C(upgrade), C(replace) or C(keep).
  returned: when O(want_version) is given
  type: str
reason:
  description: The action in a sentence, naming what was found.
  returned: when O(want_version) is given
  type: str
admitted_after:
  description: Seconds until a DisaggregatedSet was admitted (the dry run of O(admission_timeout)).
  returned: when the admission was probed
  type: float
"""


from ansible_collections.llmd.wide_ep.plugins.module_utils.day2 import lws_controller
from ansible_collections.llmd.wide_ep.plugins.module_utils.errors import WideEPError
from ansible_collections.llmd.wide_ep.plugins.module_utils.k8s.helm import HELM_ARG_SPEC, Helm
from ansible_collections.llmd.wide_ep.plugins.module_utils.progress import Progress
from ansible_collections.llmd.wide_ep.plugins.module_utils.runner import run_module


def main():
    run_module(dict(namespace={"type": "str", "default": "lws-system"}, release={"type": "str", "default": "lws"},
                    want_version={"type": "str"}, force_version={"type": "bool", "default": False},
                    need_disaggregatedset={"type": "bool", "default": False},
                    admission_timeout={"type": "int", "default": 0},
                    accept_group_restart={"type": "bool", "default": False}, **HELM_ARG_SPEC),
               lws_facts, supports_check_mode=True)


def lws_facts(ctx):
    p, client = ctx.params, ctx.client
    # whether the CRDs exist: their metadata, not the schemas (the LeaderWorkerSet CRD is 0.6 MB)
    crd = client.get({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
                      "metadata": {"name": "leaderworkersets.leaderworkerset.x-k8s.io"}},
                     metadata_only=True) is not None
    hooks = client.list("admissionregistration.k8s.io/v1", "MutatingWebhookConfiguration")
    url = None
    for config in hooks:
        for hook in config.get("webhooks", []):
            cc = hook.get("clientConfig", {})
            if (cc.get("url") or cc.get("service", {}).get("path", "")).endswith(lws_controller.WEBHOOK_PATH):
                url = cc.get("url") or url
    ds_crd = ds_webhook = False
    if p["need_disaggregatedset"]:   # read only then: the operator's RBAC grants these reads only then
        ds_crd = client.get({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
                             "metadata": {"name": lws_controller.DS_CRD}}, metadata_only=True) is not None
        ds_webhook = any((h.get("clientConfig", {}).get("url") or h.get("clientConfig", {}).get("service", {}).get(
            "path", "")).endswith(lws_controller.DS_WEBHOOK_PATH) for config in client.list(
            "admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration") for h in config.get("webhooks", []))
    deploy = client.get({"apiVersion": "apps/v1", "kind": "Deployment",
                         "metadata": {"name": "lws-controller-manager", "namespace": p["namespace"]}})
    release = Helm(ctx.module, p["helm_binary"], p, client=client).release(p["release"], p["namespace"])
    result = {"changed": False, "lws": lws_controller.found(crd, release, deploy, url, ds_crd, ds_webhook)}
    if p["want_version"]:
        try:
            result["action"], result["reason"] = lws_controller.action(
                result["lws"], p["want_version"], p["force_version"], p["need_disaggregatedset"])
        except ValueError as exc:
            raise WideEPError(str(exc), **result) from exc
        if result["action"] != "keep":   # a move it cannot make safe is refused before anything changes
            found = result["lws"]
            problems = lws_controller.upgrade_problems(found["version"] if result["action"] != "install" else None,
                                                       p["want_version"], found["managed_by"],
                                                       p["accept_group_restart"])
            if problems:
                raise WideEPError("; ".join(problems), problems=problems, **result)
        Progress().live(result["reason"])   # shown at default verbosity by the progress callback
    if p["need_disaggregatedset"] and p["admission_timeout"] > 0 and result.get("action", "keep") == "keep":
        result["admitted_after"] = lws_controller.wait_admits_ds(client, p["admission_timeout"])
    return result


if __name__ == "__main__":
    main()
