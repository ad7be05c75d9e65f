# Copyright: llm-d wide-EP collection contributors
# Apache-2.0
"""Progress of a long call (model servers starting, upgrade gates, drains, NIC mesh pods, benchmark Jobs), shown
while it runs. A module cannot print before it returns, so each line is also appended to a file in
$LLMD_PROGRESS_DIR, which the collection's `llmd.wide_ep.progress` callback sets and shows live at default
verbosity; the lines are returned in the result as before. Without the callback nothing is written."""
from __future__ import annotations

import os
import time

ENV = "LLMD_PROGRESS_DIR"
HEARTBEAT = 30  # seconds without a new line after which `still()` says the wait goes on


class Progress(list):
    """A list of progress lines that also streams them to the callback's directory."""

    def __init__(self, lines=()):
        super().__init__(lines)
        folder = os.environ.get(ENV)
        self._path = os.path.join(folder, "%d.log" % os.getpid()) if folder and os.path.isdir(folder) else None
        self._last = time.monotonic()

    def append(self, line):
        super().append(line)
        self.live(line)

    def live(self, line):
        """Show a line without keeping it in the result."""
        self._last = time.monotonic()
        if self._path:
            try:
                with open(self._path, "a") as f:
                    f.write(str(line).replace("\n", " ") + "\n")
            except OSError:  # the run's progress folder went away: the result still has the lines
                self._path = None

    def still(self, line):
        """A heartbeat: shows `line` when nothing was shown for HEARTBEAT seconds."""
        if time.monotonic() - self._last >= HEARTBEAT:
            self.live(line)
