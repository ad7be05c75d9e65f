"""The verify role's one call (module_utils/day2/verify.py): the stack's report, then the smoke request's, one
failure naming both; stack.status and smoke.request stand in here (each has its own tests over the fake API)."""
import pytest

from ansible_collections.llmd.wide_ep.plugins.module_utils.day2 import smoke, stack, verify
from ansible_collections.llmd.wide_ep.plugins.module_utils.errors import WideEPError

STACK_OK = {"changed": False, "report": ["OK    helm release r: deployed", "OK    LeaderWorkerSet p: 1/1"],
            "problems": [], "repaired": [], "workloads": [], "progress": []}
SMOKE_OK = {"changed": False, "report": ["OK    gateway: completion", "OK    decode: 8 ports"], "hops": [],
            "completion": {"text": "hi"}}


def params(smoke_options=None, deployed=False):
    return {"refs": {"namespace": "ns"}, "expected": {}, "smoke": smoke_options, "deployed_by_this_play": deployed}


@pytest.fixture
def calls(monkeypatch, tmp_path):
    """Record the calls; stack.status and smoke.request answer what the test sets in `answers`."""
    monkeypatch.setenv("LLMD_PROGRESS_DIR", str(tmp_path))
    seen, answers = [], {"stack": STACK_OK, "smoke": SMOKE_OK}

    def answer(name, args):
        seen.append((name, args))
        if isinstance(answers[name], Exception):
            raise answers[name]
        return dict(answers[name])
    monkeypatch.setattr(stack, "status", lambda client, helm, p, check_mode: answer("stack", p))
    monkeypatch.setattr(smoke, "request", lambda client, p: answer("smoke", p))
    return seen, answers, tmp_path


def shown(folder):
    return "".join(f.read_text() for f in folder.iterdir()).splitlines()


def test_both_reports_in_order_and_shown_live(calls):
    seen, _, folder = calls
    out = verify.verify(None, None, params({"send": True, "endpoint": None, "timeout": 5}), False)
    assert out["report"] == STACK_OK["report"] + SMOKE_OK["report"]
    assert out["smoke"]["completion"] == {"text": "hi"}
    assert out["msg"] == "verified: every check passed, and a completion came back through the gateway"
    assert [name for name, _ in seen] == ["stack", "smoke"]
    assert seen[1][1]["refs"] == {"namespace": "ns"} and seen[1][1]["timeout"] == 5
    assert shown(folder) == out["report"]


def test_a_skipped_smoke_request_is_a_line_and_a_gate_has_none(calls):
    seen, _, _ = calls
    skipped = verify.verify(None, None, params({"send": False}), False)
    assert skipped["report"] == STACK_OK["report"] + ["smoke request skipped"] and "smoke" not in skipped
    gate = verify.verify(None, None, params(None), False)
    assert gate["report"] == STACK_OK["report"]
    assert [name for name, _ in seen] == ["stack", "stack"]


def test_every_failure_is_named_after_the_whole_report(calls):
    _, answers, folder = calls
    answers["stack"] = WideEPError("1 check(s) failed: EPP e: 0/1", report=["OK    helm release r", "FAIL  EPP e: 0/1"],
                                   problems=["EPP e: 0/1"], repaired=[])
    answers["smoke"] = WideEPError("smoke request: the epp hop fails: 0 ready endpoint(s)",
                                   report=["FAIL  epp: 0 ready endpoint(s)"], hops=[{"hop": "epp", "ok": False}])
    with pytest.raises(WideEPError) as err:
        verify.verify(None, None, params({"send": True}), False)
    assert str(err.value).splitlines() == [
        "OK    helm release r", "FAIL  EPP e: 0/1", "FAIL  epp: 0 ready endpoint(s)", "failed:", "EPP e: 0/1",
        "smoke request failed: smoke request: the epp hop fails: 0 ready endpoint(s)"]
    extra = err.value.extra
    assert extra["problems"] == ["EPP e: 0/1", "smoke request: the epp hop fails: 0 ready endpoint(s)"]
    assert extra["smoke"]["failed"] is True and extra["smoke"]["hops"] == [{"hop": "epp", "ok": False}]
    assert shown(folder) == str(err.value).splitlines()


def test_a_check_run_of_the_deploying_play_verifies_nothing(calls):
    seen, _, _ = calls
    out = verify.verify(None, None, params({"send": True}, deployed=True), True)
    assert out["report"] == [verify.NOTHING_DEPLOYED] and out["changed"] is False
    assert seen == []
    assert verify.verify(None, None, params({"send": True}, deployed=True), False)["report"][0].startswith("OK")
