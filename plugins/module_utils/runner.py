# Copyright: llm-d wide-EP collection contributors
# Apache-2.0
"""The one way a module of this collection runs (as kubernetes.core's `fail_from_exception`): its argument spec
merged with the cluster access options, one API client made on first use, the body's result as the task result,
and one `except` - a domain error (errors.WideEPError) fails the task with its message; any other exception is a
bug and surfaces with its traceback."""
from __future__ import annotations

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.llmd.wide_ep.plugins.module_utils.errors import WideEPError


class Context:
    """What a module body gets: the module, its params, and the cluster client (made once, when first used)."""

    def __init__(self, module):
        self.module, self.params, self._client = module, module.params, None

    @property
    def check_mode(self):
        return self.module.check_mode

    @property
    def client(self):
        if self._client is None:
            from ansible_collections.llmd.wide_ep.plugins.module_utils.k8s.client import Client
            self._client = Client(self.params)
        return self._client


def run_module(argument_spec, body, cluster=True, **module_kwargs):
    """Build the module (with AUTH_ARG_SPEC when it talks to a cluster), run body(ctx) and exit with the dict it
    returns."""
    if cluster:   # imported here: modules on GPU hosts (no kubernetes client there) use the runner too
        from ansible_collections.llmd.wide_ep.plugins.module_utils.k8s.auth import AUTH_ARG_SPEC
        argument_spec = dict(AUTH_ARG_SPEC, **argument_spec)
    module = AnsibleModule(argument_spec=argument_spec, **module_kwargs)
    try:
        result = body(Context(module))
    except WideEPError as exc:
        module.fail_json(msg=str(exc), **exc.extra)
    module.exit_json(**result)
