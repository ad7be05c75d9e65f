"""The apply loop (module_utils/k8s/apply.py) over the in-memory API server: no-op detection by dry run, honest
check mode, the guard before the first change, validation before any request."""
import pytest

from ansible_collections.llmd.wide_ep.plugins.module_utils.k8s import apply
from ansible_collections.llmd.wide_ep.plugins.module_utils.k8s.client import Client
from ansible_collections.llmd.wide_ep.plugins.module_utils.k8s.errors import K8sError
from tests.support.fake_api import FakeApi

CM = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "namespace": "ns"}, "data": {"k": "1"}}


class Module:
    def __init__(self, check=False, diff=False, **params):
        self.check_mode, self._diff = check, diff
        self.params = dict({"state": "present", "field_manager": "llmd.wide_ep", "force_conflicts": False,
                            "wait": False, "wait_timeout": 5, "wait_sleep": 0.01, "namespace": None,
                            "kubeconfig": None, "context": None}, **params)


@pytest.fixture
def api(monkeypatch):
    fake = FakeApi()
    fake.put({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ns"}})
    monkeypatch.setattr(apply, "Client", lambda *a, **k: Client(transport=fake))
    return fake


def test_would_change_by_dry_run(api):
    c = Client(transport=api)
    assert apply.would_change(c, CM, None) == (True, None, None)
    c.apply(CM)
    changed, live, preview = apply.would_change(c, CM, c.get(CM))
    assert changed is False and preview["data"] == {"k": "1"}
    assert apply.would_change(c, dict(CM, data={"k": "2"}), c.get(CM))[0] is True
    assert api.writes() == [("PATCH", "/api/v1/namespaces/ns/configmaps/a")]  # only the one real apply


def test_second_run_sends_no_write(api):
    first = apply.run(Module(), [CM])
    writes = len(api.writes())
    second = apply.run(Module(), [CM])
    assert first["changed"] and not second["changed"]
    assert len(api.writes()) == writes
    # nothing to compare on the first run (it did not exist); one dry run of the ConfigMap (no digest) on the second
    assert (first["timings"]["dry_runs"], second["timings"]["dry_runs"]) == (0, 1)


def test_check_mode_writes_nothing_and_diffs(api):
    result = apply.run(Module(check=True, diff=True), [CM])
    assert result["changed"] and api.writes() == []
    assert "k: '1'" in result["diff"][0]["after"] and result["diff"][0]["before"] == ""


def test_the_guard_runs_once_before_the_first_change(api):
    Client(transport=api).apply(CM)
    seen = []
    other = dict(CM, metadata={"name": "b", "namespace": "ns"})
    apply.run(Module(), [CM, other, dict(other, metadata={"name": "c", "namespace": "ns"})],
              before_change=lambda client, obj: seen.append(obj["metadata"]["name"]))
    assert seen == ["b"]   # "a" was unchanged; the guard ran once, before "b"


def test_a_refusing_guard_stops_before_any_write(api):
    def refuse(client, obj):
        raise K8sError("refused: a rollout holds the lease")
    with pytest.raises(K8sError, match="refused"):
        apply.run(Module(), [CM], before_change=refuse)
    assert api.writes() == []


def test_every_invalid_definition_is_named_before_any_request(api):
    with pytest.raises(K8sError) as err:
        apply.run(Module(), [{"kind": "ConfigMap", "metadata": {}}, "text", CM], kinds=("Secret",))
    msg = str(err.value)
    for part in ("definitions[0]: missing apiVersion", "definitions[0]: missing metadata.name",
                 "definitions[1]: not a mapping", "definitions[2]: kind ConfigMap is not handled here"):
        assert part in msg
    assert api.log == []


def test_absent_deletes_and_reports_only_what_existed(api):
    Client(transport=api).apply(CM)
    result = apply.run(Module(state="absent"), [CM, dict(CM, metadata={"name": "gone", "namespace": "ns"})])
    assert [r["changed"] for r in result["results"]] == [True, False]
    assert Client(transport=api).get(CM) is None


def crd(name, annotation, version):
    return {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": name, "annotations": {annotation: version}}, "spec": {}}


def test_a_newer_bundle_installed_is_kept_an_older_one_upgraded():
    api = FakeApi()
    api.put(crd("httproutes.gateway.networking.k8s.io", "gateway.networking.k8s.io/bundle-version", "v1.5.1"))
    api.put(crd("inferencepools.inference.networking.k8s.io", "inference.networking.k8s.io/bundle-version", "v1.3.0"))
    wanted = [crd("httproutes.gateway.networking.k8s.io", "gateway.networking.k8s.io/bundle-version", "v1.4.0"),
              crd("inferencepools.inference.networking.k8s.io", "inference.networking.k8s.io/bundle-version", "v1.5.0"),
              crd("grpcroutes.gateway.networking.k8s.io", "gateway.networking.k8s.io/bundle-version", "v1.4.0"), CM]
    out, kept = apply.keep_newer_bundles(Client(transport=api), wanted)
    assert [o["metadata"]["name"] for o in out] == ["inferencepools.inference.networking.k8s.io",
                                                   "grpcroutes.gateway.networking.k8s.io", "a"]
    assert kept == ["httproutes.gateway.networking.k8s.io: v1.5.1 installed, newer than v1.4.0: kept"]


CRD = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
       "metadata": {"name": "things.example.com", "annotations": {"keep": "me"}}, "spec": {"group": "example.com"}}


def test_a_crd_carries_the_digest_of_what_is_sent_and_nothing_else_does():
    sent = apply.with_digest(CRD)
    digest = sent["metadata"]["annotations"].pop(apply.DIGEST_ANNOTATION)
    assert sent == CRD and len(digest) == 32
    assert apply.with_digest(apply.with_digest(CRD)) == apply.with_digest(CRD)       # the digest leaves itself out
    other = apply.with_digest(dict(CRD, spec={"group": "example.org"}))
    assert other["metadata"]["annotations"][apply.DIGEST_ANNOTATION] != digest
    assert apply.with_digest(CM) is CM


def live(obj, *managers):
    return dict(obj, metadata=dict(obj["metadata"], managedFields=[
        {"manager": m, "operation": op, **({"subresource": sub} if sub else {})} for m, op, sub in managers]))


def test_the_dry_run_is_skipped_only_while_this_manager_alone_holds_the_crd():
    sent = apply.with_digest(CRD)
    ours, status = ("llmd.wide_ep", "Apply", None), ("kube-apiserver", "Update", "status")
    assert apply.unchanged_by_digest(sent, live(sent, ours, status), "llmd.wide_ep")
    assert not apply.unchanged_by_digest(sent, live(sent, ours, ("kubectl-edit", "Update", None)), "llmd.wide_ep")
    assert not apply.unchanged_by_digest(sent, live(sent, ours, ("llmd.wide_ep", "Update", None)), "llmd.wide_ep")
    changed = apply.with_digest(dict(CRD, spec={"group": "example.org"}))
    assert not apply.unchanged_by_digest(changed, live(sent, ours), "llmd.wide_ep")
    assert not apply.unchanged_by_digest(CM, live(CM, ours), "llmd.wide_ep")        # no digest: the dry run


def test_what_the_caller_just_read_is_not_read_again(api):
    c = Client(transport=api)
    c.apply(CM)
    live = c.get(CM)
    before = len(api.log)
    result = apply.run(Module(), [CM], client=c, known={"ConfigMap ns/a": live})
    gets = [p for m, p, q in api.log[before:] if m == "GET" and p.endswith("/configmaps/a")]
    assert result["changed"] is False and gets == []       # the caller's read was used
    seen = {}
    assert apply.keep_newer_bundles(c, [apply.with_digest(CRD)], seen)[1] == [] and seen == {}  # no bundle: no read
