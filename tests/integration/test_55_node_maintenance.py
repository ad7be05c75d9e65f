"""Node maintenance on the local cluster: a node's EP group goes down whole, nothing else is touched, and the
node and the group come back. The deployment fills all four nodes, so a drained group has nowhere to go: the
playbook refuses unless told to accept the downtime. With two spare nodes, the role keeps serving: a surge group
starts on them first and goes once the node is back."""
import time

import pytest
import yaml

from tests.support.runs import run_playbook, spare_gpu_nodes, task_results

NS = "llm-d-wide-ep"
GROUP_NAME = "leaderworkerset.sigs.k8s.io/name"


@pytest.fixture(scope="module")
def stack(cluster):
    cluster("delete", "namespace", NS, "--ignore-not-found", "--wait=true", "--timeout=120s")
    rc, _, _, log = run_playbook("site.yml")
    assert rc == 0, log
    yield cluster
    cluster("uncordon", "gpu-node-0", "gpu-node-1", "gpu-node-2", "gpu-node-3")
    cluster("delete", "namespace", NS, "--wait=true", "--timeout=120s")


def lws_pods(cluster):
    return cluster.json("get", "pods", "-n", NS, "-l", GROUP_NAME)["items"]


def by_node(pods):
    return {p["spec"].get("nodeName"): p for p in pods}


def test_refuses_when_the_group_has_nowhere_to_go(stack):
    cluster = stack
    node = "gpu-node-1"
    victim = by_node(lws_pods(cluster))[node]
    rc, stats, out, log = run_playbook("playbooks/node_maintenance.yml", extra_vars={"maintenance_node": node})
    assert rc != 0
    (res,) = task_results(out, "Cordon the node and take its EP groups down whole")
    group = "%s/%s/0" % (NS, victim["metadata"]["labels"][GROUP_NAME])
    assert res["localhost"]["msg"].startswith("draining gpu-node-1 takes down EP group(s) %s (2 pods)" % group)
    assert "Set accept_downtime (maintenance_accept_downtime) to go ahead" in res["localhost"]["msg"]
    assert not cluster.json("get", "node", node)["spec"].get("unschedulable")
    assert sum(h["changed"] for h in stats.values()) == 0


def test_refuses_while_an_upgrade_rolls_the_model_servers(stack):
    cluster = stack
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime())
    cluster.apply([{"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                    "metadata": {"name": "wide-ep-rollout", "namespace": NS},
                    "spec": {"holderIdentity": "controller/4242/run", "leaseDurationSeconds": 90, "renewTime": stamp}}])
    before = {p["metadata"]["uid"] for p in lws_pods(cluster)}
    try:
        rc, stats, out, log = run_playbook("playbooks/node_maintenance.yml", extra_vars={
            "maintenance_node": "gpu-node-1", "maintenance_accept_downtime": True})
    finally:
        cluster("delete", "lease", "-n", NS, "wide-ep-rollout")
    assert rc != 0
    (res,) = task_results(out, "Cordon the node and take its EP groups down whole")
    assert res["localhost"]["msg"] == (
        "an upgrade or rollback is rolling the model servers of namespace %s (Lease wide-ep-rollout held by "
        "controller/4242/run, renewed %s): drain gpu-node-1 after it ends" % (NS, stamp)), res["localhost"]["msg"]
    assert not cluster.json("get", "node", "gpu-node-1")["spec"].get("unschedulable")
    assert {p["metadata"]["uid"] for p in lws_pods(cluster)} == before
    assert sum(h["changed"] for h in stats.values()) == 0


def test_drains_the_whole_group_and_brings_it_back(stack):
    cluster = stack
    node = "gpu-node-1"
    before = lws_pods(cluster)
    victim = by_node(before)[node]
    name = victim["metadata"]["labels"][GROUP_NAME]
    untouched = {p["metadata"]["uid"] for p in before if p["metadata"]["labels"][GROUP_NAME] != name}
    rc, _, out, log = run_playbook("playbooks/node_maintenance.yml", extra_vars={
        "maintenance_node": node, "maintenance_accept_downtime": True, "maintenance_timeout": 120})
    assert rc == 0, log
    (drained,) = task_results(out, "Cordon the node and take its EP groups down whole")
    assert drained["localhost"]["groups"] == ["%s/%s/0" % (NS, name)]
    after = lws_pods(cluster)
    # The other role's group was never touched; the drained group is new, both of its pods (not just the one
    # on the node), and Ready again once the node came back.
    assert untouched <= {p["metadata"]["uid"] for p in after}
    group_after = [p for p in after if p["metadata"]["labels"][GROUP_NAME] == name]
    assert len(group_after) == 2
    assert not {p["metadata"]["uid"] for p in group_after} & {p["metadata"]["uid"] for p in before}
    assert all(any(c["type"] == "Ready" and c["status"] == "True" for c in p["status"]["conditions"])
               for p in group_after)
    assert not cluster.json("get", "node", node)["spec"].get("unschedulable")
    rc, stats, _, log = run_playbook("playbooks/verify.yml")
    assert rc == 0, log


def test_with_room_for_one_more_group_the_role_keeps_a_group_serving(stack, tmp_path):
    cluster = stack
    node = "gpu-node-2"
    victim = by_node(lws_pods(cluster))[node]
    name = victim["metadata"]["labels"][GROUP_NAME]
    with spare_gpu_nodes(cluster, 2):
        rc, _, out, log = run_playbook("playbooks/node_maintenance.yml", extra_vars={
            "maintenance_node": node, "maintenance_timeout": 120})
        assert rc == 0, log
        (drained,) = task_results(out, "Cordon the node and take its EP groups down whole")
        assert drained["localhost"]["surged"] == ["LeaderWorkerSet %s/%s" % (NS, name)]
        (back,) = task_results(out, "Uncordon, then wait for the node and every EP group to be Ready, and give the "
                                    "surge groups back")
        assert back["localhost"]["surged"] == ["LeaderWorkerSet %s/%s" % (NS, name)]
        live = cluster.json("get", "lws", "-n", NS, name, "--show-managed-fields")
        assert live["spec"]["replicas"] == 1
        assert "llmd.ai/maintenance-surge" not in live["metadata"].get("annotations", {})
        assert "llmd.wide_ep.maintenance" not in {m["manager"] for m in live["metadata"]["managedFields"]}
        # nothing owns the replica count but the site: another count applies (a dry run) without a conflict
        grown = {"apiVersion": live["apiVersion"], "kind": live["kind"],
                 "metadata": {"name": name, "namespace": NS}, "spec": dict(live["spec"], replicas=2)}
        (tmp_path / "grown.yaml").write_text(yaml.safe_dump(grown))
        cluster("apply", "--server-side", "--dry-run=server", "--field-manager=llmd.wide_ep", "-f",
                str(tmp_path / "grown.yaml"))
        rc, stats, _, log = run_playbook("site.yml")
        assert rc == 0 and sum(h["changed"] for h in stats.values()) == 0, log
    cluster.wait_for("the group Ready on the cluster's own nodes", lambda: len(
        [p for p in lws_pods(cluster) if p["metadata"]["labels"][GROUP_NAME] == name and any(
            c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions", []))]) == 2,
        timeout=180)
