"""Tags: every role task carries its role's tag (or `always`), and a tagged run selects what it names plus the
settings and the plan. Read from `ansible-playbook --list-tasks`, so what Ansible itself selects is checked."""
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
LINE = re.compile(r"^\s+(?:(?P<role>[\w.]+) : )?(?P<task>.+?)\tTAGS: \[(?P<tags>[^\]]*)\]$")
PLAYBOOKS = sorted(str(p.relative_to(ROOT)) for p in ROOT.glob("playbooks/*.yml")) + ["site.yml"]


def listed(playbook, *args):
    res = subprocess.run([str(Path(sys.executable).parent / "ansible-playbook"), playbook, "-i",
                          "inventories/coreweave", "--list-tasks", *args], cwd=ROOT, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    out = []
    for line in res.stdout.splitlines():
        m = LINE.match(line)
        if m and not m["task"].startswith("play #"):
            out.append((m["role"], m["task"], {t.strip() for t in m["tags"].split(",") if t.strip()}))
    assert out, res.stdout
    return out


@pytest.mark.parametrize("playbook", PLAYBOOKS)
def test_every_role_task_carries_its_role_tag(playbook):
    for role, task, tags in listed(playbook):
        if role and not task.startswith("Validating arguments"):
            name = role.rsplit(".", 1)[-1]
            assert name in tags or "always" in tags, (playbook, role, task, tags)


def test_a_tagged_site_run_selects_that_role_plus_the_plan():
    tasks = listed("site.yml", "--tags", "modelserver")
    chosen = {(r, t) for r, t, tags in tasks if "always" not in tags}
    assert chosen == {("llmd.wide_ep.modelserver", "Namespace, ServiceAccount and PodMonitors"),
                      ("llmd.wide_ep.modelserver", "Pull the model server images onto their nodes"),
                      ("llmd.wide_ep.modelserver", "Prefill and decode LeaderWorkerSets")}
    assert ("llmd.wide_ep.topology", "Validate the topology and render the deployment") in {
        (r, t) for r, t, tags in tasks}


def test_the_upgrade_plan_stage_alone_changes_nothing():
    tasks = [t for r, t, tags in listed("playbooks/upgrade.yml", "--tags", "upgrade_plan") if "always" not in tags]
    assert "Check the upgrade can start and plan it (read-only)" in tasks
    assert "Upgrade, step by step" not in tasks
