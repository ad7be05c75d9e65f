"""Where the smoke request and the benchmark send their requests (module_utils/k8s/serving.py), per router mode."""
from ansible_collections.llmd.wide_ep.plugins.module_utils.k8s import serving
from ansible_collections.llmd.wide_ep.plugins.module_utils.k8s.client import Client
from ansible_collections.llmd.wide_ep.plugins.module_utils.render import plan
from tests.support.fake_api import FakeApi

BASE = {"provider": "coreweave", "namespace": "ns", "model": "m/m", "model_label": "m"}


def test_the_standalone_router_is_reached_through_its_service():
    refs = plan.render({**BASE, "llmd_version": "main-7edda66", "gateway": "none"})["refs"]
    assert refs["gateway"] is None
    (target,) = serving.gateway_targets(Client(transport=FakeApi()), refs["gateway"], None, refs["standalone_entry"])
    assert target.proxy == "/api/v1/namespaces/ns/services/http:wide-ep-lws-epp:80/proxy"
    assert serving.gateway_url_in_cluster(None, None, refs["standalone_entry"]) == "http://wide-ep-lws-epp.ns.svc:80"


def test_a_gateway_is_reached_at_its_address_then_its_service():
    refs = plan.render({**BASE, "gateway": "istio", "dp_mode": "dp-aware"})["refs"]
    assert refs["standalone_entry"] is None
    api = FakeApi()
    api.put(dict(refs["gateway"], status={"addresses": [{"value": "10.0.0.9"}]}))
    api.put({"apiVersion": "v1", "kind": "Service", "metadata": {
        "name": "gw-istio", "namespace": "ns", "labels": {serving.GATEWAY_LABEL: "llm-d-inference-gateway"}},
        "spec": {"ports": [{"port": 80}, {"port": 15021}]}})
    first, second = serving.gateway_targets(Client(transport=api), refs["gateway"])
    assert first.url == "http://10.0.0.9:80"
    assert second.proxy == "/api/v1/namespaces/ns/services/http:gw-istio:80/proxy"


def test_an_endpoint_given_wins():
    (target,) = serving.gateway_targets(None, None, "http://127.0.0.1:8000/", None)
    assert target.url == "http://127.0.0.1:8000"
