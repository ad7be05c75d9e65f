"""molecule/kind: create -> converge -> idempotence -> verify -> destroy on a kind cluster of real kubelets.

The cluster, its dockerd and registry live in their own network namespace (tests/support/kind/kindcluster.py);
scripts/setup.sh --kind built the images. What verify proves on real pods: readiness through the pods' own probes,
the endpoint picker routing completions to several DP rank ports across a group that spans two nodes (P/D through
the routing sidecar), and a killed worker taking its whole group down and back."""
import os
import re
import subprocess
import sys

from tests.support.runs import CACHE, ROOT, VENV_BIN

ANSI = re.compile(r"\x1b\[[0-9;]*m")
KIND = [sys.executable, str(ROOT / "tests/support/kind/kindcluster.py")]
IN_KIND_NETNS = ["nsenter", "--net=/var/run/netns/llmd-kind"]
# A bridge with the kind subnet that no network of the running dockerd owns, as a run with another LLMD_CACHE
# leaves behind: it took the namespace's route to the nodes and every kubeadm join timed out (a CI failure).
STALE_BRIDGE = "br-5ta1e0b41d9e"


def plant_stale_bridge():
    subprocess.run(["ip", "netns", "add", "llmd-kind"], capture_output=True)   # kept by `down`; made here if new
    for cmd in (["link", "add", STALE_BRIDGE, "type", "bridge"], ["addr", "add", "172.30.0.1/16", "dev", STALE_BRIDGE],
                ["link", "set", STALE_BRIDGE, "up"]):
        subprocess.run([*IN_KIND_NETNS, "ip", *cmd], check=True)


def test_molecule_kind_scenario():
    env = {**os.environ, "PATH": f"{VENV_BIN}:{os.environ['PATH']}", "ANSIBLE_FORCE_COLOR": "0",
           "LLMD_CACHE": str(CACHE)}
    subprocess.run([*KIND, "down"], check=True, capture_output=True)   # from no cluster, as create expects
    plant_stale_bridge()
    subprocess.run([*KIND, "exec", "--", str(VENV_BIN / "molecule"), "reset", "-s", "kind"], cwd=ROOT, env=env,
                   capture_output=True)
    res = subprocess.run([*KIND, "exec", "--", str(VENV_BIN / "molecule"), "test", "-s", "kind"], cwd=ROOT, env=env,
                         capture_output=True, text=True)
    log = ANSI.sub("", res.stdout + res.stderr)
    assert res.returncode == 0, log[-6000:]
    links = subprocess.run([*IN_KIND_NETNS, "ip", "-o", "link"], capture_output=True, text=True, check=True).stdout
    assert STALE_BRIDGE not in links, "create removed the bridge no network owns"
    for step in ("syntax", "create", "converge", "idempotence", "verify", "destroy"):
        assert re.search(rf"kind \S+ {step}: Executed: Successful", log), step
    recaps = [tuple(int(x) for x in m) for m in re.findall(r"localhost\s+: ok=(\d+)\s+changed=(\d+)", log)]
    # create, converge, idempotence, verify, destroy
    assert len(recaps) == 5, recaps
    converge, idempotence, verify = recaps[1], recaps[2], recaps[3]
    assert converge[1] > 0, "converge created the stack"
    assert idempotence[1] == 0, "a second converge changes nothing"
    assert verify[1] == 1, "verify changed only the killed container"
    routed = re.search(r"(\d+) completions through 2 decode pods on rank ports \[([^\]]*)\]", log)
    assert routed and int(routed.group(1)) == 16, log[-6000:]
    assert len(routed.group(2).split(",")) >= 2, routed.group(0)
    assert "Wait for the LeaderWorkerSet to recreate the whole group" in log
    # the images pulled onto the workers by the kubelets from the scenario's registry before the workload, then
    # (idempotence) found on every worker: the control plane is no candidate (its taint)
    pulled = re.search(r"image pre-pull: (\d+) node\(s\) pulled, 0 node\(s\) held every image, 0 list none", log)
    assert pulled and int(pulled.group(1)) >= 3, log[-6000:]
    assert re.search(r"image pre-pull: %s node\(s\) held every image, 0 list none" % pulled.group(1), log), log[-6000:]
    assert subprocess.run([*KIND, "status"], capture_output=True).returncode != 0, "destroy removed the cluster"
