"""The placement simulation (module_utils/k8s/placement.py) on nodes and pods as the API returns them: every group
of the plan's workload placed on what is free, or the group named with what each node lacks."""
from ansible_collections.llmd.wide_ep.plugins.module_utils.k8s import placement
from ansible_collections.llmd.wide_ep.plugins.module_utils.render import plan, topology

H200 = {"gpu.nvidia.com/model": "H200"}


def node(name, gpus=8, labels=None, taints=None, cordoned=False, **extra):
    alloc = {"cpu": "128", "memory": "2Ti", "ephemeral-storage": "4Ti", "pods": "110", "nvidia.com/gpu": str(gpus),
             "rdma/ib": "1", **extra}
    return {"metadata": {"name": name, "labels": dict(H200, **(labels or {}))},
            "spec": {"unschedulable": cordoned, "taints": taints or []}, "status": {"allocatable": alloc}}


def workloads(**over):
    return plan.render(dict(topology.DEFAULT_SETTINGS, provider="local", dp_mode="dp-aware", **over))["objects"][
        "workloads"]


def pod(node_name, gpus, ns="other", labels=None):
    return {"metadata": {"namespace": ns, "labels": labels or {}}, "spec": {"nodeName": node_name, "containers": [
        {"resources": {"requests": {"nvidia.com/gpu": str(gpus)}}}]}, "status": {"phase": "Running"}}


def verdicts(nodes, pods=(), **over):
    return [(r, i, why) for r, i, size, need, why in placement.simulate(nodes, list(pods), workloads(**over),
                                                                        own=lambda p: False)]


def test_the_guides_groups_fit_four_free_nodes():
    assert verdicts([node("gpu-%d" % i) for i in range(4)]) == [("prefill", 0, None), ("decode", 0, None)]


def test_a_group_that_does_not_fit_is_named_with_what_each_node_lacks():
    nodes = [node("gpu-0"), node("gpu-1"), node("gpu-2"),
             node("gpu-3", taints=[{"key": "nvidia.com/maintenance", "effect": "NoSchedule"}]),
             node("gpu-4", cordoned=True), node("gpu-5", labels={"gpu.nvidia.com/model": "B200"})]
    out = verdicts(nodes, [pod("gpu-2", 4)])
    assert out[0] == ("prefill", 0, None)
    role, index, why = out[1]
    assert (role, index) == ("decode", 0)
    assert why.startswith("needs 2 node(s) with 8 nvidia.com/gpu and 1 rdma/ib: no such node is free"), why
    assert "gpu-2 has 4 of the 8 nvidia.com/gpu a pod needs free" in why
    assert "gpu-3 tainted nvidia.com/maintenance:NoSchedule" in why
    assert "gpu-4 cordoned" in why
    assert "gpu-5 outside the required node affinity (gpu.nvidia.com/model In H200)" in why


def test_a_missing_extended_resource_is_named():
    nodes = [node("gpu-%d" % i) for i in range(3)] + [dict(node("gpu-3"), status={"allocatable": {
        "cpu": "128", "memory": "2Ti", "ephemeral-storage": "4Ti", "nvidia.com/gpu": "8"}})]
    (dummy, (role, index, why)) = verdicts(nodes)
    assert "1 such node(s) free (gpu-0)" in why and "gpu-3 has no rdma/ib" in why
    assert "gpu-2 has 0 of the 8 nvidia.com/gpu a pod needs free (after prefill group 0)" in why


def test_the_deployments_own_pods_do_not_hold_room_for_the_plan():
    nodes = [node("gpu-%d" % i) for i in range(4)]
    mine = [pod("gpu-%d" % i, 8, ns="llm-d-wide-ep", labels={"llm-d.ai/guide": "wide-ep-lws"}) for i in range(4)]
    out = placement.simulate(nodes, mine, workloads(), own=lambda p: p["metadata"]["namespace"] == "llm-d-wide-ep")
    assert [why for *dummy, why in out] == [None, None]
    out = placement.simulate(nodes, mine, workloads(), own=lambda p: False)
    assert all(why for *dummy, why in out)


def test_a_toleration_lets_a_tainted_node_in():
    spec = {"tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]}
    tainted = node("gpu-0", taints=[{"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}])
    assert placement.why_not(tainted, spec) is None
    assert placement.why_not(tainted, {}) == "tainted nvidia.com/gpu=present:NoSchedule"


def test_quantities():
    assert placement.quantity("512Gi") == 512 * 2 ** 30 and placement.quantity("100m") == 0.1
    assert placement.quantity("8") == 8 and placement.quantity("2Ti") == 2 * 2 ** 40


def test_pods_being_deleted_free_their_room():
    nodes = [node("gpu-%d" % i) for i in range(4)]
    leaving = [dict(pod("gpu-%d" % i, 8), metadata={"namespace": "t", "deletionTimestamp": "2026-12-06T00:00:00Z"})
               for i in range(4)]
    assert [why for *dummy, why in placement.simulate(nodes, leaving, workloads(), own=lambda p: False)] == [None,
                                                                                                           None]


def test_a_native_sidecar_runs_beside_the_pod_and_a_plain_init_container_before_it():
    spec = {"containers": [{"resources": {"requests": {"cpu": "2", "nvidia.com/gpu": "8"}}}],
            "initContainers": [{"restartPolicy": "Always", "resources": {"requests": {"cpu": "1"}}},
                               {"resources": {"requests": {"cpu": "2500m", "memory": "1Gi"}}}]}
    assert placement.pod_requests(spec) == {"cpu": 3, "nvidia.com/gpu": 8, "memory": 2 ** 30}
