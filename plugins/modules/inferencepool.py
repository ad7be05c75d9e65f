#!/usr/bin/python
# Copyright: llm-d wide-EP collection contributors
# Apache-2.0
from __future__ import annotations

DOCUMENTATION = r"""
module: inferencepool
short_description: Install or upgrade the InferencePool helm release and check the pool and its endpoint picker
description:
  - Installs or upgrades the gateway-api-inference-extension C(inferencepool) chart as a helm release, as the
    guide does, so C(helm list) shows it; then reads the InferencePool object and the EPP Deployment back from
    the API server, and with O(wait) waits until the EPP is available.
  - The release is upgraded only when its chart version, its user-supplied values or its status differ from the
    request. Check mode renders the upgrade server-side (C(--dry-run=server)) and changes nothing. C(--diff)
    shows the chart version and values before and after.
  - Take O(values) from M(llmd.wide_ep.topology), which derives the selector, target ports, EPP image and
    plugin configuration and C(provider.name) from the inventory.
version_added: 0.1.0
author: llm-d wide-EP collection contributors (@llm-d)
options:
  refs:
    description:
      - The plan's references (C(wide_ep_plan.refs)) - C(release), C(namespace), C(pool) and C(epp) name the helm
        release, its InferencePool and its EPP Deployment.
    type: dict
    required: true
  chart_ref:
    description:
      - The chart (C(wide_ep_plan.router.chart_ref), the release profile's). An OCI reference in production, or a
        local chart directory or C(.tgz) for air-gapped sites. Required with O(state=present).
    type: str
  chart_version:
    description:
      - Chart version (C(wide_ep_plan.router.chart_version)). Ignored for a local chart, whose own version is used.
        Required with O(state=present).
    type: str
  values: {description: Chart values., type: dict, default: {}}
  state:
    description:
      - C(present) installs or upgrades; C(absent) uninstalls; C(rolled_back) returns the release to its revision
        before the last one (C(helm rollback), waiting when O(wait)) - what a failed chart upgrade does.
    type: str
    choices: [present, absent, rolled_back]
    default: present
  wait: {description: Wait until the EPP Deployment is available., type: bool, default: true}
  expect:
    description:
      - What the InferencePool must select, read back after the release (not in check mode) - proof the chart
        rendered the plan's pool. The task fails naming both when it does not.
    type: dict
    suboptions:
      selector: {description: The pool's C(selector.matchLabels) (C(wide_ep_plan.router.selector))., type: dict}
      target_ports:
        description: The pool's C(targetPorts) numbers, in order (C(wide_ep_plan.summary.target_ports)).
        type: list
        elements: int
  wait_timeout: {description: Seconds to wait for the upgrade and for the EPP., type: int, default: 300}
extends_documentation_fragment:
  - llmd.wide_ep.k8s
  - llmd.wide_ep.k8s.helm
"""

EXAMPLES = r"""
- name: InferencePool and EPP from the plan, the chart from a local copy (air-gapped)
  llmd.wide_ep.inferencepool:
    refs: "{{ wide_ep_plan.refs }}"
    values: "{{ wide_ep_plan.router.chart_values }}"
    chart_ref: /srv/charts/inferencepool-v1.3.0.tgz
    chart_version: "{{ wide_ep_plan.router.chart_version }}"
    expect:
      selector: "{{ wide_ep_plan.router.selector }}"
      target_ports: "{{ wide_ep_plan.summary.target_ports }}"

- name: Return the release to its revision before a failed upgrade
  llmd.wide_ep.inferencepool:
    refs: "{{ wide_ep_plan.refs }}"
    state: rolled_back
"""

RETURN = r"""
release:
  description: The inferencepool release as helm lists it after the call - chart, version, status, revision.
  returned: when state is present or rolled_back
  type: dict
inferencepool:
  description: The InferencePool's spec as stored by the API server (selector, targetPorts, endpointPickerRef).
  returned: when state is present and not in check mode
  type: dict
epp:
  description: The EPP Deployment's readiness.
  returned: when state is present and not in check mode
  type: str
"""


from ansible_collections.llmd.wide_ep.plugins.module_utils.k8s.client import describe
from ansible_collections.llmd.wide_ep.plugins.module_utils.k8s.errors import K8sError
from ansible_collections.llmd.wide_ep.plugins.module_utils.k8s.helm import (
    RELEASE_ARG_SPEC,
    Helm,
    release_state,
)
from ansible_collections.llmd.wide_ep.plugins.module_utils.k8s.readiness import readiness, wait_ready
from ansible_collections.llmd.wide_ep.plugins.module_utils.progress import Progress
from ansible_collections.llmd.wide_ep.plugins.module_utils.render import routing
from ansible_collections.llmd.wide_ep.plugins.module_utils.render.refs import check, name
from ansible_collections.llmd.wide_ep.plugins.module_utils.runner import run_module


def main():
    spec = dict(RELEASE_ARG_SPEC)
    # The plan names the release; the chart comes from the plan too; wait covers the EPP.
    del spec["release"], spec["namespace"]
    spec.update(refs={"type": "dict", "required": True}, chart_ref={"type": "str"}, chart_version={"type": "str"},
                wait={"type": "bool", "default": True},
                expect={"type": "dict", "options": {"selector": {"type": "dict"},
                                                    "target_ports": {"type": "list", "elements": "int"}}})
    run_module(spec, pool_release, supports_check_mode=True,
               required_if=[("state", "present", ("chart_ref", "chart_version"))])


def pool_release(ctx):
    p = ctx.params
    refs = check(p["refs"], "pool", "epp")
    p.update(release=refs["release"], namespace=refs["namespace"])
    result = release_state(Helm(ctx.module, p["helm_binary"], p, client=ctx.client), ctx.module, p)
    if p["state"] == "present" and not ctx.check_mode:
        result.update(_verify(ctx.client, p, refs))
    return result


def _verify(client, p, refs):
    """Read the pool and the EPP back: proof the chart produced what the gateway will route to."""
    pool = client.get(refs["pool"])
    if pool is None:
        raise K8sError("the release is deployed but InferencePool %s/%s does not exist" % (
            refs["namespace"], name(refs["pool"])))
    wrong = routing.pool_mismatch(pool.get("spec", {}), p.get("expect") or {})
    if wrong:
        raise K8sError("InferencePool %s/%s does not match the topology: %s" % (
            refs["namespace"], name(refs["pool"]), wrong))
    progress = Progress()
    if p["wait"]:
        epp = wait_ready(client, [refs["epp"]], p["wait_timeout"], 2.0, progress)[describe(refs["epp"])]
    else:
        epp = client.get(refs["epp"])
        if epp is None:
            raise K8sError("the release is deployed but the EPP Deployment %s does not exist" % name(refs["epp"]))
    return {"inferencepool": pool.get("spec", {}), "epp": readiness(epp)[1], "progress": progress}


if __name__ == "__main__":
    main()
