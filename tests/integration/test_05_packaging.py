"""The repository is an installable collection whose modules document themselves."""
import json
import shutil
import subprocess
import tarfile

import pytest

from tests.support.runs import ROOT, VENV_BIN, parse_playbook_output, playbook_command

MODULES = sorted(p.stem for p in (ROOT / "plugins/modules").glob("*.py"))


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("galaxy")
    subprocess.run([str(VENV_BIN / "ansible-galaxy"), "collection", "build", "--output-path", str(out)],
                   cwd=ROOT, check=True, capture_output=True)
    (tarball,) = out.glob("llmd-wide_ep-*.tar.gz")
    return tarball


def test_collection_builds_with_its_plugins_and_roles(built):
    names = tarfile.open(built).getnames()
    for module in MODULES:
        assert f"plugins/modules/{module}.py" in names
    assert "meta/runtime.yml" in names and "roles/modelserver/meta/argument_specs.yml" in names
    assert not any(n.startswith(("collections/", ".venv/", ".git/")) for n in names)
    # the collection only: no test suite, benchmarks, dev scripts or dev configuration
    assert not [n for n in names if n.split("/")[0] in ("tests", "bench", "scripts", "molecule", ".ci") or n in (
        "pyproject.toml", "requirements-dev.txt", ".ansible-lint", ".yamllint", ".gitignore")], names
    assert "LICENSE" in names and "README.md" in names and "playbooks/upgrade.yml" in names
    assert "playbooks/site.yml" in names and "inventories/coreweave/hosts.yml" in names
    manifest = json.load(tarfile.open(built).extractfile("MANIFEST.json"))["collection_info"]
    assert not [v for v in manifest.values() if "llm-d/llm-d" in str(v)], manifest   # llm-d's is not ours


def test_installed_collection_documents_every_module(built, tmp_path):
    # --force and a neutral cwd: from the checkout, ansible.cfg's collections_path already holds llmd.wide_ep
    subprocess.run([str(VENV_BIN / "ansible-galaxy"), "collection", "install", "--force", str(built), "-p",
                    str(tmp_path)], check=True, capture_output=True, cwd=tmp_path)
    env = {"ANSIBLE_COLLECTIONS_PATH": str(tmp_path), "PATH": str(VENV_BIN), "HOME": str(tmp_path)}
    for module in MODULES:
        res = subprocess.run([str(VENV_BIN / "ansible-doc"), f"llmd.wide_ep.{module}"], cwd=tmp_path, env=env,
                             capture_output=True, text=True)
        assert res.returncode == 0 and "OPTIONS" in res.stdout, (module, res.stderr)


def test_installed_collection_deploys_with_its_fqcn_playbooks(built, tmp_path, cluster):
    """What the README's install section says, in an empty directory (no checkout, no ansible.cfg): the tarball
    installed, an example inventory copied out of it, `ansible-playbook llmd.wide_ep.site` against the local
    cluster, then `llmd.wide_ep.teardown`; both by the playbooks' FQCNs."""
    collections = tmp_path / "collections"
    subprocess.run([str(VENV_BIN / "ansible-galaxy"), "collection", "install", str(built), "-p", str(collections)],
                   check=True, capture_output=True, cwd=tmp_path)
    installed = collections / "ansible_collections/llmd/wide_ep"
    shutil.copytree(installed / "inventories/local", tmp_path / "inventory")
    env = {"ANSIBLE_COLLECTIONS_PATH": str(collections), "HOME": str(tmp_path), "ANSIBLE_CONFIG": None,
           "ANSIBLE_CALLBACKS_ENABLED": None}
    for playbook, extra in (("llmd.wide_ep.site", {}), ("llmd.wide_ep.teardown", {"teardown_namespace": True})):
        cmd, run_env = playbook_command(playbook, "inventory", extra, env=env)
        res = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, env=run_env)
        stats, out, log = parse_playbook_output(res.stdout, res.stderr)
        assert res.returncode == 0, log
        assert stats["localhost"]["changed"] > 0 and stats["localhost"]["failures"] == 0, stats
        if playbook == "llmd.wide_ep.site":
            lws = cluster.json("get", "lws", "-n", "llm-d-wide-ep")["items"]
            assert sorted(i["metadata"]["name"] for i in lws) == ["wide-ep-llm-d-decode", "wide-ep-llm-d-prefill"]
    assert cluster("get", "namespace", "llm-d-wide-ep", check=False).returncode != 0
