# Copyright: llm-d wide-EP collection contributors
# Apache-2.0
"""The NIC mesh as Kubernetes pods: one host-network agent pod per node (the probe shipped in a ConfigMap), each
running its rounds of the schedule, their records read back from the pods' logs."""
from __future__ import annotations

import inspect
import json
import time

from ansible_collections.llmd.wide_ep.plugins.module_utils.fabric import mesh_probe
from ansible_collections.llmd.wide_ep.plugins.module_utils.k8s.errors import K8sError
from ansible_collections.llmd.wide_ep.plugins.module_utils.progress import Progress

RUNNER = """import json, sys
sys.path.insert(0, "/agent")
import mesh_probe
cfg = json.load(open(sys.argv[1]))
out = mesh_probe.run_agent(**cfg)
print("LLMD-NIC-MESH " + json.dumps(out))
"""
LABEL = "llmd.ai/nic-mesh"


def pod_name(node):
    return ("nic-mesh-" + node.lower().replace(".", "-").replace("_", "-"))[:63].rstrip("-")


def render(p):
    """The ConfigMap and one pod per node."""
    ns = p["namespace"]
    data = {"mesh_probe.py": inspect.getsource(mesh_probe), "run.py": RUNNER}
    for node in p["nics"]:
        data["config-%s.json" % pod_name(node)] = json.dumps({
            "host": node, "rounds": p["rounds"], "nics": p["nics"], "probe": p["probe"], "duration": p["duration"],
            "port_base": p["port_base"], "rendezvous": p["rendezvous_timeout"],
            "connect_timeout": p["connect_timeout"]})
    objs = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}},
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "nic-mesh-agent", "namespace": ns,
                                                                   "labels": {LABEL: "agent"}}, "data": data}]
    for node in p["nics"]:
        name = pod_name(node)
        resources = {"limits": {p["rdma_resource"]: "1"}, "requests": {p["rdma_resource"]: "1"}} \
            if p["rdma_resource"] else {}
        objs.append({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": ns, "labels": {LABEL: "agent"}},
            "spec": {
                "nodeName": node, "hostNetwork": True, "restartPolicy": "Never",
                "tolerations": [{"operator": "Exists"}],
                "containers": [{
                    "name": "agent", "image": p["image"],
                    "command": ["python3", "/agent/run.py", "/agent/config-%s.json" % name],
                    "resources": resources,
                    "securityContext": {"capabilities": {"add": ["IPC_LOCK"]}},
                    "volumeMounts": [{"name": "agent", "mountPath": "/agent"}]}],
                "volumes": [{"name": "agent", "configMap": {"name": "nic-mesh-agent"}}]}})
    return objs


def run(client, p):
    """Apply the agent pods, wait for their rounds, collect their records, clean up."""
    objs = render(p)
    pods = [o for o in objs if o["kind"] == "Pod"]
    for obj in objs:
        client.apply(obj, force=True)
    result = {"changed": True, "pods": [o["metadata"]["name"] for o in pods]}
    if p["run"]:
        result["records"] = collect(client, p, pods)
    if p["cleanup"]:
        for obj in reversed(objs[1:]):
            client.delete(obj)
    return result


def collect(client, p, pods):
    deadline, records, progress, started = time.time() + p["wait_timeout"], [], Progress(), time.time()
    pending = list(pods)
    progress.live("waiting for %d NIC mesh pods to run their rounds" % len(pods))
    while pending:
        if time.time() > deadline:
            raise K8sError("timed out waiting for NIC mesh pods %s" % ", ".join(o["metadata"]["name"]
                                                                                for o in pending))
        still = []
        for pod in pending:
            phase = (client.get(pod) or {}).get("status", {}).get("phase")
            if phase == "Failed":
                raise K8sError("NIC mesh pod %s failed; see its log" % pod["metadata"]["name"])
            if phase != "Succeeded":
                still.append(pod)
        line = "NIC mesh pods: %d/%d done after %ds; running: %s" % (
            len(pods) - len(still), len(pods), time.time() - started,
            ", ".join(o["metadata"]["name"] for o in still[:4]) or "none")
        if len(still) != len(pending):
            progress.live(line)
        else:
            progress.still(line)   # nothing new: a heartbeat every HEARTBEAT seconds
        pending = still
        time.sleep(2 if pending else 0)
    for pod in pods:
        log = client.logs(p["namespace"], pod["metadata"]["name"])
        lines = [line for line in log.splitlines() if line.startswith("LLMD-NIC-MESH ")]
        if not lines:
            raise K8sError("pod %s printed no records" % pod["metadata"]["name"])
        records.extend(json.loads(lines[-1].split(" ", 1)[1])["records"])
    return records
