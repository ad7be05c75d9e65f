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
  release:
    description: Release name; it also names the InferencePool and (with C(-epp)) the EPP.
    type: str
    default: llm-d-infpool
  namespace:
    description: Namespace of the release and of the model servers.
    type: str
    required: true
  chart_ref:
    description:
      - The chart. An OCI reference in production, or a local chart directory or C(.tgz) for air-gapped sites.
    type: str
    default: oci://registry.k8s.io/gateway-api-inference-extension/charts/inferencepool
  chart_version:
    description: Chart version. Ignored for a local chart, whose own version is used.
    type: str
    default: v1.3.0
  values:
    description: Chart values.
    type: dict
    default: {}
  state:
    description: C(present) installs or upgrades; C(absent) uninstalls.
    type: str
    choices: [present, absent]
    default: present
  helm_binary:
    description: Path or name of the helm 3 binary on the controller.
    type: str
    default: helm
  wait:
    description: Wait until the EPP Deployment is available.
    type: bool
    default: true
  wait_timeout:
    description: Seconds to wait for the upgrade and for the EPP.
    type: int
    default: 300
extends_documentation_fragment:
  - llmd.wide_ep.k8s
"""

EXAMPLES = r"""
- name: InferencePool and EPP
  llmd.wide_ep.inferencepool:
    namespace: llm-d-wide-ep
    values: "{{ plan.inferencepool_values }}"
"""

RETURN = r"""
release:
  description: The release after the call (chart, version, status, revision).
  returned: when state is present
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

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.llmd.wide_ep.plugins.module_utils.helm import (
    RELEASE_ARG_SPEC,
    Helm,
    HelmError,
    release_state,
)
from ansible_collections.llmd.wide_ep.plugins.module_utils.k8s import (
    AUTH_ARG_SPEC,
    Client,
    K8sError,
    readiness,
    wait_ready,
)
from ansible_collections.llmd.wide_ep.plugins.module_utils.progress import Progress


def main():
    spec = dict(AUTH_ARG_SPEC, **RELEASE_ARG_SPEC)
    # The guide's release and chart by default; wait covers the EPP too.
    spec.update(
        release={"type": "str", "default": "llm-d-infpool"},
        chart_ref={"type": "str", "default": "oci://registry.k8s.io/gateway-api-inference-extension/charts/inferencepool"},
        chart_version={"type": "str", "default": "v1.3.0"},
        wait={"type": "bool", "default": True},
    )
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True)
    p = module.params
    try:
        helm = Helm(module, p["helm_binary"], p["kubeconfig"], p["context"])
        result = release_state(helm, module, p)
        if p["state"] == "present" and not module.check_mode:
            result.update(_verify(p))
        module.exit_json(**result)
    except (HelmError, K8sError) as exc:
        module.fail_json(msg=str(exc))


def _verify(p):
    """Read the pool and the EPP back: proof the chart produced what the gateway will route to."""
    client = Client(p["kubeconfig"], p["context"])
    api_version = p["values"].get("inferencePool", {}).get("apiVersion", "inference.networking.k8s.io/v1")
    pool_ref = {"apiVersion": api_version, "kind": "InferencePool",
                "metadata": {"name": p["release"], "namespace": p["namespace"]}}
    pool = client.get(pool_ref)
    if pool is None:
        raise K8sError("the release is deployed but InferencePool %s/%s does not exist" % (
            p["namespace"], p["release"]))
    epp_ref = {"apiVersion": "apps/v1", "kind": "Deployment",
               "metadata": {"name": "%s-epp" % p["release"], "namespace": p["namespace"]}}
    progress = Progress()
    if p["wait"]:
        epp = wait_ready(client, [epp_ref], p["wait_timeout"], 2.0, progress)["Deployment %s/%s-epp" % (
            p["namespace"], p["release"])]
    else:
        epp = client.get(epp_ref)
        if epp is None:
            raise K8sError("the release is deployed but the EPP Deployment %s-epp does not exist" % p["release"])
    return {"inferencepool": pool.get("spec", {}), "epp": readiness(epp)[1], "progress": progress}


if __name__ == "__main__":
    main()
