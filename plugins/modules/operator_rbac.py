#!/usr/bin/python
# Copyright: llm-d wide-EP collection contributors
# Apache-2.0
from __future__ import annotations

DOCUMENTATION = r"""
module: operator_rbac
short_description: The least-privilege RBAC of the identity that runs site.yml, upgrade.yml and teardown.yml
description:
  - Computes the ClusterRole, Roles and their bindings that an operator identity needs to run C(site.yml),
    C(upgrade.yml) and C(teardown.yml) with this inventory, and nothing more - what the collection's own requests
    need, every kind the plan applies, and every object of O(charts) as C(helm template) renders them, with the
    rules of the charts' own Roles and ClusterRoles (the API server lets an identity grant only what it holds).
  - Writes them as YAML files C(rbac-*.yaml) under O(export_dir) when given. Contacts no cluster.
version_added: 0.6.0
author: llm-d wide-EP collection contributors (@llm-d)
options:
  plan: {description: The topology plan (the C(llmd.wide_ep.topology) result)., type: dict, required: true}
  charts:
    description:
      - The charts the run installs or upgrades - C(release), C(namespace), C(chart_ref), C(chart_version),
        C(values).
    type: list
    elements: dict
    default: []
  lws_namespace:
    description: Namespace of the LeaderWorkerSet controller (read to see how it is installed).
    type: str
    default: lws-system
  apply_crds: {description: The run applies the Gateway API and inference-extension CRDs., type: bool, default: true}
  subject:
    description:
      - Who is bound - a C(kind) (C(User), C(Group) or C(ServiceAccount)), C(name) and, for a ServiceAccount,
        C(namespace).
    type: dict
    default: {kind: Group, name: llmd-wide-ep-operators}
  name: {description: Name of every RBAC object., type: str, default: llmd-wide-ep-operator}
  export_dir: {description: Write the objects here (a file for each)., type: path}
extends_documentation_fragment:
  - llmd.wide_ep.k8s.helm
"""

EXAMPLES = r"""
- name: The operator's RBAC for this inventory
  llmd.wide_ep.operator_rbac:
    plan: "{{ wide_ep_plan }}"
    charts:
      - {release: llm-d-infpool, namespace: llm-d-wide-ep, chart_ref: "{{ wide_ep_plan.router.chart_ref }}",
         chart_version: "{{ wide_ep_plan.router.chart_version }}", values: "{{ wide_ep_plan.router.chart_values }}"}
    export_dir: out/
"""

RETURN = r"""
objects:
  description: The ClusterRole, ClusterRoleBinding, and a Role and RoleBinding per namespace.
  returned: always
  type: list
  elements: dict
files:
  description: Files written under O(export_dir).
  returned: when O(export_dir) is set
  type: list
  elements: str
"""

import os

from ansible_collections.llmd.wide_ep.plugins.module_utils import yamlout
from ansible_collections.llmd.wide_ep.plugins.module_utils.errors import WideEPError
from ansible_collections.llmd.wide_ep.plugins.module_utils.k8s.helm import HELM_ARG_SPEC, Helm, HelmError
from ansible_collections.llmd.wide_ep.plugins.module_utils.render import rbac
from ansible_collections.llmd.wide_ep.plugins.module_utils.runner import run_module


def main():
    run_module(dict(
        plan={"type": "dict", "required": True}, charts={"type": "list", "elements": "dict", "default": []},
        lws_namespace={"type": "str", "default": "lws-system"}, apply_crds={"type": "bool", "default": True},
        subject={"type": "dict", "default": {"kind": "Group", "name": "llmd-wide-ep-operators"}},
        name={"type": "str", "default": "llmd-wide-ep-operator"}, export_dir={"type": "path"}, **HELM_ARG_SPEC),
        operator_rbac, cluster=False, supports_check_mode=True)


def operator_rbac(ctx):
    p, rendered = ctx.params, []
    try:
        helm = Helm(ctx.module, p["helm_binary"]) if p["charts"] else None
        for chart in p["charts"]:
            rendered.append((chart["namespace"], helm.template(chart["release"], chart["namespace"],
                                                               chart["chart_ref"], chart.get("chart_version"),
                                                               chart.get("values") or {})))
    except HelmError as exc:
        raise WideEPError("cannot render the charts the RBAC must cover (set render_rbac: false to render without "
                          "it, or point the chart reference at a local copy): %s" % exc) from exc
    rules = rbac.operator_rules(p["plan"], rendered, p["lws_namespace"], p["apply_crds"])
    objects = rbac.objects(rules, p["name"], p["subject"])
    result = {"changed": False, "objects": objects}
    if p["export_dir"]:
        result["files"] = []
        for obj in objects:
            path = os.path.join(p["export_dir"], "rbac-%s-%s.yaml" % (
                obj["kind"].lower(), obj["metadata"].get("namespace", "cluster")))
            text = yamlout.dump(obj)
            current = open(path).read() if os.path.exists(path) else None
            if current != text:
                result["changed"] = True
                if not ctx.check_mode:
                    os.makedirs(p["export_dir"], exist_ok=True)
                    with open(path, "w") as fh:
                        fh.write(text)
            result["files"].append(path)
    return result


if __name__ == "__main__":
    main()
