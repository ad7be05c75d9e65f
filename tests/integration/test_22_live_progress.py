"""A long wait shows its progress while it runs, at default verbosity: the model servers of a deployment whose
pods never become Ready (kwok's never-ready stage, or no free GPUs) are reported pod by pod, with the reason, by
the llmd.wide_ep.progress callback (enabled in ansible.cfg) long before the task gives up."""
import re
import subprocess
import time

from tests.support.runs import ROOT, playbook_command

NS = "t-progress"
NEVER_READY = "registry.invalid/never-ready/llm-d-cuda:v9.0.0"


def test_model_server_wait_streams_pods_and_reasons_while_it_runs(cluster, tmp_path):
    cmd, env = playbook_command("playbooks/model_servers.yml", extra_vars={
        "wide_ep_namespace": NS, "wide_ep_images": {"vllm": NEVER_READY}, "modelserver_wait": True,
        "modelserver_wait_timeout": 40, "inferencepool_wait": False})
    started = time.monotonic()
    out = open(tmp_path / "stdout.json", "w")              # the json callback's result, read by nobody here
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.PIPE, text=True)
    seen = []
    try:
        for line in proc.stderr:                            # lines as the callback prints them
            seen.append((time.monotonic() - started, proc.poll() is None, line.rstrip()))
        proc.wait(timeout=120)
    finally:
        proc.kill()
        # waited: its GPUs are free for the tests that follow
        cluster("delete", "namespace", NS, "--wait=true", "--timeout=120s", check=False)
    assert proc.returncode != 0                             # the wait timed out: the pods never became Ready
    ended = time.monotonic() - started
    task = re.compile(r"  \[llmd\.wide_ep\.modelserver : Prefill and decode LeaderWorkerSets \dm\d\ds\] ")
    live = [(t, running, line) for t, running, line in seen if task.match(line)]
    assert live, "\n".join(line for _, _, line in seen[-40:])
    pods = [(t, running, line) for t, running, line in live
            if re.search(r"LeaderWorkerSet t-progress/wide-ep-llm-d-(prefill|decode): .*pods Ready; \d+ "
                         r"(Pending, not scheduled: .*|Running, not Ready \(ContainersNotReady\): readiness probe)",
                         line)]
    assert pods, "\n".join(line for _, _, line in live)
    first, running, _ = pods[0]
    assert running and first < ended - 20, (first, ended)   # shown while the task still had 20+ s to go
