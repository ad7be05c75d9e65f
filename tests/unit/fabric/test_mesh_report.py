"""The NIC mesh report (module_utils/fabric/mesh_report.py): the table, and a heatmap in pass / warn / fail bands
that stays legible from 4 to 64 hosts."""
import json

import pytest

from ansible_collections.llmd.wide_ep.plugins.module_utils.fabric import mesh_report, nic_mesh


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
    result = mesh_result(4, 2, lambda *link: 1e9, link_rate=None)
    info = mesh_report.heatmap(result, str(tmp_path / "h.png"), None)
    assert [t.split(":")[0] for t in info["legend"]] == ["fail", "pass", "not tested"]


def test_the_table_lists_failures_first_and_write_says_what_it_wrote(tmp_path):
    result = mesh_result(6, 4)   # NIC 3 of host 5 has no link
    text = mesh_report.table(result)
    lines = text.splitlines()
    assert lines[0] == "NIC mesh preflight: %s" % result["summary"]
    assert lines[3].split()[3] == "fail" and lines[-1].split()[3] == "pass"
    warned = []
    files = mesh_report.write(result, str(tmp_path), 400e9, nic_mesh.DEFAULT_THRESHOLDS, warned.append)
    assert [f.rsplit("/", 1)[1] for f in files] == ["report.json", "report.txt", "heatmap.png"] and warned == []
    assert json.loads((tmp_path / "report.json").read_text())["verdict"] == result["verdict"]
