"""A DisaggregatedSet's children and readiness (module_utils/k8s/disaggregatedset.py), as pure logic over
objects shaped like the LWS 0.9.0 controller's. The real controller is driven in
tests/integration/test_27_disaggregatedset.py."""
import copy

from ansible_collections.llmd.wide_ep.plugins.module_utils.k8s import disaggregatedset as dsu
from ansible_collections.llmd.wide_ep.plugins.module_utils.k8s.readiness import readiness


def role(name, image="img:1", replicas=1):
    return {"name": name, "spec": {"replicas": replicas, "leaderWorkerTemplate": {
        "size": 2, "workerTemplate": {"metadata": {"labels": {"r": name}},
                                      "spec": {"containers": [{"name": "vllm", "image": image}]}}}}}


DS = {"kind": "DisaggregatedSet", "metadata": {"name": "ds", "namespace": "ns"},
      "spec": {"roles": [role("prefill"), role("decode")]}}


def child(r, rev, replicas=1, ready=1, available=True):
    """The controller's copy of a role: its labels added to the pod template, the webhook's defaults outside it."""
    spec = copy.deepcopy(r["spec"])
    spec["replicas"] = replicas
    spec["leaderWorkerTemplate"]["workerTemplate"]["metadata"]["labels"].update({dsu.ROLE_LABEL: r["name"]})
    spec["leaderWorkerTemplate"]["restartPolicy"] = "RecreateGroupOnPodRestart"
    return {"kind": "LeaderWorkerSet", "metadata": {"name": "ds-%s-%s" % (rev, r["name"]), "namespace": "ns",
                                                    "labels": {dsu.ROLE_LABEL: r["name"], dsu.REVISION_LABEL: rev}},
            "spec": spec, "status": {"readyReplicas": ready, "updatedReplicas": ready, "conditions": [
                {"type": "Available", "status": "True" if available else "False"}]}}


def test_ready_when_each_role_has_its_current_revision_ready():
    kids = [child(r, "aaaa1111") for r in DS["spec"]["roles"]]
    ok, why, pending = dsu.readiness(DS, kids, readiness)
    assert ok and pending == []
    assert why == ("prefill (revision aaaa1111): 1/1 groups ready, 1 updated, Available=True; "
                   "decode (revision aaaa1111): 1/1 groups ready, 1 updated, Available=True")


def test_not_ready_before_the_controller_made_a_role():
    ok, why, _ = dsu.readiness(DS, [child(DS["spec"]["roles"][0], "aaaa1111")], readiness)
    assert not ok and "decode: no LeaderWorkerSet of the current revision yet" in why


def test_an_old_revision_ready_is_not_the_new_template_ready():
    """Right after a change the only children are the old revision's, all Ready: that is not done."""
    old = [child(r, "aaaa1111") for r in DS["spec"]["roles"]]
    changed = copy.deepcopy(DS)
    for r in changed["spec"]["roles"]:
        r["spec"]["leaderWorkerTemplate"]["workerTemplate"]["spec"]["containers"][0]["image"] = "img:2"
    ok, why, _ = dsu.readiness(changed, old, readiness)
    assert not ok and why.count("no LeaderWorkerSet of the current revision yet") == 2


def test_surged_but_old_groups_left_is_not_done():
    changed = copy.deepcopy(DS)
    changed["spec"]["roles"][1] = role("decode", image="img:2")
    kids = [child(r, "aaaa1111") for r in DS["spec"]["roles"]] + [
        child(changed["spec"]["roles"][0], "bbbb2222"), child(changed["spec"]["roles"][1], "bbbb2222")]
    # prefill's template did not change: both revisions' prefill children run it
    ok, why, _ = dsu.readiness(changed, kids, readiness)
    assert not ok and "decode (revision bbbb2222): 1/1 groups ready" in why
    assert "1 older revision(s) still hold 1 group(s)" in why
    drained = [k for k in kids if k["metadata"]["labels"][dsu.REVISION_LABEL] == "bbbb2222"] + [
        child(DS["spec"]["roles"][1], "aaaa1111", replicas=0, ready=0)]
    assert dsu.readiness(changed, drained, readiness)[0]


def test_a_scale_is_done_at_the_roles_replicas():
    scaled = copy.deepcopy(DS)
    scaled["spec"]["roles"][1]["spec"]["replicas"] = 2
    kids = [child(r, "aaaa1111") for r in DS["spec"]["roles"]]
    ok, why, _ = dsu.readiness(scaled, kids, readiness)   # the controller has not scaled its child yet
    assert not ok and "decode (revision aaaa1111): 1/1 groups ready, 1 updated, Available=True, scaling to 2" in why
    kids[1]["spec"]["replicas"] = 2
    ok, why, pending = dsu.readiness(scaled, kids, readiness)
    assert not ok and "decode (revision aaaa1111): 1/2 groups ready" in why
    assert [p["metadata"]["name"] for p in pending] == ["ds-aaaa1111-decode"]


def test_a_child_not_available_is_pending():
    kids = [child(DS["spec"]["roles"][0], "aaaa1111"), child(DS["spec"]["roles"][1], "aaaa1111", ready=0,
                                                             available=False)]
    ok, _, pending = dsu.readiness(DS, kids, readiness)
    assert not ok and [p["metadata"]["name"] for p in pending] == ["ds-aaaa1111-decode"]


def test_no_roles_is_never_ready():
    assert dsu.readiness({"spec": {"roles": []}}, [], readiness) == (False, "no roles", [])


def test_the_controllers_go_copy_of_a_template_is_current():
    """What the LWS 0.9.0 controller wrote on the local cluster: a zero dropped, an empty struct added."""
    r = copy.deepcopy(role("decode"))
    r["spec"]["leaderWorkerTemplate"]["workerTemplate"]["spec"]["containers"][0]["startupProbe"] = {
        "initialDelaySeconds": 0, "periodSeconds": 1}
    r["spec"]["leaderWorkerTemplate"]["workerTemplate"]["spec"]["initContainers"] = [{"name": "routing-proxy"}]
    kid = child(r, "aaaa1111")
    pod = kid["spec"]["leaderWorkerTemplate"]["workerTemplate"]["spec"]
    pod["containers"][0]["startupProbe"] = {"periodSeconds": 1}
    pod["initContainers"][0]["resources"] = {}
    assert dsu.is_current(kid, r)
    pod["containers"][0]["startupProbe"] = {"periodSeconds": 2}
    assert not dsu.is_current(kid, r)
