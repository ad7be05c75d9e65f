#!/usr/bin/python
# Copyright: llm-d wide-EP collection contributors
# Apache-2.0
from __future__ import annotations

DOCUMENTATION = r"""
module: helm_release
short_description: Install, upgrade or uninstall one helm release, idempotently and with an honest check mode
description:
  - Installs or upgrades a chart as a helm release when its chart version, its user-supplied values or its status
    differ from the request; otherwise changes nothing. Check mode renders the upgrade server-side
    (C(helm upgrade --dry-run=server)), so a chart that the cluster would reject fails in check mode too.
  - Used by the lws, gateway_provider and monitoring roles. The chart source is an OCI reference, a chart name in
    a repository (O(chart_repo_url)), or a local chart directory or C(.tgz) (air-gapped sites, tests).
version_added: 0.1.0
author: llm-d wide-EP collection contributors (@llm-d)
options:
  release: {description: Release name., type: str, required: true}
  namespace: {description: Namespace of the release., type: str, required: true}
  chart_ref:
    description: OCI reference, chart name in O(chart_repo_url), or local path. Required with O(state=present).
    type: str
  chart_repo_url: {description: Helm repository URL for a chart name., type: str}
  chart_version:
    description: Chart version (ignored for a local chart, whose own version is used).
    type: str
  values: {description: Chart values., type: dict, default: {}}
  create_namespace: {description: Create the namespace when missing., type: bool, default: false}
  take_ownership:
    description: Adopt existing objects that helm does not own (C(helm --take-ownership)), to replace an install
      made another way.
    type: bool
    default: false
  state:
    description:
      - C(present) installs or upgrades; C(absent) uninstalls; C(rolled_back) returns the release to the revision
        before its last one (C(helm rollback)), waiting for it when O(wait). Fails when there is no earlier
        revision.
    type: str
    choices: [present, absent, rolled_back]
    default: present
  wait: {description: Let helm wait for the release's resources., type: bool, default: false}
  wait_timeout: {description: Seconds for the upgrade., type: int, default: 300}
extends_documentation_fragment:
  - llmd.wide_ep.k8s
  - llmd.wide_ep.k8s.helm
"""

EXAMPLES = r"""
- name: LeaderWorkerSet controller, the guide's pin
  llmd.wide_ep.helm_release:
    release: lws
    namespace: lws-system
    create_namespace: true
    chart_ref: oci://registry.k8s.io/lws/charts/lws
    chart_version: "0.7.0"
    wait: true
"""

RETURN = r"""
release:
  description: The release after the call (chart, version, status, revision).
  returned: when state is present
  type: dict
rolled_back_to:
  description: The revision the release was returned to.
  returned: when state is rolled_back
  type: int
before:
  description: The release before the call, or null.
  returned: always
  type: dict
"""


from ansible_collections.llmd.wide_ep.plugins.module_utils.k8s.helm import (
    RELEASE_ARG_SPEC,
    Helm,
    release_state,
)
from ansible_collections.llmd.wide_ep.plugins.module_utils.runner import run_module


def main():
    run_module(dict(RELEASE_ARG_SPEC, chart_repo_url={"type": "str"},
                    create_namespace={"type": "bool", "default": False},
                    take_ownership={"type": "bool", "default": False}),
               lambda ctx: release_state(Helm(ctx.module, ctx.params["helm_binary"], ctx.params, client=ctx.client),
                                         ctx.module, ctx.params),
               supports_check_mode=True, required_if=[("state", "present", ["chart_ref"])])


if __name__ == "__main__":
    main()
