"""The plan (module_utils/render/plan.py): every name and reference in one place, what the cluster must serve, the
capacity groups - each checked against the rendered objects it must agree with."""
import pytest

from ansible_collections.llmd.wide_ep.plugins.module_utils.errors import InvalidInput
from ansible_collections.llmd.wide_ep.plugins.module_utils.render import plan

BASE = {"provider": "coreweave", "dp_mode": "dp-aware", "gateway": "istio", "namespace": "llm-d-wide-ep",
        "model": "deepseek-ai/DeepSeek-R1-0528", "model_label": "DeepSeek-R1-0528"}


def render(**over):
    return plan.render({**BASE, **over})


def test_refs_name_what_the_objects_and_values_name():
    p = render(release="my-pool")
    refs = p["refs"]
    assert refs["release"] == "my-pool" and refs["namespace"] == "llm-d-wide-ep"
    assert refs["pool"] == {"apiVersion": "inference.networking.k8s.io/v1", "kind": "InferencePool",
                            "metadata": {"name": "my-pool", "namespace": "llm-d-wide-ep"}}
    assert refs["epp"]["metadata"]["name"] == refs["epp_service"]["metadata"]["name"] == "my-pool-epp"
    lws = {o["metadata"]["name"] for o in p["objects"]["leaderworkersets"]}
    assert {r["metadata"]["name"] for r in refs["leaderworkersets"].values()} == lws
    gateway, route = [o for o in p["objects"]["gateway"] if o["kind"] in ("Gateway", "HTTPRoute")]
    assert refs["gateway"]["metadata"]["name"] == gateway["metadata"]["name"]
    assert refs["route"]["metadata"]["name"] == route["metadata"]["name"]
    assert route["spec"]["rules"][0]["backendRefs"][0]["name"] == "my-pool"
    dest = p["inferencepool_values"]["provider"]["istio"]["destinationRule"]["host"]
    assert dest == "my-pool-epp"


def test_no_gateway_means_no_gateway_refs():
    refs = render(gateway="none")["refs"]
    assert refs["gateway"] is None and refs["route"] is None


@pytest.mark.parametrize("over,needs", [
    ({}, {"monitoring_api": "monitoring.coreos.com/v1", "monitoring_kinds": ["ServiceMonitor", "PodMonitor"],
          "pod_monitors": True, "gateway_api_crds": True, "fabric": "infiniband"}),
    ({"epp_prometheus": False, "pod_monitors": False},
     {"monitoring_api": None, "monitoring_kinds": [], "pod_monitors": False, "gateway_api_crds": True,
      "fabric": "infiniband"}),
    ({"provider": "gke", "gateway": "gke-l7-rilb", "dp_mode": "hybrid"},
     {"monitoring_api": "monitoring.googleapis.com/v1", "monitoring_kinds": ["PodMonitoring"],
      "pod_monitors": False, "gateway_api_crds": False, "driver_blocklist": [
          {"kernel": "deepep_high_throughput", "branch": "580", "why": "cudaErrorIllegalAddress on GKE, llm-d#2379"}],
      "gke_networks": True, "fabric": "roce"}),
    ({"provider": "baremetal", "pod_monitors": True},
     {"monitoring_api": "monitoring.coreos.com/v1", "monitoring_kinds": ["ServiceMonitor", "PodMonitor"],
      "pod_monitors": True, "gateway_api_crds": True, "fabric": None}),
])
def test_needs(over, needs):
    p = render(**over)
    assert p["needs"] == dict({"driver_blocklist": [], "gke_networks": False}, **needs,
                              inference_crds={"version": "v1.3.0", "manifest": "manifests.yaml"},
                              gateway_api_version="v1.4.0", disaggregatedset=False, lws_min_version=None)
    assert bool(p["objects"]["pod_monitors"]) is needs["pod_monitors"]


def test_groups_follow_the_roles():
    p = render(decode={"replicas": 3})
    assert p["groups"] == [
        {"name": "wide-ep-llm-d-prefill", "namespace": "llm-d-wide-ep", "replicas": 1, "group_size": 2,
         "gpus_per_pod": 8},
        {"name": "wide-ep-llm-d-decode", "namespace": "llm-d-wide-ep", "replicas": 3, "group_size": 2,
         "gpus_per_pod": 8}]


def test_summary_carries_the_endpoint_ports_of_each_role():
    s = render()["summary"]
    assert s["prefill"]["endpoint_ports"] == s["decode"]["endpoint_ports"] == s["target_ports"] == list(
        range(8000, 8008))


@pytest.mark.parametrize("key,value", [("epp_prometheus", "maybe"), ("pod_monitors", 1)])
def test_bad_switches_are_named(key, value):
    with pytest.raises(InvalidInput, match="wide_ep_%s: %r must be true or false" % (key, value)):
        render(**{key: value})


def test_later_releases_need_gaie_v150_crds_and_v090_gateway_api_v151():
    for version, gateway_api in (("main-7edda66", "v1.4.0"), ("v0.9.0", "v1.5.1")):
        needs = render(llmd_version=version, gateway="none")["needs"]
        assert needs["inference_crds"] == {"version": "v1.5.0", "manifest": "v1-manifests.yaml"}, version
        assert needs["gateway_api_version"] == gateway_api, version


@pytest.mark.parametrize("over,kinds", [
    ({}, ["Namespace", "ServiceAccount", "PodMonitor", "PodMonitor"]),                  # CoreWeave: PodMonitors
    ({"provider": "gke", "gateway": "gke-l7-rilb", "dp_mode": "hybrid"}, ["Namespace", "ServiceAccount"]),
    ({"llmd_version": "v0.9.0", "workload": "disaggregatedset"}, None),
])
def test_support_is_what_the_model_servers_need_before_their_workloads(over, kinds):
    """objects.support (the modelserver role's first apply): the namespace, the model servers' objects that are
    not workloads, the PodMonitors - every object of those groups once, and no workload."""
    objects = render(**over)["objects"]
    support = objects["support"]
    assert support and support[0] == objects["namespace"][0]
    assert not [o for o in support if o["kind"] in ("LeaderWorkerSet", "DisaggregatedSet")]
    assert support + objects["workloads"] == objects["namespace"] + [
        o for o in objects["model_servers"] if o not in objects["workloads"]] + objects["pod_monitors"] + \
        objects["workloads"]
    if kinds is not None:
        assert [o["kind"] for o in support] == kinds
    else:
        assert objects["workloads"][0]["kind"] == "DisaggregatedSet"
