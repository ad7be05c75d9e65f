# Copyright: llm-d wide-EP collection contributors
# Apache-2.0
"""Action plugin of `role_arguments`: the argument specs of a play's roles checked together, in one task, before
the first of them runs.

A role listed under `roles:` checks its own spec as its first task: a playbook of many roles pays one task per
role (site.yml: 12 of them), and a wrong value for the last role is found after the first ones changed
the cluster. A play that imports its roles with `rolespec_validate: false` runs this task first instead: the same
specs (each role's meta/argument_specs.yml, entry point main), the same checks (ArgumentSpecValidator, as
ansible.builtin.validate_argument_spec), every role's errors in one message.
"""
from __future__ import annotations

import os

import yaml
from ansible.errors import AnsibleActionFail
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.plugins.action import ActionBase

ROLES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "roles")
COLLECTION = "llmd.wide_ep."
LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _spec_path(role):
    return os.path.join(ROLES, role, "meta", "argument_specs.yml")


def _main_options(role):
    with open(_spec_path(role), encoding="utf-8") as fh:
        specs = yaml.load(fh, Loader=LOADER)["argument_specs"]  # C or Python SafeLoader
    return (specs.get("main") or {}).get("options") or {}


# Every role's spec, read here: the strategy loads this plugin in ansible-playbook's main process, and each task's
# worker is forked from it and finds them read.
_SPECS = {role: _main_options(role) for role in sorted(os.listdir(ROLES)) if os.path.isfile(_spec_path(role))}


def role_options(role):
    """The options of `role`'s main entry point (its meta/argument_specs.yml); a role without one is an error."""
    if role not in _SPECS:
        raise AnsibleActionFail("role_arguments: %s is not a role of llmd.wide_ep with an argument spec "
                                "(no %s)" % (COLLECTION + role, os.path.normpath(_spec_path(role))))
    return _SPECS[role]


class ActionModule(ActionBase):

    TRANSFERS_FILES = False
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        roles = self._task.args.get("roles")
        if not isinstance(roles, list) or not roles or not all(isinstance(r, str) for r in roles):
            raise AnsibleActionFail("role_arguments: roles must be a non-empty list of role names, got %r" % (roles,))
        specs = {role: role_options(role.removeprefix(COLLECTION)) for role in roles}
        names = {name for options in specs.values() for name in options if name in task_vars}
        # each variable templated once, however many roles declare it (most declare the plan)
        values = self._templar.template({name: task_vars[name] for name in names})
        errors = []
        for role, options in specs.items():
            checked = ArgumentSpecValidator(options).validate(
                {name: values[name] for name in options if name in values})
            errors += ["%s: %s" % (role, message) for message in checked.error_messages]
        if errors:
            return dict(result, failed=True, argument_errors=errors,
                        msg="Validation of arguments failed (nothing was changed):\n" + "\n".join(errors))
        return dict(result, changed=False, msg="arguments of %d roles checked" % len(specs))
