#!/usr/bin/python
# Copyright: llm-d wide-EP collection contributors
# Apache-2.0
from __future__ import annotations

DOCUMENTATION = r"""
module: namespace_contents
short_description: List what in a namespace this collection did not create, before the namespace is deleted
description:
  - Lists every object of every namespaced resource the API server serves in O(namespace) and picks those this
    collection did not create - not written by an C(llmd.wide_ep) field manager, not part of one of O(releases),
    not owned by another object, not Kubernetes' own (C(kube-root-ca.crt), the C(default) ServiceAccount, events,
    endpoints).
  - Fails, listing them, when there are any and O(allow_foreign) is false; deleting the namespace would delete
    them too. Changes nothing.
version_added: 0.3.0
author: llm-d wide-EP collection contributors (@llm-d)
options:
  namespace: {description: The namespace to be deleted., type: str, required: true}
  releases:
    description: Helm releases the collection installed in the namespace (the InferencePool's).
    type: list
    elements: str
    default: []
  definitions:
    description: The objects the collection renders for this namespace (the plan's); they count as its own.
    type: list
    elements: dict
    default: []
  allow_foreign: {description: Only report the objects; do not fail., type: bool, default: false}
extends_documentation_fragment:
  - llmd.wide_ep.k8s
"""

EXAMPLES = r"""
- name: Refuse to delete a namespace that holds someone else's objects
  llmd.wide_ep.namespace_contents:
    namespace: llm-d-wide-ep
    releases: [llm-d-infpool]
"""

RETURN = r"""
foreign:
  description: C(Kind name) of every object the collection did not create.
  returned: always
  type: list
  elements: str
exists:
  description: Whether the namespace exists.
  returned: always
  type: bool
"""


from ansible_collections.llmd.wide_ep.plugins.module_utils.errors import WideEPError
from ansible_collections.llmd.wide_ep.plugins.module_utils.k8s import ownership
from ansible_collections.llmd.wide_ep.plugins.module_utils.runner import run_module


def main():
    run_module(dict(namespace={"type": "str", "required": True},
                    releases={"type": "list", "elements": "str", "default": []},
                    definitions={"type": "list", "elements": "dict", "default": []},
                    allow_foreign={"type": "bool", "default": False}),
               foreign_objects, supports_check_mode=True)


def foreign_objects(ctx):
    p, client = ctx.params, ctx.client
    if not client.namespace_exists(p["namespace"]):
        return {"changed": False, "exists": False, "foreign": []}
    found = ownership.foreign(client, p["namespace"], p["releases"], p["definitions"])
    if found and not p["allow_foreign"]:
        raise WideEPError(
            "deleting namespace %s would also delete %d object(s) this collection did not create: %s. Move or "
            "delete them first, or set teardown_delete_foreign: true to delete them with the namespace; nothing "
            "was deleted" % (p["namespace"], len(found), ", ".join(found)), foreign=found, exists=True)
    return {"changed": False, "exists": True, "foreign": found}


if __name__ == "__main__":
    main()
