"""NIC mesh schedule and verdict: pure logic."""
import pytest

from ansible_collections.llmd.wide_ep.plugins.module_utils.errors import InvalidInput
from ansible_collections.llmd.wide_ep.plugins.module_utils.fabric import nic_mesh


@pytest.mark.parametrize("hosts", range(2, 9))
@pytest.mark.parametrize("nics", range(1, 9))
def test_schedule_is_optimal_complete_and_conflict_free(hosts, nics):
    rounds = nic_mesh.schedule(hosts, nics)
    bound = (hosts - 1) * nics + (1 if hosts * nics % 2 else 0)   # the bound, written out
    assert len(rounds) == bound
    seen = set()
    for r in rounds:
        busy = [(a, i) for a, i, _, _ in r] + [(b, j) for _, _, b, j in r]
        assert len(busy) == len(set(busy)), "a NIC is in two tests of one round"
        for a, i, b, j in r:
            assert a < b and 0 <= i < nics and 0 <= j < nics
            seen.add((a, i, b, j))
    expected = {(a, i, b, j) for a in range(hosts) for b in range(a + 1, hosts) for i in range(nics)
                for j in range(nics)}
    assert seen == expected and sum(map(len, rounds)) == len(expected), "every cross-host pair exactly once"


def test_schedule_is_deterministic_and_plan_uses_inventory_names():
    assert nic_mesh.schedule(5, 8) == nic_mesh.schedule(5, 8)
    plan = nic_mesh.plan(["node-b", "node-a"], {"node-b": ["mlx5_0", "mlx5_1"], "node-a": ["mlx5_0", "mlx5_1"]})
    assert plan["hosts"] == 2 and plan["nics_per_host"] == 2 and len(plan["rounds"]) == 2
    assert plan["rounds"][0][0][0] == "node-b" and plan["rounds"][0][0][2] == "node-a"
    with pytest.raises(InvalidInput, match="same number of NICs"):
        nic_mesh.plan(["a", "b"], {"a": ["x"], "b": ["x", "y"]})


def records(ok=lambda a, i, b, j: True, rate=lambda a, i, b, j: 100.0, hosts=4, nics=4):
    out = []
    for r in nic_mesh.schedule(hosts, nics):
        for a, i, b, j in r:
            out.append({"host_a": "h%d" % a, "nic_idx_a": i, "nic_a": "mlx5_%d" % i, "host_b": "h%d" % b,
                        "nic_idx_b": j, "nic_b": "mlx5_%d" % j, "connected": ok(a, i, b, j),
                        "rate": rate(a, i, b, j) if ok(a, i, b, j) else None})
    return out


def test_verdicts():
    full = nic_mesh.verdict(records(), link_rate=100.0)
    assert full["verdict"] == "full-mesh" and full["ok"]
    rail = nic_mesh.verdict(records(ok=lambda a, i, b, j: i == j), link_rate=100.0)
    assert rail["verdict"] == "rail-only" and not rail["ok"]
    broken = nic_mesh.verdict(records(ok=lambda a, i, b, j: (a, i, b, j) != (0, 2, 3, 1)), link_rate=100.0)
    assert broken["verdict"] == "bad-links" and broken["failed_links"] == ["h0:mlx5_2 <-> h3:mlx5_1"]
    dead = nic_mesh.verdict(records(ok=lambda a, i, b, j: (a, i) != (1, 3) and (b, j) != (1, 3)), link_rate=100.0)
    assert dead["verdict"] == "bad-nics" and dead["bad_nics"] == ["h1:mlx5_3"] and dead["failed_links"] == []
    slow = nic_mesh.verdict(records(rate=lambda a, i, b, j: 50.0 if (a, i, b, j) == (0, 0, 1, 0) else 95.0),
                            link_rate=100.0)
    assert slow["verdict"] == "slow-links" and slow["slow_links"] == ["h0:mlx5_0 <-> h1:mlx5_0"] and not slow["ok"]
    warn = nic_mesh.verdict(records(rate=lambda a, i, b, j: 80.0 if (a, i, b, j) == (0, 0, 1, 0) else 95.0),
                            link_rate=100.0)
    assert warn["verdict"] == "slow-links" and warn["ok"], "a link at 80% only warns (warn >= 0.75)"
    custom = nic_mesh.verdict(records(rate=lambda a, i, b, j: 80.0), link_rate=100.0,
                              thresholds={"pass": 0.8})
    assert custom["verdict"] == "full-mesh"
