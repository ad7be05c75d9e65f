"""The read-only checks' OK/FAIL lines (module_utils/checklist.py)."""
from ansible_collections.llmd.wide_ep.plugins.module_utils.checklist import Checklist


def test_report_keeps_order_and_names_the_hop():
    rep = Checklist()
    rep.add(True, "completion via gateway", "gateway")
    rep.add(0, "Deployment x missing", "epp")
    rep.add(True, "release deployed")
    assert rep.report == ["OK    gateway  completion via gateway", "FAIL  epp      Deployment x missing",
                          "OK    release deployed"]
    assert rep.problems == ["Deployment x missing"] and rep.failed[0]["ok"] is False


def test_an_empty_checklist_has_no_problems_and_no_lines():
    assert Checklist().report == [] and Checklist().problems == []
