"""Running inference-perf (module_utils/benchmark/run.py): as a Job over the in-memory API server (reports read
back from its log), as a local process, refused before anything starts when the settings are wrong."""
import base64
import json
import os
import stat

import pytest

from ansible_collections.llmd.wide_ep.plugins.module_utils.benchmark import inference_perf, run
from ansible_collections.llmd.wide_ep.plugins.module_utils.errors import InvalidInput, WideEPError
from ansible_collections.llmd.wide_ep.plugins.module_utils.k8s.client import Client
from ansible_collections.llmd.wide_ep.plugins.module_utils.render import plan, topology
from tests.support.fake_api import FakeApi

REFS = plan.render(dict(topology.DEFAULT_SETTINGS, provider="baremetal"))["refs"]
STAGE = {"load_summary": {"requested_rate": 80}, "successes": {"throughput": {}, "latency": {}}}


def params(tmp_path, **over):
    return dict({"refs": REFS, "model": "m", "transport": "job", "base_url": "http://gw", "stages": [80.0],
                 "stage_duration": 30, "input_tokens": 100, "output_tokens": 100, "prompts": 10, "workers": None,
                 "tokenizer": None, "image": "inference-perf:v0.7.0", "hf_token_secret": "s",
                 "inference_perf": "inference-perf", "results_dir": str(tmp_path / "results"), "timeout": 60}, **over)


def finishing_job(api, status="Complete", log=None):
    """A stand-in Job controller: the applied Job completes and leaves a pod with the collector's log."""
    def react(obj):
        if obj["kind"] != "Job":
            return
        api.objects[[p for p in api.objects if p.endswith("/jobs/" + inference_perf.JOB_NAME)][0]]["status"] = {
            "conditions": [{"type": status, "status": "True"}]}
        api.put({"apiVersion": "v1", "kind": "Pod", "metadata": {
            "name": "bench-1", "namespace": REFS["namespace"], "labels": {"job-name": inference_perf.JOB_NAME}}})
        line = "%s stage_0_lifecycle_metrics.json %s" % (inference_perf.MARKER, base64.b64encode(
            json.dumps(STAGE).encode()).decode())
        api.logs[(REFS["namespace"], "bench-1")] = log if log is not None else "running\n" + line + "\n"
    api.on_apply.append(react)


def test_a_job_run_writes_the_stage_reports_from_its_log(tmp_path, monkeypatch):
    api = FakeApi()
    finishing_job(api)
    monkeypatch.setattr(run.time, "sleep", lambda s: None)
    out = run.benchmark(Client(transport=api), params(tmp_path))
    assert [os.path.basename(f) for f in out["files"]] == ["stage_0_lifecycle_metrics.json"]
    assert json.loads(open(out["files"][0]).read()) == STAGE
    assert out["config"]["server"]["base_url"] == "http://gw"


def test_a_failed_job_fails_with_its_last_log_lines(tmp_path, monkeypatch):
    api = FakeApi()
    finishing_job(api, status="Failed", log="Traceback\nConnectionError: gw\n")
    monkeypatch.setattr(run.time, "sleep", lambda s: None)
    with pytest.raises(WideEPError, match="the benchmark Job failed; last log lines:\nTraceback\nConnectionError"):
        run.benchmark(Client(transport=api), params(tmp_path))


def test_someone_elses_job_is_not_touched(tmp_path):
    api = FakeApi()
    api.put({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": inference_perf.JOB_NAME,
                                                                  "namespace": REFS["namespace"]}})
    with pytest.raises(WideEPError, match="was not made by this collection: not touching it"):
        run.benchmark(Client(transport=api), params(tmp_path))
    assert api.writes() == []


def test_check_mode_shows_the_job_and_runs_nothing(tmp_path):
    api = FakeApi()
    out = run.benchmark(Client(transport=api), params(tmp_path), check_mode=True)
    assert [o["kind"] for o in out["objects"]] == ["ConfigMap", "Job"] and api.writes() == []


def test_bad_settings_are_refused_before_anything_starts(tmp_path):
    with pytest.raises(InvalidInput, match="benchmark_stages must be a non-empty list"):
        run.benchmark(None, params(tmp_path, stages=[]))


def test_a_local_run_uses_the_installed_inference_perf(tmp_path):
    fake = tmp_path / "inference-perf"
    fake.write_text("#!/bin/sh\necho '{\"ok\": 1}' > stage_0_lifecycle_metrics.json\necho done\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    p = params(tmp_path, transport="local", inference_perf=str(fake))
    assert run.needs_api(p) is False
    out = run.benchmark(None, p)
    assert [os.path.basename(f) for f in out["files"]] == ["stage_0_lifecycle_metrics.json"]
    assert out["progress"] == ["done"]
    with pytest.raises(InvalidInput, match="inference-perf not found at"):
        run.benchmark(None, params(tmp_path, transport="local", inference_perf=str(tmp_path / "missing")))
