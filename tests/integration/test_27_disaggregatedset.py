"""wide_ep_workload: disaggregatedset on the local cluster, through the real LWS 0.9.0 controller (its
DisaggregatedSet reconciler and webhooks, `localcluster.py lws 0.9.0`): refused with the fix while LWS 0.7.0
runs, before any change; then deployed - one DisaggregatedSet, the controller's LeaderWorkerSet per role
Ready, the pool selecting both roles - verified, idempotent, honest in check mode, scaled, and torn down.

The router release is tests/support/charts/llm-d-router-standin (ghcr.io is out of reach, see test_70)."""
import json
import subprocess
import sys

import pytest
import yaml

from tests.support.runs import CACHE, ROOT, run_playbook, task_results

NS = "llm-d-wide-ep"
DS = "wide-ep-lws-nvidia-gpu-vllm"
CLUSTER = [sys.executable, str(ROOT / "tests/support/cluster/localcluster.py")]
STANDIN = str(ROOT / "tests/support/charts/llm-d-router-standin")
V090_DS = {"wide_ep_llmd_version": "v0.9.0", "wide_ep_workload": "disaggregatedset", "lws_version": "0.9.0",
           "inferencepool_chart_ref": STANDIN, "upgrade_gate_timeout": 120, "modelserver_wait_timeout": 300,
           "gateway_api_crds_sources": [str(CACHE / "data/gateway-api-v1.5.1/standard"),
                                        str(CACHE / "data/gaie-v1.5.0/crds"), str(CACHE / "data/istio/crds")]}


def lws_controller(version):
    subprocess.run([*CLUSTER, "lws", version], check=True, capture_output=True)


def children(cluster):
    """{role: [LeaderWorkerSet]} the DisaggregatedSet controller made."""
    out = {}
    for lws in cluster.json("get", "lws", "-n", NS, "-l", "disaggregatedset.x-k8s.io/name=" + DS)["items"]:
        out.setdefault(lws["metadata"]["labels"]["disaggregatedset.x-k8s.io/role"], []).append(lws)
    return out


def changed(stats):
    return sum(h["changed"] for h in stats.values())


@pytest.fixture(scope="module")
def empty(cluster):
    lws_controller("0.7.0")
    run_playbook("playbooks/teardown.yml", extra_vars={"teardown_namespace": True, "teardown_delete_foreign": True})
    cluster("delete", "namespace", NS, "--ignore-not-found", "--wait=true", "--timeout=120s")
    yield cluster
    cluster("delete", "namespace", NS, "--ignore-not-found", "--wait=true", "--timeout=120s")
    lws_controller("0.7.0")


def test_refused_with_the_fix_while_an_lws_without_it_runs(empty):
    """LWS 0.7.0 (the local cluster's, outside it: the lws role leaves it alone) has no DisaggregatedSet."""
    rc, stats, out, log = run_playbook("site.yml", extra_vars=V090_DS)
    assert rc != 0, log
    (found,) = task_results(out, "Look for an existing LeaderWorkerSet controller")
    msg = found["localhost"]["msg"]
    assert "wide_ep_workload: disaggregatedset needs a LeaderWorkerSet controller 0.9.0 or later" in msg, msg
    assert "its CRD missing, its validating webhook missing" in msg
    assert "--set enableDisaggregatedSet=true" in msg
    assert changed(stats) == 0
    assert empty("get", "namespace", NS, check=False).returncode != 0


@pytest.fixture(scope="module")
def deployed(empty):
    lws_controller("0.9.0")
    rc, stats, out, log = run_playbook("site.yml", extra_vars=V090_DS)
    assert rc == 0, log
    return empty, out


def test_one_disaggregatedset_and_its_controllers_leaderworkersets_ready(deployed):
    cluster, out = deployed
    ds = cluster.json("get", "disaggregatedsets.disaggregatedset.x-k8s.io", DS, "-n", NS)
    assert [r["name"] for r in ds["spec"]["roles"]] == ["prefill", "decode"]
    assert cluster("get", "lws", "wide-ep-llm-d-decode", "-n", NS, check=False).returncode != 0
    kids = children(cluster)
    assert sorted(kids) == ["decode", "prefill"]
    for role, (lws,) in kids.items():
        rev = lws["metadata"]["labels"]["disaggregatedset.x-k8s.io/revision"]
        assert lws["metadata"]["name"] == "%s-%s-%s" % (DS, rev, role)
        assert lws["metadata"]["ownerReferences"][0]["kind"] == "DisaggregatedSet"
        assert lws["status"]["readyReplicas"] == 1
        pods = cluster.json("get", "pods", "-n", NS, "-l", "leaderworkerset.sigs.k8s.io/name=" + lws["metadata"][
            "name"])["items"]
        assert len(pods) == 2 and all(p["metadata"]["labels"]["llm-d.ai/role"] == role for p in pods)
        assert all(p["status"]["phase"] == "Running" for p in pods)
        # what the router's revision screener reads from each pod, written by the controller
        assert all({"disaggregatedset.x-k8s.io/name": DS, "disaggregatedset.x-k8s.io/role": role,
                    "disaggregatedset.x-k8s.io/revision": rev}.items() <= p["metadata"]["labels"].items()
                   for p in pods)
    epp = yaml.safe_load(cluster.json("get", "configmap", "wide-ep-lws-epp", "-n", NS)["data"][
        "wide-ep-lws-config.yaml"])
    assert epp["plugins"][0]["type"] == "disaggregatedset-rollout-screener"
    assert epp["plugins"][0]["parameters"]["scope"]["labelSelector"] == "disaggregatedset.x-k8s.io/name=" + DS
    (applied,) = task_results(out, "Prefill and decode LeaderWorkerSets")
    (result,) = applied["localhost"]["results"]
    assert result["kind"] == "DisaggregatedSet"
    assert result["ready"].startswith("prefill (revision ") and "decode (revision " in result["ready"]
    assert "1/1 groups ready" in result["ready"]


def test_verify_checks_the_set_and_the_pool_selects_both_roles(deployed):
    rc, _, out, log = run_playbook("playbooks/verify.yml", extra_vars=V090_DS)
    assert rc == 0, log
    (verified,) = task_results(out, "Verify the live stack")
    report = "\n".join(verified["localhost"]["report"])
    assert "OK    DisaggregatedSet %s: prefill (revision " % DS in report, report
    assert "InferencePool wide-ep-lws selects 2 prefill pod(s), 2 decode pod(s)" in report, report


def test_site_again_changes_nothing(deployed):
    rc, stats, _, log = run_playbook("site.yml", extra_vars=V090_DS)
    assert rc == 0 and changed(stats) == 0, log


def test_check_mode_shows_a_change_and_makes_none(deployed):
    cluster, _ = deployed
    before = cluster.json("get", "disaggregatedsets.disaggregatedset.x-k8s.io", DS, "-n", NS)["metadata"]
    decode = {"replicas": 1, "group_size": 2, "dp_local": 8, "env": {"WIDE_EP_TEST_MARK": "1"}}
    rc, stats, out, log = run_playbook("site.yml", check=True, diff=True, extra_vars={**V090_DS,
                                                                                     "wide_ep_decode": decode})
    assert rc == 0, log
    (applied,) = task_results(out, "Prefill and decode LeaderWorkerSets")
    assert applied["localhost"]["changed"] is True
    assert "WIDE_EP_TEST_MARK" in applied["localhost"]["diff"][0]["after"]
    after = cluster.json("get", "disaggregatedsets.disaggregatedset.x-k8s.io", DS, "-n", NS)["metadata"]
    assert after["generation"] == before["generation"] and after["resourceVersion"] == before["resourceVersion"]


def revisions(cluster):
    data = cluster.json("get", "configmap", "-n", NS, "wide-ep-revisions").get("data", {})
    return [json.loads(v) for k, v in sorted(data.items())]


def revision_of(cluster):
    return {role: [lws["metadata"]["labels"]["disaggregatedset.x-k8s.io/revision"] for lws in kids]
            for role, kids in children(cluster).items()}


def test_scale_counts_the_sets_groups(deployed):
    """All 32 GPUs run the set: one more decode group needs its 2 pods placed, not the 4 of both roles again."""
    rc, stats, out, log = run_playbook("playbooks/scale.yml", extra_vars={
        **V090_DS, "wide_ep_decode": {"replicas": 2, "group_size": 2, "dp_local": 8}})
    assert rc != 0
    (cap,) = task_results(out, "Check the cluster has room for the added groups")
    assert cap["localhost"]["needed"] == [8, 8], log
    assert changed(stats) == 0


def test_upgrade_rolls_both_roles_together_old_groups_first_without_surge_room(deployed):
    cluster, _ = deployed
    before = revision_of(cluster)
    decode = {"replicas": 1, "group_size": 2, "dp_local": 8, "env": {"WIDE_EP_TEST_MARK": "1"}}
    rc, stats, out, log = run_playbook("playbooks/upgrade.yml", extra_vars={**V090_DS, "wide_ep_decode": decode})
    assert rc == 0, log
    (plan,) = task_results(out, "The upgrade plan")
    lines = "\n".join(plan["localhost"]["msg"])
    assert "model servers %s (the old groups of every role first, then the new ones): decode: workerTemplate " \
           "vllm env changed" % DS in lines, lines
    (planned,) = task_results(out, "Check the upgrade can start")
    assert any("takes the old groups of every role down together (prefill, decode)" in w
               for w in planned["localhost"]["warnings"]), planned
    after = revision_of(cluster)
    assert after["decode"] != before["decode"] and len(after["decode"]) == 1   # the old revision drained, deleted
    assert after["prefill"] != before["prefill"]    # one revision for the set: prefill's LWS is rolled with it
    rev = revisions(cluster)[-1]
    assert rev["status"] == "deployed" and DS in rev["leaderworkersets"], rev
    rc, stats, _, log = run_playbook("site.yml", extra_vars={**V090_DS, "wide_ep_decode": decode})
    assert rc == 0 and changed(stats) == 0, log


def test_rollback_returns_to_the_revision_before_the_upgrade(deployed):
    cluster, _ = deployed
    upgraded = revision_of(cluster)
    rc, _, out, log = run_playbook("playbooks/rollback.yml", extra_vars=V090_DS)
    assert rc == 0, log
    back = revision_of(cluster)
    assert back["decode"] != upgraded["decode"] and len(back["decode"]) == 1
    ds = cluster.json("get", "disaggregatedsets.disaggregatedset.x-k8s.io", DS, "-n", NS)
    env = ds["spec"]["roles"][1]["spec"]["leaderWorkerTemplate"]["workerTemplate"]["spec"]["containers"][0]["env"]
    assert "WIDE_EP_TEST_MARK" not in {e["name"] for e in env}
    assert revisions(cluster)[-1]["note"].startswith("rollback to revision 1"), revisions(cluster)[-1]
    rc, _, _, log = run_playbook("playbooks/verify.yml", extra_vars=V090_DS)
    assert rc == 0, log


def test_a_failed_upgrade_returns_to_the_previous_revision(deployed):
    cluster, _ = deployed
    before = revision_of(cluster)
    decode = {"replicas": 1, "group_size": 2, "dp_local": 8, "env": {"WIDE_EP_TEST_MARK": "1"}}
    rc, _, out, log = run_playbook("playbooks/upgrade.yml", extra_vars={
        **V090_DS, "wide_ep_decode": decode, "upgrade_gate_timeout": 30,
        "wide_ep_images": {"vllm": "registry.invalid/never-ready/llm-d-cuda:v9.0.0"}})
    assert rc != 0
    (rolled,) = task_results(out, "Roll the model servers behind health gates")
    msg = rolled["localhost"]["msg"]
    assert "did not pass its gate in 30s" in msg, msg
    assert "which passed its gate again" in msg, msg
    assert revision_of(cluster) == before
    ds = cluster.json("get", "disaggregatedsets.disaggregatedset.x-k8s.io", DS, "-n", NS)
    images = [r["spec"]["leaderWorkerTemplate"]["workerTemplate"]["spec"]["containers"][0]["image"]
              for r in ds["spec"]["roles"]]
    assert images == ["ghcr.io/llm-d/llm-d-cuda:v0.9.0"] * 2
    assert [r["status"] for r in revisions(cluster)][-1] == "rolled-back"


def test_node_maintenance_takes_a_sets_group_down_whole_and_brings_it_back(deployed):
    """The set's groups are its LeaderWorkerSets' groups: the drained one is recreated whole, the other role's is
    untouched, and the set is Ready again (no spare GPUs here: the downtime is accepted)."""
    cluster, _ = deployed
    group_label = "leaderworkerset.sigs.k8s.io/name"
    before = cluster.json("get", "pods", "-n", NS, "-l", group_label)["items"]
    victim = next(p for p in before if p["metadata"]["labels"]["llm-d.ai/role"] == "decode")
    name, node = victim["metadata"]["labels"][group_label], victim["spec"]["nodeName"]
    untouched = {p["metadata"]["uid"] for p in before if p["metadata"]["labels"][group_label] != name}
    try:
        rc, _, out, log = run_playbook("playbooks/node_maintenance.yml", extra_vars={
            **V090_DS, "maintenance_node": node, "maintenance_accept_downtime": True, "maintenance_timeout": 120})
    finally:
        cluster("uncordon", node)
    assert rc == 0, log
    (drained,) = task_results(out, "Cordon the node and take its EP groups down whole")
    assert drained["localhost"]["groups"] == ["%s/%s/0" % (NS, name)]
    after = cluster.json("get", "pods", "-n", NS, "-l", group_label)["items"]
    assert untouched <= {p["metadata"]["uid"] for p in after}
    group_after = [p for p in after if p["metadata"]["labels"][group_label] == name]
    assert len(group_after) == 2 and not {p["metadata"]["uid"] for p in group_after} & {
        p["metadata"]["uid"] for p in before}
    rc, _, _, log = run_playbook("playbooks/verify.yml", extra_vars=V090_DS)
    assert rc == 0, log


def test_teardown_removes_the_set_and_its_leaderworkersets(deployed):
    cluster, _ = deployed
    rc, _, _, log = run_playbook("playbooks/teardown.yml", extra_vars=V090_DS)
    assert rc == 0, log
    assert cluster("get", "disaggregatedsets.disaggregatedset.x-k8s.io", DS, "-n", NS, check=False).returncode != 0
    # the garbage collector takes the controller's LeaderWorkerSets with their owner
    cluster("wait", "--for=delete", "lws", "-n", NS, "-l", "disaggregatedset.x-k8s.io/name=" + DS, "--timeout=60s")
    assert children(cluster) == {}


# --- the move of a running LeaderWorkerSet pair onto the DisaggregatedSet ---------------------------------------
V090_PAIR = {k: v for k, v in V090_DS.items() if k != "wide_ep_workload"}
MOVE = {**V090_DS, "upgrade_from_workload": "leaderworkersets"}


def pair_names(cluster):
    return sorted(o["metadata"]["name"] for o in cluster.json("get", "lws", "-n", NS)["items"]
                  if "disaggregatedset.x-k8s.io/name" not in o["metadata"].get("labels", {}))


@pytest.fixture(scope="module")
def pair(deployed):
    cluster, _ = deployed
    rc, _, _, log = run_playbook("site.yml", extra_vars=V090_PAIR)
    assert rc == 0, log
    assert pair_names(cluster) == ["wide-ep-llm-d-decode", "wide-ep-llm-d-prefill"]
    return cluster


def test_site_refuses_the_set_beside_the_running_pair(pair):
    rc, stats, out, log = run_playbook("site.yml", extra_vars=V090_DS)
    assert rc != 0
    # refused by the first apply that would change something (the ServiceAccount's labels), before it changed
    (applied,) = task_results(out, "Namespace, ServiceAccount and PodMonitors")
    assert changed(stats) == 0, log
    msg = applied["localhost"]["msg"]
    assert msg.startswith("not creating DisaggregatedSet llm-d-wide-ep/%s beside LeaderWorkerSet llm-d-wide-ep/"
                          "wide-ep-llm-d-prefill of the same deployment" % DS), msg
    assert "upgrade.yml -e upgrade_from_workload=leaderworkersets" in msg
    assert pair("get", "disaggregatedsets.disaggregatedset.x-k8s.io", DS, "-n", NS, check=False).returncode != 0


def test_check_mode_prints_the_move_and_changes_nothing(pair):
    rc, stats, out, log = run_playbook("playbooks/upgrade.yml", extra_vars=MOVE, check=True)
    assert rc == 0, log
    (shown,) = task_results(out, "The move plan")
    lines = shown["localhost"]["msg"]
    assert lines[0] == "stop-then-start:", lines       # the pair holds all 32 GPUs of the local cluster
    assert lines[1].startswith("scale wide-ep-llm-d-prefill, wide-ep-llm-d-decode to 0: every role (prefill, "
                               "decode) stops serving until the set's groups are Ready (7-45 minutes")
    (move,) = task_results(out, "Move, gated")
    (labels,) = task_results(out, "The model servers' other objects")
    (router,) = task_results(out, "InferencePool and its endpoint picker")
    # what a real run would change: the move, the ServiceAccount's labels, and the router (its revision screener)
    assert move["localhost"]["changed"] is True and labels["localhost"]["changed"] is True
    assert router["localhost"]["changed"] is True and changed(stats) == 3
    assert pair_names(pair) == ["wide-ep-llm-d-decode", "wide-ep-llm-d-prefill"]
    assert pair("get", "disaggregatedsets.disaggregatedset.x-k8s.io", DS, "-n", NS, check=False).returncode != 0


def test_a_failed_move_returns_to_the_pair(pair):
    uids = {o["metadata"]["name"]: o["metadata"]["uid"] for o in pair.json("get", "lws", "-n", NS)["items"]}
    rc, _, out, log = run_playbook("playbooks/upgrade.yml", extra_vars={
        **MOVE, "upgrade_gate_timeout": 30,
        "wide_ep_images": {"vllm": "registry.invalid/never-ready/llm-d-cuda:v9.0.0"}})
    assert rc != 0
    (moved,) = task_results(out, "Move, gated")
    msg = moved["localhost"]["msg"]
    assert "did not pass its gate in 30s" in msg and "returned to the LeaderWorkerSet pair" in msg, msg
    assert {o["metadata"]["name"]: o["metadata"]["uid"] for o in pair.json("get", "lws", "-n", NS)["items"]} == uids
    for name in uids:
        lws = pair.json("get", "lws", name, "-n", NS)
        assert lws["spec"]["replicas"] == 1 and lws["status"]["readyReplicas"] == 1
    assert pair("get", "disaggregatedsets.disaggregatedset.x-k8s.io", DS, "-n", NS, check=False).returncode != 0
    assert revisions(pair)[-1]["status"] == "rolled-back"
    rc, stats, _, log = run_playbook("site.yml", extra_vars=V090_PAIR)
    assert rc == 0 and changed(stats) == 0, log


def test_the_move(pair):
    rc, _, out, log = run_playbook("playbooks/upgrade.yml", extra_vars=MOVE)
    assert rc == 0, log
    (moved,) = task_results(out, "Move, gated")
    progress = "\n".join(moved["localhost"]["progress"])
    assert progress.index("scaled LeaderWorkerSet llm-d-wide-ep/wide-ep-llm-d-decode to 0") < progress.index(
        "applied DisaggregatedSet llm-d-wide-ep/%s" % DS), progress
    assert pair_names(pair) == []
    assert sorted(children(pair)) == ["decode", "prefill"]
    rev = revisions(pair)[-1]
    assert rev["status"] == "deployed" and rev["note"] == "workload leaderworkersets -> disaggregatedset " \
                                                          "(stop-then-start)", rev
    rc, _, _, log = run_playbook("playbooks/verify.yml", extra_vars=V090_DS)
    assert rc == 0, log
    rc, stats, _, log = run_playbook("site.yml", extra_vars=V090_DS)
    assert rc == 0 and changed(stats) == 0, log


def test_rollback_does_not_move_back_across_workloads(pair):
    rc, stats, out, log = run_playbook("playbooks/rollback.yml", extra_vars=V090_DS)
    assert rc != 0
    (rolled,) = task_results(out, "Apply the previous revision")
    assert "a rollback does not move the model servers between workloads" in rolled["localhost"]["msg"], log
    assert changed(stats) == 0 and pair_names(pair) == []
