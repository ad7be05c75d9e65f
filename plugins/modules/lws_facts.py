#!/usr/bin/python
# Copyright: llm-d wide-EP collection contributors
# Apache-2.0
from __future__ import annotations

DOCUMENTATION = r"""
module: lws_facts
short_description: Find an existing LeaderWorkerSet controller, how it was installed and its version
description:
  - Looks for the LeaderWorkerSet CRD, a helm release of the LWS chart, the C(lws-controller-manager) Deployment
    and the LWS webhook configurations, and says who manages the controller - C(helm), C(manifest) (a Deployment
    without a release, e.g. C(kubectl apply --server-side -f manifests.yaml)), C(external) (webhooks that call a
    URL, that is a controller outside the cluster) or C(none) - and which version runs.
  - Read-only.
version_added: 0.1.0
author: llm-d wide-EP collection contributors (@llm-d)
options:
  namespace:
    description: Namespace of the controller.
    type: str
    default: lws-system
  release:
    description: Helm release name of the chart.
    type: str
    default: lws
  helm_binary:
    description: helm 3 on the controller.
    type: str
    default: helm
extends_documentation_fragment:
  - llmd.wide_ep.k8s
"""

EXAMPLES = r"""
- name: Is LWS there already?
  llmd.wide_ep.lws_facts:
  register: lws
"""

RETURN = r"""
lws:
  description: What was found.
  returned: always
  type: dict
  contains:
    crd:
      description: The LeaderWorkerSet CRD exists.
      type: bool
    managed_by:
      description: helm, manifest, external or none.
      type: str
    version:
      description: Version without a leading v, or null when unknown.
      type: str
    webhook_url:
      description: URL the webhooks call, for an external controller.
      type: str
"""

import re

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.llmd.wide_ep.plugins.module_utils.helm import Helm, HelmError
from ansible_collections.llmd.wide_ep.plugins.module_utils.k8s import AUTH_ARG_SPEC, Client, K8sError

LWS_WEBHOOK_PATH = "/mutate-leaderworkerset-x-k8s-io-v1-leaderworkerset"


def _version(text):
    match = re.search(r"v?(\d+\.\d+\.\d+)", text or "")
    return match.group(1) if match else None


def main():
    spec = dict(AUTH_ARG_SPEC, namespace={"type": "str", "default": "lws-system"},
                release={"type": "str", "default": "lws"}, helm_binary={"type": "str", "default": "helm"})
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True)
    p = module.params
    try:
        client = Client(p["kubeconfig"], p["context"])
        crd = client.get({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
                          "metadata": {"name": "leaderworkersets.leaderworkerset.x-k8s.io"}}) is not None
        hooks = client.request("GET", "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations")
        url = None
        for config in hooks.get("items", []):
            for hook in config.get("webhooks", []):
                cc = hook.get("clientConfig", {})
                if (cc.get("url") or cc.get("service", {}).get("path", "")).endswith(LWS_WEBHOOK_PATH):
                    url = cc.get("url") or url
        deploy = client.get({"apiVersion": "apps/v1", "kind": "Deployment",
                             "metadata": {"name": "lws-controller-manager", "namespace": p["namespace"]}})
        helm = Helm(module, p["helm_binary"], p["kubeconfig"], p["context"])
        release = helm.release(p["release"], p["namespace"])
    except (K8sError, HelmError) as exc:
        module.fail_json(msg=str(exc))
    found = {"crd": crd, "managed_by": "none", "version": None, "webhook_url": url}
    if release:
        found.update(managed_by="helm", version=_version(release.get("app_version")) or _version(release["version"]))
    elif deploy:
        image = deploy["spec"]["template"]["spec"]["containers"][0].get("image", "")
        found.update(managed_by="manifest", version=_version(image.rpartition(":")[2]))
    elif url:
        found["managed_by"] = "external"
    module.exit_json(changed=False, lws=found)


if __name__ == "__main__":
    main()
