"""The revision record (module_utils/day2/revisions.py) in its ConfigMap: numbered, pruned to the last ten, an
interrupted run marked, gates noted without touching the status."""
from ansible_collections.llmd.wide_ep.plugins.module_utils.day2.revisions import KEEP_REVISIONS, Record
from ansible_collections.llmd.wide_ep.plugins.module_utils.k8s.client import Client
from tests.support.fake_api import FakeApi

LWS = [{"metadata": {"name": "wide-ep-llm-d-decode"}, "spec": {"replicas": 1}}]


def test_revisions_number_prune_and_survive_a_reread():
    client = Client(transport=FakeApi())
    record = Record(client, "ns")
    for i in range(KEEP_REVISIONS + 2):
        record.add("deployed", LWS, "run %d" % i)
    again = Record(client, "ns")
    assert [r["revision"] for r in again.revisions] == list(range(3, KEEP_REVISIONS + 3))
    assert again.current["note"] == "run %d" % (KEEP_REVISIONS + 1)


def test_a_run_left_in_progress_is_marked_interrupted_and_gates_keep_the_status():
    client = Client(transport=FakeApi())
    record = Record(client, "ns")
    first = record.add("in-progress", LWS, "upgrade.yml")
    record.add("deployed", LWS, "site.yml")
    assert first["status"] == "interrupted"
    record.note_gate("istio", ["EPP x: 0/1 replicas available"])
    newest = Record(client, "ns").revisions[-1]
    assert newest["status"] == "deployed" and newest["gates"][0]["problems"] == ["EPP x: 0/1 replicas available"]
    assert Record(Client(transport=FakeApi()), "ns").note_gate("lws", ["x"]) is None
