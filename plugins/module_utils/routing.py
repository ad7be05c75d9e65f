# Copyright: llm-d wide-EP collection contributors
# Apache-2.0
"""InferencePool chart values and the Gateway/HTTPRoute recipe, rendered from a topology.Topology.

Values follow llm-d/llm-d@59bebce guides/wide-ep-lws/manifests/inferencepool.values.yaml (hybrid) and
dp-aware/manifests/inferencepool.values.yaml; the recipe follows guides/recipes/gateway.
"""
from __future__ import annotations

import copy

from ansible_collections.llmd.wide_ep.plugins.module_utils import manifests, yamlout

# provider.name of the inferencepool chart per gateway. kgateway needs `none`: the guide's values hard-code
# istio and its kgateway command passes no override, which renders an Istio DestinationRule kgateway can't use.
CHART_PROVIDER = {"istio": "istio", "kgateway": "none", "kgateway-openshift": "none",
                  "gke-l7-regional-external-managed": "gke", "gke-l7-rilb": "gke", "none": "none"}

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


def inferencepool_values(topo, release=manifests.DEFAULT_RELEASE, prometheus=True):
    image, dummy, tag = topo.images["epp"].rpartition(":")
    hub, dummy, name = image.rpartition("/")
    values = {
        "inferenceExtension": {
            "replicas": 1,
            "image": {"name": name, "hub": hub, "tag": tag},
            "extProcPort": 9002,
            "flags": {"kv-cache-usage-percentage-metric": "vllm:kv_cache_usage_perc", "v": 1},
            "monitoring": {"interval": "10s", "prometheus": {"enabled": bool(prometheus)}},
            "pluginsConfigFile": "custom-plugins.yaml",
            "pluginsCustomConfig": {"custom-plugins.yaml": yamlout.safe_dump(epp_config(topo), sort_keys=False)},
        },
        "inferencePool": {
            "modelServers": {"matchLabels": manifests.pool_selector(topo)},
        },
        "provider": {"name": CHART_PROVIDER[topo.gateway]},
    }
    if topo.target_ports != [8000]:
        values["inferencePool"]["targetPorts"] = [{"number": p} for p in topo.target_ports]
    if values["provider"]["name"] == "istio":
        values["provider"]["istio"] = {"destinationRule": {"host": "%s-epp" % release,
                                                           "trafficPolicy": copy.deepcopy(ISTIO_TRAFFIC_POLICY)}}
    return values


# --- Gateway + HTTPRoute recipe ---------------------------------------------------------------------------
def gateway_objects(topo, release=manifests.DEFAULT_RELEASE):
    if topo.gateway == "none":
        return []
    ns = topo.namespace
    gateway = {
        "apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
        "metadata": {"name": manifests.GATEWAY_NAME, "namespace": ns},
        "spec": {"gatewayClassName": "kgateway" if topo.gateway.startswith("kgateway") else topo.gateway,
                 "listeners": [{"name": "default", "port": 80, "protocol": "HTTP",
                                "allowedRoutes": {"namespaces": {"from": "All"}}}]},
    }
    rule = {"matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
            "backendRefs": [{"group": "inference.networking.k8s.io", "kind": "InferencePool", "name": release,
                             "port": topo.target_ports[0]}]}
    if not topo.gateway.startswith("gke-"):
        rule["timeouts"] = {"backendRequest": "0s", "request": "0s"}  # GKE rejects them; GCPBackendPolicy: 300 s
    route = {
        "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
        "metadata": {"name": manifests.ROUTE_NAME, "namespace": ns},
        "spec": {"parentRefs": [{"group": "gateway.networking.k8s.io", "kind": "Gateway",
                                 "name": manifests.GATEWAY_NAME}],
                 "rules": [rule]},
    }
    extra = []
    if topo.gateway == "istio":
        gateway["metadata"]["labels"] = {"istio.io/enable-inference-extproc": "true"}
        gateway["spec"]["infrastructure"] = {"parametersRef": {"group": "", "kind": "ConfigMap",
                                                               "name": manifests.GATEWAY_NAME}}
        extra.append(istio_gateway_configmap(topo))
    if topo.gateway == "kgateway-openshift":
        gateway["spec"]["infrastructure"] = {"parametersRef": {"group": "gateway.kgateway.dev",
                                                               "kind": "GatewayParameters", "name": "kgateway-params"}}
        extra.append(kgateway_openshift_parameters(topo))
    return extra + [gateway, route]


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
