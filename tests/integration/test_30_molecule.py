"""molecule/default: converge -> idempotence -> verify -> cleanup against the local cluster."""
import os
import re
import subprocess

from tests.support.runs import ROOT, VENV_BIN

ANSI = re.compile(r"\x1b\[[0-9;]*m")


def test_molecule_default_scenario(cluster):
    assert cluster("get", "namespace", "llm-d-wide-ep", check=False).returncode != 0, "start from an empty namespace"
    env = {**os.environ, "PATH": f"{VENV_BIN}:{os.environ['PATH']}", "ANSIBLE_FORCE_COLOR": "0"}
    subprocess.run([str(VENV_BIN / "molecule"), "reset", "-s", "default"], cwd=ROOT, env=env, capture_output=True)
    res = subprocess.run([str(VENV_BIN / "molecule"), "test", "-s", "default"], cwd=ROOT, env=env,
                         capture_output=True, text=True)
    log = ANSI.sub("", res.stdout + res.stderr)
    assert res.returncode == 0, log[-4000:]
    for step in ("syntax", "converge", "idempotence", "verify", "cleanup"):
        assert re.search(rf"default \S+ {step}: Executed: Successful", log), step
    recaps = [tuple(int(x) for x in m) for m in re.findall(r"localhost\s+: ok=(\d+)\s+changed=(\d+)", log)]
    converge, idempotence, verify = recaps[0], recaps[1], recaps[2]
    assert converge[1] > 0, "converge created the stack"
    assert idempotence[1] == 0 and verify[1] == 0
    assert cluster("get", "namespace", "llm-d-wide-ep", check=False).returncode != 0, "cleanup removed it"
