# Copyright: llm-d wide-EP collection contributors
# Apache-2.0
"""The guide's benchmark: the inference-perf configuration of its wide-EP template, the Job that runs it, and
the report that sets what was measured beside the published result."""
from __future__ import annotations

import base64
import json
import re
import textwrap

from ansible_collections.llmd.wide_ep.plugins.module_utils.errors import InvalidInput

# README "Benchmarking" at llm-d/llm-d@59bebce: 32 B200 GPUs (16 prefill, 16 decode), 1K/1K at 250 QPS.
PUBLISHED = {
    "source": "llm-d wide-ep-lws README (llm-d/llm-d@59bebce), GKE gke-a4, 4x a4-highgpu-8g B200, images v0.4.0",
    "qps": 250,
    "input_tokens_per_sec": 51218.79,
    "output_tokens_per_sec": 49783.58,
    "total_tokens_per_sec": 101002.38,
    "requests_per_sec": 50.02,
    "gpus": {"prefill": 16, "decode": 16},
}
JOB_NAME = "wide-ep-benchmark"
CONFIG_MAP = "inference-perf-config"
RESULTS_DIR = "/workspace"
MARKER = "LLMD-RESULT"
LABELS = {"app.kubernetes.io/managed-by": "llmd.wide_ep", "llm-d.ai/benchmark": "wide-ep"}

# Printed by the Job after inference-perf: each report file on one log line, so results need no volume.
COLLECT = """import base64, glob, os
for path in sorted(glob.glob(os.path.join(%r, "*.json"))):
    with open(path, "rb") as f:
        print(%r, os.path.basename(path), base64.b64encode(f.read()).decode(), flush=True)
""" % (RESULTS_DIR, MARKER)


def validate(p):
    """Problems with the benchmark settings, each naming its variable."""
    problems = []
    stages = p["stages"]
    if not stages or not all(isinstance(s, (int, float)) and not isinstance(s, bool) and s > 0 for s in stages):
        problems.append("benchmark_stages must be a non-empty list of positive request rates (QPS), got %r" % (stages,))
    for key in ("stage_duration", "input_tokens", "output_tokens", "prompts"):
        if not isinstance(p[key], int) or isinstance(p[key], bool) or p[key] <= 0:
            problems.append("benchmark_%s must be a positive integer, got %r" % (key, p[key]))
    return problems


def perf_config(p, base_url, tokenizer, results_dir=RESULTS_DIR):
    """inference-perf's config.yml for the template's sanity_random workload (inference-perf >= 0.7 names the
    spread `std_dev`; the template's `std` predates it)."""

    def fixed(n):
        return {"min": n, "max": n, "mean": n, "std_dev": 0, "total_count": p["prompts"]}

    return {
        "load": {"type": "constant", "stages": [{"rate": r, "duration": p["stage_duration"]} for r in p["stages"]],
                 **({"num_workers": p["workers"]} if p.get("workers") else {})},
        "api": {"type": "completion", "streaming": True},
        "server": {"type": "vllm", "model_name": p["model"], "base_url": base_url, "ignore_eos": True},
        "tokenizer": {"pretrained_model_name_or_path": tokenizer},
        "data": {"type": "random", "input_distribution": fixed(p["input_tokens"]),
                 "output_distribution": fixed(p["output_tokens"])},
        "report": {"request_lifecycle": {"summary": True, "per_stage": True, "per_request": False}},
        "storage": {"local_storage": {"path": results_dir}},
    }


def job_objects(p, namespace, config, image, timeout, hf_secret):
    """ConfigMap with config.yml and the collector, and the Job (no retries: a rerun is a new measurement)."""
    meta = {"namespace": namespace, "labels": dict(LABELS)}
    env = [{"name": "RAYON_NUM_THREADS", "value": "4"}]
    if hf_secret:  # the tokenizer download needs it for gated models; optional for DeepSeek-R1
        env.append({"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {"name": hf_secret, "key": "HF_TOKEN",
                                                                       "optional": True}}})
    script = "inference-perf --config_file /etc/inference-perf/config.yml; rc=$?; " \
             "python3 /etc/inference-perf/collect.py; exit $rc"
    return [
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": dict(meta, name=CONFIG_MAP),
         "data": {"config.yml": json.dumps(config, indent=2), "collect.py": COLLECT}},
        {"apiVersion": "batch/v1", "kind": "Job", "metadata": dict(meta, name=JOB_NAME),
         "spec": {"backoffLimit": 0, "activeDeadlineSeconds": timeout,
                  "template": {"metadata": {"labels": dict(LABELS)}, "spec": {
                      "restartPolicy": "Never",
                      "containers": [{"name": "inference-perf", "image": image, "command": ["/bin/sh", "-c", script],
                                      "env": env, "workingDir": RESULTS_DIR,
                                      "volumeMounts": [{"name": "config", "mountPath": "/etc/inference-perf"},
                                                       {"name": "results", "mountPath": RESULTS_DIR}]}],
                      "volumes": [{"name": "config", "configMap": {"name": CONFIG_MAP}},
                                  {"name": "results", "emptyDir": {}}]}}}},
    ]


def results_from_log(text):
    """{file name: parsed JSON} from the collector's lines in a Job log."""
    out = {}
    for line in text.splitlines():
        parts = line.strip().split(" ")
        if len(parts) == 3 and parts[0] == MARKER and re.match(r"^[\w.-]+\.json$", parts[1]):
            out[parts[1]] = json.loads(base64.b64decode(parts[2]))
    return out


def _stage_index(name):
    m = re.match(r"^stage_(\d+)_lifecycle_metrics\.json$", name)
    return int(m.group(1)) if m else None


def summarize(results, gpus):
    """The report: one row per stage (requested/achieved QPS, tok/s in total, per GPU of each role and per GPU
    overall, latency), the best stage, and the published figures with the ratio to them."""
    stages = []
    for name in sorted(results, key=lambda n: (_stage_index(n) is None, _stage_index(n) or 0)):
        idx = _stage_index(name)
        if idx is None:
            continue
        doc = results[name]
        succ, load = doc.get("successes", {}), doc.get("load_summary", {})
        thr, lat = succ.get("throughput", {}), succ.get("latency", {})
        inp, out = thr.get("input_tokens_per_sec", 0.0), thr.get("output_tokens_per_sec", 0.0)
        stages.append({
            "stage": idx, "qps": load.get("requested_rate"), "achieved_qps": load.get("achieved_rate"),
            "successes": succ.get("count", 0), "failures": doc.get("failures", {}).get("count", 0),
            "input_tokens_per_sec": inp, "output_tokens_per_sec": out,
            "total_tokens_per_sec": thr.get("total_tokens_per_sec", inp + out),
            "requests_per_sec": thr.get("requests_per_sec", 0.0),
            "input_tokens_per_sec_per_prefill_gpu": inp / gpus["prefill"],
            "output_tokens_per_sec_per_decode_gpu": out / gpus["decode"],
            "total_tokens_per_sec_per_gpu": thr.get("total_tokens_per_sec", inp + out) / sum(gpus.values()),
            "ttft_p50_s": lat.get("time_to_first_token", {}).get("median"),
            "tpot_p50_s": lat.get("time_per_output_token", {}).get("median"),
            "latency_p50_s": lat.get("request_latency", {}).get("median"),
            "latency_p90_s": lat.get("request_latency", {}).get("p90"),
        })
    if not stages:
        raise InvalidInput("no stage_<n>_lifecycle_metrics.json among the results (%s)" % ", ".join(sorted(results)))
    best = max(stages, key=lambda s: s["total_tokens_per_sec"])
    pub = dict(PUBLISHED)
    pub["input_tokens_per_sec_per_prefill_gpu"] = pub["input_tokens_per_sec"] / pub["gpus"]["prefill"]
    pub["output_tokens_per_sec_per_decode_gpu"] = pub["output_tokens_per_sec"] / pub["gpus"]["decode"]
    pub["total_tokens_per_sec_per_gpu"] = pub["total_tokens_per_sec"] / sum(pub["gpus"].values())
    keys = ("input_tokens_per_sec_per_prefill_gpu", "output_tokens_per_sec_per_decode_gpu",
            "total_tokens_per_sec_per_gpu", "requests_per_sec")
    ratio = {k: best[k] / pub[k] for k in keys if pub[k]}
    return {"gpus": gpus, "stages": stages, "best": best, "published": pub, "ratio_to_published": ratio}


def markdown(report, title):
    b, pub = report["best"], report["published"]
    lines = ["# %s" % title, "",
             "GPUs: %d prefill + %d decode. Best stage: %g QPS requested." % (
                 report["gpus"]["prefill"], report["gpus"]["decode"], b["qps"]), "",
             "| | measured (best stage) | published | ratio |", "|---|---:|---:|---:|"]
    for key, label in (("input_tokens_per_sec", "input tok/s"), ("output_tokens_per_sec", "output tok/s"),
                       ("total_tokens_per_sec", "total tok/s"), ("requests_per_sec", "requests/s"),
                       ("input_tokens_per_sec_per_prefill_gpu", "input tok/s per prefill GPU"),
                       ("output_tokens_per_sec_per_decode_gpu", "output tok/s per decode GPU"),
                       ("total_tokens_per_sec_per_gpu", "total tok/s per GPU")):
        ratio = b[key] / pub[key] if pub.get(key) else None
        lines.append("| %s | %.1f | %.1f | %s |" % (label, b[key], pub[key], "%.3f" % ratio if ratio else "-"))
    lines += ["", "Published: %s, at %s QPS." % (pub["source"], pub["qps"]), "",
              "| stage | QPS | achieved | ok | failed | input tok/s | output tok/s | out tok/s/decode GPU "
              "| TTFT p50 s | TPOT p50 s | latency p50 s |",
              "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for s in report["stages"]:
        lines.append("| %d | %g | %.2f | %d | %d | %.1f | %.1f | %.1f | %s | %s | %s |" % (
            s["stage"], s["qps"], s["achieved_qps"] or 0, s["successes"], s["failures"], s["input_tokens_per_sec"],
            s["output_tokens_per_sec"], s["output_tokens_per_sec_per_decode_gpu"],
            *("%.4f" % s[k] if s[k] is not None else "-" for k in ("ttft_p50_s", "tpot_p50_s", "latency_p50_s"))))
    return "\n".join(lines) + "\n"


def plot_caption(report):
    """What the pictures compare, and the run's note, printed under each of them."""
    pub, gpus = report["published"], report["gpus"]
    return "This run: %d prefill + %d decode GPUs%s. Published: %d + %d GPUs at %s QPS (%s)." % (
        gpus["prefill"], gpus["decode"], " - %s" % report["note"] if report.get("note") else "",
        pub["gpus"]["prefill"], pub["gpus"]["decode"], pub["qps"], pub["source"])


OFF_SCALE = 5   # a published figure more than this many times the run's largest value is named, not drawn (a simulator)


def _fit_axis(values, from_zero=False, log_span=float("inf")):
    """Limits and scale that show these values. A throughput axis starts at zero (from_zero) unless the values
    span more than log_span times (then log); a QPS or latency axis is padded around its values, so a single
    value (one stage) sits mid-axis, not on a span of its own rounding."""
    low, high = min(values), max(values)
    if low > 0 and high / low > log_span:
        return (low / 2, high * 2), "log"
    if from_zero and low >= 0:
        return (0.0, high * 1.15 or 1.0), "linear"
    pad = (high - low) * 0.1 or abs(high) * 0.5 or 1.0
    return (max(0.0, low - pad) if low >= 0 else low - pad, high + pad), "linear"


def plots(report, directory):
    """throughput_vs_qps.png and throughput_vs_latency.png, as the guide shows them but per GPU, so a run on any
    number of GPUs compares with the published 32-GPU run; the run's note (e.g. "simulator") is on each picture.
    Each axis fits what was measured: one stage is a point mid-axis with its value written beside it, and a
    published figure far above the run (a simulator's tok/s) is named in the legend instead of flattening the
    run into the floor. Returns [{path, xlim, ylim, yscale, published_drawn}], one per picture."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    stages = report["stages"]
    qps = [s["qps"] for s in stages]
    pub = report["published"]
    caption = plot_caption(report)
    pictures = []

    def draw(name, xs, series, xlabel, ylabel, title, points=None):
        """series: [{values, marker, colour, label, published, published_label}]."""
        fig, ax = plt.subplots(figsize=(7.5, 5))
        measured = [v for line in series for v in line["values"]]
        published = [line["published"] for line in series]
        drawn = max(published) <= OFF_SCALE * max(measured + [1e-9])
        for line in series:
            ax.plot(xs, line["values"], line["marker"] + "-", color=line["colour"], label=line["label"])
            if drawn:
                ax.axhline(line["published"], color=line["colour"], linestyle="--",
                           label="published: %s" % line["published_label"])
            else:
                ax.plot([], [], " ", label="published: %s (%.0fx this run: off scale)" % (
                    line["published_label"], line["published"] / max(line["values"] + [1e-9])))
        if len(xs) <= 6:   # few points: each one's value, so a single stage reads as a number
            for line in series:
                for x, y, text in zip(xs, line["values"], points or [""] * len(xs), strict=True):
                    ax.annotate(("%s: " % text if text else "") + "%.3g" % y, (x, y), fontsize=8, xytext=(5, 5),
                                textcoords="offset points")
        xlim = _fit_axis(xs)[0]
        ylim, yscale = _fit_axis(measured + (published if drawn else []), from_zero=True, log_span=50)
        ax.set_xlim(*xlim)
        ax.set_yscale(yscale)
        ax.set_ylim(*ylim)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
        fig.text(0.01, 0.01, textwrap.fill(caption, 105), fontsize=7.5, va="bottom")
        fig.tight_layout(rect=(0, 0.09, 1, 1))
        path = "%s/%s" % (directory, name)
        fig.savefig(path, dpi=110)
        plt.close(fig)
        pictures.append({"path": path, "xlim": [round(v, 6) for v in xlim], "ylim": [round(v, 6) for v in ylim],
                         "yscale": yscale, "published_drawn": drawn})

    inp = [s["input_tokens_per_sec_per_prefill_gpu"] for s in stages]
    out = [s["output_tokens_per_sec_per_decode_gpu"] for s in stages]
    pub_in, pub_out = pub["input_tokens_per_sec_per_prefill_gpu"], pub["output_tokens_per_sec_per_decode_gpu"]
    inp_line = {"values": inp, "marker": "o", "colour": "tab:blue", "label": "input tok/s per prefill GPU",
                "published": pub_in, "published_label": "%.0f input tok/s per prefill GPU" % pub_in}
    out_line = {"values": out, "marker": "s", "colour": "tab:orange", "label": "output tok/s per decode GPU",
                "published": pub_out, "published_label": "%.0f output tok/s per decode GPU" % pub_out}
    draw("throughput_vs_qps.png", qps, [inp_line, out_line], "requested QPS", "tokens/s per GPU",
         "Throughput per GPU vs QPS")
    lat = [s["latency_p50_s"] or 0 for s in stages]
    draw("throughput_vs_latency.png", lat, [dict(out_line, marker="o")], "request latency p50 (s)",
         "output tokens/s per decode GPU", "Throughput per GPU vs latency",
         points=["%s QPS" % s["qps"] for s in stages])
    return pictures
