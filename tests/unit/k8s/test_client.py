"""module_utils/k8s.Client over the in-memory API server: discovery, paths, verbs and their errors."""
import pytest

from ansible_collections.llmd.wide_ep.plugins.module_utils.k8s.client import Client, normalize
from ansible_collections.llmd.wide_ep.plugins.module_utils.k8s.errors import K8sError
from ansible_collections.llmd.wide_ep.plugins.module_utils.k8s.readiness import readiness
from tests.support.fake_api import FakeApi, status

LWS = {"apiVersion": "leaderworkerset.x-k8s.io/v1", "kind": "LeaderWorkerSet",
       "metadata": {"name": "decode", "namespace": "ns"}, "spec": {"replicas": 1}}


def client(api=None):
    return Client(transport=api or FakeApi())


def test_discovery_once_per_group_version_and_paths():
    api = FakeApi()
    c = client(api)
    assert c.path(LWS) == "/apis/leaderworkerset.x-k8s.io/v1/namespaces/ns/leaderworkersets/decode"
    assert c.path({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ns"}}) == "/api/v1/namespaces/ns"
    c.path(LWS)
    c.path(dict(LWS, metadata={"name": "prefill", "namespace": "ns"}))
    discovery = [p for m, p, q in api.log if p in ("/api/v1", "/apis/leaderworkerset.x-k8s.io/v1")]
    assert discovery == ["/apis/leaderworkerset.x-k8s.io/v1"]  # built-in kinds cost no discovery


def test_a_missing_crd_and_a_missing_kind_are_named():
    c = client(FakeApi(served={"v1": {}, "inference.networking.k8s.io/v1": {}}))
    with pytest.raises(K8sError, match="does not serve leaderworkerset.x-k8s.io/v1 .*is its CRD installed") as err:
        c.path(LWS)
    assert err.value.status == 404
    with pytest.raises(K8sError, match="serves inference.networking.k8s.io/v1 but not kind InferencePool"):
        c.path({"apiVersion": "inference.networking.k8s.io/v1", "kind": "InferencePool",
                "metadata": {"name": "x", "namespace": "ns"}})


def test_namespaced_kind_without_namespace_is_refused():
    with pytest.raises(K8sError, match="LeaderWorkerSet/decode needs metadata.namespace"):
        client().path(dict(LWS, metadata={"name": "decode"}))


def test_get_is_none_when_missing_and_apply_creates():
    api = FakeApi()
    c = client(api)
    assert c.get(LWS) is None
    stored = c.apply(LWS)
    assert stored["spec"] == {"replicas": 1} and c.get(LWS)["metadata"]["generation"] == 1
    assert api.log[-2][2] == {"fieldManager": "llmd.wide_ep"}


def test_dry_run_apply_stores_nothing():
    api = FakeApi()
    c = client(api)
    c.apply(LWS, dry_run=True)
    assert c.get(LWS) is None and api.log[-2][2]["dryRun"] == "All"


def test_conflict_and_webhook_errors_say_what_to_do():
    api = FakeApi()
    c = client(api)
    path = c.path(LWS)
    api.fail[("PATCH", path)] = status(409, "Conflict", 'Apply failed with 1 conflict: conflict with "kubectl"')
    with pytest.raises(K8sError, match="conflict with \"kubectl\".*set force_conflicts to take them over"):
        c.apply(LWS)
    api.fail[("PATCH", path)] = status(500, "InternalError", 'Internal error occurred: failed calling webhook '
                                       '"mleaderworkerset.kb.io": connection refused')
    with pytest.raises(K8sError, match=r"\(the LeaderWorkerSet controller serves this webhook: is it running\?\)"):
        c.apply(LWS)


def test_delete_is_foreground_and_idempotent():
    api = FakeApi()
    c = client(api)
    c.apply(LWS)
    c.delete(LWS)
    assert api.log[-1][2] == {"propagationPolicy": "Foreground"}
    assert c.get(LWS) is None
    assert c.delete(LWS) is None  # already gone: no error


def test_request_errors_become_one_shape():
    api = FakeApi()
    api.fail[("GET", "/api/v1/nodes")] = status(403, "Forbidden", 'nodes is forbidden: User "ci" cannot list')
    with pytest.raises(K8sError, match=r"list Node: nodes is forbidden.*\(HTTP 403 Forbidden\)") as err:
        client(api).list("v1", "Node")
    assert (err.value.status, err.value.reason) == (403, "Forbidden")


def test_normalize_hides_secret_values_and_bookkeeping():
    secret = {"apiVersion": "v1", "kind": "Secret", "data": {"HF_TOKEN": "c2VjcmV0"},
              "metadata": {"name": "t", "resourceVersion": "9", "managedFields": [{}], "uid": "u"}}
    out = normalize(secret, hide_secrets=True)
    assert out == {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "t"},
                   "data": {"HF_TOKEN": "VALUE_HIDDEN"}}


@pytest.mark.parametrize("obj,ready", [
    ({"kind": "LeaderWorkerSet", "spec": {"replicas": 2}, "status": {
        "readyReplicas": 2, "updatedReplicas": 2, "conditions": [{"type": "Available", "status": "True"}]}}, True),
    ({"kind": "LeaderWorkerSet", "spec": {"replicas": 2}, "status": {
        "readyReplicas": 2, "updatedReplicas": 1, "conditions": [{"type": "Available", "status": "True"}]}}, False),
    ({"kind": "LeaderWorkerSet", "spec": {"replicas": 0}, "status": {"replicas": 0}}, True),
    # LWS 0.9.0 says which generation its status is of: a status of the one before a change is not Ready yet
    ({"kind": "LeaderWorkerSet", "metadata": {"generation": 5}, "spec": {"replicas": 1}, "status": {
        "observedGeneration": 4, "readyReplicas": 1, "updatedReplicas": 1,
        "conditions": [{"type": "Available", "status": "True"}]}}, False),
    ({"kind": "LeaderWorkerSet", "metadata": {"generation": 5}, "spec": {"replicas": 1}, "status": {
        "observedGeneration": 5, "readyReplicas": 1, "updatedReplicas": 1,
        "conditions": [{"type": "Available", "status": "True"}]}}, True),
    ({"kind": "Deployment", "metadata": {"generation": 3}, "spec": {"replicas": 1},
      "status": {"observedGeneration": 2, "availableReplicas": 1, "updatedReplicas": 1}}, False),
    ({"kind": "Deployment", "metadata": {"generation": 3}, "spec": {"replicas": 1},
      "status": {"observedGeneration": 3, "availableReplicas": 1, "updatedReplicas": 1}}, True),
])
def test_readiness(obj, ready):
    assert readiness(obj)[0] is ready
