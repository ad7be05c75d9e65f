"""The gateway registry (module_utils/render/gateways.py): what users read equals it, and each record's facts
reach the objects and chart values."""
import pytest

from ansible_collections.llmd.wide_ep.plugins.module_utils.render import gateways, plan, topology
from tests.support.settings_doc import SETTINGS, comment_of


def render(**over):
    return plan.render(dict(topology.DEFAULT_SETTINGS, provider="baremetal", allow_unverified_gateway=True, **over))


def test_the_gateway_lists_users_read_are_the_registry():
    assert SETTINGS["wide_ep_gateway"]["choices"] == list(gateways.GATEWAYS)
    assert comment_of("wide_ep_gateway").strip().split(" | ") == list(gateways.GATEWAYS)


def test_only_gateways_with_a_proof_take_dp_aware_unasked():
    proven = {name for name, g in gateways.GATEWAYS.items() if g.multi_port}
    assert proven == {"istio", "none"}
    for name in set(gateways.GATEWAYS) - proven:
        with pytest.raises(topology.TopologyError, match="%s with wide_ep_dp_mode: dp-aware is refused" % name):
            plan.render(dict(topology.DEFAULT_SETTINGS, provider="baremetal", gateway=name, dp_mode="dp-aware"))


@pytest.mark.parametrize("name", list(gateways.GATEWAYS))
def test_each_gateway_record_reaches_the_objects(name):
    spec = gateways.get(name)
    p = render(gateway=name, dp_mode="hybrid")
    kinds = {o["kind"]: o for o in p["objects"]["gateway"]}
    if spec.gateway_class is None:
        assert kinds == {} and p["refs"]["gateway"] is None
        return
    assert kinds["Gateway"]["spec"]["gatewayClassName"] == spec.gateway_class
    assert ("timeouts" in kinds["HTTPRoute"]["spec"]["rules"][0]) == spec.route_timeouts
    parameters = kinds["Gateway"]["spec"].get("infrastructure", {}).get("parametersRef", {}).get("kind")
    assert parameters == spec.parameters and (spec.parameters is None or spec.parameters in kinds)
    assert p["router"]["chart_values"]["provider"]["name"] == spec.chart_provider
    api, kind = spec.epp_monitor
    assert p["needs"]["monitoring_kinds"] == [kind] and p["needs"]["monitoring_api"] == api


def test_llm_d_router_takes_the_gateway_charts_provider_and_makes_the_route():
    for name in ("istio", "gke-l7-rilb"):
        p = render(llmd_version="main-7edda66", gateway=name)
        assert p["router"]["chart"] == "llm-d-router-gateway"
        assert p["router"]["chart_values"]["provider"] == {"name": gateways.get(name).router_provider}
        assert "HTTPRoute" not in {o["kind"] for o in p["objects"]["gateway"]}
    assert render(llmd_version="main-7edda66", gateway="none")["router"]["chart"] == "llm-d-router-standalone"
