"""A host playbook whose target group is empty fails, naming the group and how to fill it, instead of Ansible's
"skipping: no hosts matched" with exit 0, which would let a preflight or health check pass having tested nothing."""
import pytest
import yaml

from tests.support.runs import ROOT, run_playbook, task_results

CASES = [  # playbook, the variable that names its hosts, what it is
    ("playbooks/preflight.yml", "nic_mesh_hosts", "the NIC mesh preflight"),
    ("playbooks/gpu_check.yml", "gpu_check_hosts", "the GPU health check"),
    ("playbooks/node_prep.yml", "node_prep_hosts", "node preparation"),
]


@pytest.fixture
def inventory_without_gpu_nodes(tmp_path):
    """Real hosts, but none in gpu_nodes (a typo'd group name, as users make them)."""
    path = tmp_path / "hosts.yml"
    path.write_text(yaml.safe_dump({"all": {"children": {
        "gpu_node": {"hosts": {"node-a": {"ansible_host": "127.0.0.1", "ansible_port": 1}}},  # not gpu_nodes
        "gpu_nodes": {"hosts": {}}}}}))
    return path


@pytest.mark.parametrize("playbook,variable,what", CASES)
def test_an_empty_target_group_fails_before_anything_runs(inventory_without_gpu_nodes, playbook, variable, what):
    rc, stats, out, log = run_playbook(playbook, str(inventory_without_gpu_nodes))
    assert rc != 0, log
    (hosts,) = task_results(out, "Hosts of " + what)
    msg = hosts["localhost"]["msg"]
    assert msg.startswith(what + " has no host to run on: the host pattern 'gpu_nodes"), msg
    assert "-e %s=PATTERN" % variable in msg and str(inventory_without_gpu_nodes) in msg
    assert "node-a" not in stats  # the play against the nodes never started


@pytest.mark.parametrize("playbook,variable,what", CASES)
def test_the_variable_names_hosts_that_exist(inventory_without_gpu_nodes, playbook, variable, what):
    """The guard passes the hosts on to the play: here it reaches node-a (a closed loopback port, so the play
    fails there as unreachable, not in the guard)."""
    rc, stats, out, log = run_playbook(playbook, str(inventory_without_gpu_nodes), {variable: "gpu_node"},
                                       check=True)
    (hosts,) = task_results(out, "Hosts of " + what)
    assert "1 host(s) match 'gpu_node" in hosts["localhost"]["msg"] and "node-a" in hosts["localhost"]["msg"]
    assert "node-a" in stats, log


CLUSTER_PLAYBOOKS = ["site.yml", "playbooks/site.yml"] + ["playbooks/%s.yml" % name for name in (
    "addons", "benchmark", "model_servers", "node_maintenance", "preflight_cluster", "render", "rollback", "scale",
    "teardown", "upgrade", "verify")]


def test_every_playbook_that_talks_to_the_cluster_is_listed():
    plays = {str(p.relative_to(ROOT)) for p in (ROOT / "playbooks").glob("*.yml")
             if "kube_control_hosts" in p.read_text() and p.name != "kube_control.yml"}
    assert plays == set(CLUSTER_PLAYBOOKS) - {"site.yml"}   # the root site.yml imports playbooks/site.yml


@pytest.mark.parametrize("playbook", CLUSTER_PLAYBOOKS)
def test_a_cluster_playbook_without_kube_control_fails_at_once(inventory_without_gpu_nodes, tmp_path, playbook):
    """Ansible would skip every play ('no hosts matched') and exit 0: a render that wrote no file, a preflight
    that checked nothing, a deployment that did nothing, each reported as a success."""
    rc, stats, out, log = run_playbook(playbook, str(inventory_without_gpu_nodes),
                                       {"render_dir": str(tmp_path / "out"), "maintenance_node": "gpu-node-1"})
    assert rc != 0, log
    (hosts,) = task_results(out, "Hosts of the Kubernetes tasks of this playbook")
    msg = hosts["localhost"]["msg"]
    assert msg.startswith("the Kubernetes tasks of this playbook has no host to run on: the host pattern "
                          "'kube_control' matches no host"), msg
    assert "group 'kube_control'" in msg and "-e kube_control_hosts=PATTERN" in msg, msg
    assert list(stats) == ["localhost"] and stats["localhost"]["changed"] == 0
    assert not (tmp_path / "out").exists()


def test_kube_control_hosts_names_the_hosts_of_the_cluster_plays(inventory_without_gpu_nodes, tmp_path):
    """render.yml (no cluster) on a group of another name, given by the override."""
    path = tmp_path / "hosts.yml"
    path.write_text(yaml.safe_dump({"all": {"children": {"controller": {"hosts": {"localhost": {
        "ansible_connection": "local", "ansible_python_interpreter": "{{ ansible_playbook_python }}"}}}}}}))
    rc, stats, out, log = run_playbook("playbooks/render.yml", str(path), {
        "render_dir": str(tmp_path / "out"), "kube_control_hosts": "controller", "wide_ep_provider": "coreweave"})
    assert rc == 0, log
    assert (tmp_path / "out" / "04-leaderworkerset-wide-ep-llm-d-decode.yaml").is_file()
