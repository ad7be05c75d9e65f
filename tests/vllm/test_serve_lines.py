"""Every `vllm serve` line the collection renders - each release profile x provider x DP mode x role x LWS
worker index - run through the real vLLM of the version its image ships (profiles.VLLM_OF_IMAGE): the parser with
exact flag names, the serve validation, the DP load-balancing mode, the supervisor's children and each engine's
configuration (tests/support/vllm/check_serve.py, in the venvs tests/support/vllm/build.sh makes). The pod's bash
script itself runs, with `vllm` and `find` stand-ins on PATH, so the lines are the ones a pod would exec, with
its env and LWS's variables expanded. A wrong flag here crash-loops 32 GPUs after a 45-minute start."""
import collections
import json
import os
import pathlib
import shutil
import subprocess
import sys

import pytest

from ansible_collections.llmd.wide_ep.plugins.module_utils.render import plan, profiles

SUPPORT = pathlib.Path(__file__).parents[1] / "support" / "vllm"
VENVS = pathlib.Path(os.environ.get("LLMD_CACHE", "/var/cache/llmd-wide-ep")) / "vllm"
MODEL = "deepseek-ai/DeepSeek-R1-0528"
# What LWS gives every pod (the leader's address for the DP RPC) and what a secret or field ref would.
LEADER = "wide-ep-llm-d-decode-0.wide-ep-llm-d-decode.llm-d-wide-ep"
OFFLINE = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "VLLM_NO_USAGE_STATS": "1", "DO_NOT_TRACK": "1",
           "VLLM_CONFIGURE_LOGGING": "0"}
SHIM = """#!%s
import json, os, sys
path = os.path.join(os.environ["SHIM_OUT"], "%%d.json" %% os.getpid())
json.dump({"argv": sys.argv[1:], "env": sorted(os.environ)}, open(path, "w"))
"""


def venv(version):
    python = VENVS / version / "bin" / "python"
    if not (VENVS / version / ".stamp").is_file():
        pytest.skip("vLLM %s's parser venv is not built (%s): scripts/setup.sh builds it "
                    "(tests/support/vllm/build.sh)" % (version, VENVS / version))
    return python


def renders():
    for version, profile in profiles.PROFILES.items():
        for provider in profile.providers:
            for mode in profile.dp_modes:
                yield version, provider, mode, plan.render({
                    "llmd_version": version, "provider": provider, "dp_mode": mode, "namespace": "llm-d-wide-ep",
                    "model": MODEL, "model_label": "DeepSeek-R1-0528",
                    "gateway": "none" if "none" in profile.gateways else "istio"})


def run_pod_script(container, size, index, tmp):
    """The lines the pod's script execs as LWS worker `index` of a group of `size`."""
    shims, out = tmp / "bin", tmp / ("out-%d" % index)
    shims.mkdir(exist_ok=True)
    out.mkdir()
    for name, text in (("vllm", SHIM % sys.executable), ("find", "#!/bin/sh\n")):
        (shims / name).write_text(text)
        (shims / name).chmod(0o755)
    env = {e["name"]: e.get("value", "from-" + next(iter(e.get("valueFrom", {"ref": 0})))) for e in container["env"]}
    env.update(PATH=str(shims), SHIM_OUT=str(out), LWS_GROUP_SIZE=str(size), LWS_WORKER_INDEX=str(index),
               LWS_LEADER_ADDRESS=LEADER)
    assert container["command"][0] == "/bin/bash", container["command"]
    proc = subprocess.run([shutil.which("bash")] + container["command"][1:] + container["args"], env=env,
                          cwd=tmp, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(p.read_text()) for p in sorted(out.glob("*.json"))]
    assert lines, "the script started no vllm"
    return lines


@pytest.fixture(scope="module")
def cases(tmp_path_factory):
    """vLLM version -> [(case id, what the checker reads, the LWS it came from)]."""
    out = collections.defaultdict(list)
    for version, provider, mode, rendered in renders():
        for lws in rendered["objects"]["leaderworkersets"]:
            role = lws["metadata"]["labels"]["llm-d.ai/role"]
            template = lws["spec"]["leaderWorkerTemplate"]
            container = template["workerTemplate"]["spec"]["containers"][0]
            assert container["name"] == "vllm"
            vllm_version = profiles.VLLM_OF_IMAGE.get(container["image"])
            assert vllm_version, "no vLLM version recorded for %s (profiles.VLLM_OF_IMAGE)" % container["image"]
            for index in range(template["size"]):
                tmp = tmp_path_factory.mktemp("pod")
                for n, line in enumerate(run_pod_script(container, template["size"], index, tmp)):
                    assert line["argv"][:2] == ["serve", MODEL], line["argv"]
                    case_id = "%s/%s/%s/%s/worker-%d/%d" % (version, provider, mode, role, index, n)
                    out[vllm_version].append((case_id, {"id": case_id, "argv": line["argv"][1:],
                                                        "env": line["env"]}, (version, provider, mode, role)))
    return out


def check(version, cases, tmp_path):
    """Runs the cases through vLLM `version`: {case id: result}."""
    python = venv(version)
    (tmp_path / "cases.json").write_text(json.dumps(cases))
    proc = subprocess.run([str(python), str(SUPPORT / "check_serve.py"), str(tmp_path / "cases.json"),
                           str(tmp_path / "results.json"), str(SUPPORT / "deepseek-r1")],
                          env={**os.environ, **OFFLINE}, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-4000:]
    report = json.loads((tmp_path / "results.json").read_text())
    assert report["vllm"] == version
    return {r["id"]: r for r in report["results"]}


@pytest.mark.parametrize("version", sorted(set(profiles.VLLM_OF_IMAGE.values())))
def test_every_rendered_line_passes_its_vllm(version, cases, tmp_path):
    mine = cases.get(version, [])
    assert mine, "no rendered line runs vLLM %s" % version
    results = check(version, [c for _, c, _ in mine], tmp_path)
    refused = ["%s: %s" % (i, r["error"]) for i, r in results.items() if r["error"]]
    assert not refused, "\n".join(refused)
    # every DP rank of each role started by exactly one engine, across its pods and (supervised) children
    ranks = collections.defaultdict(list)
    for case_id, _, lws in mine:
        ranks[lws] += results[case_id]["engines"]
    for lws, started in ranks.items():
        assert sorted(started) == list(range(16)), (lws, started)


def first(cases, version, release, role="decode"):
    """One rendered case of `release`'s `role` under vLLM `version` (a fresh copy to spoil)."""
    for _, case, lws in cases[version]:
        if lws[0] == release and lws[3] == role:
            return json.loads(json.dumps(case))
    raise AssertionError("no %s %s line under vLLM %s" % (release, role, version))


def replace(argv, old, new):
    assert old in argv, (old, argv)
    return [new if a == old else a for a in argv]


def test_what_vllm_would_refuse_is_refused(cases, tmp_path):
    """The checker's own proof: lines vLLM accepts silently or rejects at start are findings here."""
    v090 = first(cases, "0.26.0", "v0.9.0")
    spoiled = {
        # argparse would take the prefix for --data-parallel-size-local
        "abbreviated": dict(v090, argv=replace(v090["argv"], "--data-parallel-size-local", "--data-parallel-size-l")),
        "unknown flag": dict(v090, argv=v090["argv"] + ["--no-such-flag"]),
        "a variable vLLM does not read": dict(v090, env=v090["env"] + ["VLLM_NO_SUCH_SETTING"]),
        "two LB modes": dict(v090, argv=v090["argv"] + ["--data-parallel-hybrid-lb"]),
        "supervisor port on a rank's": dict(v090, argv=v090["argv"] + ["--data-parallel-supervisor-port", "8203"]),
    }
    spoiled = {name: dict(case, id=name) for name, case in spoiled.items()}
    results = check("0.26.0", list(spoiled.values()), tmp_path)
    assert "--data-parallel-size-l" in results["abbreviated"]["error"]
    assert "--no-such-flag" in results["unknown flag"]["error"]
    assert "reads no VLLM_NO_SUCH_SETTING" in results["a variable vLLM does not read"]["error"]
    assert "cannot be combined with --data-parallel-external-lb or --data-parallel-hybrid-lb" in \
        results["two LB modes"]["error"]
    assert "overlaps with child rank ports" in results["supervisor port on a rank's"]["error"]
    assert all(not r["engines"] for r in results.values())


def test_a_release_line_under_another_releases_vllm_is_refused(cases, tmp_path):
    """The rollback hazard: main-7edda66's supervisor line on v0.5.0's image (vLLM 0.14.1) never starts."""
    line = dict(first(cases, "0.23.0", "main-7edda66"), id="supervised line on 0.14.1")
    result = check("0.14.1", [line], tmp_path)["supervised line on 0.14.1"]
    assert "unrecognized arguments" in result["error"] and "--data-parallel-multi-port-external-lb" in result["error"]
    assert "vLLM 0.14.1 reads no VLLM_MEMORY_PROFILER_ESTIMATE_CUDAGRAPHS" in result["error"]   # both findings


def test_a_per_gpu_line_with_a_second_lb_mode_is_refused(cases, tmp_path):
    """The serve command's one-mode rule (0.23 on): a rank given (external LB) and a start rank (hybrid)."""
    line = first(cases, "0.26.0", "v0.9.0")
    line["argv"] = [a for a in line["argv"] if a != "--data-parallel-multi-port-external-lb"]
    both = dict(line, id="both", argv=line["argv"] + ["--data-parallel-rank", "3"])
    result = check("0.26.0", [both], tmp_path)["both"]
    assert "more than one data-parallel load-balancing mode" in result["error"], result


def test_an_unknown_json_key_is_refused_where_vllm_would_drop_it(cases, tmp_path):
    """vLLM 0.14.1 ignores an --eplb-config key it does not know: a typo would silently run the defaults."""
    line = first(cases, "0.14.1", "v0.5.0")
    eplb = next(a for a in line["argv"] if a.startswith("{") and "window_size" in a)
    typo = dict(line, id="typo", argv=replace(line["argv"], eplb, eplb.replace("window_size", "windw_size")))
    result = check("0.14.1", [typo], tmp_path)["typo"]
    assert "--eplb-config: windw_size not a field of EPLBConfig" in result["error"], result
