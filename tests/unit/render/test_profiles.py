"""The release profiles (module_utils/render/profiles.py): each names only registered providers, gateways and
launchers, carries its router chart and CRDs, and is what users read."""
from ansible_collections.llmd.wide_ep.plugins.module_utils.render import (
    gateways,
    launchers,
    plan,
    profiles,
    providers,
    topology,
)
from tests.support.settings_doc import README, SETTINGS, comment_of


def test_every_release_names_only_registered_providers_gateways_and_launchers():
    for version, profile in profiles.PROFILES.items():
        assert set(profile.providers) <= set(providers.PROVIDERS), version
        assert set(profile.gateways) <= set(gateways.GATEWAYS), version
        assert set(profile.launchers) <= set(topology.DP_MODES), version
        assert set(profile.launchers.values()) <= set(launchers.LAUNCHERS), version
        assert not set(profile.removed) & set(profile.providers), version
        for name, provider in providers.PROVIDERS.items():   # an overlay only where the release has the provider
            if version in provider.overlays:
                assert name in profile.providers, (name, version)


def test_the_release_lists_users_read_are_the_profiles():
    assert SETTINGS["wide_ep_llmd_version"]["choices"] == list(profiles.PROFILES) + list(profiles.RENAMED)
    for version, profile in profiles.PROFILES.items():
        assert version in comment_of("wide_ep_llmd_version"), version
        assert version in README and profile.guide.split()[0].split("@")[1] in README, version


def test_a_profile_is_named_for_what_it_reproduces():
    """A tag's name only for that tag's guide: main at 7edda66 is not llm-d v0.8.0 (its tag runs the dev build on
    both roles); a release branch's commit (v0.9.0 = release-0.9 at e3dbeca1) keeps the release's name."""
    assert profiles.PROFILES["main-7edda66"].guide.startswith("llm-d/llm-d@7edda66 ")
    assert profiles.PROFILES["v0.9.0"].guide.startswith("llm-d/llm-d@e3dbeca1 ")
    assert "v0.8.0" not in profiles.PROFILES and "v0.8.1" not in profiles.PROFILES


def test_the_old_v080_name_still_works_with_one_warning_saying_what_it_means():
    old = plan.render(dict(topology.DEFAULT_SETTINGS, llmd_version="v0.8.0", gateway="none"))
    new = plan.render(dict(topology.DEFAULT_SETTINGS, llmd_version="main-7edda66", gateway="none"))
    assert new["warnings"] == []
    assert len(old["warnings"]) == 1
    assert "v0.8.0 now means main-7edda66" in old["warnings"][0]
    assert "not llm-d's v0.8.0 tag" in old["warnings"][0] and "v0.9.0" in old["warnings"][0]
    assert old["summary"]["llmd_version"] == "main-7edda66"
    assert {k: v for k, v in old.items() if k != "warnings"} == {k: v for k, v in new.items() if k != "warnings"}


def test_the_router_chart_and_crds_come_from_the_profile():
    for version, profile in profiles.PROFILES.items():
        gateway = profile.gateways[0]
        p = plan.render(dict(topology.DEFAULT_SETTINGS, llmd_version=version, provider=profile.providers[0],
                             gateway=gateway, allow_unverified_gateway=True))
        assert p["router"]["chart_ref"] == profile.charts[p["router"]["chart"]], version
        assert p["router"]["chart_version"] == profile.chart_version, version
        assert p["needs"]["inference_crds"] == dict(zip(("version", "manifest"), profile.inference_crds,
                                                        strict=True)), version


def test_an_unknown_release_is_refused_with_the_valid_ones():
    try:
        topology.build(dict(topology.DEFAULT_SETTINGS, llmd_version="v0.7.0"))
    except topology.TopologyError as err:
        assert "wide_ep_llmd_version: 'v0.7.0' is not one of %s" % ", ".join(profiles.PROFILES) in str(err)
    else:
        raise AssertionError("v0.7.0 was accepted")


def test_every_release_pins_its_images_and_charts():
    for version, profile in profiles.PROFILES.items():
        images = dict(profile.images)
        for provider in providers.PROVIDERS.values():
            images.update(provider.overlay(version).images)
        for key, image in images.items():
            assert not topology.floating(image), (version, key, image)
        assert topology.PINNED_TAG.match(profile.chart_version), version


def test_a_floating_image_is_refused_with_the_pinned_one_unless_allowed():
    base = dict(topology.DEFAULT_SETTINGS, llmd_version="v0.9.0", provider="baremetal", gateway="none")
    for image in ("ghcr.io/llm-d/llm-d-router-disagg-sidecar:main", "ghcr.io/llm-d/llm-d-router-disagg-sidecar",
                  "localhost:5001/sidecar", "ghcr.io/llm-d/llm-d-cuda:v0", "ghcr.io/llm-d/llm-d-cuda:latest"):
        try:
            topology.build(dict(base, images={"routing_sidecar": image}))
        except topology.TopologyError as err:
            assert "wide_ep_images.routing_sidecar: %r is a floating tag" % image in str(err)
            assert "e.g. ghcr.io/llm-d/llm-d-router-disagg-sidecar:v0.10.0 (llm-d v0.9.0's)" in str(err)
        else:
            raise AssertionError("%s was accepted" % image)
    allowed = topology.build(dict(base, images={"routing_sidecar": "x/sidecar:main"}, allow_floating_tags="true"))
    assert allowed.images["routing_sidecar"] == "x/sidecar:main"
    for pinned in ("localhost:5001/vllm:v0.26.0", "x/y@sha256:" + "a" * 64, "x/cuda:0.26.0-gpu-py312-cu130",
                   "ghcr.io/llm-d/llm-d-cuda-dev:sha-a1bcf21"):
        assert topology.build(dict(base, images={"vllm": pinned})).images["vllm"] == pinned


def test_a_release_with_the_disaggregatedset_has_a_router_that_screens_its_revisions():
    """The set's rollout pairs prefill and decode of one revision only through the router's screener."""
    for version, profile in profiles.PROFILES.items():
        has_set = "disaggregatedset" in profile.workloads
        assert (profile.revision_screener is not None) == has_set, version
        assert not has_set or profile.router == "llm-d-router", version
