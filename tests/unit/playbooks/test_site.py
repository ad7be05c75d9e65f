"""site.yml is one play (the host check, settings and plan once): its roles are those of the playbooks it stands
for, in their order, so running them one by one deploys the same."""
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[3]
PARTS = ("preflight_cluster.yml", "addons.yml", "model_servers.yml", "verify.yml")


def roles(path):
    plays = [p for p in yaml.safe_load((ROOT / "playbooks" / path).read_text()) if "import_playbook" not in
             " ".join(p)]
    assert len(plays) == 1, path
    return [r["role"] for r in plays[0]["roles"]]


def test_site_runs_the_roles_of_its_parts_in_order():
    want = []
    for part in PARTS:
        want += [r for r in roles(part) if r not in want]
    assert roles("site.yml") == want
    assert want[:2] == ["llmd.wide_ep.wide_ep_defaults", "llmd.wide_ep.topology"]


def test_site_verifies_as_after_a_deploy():
    (play,) = [p for p in yaml.safe_load((ROOT / "playbooks/site.yml").read_text()) if "roles" in p]
    verify = next(r for r in play["roles"] if r["role"] == "llmd.wide_ep.verify")
    assert verify["vars"] == {"verify_after_deploy": True}
