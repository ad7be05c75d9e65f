# Copyright: llm-d wide-EP collection contributors
# Apache-2.0
"""InferencePool chart values and the Gateway/HTTPRoute recipe, rendered from a topology.Topology.

Values follow llm-d/llm-d@59bebce guides/wide-ep-lws/manifests/inferencepool.values.yaml (hybrid) and
dp-aware/manifests/inferencepool.values.yaml; the recipe follows guides/recipes/gateway.
"""
from __future__ import annotations

import copy

from ansible_collections.llmd.wide_ep.plugins.module_utils import yamlout
from ansible_collections.llmd.wide_ep.plugins.module_utils.k8s.disaggregatedset import SET_LABEL
from ansible_collections.llmd.wide_ep.plugins.module_utils.render import gateways, manifests, topology

ISTIO_TRAFFIC_POLICY = {
    "tls": {"mode": "SIMPLE", "insecureSkipVerify": True},
    "connectionPool": {
        "http": {"http1MaxPendingRequests": 256000, "maxRequestsPerConnection": 256000,
                 "http2MaxRequests": 256000, "idleTimeout": "900s"},
        "tcp": {"maxConnections": 256000, "maxConnectionDuration": "1800s", "connectTimeout": "900s"},
    },
}


def _plugin(ptype, **params):
    out = {"type": ptype}
    if params:
        out["parameters"] = params
    return out


def _profile(name, *refs):
    plugins = []
    for ref in refs:
        ref, weight = ref if isinstance(ref, tuple) else (ref, None)
        plugins.append({"pluginRef": ref} if weight is None else {"pluginRef": ref, "weight": weight})
    return {"name": name, "plugins": plugins}


def epp_config(topo):
    """The EndpointPickerConfig. Hybrid mode can't target a DP rank (one endpoint per pod), so it picks at
    random; DP-aware mode sees every (pod, port) and scores them. Threshold 0: always disaggregate P/D."""
    pd = _plugin("pd-profile-handler", threshold=0, hashBlockSize=5)
    if topo.dp_mode == "hybrid":
        plugins = [_plugin("prefill-header-handler"), _plugin("prefill-filter"), _plugin("decode-filter"),
                   _plugin("random-picker", maxNumOfEndpoints=1), pd]
        profiles = [_profile("prefill", "prefill-filter", "random-picker"),
                    _profile("decode", "decode-filter", "random-picker")]
    else:
        plugins = [_plugin("prefill-header-handler"), _plugin("prefill-filter"), _plugin("decode-filter"),
                   _plugin("prefix-cache-scorer"), _plugin("active-request-scorer"), _plugin("queue-scorer"), pd]
        profiles = [_profile("prefill", "prefill-filter", ("prefix-cache-scorer", 3), ("active-request-scorer", 2),
                             ("queue-scorer", 2)),
                    _profile("decode", "decode-filter", ("active-request-scorer", 1), ("queue-scorer", 1))]
    return {"apiVersion": "inference.networking.x-k8s.io/v1alpha1", "kind": "EndpointPickerConfig",
            "plugins": plugins, "schedulingProfiles": profiles}


def inferencepool_values(topo):
    image, dummy, tag = topo.images["epp"].rpartition(":")
    hub, dummy, name = image.rpartition("/")
    values = {
        "inferenceExtension": {
            "replicas": 1,
            "image": {"name": name, "hub": hub, "tag": tag},
            "extProcPort": 9002,
            "flags": {"kv-cache-usage-percentage-metric": "vllm:kv_cache_usage_perc", "v": 1},
            "monitoring": {"interval": "10s", "prometheus": {"enabled": topo.epp_prometheus}},
            "pluginsConfigFile": "custom-plugins.yaml",
            "pluginsCustomConfig": {"custom-plugins.yaml": yamlout.safe_dump(epp_config(topo), sort_keys=False)},
        },
        "inferencePool": {
            "modelServers": {"matchLabels": manifests.pool_selector(topo)},
        },
        "provider": {"name": gateways.get(topo.gateway).chart_provider},
    }
    if topo.target_ports != [topology.DEFAULT_PORTS["prefill"]]:   # the chart's default
        values["inferencePool"]["targetPorts"] = [{"number": p} for p in topo.target_ports]
    if values["provider"]["name"] == "istio":
        values["provider"]["istio"] = {"destinationRule": {"host": topo.epp_name,
                                                           "trafficPolicy": copy.deepcopy(ISTIO_TRAFFIC_POLICY)}}
    return values


def pool_mismatch(spec, expect):
    """What of `expect` (selector, target_ports) an InferencePool's spec does not have, in words; "" when all -
    read back after the release, proof the chart rendered the plan's pool."""
    got = {"selector": (spec.get("selector") or {}).get("matchLabels"),
           "target_ports": [t.get("number") for t in spec.get("targetPorts") or []]}
    return "; ".join("%s is %s, the plan's is %s" % (key, got[key], want)
                     for key, want in sorted(expect.items()) if want is not None and got[key] != want)


# --- Gateway + HTTPRoute recipe ---------------------------------------------------------------------------
def gateway_objects(topo):
    spec = gateways.get(topo.gateway)
    if spec.gateway_class is None:
        return []
    gateway = {
        "apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
        "metadata": {"name": manifests.GATEWAY_NAME, "namespace": topo.namespace},
        "spec": {"gatewayClassName": spec.gateway_class,
                 "listeners": [{"name": "default", "port": 80, "protocol": "HTTP",
                                "allowedRoutes": {"namespaces": {"from": "All"}}}]},
    }
    extra = []
    if spec.parameters == "ConfigMap":   # Istio
        gateway["metadata"]["labels"] = {"istio.io/enable-inference-extproc": "true"}
        gateway["spec"]["infrastructure"] = {"parametersRef": {"group": "", "kind": "ConfigMap",
                                                               "name": manifests.GATEWAY_NAME}}
        extra.append(istio_gateway_configmap(topo))
    if spec.parameters == "GatewayParameters":   # kgateway on OpenShift
        gateway["spec"]["infrastructure"] = {"parametersRef": {"group": "gateway.kgateway.dev",
                                                               "kind": "GatewayParameters", "name": "kgateway-params"}}
        extra.append(kgateway_openshift_parameters(topo))
    return extra + [gateway] + ([] if topo.profile.chart_makes_route else [route(topo)])


def route(topo):
    rule = {"matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
            "backendRefs": [{"group": "inference.networking.k8s.io", "kind": "InferencePool", "name": topo.release,
                             "port": topo.target_ports[0]}]}
    if gateways.get(topo.gateway).route_timeouts:
        rule["timeouts"] = {"backendRequest": "0s", "request": "0s"}  # GKE rejects them; GCPBackendPolicy: 300 s
    return {
        "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
        "metadata": {"name": manifests.ROUTE_NAME, "namespace": topo.namespace},
        "spec": {"parentRefs": [{"group": "gateway.networking.k8s.io", "kind": "Gateway",
                                 "name": manifests.GATEWAY_NAME}],
                 "rules": [rule]},
    }


def istio_gateway_configmap(topo):
    deployment = {"spec": {"template": {"spec": {"containers": [{
        "name": "istio-proxy",
        "args": ["proxy", "router", "--domain", "$(POD_NAMESPACE).svc.cluster.local", "--proxyLogLevel", "warn",
                 "--proxyComponentLogLevel", "misc:warn", "--log_output_level", "default:warn"],
        "resources": {"limits": {"cpu": "8", "memory": "16Gi"}, "requests": {"cpu": "2", "memory": "4Gi"}},
    }]}}}}
    return {
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": manifests.GATEWAY_NAME, "namespace": topo.namespace,
                     "labels": {"app.kubernetes.io/gateway": manifests.GATEWAY_NAME,
                                "app.kubernetes.io/component": "inference-gateway"}},
        "data": {"deployment": yamlout.safe_dump(deployment, sort_keys=False),
                 "service": yamlout.safe_dump({"spec": {"type": "ClusterIP"}})},
    }


def kgateway_openshift_parameters(topo):
    """guides/recipes/gateway/kgateway-openshift: both containers restricted; only envoy's says runAsNonRoot."""
    restricted = {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                  "seccompProfile": {"type": "RuntimeDefault"}}
    return {
        "apiVersion": "gateway.kgateway.dev/v1alpha1", "kind": "GatewayParameters",
        "metadata": {"name": "kgateway-params", "namespace": topo.namespace,
                     "labels": {"app.kubernetes.io/component": "inference-gateway"}},
        "spec": {"kube": {"floatingUserId": True, "service": {"type": "ClusterIP"},
                          "envoyContainer": {"securityContext": dict(restricted, runAsNonRoot=True)},
                          "sdsContainer": {"securityContext": dict(restricted)}}},
    }


# --- llm-d Router (main-7edda66 and later) -------------------------------------------------------------------------
ENVOY_ARGS = ["--service-node", "envoy-sidecar", "--log-level", "warn", "--concurrency", "8", "--drain-strategy",
              "immediate", "--drain-time-s", "60", "-c", "/etc/envoy/envoy.yaml"]


def revision_screener(topo):
    """With the DisaggregatedSet, the screener that keeps each request on one revision: a revision serves only
    once every role has a Ready pod, and revisions share traffic by their largest role (max-role), so a rollout
    never pairs a prefill and a decode of different revisions. None for the LeaderWorkerSet pair."""
    if topo.workload != "disaggregatedset":
        return None
    return _plugin(topo.profile.revision_screener, scope={"labelSelector": "%s=%s" % (SET_LABEL, manifests.DS_NAME)},
                   revisionGating={"mode": "max-role", "requireRoles": {"values": [r.name for r in topo.roles]}})


def router_epp_config(topo):
    """The EndpointPickerConfig of guides/wide-ep-lws/router/wide-ep-lws.values.yaml: always disaggregate, the
    prefill profile scored by prefix cache, queue and active requests, decode by active requests; with the
    DisaggregatedSet, the revision screener first (as the guide's base does once the set is its workload)."""
    screener = revision_screener(topo)
    plugins = ([screener] if screener else []) + [
        _plugin("disagg-headers-handler"), _plugin("always-disagg-pd-decider"),
        _plugin("disagg-profile-handler", deciderPluginName="always-disagg-pd-decider"),
        _plugin("prefill-filter"), _plugin("decode-filter"), _plugin("prefix-cache-scorer"),
        _plugin("queue-scorer"), _plugin("active-request-scorer")]
    profiles = [_profile("prefill", "prefill-filter", ("prefix-cache-scorer", 3), ("queue-scorer", 2),
                         ("active-request-scorer", 2)),
                _profile("decode", "decode-filter", "active-request-scorer")]
    return {"apiVersion": "llm-d.ai/v1alpha1", "kind": "EndpointPickerConfig", "plugins": plugins,
            "schedulingProfiles": profiles}


def router_mode(topo):
    """The standalone chart (EPP with its own Envoy) without a Gateway; the gateway chart with one."""
    return "standalone" if gateways.get(topo.gateway).gateway_class is None else "gateway"


def router_values(topo):
    """The values the guide layers: recipes/router/base.values.yaml, features/monitoring.values.yaml (with
    wide_ep_epp_prometheus), features/httproute-flags.yaml (gateway mode), router/wide-ep-lws.values.yaml and
    `--set provider.name` (gateway mode), merged as helm merges -f files (maps deep, lists replaced)."""
    flags = {"v": 2}
    if revision_screener(topo):     # an Alpha plugin: the EPP refuses its config without the flag
        flags["allow-experimental-plugins"] = True
    router = {
        "epp": {"replicas": 1, "flags": flags, "pluginsConfigFile": "wide-ep-lws-config.yaml",
                "resources": {"requests": {"cpu": "4", "memory": "8Gi"}, "limits": {"memory": "16Gi"}},
                "pluginsCustomConfig": {
                    "wide-ep-lws-config.yaml": yamlout.safe_dump(router_epp_config(topo), sort_keys=False)}},
        "inferencePool": {"failureMode": "FailOpen"},
        "modelServers": {"protocol": "http", "targetPorts": [{"number": p} for p in topo.target_ports],
                         "matchLabels": {"llm-d.ai/guide": manifests.GUIDE}},
        "proxy": {"args": list(ENVOY_ARGS),
                  "resources": {"requests": {"cpu": "4", "memory": "8Gi"}, "limits": {"memory": "16Gi"}}},
        "tracing": {"otelExporterEndpoint": "http://localhost:4317",
                    "sampling": {"sampler": "parentbased_traceidratio", "samplerArg": "0.1"}},
        "extraServicePorts": [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": 8081}],
    }
    if topo.epp_prometheus:
        router["monitoring"] = {"interval": "10s", "prometheus": {"enabled": True, "auth": {"enabled": False}}}
    values = {"router": router}
    if router_mode(topo) == "gateway":
        values["httpRoute"] = {"create": True, "inferenceGatewayName": manifests.GATEWAY_NAME, "requestTimeout": "0s"}
        values["provider"] = {"name": gateways.get(topo.gateway).router_provider}
    return merged(values, topo.profile.router_values)


def merged(base, over):
    """`over` merged into a copy of `base` as helm merges values files: maps deep, anything else replaced."""
    out = copy.deepcopy(base)
    for key, value in over.items():
        out[key] = merged(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) \
            else copy.deepcopy(value)
    return out


def router(topo):
    """What fronts the pool: the chart, its version and values (the plan's `router`)."""
    profile = topo.profile
    if profile.router == "inferencepool":
        chart, values, selector = "inferencepool", inferencepool_values(topo), manifests.pool_selector(topo)
    else:
        chart, values = "llm-d-router-" + router_mode(topo), router_values(topo)
        selector = values["router"]["modelServers"]["matchLabels"]
    return {"chart": chart, "chart_ref": profile.charts[chart], "chart_version": profile.chart_version,
            "chart_values": values, "selector": selector}
