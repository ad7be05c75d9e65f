# Copyright: llm-d wide-EP collection contributors
# Apache-2.0
"""The gateways (`wide_ep_gateway`): one record each - its GatewayClass, what the charts call its provider, and
whether it is known to route to several InferencePool target ports. Which release has a recipe for it is the
release profile's `gateways`."""
from __future__ import annotations

from dataclasses import dataclass

# DP-aware routing sends each request to one of several InferencePool targetPorts; only gateways with a
# `multi_port` proof are known to honour them. kgateway and agentgateway had open bugs on it: 87.5 % of requests
# failed (7 of 8 ports).
MULTI_PORT_BUGS = "kgateway-dev/kgateway#12238, istio/istio#57638, llm-d/llm-d#1855"


@dataclass(frozen=True)
class Gateway:
    name: str
    gateway_class: str | None      # None: no Gateway at all
    chart_provider: str            # provider.name of GAIE's inferencepool chart (v0.5.0)
    router_provider: str | None    # provider.name of llm-d-router's gateway chart (main-7edda66 on); None: standalone
    multi_port: str | None = None  # why it routes to every target port, or None when unproven
    route_timeouts: bool = True    # the HTTPRoute may say `timeouts` (GKE rejects them; GCPBackendPolicy: 300 s)
    parameters: str | None = None  # the Gateway's infrastructure.parametersRef kind: ConfigMap / GatewayParameters

    @property
    def epp_monitor(self):
        """What the chart makes to scrape the EPP: GKE's provider a Managed Prometheus PodMonitoring, the others
        the Prometheus Operator's ServiceMonitor."""
        if self.chart_provider == "gke":
            return "monitoring.googleapis.com/v1", "PodMonitoring"
        return "monitoring.coreos.com/v1", "ServiceMonitor"


GATEWAYS = {g.name: g for g in (
    Gateway("istio", "istio", "istio", "istio", multi_port="Istio >= 1.28.1", parameters="ConfigMap"),
    # kgateway needs chart provider `none`: the guide's values hard-code istio and its kgateway command passes no
    # override, which renders an Istio DestinationRule kgateway can't use.
    Gateway("kgateway", "kgateway", "none", None),
    Gateway("kgateway-openshift", "kgateway", "none", None, parameters="GatewayParameters"),
    Gateway("gke-l7-regional-external-managed", "gke-l7-regional-external-managed", "gke", "gke",
            route_timeouts=False),
    Gateway("gke-l7-rilb", "gke-l7-rilb", "gke", "gke", route_timeouts=False),
    Gateway("none", None, "none", None, multi_port="no gateway: your own client asks the EPP"),
)}


def get(name):
    return GATEWAYS[name]
