"""The documentation of every module and role reads whole in ansible-doc: each option and return value is a mapping
of known keys with a description that is text (flow-style YAML split descriptions at their commas into stray
keys with no value, which ansible-doc printed as fragments)."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
MODULES = sorted(p.stem for p in (ROOT / "plugins/modules").glob("*.py"))
ROLES = sorted(p.parent.parent.name for p in (ROOT / "roles").glob("*/meta/argument_specs.yml"))
OPTION_KEYS = {"description", "type", "default", "elements", "choices", "required", "aliases", "suboptions",
               "version_added", "no_log", "options", "env", "fallback"}
RETURN_KEYS = {"description", "returned", "type", "elements", "sample", "contains", "version_added"}


def entries(tree, children):
    for name, entry in (tree or {}).items():
        yield name, entry
        if isinstance(entry, dict):
            for child in children:
                yield from ((f"{name}.{n}", e) for n, e in entries(entry.get(child), children))


def check(where, tree, allowed, children):
    problems = []
    for name, entry in entries(tree, children):
        if not isinstance(entry, dict):
            problems.append(f"{where} {name}: not a mapping ({entry!r})")
            continue
        stray = sorted(k for k in entry if k not in allowed)
        if stray:
            problems.append(f"{where} {name}: stray keys {stray} (a description split at a comma?)")
        desc = entry.get("description")
        texts = desc if isinstance(desc, list) else [desc]
        if not texts or not all(isinstance(t, str) and t.strip() for t in texts):
            problems.append(f"{where} {name}: description is not text: {desc!r}")
    return problems


def ansible_doc(plugin_type, names):
    """What ansible-doc itself loads for these plugins of the collection, in one call."""
    env = {**os.environ, "ANSIBLE_COLLECTIONS_PATH": str(ROOT / "collections")}
    res = subprocess.run([str(Path(sys.executable).parent / "ansible-doc"), "--json", "-t", plugin_type,
                          *("llmd.wide_ep." + n for n in names)], capture_output=True, text=True, env=env)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


@pytest.fixture(scope="module")
def rendered():
    return ansible_doc("module", MODULES)


@pytest.mark.parametrize("module", MODULES)
def test_every_module_option_and_return_value_reads_whole(rendered, module):
    doc = rendered["llmd.wide_ep." + module]
    problems = check(module, doc["doc"].get("options"), OPTION_KEYS, ("suboptions", "options"))
    problems += check(module, doc.get("return"), RETURN_KEYS, ("contains",))
    assert doc["doc"]["short_description"] and not problems, problems


@pytest.fixture(scope="module")
def rendered_roles():
    return ansible_doc("role", ROLES)


@pytest.mark.parametrize("role", ROLES)
def test_every_role_option_reads_whole(rendered_roles, role):
    problems = []
    for entry_point, body in rendered_roles["llmd.wide_ep." + role]["entry_points"].items():
        problems += check(f"{role}:{entry_point}", body.get("options"), OPTION_KEYS, ("options",))
        texts = body["description"] if isinstance(body.get("description"), list) else [body.get("description")]
        assert body.get("short_description") and all(isinstance(t, str) for t in texts if t is not None), body
    assert not problems, problems


def test_the_check_finds_a_split_description():
    """The check itself, on what the old flow style produced."""
    broken = yaml.safe_load("gpus: {description: GPUs per role, C(prefill) and C(decode)., type: dict}")
    assert check("m", broken, OPTION_KEYS, ()) == [
        "m gpus: stray keys ['C(prefill) and C(decode).'] (a description split at a comma?)"]
