"""The benchmark's pure logic: reading reports out of a Job log and the per-GPU arithmetic against the
published result. No cluster."""
import base64
import json

import pytest

from ansible_collections.llmd.wide_ep.plugins.module_utils.benchmark import inference_perf
from ansible_collections.llmd.wide_ep.plugins.module_utils.errors import InvalidInput


def stage(rate, inp, out, rps, count=10):
    return {"load_summary": {"requested_rate": rate, "achieved_rate": rate},
            "successes": {"count": count, "throughput": {"input_tokens_per_sec": inp, "output_tokens_per_sec": out,
                                                         "total_tokens_per_sec": inp + out, "requests_per_sec": rps},
                          "latency": {"request_latency": {"median": 2.0, "p90": 3.0}}},
            "failures": {"count": 1}}


def test_published_figures_are_the_readmes():
    # README at 59bebce: 51218.79 in / 49783.58 out / 101002.38 total tok/s, 50.02 req/s, 16 + 16 GPUs.
    report = inference_perf.summarize({"stage_0_lifecycle_metrics.json": stage(250, 51218.79, 49783.58, 50.02)},
                                 {"prefill": 16, "decode": 16})
    pub = report["published"]
    assert round(pub["input_tokens_per_sec_per_prefill_gpu"]) == 3201   # "3200 input tokens/s/GPU"
    assert round(pub["output_tokens_per_sec_per_decode_gpu"]) == 3111   # "3100 output tokens/s/GPU"
    assert report["ratio_to_published"]["output_tokens_per_sec_per_decode_gpu"] == pytest.approx(1.0)


def test_per_gpu_figures_and_best_stage():
    results = {"stage_1_lifecycle_metrics.json": stage(100, 32000.0, 16000.0, 20.0),
               "stage_0_lifecycle_metrics.json": stage(80, 16000.0, 8000.0, 16.0),
               "summary_lifecycle_metrics.json": stage(0, 1.0, 1.0, 1.0)}
    report = inference_perf.summarize(results, {"prefill": 8, "decode": 16})
    assert [s["qps"] for s in report["stages"]] == [80, 100]          # stage order, summary left out
    best = report["best"]
    assert best["qps"] == 100
    assert best["input_tokens_per_sec_per_prefill_gpu"] == 4000.0     # 32000 / 8
    assert best["output_tokens_per_sec_per_decode_gpu"] == 1000.0     # 16000 / 16
    assert best["total_tokens_per_sec_per_gpu"] == 2000.0             # 48000 / 24
    assert best["failures"] == 1


def test_no_stage_reports_is_an_error():
    with pytest.raises(InvalidInput, match="no stage_<n>_lifecycle_metrics.json"):
        inference_perf.summarize({"summary_lifecycle_metrics.json": {}}, {"prefill": 1, "decode": 1})


def test_results_come_back_from_the_job_log_and_nothing_else_does():
    doc = {"a": 1}
    encoded = base64.b64encode(json.dumps(doc).encode()).decode()
    line = "%s stage_0_lifecycle_metrics.json %s" % (inference_perf.MARKER, encoded)
    log = "\n".join(["INFO starting", line, "%s ../etc/passwd.json e30=" % inference_perf.MARKER, "done"])
    assert inference_perf.results_from_log(log) == {"stage_0_lifecycle_metrics.json": doc}


@pytest.mark.parametrize("key,value,message", [
    ("stages", [], "benchmark_stages must be a non-empty list"),
    ("stages", [80, -1], "benchmark_stages must be a non-empty list"),
    ("prompts", 0, "benchmark_prompts must be a positive integer"),
    ("stage_duration", True, "benchmark_stage_duration must be a positive integer"),
])
def test_bad_settings_name_their_variable(key, value, message):
    p = {"stages": [80], "stage_duration": 30, "input_tokens": 1000, "output_tokens": 1000, "prompts": 8000}
    p[key] = value
    assert any(message in m for m in inference_perf.validate(p))


def test_plots_compare_per_gpu_and_carry_the_note(tmp_path):
    """A 4-GPU run is drawn per GPU beside the published per-GPU figures, with the run's note on the picture."""
    report = inference_perf.summarize({"stage_0_lifecycle_metrics.json": stage(4, 391.1, 188.7, 3.9)},
                                 {"prefill": 2, "decode": 2})
    report["note"] = "simulator"
    assert inference_perf.plot_caption(report) == (
        "This run: 2 prefill + 2 decode GPUs - simulator. Published: 16 + 16 GPUs at 250 QPS "
        "(%s)." % inference_perf.PUBLISHED["source"])
    files = [picture["path"] for picture in inference_perf.plots(report, str(tmp_path))]
    assert [f.rsplit("/", 1)[1] for f in files] == ["throughput_vs_qps.png", "throughput_vs_latency.png"]
    assert all(open(f, "rb").read(8) == b"\x89PNG\r\n\x1a\n" for f in files)


def test_a_one_stage_simulator_run_fills_its_axes(tmp_path):
    """One stage at 4 QPS of simulator-sized tok/s: the point sits inside an x-axis of its own scale (not 3.80 to
    4.20), and the y-axis is the run's, with the published 3201/3111 tok/s per GPU named, not drawn."""
    report = inference_perf.summarize({"stage_0_lifecycle_metrics.json": stage(4, 391.1, 188.7, 3.9)},
                                 {"prefill": 2, "decode": 2})
    qps_plot, latency_plot = inference_perf.plots(report, str(tmp_path))
    assert qps_plot["xlim"] == [2.0, 6.0] and qps_plot["yscale"] == "linear"
    assert not qps_plot["published_drawn"] and qps_plot["ylim"] == [0.0, 224.8825]   # the run's 195.6 tok/s per GPU
    assert latency_plot["xlim"] == [1.0, 3.0] and not latency_plot["published_drawn"]


def test_a_run_near_the_published_figures_is_drawn_beside_them(tmp_path):
    stages = {"stage_%d_lifecycle_metrics.json" % i: stage(q, 1000 * q, 980 * q, q / 5)
              for i, q in enumerate((20, 40, 50))}
    report = inference_perf.summarize(stages, {"prefill": 16, "decode": 16})
    qps_plot, _ = inference_perf.plots(report, str(tmp_path))
    published = report["published"]["input_tokens_per_sec_per_prefill_gpu"]
    assert qps_plot["published_drawn"] and qps_plot["ylim"][1] > published
    assert qps_plot["xlim"][0] < 20 and qps_plot["xlim"][1] > 50
