"""The provider registry (module_utils/render/providers.py): every provider one record, the lists users read
equal to it, and a new provider's record all the renderer needs."""
import re

import pytest

from ansible_collections.llmd.wide_ep.plugins.module_utils.render import plan, profiles, providers, topology
from tests.support.settings_doc import SETTINGS, comment_of


def test_every_provider_is_in_some_release_and_every_overlay_image_is_a_release_image():
    for name, provider in providers.PROVIDERS.items():
        assert any(name in p.providers for p in profiles.PROFILES.values()), name
        for version, overlay in provider.overlays.items():
            assert set(overlay.images) <= set(profiles.PROFILES[version].images), (name, version)


def test_the_provider_lists_users_read_are_the_registry():
    assert SETTINGS["wide_ep_provider"]["choices"] == list(providers.PROVIDERS)
    provider_doc = " ".join(SETTINGS["wide_ep_provider"]["description"])
    for name in providers.PROVIDERS:
        assert re.search(r"\b%s\b" % re.escape(name), comment_of("wide_ep_provider")), name
        assert "C(%s)" % name in provider_doc, name


@pytest.mark.parametrize("name", list(providers.PROVIDERS))
def test_gke_family_is_one_fact(name):
    """A GKE provider gets GKE's networking and its platform-managed CRDs together (gke-topology-aware once had
    the one without the other)."""
    provider = providers.get(name)
    for overlay in provider.overlays.values():
        assert overlay.gke_networking == provider.gke == overlay.privileged, name
    assert provider.platform_managed_crds == provider.gke


def settings(**over):
    return dict(topology.DEFAULT_SETTINGS, **over)


def vllm_of(p, role):
    lws = next(o for o in p["objects"]["leaderworkersets"] if o["metadata"]["labels"]["llm-d.ai/role"] == role)
    return lws, lws["spec"]["leaderWorkerTemplate"]["workerTemplate"]["spec"]["containers"][0]


def test_a_provider_overlay_is_applied_from_its_record(monkeypatch):
    """A throwaway provider record is all it takes: its env, RDMA resource, caches, scheduler and labels reach
    the LeaderWorkerSets, and the inventory's env still wins."""
    record = providers.Provider("acme", "test", overlays={"main-7edda66": providers.Overlay(
        env=(("ACME_HCA", lambda role: "mlx5_0-%d" % role.gpus_per_pod), ("NCCL_IB_HCA", "acme")),
        rdma_resource="acme.io/rdma", host_caches=("/a/hf", "/a/jit"), scheduler="acme-sched",
        lws_labels={"acme.io/tier": "gold"})})
    monkeypatch.setitem(providers.PROVIDERS, "acme", record)
    monkeypatch.setattr(topology, "PROVIDERS", topology.PROVIDERS + ("acme",))
    v080 = profiles.PROFILES["main-7edda66"]
    monkeypatch.setitem(profiles.PROFILES, "main-7edda66", profiles.Profile(
        **dict(vars(v080), providers=v080.providers + ("acme",))))
    p = plan.render(settings(llmd_version="main-7edda66", provider="acme", gateway="none",
                             decode={"env": {"NCCL_IB_HCA": "mine"}}))
    lws, vllm = vllm_of(p, "decode")
    env = {e["name"]: e.get("value") for e in vllm["env"]}
    assert env["ACME_HCA"] == "mlx5_0-8" and env["NCCL_IB_HCA"] == "mine"
    assert vllm["resources"]["requests"]["acme.io/rdma"] == vllm["resources"]["limits"]["acme.io/rdma"] == "1"
    pod = lws["spec"]["leaderWorkerTemplate"]["workerTemplate"]["spec"]
    assert pod["schedulerName"] == "acme-sched"
    assert {v["name"]: v.get("hostPath", {}).get("path") for v in pod["volumes"]} == {
        "dshm": None, "hf-cache": "/a/hf", "jit-cache": "/a/jit"}
    assert lws["metadata"]["labels"]["acme.io/tier"] == "gold"
    assert p["needs"]["gateway_api_crds"] is True


def test_a_release_without_the_provider_overlay_renders_the_base():
    p = plan.render(settings(llmd_version="main-7edda66", provider="baremetal", gateway="none"))
    lws, vllm = vllm_of(p, "prefill")
    pod = lws["spec"]["leaderWorkerTemplate"]["workerTemplate"]["spec"]
    assert "affinity" not in pod and "schedulerName" not in pod and "privileged" not in vllm["securityContext"]
    assert [v for v in pod["volumes"] if "hostPath" in v] == []
    assert set(vllm["resources"]["requests"]) == {"cpu", "memory", "ephemeral-storage", "nvidia.com/gpu"}
