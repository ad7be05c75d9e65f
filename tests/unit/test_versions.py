"""Every version comparison goes through packaging (module_utils/versions.py): pre-releases sort below their
release, a leading v and build metadata are accepted, a vendor's build is its release; and the gates that use it."""
import pytest

from ansible_collections.llmd.wide_ep.plugins.module_utils import versions
from ansible_collections.llmd.wide_ep.plugins.module_utils.day2 import lws_controller, rollout


@pytest.mark.parametrize("text,parsed", [
    ("1.28.1-beta.0", "1.28.1b0"), ("v1.3.0-rc.1", "1.3.0rc1"), ("v1.30.5-gke.1014001", "1.30.5"),
    ("v1.29.3+k3s1", "1.29.3+k3s1"), ("v1.28.9-eks-036c24b", "1.28.9"), ("v1.2.3-amzn", "1.2.3"),
    ("570.124.06", "570.124.6"), ("v4.3.2", "4.3.2"), ("1.2.3-beta.0.1", "1.2.3b0"),
])
def test_parse(text, parsed):
    assert str(versions.parse(text)) == parsed


@pytest.mark.parametrize("text", ["", None, "latest", "main", "sha256:abcd"])
def test_no_version_is_none(text):
    assert versions.parse(text) is None
    assert not versions.at_least(text, "1.0.0")


def test_pre_releases_sort_below_their_release():
    assert not versions.at_least("1.28.1-beta.0", "1.28.1")
    assert not versions.at_least("v1.3.0-rc.1", "1.3.0")
    assert versions.at_least("1.28.1", "1.28.1") and versions.at_least("1.28.2-rc.0", "1.28.1")
    assert versions.same("v1.3.0", "1.3.0") and not versions.same("v1.3.0-rc.1", "v1.3.0")
    assert versions.minor("v1.30.5-gke.1014001") == (1, 30)


def test_the_istio_gate_refuses_a_pre_release_of_the_minimum():
    """Istio 1.28.1 is the first that routes to a pool of several target ports: its beta is not."""
    problems = rollout.compatibility({}, {"istio": "1.28.1-beta.0"}, "dp-aware", "istio", False)
    assert problems == ["istio 1.28.1-beta.0 is below 1.28.1: the first Istio that routes to an InferencePool with "
                        "several target ports (DP-aware)"]
    assert rollout.compatibility({}, {"istio": "1.28.1"}, "dp-aware", "istio", False) == []


def test_the_chart_gate_reads_a_release_candidate_as_below_its_release():
    problems = rollout.compatibility({"inferencepool_chart": "v1.3.0"}, {"inferencepool_chart": "v1.3.0-rc.1"},
                                     "dp-aware", "istio", False)
    assert problems == ["inferencepool_chart v1.3.0-rc.1 would downgrade v1.3.0 (set upgrade_allow_downgrade to "
                        "mean it)"]


def test_the_chart_minimum_is_gaies_and_not_llm_d_routers():
    """GAIE's inferencepool chart below 1.0.0 has no InferencePool v1; llm-d-router's charts number from v0.9.0 and
    all serve it (main-7edda66 -> v0.9.0 upgrades wide-ep-lws from 0.9.0 to v0.10.0)."""
    gaie = rollout.compatibility({}, {"inferencepool_chart": "v0.9.0"}, "dp-aware", "none", False)
    assert gaie == ["inferencepool_chart v0.9.0 is below 1.0.0: InferencePool inference.networking.k8s.io/v1, "
                    "which the HTTPRoute references"]
    assert rollout.compatibility({"inferencepool_chart": "0.9.0"}, {"inferencepool_chart": "v0.10.0"}, "dp-aware",
                                 "none", False, router_chart="llm-d-router-standalone") == []
    assert rollout.compatibility({"inferencepool_chart": "0.10.0"}, {"inferencepool_chart": "v0.9.0"}, "dp-aware",
                                 "none", False, router_chart="llm-d-router-standalone") == [
        "inferencepool_chart v0.9.0 would downgrade 0.10.0 (set upgrade_allow_downgrade to mean it)"]


def test_lws_is_upgraded_from_its_release_candidate():
    found = {"crd": True, "managed_by": "helm", "version": lws_controller.version("v0.7.0-rc.1"), "webhook_url": None}
    assert found["version"] == "0.7.0-rc.1"
    action, why = lws_controller.action(found, "0.7.0")
    assert action == "upgrade", why


def test_newer():
    assert versions.newer("v1.5.1", "v1.4.0") and versions.newer("v1.5.0", "v1.5.0-dev")
    assert not versions.newer("v1.4.0", "v1.5.1") and not versions.newer("v1.4.0", "1.4.0")
    assert not versions.newer("latest", "v1.4.0") and not versions.newer("v1.4.0", "")
