"""Requests in flight during a day-2 operation on kind (#29): the ext_proc client in load mode (a steady rate,
every second request streaming) asks the real endpoint picker where each request goes and sends it there, from
inside the kind cluster's network namespace; `measure` runs an operation under it and sums the records up -
requests sent, failed by cause, latency before and during, the operation's duration - as one table row."""
import json
import math
import signal
import subprocess
import time
from collections import Counter

from tests.support.runs import CACHE

IN_KIND = ["nsenter", "--net=/var/run/netns/llmd-kind"]
EXTPROC = CACHE / "kind/bin/extproc"
COMPLETION = json.dumps({"model": "deepseek-ai/DeepSeek-R1-0528", "prompt": "Where does this request land?",
                         "max_tokens": 8})
CAUSES = ("connect_refused", "reset", "5xx", "timeout", "picker", "status", "other")
HEADER = ("| operation | duration | requests | failed | by cause | p50 / p99 before (ms) | p50 / p99 during (ms) |\n"
          "|---|---|---|---|---|---|---|")


class Load:
    """The load generator, running until stop()."""

    def __init__(self, epp, rate=10, limit=1200, enter=IN_KIND):
        self.proc = subprocess.Popen([*enter, str(EXTPROC), "-epp", epp, "-rate", str(rate), "-duration",
                                      "%ds" % limit, "-timeout", "20s", "-body", COMPLETION],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def stop(self):
        """Stop starting requests, wait for those in flight; the records."""
        self.proc.send_signal(signal.SIGTERM)
        out, err = self.proc.communicate(timeout=120)
        assert self.proc.returncode == 0, err[-2000:]
        return [json.loads(line) for line in out.splitlines() if line.strip()]


def percentile(values, q):
    """Nearest rank; None without values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(1, math.ceil(q / 100 * len(ordered))) - 1]


def summarize(records, start_ms, end_ms):
    """What the records say about the time before the operation and during it (its start to its end)."""
    before = [r for r in records if r["start_ms"] < start_ms]
    during = [r for r in records if start_ms <= r["start_ms"] <= end_ms]
    failed = [r for r in records if r.get("cause")]

    def latency(rs):
        ok = [r["latency_ms"] for r in rs if not r.get("cause")]
        return percentile(ok, 50), percentile(ok, 99)
    return {"requests": len(records), "failed": len(failed), "causes": Counter(r["cause"] for r in failed),
            # what the failures said, for the assertion message: the picker's status and body, or the error
            "errors": Counter("%s %s %s" % (r.get("immediate_status") or r.get("status") or "", r.get("error", ""),
                                            r.get("body", "")[:120]) for r in failed).most_common(3),
            "failed_at": Counter(r.get("destination") or "-" for r in failed).most_common(3),
            "failed_before": sum(1 for r in before if r.get("cause")), "before": latency(before),
            "during": latency(during), "seconds": (end_ms - start_ms) / 1000.0,
            "failed_after": sum(1 for r in records if r["start_ms"] > end_ms and r.get("cause"))}


def measure(epp, operation, settle=10, after=10, rate=10, enter=IN_KIND):
    """Run operation() under load: `settle` seconds of load first, `after` seconds once it returned. Returns
    (what operation returned, summarize(...)). `enter` is where the client runs: the kind network by default
    (pod IPs), a node's network namespace to reach a Service's cluster IP through its kube-proxy rules."""
    load = Load(epp, rate=rate, enter=enter)
    try:
        time.sleep(settle)
        start = time.time() * 1000
        result = operation()
        end = time.time() * 1000
        time.sleep(after)
    finally:
        records = load.stop()
    return result, summarize(records, start, end)


def row(name, s):
    def ms(pair):
        return "%s / %s" % tuple("-" if v is None else "%.0f" % v for v in pair)
    causes = ", ".join("%s %d" % (c, s["causes"][c]) for c in CAUSES if s["causes"].get(c)) or "-"
    return "| %s | %.0f s | %d | %d | %s | %s | %s |" % (name, s["seconds"], s["requests"], s["failed"], causes,
                                                        ms(s["before"]), ms(s["during"]))
