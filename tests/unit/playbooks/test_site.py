"""site.yml is one play (the host check, settings and plan once): its roles are those of the playbooks it stands
for, in their order, so running them one by one deploys the same; its first task checks the argument specs of
exactly the roles it imports, which it imports without their own check."""
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[3]
PARTS = ("preflight_cluster.yml", "addons.yml", "model_servers.yml", "verify.yml")


def main_play(path):
    plays = [p for p in yaml.safe_load((ROOT / "playbooks" / path).read_text()) if "import_playbook" not in
             " ".join(p)]
    assert len(plays) == 1, path
    return plays[0]


def roles(path):
    return [r["role"] for r in main_play(path)["roles"]]


def site_imports():
    """(the roles role_arguments checks, the roles imported), in play order."""
    checked, imported = [], []
    for task in main_play("site.yml")["tasks"]:
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
    assert site_imports()[1] == want
    assert want[:2] == ["llmd.wide_ep.wide_ep_defaults", "llmd.wide_ep.topology"]


def test_site_checks_the_arguments_of_the_roles_it_imports_first():
    checked, imported = site_imports()
    assert checked == imported
    tasks = main_play("site.yml")["tasks"]
    assert "llmd.wide_ep.role_arguments" in tasks[0]
    assert "roles" not in main_play("site.yml")   # a role under roles: would check its spec a second time


def test_site_verifies_as_after_a_deploy():
    assert main_play("site.yml")["vars"] == {"verify_after_deploy": True}
