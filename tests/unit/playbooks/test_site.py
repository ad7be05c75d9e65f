"""site.yml is one play (the host check, settings and plan once): its roles are those of the playbooks it stands
for, in their order, so running them one by one deploys the same; right after the topology, one task checks the
argument specs of the other roles it imports, which it imports without their own check."""
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
PARTS = ("preflight_cluster.yml", "addons.yml", "model_servers.yml", "verify.yml")


def main_play(path):
    plays = [p for p in yaml.safe_load((ROOT / "playbooks" / path).read_text()) if "import_playbook" not in
             " ".join(p)]
    assert len(plays) == 1, path
    return plays[0]


def roles(path):
    play = main_play(path)
    return [r["role"] for r in play["roles"]] if "roles" in play else imports(path)[1]


def imports(path):
    """(the roles role_arguments checks, the roles imported), in play order."""
    checked, imported = [], []
    for task in main_play(path)["tasks"]:
        if "llmd.wide_ep.role_arguments" in task:
            assert task["tags"] == ["always"]
            checked += task["llmd.wide_ep.role_arguments"]["roles"]
        else:
            assert task["ansible.builtin.import_role"]["rolespec_validate"] is False
            imported.append(task["ansible.builtin.import_role"]["name"])
    return checked, imported


def test_site_runs_the_roles_of_its_parts_in_order():
    want = []
    for part in PARTS:
        want += [r for r in roles(part) if r not in want]
    assert imports("site.yml")[1] == want
    assert want[:2] == ["llmd.wide_ep.wide_ep_defaults", "llmd.wide_ep.topology"]


@pytest.mark.parametrize("path", ("site.yml", "addons.yml", "model_servers.yml"))
def test_a_play_of_imported_roles_checks_the_arguments_of_exactly_those_once_after_the_topology(path):
    checked, imported = imports(path)
    # all but the topology: it ran first (it touches nothing) and its module checks its own options
    assert checked == [r for r in imported if r != "llmd.wide_ep.topology"]
    tasks = main_play(path)["tasks"]
    # the settings and the topology (which touches nothing and makes the plan the later defaults read), then
    # the one check, before the first role that talks to the cluster
    assert [t.get("ansible.builtin.import_role", {}).get("name") for t in tasks[:2]] == [
        "llmd.wide_ep.wide_ep_defaults", "llmd.wide_ep.topology"]
    assert "llmd.wide_ep.role_arguments" in tasks[2]
    assert sum("llmd.wide_ep.role_arguments" in t for t in tasks) == 1
    assert "roles" not in main_play(path)   # a role under roles: would check its spec a second time


def test_site_verifies_as_after_a_deploy():
    assert main_play("site.yml")["vars"] == {"verify_after_deploy": True}



def test_site_checks_the_token_before_its_first_change():
    """The preflight checks the token before the first change; the namespace role, run whole, checks it again
    right before it writes the secret (a run with --skip-tags preflight_cluster still cannot deploy without it)."""
    import subprocess
    import sys

    res = subprocess.run([str(Path(sys.executable).parent / "ansible-playbook"), "site.yml", "-i",
                          "inventories/coreweave", "--list-tasks"], cwd=ROOT, capture_output=True, text=True,
                         env={"PATH": "/usr/bin:/bin", "HOME": str(ROOT), "ANSIBLE_NOCOLOR": "1"})
    assert res.returncode == 0, res.stdout + res.stderr
    tasks = [line.strip() for line in res.stdout.splitlines() if "TAGS: [" in line]
    token = [i for i, t in enumerate(tasks) if "Check the Hugging Face token is set" in t]
    first_change = next(i for i, t in enumerate(tasks) if "llmd.wide_ep.lws : " in t)
    secret = next(i for i, t in enumerate(tasks) if "Namespace and the Hugging Face token secret" in t)
    assert len(token) == 2 and token[0] < first_change and first_change < token[1] < secret, tasks
