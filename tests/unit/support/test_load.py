"""The day-2 load summary (tests/support/kind/load.py): windows, causes and percentiles from records as the ext_proc
client writes them."""
from tests.support.kind import load


def rec(start, latency=10.0, cause=None):
    return {"start_ms": start, "latency_ms": latency, **({"cause": cause} if cause else {})}


def test_nearest_rank_percentiles():
    assert load.percentile([], 50) is None
    assert load.percentile([5], 99) == 5
    values = list(range(1, 101))
    assert (load.percentile(values, 50), load.percentile(values, 99)) == (50, 99)


def test_the_windows_and_the_causes():
    records = [rec(0, 10), rec(100, 20), rec(1000, 30), rec(1500, 500, "reset"), rec(1600, 40, "picker"),
               rec(2500, 10), rec(2600, 1, "connect_refused")]
    s = load.summarize(records, 1000, 2000)
    assert (s["requests"], s["failed"], s["failed_before"], s["failed_after"]) == (7, 3, 0, 1)
    assert s["causes"] == {"reset": 1, "picker": 1, "connect_refused": 1}
    assert s["before"] == (10, 20) and s["during"] == (30, 30) and s["seconds"] == 1.0
    assert load.row("SIGKILL", s) == ("| SIGKILL | 1 s | 7 | 3 | connect_refused 1, reset 1, picker 1 | 10 / 20 | "
                                      "30 / 30 |")
