"""The main-7edda66 profile on the local cluster, the day-2 migration to it from a running v0.5.0 stack, and the
in-place upgrade from it to v0.9.0.

The llm-d-router charts (v0.9.0) cannot be obtained here - ghcr.io is out of reach and the Go module proxy refuses
github.com/llm-d/llm-d-router - so the router release is tests/support/charts/llm-d-router-standin, a chart of
this project that reads the guide's values and makes the pool, the EPP and the HTTPRoute under the names the
collection expects. Everything else is the real thing: the model servers, LWS, helm, the gates and the record."""
import json
import subprocess

import pytest

from tests.support.runs import BIN, CACHE, KUBECONFIG, ROOT, run_playbook, task_results

NS = "llm-d-wide-ep"
STANDIN = str(ROOT / "tests/support/charts/llm-d-router-standin")
NEVER_READY = "registry.invalid/never-ready/llm-d-cuda-dev:v9.0.0"
V080 = {"wide_ep_llmd_version": "main-7edda66", "inferencepool_chart_ref": STANDIN,
        "gateway_api_crds_sources": [str(CACHE / "data/gateway-api/standard"), str(CACHE / "data/gaie-v1.5.0/crds"),
                                     str(CACHE / "data/istio/crds")]}
MIGRATE = {**V080, "upgrade_from_llmd_version": "v0.5.0", "upgrade_gate_timeout": 120}


def releases():
    res = subprocess.run([str(BIN / "helm"), "list", "-n", NS, "-o", "json", "--kubeconfig", str(KUBECONFIG)],
                         capture_output=True, text=True, check=True)
    return {r["name"]: r["chart"] for r in json.loads(res.stdout)}


def image(cluster, role):
    lws = cluster.json("get", "lws", "-n", NS, "wide-ep-llm-d-" + role)
    return lws["spec"]["leaderWorkerTemplate"]["workerTemplate"]["spec"]["containers"][0]["image"]


def revisions(cluster):
    data = cluster.json("get", "configmap", "-n", NS, "wide-ep-revisions").get("data", {})
    return [json.loads(v) for k, v in sorted(data.items())]


def routes(cluster):
    return {r["metadata"]["name"] for r in cluster.json("get", "httproute", "-n", NS)["items"]}


@pytest.fixture(scope="module")
def v050(cluster):
    """A running v0.5.0 stack (the local inventory), on an empty namespace."""
    run_playbook("playbooks/teardown.yml", extra_vars={"teardown_namespace": True, "teardown_delete_foreign": True})
    cluster("delete", "namespace", NS, "--ignore-not-found", "--wait=true", "--timeout=120s")
    rc, _, _, log = run_playbook("site.yml")
    assert rc == 0, log
    assert set(releases()) == {"llm-d-infpool"} and image(cluster, "prefill") == "ghcr.io/llm-d/llm-d-cuda:v0.5.0"
    return cluster


def test_check_mode_prints_the_migration_and_changes_nothing(v050):
    rc, stats, out, log = run_playbook("playbooks/upgrade.yml", extra_vars=MIGRATE, check=True)
    assert rc == 0, log
    (plan,) = task_results(out, "The migration plan")
    lines = json.dumps(plan["localhost"]["msg"])
    assert "install llm-d-router-gateway v0.9.0 as release wide-ep-lws beside inferencepool release llm-d-infpool" \
        in lines, lines
    assert "HTTPRoute llm-d-route gives way to HTTPRoute wide-ep-lws of the new chart" in lines
    assert set(releases()) == {"llm-d-infpool"} and sum(h["changed"] for h in stats.values()) == 0


def test_check_mode_plans_the_migration_to_v090(v050):
    """v0.5.0 -> v0.9.0 takes the same path: the v0.10.0 router chart beside the old pool, the model servers rolled
    behind the gates, the old route and release last; --check says so and changes nothing."""
    rc, stats, out, log = run_playbook("playbooks/upgrade.yml", check=True,
                                       extra_vars={**MIGRATE, "wide_ep_llmd_version": "v0.9.0"})
    assert rc == 0, log
    (plan,) = task_results(out, "The migration plan")
    lines = json.dumps(plan["localhost"]["msg"])
    assert "install llm-d-router-gateway v0.10.0 as release wide-ep-lws beside inferencepool release llm-d-infpool" \
        in lines, lines
    assert set(releases()) == {"llm-d-infpool"} and sum(h["changed"] for h in stats.values()) == 0


def test_a_migration_between_releases_of_one_router_release_is_refused(v050):
    """main-7edda66 (by its old name, v0.8.0) and v0.9.0 both run release wide-ep-lws: migrating "beside" would
    remove the new release at the end.
    Refused before anything changes, naming the in-place upgrade."""
    rc, stats, out, log = run_playbook("playbooks/upgrade.yml", extra_vars={
        **V080, "wide_ep_llmd_version": "v0.9.0", "upgrade_from_llmd_version": "v0.8.0"})
    assert rc != 0, log
    (refused,) = task_results(out, "Check the two releases can stand side by side")
    msg = refused["localhost"]["msg"]
    assert msg.startswith("the old stack's release (wide-ep-lws) and the new one (wide-ep-lws) have the same name")
    assert "llm-d v0.8.0 and v0.9.0 both name it so: the move is an in-place upgrade" in msg, msg
    assert msg.endswith("Nothing was changed.")
    assert sum(h["changed"] for h in stats.values()) == 0 and set(releases()) == {"llm-d-infpool"}


def test_a_failed_migration_returns_to_the_v050_stack(v050):
    rc, _, out, log = run_playbook("playbooks/upgrade.yml", extra_vars={
        **MIGRATE, "upgrade_gate_timeout": 20, "wide_ep_images": {"vllm_decode": NEVER_READY}})
    assert rc != 0
    (fail,) = task_results(out, "Fail after returning to the old release")
    assert "the stack is back on llm-d v0.5.0" in fail["localhost"]["msg"], log
    assert set(releases()) == {"llm-d-infpool"}                       # the new release went, the old one stayed
    assert routes(v050) == {"llm-d-route"}
    assert image(v050, "decode") == "ghcr.io/llm-d/llm-d-cuda:v0.5.0"
    revs = revisions(v050)
    assert [r["status"] for r in revs][-2:] == ["failed", "deployed"], revs
    assert "v0.5.0 -> main-7edda66" in revs[-2]["note"] and revs[-1]["note"].startswith("rollback to revision")


def test_the_migration_to_v080(v050):
    rc, stats, out, log = run_playbook("playbooks/upgrade.yml", extra_vars=MIGRATE)
    assert rc == 0, log
    assert releases() == {"wide-ep-lws": "llm-d-router-standin-0.9.0"}   # the old release is gone
    assert routes(v050) == {"wide-ep-lws"}                               # the chart's route replaced ours
    assert image(v050, "prefill") == "ghcr.io/llm-d/llm-d-cuda:v0.8.0"
    assert image(v050, "decode") == "ghcr.io/llm-d/llm-d-cuda-dev:sha-a1bcf21"
    pool = v050.json("get", "inferencepool", "-n", NS, "wide-ep-lws")
    assert [p["number"] for p in pool["spec"]["targetPorts"]] == list(range(8000, 8008))
    assert pool["spec"]["selector"]["matchLabels"] == {"llm-d.ai/guide": "wide-ep-lws"}
    assert revisions(v050)[-1]["status"] == "deployed" and "v0.5.0 -> main-7edda66" in revisions(v050)[-1]["note"]


def test_v080_site_is_idempotent_and_verifies(v050):
    rc, _, _, log = run_playbook("site.yml", extra_vars=V080)
    assert rc == 0, log
    rc, stats, _, log = run_playbook("site.yml", extra_vars=V080)
    assert rc == 0 and sum(h["changed"] for h in stats.values()) == 0, log
    rc, _, out, log = run_playbook("playbooks/verify.yml", extra_vars=V080)
    assert rc == 0, log
    (verified,) = task_results(out, "Verify the live stack")
    report = "\n".join(verified["localhost"]["report"])
    assert "OK    helm release wide-ep-lws: llm-d-router-standin-0.9.0 deployed" in report, report
    assert "OK    InferencePool wide-ep-lws: target ports [8000, 8001" in report


def test_the_in_place_upgrade_from_main_7edda66_to_v090(v050):
    """main-7edda66 and v0.9.0 both run the router release wide-ep-lws: the move is upgrade.yml in place - the
    router release upgraded with v0.9.0's values, both roles rolled to llm-d-cuda:v0.9.0 behind the gates, the
    sidecar to its pinned v0.10.0, recorded; site.yml on v0.9.0 then brings the Gateway API CRDs to the guide's
    v1.5.1 (from their Go module) and has nothing left to change after."""
    v090 = {**V080, "wide_ep_llmd_version": "v0.9.0", "upgrade_gate_timeout": 120,
            "gateway_api_crds_sources": [str(CACHE / "data/gateway-api-v1.5.1/standard"),   # guides/env.sh
                                         *V080["gateway_api_crds_sources"][1:]]}
    rc, stats, out, log = run_playbook("playbooks/upgrade.yml", extra_vars=v090)
    assert rc == 0, log
    assert set(releases()) == {"wide-ep-lws"}
    assert image(v050, "prefill") == image(v050, "decode") == "ghcr.io/llm-d/llm-d-cuda:v0.9.0"
    decode = v050.json("get", "lws", "-n", NS, "wide-ep-llm-d-decode")["spec"]["leaderWorkerTemplate"]
    pod = decode["workerTemplate"]["spec"]
    assert {"name": "USER", "value": "llm-d"} in pod["containers"][0]["env"]
    assert [c["image"] for c in pod["initContainers"]] == ["ghcr.io/llm-d/llm-d-router-disagg-sidecar:v0.10.0"]
    values = subprocess.run([str(BIN / "helm"), "get", "values", "wide-ep-lws", "-n", NS, "-o", "json",
                             "--kubeconfig", str(KUBECONFIG)], capture_output=True, text=True, check=True)
    assert json.loads(values.stdout)["router"]["proxy"]["proxyType"] == "envoy"
    assert revisions(v050)[-1]["status"] == "deployed", revisions(v050)[-1]
    rc, _, _, log = run_playbook("site.yml", extra_vars=v090)    # the add-ons: v0.9.0's Gateway API CRDs
    assert rc == 0, log
    crd = v050.json("get", "crd", "httproutes.gateway.networking.k8s.io")
    assert crd["metadata"]["annotations"]["gateway.networking.k8s.io/bundle-version"] == "v1.5.1"
    rc, stats, _, log = run_playbook("site.yml", extra_vars=v090)
    assert rc == 0 and sum(h["changed"] for h in stats.values()) == 0, log


def test_v080_teardown(v050):
    rc, _, _, log = run_playbook("playbooks/teardown.yml", extra_vars=V080)
    assert rc == 0, log
    assert releases() == {}
    assert v050.json("get", "lws", "-n", NS)["items"] == []

