"""Providers, gateways and releases each have one home (providers.py, gateways.py, profiles.py); every list a
user reads - argument_specs choices, the defaults' comments, the README - is that home's, and the renderer tests
no provider, gateway or release by name."""
import re
from pathlib import Path

import pytest
import yaml

from ansible_collections.llmd.wide_ep.plugins.module_utils.render import (
    gateways,
    launchers,
    manifests,
    plan,
    profiles,
    providers,
    topology,
)

ROOT = Path(__file__).resolve().parents[2]
DEFAULTS_TEXT = (ROOT / "roles/wide_ep_defaults/defaults/main.yml").read_text()
SETTINGS = yaml.safe_load((ROOT / "roles/wide_ep_defaults/meta/argument_specs.yml").read_text())[
    "argument_specs"]["settings"]["options"]
README = (ROOT / "README.md").read_text()


def comment_of(name):
    line = next(line for line in DEFAULTS_TEXT.splitlines() if line.startswith(name + ":"))
    return line.split("#", 1)[1]


def test_every_release_names_only_registered_providers_gateways_and_launchers():
    for version, profile in profiles.PROFILES.items():
        assert set(profile.providers) <= set(providers.PROVIDERS), version
        assert set(profile.gateways) <= set(gateways.GATEWAYS), version
        assert set(profile.launchers) <= set(topology.DP_MODES), version
        assert set(profile.launchers.values()) <= set(launchers.LAUNCHERS), version
        assert not set(profile.removed) & set(profile.providers), version
        # an overlay exists only for a release that has the provider
        for name, provider in providers.PROVIDERS.items():
            if version in provider.overlays:
                assert name in profile.providers, (name, version)


def test_every_provider_is_in_some_release_and_every_overlay_image_is_a_release_image():
    for name, provider in providers.PROVIDERS.items():
        assert any(name in p.providers for p in profiles.PROFILES.values()), name
        for version, overlay in provider.overlays.items():
            assert set(overlay.images) <= set(profiles.PROFILES[version].images), (name, version)


def test_the_lists_users_read_are_the_registries():
    assert SETTINGS["wide_ep_provider"]["choices"] == list(providers.PROVIDERS)
    assert SETTINGS["wide_ep_gateway"]["choices"] == list(gateways.GATEWAYS)
    assert SETTINGS["wide_ep_llmd_version"]["choices"] == list(profiles.PROFILES)
    provider_doc = " ".join(SETTINGS["wide_ep_provider"]["description"])
    for name in providers.PROVIDERS:
        assert re.search(r"\b%s\b" % re.escape(name), comment_of("wide_ep_provider")), name
        assert "C(%s)" % name in provider_doc, name
    for name in gateways.GATEWAYS:
        assert name in comment_of("wide_ep_gateway").split(" | ") or \
            name in comment_of("wide_ep_gateway").replace("|", " ").split(), name
    for version in profiles.PROFILES:
        assert version in comment_of("wide_ep_llmd_version"), version
        assert version in README, version


@pytest.mark.parametrize("name", list(providers.PROVIDERS))
def test_gke_family_is_one_fact(name):
    """A GKE provider gets GKE's networking and its platform-managed CRDs together (gke-topology-aware once had
    the one without the other)."""
    provider = providers.get(name)
    for overlay in provider.overlays.values():
        assert overlay.gke_networking == provider.gke == overlay.privileged, name
    assert provider.platform_managed_crds == provider.gke


def test_the_renderer_and_plan_test_no_provider_release_or_launcher_by_name():
    names = set(providers.PROVIDERS) | set(profiles.PROFILES) | set(launchers.LAUNCHERS) - {"hybrid-lb"}
    for module in (manifests, plan):
        source = Path(module.__file__).read_text()
        for name in names:
            assert not re.search(r"""==\s*["']%s["']""" % re.escape(name), source), (module.__name__, name)
            assert not re.search(r"""in\s*\(["']%s["']""" % re.escape(name), source), (module.__name__, name)


def settings(**over):
    return dict(topology.DEFAULT_SETTINGS, **over)


def vllm_of(p, role):
    lws = next(o for o in p["objects"]["leaderworkersets"] if o["metadata"]["labels"]["llm-d.ai/role"] == role)
    return lws, lws["spec"]["leaderWorkerTemplate"]["workerTemplate"]["spec"]["containers"][0]


def test_a_provider_overlay_is_applied_from_its_record(monkeypatch):
    """A throwaway provider record is all it takes: its env, RDMA resource, caches, scheduler and labels reach
    the LeaderWorkerSets, and the inventory's env still wins."""
    record = providers.Provider("acme", "test", overlays={"v0.8.0": providers.Overlay(
        env=(("ACME_HCA", lambda role: "mlx5_0-%d" % role.gpus_per_pod), ("NCCL_IB_HCA", "acme")),
        rdma_resource="acme.io/rdma", host_caches=("/a/hf", "/a/jit"), scheduler="acme-sched",
        lws_labels={"acme.io/tier": "gold"})})
    monkeypatch.setitem(providers.PROVIDERS, "acme", record)
    monkeypatch.setattr(topology, "PROVIDERS", topology.PROVIDERS + ("acme",))
    v080 = profiles.PROFILES["v0.8.0"]
    monkeypatch.setitem(profiles.PROFILES, "v0.8.0", profiles.Profile(
        **dict(vars(v080), providers=v080.providers + ("acme",))))
    p = plan.render(settings(llmd_version="v0.8.0", provider="acme", gateway="none",
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
    p = plan.render(settings(llmd_version="v0.8.0", provider="baremetal", gateway="none"))
    lws, vllm = vllm_of(p, "prefill")
    pod = lws["spec"]["leaderWorkerTemplate"]["workerTemplate"]["spec"]
    assert "affinity" not in pod and "schedulerName" not in pod and "privileged" not in vllm["securityContext"]
    assert [v for v in pod["volumes"] if "hostPath" in v] == []
    assert set(vllm["resources"]["requests"]) == {"cpu", "memory", "ephemeral-storage", "nvidia.com/gpu"}


def test_launcher_tables_fill_every_field_and_pass_ep_flags_only_with_ep():
    topo = topology.build(settings(llmd_version="v0.8.0", provider="baremetal", gateway="none",
                                   decode={"expert_parallel": False}))
    for role in topo.roles:
        script = manifests.vllm_script(topo, role)
        assert "%(" not in script and "<group>" not in script
        assert ("--enable-expert-parallel" in script) == role.expert_parallel, role.name
