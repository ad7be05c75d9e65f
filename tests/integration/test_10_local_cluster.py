"""Proof that the local cluster is a real one: real API server, scheduler and LWS controller; kwok nodes."""
import socket
import subprocess

import pytest
import yaml

from tests.support.runs import ROOT


def lws(name, ns, gpus, size=2):
    return {
        "apiVersion": "leaderworkerset.x-k8s.io/v1", "kind": "LeaderWorkerSet",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"replicas": 1, "leaderWorkerTemplate": {"size": size, "workerTemplate": {
            "metadata": {"labels": {"app": name}},
            "spec": {"containers": [{"name": "c", "image": "registry.invalid/none:0",
                                     "resources": {"limits": {"nvidia.com/gpu": str(gpus)}}}]}}}},
    }


def pods(cluster, ns, name):
    items = cluster.json("get", "pods", "-n", ns, "-l", f"leaderworkerset.sigs.k8s.io/name={name}")["items"]
    return sorted(items, key=lambda p: p["metadata"]["name"])


def condition(obj, ctype):
    for c in obj.get("status", {}).get("conditions", []):
        if c["type"] == ctype:
            return c
    return {}


def test_namespace_has_only_loopback():
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=True).stdout.splitlines()
    assert [line.split(":")[1].strip() for line in links] == ["lo"]
    # Any non-loopback destination fails at once instead of leaving the machine.
    for addr in ("10.0.0.5", "192.0.2.1", "8.8.8.8"):
        with pytest.raises(OSError):
            socket.create_connection((addr, 80), timeout=2)


def test_control_plane_versions_and_nodes(cluster):
    version = cluster.json("version")
    versions = (ROOT / "tests/support/cluster/versions.env").read_text()
    assert f"KUBE_VERSION={version['serverVersion']['gitVersion'].lstrip('v')}" in versions
    nodes = cluster.json("get", "nodes")["items"]
    data = yaml.safe_load((ROOT / "tests/support/cluster/nodes.yaml").read_text())
    assert sorted(n["metadata"]["name"] for n in nodes) == sorted(n["name"] for n in data["nodes"])
    for node in nodes:
        alloc = node["status"]["allocatable"]
        assert alloc["nvidia.com/gpu"] == "8" and alloc["rdma/ib"] == "1"
        assert node["metadata"]["labels"]["gpu.nvidia.com/model"] == "H200"
        assert "topology.kubernetes.io/zone" in node["metadata"]["labels"]
        assert condition(node, "Ready")["status"] == "True"


def test_lws_group_schedules_runs_and_recreates(cluster, namespace):
    cluster.apply([lws("grp", namespace, gpus=8)])
    # The LWS controller creates both pods, the scheduler binds them to two nodes, kwok runs them.
    running = cluster.wait_for("2 running pods", lambda: (lambda ps: ps if len(ps) == 2 and all(
        p["status"].get("phase") == "Running" for p in ps) else None)(pods(cluster, namespace, "grp")))
    assert len({p["spec"]["nodeName"] for p in running}) == 2, "8 GPUs per pod: the pods need two nodes"
    # The LWS pod webhook labelled them: proof it is wired through the API server.
    assert sorted(p["metadata"]["labels"]["leaderworkerset.sigs.k8s.io/worker-index"] for p in running) == ["0", "1"]
    cluster.wait_for("LWS Available", lambda: condition(
        cluster.json("get", "lws", "grp", "-n", namespace), "Available").get("status") == "True")

    before = {p["metadata"]["name"]: p["metadata"]["uid"] for p in running}
    cluster("delete", "pod", "-n", namespace, "grp-0-1", "--wait=false")

    def recreated():
        now = pods(cluster, namespace, "grp")
        uids = {p["metadata"]["name"]: p["metadata"]["uid"] for p in now}
        fresh = len(now) == 2 and all(uids.get(n) not in (None, u) for n, u in before.items())
        return fresh and all(p["status"].get("phase") == "Running" for p in now)
    cluster.wait_for("the whole group recreated", recreated, timeout=120)
    cluster.wait_for("LWS Available again", lambda: condition(
        cluster.json("get", "lws", "grp", "-n", namespace), "Available").get("status") == "True")


def test_lws_asking_nine_gpus_stays_pending(cluster, namespace):
    cluster.apply([lws("big", namespace, gpus=9)])
    pending = cluster.wait_for("unschedulable pods", lambda: (lambda ps: ps if ps and all(
        condition(p, "PodScheduled").get("reason") == "Unschedulable" for p in ps) else None)(
        pods(cluster, namespace, "big")))
    for pod in pending:
        assert pod["status"]["phase"] == "Pending"
        assert "nvidia.com/gpu" in condition(pod, "PodScheduled")["message"]
    assert condition(cluster.json("get", "lws", "big", "-n", namespace), "Available").get("status") != "True"
