"""The renderer (module_utils/render/manifests.py): the base LeaderWorkerSet, the provider's overlay on it, the
inventory's settings last; no provider, release or launcher tested by name."""
import re
from pathlib import Path

import pytest

from ansible_collections.llmd.wide_ep.plugins.module_utils.render import (
    launchers,
    manifests,
    plan,
    profiles,
    providers,
    topology,
)


def topo(**over):
    return topology.build(dict(topology.DEFAULT_SETTINGS, gateway="none", **over))


def test_the_renderer_and_plan_test_no_provider_release_or_launcher_by_name():
    names = set(providers.PROVIDERS) | set(profiles.PROFILES) | set(launchers.LAUNCHERS)
    for module in (manifests, plan):
        source = Path(module.__file__).read_text()
        for name in names:
            assert not re.search(r"""[=!]=\s*["']%s["']""" % re.escape(name), source), (module.__name__, name)
            assert not re.search(r"""in\s*\(["']%s["']""" % re.escape(name), source), (module.__name__, name)


def test_the_overlay_patches_the_base_and_the_inventory_wins():
    t = topo(llmd_version="v0.5.0", provider="coreweave", dp_mode="hybrid",
             decode={"env": {"NCCL_IB_HCA": "mlx5"}, "resources": {"memory": "256Gi", "cpu": "16"}})
    base = manifests.base_leaderworkerset(t, t.decode)
    pod = base["spec"]["leaderWorkerTemplate"]["workerTemplate"]["spec"]
    assert "schedulerName" not in pod and all("emptyDir" in v for v in pod["volumes"])
    lws = manifests.leaderworkerset(t, t.decode)
    pod = lws["spec"]["leaderWorkerTemplate"]["workerTemplate"]["spec"]
    vllm = pod["containers"][0]
    assert pod["schedulerName"] == "custom-binpack-scheduler"
    assert [v["hostPath"]["path"] for v in pod["volumes"] if "hostPath" in v] == list(providers.COREWEAVE_CACHES)
    env = [e["name"] for e in vllm["env"]]
    assert env.count("NCCL_IB_HCA") == 1 and env[-1] == "NCCL_IB_HCA"   # the inventory's, after the overlay's
    assert {"name": "NCCL_IB_HCA", "value": "mlx5"} in vllm["env"]
    res = manifests.vllm_resources(t, t.decode)
    assert res["requests"]["memory"] == res["limits"]["memory"] == "256Gi"
    assert res["requests"]["cpu"] == "16" and "cpu" not in res["limits"]   # a limit only where the guide sets one
    assert res["requests"]["rdma/ib"] == res["limits"]["rdma/ib"] == "1"


def test_gke_overlays_differ_by_release_as_the_guides_do():
    v050 = topo(llmd_version="v0.5.0", provider="gke", dp_mode="hybrid")
    v080 = topo(llmd_version="main-7edda66", provider="gke")
    for t, gib, rdma_n in ((v050, True, False), (v080, False, True)):
        lws = manifests.leaderworkerset(t, t.prefill)
        template = lws["spec"]["leaderWorkerTemplate"]["workerTemplate"]
        vllm = template["spec"]["containers"][0]
        assert ("gib" in [v["name"] for v in template["spec"]["volumes"]]) == gib
        assert ("networking.gke.io.networks/rdma-0" in vllm["resources"]["requests"]) == rdma_n
        assert vllm["securityContext"]["privileged"] is True
        assert template["metadata"]["annotations"]["networking.gke.io/interfaces"].count("rdma-") == 8
        mapping = next(e["value"] for e in vllm["env"] if e["name"] == "DEEP_EP_DEVICE_TO_HCA_MAPPING")
        assert mapping.split(",")[7] == "7:mlx5_7:1"


def test_pod_monitors_are_named_as_the_release_names_them():
    names = {version: sorted(o["metadata"]["name"] for o in manifests.pod_monitors(
        topo(llmd_version=version, provider="coreweave", pod_monitors=True))) for version in profiles.PROFILES}
    assert names["v0.5.0"] == ["ms-wide-ep-llm-d-modelservice-decode-podmonitor",
                               "ms-wide-ep-llm-d-modelservice-prefill-podmonitor"]
    assert names["main-7edda66"] == ["decode", "prefill"]
    assert manifests.pod_monitors(topo(provider="baremetal")) == []


def test_the_drain_is_a_prestop_wait_and_its_grace_and_zero_is_the_guides_pod():
    for version in ("v0.5.0", "main-7edda66", "v0.9.0"):
        for obj in manifests.workloads(topo(llmd_version=version)):
            pod = obj["spec"]["leaderWorkerTemplate"]["workerTemplate"]["spec"]
            vllm = pod["containers"][0]
            assert vllm["lifecycle"] == {"preStop": {"exec": {"command": ["sleep", "30"]}}}, version
            assert pod["terminationGracePeriodSeconds"] == 60, version
            assert all("lifecycle" not in c for c in pod.get("initContainers", [])), "the sidecar stops after vLLM"
        for obj in manifests.workloads(topo(llmd_version=version, drain_seconds=0)):
            pod = obj["spec"]["leaderWorkerTemplate"]["workerTemplate"]["spec"]
            assert "lifecycle" not in pod["containers"][0] and "terminationGracePeriodSeconds" not in pod, version


def test_a_drain_out_of_range_is_one_clear_error():
    for bad in (-1, 3601, "soon", 1.5):
        with pytest.raises(topology.TopologyError, match=r"wide_ep_drain_seconds: .* must be an integer from 0"):
            topo(drain_seconds=bad)
    assert topo(drain_seconds="45").drain_seconds == 45     # -e wide_ep_drain_seconds=45
