"""Readiness and why not (module_utils/k8s/readiness.py), and the wait over the in-memory API server."""
import pytest

from ansible_collections.llmd.wide_ep.plugins.module_utils.k8s import readiness
from ansible_collections.llmd.wide_ep.plugins.module_utils.k8s.client import Client
from ansible_collections.llmd.wide_ep.plugins.module_utils.k8s.errors import K8sError
from ansible_collections.llmd.wide_ep.plugins.module_utils.progress import Progress
from tests.support.fake_api import FakeApi


def pod(name, **status):
    return {"metadata": {"name": name}, "status": status}


def test_pod_state_says_why_a_pod_does_not_serve():
    assert readiness.pod_state(pod("a", conditions=[{"type": "PodScheduled", "status": "False",
                                                     "message": "0/4 nodes: Insufficient nvidia.com/gpu"}])) \
        == "Pending, not scheduled: 0/4 nodes: Insufficient nvidia.com/gpu"
    assert readiness.pod_state(pod("b", containerStatuses=[{"name": "vllm", "state": {
        "waiting": {"reason": "ImagePullBackOff"}}}])) == "vllm: ImagePullBackOff"
    assert readiness.pod_state(pod("c", phase="Running")) == \
        "Running, not Ready: readiness probe not passing yet"
    assert readiness.pod_state(pod("d", conditions=[{"type": "Ready", "status": "True"}])) == "Ready"
    summary = readiness.pods_summary([pod("d", conditions=[{"type": "Ready", "status": "True"}]),
                                      pod("c", phase="Running")])
    assert summary == "1/2 pods Ready; 1 Running, not Ready: readiness probe not passing yet (c)"


def test_a_leaderworkerset_is_ready_when_every_group_is_ready_and_updated():
    lws = {"kind": "LeaderWorkerSet", "spec": {"replicas": 2}, "metadata": {},
           "status": {"readyReplicas": 2, "updatedReplicas": 1,
                      "conditions": [{"type": "Available", "status": "True"}]}}
    assert readiness.readiness(lws) == (False, "2/2 groups ready, 1 updated, Available=True")
    lws["status"]["updatedReplicas"] = 2
    assert readiness.readiness(lws)[0] is True
    assert readiness.readiness({"kind": "LeaderWorkerSet", "spec": {"replicas": 0}, "metadata": {},
                                "status": {"replicas": 0}})[0] is True


def test_the_wait_times_out_naming_what_holds_it(monkeypatch):
    api = FakeApi()
    api.put({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"},
             "status": {"conditions": [{"type": "Ready", "status": "False"}]}})
    monkeypatch.setattr(readiness.time, "sleep", lambda s: None)
    ref = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"}}
    with pytest.raises(K8sError, match=r"timed out after 0s waiting for Node n1 \(Ready=False\)"):
        readiness.wait_ready(Client(transport=api), [ref], 0, 0, Progress())


def test_a_changed_template_waits_for_pods_of_it(monkeypatch):
    """The status from before the change reads Ready (LWS before 0.9.0 keeps no observedGeneration): the wait
    for a LeaderWorkerSet whose template changed at `since` holds until every pod is newer and Ready."""
    api = FakeApi()
    ready = [{"type": "Ready", "status": "True"}]
    api.put({"apiVersion": "leaderworkerset.x-k8s.io/v1", "kind": "LeaderWorkerSet",
             "metadata": {"name": "d", "namespace": "ns"},
             "spec": {"replicas": 1, "leaderWorkerTemplate": {"size": 2}},
             "status": {"readyReplicas": 1, "updatedReplicas": 1, "conditions": [{"type": "Available",
                                                                                  "status": "True"}]}})
    for name, created in (("d-0", "2026-12-07T01:00:00Z"), ("d-0-1", "2026-12-07T01:00:00Z")):
        api.put({"apiVersion": "v1", "kind": "Pod", "metadata": {
            "name": name, "namespace": "ns", "creationTimestamp": created,
            "labels": {"leaderworkerset.sigs.k8s.io/name": "d"}}, "status": {"conditions": ready}})
    monkeypatch.setattr(readiness.time, "sleep", lambda s: None)
    ref = {"apiVersion": "leaderworkerset.x-k8s.io/v1", "kind": "LeaderWorkerSet",
           "metadata": {"name": "d", "namespace": "ns"}}
    client = Client(transport=api)
    since = {"LeaderWorkerSet ns/d": 1796605200}     # 2026-12-07T01:00:00Z: these pods count as new
    assert readiness.wait_ready(client, [ref], 0, 0, Progress(), since=since)
    later = {"LeaderWorkerSet ns/d": 1796605260}     # a minute on: they are the old template's
    with pytest.raises(K8sError, match=r"0/2 pods of the new template Ready"):
        readiness.wait_ready(client, [ref], 0, 0, Progress(), since=later)
