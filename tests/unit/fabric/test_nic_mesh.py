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


def mesh_result(hosts, nics=8, rate=None, link_rate=400e9):
    """A graded mesh of `hosts` x `nics`: NIC 3 of host 5 has no link; rate(a, i, b, j) gives a link's bit/s."""
    records = [{"host_a": "gpu-node-%02d" % a, "nic_a": "mlx5_%d" % i, "nic_idx_a": i, "host_b": "gpu-node-%02d" % b,
                "nic_b": "mlx5_%d" % j, "nic_idx_b": j, "connected": (a, i) != (5, 3) and (b, j) != (5, 3),
                "rate": rate(a, i, b, j) if rate else 0.95 * link_rate}
               for a in range(hosts) for b in range(a + 1, hosts) for i in range(nics) for j in range(nics)]
    return nic_mesh.verdict(records, link_rate)


@pytest.mark.parametrize("hosts,labels", [(4, 32), (64, 64)])
def test_heatmap_stays_legible_as_the_mesh_grows(tmp_path, hosts, labels):
    """Up to 64 NICs every NIC is named; at 64 hosts x 8 NICs each host's block is, in a picture that stays
    under 2700 px a side with fonts of at least 7 pt and a legend of every band."""
    from ansible_collections.llmd.wide_ep.plugins.module_utils.fabric import mesh_report

    path = tmp_path / "heatmap.png"
    info = mesh_report.heatmap(mesh_result(hosts), str(path), 400e9)
    header = path.read_bytes()[:24]
    width, height = int.from_bytes(header[16:20], "big"), int.from_bytes(header[20:24], "big")
    assert header[:8] == b"\x89PNG\r\n\x1a\n" and width <= 2700 and height <= 2700, (width, height)
    assert info["labels"] == labels and info["font_pt"] >= 7, info
    assert "%d hosts x 8 NICs" % hosts in info["caption"]
    assert info["legend"][-1] == "not tested: NICs of one host"


def test_heatmap_paints_each_grade_in_its_own_band_with_the_thresholds(tmp_path):
    """A warn link (82 % of the rate) is amber, not a shade of green; the legend gives the thresholds and the
    count of each band; the title names every verdict of the run, not only the worst."""
    import matplotlib.image

    from ansible_collections.llmd.wide_ep.plugins.module_utils.fabric import mesh_report

    def rate(a, i, b, j):
        return {(0, 0, 1, 0): 0.82, (0, 1, 1, 1): 0.5}.get((a, i, b, j), 0.97) * 400e9

    result = mesh_result(6, 4, rate)
    assert result["counts"]["warn"] == 1 and result["counts"]["fail"] == 1 + 4 * 5   # + NIC 3 of host 5's links
    path = tmp_path / "heatmap.png"
    info = mesh_report.heatmap(result, str(path), 400e9)
    assert info["legend"][:3] == ["fail: no connection, or below 75 % of 400 Gbit/s (21)",
                                  "warn: 75-90 % of 400 Gbit/s (1)", "pass: at least 90 % of 400 Gbit/s (218)"]
    assert info["title"] == ("NIC mesh preflight: FAILED (bad-nics)\n1 NIC(s) with no working link; 1 link(s) too "
                             "slow (fail); 1 slow link(s) (warn); 21 fail, 1 warn, 218 pass of 240 tests")
    pixels = (matplotlib.image.imread(str(path))[..., :3] * 255).round().astype(int)
    colours = {tuple(int(c[k:k + 2], 16) for k in (1, 3, 5)) for _, c in mesh_report.BANDS}
    present = {tuple(p) for p in pixels.reshape(-1, 3)} & colours
    assert present == colours   # red, amber and green cells are all drawn


def test_heatmap_without_a_link_rate_has_no_warn_band(tmp_path):
    from ansible_collections.llmd.wide_ep.plugins.module_utils.fabric import mesh_report

    result = mesh_result(4, 2, lambda *link: 1e9, link_rate=None)
    info = mesh_report.heatmap(result, str(tmp_path / "h.png"), None)
    assert [t.split(":")[0] for t in info["legend"]] == ["fail", "pass", "not tested"]
