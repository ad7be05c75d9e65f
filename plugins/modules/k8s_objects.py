#!/usr/bin/python
# Copyright: llm-d wide-EP collection contributors
# Apache-2.0
from __future__ import annotations

DOCUMENTATION = r"""
module: k8s_objects
short_description: Apply or delete many Kubernetes objects in one call with server-side apply
description:
  - Applies every object in O(definitions) over one API connection, with a named field manager, after checking
    that the API server serves each kind. Nothing is changed when any definition is invalid.
  - Used by the collection's roles for Namespaces, ServiceAccounts, PodMonitors, Gateways and HTTPRoutes.
version_added: 0.1.0
author: llm-d wide-EP collection contributors (@llm-d)
options:
  definitions:
    description: Objects to apply, each a full manifest.
    type: list
    elements: dict
    default: []
  src:
    description:
      - YAML files of objects to apply after O(definitions), one or more documents each; a directory stands for
        its C(*.yaml) and C(*.yml) files, an C(http://) or C(https://) URL for the file it serves (fetched on the
        controller with Ansible's C(module_utils.urls), with its proxy variables and certificates verified). Read with
        libyaml, much faster than templating megabytes of CRDs through C(from_yaml_all).
    type: list
    elements: str
    default: []
  src_timeout:
    description: Seconds to wait for each URL of O(src).
    type: int
    default: 60
  namespace:
    description: Namespace for namespaced objects that name none.
    type: str
  keep_newer_bundles:
    description:
      - Leave out each CustomResourceDefinition whose bundle-version annotation (C(gateway.networking.k8s.io/),
        C(inference.networking.k8s.io/bundle-version)) is older than the installed one's, and say so in
        RV(kept) - never downgrade the Gateway API or inference CRDs another deployment may need (Gateway API
        v1.5's safe-upgrades policy refuses it anyway).
    type: bool
    default: false
  replaces:
    description:
      - Objects of another workload of the same deployment (the plan's C(refs.replaces)). Before the first object
        that would change, each is read, and while one exists the change is refused, naming the move - the
        model servers' support objects (Namespace, ServiceAccount, PodMonitors) are not changed for a workload
        that would be refused next. Nothing is read when nothing would change.
    type: list
    elements: dict
    default: []
  workloads:
    description: The workload O(replaces) would run beside (the plan's C(objects.workloads)), named in the refusal.
    type: list
    elements: dict
    default: []
extends_documentation_fragment:
  - llmd.wide_ep.k8s
  - llmd.wide_ep.k8s.APPLY
"""

EXAMPLES = r"""
- name: Namespace and ServiceAccount of the model servers
  llmd.wide_ep.k8s_objects:
    definitions:
      - {apiVersion: v1, kind: Namespace, metadata: {name: llm-d-wide-ep}}
      - {apiVersion: v1, kind: ServiceAccount, metadata: {name: deepseek-r1, namespace: llm-d-wide-ep}}
"""

RETURN = r"""
results:
  description: One entry per object, in order.
  returned: always
  type: list
  elements: dict
  sample: [{kind: ServiceAccount, name: deepseek-r1, namespace: llm-d-wide-ep, changed: false}]
kept:
  description: The CustomResourceDefinitions left out by O(keep_newer_bundles), each with both versions.
  returned: when one was left out
  type: list
  elements: str
api_requests:
  description: HTTP requests made to the API server by this call.
  returned: always
  type: int
progress:
  description: Readiness changes seen while waiting, with timestamps.
  returned: when O(wait) waited
  type: list
  elements: str
timings:
  description: Seconds and API requests spent applying, and then waiting; dry_runs counts the server-side dry
    runs among the apply requests (an object whose digest shows it unchanged needs none).
  returned: always
  type: dict
  sample: {apply_seconds: 0.41, apply_requests: 12, dry_runs: 0, wait_seconds: 2.1, wait_requests: 8}
"""

from ansible_collections.llmd.wide_ep.plugins.module_utils.day2.guards import refuse_beside_the_other_workload
from ansible_collections.llmd.wide_ep.plugins.module_utils.k8s import apply, sources
from ansible_collections.llmd.wide_ep.plugins.module_utils.k8s.apply import APPLY_ARG_SPEC
from ansible_collections.llmd.wide_ep.plugins.module_utils.progress import Progress
from ansible_collections.llmd.wide_ep.plugins.module_utils.runner import run_module


def main():
    run_module(dict(APPLY_ARG_SPEC, definitions={"type": "list", "elements": "dict", "default": []},
                    src={"type": "list", "elements": "str", "default": []},
                    src_timeout={"type": "int", "default": 60}, namespace={"type": "str"},
                    keep_newer_bundles={"type": "bool", "default": False},
                    replaces={"type": "list", "elements": "dict", "default": []},
                    workloads={"type": "list", "elements": "dict", "default": []}),
               apply_objects, supports_check_mode=True, required_one_of=[("definitions", "src")])


def apply_objects(ctx):
    objects = ctx.params["definitions"] + sources.read(ctx.params["src"], ctx.params["src_timeout"])
    kept, seen = [], {}
    if ctx.params["keep_newer_bundles"]:
        objects, kept = apply.keep_newer_bundles(ctx.client, objects, seen)
        for line in kept:                 # shown live and kept in the result's progress
            Progress().live(line)
    replaces, workloads = ctx.params["replaces"], ctx.params["workloads"]

    def guard(client, obj):
        refuse_beside_the_other_workload(client, (workloads or [obj])[0], replaces)

    out = apply.run(ctx.module, objects, client=ctx.client, before_change=guard if replaces else None, known=seen)
    if kept:
        out["kept"] = kept
        out["progress"] = kept + list(out.get("progress", []))
    return out


if __name__ == "__main__":
    main()
