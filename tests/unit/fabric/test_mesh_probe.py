"""The NIC mesh probe (module_utils/fabric/mesh_probe.py): the perftest command lines, their JSON read whatever
the perftest version names the key, and a TCP round between two agents over loopback addresses."""
import json
import threading

from ansible_collections.llmd.wide_ep.plugins.module_utils.fabric import mesh_probe


def test_rdma_commands_for_each_side():
    nic = {"device": "mlx5_3", "port": 1, "gid_index": 3}
    ping, bw = mesh_probe.rdma_commands(nic, 20006, 2.0, json_file="/tmp/o.json")
    assert ping == ["ibv_rc_pingpong", "-d", "mlx5_3", "-i", "1", "-g", "3", "-p", "20006", "-n", "5"]
    assert bw[-3:] == ["3", "--out_json", "--out_json_file=/tmp/o.json"] and "-p" in bw and "20007" in bw
    ping, bw = mesh_probe.rdma_commands({"device": "mlx5_0"}, 20000, 1, peer_ip="10.0.0.2", cuda_device=0)
    assert ping[-1] == bw[-1] == "10.0.0.2" and "--use_cuda=0" in bw and "-g" not in ping


def test_bandwidth_json_of_either_perftest_spelling():
    assert mesh_probe.parse_bw_json(json.dumps({"results": {"BW_average": "391.2"}})) == 391.2
    assert mesh_probe.parse_bw_json(json.dumps([{"x": 1}, {"bw_avg": 12}])) == 12.0
    assert mesh_probe.parse_bw_json(json.dumps({"nothing": []})) is None


def test_two_agents_measure_their_link_over_loopback():
    nics = {"a": [{"device": "lo0", "address": "127.0.0.1"}], "b": [{"device": "lo1", "address": "127.0.0.2"}]}
    rounds = [[["a", 0, "b", 0]]]
    out = {}

    def agent(host):
        out[host] = mesh_probe.run_agent(host, rounds, nics, "tcp", 0.3, 29500, 10.0, 2.0)

    threads = [threading.Thread(target=agent, args=(h,)) for h in ("a", "b")]
    for th in threads:
        th.start()
    for th in threads:
        th.join(30)
    assert out["a"]["records"] == []          # the server side reports nothing; the client side records
    record = out["b"]["records"][0]
    assert (record["host_a"], record["nic_a"], record["host_b"], record["nic_b"]) == ("a", "lo0", "b", "lo1")
    assert record["connected"] is True and record["rate"] > 0 and record["bytes"] > 0
