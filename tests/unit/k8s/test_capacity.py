"""Free GPUs per node and whether groups fit (module_utils/k8s/capacity.py)."""
from ansible_collections.llmd.wide_ep.plugins.module_utils.k8s import capacity


def node(name, gpus, unschedulable=False, labels=None):
    return {"metadata": {"name": name, "labels": labels or {}}, "spec": {"unschedulable": unschedulable},
            "status": {"allocatable": {"nvidia.com/gpu": str(gpus)}}}


def pod(node_name, gpus, phase="Running", limits_only=False):
    res = {"limits": {"nvidia.com/gpu": str(gpus)}} if limits_only else {"requests": {"nvidia.com/gpu": str(gpus)}}
    return {"spec": {"nodeName": node_name, "containers": [{"resources": res}, {"resources": {}}]},
            "status": {"phase": phase}}


def test_free_gpus_counts_live_pods_on_schedulable_nodes():
    nodes = [node("a", 8), node("b", 8), node("c", 8, unschedulable=True), node("d", 8, labels={"pool": "x"})]
    pods = [pod("a", 8), pod("b", 4, limits_only=True), pod("b", 4, phase="Succeeded"), pod("c", 2), pod(None, 8)]
    assert capacity.free_gpus(nodes, pods) == {"a": 0, "b": 4, "d": 8}
    assert capacity.free_gpus(nodes, pods, selector={"pool": "x"}) == {"d": 8}


def test_placeable_puts_whole_pods_on_single_nodes():
    assert capacity.placeable({"a": 8, "b": 8}, [8, 8]) == 2
    assert capacity.placeable({"a": 8, "b": 4}, [8, 8]) == 1      # 4 + 4 free is not room for one 8-GPU pod
    assert capacity.placeable({"a": 6, "b": 6}, [4, 4, 4]) == 2
    assert capacity.placeable({}, [1]) == 0


def test_pod_gpus_reads_the_worker_template():
    lws = {"spec": {"leaderWorkerTemplate": {"workerTemplate": {"spec": {"containers": [
        {"resources": {"limits": {"nvidia.com/gpu": "8"}}}, {"resources": {"requests": {"cpu": "1"}}}]}}}}}
    assert capacity.pod_gpus(lws) == 8


def test_group_pods_lists_each_pod_of_the_groups():
    spec = {"replicas": 2, "leaderWorkerTemplate": {"size": 2, "workerTemplate": {"spec": {"containers": [
        {"resources": {"limits": {"nvidia.com/gpu": "8"}}}]}}}}
    assert capacity.group_pods(spec) == [8, 8, 8, 8]
    assert capacity.group_pods(spec, groups=1) == [8, 8]


def test_fits_is_all_of_them_or_not():
    assert capacity.fits({"a": 8, "b": 8}, [8, 8])
    assert not capacity.fits({"a": 8, "b": 4}, [8, 8])
    assert capacity.fits({}, [])


def test_surge_pods_is_one_more_group_of_every_spec_together():
    decode = {"replicas": 3, "leaderWorkerTemplate": {"size": 2, "workerTemplate": {"spec": {"containers": [
        {"resources": {"limits": {"nvidia.com/gpu": "8"}}}]}}}}
    prefill = {"replicas": 1, "leaderWorkerTemplate": {"workerTemplate": {"spec": {"containers": [
        {"resources": {"limits": {"nvidia.com/gpu": "4"}}}]}}}}
    assert capacity.surge_pods([decode, prefill]) == [8, 8, 4]
    assert capacity.surge_pods([]) == []
