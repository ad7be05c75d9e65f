"""wide_ep_workload: disaggregatedset against the guide's DisaggregatedSet path at llm-d/llm-d@e3dbeca1
(guides/wide-ep-lws/modelserver/gpu/vllm/disaggregatedset, `kustomize build`). Expected values are copied by
hand from that output. Upstream builds its roles from the raw base LeaderWorkerSets (no provider patch); the
collection makes each role the provider's LeaderWorkerSet, so the roles are compared with the LWS pair of the
same settings, which tests/fidelity/test_v090_fidelity.py holds to the guide's overlays."""
import pytest
import yaml

from ansible_collections.llmd.wide_ep.plugins.module_utils.render import plan
from ansible_collections.llmd.wide_ep.plugins.module_utils.render.topology import TopologyError
from tests.fidelity.test_v080_fidelity import DECODE_SERVE, PREFILL_SERVE, tokens

STANDARD = {"llm-d.ai/accelerator-variant": "gpu", "llm-d.ai/accelerator-vendor": "nvidia",
            "llm-d.ai/guide": "wide-ep-lws", "llm-d.ai/model": "DeepSeek-R1-0528"}


MODEL = {"model": "deepseek-ai/DeepSeek-R1-0528", "model_label": "DeepSeek-R1-0528", "namespace": "llm-d-wide-ep"}


def render(provider="baremetal", **over):
    return plan.render({"llmd_version": "v0.9.0", "provider": provider, "gateway": "none",
                        "workload": "disaggregatedset", **MODEL, **over})


def the_ds(p):
    (ds,) = p["objects"]["workloads"]
    return ds


def test_one_disaggregatedset_and_a_labelled_service_account():
    p = render()
    sa, ds = p["objects"]["model_servers"]
    assert sa == {"apiVersion": "v1", "kind": "ServiceAccount",
                  "metadata": {"name": "deepseek-r1", "namespace": "llm-d-wide-ep", "labels": STANDARD}}
    assert ds["apiVersion"] == "disaggregatedset.x-k8s.io/v1" and ds["kind"] == "DisaggregatedSet"
    assert ds["metadata"] == {"name": "wide-ep-lws-nvidia-gpu-vllm", "namespace": "llm-d-wide-ep",
                              "labels": STANDARD}
    assert p["objects"]["leaderworkersets"] == []
    assert p["refs"]["disaggregatedset"]["metadata"] == {"name": "wide-ep-lws-nvidia-gpu-vllm",
                                                        "namespace": "llm-d-wide-ep"}
    assert p["refs"]["leaderworkersets"] == {} and p["refs"]["workload"] == "disaggregatedset"
    assert p["needs"]["disaggregatedset"] is True and p["needs"]["lws_min_version"] == "0.9.0"


def test_roles_prefill_then_decode_with_the_guides_labels():
    ds = the_ds(render())
    assert [r["name"] for r in ds["spec"]["roles"]] == ["prefill", "decode"]
    for role in ds["spec"]["roles"]:
        want = dict(STANDARD, **{"llm-d.ai/inference-serving": "true", "llm-d.ai/role": role["name"]})
        assert role["metadata"] == {"labels": want}
        assert list(role["spec"]) == ["replicas", "leaderWorkerTemplate"]
        assert role["spec"]["replicas"] == 1 and role["spec"]["leaderWorkerTemplate"]["size"] == 2
        assert role["spec"]["leaderWorkerTemplate"]["workerTemplate"]["metadata"] == {"labels": want}
        assert "rolloutStrategy" not in role["spec"]          # the DisaggregatedSet controller's default


def test_the_roles_run_the_release_image_and_serve_lines():
    roles = {r["name"]: r["spec"]["leaderWorkerTemplate"]["workerTemplate"]["spec"]
             for r in the_ds(render())["spec"]["roles"]}
    for spec in roles.values():
        assert spec["serviceAccountName"] == "deepseek-r1"
        assert spec["containers"][0]["image"] == "ghcr.io/llm-d/llm-d-cuda:v0.9.0"
        assert spec["containers"][0]["env"][-1] == {"name": "USER", "value": "llm-d"}
    assert tokens(roles["prefill"]["containers"][0]["args"][0]) == tokens(PREFILL_SERVE)
    assert tokens(roles["decode"]["containers"][0]["args"][0]) == tokens(DECODE_SERVE)
    # The checked-in DisaggregatedSet still passes --vllm-port=8200 (generated before 60054197 removed it from
    # base/decode.yaml); v0.10.0's sidecar defaults to 8200, so the flag-less args reach the same port.
    (sidecar,) = roles["decode"]["initContainers"]
    assert sidecar["args"] == ["--port=8000", "--data-parallel-size=8", "--kv-connector=nixlv2", "--zap-log-level=1",
                               "--secure-proxy=false", "--enable-prefiller-sampling"]
    assert "initContainers" not in roles["prefill"]


@pytest.mark.parametrize("provider", ["baremetal", "coreweave", "gke", "gke-topology-aware", "gke-a4",
                                      "dgx-cloud-gb200", "local"])
def test_each_role_is_that_providers_leaderworkerset(provider):
    pair = {o["metadata"]["labels"]["llm-d.ai/role"]: o
            for o in plan.render({"llmd_version": "v0.9.0", "provider": provider, "gateway": "none", **MODEL})[
                "objects"]["leaderworkersets"]}
    for role in the_ds(render(provider))["spec"]["roles"]:
        assert role["spec"] == pair[role["name"]]["spec"]


def test_coreweave_roles_carry_its_rdma_and_host_caches():
    spec = the_ds(render("coreweave"))["spec"]["roles"][1]["spec"]["leaderWorkerTemplate"]["workerTemplate"]["spec"]
    vllm = spec["containers"][0]
    assert vllm["resources"]["limits"]["rdma/ib"] == "1"
    assert ("NCCL_IB_HCA", "ibp") in [(e["name"], e.get("value")) for e in vllm["env"]]
    assert {v["name"]: v.get("hostPath", {}).get("path") for v in spec["volumes"]}["hf-cache"] == "/mnt/local/hf-cache"


@pytest.mark.parametrize("version", ["v0.5.0", "main-7edda66"])
def test_releases_without_the_path_refuse_it_naming_the_one_that_has_it(version):
    with pytest.raises(TopologyError) as err:
        plan.render({"llmd_version": version, "provider": "baremetal", "workload": "disaggregatedset", **MODEL})
    assert "wide_ep_workload: 'disaggregatedset' is not in the wide-EP guide of llm-d %s" % version in str(err.value)
    assert "the guides of v0.9.0 have it" in str(err.value)


def test_an_unknown_workload_is_refused():
    with pytest.raises(TopologyError, match="wide_ep_workload: 'statefulset' is not one of leaderworkersets, "
                                            "disaggregatedset"):
        render(workload="statefulset")


def epp_config(p):
    epp = p["router"]["chart_values"]["router"]["epp"]
    return epp["flags"], yaml.safe_load(epp["pluginsCustomConfig"][epp["pluginsConfigFile"]])


def test_the_router_keeps_each_request_on_one_revision():
    """llm-d-router v0.10.0 (the v0.9.0 release's router chart): pkg/epp/framework/plugins/requestcontrol/screener/
    disaggregatedsetrollout (README, config.go). The guide's v0.9.0 overlay leaves the router as for the pair;
    its main (llm-d#2379, the set as the base) puts this screener first. An Alpha plugin: the EPP loads it only
    with --allow-experimental-plugins (cmd/epp/runner/runner.go registers it StabilityAlpha)."""
    flags, config = epp_config(render())
    assert config["plugins"][0] == {
        "type": "disaggregatedset-rollout-screener",
        "parameters": {"scope": {"labelSelector": "disaggregatedset.x-k8s.io/name=wide-ep-lws-nvidia-gpu-vllm"},
                       "revisionGating": {"mode": "max-role", "requireRoles": {"values": ["prefill", "decode"]}}}}
    assert flags == {"v": 2, "allow-experimental-plugins": True}
    pair_flags, pair = epp_config(render(workload="leaderworkersets"))
    assert pair_flags == {"v": 2}
    assert "disaggregatedset-rollout-screener" not in [p["type"] for p in pair["plugins"]]
    assert config["plugins"][1:] == pair["plugins"] and config["schedulingProfiles"] == pair["schedulingProfiles"]
