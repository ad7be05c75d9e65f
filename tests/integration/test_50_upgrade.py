"""Day-2 upgrades on the local cluster, with faults: pods that never become Ready (kwok stage for images under
registry.invalid/never-ready), slow starts (registry.invalid/slow-ready: Ready after 15 s) that open a window
for killing the run, stopping the LWS controller or restarting the kube-apiserver mid-upgrade. Every test ends
with the stack Ready, and the last one checks that nothing the user did not ask to delete was deleted."""
import json
import subprocess
import sys
import time

import pytest

from ansible_collections.llmd.wide_ep.plugins.module_utils.k8s.client import epoch
from tests.support.runs import (
    ROOT,
    kill_run,
    parse_playbook_output,
    run_playbook,
    spare_gpu_nodes,
    start_playbook,
    task_results,
)

NS = "llm-d-wide-ep"
LWS = {"prefill": "wide-ep-llm-d-prefill", "decode": "wide-ep-llm-d-decode"}
CLUSTER = [sys.executable, str(ROOT / "tests/support/cluster/localcluster.py")]
SLOW_IMAGE = "registry.invalid/slow-ready/llm-d-cuda:v9.0.0"
NEVER_READY_IMAGE = "registry.invalid/never-ready/llm-d-cuda:v9.0.0"
LOCK_SECONDS = 15  # the rollout lease of the tests' runs: a dead run's lease expires this long after its renewal


def decode(*extra_args):
    return {"wide_ep_decode": {"replicas": 1, "group_size": 2, "dp_local": 8, "extra_args": list(extra_args)}}


def cluster_up():
    """Start what is stopped, until every component stays up: the scheduler and the LWS controller can exit a few
    seconds after losing the API server (after a first `up` found them running), and a restart can fail once."""
    for _ in range(10):
        subprocess.run([*CLUSTER, "up"], capture_output=True)  # a start can fail while the old port frees up
        time.sleep(3)
        if subprocess.run([*CLUSTER, "status"], capture_output=True).returncode == 0:
            return
    raise AssertionError(subprocess.run([*CLUSTER, "status"], capture_output=True, text=True).stdout)


def slow_upgrade(flag, gate_timeout):
    """A decode flag change with the vLLM image whose pods take 15 s to become Ready: a window mid-upgrade."""
    return {**decode(flag), "wide_ep_images": {"vllm": SLOW_IMAGE}, "upgrade_gate_timeout": gate_timeout}


def upgrade(extra, check=False):
    return run_playbook("playbooks/upgrade.yml", extra_vars={"upgrade_gate_timeout": 60, **extra}, check=check)


@pytest.fixture(scope="module")
def stack(cluster):
    cluster("delete", "namespace", NS, "--ignore-not-found", "--wait=true", "--timeout=120s")  # no old record
    rc, _, _, log = run_playbook("site.yml")
    assert rc == 0, log
    # What the user made next to the stack: no upgrade, rollback or fault may take it away.
    cluster.apply([{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "user-notes", "namespace": NS},
                    "data": {"owner": "platform team"}}])
    sentinels = {"namespace": cluster.json("get", "namespace", NS)["metadata"]["uid"],
                 "configmap": cluster.json("get", "configmap", "-n", NS, "user-notes")["metadata"]["uid"],
                 "crd": cluster.json("get", "crd", "leaderworkersets.leaderworkerset.x-k8s.io")["metadata"]["uid"]}
    for role, name in LWS.items():
        sentinels[role] = cluster.json("get", "lws", "-n", NS, name)["metadata"]["uid"]
    yield cluster, sentinels
    subprocess.run([*CLUSTER, "up"], capture_output=True)  # whatever a failed test stopped
    cluster("delete", "namespace", NS, "--wait=true", "--timeout=120s")


def lws(cluster, role):
    return cluster.json("get", "lws", "-n", NS, LWS[role])


def pods(cluster, role):
    return {p["metadata"]["name"]: p for p in cluster.json(
        "get", "pods", "-n", NS, "-l", "leaderworkerset.sigs.k8s.io/name=" + LWS[role])["items"]}


def vllm_args(obj):
    return " ".join(obj["spec"]["leaderWorkerTemplate"]["workerTemplate"]["spec"]["containers"][0]["args"])


def vllm_image(obj):
    return obj["spec"]["leaderWorkerTemplate"]["workerTemplate"]["spec"]["containers"][0]["image"]


def revisions(cluster):
    cm = cluster("get", "configmap", "-n", NS, "wide-ep-revisions", "-o", "json", check=False)
    if cm.returncode:
        return []
    return sorted((json.loads(v) for v in json.loads(cm.stdout)["data"].values()), key=lambda r: r["revision"])


def all_ready(cluster):
    for role in LWS:
        items = pods(cluster, role).values()
        if len(items) != 2 or not all(any(c["type"] == "Ready" and c["status"] == "True"
                                           for c in p["status"].get("conditions", [])) for p in items):
            return False
    return True


def wait_for_revision_in_progress(cluster, proc, timeout=60):
    def seen():
        if proc.poll() is not None:
            raise AssertionError("the upgrade ended before the test could interrupt it: %s" % proc.stdout.read())
        revs = revisions(cluster)
        return revs and revs[-1]["status"] == "in-progress"
    cluster.wait_for("an upgrade in progress", seen, timeout=timeout)


def test_check_prints_the_plan_and_changes_nothing(stack):
    cluster, _ = stack
    before = lws(cluster, "decode")
    rc, stats, out, log = upgrade(decode("--max-num-seqs=512"), check=True)
    assert rc == 0, log
    (plan,) = task_results(out, "The upgrade plan")
    lines = plan["localhost"]["msg"]
    assert lines == ["model servers wide-ep-llm-d-decode (one group at a time): workerTemplate vllm command/args "
                     "+--max-num-seqs=512"], lines
    after = lws(cluster, "decode")
    assert after["metadata"]["generation"] == before["metadata"]["generation"]
    assert revisions(cluster) == []
    assert sum(h["changed"] for h in stats.values()) == 0


def test_bad_settings_are_refused_before_anything(stack):
    cluster, _ = stack
    rc, stats, out, log = upgrade({**decode("--max-num-seqs=512"), "upgrade_lock_duration": 5})
    assert rc != 0
    (res,) = task_results(out, "Check the upgrade settings")
    assert "upgrade_gate_timeout is 60 and upgrade_lock_duration 5 (role upgrade, set with -e)" in \
        res["localhost"]["msg"], res["localhost"]["msg"]
    assert task_results(out, "Find the LWS controller") == []
    assert sum(h["changed"] for h in stats.values()) == 0 and revisions(cluster) == []


def test_upgrade_rolls_only_the_changed_role_and_records_it(stack):
    cluster, _ = stack
    prefill_before, decode_before = pods(cluster, "prefill"), pods(cluster, "decode")
    rc, _, out, log = upgrade(decode("--max-num-seqs=512"))
    assert rc == 0, log
    assert "--max-num-seqs=512" in vllm_args(lws(cluster, "decode"))
    assert {n: p["metadata"]["uid"] for n, p in pods(cluster, "prefill").items()} == \
        {n: p["metadata"]["uid"] for n, p in prefill_before.items()}           # prefill untouched
    decode_after = pods(cluster, "decode")
    assert set(decode_after) == set(decode_before)
    assert all(decode_after[n]["metadata"]["uid"] != decode_before[n]["metadata"]["uid"] for n in decode_after)
    assert all_ready(cluster)
    revs = revisions(cluster)
    assert [(r["revision"], r["status"]) for r in revs] == [(1, "deployed"), (2, "deployed")]
    assert revs[1]["changes"]["wide-ep-llm-d-decode"] == ["workerTemplate vllm command/args +--max-num-seqs=512"]
    assert "--max-num-seqs=512" not in vllm_args(revs[0]["leaderworkersets"]["wide-ep-llm-d-decode"])
    # The same upgrade again, and site.yml with the same settings: nothing to do.
    rc, stats, _, log = upgrade(decode("--max-num-seqs=512"))
    assert rc == 0 and sum(h["changed"] for h in stats.values()) == 0, log
    rc, stats, _, log = run_playbook("site.yml", extra_vars=decode("--max-num-seqs=512"))
    assert rc == 0 and sum(h["changed"] for h in stats.values()) == 0, log


def test_pods_that_never_become_ready_are_rolled_back(stack):
    cluster, _ = stack
    image_before = vllm_image(lws(cluster, "prefill"))
    bad = {**decode("--max-num-seqs=512"), "wide_ep_images": {"vllm": NEVER_READY_IMAGE},
           "upgrade_gate_timeout": 15}
    rc, _, out, log = upgrade(bad)
    assert rc != 0
    (res,) = task_results(out, "Roll the model servers")
    msg = res["localhost"]["msg"]
    assert msg.startswith("LeaderWorkerSet llm-d-wide-ep/wide-ep-llm-d-prefill did not pass its gate in 15s:"), msg
    assert "ContainersNotReady" in msg
    assert msg.endswith("rolled back wide-ep-llm-d-prefill to the previous spec, which passed its gate again")
    assert vllm_image(lws(cluster, "prefill")) == image_before
    assert vllm_image(lws(cluster, "decode")) == image_before                 # never reached
    assert all_ready(cluster)
    assert revisions(cluster)[-1]["status"] == "rolled-back"
    rc, _, _, log = run_playbook("playbooks/verify.yml", extra_vars=decode("--max-num-seqs=512"))
    assert rc == 0, log


def lease(cluster):
    res = cluster("get", "lease", "-n", NS, "wide-ep-rollout", "-o", "json", check=False)
    return json.loads(res.stdout) if res.returncode == 0 else None


def test_a_second_run_is_refused_and_a_killed_run_converges_when_run_again(stack):
    cluster, _ = stack
    slow = {**slow_upgrade("--max-num-seqs=512", 120), "upgrade_lock_duration": LOCK_SECONDS}
    proc = start_playbook("playbooks/upgrade.yml", extra_vars=slow)
    wait_for_revision_in_progress(cluster, proc)
    # A second run while the first one works: refused before it changes anything, naming the holder.
    rc, stats, out, log = upgrade(slow)
    assert rc != 0 and proc.poll() is None, log
    (res,) = task_results(out, "Check the upgrade can start")
    assert "another upgrade or rollback is running: Lease llm-d-wide-ep/wide-ep-rollout is held by" in \
        res["localhost"]["msg"], res["localhost"]["msg"]
    assert sum(h["changed"] for h in stats.values()) == 0
    # site.yml's model-server step meanwhile (another engineer's change): refused too, before any change.
    generations = {role: lws(cluster, role)["metadata"]["generation"] for role in LWS}
    rc, _, out, log = run_playbook("playbooks/model_servers.yml", extra_vars=decode("--max-num-seqs=64"))
    assert rc != 0 and proc.poll() is None, log
    (res,) = task_results(out, "Prefill and decode LeaderWorkerSets")
    msg = res["localhost"]["msg"]
    assert msg.startswith("not changing LeaderWorkerSet llm-d-wide-ep/wide-ep-llm-d-") and \
        "an upgrade or rollback is rolling the model servers of namespace llm-d-wide-ep (Lease wide-ep-rollout " \
        "held by " in msg, msg
    assert {role: lws(cluster, role)["metadata"]["generation"] for role in LWS} == generations
    held = lease(cluster)["spec"]
    assert held["leaseDurationSeconds"] == LOCK_SECONDS
    # The controller dies mid-gate: every process of the run, as a lost machine would take them.
    killed = kill_run(proc)
    assert len(killed) >= 2, killed  # ansible-playbook and its worker (which runs the module, in its session)
    time.sleep(3)
    assert revisions(cluster)[-1]["status"] == "in-progress"
    assert lease(cluster)["spec"]["renewTime"] == cluster.wait_for(   # nobody renews it any more
        "the dead run's lease to expire", lambda: lease_expired(cluster), timeout=LOCK_SECONDS + 30)
    rc, _, out, log = upgrade(slow)
    assert rc == 0, log
    (res,) = task_results(out, "Roll the model servers")
    assert any(line.startswith("took over the lease of %s" % held["holderIdentity"])
               for line in res["localhost"]["progress"]), res["localhost"]["progress"]
    assert lease(cluster) is None                       # given back at the end
    assert vllm_image(lws(cluster, "prefill")) == vllm_image(lws(cluster, "decode")) == SLOW_IMAGE
    assert all_ready(cluster)
    revs = revisions(cluster)
    # The killed run's revision is marked interrupted; the re-run's is deployed.
    assert [r["status"] for r in revs[-2:]] == ["interrupted", "deployed"]
    assert all(r["status"] != "in-progress" for r in revs)


def lease_expired(cluster):
    """The lease's renewTime once it is older than its duration (the plan's check then lets a run start)."""
    spec = lease(cluster)["spec"]
    return spec["renewTime"] if epoch(spec["renewTime"]) + spec["leaseDurationSeconds"] < time.time() - 1 else None


def test_kube_apiserver_restart_during_an_upgrade_is_ridden_out(stack):
    cluster, _ = stack
    change = slow_upgrade("--max-num-seqs=256", 120)
    proc = start_playbook("playbooks/upgrade.yml", extra_vars=change)
    wait_for_revision_in_progress(cluster, proc)
    subprocess.run([*CLUSTER, "stop", "kube-apiserver"], check=True, capture_output=True)
    # A real controller manager loses its leader lease (10 s renew deadline) and restarts; the local one runs
    # without leader election, and its garbage collector could keep a stale graph: an old worker StatefulSet
    # deleted and made again under its name while the watch was down reads as an update, so the old group's
    # worker pod is never removed and blocks its replacement in the next upgrade.
    subprocess.run([*CLUSTER, "stop", "kube-controller-manager"], check=True, capture_output=True)
    time.sleep(3)
    cluster_up()
    stdout, stderr = proc.communicate(timeout=300)
    _, out, log = parse_playbook_output(stdout, stderr)
    if proc.returncode != 0:  # not ridden out: then a re-run must converge
        rc, _, out, log = upgrade(change)
        assert rc == 0, log
    assert "--max-num-seqs=256" in vllm_args(lws(cluster, "decode"))
    cluster.wait_for("every pod Ready", lambda: all_ready(cluster), timeout=60)
    cluster.wait_for("no pod left by a StatefulSet that is gone", lambda: not orphans(cluster), timeout=60)


def orphans(cluster):
    """Names of the stack's pods whose controlling StatefulSet no longer exists (by uid)."""
    sets = {s["metadata"]["name"]: s["metadata"]["uid"]
            for s in cluster.json("get", "statefulsets", "-n", NS)["items"]}
    return [p["metadata"]["name"] for p in cluster.json("get", "pods", "-n", NS)["items"]
            for ref in p["metadata"].get("ownerReferences", [])
            if ref.get("controller") and ref["kind"] == "StatefulSet" and sets.get(ref["name"]) != ref["uid"]]


def test_lws_controller_stopped_mid_upgrade_fails_clearly_then_a_rerun_converges(stack):
    cluster, _ = stack
    # The new prefill pods never become Ready, so its gate fails whatever the timing, and the rollback must go
    # through the LWS webhook while the controller is down.
    broken = {**decode("--max-num-seqs=128"), "wide_ep_images": {"vllm": NEVER_READY_IMAGE},
              "upgrade_gate_timeout": 20}
    proc = start_playbook("playbooks/upgrade.yml", extra_vars=broken)
    cluster.wait_for("the prefill LeaderWorkerSet changed", lambda: proc.poll() is not None or
                     vllm_image(lws(cluster, "prefill")) == NEVER_READY_IMAGE, timeout=120)
    subprocess.run([*CLUSTER, "stop", "lws"], check=True, capture_output=True)
    try:
        stdout, stderr = proc.communicate(timeout=300)
        _, out, log = parse_playbook_output(stdout, stderr)
        assert proc.returncode != 0, log
        (res,) = task_results(out, "Roll the model servers")
        msg = res["localhost"]["msg"]
        assert msg.startswith("LeaderWorkerSet llm-d-wide-ep/wide-ep-llm-d-prefill did not pass its gate in 20s"), msg
        assert "the rollback did not pass the gate either" in msg, msg
        assert msg.endswith("(the LeaderWorkerSet controller serves this webhook: is it running?)"), msg
    finally:
        cluster_up()
    rc, _, _, log = upgrade(slow_upgrade("--max-num-seqs=128", 120))
    assert rc == 0, log
    assert "--max-num-seqs=128" in vllm_args(lws(cluster, "decode"))
    assert vllm_image(lws(cluster, "prefill")) == vllm_image(lws(cluster, "decode")) == SLOW_IMAGE
    assert all_ready(cluster)
    assert [r["status"] for r in revisions(cluster)[-2:]] == ["failed", "deployed"]


def test_rollback_undoes_the_last_upgrade(stack):
    cluster, _ = stack
    before = vllm_args(lws(cluster, "decode"))
    rc, _, _, log = upgrade(decode("--max-num-seqs=96"))
    assert rc == 0, log
    rc, _, out, log = run_playbook("playbooks/rollback.yml")
    assert rc == 0, log
    assert vllm_args(lws(cluster, "decode")) == before
    assert all_ready(cluster)
    revs = revisions(cluster)
    assert revs[-1]["status"] == "deployed" and revs[-1]["note"].startswith("rollback to revision")
    assert revs[-2]["status"] == "rolled-back"


def test_a_surge_upgrade_and_its_rollback_give_the_strategy_back(stack):
    """A one-group role rolls with a surge group only under LWS 0.9.0 or later (0.7.0 releases it at once): with
    the 0.7.0 controller (of unknown version to the collection, as it runs outside the cluster) the plan says one
    group at a time. Under 0.9.0 (lws_external_version) with two spare nodes the decode change rolls with a surge
    group (maxSurge 1, maxUnavailable 0, owned by the rollout's field manager) and, once through its gate, is one
    group at a time again; the rollback, surging as well, restores the first revision - whose recorded object the
    API server had defaulted to maxSurge 0 - without a conflict over it. site.yml then rolls whatever an earlier
    test left with no surge group to wait for (a strategy left at maxSurge 1 made it wait forever for a group
    the GPUs no longer held, as both roles wanted one)."""
    cluster, _ = stack
    try:
        with spare_gpu_nodes(cluster, 2):
            surge_upgrade_and_rollback(cluster)
    finally:
        subprocess.run([*CLUSTER, "lws", "0.7.0"], check=True, capture_output=True)
    # pods left on the spare nodes go with them; LWS makes them again on the cluster's own
    cluster.wait_for("both roles Ready on the cluster's own nodes", lambda: all_ready(cluster), timeout=180)


def strategy(cluster, role):
    """(maxSurge, maxUnavailable) of the role's LeaderWorkerSet."""
    config = lws(cluster, role)["spec"]["rolloutStrategy"]["rollingUpdateConfiguration"]
    return config["maxSurge"], config["maxUnavailable"]


def surge_upgrade_and_rollback(cluster):
    rc, _, out, log = upgrade(decode("--max-num-seqs=80"), check=True)
    assert rc == 0, log
    (plan,) = task_results(out, "The upgrade plan")
    assert any("wide-ep-llm-d-decode (one group at a time)" in line for line in plan["localhost"]["msg"]), plan
    subprocess.run([*CLUSTER, "lws", "0.9.0"], check=True, capture_output=True)
    before = vllm_args(lws(cluster, "decode"))
    rc, _, out, log = upgrade({**decode("--max-num-seqs=80"), "lws_external_version": "0.9.0"})
    assert rc == 0, log
    (plan,) = task_results(out, "The upgrade plan")
    assert any("wide-ep-llm-d-decode (surge: one extra group, then the old ones go)" in line
               for line in plan["localhost"]["msg"]), plan
    (roll,) = task_results(out, "Roll the model servers behind health gates (automatic rollback)")
    assert "applied LeaderWorkerSet llm-d-wide-ep/wide-ep-llm-d-decode (maxSurge 1)" in \
        roll["localhost"]["progress"], roll
    assert strategy(cluster, "decode") == (0, 1)       # one group at a time again, once through the gate
    rc, _, _, log = run_playbook("playbooks/rollback.yml", extra_vars={"lws_external_version": "0.9.0"})
    assert rc == 0, log
    assert vllm_args(lws(cluster, "decode")) == before
    assert "wide-ep-llm-d-decode (maxSurge 1)" in log, log      # it surged too
    assert strategy(cluster, "decode") == (0, 1)
    # the site's apply meets no conflict over the strategy and no surge to wait for (an earlier test's flags may
    # be rolled back by it, on both roles)
    rc, _, _, log = run_playbook("site.yml")
    assert rc == 0, log
    cluster.wait_for("both roles Ready, the surge groups gone", lambda: all_ready(cluster), timeout=120)


def test_nothing_the_user_did_not_ask_to_delete_was_deleted(stack):
    cluster, sentinels = stack
    assert cluster.json("get", "namespace", NS)["metadata"]["uid"] == sentinels["namespace"]
    assert cluster.json("get", "configmap", "-n", NS, "user-notes")["metadata"]["uid"] == sentinels["configmap"]
    assert cluster.json("get", "crd", "leaderworkersets.leaderworkerset.x-k8s.io")["metadata"]["uid"] == \
        sentinels["crd"]
    for role in LWS:  # upgrades and rollbacks change the LeaderWorkerSets in place, never re-create them
        assert lws(cluster, role)["metadata"]["uid"] == sentinels[role]
    assert cluster.json("get", "deployment", "-n", NS, "llm-d-infpool-epp")["metadata"]["name"]
