"""The NIC mesh as pods (module_utils/fabric/mesh_pods.py) over the in-memory API server: one host-network agent
per node with its RDMA device, the records read from their logs, a failed pod named, everything cleaned up."""
import json

import pytest

from ansible_collections.llmd.wide_ep.plugins.module_utils.fabric import mesh_pods
from ansible_collections.llmd.wide_ep.plugins.module_utils.k8s.client import Client
from ansible_collections.llmd.wide_ep.plugins.module_utils.k8s.errors import K8sError
from tests.support.fake_api import FakeApi

NICS = {"gpu-1": [{"device": "mlx5_0", "address": "10.0.0.1"}], "gpu-2": [{"device": "mlx5_0", "address": "10.0.0.2"}]}


def params(**over):
    return dict({"rounds": [[["gpu-1", 0, "gpu-2", 0]]], "nics": NICS, "namespace": "mesh", "image": "img:1",
                 "rdma_resource": "rdma/ib", "probe": "rdma", "duration": 1.0, "port_base": 20000,
                 "rendezvous_timeout": 5.0, "connect_timeout": 1.0, "run": True, "cleanup": True,
                 "wait_timeout": 60}, **over)


def pods_finish(api, phase="Succeeded"):
    def react(obj):
        if obj["kind"] == "Pod":
            path = [p for p in api.objects if p.endswith("/pods/" + obj["metadata"]["name"])][0]
            api.objects[path]["status"] = {"phase": phase}
            record = {"host_b": obj["spec"]["nodeName"], "connected": True}
            api.logs[("mesh", obj["metadata"]["name"])] = "LLMD-NIC-MESH " + json.dumps({"records": [record]})
    api.on_apply.append(react)


def test_render_one_agent_per_node_with_its_config_and_rdma_device():
    objs = mesh_pods.render(params())
    assert [o["kind"] for o in objs] == ["Namespace", "ConfigMap", "Pod", "Pod"]
    data = objs[1]["data"]
    assert "def run_agent(" in data["mesh_probe.py"]
    assert json.loads(data["config-nic-mesh-gpu-1.json"])["host"] == "gpu-1"
    pod = objs[2]["spec"]
    assert pod["nodeName"] == "gpu-1" and pod["hostNetwork"] is True
    assert pod["containers"][0]["resources"] == {"limits": {"rdma/ib": "1"}, "requests": {"rdma/ib": "1"}}
    assert mesh_pods.render(params(rdma_resource=""))[2]["spec"]["containers"][0]["resources"] == {}
    assert mesh_pods.pod_name("GPU_Node.7") == "nic-mesh-gpu-node-7"


def test_records_are_collected_and_the_agents_cleaned_up(monkeypatch):
    api = FakeApi()
    pods_finish(api)
    monkeypatch.setattr(mesh_pods.time, "sleep", lambda s: None)
    out = mesh_pods.run(Client(transport=api), params())
    assert sorted(r["host_b"] for r in out["records"]) == ["gpu-1", "gpu-2"]
    assert [p for p in api.objects if "/pods/" in p or "/configmaps/" in p] == []


def test_a_failed_agent_is_named(monkeypatch):
    api = FakeApi()
    pods_finish(api, phase="Failed")
    monkeypatch.setattr(mesh_pods.time, "sleep", lambda s: None)
    with pytest.raises(K8sError, match="NIC mesh pod nic-mesh-gpu-1 failed; see its log"):
        mesh_pods.run(Client(transport=api), params())
