"""Smoke request and benchmark against llm-d-inference-sim standing in for the model servers on the pod IPs of
the local deployment (tests/support/sim/standins.py). The completion, the hop probes through the API server's pod and
service proxies and inference-perf's load are all real HTTP to a real OpenAI-compatible server."""
import json
import os

import pytest

from tests.support.runs import run_playbook, task_results
from tests.support.sim.standins import MODEL, PERF, TOKENIZER, Standins, require_perf

NS = "llm-d-wide-ep"
SMOKE = {"verify_smoke": True, "verify_smoke_endpoint": "http://127.0.0.1:8000", "verify_smoke_timeout": 5}


@pytest.fixture(scope="module")
def stack(cluster):
    rc, _, _, log = run_playbook("site.yml")
    assert rc == 0, log
    pods = cluster.json("get", "pods", "-n", NS, "-l", "llm-d.ai/guide=wide-ep-lws")["items"]
    ips = {p["metadata"]["name"]: p["status"]["podIP"] for p in pods}
    assert len(ips) == 4 and all(ips.values()), ips
    with Standins(ips.values()) as sims:
        yield cluster, ips, sims
    cluster("delete", "namespace", NS, "--wait=true", "--timeout=120s")


def smoke_result(out):
    (hosts,) = task_results(out, "Verify the live stack")
    return hosts["localhost"]["smoke"]


def test_smoke_request_passes_every_hop(stack):
    rc, _, out, log = run_playbook("playbooks/verify.yml", extra_vars=SMOKE)
    assert rc == 0, log
    res = smoke_result(out)
    assert [h["hop"] for h in res["hops"]] == ["gateway", "epp", "prefill", "decode"]
    assert all(h["ok"] for h in res["hops"]), res["hops"]
    assert res["completion"]["text"] and 0 < res["completion"]["usage"]["completion_tokens"] <= 8
    assert "ports 8000-8007 answer /v1/models" in res["hops"][3]["detail"]


def test_smoke_reaches_the_gateway_service_through_the_api_server(stack):
    """No endpoint given and no Gateway address: the module finds the Service carrying the Gateway's label and
    goes through the API server's service proxy (here a Service over the decode leader stands in for the
    gateway's data plane)."""
    cluster, _, _ = stack
    svc = {"apiVersion": "v1", "kind": "Service",
           "metadata": {"name": "llm-d-inference-gateway-standin", "namespace": NS,
                        "labels": {"gateway.networking.k8s.io/gateway-name": "llm-d-inference-gateway"}},
           "spec": {"selector": {"leaderworkerset.sigs.k8s.io/name": "wide-ep-llm-d-decode",
                                 "leaderworkerset.sigs.k8s.io/worker-index": "0"},
                    "ports": [{"name": "http", "port": 80, "targetPort": 8000}]}}
    cluster.apply([svc])
    try:
        cluster.wait_for("the stand-in Service's endpoints", lambda: cluster.json(
            "get", "endpointslices", "-n", NS, "-l", "kubernetes.io/service-name=" + svc["metadata"]["name"]
        )["items"][0].get("endpoints"))
        rc, _, out, log = run_playbook("playbooks/verify.yml", extra_vars=dict(SMOKE, verify_smoke_endpoint=""))
        assert rc == 0, log
        assert smoke_result(out)["completion"]["via"] == \
            "Service llm-d-inference-gateway-standin:80 via the API server"
    finally:
        cluster("delete", "service", "-n", NS, svc["metadata"]["name"])


def test_smoke_blames_the_decode_pod_that_does_not_answer(stack):
    _, ips, sims = stack
    dead = "wide-ep-llm-d-decode-0-1"
    sims.cut(ips[dead])
    try:
        rc, _, out, log = run_playbook("playbooks/verify.yml", extra_vars=SMOKE)
    finally:
        sims.plug(ips[dead])
    assert rc != 0
    res = smoke_result(out)
    assert res["msg"].startswith("smoke request: the decode hop fails: pod %s port 8000:" % dead), res["msg"]
    # The API server's own words (which address it could not reach), or, when it still held a connection to the
    # pod from the passing probe before, the probe's timeout.
    assert ("dial tcp %s:8000" % ips[dead] in res["msg"]
            or "no answer in 5s through the API server proxy" in res["msg"]), res["msg"]
    assert {h["hop"]: h["ok"] for h in res["hops"]} == {"gateway": True, "epp": True, "prefill": True, "decode": False}


def test_smoke_blames_the_gateway_when_everything_behind_it_answers(stack):
    rc, _, out, log = run_playbook("playbooks/verify.yml", extra_vars=dict(SMOKE, verify_smoke_endpoint="http://127.0.0.1:9"))
    assert rc != 0
    res = smoke_result(out)
    assert res["msg"].startswith("smoke request: the gateway hop fails: endpoint http://127.0.0.1:9: cannot connect")
    assert "Connection refused" in res["msg"]
    assert [h["hop"] for h in res["hops"] if not h["ok"]] == ["gateway"]


def test_smoke_blames_the_epp_without_endpoints(stack):
    cluster, _, _ = stack
    cluster("scale", "deployment", "-n", NS, "llm-d-infpool-epp", "--replicas=0")
    try:
        cluster.wait_for("EPP pods gone", lambda: not cluster.json(
            "get", "pods", "-n", NS, "-l", "inferencepool=llm-d-infpool-epp")["items"])
        rc, _, out, log = run_playbook("playbooks/verify.yml", extra_vars=SMOKE)
    finally:
        cluster("scale", "deployment", "-n", NS, "llm-d-infpool-epp", "--replicas=1")
    assert rc != 0
    res = smoke_result(out)
    assert res["msg"].startswith("smoke request: the epp hop fails: Deployment llm-d-infpool-epp: 0 available; "
                                 "Service llm-d-infpool-epp: 0 ready endpoint(s)"), res["msg"]


def test_benchmark_check_mode_prints_the_guides_workload_and_creates_nothing(stack):
    cluster, _, _ = stack
    rc, stats, out, log = run_playbook("playbooks/benchmark.yml", check=True,
                                       extra_vars={"benchmark_base_url": "http://10.96.0.80:80"})
    assert rc == 0, log
    (hosts,) = task_results(out, "Run inference-perf against the gateway")
    cfg = hosts["localhost"]["config"]
    # wide_ep_template.yaml (a981258), per the reference: constant load, 80/100/150/200/250 QPS x 30 s,
    # completion API with streaming, vllm server with ignore_eos, random 1000/1000 tokens, 8000 prompts.
    assert cfg["load"] == {"type": "constant",
                           "stages": [{"rate": r, "duration": 30} for r in (80, 100, 150, 200, 250)]}
    assert cfg["api"] == {"type": "completion", "streaming": True}
    assert cfg["server"] == {"type": "vllm", "model_name": MODEL, "base_url": "http://10.96.0.80:80",
                             "ignore_eos": True}
    assert cfg["tokenizer"] == {"pretrained_model_name_or_path": MODEL}
    for key in ("input_distribution", "output_distribution"):
        assert cfg["data"][key] == {"min": 1000, "max": 1000, "mean": 1000, "std_dev": 0, "total_count": 8000}
    assert cfg["data"]["type"] == "random"
    assert cfg["report"]["request_lifecycle"] == {"summary": True, "per_stage": True, "per_request": False}
    job = hosts["localhost"]["objects"][1]
    assert job["kind"] == "Job" and job["spec"]["backoffLimit"] == 0
    assert job["spec"]["template"]["spec"]["containers"][0]["image"] == "quay.io/inference-perf/inference-perf:v0.7.0"
    left = cluster("get", "job,configmap", "-n", NS, "wide-ep-benchmark", "--ignore-not-found", "-o", "name")
    assert left.stdout == ""
    assert sum(h["changed"] for h in stats.values()) == 1  # the run task reports what it would do; nothing else


def test_benchmark_job_runs_in_the_cluster_and_says_why_it_has_no_reports(stack):
    """kwok completes the Job's pod but serves no container logs: the Job, its ConfigMap and the re-run's
    replacement of the previous Job are real; the failure names the log that could not be read."""
    cluster, _, _ = stack
    rc, _, out, log = run_playbook("playbooks/benchmark.yml", extra_vars={"benchmark_base_url": "http://10.96.0.80:80"})
    assert rc != 0
    (hosts,) = task_results(out, "Run inference-perf against the gateway")
    assert "the benchmark Job finished (Complete) but the log of pod wide-ep-benchmark-" in hosts["localhost"]["msg"]
    first = cluster.json("get", "job", "-n", NS, "wide-ep-benchmark")
    cm = cluster.json("get", "configmap", "-n", NS, "inference-perf-config")
    assert json.loads(cm["data"]["config.yml"])["load"]["stages"][0] == {"rate": 80, "duration": 30}
    rc, _, _, _ = run_playbook("playbooks/benchmark.yml", extra_vars={"benchmark_base_url": "http://10.96.0.80:80"})
    second = cluster.json("get", "job", "-n", NS, "wide-ep-benchmark")
    assert second["metadata"]["uid"] != first["metadata"]["uid"]  # our previous Job was replaced
    cluster("delete", "job,configmap", "-n", NS, "wide-ep-benchmark", "inference-perf-config", "--ignore-not-found")


def test_benchmark_never_touches_a_job_it_did_not_make(stack):
    cluster, _, _ = stack
    cluster.apply([{"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "wide-ep-benchmark", "namespace": NS},
                    "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [
                        {"name": "x", "image": "registry.invalid/someone-elses:1"}]}}}}])
    try:
        uid = cluster.json("get", "job", "-n", NS, "wide-ep-benchmark")["metadata"]["uid"]
        rc, _, out, log = run_playbook("playbooks/benchmark.yml", extra_vars={"benchmark_base_url": "http://x:80"})
        assert rc != 0
        (hosts,) = task_results(out, "Run inference-perf against the gateway")
        assert "was not made by this collection: not touching it" in hosts["localhost"]["msg"]
        assert cluster.json("get", "job", "-n", NS, "wide-ep-benchmark")["metadata"]["uid"] == uid
    finally:
        cluster("delete", "job", "-n", NS, "wide-ep-benchmark", "--ignore-not-found")


def test_benchmark_measures_the_simulator_and_reports_it(stack, tmp_path):
    require_perf()
    stages = [4, 8]
    rc, _, out, log = run_playbook("playbooks/benchmark.yml", extra_vars={
        "benchmark_transport": "local", "benchmark_base_url": "http://127.0.0.1:8000",
        "benchmark_inference_perf": str(PERF), "benchmark_tokenizer": str(TOKENIZER), "benchmark_stages": stages,
        "benchmark_stage_duration": 5, "benchmark_input_tokens": 100, "benchmark_output_tokens": 50,
        "benchmark_prompts": 200, "benchmark_workers": 2, "benchmark_report_dir": str(tmp_path),
        "benchmark_note": "Measured against llm-d-inference-sim, not vLLM."})
    assert rc == 0, log
    report = json.loads((tmp_path / "report.json").read_text())
    assert [s["qps"] for s in report["stages"]] == stages
    for stage in report["stages"]:
        raw = json.loads((tmp_path / "raw" / ("stage_%d_lifecycle_metrics.json" % stage["stage"])).read_text())
        thr = raw["successes"]["throughput"]
        assert stage["failures"] == 0 and stage["successes"] >= stage["qps"] * 5 * 0.8
        # The pipeline divides what inference-perf measured by the plan's GPUs (16 + 16 on the local inventory).
        assert stage["input_tokens_per_sec_per_prefill_gpu"] == pytest.approx(thr["input_tokens_per_sec"] / 16)
        assert stage["output_tokens_per_sec_per_decode_gpu"] == pytest.approx(thr["output_tokens_per_sec"] / 16)
        # 100-token prompts at the achieved rate: what the simulator was sent, measured.
        assert thr["input_tokens_per_sec"] == pytest.approx(100 * thr["requests_per_sec"], rel=0.05)
        assert 0 < thr["output_tokens_per_sec"] <= 51 * thr["requests_per_sec"]
    assert report["published"]["input_tokens_per_sec"] == 51218.79
    assert report["published"]["output_tokens_per_sec"] == 49783.58
    best = report["best"]
    assert report["ratio_to_published"]["output_tokens_per_sec_per_decode_gpu"] == pytest.approx(
        best["output_tokens_per_sec_per_decode_gpu"] / (49783.58 / 16))
    md = (tmp_path / "report.md").read_text()
    assert "Measured against llm-d-inference-sim, not vLLM." in md and "| output tok/s | " in md
    for png in ("throughput_vs_qps.png", "throughput_vs_latency.png"):
        data = (tmp_path / png).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
    assert os.path.exists(tmp_path / "raw" / "summary_lifecycle_metrics.json")
