#!/usr/bin/python
# Copyright: llm-d wide-EP collection contributors
# Apache-2.0
from __future__ import annotations

DOCUMENTATION = r"""
module: role_arguments
short_description: Check the argument specs of several roles of the collection in one task, before their first change
description:
  - For a play that imports the collection's roles with C(rolespec_validate=false) (as C(site.yml) does), checks
    the variables each named role reads against that role's C(meta/argument_specs.yml) (entry point C(main)), the
    checks Ansible runs as a role's first task when the role is listed under C(roles), and fails once with every
    role's errors, each prefixed by its role, before the first role changes anything.
  - C(site.yml) runs it right after the topology role, which changes nothing, validates the settings itself and
    makes the plan the later roles' defaults read.
  - Each variable is templated once, however many roles declare it.
  - Runs on the controller (an action plugin); changes nothing; supports check mode.
version_added: 0.5.0
author: llm-d wide-EP collection contributors (@llm-d)
options:
  roles:
    description:
      - The roles of the collection whose specs to check, in play order, as C(llmd.wide_ep.NAME) or C(NAME).
    type: list
    elements: str
    required: true
"""

EXAMPLES = r"""
- name: The settings every play shares
  ansible.builtin.import_role:
    name: llmd.wide_ep.wide_ep_defaults
    rolespec_validate: false

- name: The plan
  ansible.builtin.import_role:
    name: llmd.wide_ep.topology
    rolespec_validate: false

- name: Check every role's arguments before the first change
  llmd.wide_ep.role_arguments:
    roles: [llmd.wide_ep.wide_ep_defaults, llmd.wide_ep.lws]
"""

RETURN = r"""
msg:
  description: How many roles were checked, or every error, one line each, prefixed by its role.
  returned: always
  type: str
argument_errors:
  description: The errors, one per wrong or missing variable, each prefixed by its role.
  returned: failed
  type: list
  elements: str
"""
