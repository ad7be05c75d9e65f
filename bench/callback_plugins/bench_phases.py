# Copyright: llm-d wide-EP collection contributors
# Apache-2.0
"""Bench-only callback: each task's wall time and API requests, by phase, written as JSON to $BENCH_PHASES_OUT.

Phases: render (the topology role), preflight (the rest of the preflight play), apply and wait (a task that
applies and waits reports the split in its `timings`), verify (the verify play), other (Ansible's own tasks)."""
from __future__ import annotations

import json
import os
import time

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = r"""
name: bench_phases
type: aggregate
short_description: time and API requests per phase, for bench/site_bench.py
description: Writes JSON to BENCH_PHASES_OUT at the end of the run.
"""


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "bench_phases"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.phases, self.play, self.started, self.task = {}, "", time.monotonic(), None

    def _add(self, phase, seconds, requests):
        entry = self.phases.setdefault(phase, {"seconds": 0.0, "requests": 0, "tasks": 0})
        entry["seconds"] += seconds
        entry["requests"] += requests
        entry["tasks"] += 1

    def v2_playbook_on_play_start(self, play):
        self.play = play.get_name()

    def v2_playbook_on_task_start(self, task, is_conditional):
        self.task, self.started = task, time.monotonic()

    def _done(self, result, *args, **kwargs):
        seconds = time.monotonic() - self.started
        res, task = result._result, self.task
        role = task._role.get_name() if task._role else ""
        requests = int(res.get("api_requests") or 0)
        if "timings" in res:
            t = res["timings"]
            self._add("apply", seconds - t["wait_seconds"], t["apply_requests"])
            if t["wait_seconds"] > 0.05:
                self._add("wait", t["wait_seconds"], t["wait_requests"])
            return
        if role.endswith("topology"):
            phase = "render"
        elif self.play.startswith("Verify") or role.endswith("verify"):
            phase = "verify"
        elif self.play.startswith("Preflight"):
            phase = "preflight"
        elif requests or task.action.startswith("llmd.wide_ep."):
            phase = "apply"
        else:
            phase = "other"
        self._add(phase, seconds, requests)

    v2_runner_on_ok = v2_runner_on_failed = v2_runner_on_skipped = _done

    def v2_playbook_on_stats(self, stats):
        with open(os.environ["BENCH_PHASES_OUT"], "w") as fh:
            json.dump(self.phases, fh, indent=1)
