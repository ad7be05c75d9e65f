"""The shared settings have one home: role wide_ep_defaults. Its defaults equal the topology model's, and every
argument spec that documents one of them gives the same default."""
from pathlib import Path

import yaml

from ansible_collections.llmd.wide_ep.plugins.module_utils.render import profiles, topology

ROOT = Path(__file__).resolve().parents[3]
DEFAULTS = yaml.safe_load((ROOT / "roles/wide_ep_defaults/defaults/main.yml").read_text())


def specs():
    for path in sorted(ROOT.glob("roles/*/meta/argument_specs.yml")):
        for entry in yaml.safe_load(path.read_text())["argument_specs"].values():
            for name, option in (entry.get("options") or {}).items():
                yield path.parts[-3], name, option


def test_wide_ep_defaults_equal_the_model():
    wide_ep = {k[len("wide_ep_"):]: v for k, v in DEFAULTS.items() if k.startswith("wide_ep_")}
    model = topology.DEFAULT_SETTINGS
    assert {k: wide_ep[k] for k in model} == model
    assert set(wide_ep) - set(model) == {"kubeconfig", "kube_context", "helm_binary"}   # wiring, not topology


def test_argument_spec_defaults_equal_the_defaults_role():
    checked = 0
    for role, name, option in specs():
        if name in DEFAULTS and "default" in option:
            assert option["default"] == DEFAULTS[name], (role, name)
            checked += 1
    assert checked >= len(topology.DEFAULT_SETTINGS)


def test_no_other_role_defines_a_shared_setting():
    for path in ROOT.glob("roles/*/defaults/main.yml"):
        if path.parts[-3] == "wide_ep_defaults":
            continue
        clash = set(yaml.safe_load(path.read_text()) or {}) & set(DEFAULTS)
        assert not clash, (path, clash)


def test_every_shared_setting_is_documented():
    documented = {name for role, name, option in specs() if role == "wide_ep_defaults"}
    assert documented == set(DEFAULTS)


def test_no_play_copies_module_defaults_or_a_helm_fallback():
    for path in list(ROOT.glob("playbooks/*.yml")) + list(ROOT.glob("roles/*/tasks/*.yml")):
        text = path.read_text()
        assert "module_defaults" not in text, path
        assert "default('helm')" not in text and "helm_binary:" not in text, path


def test_every_play_starts_with_the_defaults_role():
    plays = [(p, play) for pattern in ("playbooks/*.yml", "bench/*.yml", "tests/playbooks/*.yml", "molecule/*/*.yml")
             for p in ROOT.glob(pattern) for play in yaml.safe_load(p.read_text()) or []
             if not any(key.endswith("import_playbook") for key in play)]
    assert len(plays) > 25
    for path, play in plays:
        if "llmd.wide_ep." in str(play):   # a play that runs a role or module of the collection
            if "roles" in play:
                assert play["roles"][0]["role"] == "llmd.wide_ep.wide_ep_defaults", (path, play["name"])
            else:   # site.yml, addons.yml, model_servers.yml: roles imported, their arguments checked first
                imports = [t["ansible.builtin.import_role"] for t in play["tasks"]
                           if "ansible.builtin.import_role" in t]
                assert imports[0]["name"] == "llmd.wide_ep.wide_ep_defaults", path
                if [i["name"] for i in imports] == ["llmd.wide_ep.wide_ep_defaults", "llmd.wide_ep.target_hosts"]:
                    continue   # kube_control.yml's host check: no setting read, target_hosts' arguments constants
                checks = [t["llmd.wide_ep.role_arguments"]["roles"] for t in play["tasks"]
                          if "llmd.wide_ep.role_arguments" in t]
                assert checks and checks[0][0] == "llmd.wide_ep.wide_ep_defaults", path


def test_the_action_plugin_preloads_exactly_the_modules_routed_to_it():
    from ansible_collections.llmd.wide_ep.plugins.action import wide_ep_k8s

    routing = yaml.safe_load((ROOT / "meta/runtime.yml").read_text())["plugin_routing"]["action"]
    routed = {name for name, route in routing.items() if route.get("redirect") == "llmd.wide_ep.wide_ep_k8s"}
    assert routed == set(wide_ep_k8s.K8S_MODULES + wide_ep_k8s.CONTROLLER_MODULES)
    assert set(wide_ep_k8s.HELM_MODULES) <= set(wide_ep_k8s.K8S_MODULES + wide_ep_k8s.CONTROLLER_MODULES)
    groups = yaml.safe_load((ROOT / "meta/runtime.yml").read_text())["action_groups"]["k8s"]
    assert {m for m in groups if isinstance(m, str)} == set(wide_ep_k8s.K8S_MODULES)


def test_the_settings_entry_point_is_the_model():
    """The topology model validates the deployment's settings; the role's `settings` entry point documents
    exactly them, with the model's choices, and the role's `main` (which Ansible validates) none of them."""
    specs = yaml.safe_load((ROOT / "roles/wide_ep_defaults/meta/argument_specs.yml").read_text())["argument_specs"]
    settings = specs["settings"]["options"]
    assert set(settings) == {"wide_ep_" + key for key in topology.DEFAULT_SETTINGS}
    assert not set(specs["main"]["options"]) & set(settings)
    assert settings["wide_ep_provider"]["choices"] == list(topology.PROVIDERS)
    assert settings["wide_ep_gateway"]["choices"] == list(topology.GATEWAYS)
    assert settings["wide_ep_llmd_version"]["choices"] == list(profiles.PROFILES) + list(profiles.RENAMED)
    for key in topology.BOOL_SETTINGS:
        assert settings["wide_ep_" + key]["type"] == "bool", key
    for key in topology.INT_SETTINGS:
        assert settings["wide_ep_" + key]["type"] == "int", key


def test_the_derived_settings_are_every_setting_once():
    """wide_ep_settings (roles/wide_ep_defaults/vars) is what the topology and upgrade roles pass the model: each
    setting of the model, from its own variable."""
    derived = yaml.safe_load((ROOT / "roles/wide_ep_defaults/vars/main.yml").read_text())["wide_ep_settings"]
    assert derived == {key: "{{ wide_ep_%s }}" % key for key in topology.DEFAULT_SETTINGS}


def test_every_role_that_reads_the_plan_or_the_settings_declares_it():
    """wide_ep_settings in the checked entry point `main`; wide_ep_plan in the entry point `plan`, declared and not
    checked at run time (the topology role made it in the same play; checking it again in each role is 0.8 s)."""
    for path in sorted(ROOT.glob("roles/*/tasks/*.yml")):
        role = path.parts[-3]
        text = path.read_text()
        specs = yaml.safe_load((ROOT / "roles" / role / "meta/argument_specs.yml").read_text())["argument_specs"]
        if "wide_ep_settings" in text:
            assert specs["main"]["options"]["wide_ep_settings"]["required"] is True, role
        if "wide_ep_plan" in text and role != "topology":   # topology registers the plan
            assert specs["plan"]["options"]["wide_ep_plan"]["required"] is True, role
            assert "wide_ep_plan" not in specs["main"]["options"], role
        assert "_topology_" not in text, path   # no role reads another's private variables
