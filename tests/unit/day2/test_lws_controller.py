"""What the lws role does about the LeaderWorkerSet controller it finds (module_utils/lws_controller.py)."""
import pytest

from ansible_collections.llmd.wide_ep.plugins.module_utils.day2 import lws_controller

HELM_070 = {"chart": "lws", "version": "0.7.0", "app_version": "v0.7.0"}
DEPLOY_060 = {"spec": {"template": {"spec": {"containers": [{"image": "registry.k8s.io/lws/lws:v0.6.2"}]}}}}


def test_found_says_how_it_was_installed():
    assert lws_controller.found(True, HELM_070, DEPLOY_060, None)["managed_by"] == "helm"
    assert lws_controller.found(True, None, DEPLOY_060, None) == {
        "crd": True, "managed_by": "manifest", "version": "0.6.2", "webhook_url": None, "ds_crd": False,
        "ds_webhook": False}
    assert lws_controller.found(True, None, None, "https://10.0.0.1:9443/mutate")["managed_by"] == "external"
    assert lws_controller.found(False, None, None, None)["managed_by"] == "none"


@pytest.mark.parametrize("found,force,action,says", [
    ((False, None, None, None), False, "install", "no LeaderWorkerSet controller found"),
    ((True, HELM_070, None, None), False, "keep", "LeaderWorkerSet 0.7.0 (helm) is at least 0.7.0"),
    ((True, None, DEPLOY_060, None), False, "upgrade", "upgrading LeaderWorkerSet 0.6.2 (manifest) to 0.7.0"),
    ((True, None, DEPLOY_060, None), True, "replace", "replacing the manifest install (0.6.2) with 0.7.0"),
    ((True, None, None, "https://x/mutate"), False, "keep", "outside the cluster (webhooks call https://x/mutate)"),
    ((True, {"chart": "lws", "version": "main", "app_version": ""}, None, None), False, "keep", "unknown version"),
])
def test_action(found, force, action, says):
    got, why = lws_controller.action(lws_controller.found(*found), "0.7.0", force)
    assert got == action and says in why


HELM_090 = {"chart": "lws", "version": "0.9.0", "app_version": "v0.9.0"}


@pytest.mark.parametrize("found,action,says", [
    ((False, None, None, None), "install", "no LeaderWorkerSet controller found: installing 0.9.0"),
    ((True, HELM_070, None, None), "upgrade", "upgrading LeaderWorkerSet 0.7.0 (helm) to 0.9.0"),
    # 0.9.0 installed with the chart's defaults: same version, so only the value changes
    ((True, HELM_090, None, None, True, False), "upgrade", "enabling the DisaggregatedSet on LeaderWorkerSet 0.9.0"),
    ((True, HELM_090, None, None, True, True), "keep", "LeaderWorkerSet 0.9.0 (helm) is at least 0.9.0"),
    ((True, None, None, "https://x/mutate", True, True), "keep", "outside the cluster"),
])
def test_a_disaggregatedset_workload_gets_a_controller_that_serves_it(found, action, says):
    got, why = lws_controller.action(lws_controller.found(*found), "0.9.0", need_ds=True)
    assert got == action and says in why


@pytest.mark.parametrize("found,says", [
    ((True, None, None, "https://x/mutate"), "the one found (external, unknown version) leaving it alone"),
    ((True, {"chart": "lws", "version": "main", "app_version": ""}, None, None, True, False),
     "its validating webhook missing"),
    ((True, None, {"spec": {"template": {"spec": {"containers": [{"image": "lws:v0.9.0"}]}}}}, None, True, False),
     "the one found (manifest, 0.9.0)"),
])
def test_a_controller_left_alone_without_the_disaggregatedset_is_refused_with_the_fix(found, says):
    with pytest.raises(ValueError) as err:
        lws_controller.action(lws_controller.found(*found), "0.9.0", need_ds=True)
    assert says in str(err.value) and "--set enableDisaggregatedSet=true" in str(err.value)


def test_a_disaggregatedset_workload_refuses_an_lws_version_without_it():
    with pytest.raises(ValueError, match="lws_version: 0.8.0 has no DisaggregatedSet.*set lws_version: 0.9.0"):
        lws_controller.action(lws_controller.found(False, None, None, None), "0.8.0", need_ds=True)


@pytest.mark.parametrize("have,want,managed_by,says", [
    ("0.7.0", "0.9.0", "helm", None),
    ("0.8.0", "0.9.0", "helm", None),
    (None, "0.9.0", "none", None),
    ("0.7.0", "0.8.0", "helm", "restarts every group (kubernetes-sigs/lws#797, fixed in 0.9.0): upgrade to 0.9.0"),
    ("0.7.0", "0.10.0", "helm", "LeaderWorkerSet 0.10.0 is not a release this collection knows how to upgrade to"),
    ("0.6.0", "0.9.0", "helm", "the LeaderWorkerSet controller runs 0.6.0, a release this collection does not know"),
    ("0.6.2", "0.7.0", "manifest", None),
])
def test_upgrade_problems_refuse_what_cannot_be_made_safe(have, want, managed_by, says):
    problems = lws_controller.upgrade_problems(have, want, managed_by)
    assert (problems == []) if says is None else (len(problems) == 1 and says in problems[0]), problems


@pytest.mark.parametrize("have,want,accept,says", [
    ("0.7.0", "0.8.0", True, None),                          # the restart accepted
    ("0.8.0", "0.8.0", False, None),                         # nothing moves
    (None, "0.8.0", False, None),                            # a first install restarts nothing
    ("0.7.0", "0.10.0", True, "is not a release this collection knows"),   # accepting a restart is not a blank cheque
])
def test_a_group_restart_is_made_only_when_accepted(have, want, accept, says):
    problems = lws_controller.upgrade_problems(have, want, "helm", accept)
    assert (problems == []) if says is None else (len(problems) == 1 and says in problems[0]), problems


def test_lost_names_what_is_gone_recreated_or_changed():
    before = [{"kind": "LeaderWorkerSet", "namespace": "a", "name": n, "uid": "u-" + n, "generation": 1}
              for n in ("kept", "gone", "recreated", "changed")]
    after = [dict(before[0]), dict(before[2], uid="u-new"), dict(before[3], generation=2)]
    assert lws_controller.lost(before, after) == [
        "LeaderWorkerSet a/gone is gone", "LeaderWorkerSet a/recreated was deleted and recreated (uid u-new, was "
        "u-recreated)", "LeaderWorkerSet a/changed changed (generation 2, was 1)"]
    assert lws_controller.lost(before, before) == []


def test_restarted_groups_are_lost_unless_accepted():
    before = [{"kind": "LeaderWorkerSet", "namespace": "a", "name": "m", "uid": "u", "generation": 1,
               "pods": {"m-0": "p0", "m-0-1": "p1"}}]
    same = [dict(before[0])]
    moved = [dict(before[0], pods={"m-0": "p0-new", "m-0-1": "p1"})]
    going = [dict(before[0], pods={"m-0-1": "p1"})]               # deleted, not yet back
    assert lws_controller.restarted(before, same) == {} and lws_controller.lost(before, same) == []
    assert lws_controller.restarted(before, moved) == {"LeaderWorkerSet a/m": ["m-0"]}
    assert lws_controller.lost(before, moved) == [
        "LeaderWorkerSet a/m: pods m-0 were recreated - the controller restarted its groups"]
    assert lws_controller.lost(before, moved, restart_accepted=True) == []
    assert lws_controller.restarted(before, going) == {"LeaderWorkerSet a/m": ["m-0"]}
