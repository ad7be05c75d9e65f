"""site.yml checks every role's arguments before its first change (role_arguments): wrong values for its first and its
last role are both reported, each with its role, and no task after the check runs - no cluster is needed to see
it, none is contacted (a run that went on, the cluster_facts task would fail on the absent cluster)."""
import re
import subprocess
import sys
from pathlib import Path

import pytest

from ansible_collections.llmd.wide_ep.plugins.action import role_arguments

ROOT = Path(__file__).resolve().parents[3]


def site(*extra):
    return subprocess.run([str(Path(sys.executable).parent / "ansible-playbook"), "site.yml", "-i",
                           "inventories/coreweave", *extra], cwd=ROOT, capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin", "HOME": str(ROOT), "ANSIBLE_NOCOLOR": "1"})


def test_wrong_values_of_the_first_and_the_last_role_stop_the_play_at_its_first_task():
    res = site("-e", '{"lws_force_version": "perhaps", "verify_smoke_max_tokens": "many", "wide_ep_hf_token": "x"}')
    out = res.stdout
    assert res.returncode == 2, out + res.stderr
    assert "Validation of arguments failed (nothing was changed)" in out, out
    # ansible-core 2.18 says "of type <class 'str'>", later ones "of type str"
    assert re.search(r"llmd.wide_ep.lws: argument 'lws_force_version' is of type (<class ')?str", out), out
    assert re.search(r"llmd.wide_ep.verify: argument 'verify_smoke_max_tokens' is of type (<class ')?str", out), out
    after = out.split("Check the arguments of every role, before the first change", 1)[1]
    assert "TASK [" not in after.split("PLAY RECAP", 1)[0], out


def test_every_role_of_the_collection_has_its_main_options_read():
    for spec in sorted(ROOT.glob("roles/*/meta/argument_specs.yml")):
        options = role_arguments.role_options(spec.parent.parent.name)
        assert isinstance(options, dict) and options, spec


def test_a_role_without_a_spec_is_named():
    with pytest.raises(Exception, match=r"llmd.wide_ep.no_such_role is not a role of llmd.wide_ep"):
        role_arguments.role_options("no_such_role")


def test_a_wrong_shared_setting_stops_the_play_before_any_cluster_task():
    # a setting of wide_ep_defaults that the topology does not read: the one check after the topology names it
    res = site("-e", '{"lws_protect_crds": "sometimes", "wide_ep_hf_token": "x"}')
    assert res.returncode == 2, res.stdout + res.stderr
    assert re.search(r"llmd.wide_ep.wide_ep_defaults: argument 'lws_protect_crds' is of type (<class ')?str",
                     res.stdout), res.stdout
    after = res.stdout.split("Check the arguments of every role, before the first change", 1)[1]
    assert "TASK [" not in after.split("PLAY RECAP", 1)[0], res.stdout


def test_a_wrongly_typed_topology_setting_is_the_models_one_clear_problem():
    res = site("-e", '{"wide_ep_ports": "8000", "wide_ep_hf_token": "x"}')
    assert res.returncode == 2, res.stdout + res.stderr
    assert "wide_ep_ports: must be a mapping of prefill, decode, sidecar, dp_rpc, nixl to port numbers, got " \
           "'8000'" in res.stdout, res.stdout
    assert "Traceback" not in res.stdout + res.stderr and "Check the cluster is reachable" not in res.stdout
