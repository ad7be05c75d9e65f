"""Everything from outside is built by scripts/setup.sh before the tests; inside the cluster's namespace a missing
piece fails at once and names the setup step, never tries the network (issue: debootstrap inside the namespace)."""
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def run_with_empty_cache(tmp_path, *argv):
    env = {**os.environ, "LLMD_CACHE": str(tmp_path / "cache"), "LLMD_PREP_FLEET_DIR": str(tmp_path / "fleet")}
    t0 = time.monotonic()
    res = subprocess.run([sys.executable, *argv], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    return res, time.monotonic() - t0


def test_node_prep_fleet_without_its_debian_tree_names_the_setup_step(tmp_path):
    res, seconds = run_with_empty_cache(tmp_path, "tests/support/fleet/prep_fleet.py", "up", "--hosts", "1")
    assert res.returncode != 0
    assert "node-prep test hosts' Debian tree" in res.stderr and "scripts/setup.sh" in res.stderr, res.stderr
    assert "debootstrap" not in res.stderr  # no download was tried
    assert not (tmp_path / "cache" / "hosts").exists() and not (tmp_path / "fleet").exists()
    assert seconds < 30


def test_benchmark_without_its_venv_names_the_setup_step(tmp_path):
    res, _ = run_with_empty_cache(tmp_path, "bench/apply_bench.py", "--runs", "1")
    assert res.returncode != 0
    assert "./scripts/setup.sh --bench" in res.stderr, res.stderr
    assert not (tmp_path / "cache" / "bench-venv").exists()


def test_setup_builds_every_outside_piece_before_the_cluster_starts():
    """The order is the guarantee: each download step comes before the cluster is started and the tests run."""
    text = (ROOT / "scripts/setup.sh").read_text()
    start = text.index('step "start the local cluster"')
    for what in ("Debian packages", ".venv from requirements-dev.txt", "tests/support/cluster/build.sh",
                 "node_prep_tree", "perf_venv", "bench_venv", "kubernetes_core"):
        assert -1 < text.index(what) < start, what
    test_sh = (ROOT / "scripts/test.sh").read_text()
    assert test_sh.index("setup.sh") < test_sh.index("localcluster.py exec")
