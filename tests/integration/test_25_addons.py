"""Add-on roles on the local cluster, and site.yml's bad-input errors that come from the cluster's state."""
import base64
import json
import os

import pytest

from tests.support.runs import CACHE, run_playbook, task_results

LWS_CHART = str(CACHE / "data/lws/lws-0.7.0.tgz")


def role(name, check=False, **extra_vars):
    return run_playbook("tests/playbooks/run_role.yml", extra_vars={"test_role": name, **extra_vars}, check=check,
                        diff=check)


def test_lws_leaves_the_out_of_cluster_controller_alone(cluster):
    rc, stats, out, log = role("lws")
    assert rc == 0, log
    assert stats["localhost"]["changed"] == 0
    (found,) = task_results(out, "Look for an existing LeaderWorkerSet controller")
    assert found["localhost"]["lws"]["managed_by"] == "external"
    assert found["localhost"]["lws"]["webhook_url"].startswith("https://127.0.0.1:9443/")
    assert "leaving it alone" in log
    assert cluster("get", "namespace", "lws-system", check=False).returncode != 0


def test_lws_forced_install_in_check_mode_renders_against_the_api_and_changes_nothing(cluster):
    rc, stats, out, log = role("lws", check=True, lws_force_version=True, lws_chart_ref=LWS_CHART)
    assert rc == 0, log
    (install,) = task_results(out, "Install or upgrade the LeaderWorkerSet controller")
    res = install["localhost"]
    assert res["changed"] is True and res["before"] is None
    assert "lws-0.7.0" in res["diff"]["after"]
    assert cluster("get", "namespace", "lws-system", check=False).returncode != 0, "check mode created nothing"


def test_gateway_api_and_inferencepool_crds_established(cluster):
    rc, stats, _, log = role("gateway_api_crds")
    assert rc == 0, log
    for crd in ("gateways.gateway.networking.k8s.io", "httproutes.gateway.networking.k8s.io",
                "inferencepools.inference.networking.k8s.io", "inferenceobjectives.inference.networking.x-k8s.io"):
        obj = cluster.json("get", "crd", crd)
        assert {c["type"]: c["status"] for c in obj["status"]["conditions"]}["Established"] == "True"
    rc, stats, _, log = role("gateway_api_crds")
    assert rc == 0 and stats["localhost"]["changed"] == 0, log


def crd_apply_requests(**extra):
    rc, stats, out, log = role("gateway_api_crds", **extra)
    assert rc == 0, log
    (applied,) = task_results(out, "Apply the Gateway API and InferencePool CRDs")
    res = applied["localhost"]
    return stats["localhost"]["changed"], res["timings"], len(res["results"])


def test_an_unchanged_crd_needs_no_dry_run_until_someone_else_touches_it(cluster, tmp_path):
    """The digest annotation stands in for the dry run only while the collection's apply alone holds the CRD: an
    edit by anyone else brings the dry run back, and an apply that dropped the digest is applied again."""
    role("gateway_api_crds")
    # Istio's: applied on every run (a Gateway API CRD may be kept at a newer release another test installed)
    crd = "destinationrules.networking.istio.io"
    assert cluster.json("get", "crd", crd)["metadata"]["annotations"]["llmd.ai/applied-digest"]
    changed, timings, n = crd_apply_requests()
    # one read of each CRD (the bundle check's reads are reused), and no dry run of the digested ones: counted
    # apart: a request is sent again on a busy host (a 429 from priority and fairness), so the total can drift
    assert changed == 0 and timings["apply_requests"] <= 2 * n, (timings, n)
    cluster("annotate", "crd", crd, "example.com/owner=team-b")       # another manager's Update
    try:
        changed, with_edit, _ = crd_apply_requests()
        # that CRD's dry run, and no change
        assert changed == 0 and with_edit["dry_runs"] == timings["dry_runs"] + 1, (timings, with_edit)
    finally:
        cluster("annotate", "crd", crd, "example.com/owner-")
    # applied by the same field manager without the digest (as a raw `kubectl apply` would): applied again
    live = cluster.json("get", "crd", crd)
    notes = {k: v for k, v in live["metadata"]["annotations"].items() if k != "llmd.ai/applied-digest"}
    bare = {"apiVersion": live["apiVersion"], "kind": live["kind"], "metadata": {"name": crd, "annotations": notes},
            "spec": live["spec"]}
    (tmp_path / "crd.json").write_text(json.dumps(bare))
    cluster("apply", "--server-side", "--field-manager=llmd.wide_ep", "--force-conflicts", "-f",
            str(tmp_path / "crd.json"))
    assert "llmd.ai/applied-digest" not in cluster.json("get", "crd", crd)["metadata"].get("annotations", {})
    changed, _, _ = crd_apply_requests()
    assert changed == 1
    assert cluster.json("get", "crd", crd)["metadata"]["annotations"]["llmd.ai/applied-digest"]


def test_gateway_api_crds_skipped_on_gke(cluster):
    rc, stats, out, log = role("gateway_api_crds", wide_ep_provider="gke", wide_ep_dp_mode="hybrid",
                               wide_ep_gateway="gke-l7-rilb")
    assert rc == 0, log
    (apply,) = task_results(out, "Apply the Gateway API and InferencePool CRDs")
    assert apply["localhost"].get("skipped") is True


def test_gke_gateway_class_is_checked_not_installed(cluster, namespace):
    gke = {"wide_ep_provider": "gke", "wide_ep_dp_mode": "hybrid", "wide_ep_gateway": "gke-l7-rilb"}
    rc, _, _, log = role("gateway_provider", **gke)
    assert rc != 0
    assert "GatewayClass gke-l7-rilb does not exist" in log and "proxy-only subnet" in log
    cluster.apply([{"apiVersion": "gateway.networking.k8s.io/v1", "kind": "GatewayClass",
                    "metadata": {"name": "gke-l7-rilb"}, "spec": {"controllerName": "networking.gke.io/gateway"}}])
    try:
        rc, stats, _, log = role("gateway_provider", **gke)
        assert rc == 0 and stats["localhost"]["changed"] == 0, log
    finally:
        cluster("delete", "gatewayclass", "gke-l7-rilb")


@pytest.mark.parametrize("extra,message", [
    ({"preflight_min_kubernetes": "1.99"}, "this deployment needs 1.99 or newer"),
    ({"monitoring_required": True}, "does not serve monitoring.coreos.com/v1, needed for the deployment"),
    ({"namespace_hf_token_required": True}, "No Hugging Face token: set wide_ep_hf_token"),
], ids=["old-cluster", "monitoring-crds", "missing-token"])
def test_cluster_state_errors_fail_in_preflight(cluster, extra, message, monkeypatch):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    rc, stats, out, log = run_playbook("site.yml", extra_vars={**extra, "wide_ep_namespace": "preflight-probe"})
    assert rc != 0 and message in log, log[-2000:]
    started = [t["task"]["name"] for p in out["plays"] for t in p["tasks"]]
    assert any(t.startswith("llmd.wide_ep.preflight_cluster : ") for t in started), started
    later = ("lws", "gateway_api_crds", "gateway_provider", "modelserver", "inferencepool", "gateway_route", "verify")
    assert not [t for t in started if t.split(" : ")[0].rsplit(".", 1)[-1] in later], "no later role started"
    assert sum(h["changed"] for h in stats.values()) == 0
    assert cluster("get", "namespace", "preflight-probe", check=False).returncode != 0


def test_hf_token_secret_created_and_never_shown(cluster, monkeypatch):
    token = "hf_TESTONLY_" + os.urandom(8).hex()
    monkeypatch.setenv("HF_TOKEN", token)
    ns = "token-probe"
    try:
        rc, stats, out, log = run_playbook("tests/playbooks/run_role.yml", extra_vars={
            "test_role": "namespace", "wide_ep_namespace": ns}, diff=True, extra=("-vvv",))
        assert rc == 0, log
        secret = cluster.json("get", "secret", "llm-d-hf-token", "-n", ns)
        assert base64.b64decode(secret["data"]["HF_TOKEN"]).decode() == token
        assert token not in log and base64.b64encode(token.encode()).decode() not in log
        rc, stats, _, log = run_playbook("tests/playbooks/run_role.yml", extra_vars={
            "test_role": "namespace", "wide_ep_namespace": ns})
        assert rc == 0 and stats["localhost"]["changed"] == 0, log
    finally:
        cluster("delete", "namespace", ns, "--wait=false")


def test_hf_token_rotation_is_applied_and_hidden_from_diff(cluster, monkeypatch):
    ns = "token-rotation-probe"
    try:
        for token in ("hf_TESTONLY_first", "hf_TESTONLY_second"):
            monkeypatch.setenv("HF_TOKEN", token)
            rc, stats, out, log = run_playbook("tests/playbooks/run_role.yml", extra_vars={
                "test_role": "namespace", "wide_ep_namespace": ns}, diff=True)
            assert rc == 0 and stats["localhost"]["changed"] == 1, log
            assert token not in log and base64.b64encode(token.encode()).decode() not in log
        secret = cluster.json("get", "secret", "llm-d-hf-token", "-n", ns)
        assert base64.b64decode(secret["data"]["HF_TOKEN"]).decode() == "hf_TESTONLY_second"
    finally:
        cluster("delete", "namespace", ns, "--wait=false")
