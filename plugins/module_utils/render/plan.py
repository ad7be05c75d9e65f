# Copyright: llm-d wide-EP collection contributors
# Apache-2.0
"""The plan: everything the topology model implies, computed once and read by every role, module and playbook
after the topology step - the objects to apply, the chart values, `refs` (the name of every object and release
the deployment has or points at) and `needs` (what the cluster must serve for it). Nothing downstream rebuilds
a name or re-tests a provider: it reads the plan."""
from __future__ import annotations

import os

from ansible_collections.llmd.wide_ep.plugins.module_utils import yamlout
from ansible_collections.llmd.wide_ep.plugins.module_utils.k8s.client import ref
from ansible_collections.llmd.wide_ep.plugins.module_utils.k8s.disaggregatedset import DS_API
from ansible_collections.llmd.wide_ep.plugins.module_utils.render import (
    gateways,
    manifests,
    providers,
    routing,
    topology,
)

POOL_API = "inference.networking.k8s.io/v1"
LWS_API = "leaderworkerset.x-k8s.io/v1"
GATEWAY_API = "gateway.networking.k8s.io/v1"


def refs(topo):
    """Every name and reference of the deployment, by what it is."""
    ns = topo.namespace
    gateway = gateways.get(topo.gateway).gateway_class is not None
    ds = topo.workload == "disaggregatedset"
    return {
        "namespace": ns,
        "release": topo.release,
        "pool": ref(POOL_API, "InferencePool", topo.release, ns),
        "epp": ref("apps/v1", "Deployment", topo.epp_name, ns),
        "epp_service": ref("v1", "Service", topo.epp_name, ns),
        "workload": topo.workload,
        # The DisaggregatedSet's LeaderWorkerSets are its controller's, named by revision (<ds>-<rev>-<role>):
        # readers find them with k8s.disaggregatedset.resolve_refs, so no name here can go stale.
        "leaderworkersets": {} if ds else {
            r.name: ref(LWS_API, "LeaderWorkerSet", manifests.LWS_NAME[r.name], ns) for r in topo.roles},
        "disaggregatedset": ref(DS_API, "DisaggregatedSet", manifests.DS_NAME, ns) if ds else None,
        # The other workload of the same guide: never run beside this one (the GPUs twice); upgrade.yml moves it.
        "replaces": [ref(LWS_API, "LeaderWorkerSet", manifests.LWS_NAME[r.name], ns) for r in topo.roles] if ds
        else [ref(DS_API, "DisaggregatedSet", manifests.DS_NAME, ns)],
        "gateway": ref(GATEWAY_API, "Gateway", manifests.GATEWAY_NAME, ns) if gateway else None,
        # Without a Gateway, llm-d-router's standalone chart is the way in: Envoy beside the EPP, port 80 of its
        # Service (the guide's verification calls <release>-epp).
        "standalone_entry": ref("v1", "Service", topo.epp_name, ns)
        if not gateway and "llm-d-router-standalone" in topo.profile.charts else None,
        # The llm-d-router gateway chart makes the HTTPRoute; the GAIE charts it descends from (GAIE v1.5.0
        # config/charts/inferencepool) name it, like the pool, after the release.
        "route": ref(GATEWAY_API, "HTTPRoute", topo.release if topo.profile.chart_makes_route
                     else manifests.ROUTE_NAME, ns) if gateway else None,
    }


def needs(topo):
    """What the cluster must serve for these objects. GKE's chart provider monitors the EPP with a Managed
    Prometheus PodMonitoring; elsewhere the chart's ServiceMonitor and CoreWeave's PodMonitors need the Prometheus
    Operator's CRDs."""
    api, kind = gateways.get(topo.gateway).epp_monitor
    epp_kinds = [kind] if topo.epp_prometheus else []
    kinds = epp_kinds + (["PodMonitor"] if topo.pod_monitors else [])
    version, manifest = topo.profile.inference_crds
    return {"monitoring_api": api if kinds else None, "monitoring_kinds": kinds, "pod_monitors": topo.pod_monitors,
            # GKE's HttpLoadBalancing add-on installs and manages the Gateway API and InferencePool CRDs itself.
            "gateway_api_crds": not providers.get(topo.provider).platform_managed_crds,
            "inference_crds": {"version": version, "manifest": manifest},
            "gateway_api_version": topo.profile.gateway_api,
            # LWS 0.9.0 serves the DisaggregatedSet; its chart's enableDisaggregatedSet adds the validating webhook
            "disaggregatedset": topo.workload == "disaggregatedset",
            "lws_min_version": "0.9.0" if topo.workload == "disaggregatedset" else None,
            # driver branches that break a kernel the model servers run, on this provider (the cluster preflight)
            "driver_blocklist": [dict(r) for r in providers.get(topo.provider).driver_blocklist],
            # RDMA over Converged Ethernet, InfiniBand, none; None where the provider's record cannot say
            "fabric": providers.get(topo.provider).fabric,
            # the pods attach GKE networks, whose Network objects the cluster preflight looks for
            "gke_networks": manifests.overlay(topo).gke_networking}


WORKLOAD_KINDS = ("LeaderWorkerSet", "DisaggregatedSet")


def render(settings):
    """Validate the settings (wide_ep_* without the prefix) and return the plan. Raises TopologyError."""
    topo = topology.build(settings)
    model_servers = manifests.model_server_objects(topo)
    namespace, pod_monitors = [ref("v1", "Namespace", topo.namespace)], manifests.pod_monitors(topo)
    out = {
        "warnings": list(topo.warnings),
        "summary": topo.summary(),
        "refs": refs(topo),
        "needs": needs(topo),
        "groups": groups(topo),
        "objects": {
            "namespace": namespace,
            "model_servers": model_servers,
            "leaderworkersets": [o for o in model_servers if o["kind"] == "LeaderWorkerSet"],
            "workloads": [o for o in model_servers if o["kind"] in WORKLOAD_KINDS],
            "pod_monitors": pod_monitors,
            "gateway": routing.gateway_objects(topo),
            # what the modelserver role applies before the workloads (the namespace, their ServiceAccount, the
            # PodMonitors)
            "support": namespace + [o for o in model_servers if o["kind"] not in WORKLOAD_KINDS] + pod_monitors,
        },
        "router": routing.router(topo),
    }
    if out["router"]["chart"] == "inferencepool":   # what the v0.5.0 roles apply
        out["inferencepool_values"] = out["router"]["chart_values"]
    return out


def groups(topo):
    """The roles as GPU capacity groups: name, namespace, replicas, group size, GPUs per pod; a DisaggregatedSet's
    also its name and the role (its groups are those of its LeaderWorkerSets of that role)."""
    if topo.workload == "disaggregatedset":
        return [{"name": "%s/%s" % (manifests.DS_NAME, r.name), "namespace": topo.namespace, "replicas": r.replicas,
                 "group_size": r.group_size, "gpus_per_pod": r.gpus_per_pod, "disaggregatedset": manifests.DS_NAME,
                 "role": r.name} for r in topo.roles]
    return [{"name": manifests.LWS_NAME[r.name], "namespace": topo.namespace, "replicas": r.replicas,
             "group_size": r.group_size, "gpus_per_pod": r.gpus_per_pod} for r in topo.roles]


EXPORT_ORDER = ("namespace", "model_servers", "pod_monitors", "gateway")


def export(plan, directory, check=False):
    """Write one file per object; return (changed, files, diffs). In check mode write nothing and say what would
    change. Only files this function names are ever removed."""
    wanted = {}
    objects = [o for group in EXPORT_ORDER for o in plan["objects"][group]]
    for i, obj in enumerate(objects, start=1):
        name = "%02d-%s-%s.yaml" % (i, obj["kind"].lower(), obj["metadata"]["name"])
        wanted[name] = yamlout.dump(obj)
    wanted["%s-values.yaml" % plan["router"]["chart"]] = yamlout.dump(plan["router"]["chart_values"])
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
