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
    required: true
  namespace:
    description: Namespace for namespaced objects that name none.
    type: str
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
api_requests:
  description: HTTP requests made to the API server by this call.
  returned: always
  type: int
progress:
  description: Readiness changes seen while waiting, with timestamps.
  returned: when O(wait) waited
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.llmd.wide_ep.plugins.module_utils import apply
from ansible_collections.llmd.wide_ep.plugins.module_utils.k8s import APPLY_ARG_SPEC, AUTH_ARG_SPEC, K8sError


def main():
    spec = dict(AUTH_ARG_SPEC, **APPLY_ARG_SPEC)
    spec.update(definitions={"type": "list", "elements": "dict", "required": True}, namespace={"type": "str"})
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True)
    try:
        module.exit_json(**apply.run(module, module.params["definitions"]))
    except K8sError as exc:
        module.fail_json(msg=str(exc))


if __name__ == "__main__":
    main()
