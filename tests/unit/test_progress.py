"""Progress lines of long calls: written as they come by module_utils/progress.py, shown by the callback."""
import os
import re
import time

from ansible_collections.llmd.wide_ep.plugins.callback.progress import CallbackModule
from ansible_collections.llmd.wide_ep.plugins.module_utils import progress
from ansible_collections.llmd.wide_ep.plugins.module_utils.k8s import readiness


class Screen:
    verbosity = 0            # default verbosity: the lines must show without -v

    def __init__(self):
        self.lines = []

    def display(self, msg, stderr=False, **_):
        self.lines.append((msg, stderr))


def test_lines_reach_the_callback_while_the_call_runs(monkeypatch):
    monkeypatch.delenv(progress.ENV, raising=False)   # the callback sets it, as at the start of a run
    screen = Screen()
    callback = CallbackModule(display=screen)
    try:
        class Task:
            def get_name(self):
                return "Prefill and decode LeaderWorkerSets"

        callback.v2_playbook_on_task_start(Task(), False)
        lines = progress.Progress()                      # what a module makes, in the worker's environment
        lines.append("LeaderWorkerSet ns/decode: 0/1 groups ready")
        lines.live("still waiting for LeaderWorkerSet ns/decode")
        deadline = time.time() + 5
        while len(screen.lines) < 2 and time.time() < deadline:
            time.sleep(0.1)                               # the callback's own thread picks them up
        assert [re.sub(r" \dm0\ds]", " ELAPSED]", m) for m, _ in screen.lines] == [
            "  [Prefill and decode LeaderWorkerSets ELAPSED] LeaderWorkerSet ns/decode: 0/1 groups ready",
            "  [Prefill and decode LeaderWorkerSets ELAPSED] still waiting for LeaderWorkerSet ns/decode"]
        assert all(stderr for _, stderr in screen.lines)  # never mixed into a stdout callback's output
        assert list(lines) == ["LeaderWorkerSet ns/decode: 0/1 groups ready"]  # the result keeps only append()
    finally:
        callback.v2_playbook_on_stats(None)
    assert not os.path.exists(callback._dir)     # the run's progress folder is removed at the end


def test_without_the_callback_nothing_is_written(monkeypatch, tmp_path):
    monkeypatch.delenv(progress.ENV, raising=False)
    lines = progress.Progress()
    lines.append("x")
    assert lines == ["x"] and lines._path is None


def test_heartbeat_only_after_quiet(monkeypatch, tmp_path):
    monkeypatch.setenv(progress.ENV, str(tmp_path))
    monkeypatch.setattr(progress, "HEARTBEAT", 0.2)
    lines = progress.Progress()
    lines.still("quiet")                 # nothing shown yet: the wait just started
    time.sleep(0.25)
    lines.still("still waiting")
    (log,) = tmp_path.glob("*.log")
    assert log.read_text() == "still waiting\n"


def pod(name, **status):
    return {"metadata": {"name": name}, "status": status}


def test_pod_states_say_why_a_pod_is_not_serving():
    no_gpu = "0/4 nodes are available: 4 Insufficient nvidia.com/gpu."
    unschedulable = pod("d-0", phase="Pending", conditions=[{"type": "PodScheduled", "status": "False",
                                                               "reason": "Unschedulable", "message": no_gpu}])
    pulling = pod("d-1", phase="Pending", conditions=[{"type": "PodScheduled", "status": "True"}],
                  containerStatuses=[{"name": "vllm", "state": {"waiting": {"reason": "ImagePullBackOff"}}}])
    probing = pod("p-0", phase="Running", conditions=[{"type": "Ready", "status": "False",
                                                         "reason": "ContainersNotReady"}])
    ready = pod("p-1", phase="Running", conditions=[{"type": "Ready", "status": "True"}])
    assert readiness.pod_state(unschedulable) == \
        "Pending, not scheduled: 0/4 nodes are available: 4 Insufficient nvidia.com/gpu."
    assert readiness.pod_state(pulling) == "vllm: ImagePullBackOff"
    assert readiness.pod_state(probing) == "Running, not Ready (ContainersNotReady): readiness probe not passing yet"
    assert readiness.pods_summary([unschedulable, pulling, probing, ready]).startswith("1/4 pods Ready; 1 ")
