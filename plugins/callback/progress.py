# Copyright: llm-d wide-EP collection contributors
# Apache-2.0
from __future__ import annotations

DOCUMENTATION = r"""
name: progress
type: aggregate
short_description: Shows the collection's long waits live, at default verbosity
description:
  - The collection's modules wait a long time - model servers starting (up to 45 minutes), upgrade gates,
    node drains, NIC mesh rounds, benchmark Jobs - and a module cannot print before it returns. They also write
    each progress line (which groups and pods are ready, which are pending and why - not scheduled, image pull,
    crash, readiness probe - and heartbeats while nothing changes) to a folder this callback creates for the run;
    the callback prints the new lines once a second, on standard error, prefixed with the task's elapsed time.
  - Works beside any stdout callback. Enable it in C(ansible.cfg) with C(callbacks_enabled = llmd.wide_ep.progress)
    (the collection's own C(ansible.cfg) does) or C(ANSIBLE_CALLBACKS_ENABLED=llmd.wide_ep.progress).
  - Only tasks that run on the controller (every Kubernetes task of the collection) stream their progress;
    lines never hold credentials.
  - Before each task it also freezes the objects of ansible-playbook's main process out of the garbage collector
    (Python's C(gc.freeze)), so the task's forked worker does not walk them; they live for the whole run anyway.
version_added: 0.3.0
author: llm-d wide-EP collection contributors (@llm-d)
requirements:
  - enable in the callbacks_enabled setting of ansible.cfg
"""

import gc
import os
import shutil
import tempfile
import threading
import time

from ansible.plugins.callback import CallbackBase

ENV = "LLMD_PROGRESS_DIR"  # read by module_utils/progress.py


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "llmd.wide_ep.progress"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, display=None):
        super().__init__(display=display)
        # Set before any worker forks: the modules inherit it and write their lines here.
        self._dir = tempfile.mkdtemp(prefix="llmd-progress-")
        os.environ[ENV] = self._dir
        self._offsets, self._task, self._started = {}, None, time.monotonic()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="llmd-progress", daemon=True)
        self._thread.start()

    def v2_playbook_on_task_start(self, task, is_conditional):
        self._flush()
        self._task, self._started = task.get_name(), time.monotonic()
        # Called in ansible-playbook's main process just before the task's worker forks: what the run holds so far
        # (the plan, the results) is frozen out of the garbage collector, so the worker's collections do not walk
        # and copy it (gc's advice before a fork; ~65 ms of a no-op site.yml's 24 tasks, bench/README.md).
        gc.freeze()

    # A task's last lines right after its result (the verify report before the recap), not at the next task.
    def v2_runner_on_ok(self, result):
        self._flush()

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._flush()

    def v2_playbook_on_handler_task_start(self, task):
        self.v2_playbook_on_task_start(task, False)

    def v2_playbook_on_stats(self, stats):
        self._stop.set()
        self._thread.join(timeout=2)
        self._flush()
        shutil.rmtree(self._dir, ignore_errors=True)

    def _watch(self):
        while not self._stop.wait(1.0):
            self._flush()

    def _flush(self):
        with self._lock:
            try:
                names = sorted(os.listdir(self._dir))
            except OSError:
                return
            for name in names:
                path = os.path.join(self._dir, name)
                try:
                    with open(path, "rb") as f:
                        f.seek(self._offsets.get(name, 0))
                        chunk = f.read()
                except OSError:
                    continue
                complete = chunk.rpartition(b"\n")[0]  # a line still being written waits for the next round
                if not complete:
                    continue
                self._offsets[name] = self._offsets.get(name, 0) + len(complete) + 1
                elapsed = int(time.monotonic() - self._started)
                for line in complete.decode("utf-8", "replace").splitlines():
                    self._display.display("  [%s %dm%02ds] %s" % (self._task or "progress", elapsed // 60,
                                                                  elapsed % 60, line), stderr=True)
