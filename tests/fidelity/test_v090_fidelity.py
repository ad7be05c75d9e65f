"""The llm-d v0.9.0 profile against the wide-EP guide at llm-d/llm-d@e3dbeca1 (release-0.9, 2026-08-18), from
`kustomize build` of guides/wide-ep-lws/modelserver/gpu/vllm/{base,coreweave,gke,topology-aware/gke,
topology-aware/gke-a4,dgx-cloud-gb200}, fact by fact. Every expected value was copied by hand from that output;
none is produced by the code under test. The flags, env, ports, probes and provider patches are v0.8.0's (main at
7edda66, tests/fidelity/test_v080_fidelity.py), so those tables are shared; what v0.9.0 changed is asserted here."""
import pytest
import yaml

from ansible_collections.llmd.wide_ep.plugins.module_utils.render import plan
from tests.fidelity.test_v080_fidelity import (
    DECODE_ENV,
    DECODE_SERVE,
    GUIDE_EPP_CONFIG,
    HOST_CACHES,
    PREFILL_ENV,
    PREFILL_SERVE,
    PROVIDER_ENV,
    assert_shape,
    by_role,
    env_pairs,
    exported,
    pod,
    tokens,
    vllm,
)

PROVIDERS = ("baremetal", "coreweave", "gke", "gke-topology-aware", "gke-a4", "dgx-cloud-gb200")
GKE = ("gke", "gke-topology-aware", "gke-a4")
KUEUE = ("gke-topology-aware", "gke-a4")   # topology-aware/gke and topology-aware/gke-a4 build the same
# recipes/modelserver/components/images/gpu-vllm/llm-d/release: both roles, after the base env (vllm#44548)
USER = [("USER", "llm-d")]
ENV = dict(PROVIDER_ENV, **{"gke-a4": PROVIDER_ENV["gke"]})
CACHES = dict(HOST_CACHES, **{"gke-a4": HOST_CACHES["gke"]})


@pytest.fixture
def lws(tmp_path_factory):
    return lambda provider: by_role(exported("v0.9.0-" + provider, tmp_path_factory).values())


def render(provider="coreweave", **over):
    return plan.render({"llmd_version": "v0.9.0", "provider": provider, "gateway": "none",
                        "namespace": "llm-d-wide-ep", "model": "deepseek-ai/DeepSeek-R1-0528",
                        "model_label": "DeepSeek-R1-0528", **over})


@pytest.mark.parametrize("provider", PROVIDERS)
def test_both_roles_run_the_release_image_with_the_v080_flags(lws, provider):
    roles = lws(provider)
    for role, obj in roles.items():
        assert_shape(obj, role)
        assert vllm(obj)["image"] == "ghcr.io/llm-d/llm-d-cuda:v0.9.0"      # dgx-cloud-gb200 too: no override
    assert tokens(vllm(roles["prefill"])["args"][0]) == tokens(PREFILL_SERVE)
    assert tokens(vllm(roles["decode"])["args"][0]) == tokens(DECODE_SERVE)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_env_in_the_guides_order_user_before_the_providers(lws, provider):
    roles = lws(provider)
    extra = ENV.get(provider, [])
    assert env_pairs(vllm(roles["prefill"])) == PREFILL_ENV + USER + extra
    assert env_pairs(vllm(roles["decode"])) == DECODE_ENV + USER + extra


@pytest.mark.parametrize("provider", PROVIDERS)
def test_the_sidecar_is_pinned_and_finds_vllm_by_its_default_port(lws, provider):
    roles = lws(provider)
    (sidecar,) = pod(roles["decode"])["spec"]["initContainers"]
    # The guide takes :main (its nightly component); the collection pins llm-d-router v0.10.0, v0.9.0's release.
    assert sidecar["image"] == "ghcr.io/llm-d/llm-d-router-disagg-sidecar:v0.10.0"
    assert sidecar["args"] == ["--port=8000", "--data-parallel-size=8", "--kv-connector=nixlv2", "--zap-log-level=1",
                               "--secure-proxy=false", "--enable-prefiller-sampling"]
    assert [(p["name"], p["containerPort"]) for p in sidecar["ports"]] == [("rank%d" % i, 8000 + i) for i in range(8)]
    assert "initContainers" not in pod(roles["prefill"])["spec"]


def test_a_moved_decode_port_is_passed_with_the_new_flag():
    decode = next(o for o in render(ports={"decode": 8300})["objects"]["leaderworkersets"]
                  if o["metadata"]["name"] == "wide-ep-llm-d-decode")
    assert "--model-server-port=8300" in pod(decode)["spec"]["initContainers"][0]["args"]


@pytest.mark.parametrize("provider", PROVIDERS)
def test_provider_patches_are_v080s(lws, provider):
    for obj in lws(provider).values():
        spec, meta = pod(obj)["spec"], pod(obj)["metadata"]
        host = CACHES.get(provider)
        caches = [{"name": n, "hostPath": {"path": p, "type": "DirectoryOrCreate"}}
                  for n, p in zip(("hf-cache", "jit-cache"), host, strict=True)] if host else \
            [{"name": "hf-cache", "emptyDir": {}}, {"name": "jit-cache", "emptyDir": {}}]
        assert spec["volumes"] == [{"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": "2Gi"}}] + caches
        res = vllm(obj)["resources"]
        assert ("rdma/ib" in res["requests"]) == (provider == "coreweave")
        assert ("networking.gke.io.networks/rdma-7" in res["limits"]) == (provider in GKE)
        assert (vllm(obj)["securityContext"].get("privileged") is True) == (provider in GKE)
        assert ("affinity" in spec) == (provider in GKE)
        assert ("kueue.x-k8s.io/queue-name" in obj["metadata"]["labels"]) == (provider in KUEUE)
        assert ("kueue.x-k8s.io/podset-group-name" in meta.get("annotations", {})) == (provider in KUEUE)


def test_the_router_is_v0100_with_envoy_named():
    router = render(epp_prometheus=False)["router"]
    assert router["chart"] == "llm-d-router-standalone" and router["chart_version"] == "v0.10.0"
    assert router["chart_ref"] == "oci://ghcr.io/llm-d/charts/llm-d-router-standalone"
    r = router["chart_values"]["router"]
    assert r["proxy"]["proxyType"] == "envoy"          # recipes/router/base.values.yaml at e3dbeca1
    assert yaml.safe_load(r["epp"]["pluginsCustomConfig"]["wide-ep-lws-config.yaml"]) == yaml.safe_load(
        GUIDE_EPP_CONFIG)
    assert render()["needs"]["inference_crds"] == {"version": "v1.5.0", "manifest": "v1-manifests.yaml"}


@pytest.mark.parametrize("provider", ("coreweave", "gke"))
def test_the_drain_is_the_collections_and_zero_gives_the_guides_pods(lws, provider):
    """The guide's pods (every release) have no preStop and no terminationGracePeriodSeconds. The collection
    adds a 30 s preStop wait and 60 s of grace (wide_ep_drain_seconds, #29); 0 renders the guide's pods."""
    for obj in lws(provider).values():
        assert vllm(obj)["lifecycle"] == {"preStop": {"exec": {"command": ["sleep", "30"]}}}
        assert pod(obj)["spec"]["terminationGracePeriodSeconds"] == 60
    for obj in by_role(render(provider, drain_seconds=0)["objects"]["leaderworkersets"]).values():
        assert "lifecycle" not in vllm(obj) and "terminationGracePeriodSeconds" not in pod(obj)["spec"]
