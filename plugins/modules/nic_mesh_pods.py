#!/usr/bin/python
# Copyright: llm-d wide-EP collection contributors
# Apache-2.0
from __future__ import annotations

DOCUMENTATION = r"""
module: nic_mesh_pods
short_description: Run the NIC mesh preflight as one pod per node, for clusters without node SSH
description:
  - For managed clusters such as CoreWeave CKS, where nodes cannot be reached over SSH. Creates a ConfigMap with
    the agent (the same code M(llmd.wide_ep.nic_mesh_agent) runs) and the plan, and one pod per node, pinned to
    it, with host networking and the RDMA device-plugin resource. Each pod runs its node's side of every round;
    the module waits for them, reads each pod's records from its log, and removes what it created.
  - Returns the records in the form M(llmd.wide_ep.nic_mesh_report) takes.
version_added: 0.1.0
author: llm-d wide-EP collection contributors (@llm-d)
options:
  rounds:
    description: The plan's rounds (node names as hosts).
    type: list
    elements: list
    required: true
  nics:
    description:
      - Per node, its NICs in plan order (C(device), C(address), C(gid_index), C(port)). For the rdma probe the
        address is any address of the node the peer can reach for the tools' out-of-band exchange.
    type: dict
    required: true
  namespace:
    description: Namespace for the pods.
    type: str
    default: llm-d-nic-mesh
  image:
    description: Image with python3 and, for the rdma probe, rdma-core and perftest.
    type: str
    default: ghcr.io/llm-d/llm-d-cuda:v0.5.0
  rdma_resource:
    description: Device-plugin resource each pod requests (empty for none).
    type: str
    default: rdma/ib
  probe:
    description: tcp or rdma.
    type: str
    choices: [tcp, rdma]
    default: rdma
  duration:
    description: Seconds of traffic per link.
    type: float
    default: 2.0
  port_base:
    description: First TCP port of the probes.
    type: int
    default: 20000
  rendezvous_timeout:
    description: Seconds a test waits for its peer.
    type: float
    default: 60.0
  connect_timeout:
    description: Seconds per connection attempt.
    type: float
    default: 3.0
  run:
    description: Wait for the pods and collect their records; false only creates them.
    type: bool
    default: true
  cleanup:
    description: Delete the pods and the ConfigMap afterwards.
    type: bool
    default: true
  wait_timeout:
    description: Seconds to wait for all pods to finish.
    type: int
    default: 3600
extends_documentation_fragment:
  - llmd.wide_ep.k8s
"""

EXAMPLES = r"""
- name: NIC mesh as pods
  llmd.wide_ep.nic_mesh_pods:
    rounds: "{{ plan.plan.rounds }}"
    nics: "{{ plan.nics }}"
  register: mesh
"""

RETURN = r"""
records:
  description: All nodes' records.
  returned: when run
  type: list
  elements: dict
pods:
  description: The pods created, one per node.
  returned: always
  type: list
  elements: str
"""

import inspect
import json
import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.llmd.wide_ep.plugins.module_utils import mesh_probe
from ansible_collections.llmd.wide_ep.plugins.module_utils.k8s.auth import AUTH_ARG_SPEC
from ansible_collections.llmd.wide_ep.plugins.module_utils.k8s.client import Client
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


def main():
    spec = dict(AUTH_ARG_SPEC)
    spec.update(
        rounds={"type": "list", "elements": "list", "required": True}, nics={"type": "dict", "required": True},
        namespace={"type": "str", "default": "llm-d-nic-mesh"},
        image={"type": "str", "default": "ghcr.io/llm-d/llm-d-cuda:v0.5.0"},
        rdma_resource={"type": "str", "default": "rdma/ib"},
        probe={"type": "str", "default": "rdma", "choices": ["tcp", "rdma"]},
        duration={"type": "float", "default": 2.0}, port_base={"type": "int", "default": 20000},
        rendezvous_timeout={"type": "float", "default": 60.0}, connect_timeout={"type": "float", "default": 3.0},
        run={"type": "bool", "default": True}, cleanup={"type": "bool", "default": True},
        wait_timeout={"type": "int", "default": 3600},
    )
    module = AnsibleModule(argument_spec=spec, supports_check_mode=False)
    p = module.params
    objs = render(p)
    pods = [o for o in objs if o["kind"] == "Pod"]
    try:
        client = Client(p)
        for obj in objs:
            client.apply(obj, force=True)
        result = {"changed": True, "pods": [o["metadata"]["name"] for o in pods]}
        if p["run"]:
            result["records"] = collect(client, p, pods)
        if p["cleanup"]:
            for obj in reversed(objs[1:]):
                client.delete(obj)
    except K8sError as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(**result)


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


if __name__ == "__main__":
    main()
