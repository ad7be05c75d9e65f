"""What fronts the pool (module_utils/render/routing.py): the EPP's configuration per DP mode and release, the
chart values' target ports, and the standalone or gateway llm-d-router chart."""
import yaml

from ansible_collections.llmd.wide_ep.plugins.module_utils.render import routing, topology


def topo(**over):
    return topology.build(dict(topology.DEFAULT_SETTINGS, provider="baremetal", **over))


def test_hybrid_picks_at_random_and_dp_aware_scores_every_rank():
    hybrid = routing.epp_config(topo(dp_mode="hybrid"))
    aware = routing.epp_config(topo(dp_mode="dp-aware"))
    assert [p["type"] for p in hybrid["plugins"]].count("random-picker") == 1
    assert "random-picker" not in [p["type"] for p in aware["plugins"]]
    prefill = next(p for p in aware["schedulingProfiles"] if p["name"] == "prefill")
    assert {"pluginRef": "prefix-cache-scorer", "weight": 3} in prefill["plugins"]


def test_target_ports_are_written_only_when_not_the_charts_default():
    assert "targetPorts" not in routing.inferencepool_values(topo(dp_mode="hybrid"))["inferencePool"]
    ports = routing.inferencepool_values(topo(dp_mode="dp-aware"))["inferencePool"]["targetPorts"]
    assert ports == [{"number": 8000 + i} for i in range(8)]
    moved = routing.inferencepool_values(topo(dp_mode="hybrid", ports={"prefill": 9000, "sidecar": 9000}))
    assert moved["inferencePool"]["targetPorts"] == [{"number": 9000}]


def test_the_router_values_carry_the_epp_config_and_the_ranks():
    t = topo(llmd_version="main-7edda66", gateway="none")
    out = routing.router(t)
    assert out["chart"] == "llm-d-router-standalone" and "httpRoute" not in out["chart_values"]
    router = out["chart_values"]["router"]
    config = yaml.safe_load(router["epp"]["pluginsCustomConfig"]["wide-ep-lws-config.yaml"])
    assert config["kind"] == "EndpointPickerConfig" and config["apiVersion"] == "llm-d.ai/v1alpha1"
    assert router["modelServers"]["targetPorts"] == [{"number": p} for p in t.target_ports]
    assert "monitoring" in router and "monitoring" not in routing.router_values(
        topo(llmd_version="main-7edda66", gateway="none", epp_prometheus=False))["router"]


def test_a_pool_that_selects_other_pods_or_ports_is_named_with_both():
    spec = {"selector": {"matchLabels": {"llm-d.ai/inferenceServing": "true"}}, "targetPorts": [{"number": 8000}]}
    assert routing.pool_mismatch(spec, {"selector": {"llm-d.ai/inferenceServing": "true"},
                                        "target_ports": [8000]}) == ""
    assert routing.pool_mismatch(spec, {"selector": None, "target_ports": None}) == ""
    wrong = routing.pool_mismatch(spec, {"selector": {"app": "x"}, "target_ports": [8000, 8001]})
    assert wrong == ("selector is {'llm-d.ai/inferenceServing': 'true'}, the plan's is {'app': 'x'}; "
                     "target_ports is [8000], the plan's is [8000, 8001]")
    assert "selector is None" in routing.pool_mismatch({}, {"selector": {"app": "x"}})
