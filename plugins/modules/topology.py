#!/usr/bin/python
# Copyright: llm-d wide-EP collection contributors
# Apache-2.0
from __future__ import annotations

DOCUMENTATION = r"""
module: topology
short_description: Validate the wide-EP topology and render every object of the deployment
description:
  - Builds the collection's one topology model (DP/EP/TP sizes, ranks, ports, labels, selectors) from the
    inventory's C(wide_ep_*) settings, validates it, and renders the model-server LeaderWorkerSets, their
    ServiceAccount and PodMonitors, the Gateway and HTTPRoute, and the InferencePool chart values.
  - Talks to no cluster and changes nothing. All problems are reported together, each naming the inventory
    variable and the valid values.
version_added: 0.1.0
author: llm-d wide-EP collection contributors (@llm-d)
options:
  settings:
    description:
      - The C(wide_ep_*) variables without their prefix, for example C(provider), C(dp_mode), C(gateway),
        C(namespace), C(model), C(model_label), C(images), C(prefill), C(decode), C(ports), C(node_gpus),
        C(routed_experts), C(redundant_experts). See the C(topology) role's argument spec for each.
    type: dict
    required: true
  release:
    description: Helm release name of the InferencePool; it names the pool, the EPP and the route's backend.
    type: str
    default: llm-d-infpool
  epp_prometheus:
    description: Whether the EPP chart creates a ServiceMonitor (needs the monitoring.coreos.com CRDs).
    type: bool
    default: true
  export_dir:
    description:
      - When set, also write every object to this directory, one YAML file per object in apply order, plus
        C(inferencepool-values.yaml). Files of an earlier export that are no longer rendered are removed.
    type: path
"""

EXAMPLES = r"""
- name: Validate and render
  llmd.wide_ep.topology:
    settings:
      provider: coreweave
      dp_mode: dp-aware
      gateway: istio
      namespace: llm-d-wide-ep
      model: deepseek-ai/DeepSeek-R1-0528
      model_label: DeepSeek-R1-0528
  register: plan
"""

RETURN = r"""
summary:
  description: Derived numbers per role (DP size, start ranks, ports, GPUs) and the InferencePool target ports.
  returned: always
  type: dict
objects:
  description: Rendered objects by group, in apply order.
  returned: always
  type: dict
  contains:
    namespace:
      description: The Namespace.
      type: list
    model_servers:
      description: ServiceAccount and the prefill/decode LeaderWorkerSets.
      type: list
    leaderworkersets:
      description: The LeaderWorkerSets alone.
      type: list
    pod_monitors:
      description: PodMonitors (CoreWeave overlay only).
      type: list
    gateway:
      description: Gateway, HTTPRoute and the gateway's parameters object.
      type: list
needs:
  description:
    - What the cluster must serve, C(monitoring_api) (the API group/version of the monitoring objects, or null when
      there are none) and C(monitoring_kinds).
  returned: always
  type: dict
inferencepool_values:
  description: Values for the inferencepool chart.
  returned: always
  type: dict
files:
  description: Files written under O(export_dir).
  returned: when O(export_dir) is set
  type: list
  elements: str
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.llmd.wide_ep.plugins.module_utils import manifests, routing, topology, yamlout


def render(settings, release="llm-d-infpool", epp_prometheus=True):
    topo = topology.build(dict(settings, release=release))
    model_servers = manifests.model_server_objects(topo)
    return {
        "summary": topo.summary(),
        "objects": {
            "namespace": [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": topo.namespace}}],
            "model_servers": model_servers,
            "leaderworkersets": [o for o in model_servers if o["kind"] == "LeaderWorkerSet"],
            "pod_monitors": manifests.pod_monitors(topo),
            "gateway": routing.gateway_objects(topo, release),
        },
        "inferencepool_values": routing.inferencepool_values(topo, release, epp_prometheus),
        "needs": needs(topo, epp_prometheus),
    }


def needs(topo, epp_prometheus):
    """What the cluster must serve for these objects. GKE's chart provider monitors the EPP with a Managed
    Prometheus PodMonitoring; elsewhere the chart's ServiceMonitor and CoreWeave's PodMonitors need the Prometheus
    Operator's CRDs."""
    gke = routing.CHART_PROVIDER[topo.gateway] == "gke"
    api = "monitoring.googleapis.com/v1" if gke else "monitoring.coreos.com/v1"
    kinds = (["PodMonitoring"] if gke and epp_prometheus else ["ServiceMonitor"] if epp_prometheus else []) + \
        sorted({o["kind"] for o in manifests.pod_monitors(topo)})
    return {"monitoring_api": api if kinds else None, "monitoring_kinds": kinds}


EXPORT_ORDER = ("namespace", "model_servers", "pod_monitors", "gateway")
VALUES_FILE = "inferencepool-values.yaml"


def export(result, directory, check=False):
    """Write one file per object; return (changed, files, diffs). In check mode write nothing and say what would
    change. Only files this module names are ever removed."""
    wanted = {}
    objects = [o for group in EXPORT_ORDER for o in result["objects"][group]]
    for i, obj in enumerate(objects, start=1):
        name = "%02d-%s-%s.yaml" % (i, obj["kind"].lower(), obj["metadata"]["name"])
        wanted[name] = yamlout.dump(obj)
    wanted[VALUES_FILE] = yamlout.dump(result["inferencepool_values"])
    present = os.listdir(directory) if os.path.isdir(directory) else []
    diffs = []
    for name in present:
        stale = name not in wanted and name.endswith(".yaml") and name[:2].isdigit() and name[2] == "-"
        if stale:
            path = os.path.join(directory, name)
            with open(path) as fh:
                diffs.append({"before_header": path, "after_header": path, "before": fh.read(), "after": ""})
            if not check:
                os.unlink(path)
    for name, text in wanted.items():
        path = os.path.join(directory, name)
        before = ""
        if os.path.exists(path):
            with open(path) as fh:
                before = fh.read()
            if before == text:
                continue
        diffs.append({"before_header": path, "after_header": path, "before": before, "after": text})
        if not check:
            os.makedirs(directory, exist_ok=True)
            with open(path, "w") as fh:
                fh.write(text)
    return bool(diffs), sorted(os.path.join(directory, n) for n in wanted), diffs


def main():
    module = AnsibleModule(argument_spec={
        "settings": {"type": "dict", "required": True},
        "release": {"type": "str", "default": "llm-d-infpool"},
        "epp_prometheus": {"type": "bool", "default": True},
        "export_dir": {"type": "path"},
    }, supports_check_mode=True)
    p = module.params
    try:
        result = render(p["settings"], p["release"], p["epp_prometheus"])
    except topology.TopologyError as exc:
        module.fail_json(msg=str(exc), problems=exc.problems)
    changed = False
    if p["export_dir"]:
        changed, result["files"], diffs = export(result, p["export_dir"], check=module.check_mode)
        if module._diff and diffs:
            result["diff"] = diffs
    module.exit_json(changed=changed, **result)


if __name__ == "__main__":
    main()
