"""The repository is an installable collection whose modules document themselves."""
import subprocess
import tarfile

import pytest

from tests.support.runs import ROOT, VENV_BIN

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


def test_installed_collection_documents_every_module(built, tmp_path):
    # --force and a neutral cwd: from the checkout, ansible.cfg's collections_path already holds llmd.wide_ep
    subprocess.run([str(VENV_BIN / "ansible-galaxy"), "collection", "install", "--force", str(built), "-p",
                    str(tmp_path)], check=True, capture_output=True, cwd=tmp_path)
    env = {"ANSIBLE_COLLECTIONS_PATH": str(tmp_path), "PATH": str(VENV_BIN), "HOME": str(tmp_path)}
    for module in MODULES:
        res = subprocess.run([str(VENV_BIN / "ansible-doc"), f"llmd.wide_ep.{module}"], cwd=tmp_path, env=env,
                             capture_output=True, text=True)
        assert res.returncode == 0 and "OPTIONS" in res.stdout, (module, res.stderr)
