#!/usr/bin/python
# Copyright: llm-d wide-EP collection contributors
# Apache-2.0
from __future__ import annotations

DOCUMENTATION = r"""
module: cluster_facts
short_description: Kubernetes server version and the API groups it serves, in two requests
description:
  - Reads C(/version) and the aggregated group list C(/apis) of the API server. Used by the preflight to check the
    cluster version and which CRD groups (LeaderWorkerSet, Gateway API, InferencePool, monitoring) exist.
  - With O(min_version), fails with one message when the server is older.
version_added: 0.1.0
author: llm-d wide-EP collection contributors (@llm-d)
options:
  min_version:
    description: Minimum Kubernetes version, C(MAJOR.MINOR).
    type: str
  required_groups:
    description: API group/versions that must be served (for example C(leaderworkerset.x-k8s.io/v1)), with why.
    type: dict
    default: {}
  required_objects:
    description: Objects that must exist, each C(apiVersion), C(kind), C(name), optional C(namespace) and C(why).
    type: list
    elements: dict
    default: []
  check_helm:
    description: Also check that O(helm_binary), on the controller, is a helm the collection runs (3.17 or later, or 4).
    type: bool
    default: false
extends_documentation_fragment:
  - llmd.wide_ep.k8s
  - llmd.wide_ep.k8s.helm
"""

EXAMPLES = r"""
- name: Cluster preflight
  llmd.wide_ep.cluster_facts:
    min_version: "1.29"
    required_groups:
      monitoring.coreos.com/v1: the CoreWeave PodMonitors and the EPP ServiceMonitor
"""

RETURN = r"""
version:
  description: The server's version, C(MAJOR.MINOR.PATCH).
  returned: always
  type: str
helm_version:
  description: C(helm version --short) of O(helm_binary).
  returned: when O(check_helm)
  type: str
groups:
  description: Every group/version the server serves.
  returned: always
  type: list
  elements: str
"""

from ansible_collections.llmd.wide_ep.plugins.module_utils import versions
from ansible_collections.llmd.wide_ep.plugins.module_utils.errors import WideEPError
from ansible_collections.llmd.wide_ep.plugins.module_utils.k8s.errors import K8sError
from ansible_collections.llmd.wide_ep.plugins.module_utils.k8s.helm import HELM_ARG_SPEC, installed_version
from ansible_collections.llmd.wide_ep.plugins.module_utils.runner import run_module


def main():
    run_module(dict(min_version={"type": "str"}, required_groups={"type": "dict", "default": {}},
                    required_objects={"type": "list", "elements": "dict", "default": []},
                    check_helm={"type": "bool", "default": False}, **HELM_ARG_SPEC),
               cluster_facts, supports_check_mode=True)


def cluster_facts(ctx):
    p, facts = ctx.params, {}
    if p["check_helm"]:
        facts["helm_version"] = installed_version(ctx.module, p["helm_binary"])
    try:
        client = ctx.client
        version = client.version().get("gitVersion", "")
        groups = client.api_groups()
    except WideEPError:
        raise
    except Exception as exc:  # connection refused, TLS, DNS: say where we tried
        raise WideEPError("cannot reach the Kubernetes API server: %s" % exc) from exc
    problems = []
    if p["min_version"] and (versions.minor(version) or (0, 0)) < versions.minor(p["min_version"]):
        problems.append("the cluster runs Kubernetes %s; this deployment needs %s or newer (native sidecars, "
                        "LeaderWorkerSet)" % (version, p["min_version"]))
    for group, why in p["required_groups"].items():
        if group not in groups:
            problems.append("the API server does not serve %s, needed for %s" % (group, why))
    for ref in p["required_objects"]:
        meta = {"name": ref["name"], **({"namespace": ref["namespace"]} if ref.get("namespace") else {})}
        what = "%s %s" % (ref["kind"], ref["name"])
        try:
            found = ref["apiVersion"] in groups and client.get(
                {"apiVersion": ref["apiVersion"], "kind": ref["kind"], "metadata": meta}) is not None
        except K8sError as exc:
            raise K8sError("cannot read %s: %s" % (what, exc)) from exc
        if not found:
            problems.append("%s does not exist; it is needed for %s" % (what, ref.get("why", "this deployment")))
    if problems:
        raise WideEPError("; ".join(problems), version=version.lstrip("v"), groups=groups, **facts)
    return dict(changed=False, version=version.lstrip("v"), groups=groups, **facts)


if __name__ == "__main__":
    main()
