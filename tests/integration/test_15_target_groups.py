"""A host playbook whose target group is empty fails, naming the group and how to fill it, instead of Ansible's
"skipping: no hosts matched" with exit 0, which would let a preflight or health check pass having tested nothing."""
import pytest
import yaml

from tests.support.runs import run_playbook, task_results

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
    (hosts,) = task_results(out, "Fail when no host matches the target pattern")
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
