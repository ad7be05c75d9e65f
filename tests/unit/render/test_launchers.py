"""The launchers (module_utils/render/launchers.py): each release's way of starting vLLM, from flag and env
tables - every field filled, EP-only flags only with EP, the NIXL port only when moved, ports named as the
pool and the sidecar expect."""
import pytest

from ansible_collections.llmd.wide_ep.plugins.module_utils.render import launchers, manifests, topology


def topo(version, dp_mode, **over):
    return topology.build(dict(topology.DEFAULT_SETTINGS, llmd_version=version, provider="baremetal",
                               gateway="none", dp_mode=dp_mode, **over))


CASES = [("v0.5.0", "hybrid", "hybrid-lb"), ("v0.5.0", "dp-aware", "per-gpu"),
         ("main-7edda66", "dp-aware", "supervisor")]


@pytest.mark.parametrize(("version", "dp_mode", "name"), CASES)
def test_every_field_is_filled_and_ep_flags_follow_expert_parallel(version, dp_mode, name):
    t = topo(version, dp_mode, decode={"expert_parallel": False})
    for role in t.roles:
        assert role.launcher == name
        script = manifests.vllm_script(t, role)
        assert "%(" not in script and launchers.GROUP not in script and launchers.NIXL_PORT not in script
        assert ("--enable-expert-parallel" in script) == role.expert_parallel, (name, role.name)
        assert ("--enable-eplb" in script) == (role.expert_parallel and "--enable-eplb" in " ".join(
            launchers.get(name).flags[role.name])), (name, role.name)


@pytest.mark.parametrize(("version", "dp_mode", "name"), CASES)
def test_the_nixl_port_is_passed_only_when_moved(version, dp_mode, name):
    for ports, expected in (({}, None), ({"nixl": 5700}, "5700")):
        t = topo(version, dp_mode, ports=ports)
        env = {e["name"]: e.get("value") for e in launchers.get(name).container_env(t, t.decode)}
        assert env.get("VLLM_NIXL_SIDE_CHANNEL_PORT") == expected


def test_the_per_gpu_launcher_starts_one_server_per_rank():
    t = topo("v0.5.0", "dp-aware", prefill={"dp_local": 4}, decode={"dp_local": 4})
    script = manifests.vllm_script(t, t.decode)
    lines = [line for line in script.splitlines() if line.startswith("CUDA_VISIBLE_DEVICES=")]
    assert len(lines) == 4 and "--port=8203 --data-parallel-rank=$((START_RANK + 3))" in lines[3]
    assert script.rstrip().endswith("wait")


def test_supervisor_ports_leave_the_rank_names_to_the_sidecar():
    t = topo("main-7edda66", "dp-aware")
    supervisor = launchers.get("supervisor")
    prefill = [p["name"] for p in supervisor.ports(t, t.prefill)]
    decode = [p["name"] for p in supervisor.ports(t, t.decode)]
    assert prefill == ["rank%d" % i for i in range(8)] + ["supervisor"]
    assert decode == ["vllm-rank%d" % i for i in range(8)] + ["supervisor"]


def test_extra_args_are_quoted_once_at_the_end():
    t = topo("main-7edda66", "dp-aware", prefill={"extra_args": ["--foo=a b"]})
    assert manifests.vllm_script(t, t.prefill).rstrip().endswith("'--foo=a b'")
