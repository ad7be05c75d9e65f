"""module_utils/k8s/helm.py against a fake helm CLI (the module's run_command): what it runs for each state, and
that an unchanged release runs no upgrade."""
import json

import pytest

from ansible_collections.llmd.wide_ep.plugins.module_utils.k8s import helm as helm_utils


class FakeHelm:
    """The helm CLI as run_command sees it: releases by name, every argv recorded."""

    def __init__(self, releases=None, fail=None):
        self.releases = releases or {}
        self.calls = []
        self.fail = fail or {}
        self.check_mode, self._diff = False, True
        self.warnings = []

    def get_bin_path(self, name, required=False):
        return "/bin/sh"

    def warn(self, msg):
        self.warnings.append(msg)

    def run_command(self, argv, environ_update=None):
        args = argv[1:]
        self.calls.append(args)
        self.env = environ_update
        verb = args[0]
        if verb in self.fail:
            return 1, "", self.fail[verb]
        if verb == "list":
            name = args[args.index("--filter") + 1].strip("^$")
            rel = self.releases.get(name)
            return 0, json.dumps([rel["list"]] if rel else []), ""
        if verb == "get":
            return 0, json.dumps(self.releases[args[2]]["values"]), ""
        return 0, "", ""

    def verbs(self):
        return [c[0] for c in self.calls]


def release(version="v1.3.0", values=None, revision=2, status="deployed"):
    return {"list": {"name": "pool", "chart": "inferencepool-%s" % version, "status": status,
                     "revision": str(revision), "app_version": version}, "values": values or {"a": 1}}


def params(**over):
    return dict({"release": "pool", "namespace": "ns", "chart_ref": "oci://example/inferencepool",
                 "chart_version": "v1.3.0", "values": {"a": 1}, "state": "present", "wait": False,
                 "wait_timeout": 300}, **over)


def state(fake, **over):
    helm = helm_utils.Helm(fake, "helm", {"kubeconfig": "/kube/config", "context": "ctx"})
    return helm_utils.release_state(helm, fake, params(**over))


def test_unchanged_release_runs_no_upgrade():
    fake = FakeHelm({"pool": release()})
    result = state(fake)
    assert result["changed"] is False and "upgrade" not in fake.verbs()
    assert all(c[-2:] == ["--kubeconfig", "/kube/config"] for c in fake.calls)
    assert fake.env == {"HELM_KUBECONTEXT": "ctx"}


@pytest.mark.parametrize("found,why", [(None, "missing"), (release(values={"a": 2}), "values"),
                                       (release(version="v1.2.0"), "version"), (release(status="failed"), "status")])
def test_install_or_upgrade_when_something_differs(found, why):
    fake = FakeHelm({"pool": found} if found else {})
    result = state(fake)
    upgrade = [c for c in fake.calls if c[0] == "upgrade"]
    assert result["changed"] and len(upgrade) == 1, why
    assert upgrade[0][:4] == ["upgrade", "--install", "pool", "oci://example/inferencepool"]
    assert "--version" in upgrade[0] and "v1.3.0" in upgrade[0]


def test_check_mode_renders_server_side_and_diffs():
    fake = FakeHelm({"pool": release(values={"a": 2})})
    fake.check_mode = True
    result = state(fake)
    (upgrade,) = [c for c in fake.calls if c[0] == "upgrade"]
    assert "--dry-run=server" in upgrade and "--wait" not in upgrade
    assert "a: 2" in result["diff"]["before"] and "a: 1" in result["diff"]["after"]


def test_absent_uninstalls_only_an_installed_release():
    fake = FakeHelm({"pool": release()})
    assert state(fake, state="absent")["changed"] and "uninstall" in fake.verbs()
    fake = FakeHelm()
    assert not state(fake, state="absent")["changed"] and "uninstall" not in fake.verbs()


def test_rolled_back_returns_to_the_revision_before():
    fake = FakeHelm({"pool": release(revision=3)})
    result = state(fake, state="rolled_back", wait=True)
    (rollback,) = [c for c in fake.calls if c[0] == "rollback"]
    assert rollback[:3] == ["rollback", "pool", "2"] and "--wait" in rollback
    assert result["changed"] and result["rolled_back_to"] == 2


def test_rolled_back_without_an_earlier_revision_fails_clearly():
    with pytest.raises(helm_utils.HelmError, match="no earlier revision to roll back to \\(revision 1\\)"):
        state(FakeHelm({"pool": release(revision=1)}), state="rolled_back")
    with pytest.raises(helm_utils.HelmError, match="not installed"):
        state(FakeHelm(), state="rolled_back")


def test_a_failing_helm_says_which_command():
    fake = FakeHelm(fail={"upgrade": "Error: UPGRADE FAILED: timed out waiting for the condition"})
    with pytest.raises(helm_utils.HelmError, match="helm upgrade --install failed \\(rc=1\\): .*timed out"):
        state(fake)


def test_credentials_go_to_helm_as_flags_and_variables_never_a_token_on_the_command_line(tmp_path, monkeypatch):
    monkeypatch.setenv("K8S_AUTH_KUBECONFIG", "/env/kubeconfig")   # a host and token need none, as for the API
    fake = FakeHelm()
    fake.tmpdir = str(tmp_path)
    helm = helm_utils.Helm(fake, "helm", {"host": "https://api.example:6443", "api_key": "s3cret-token",
                                          "ca_cert": "/ca.crt", "impersonate_groups": ["a", "b"]})
    helm.run("version")
    assert fake.calls[-1] == ["version"] and "s3cret-token" not in " ".join(fake.calls[-1])
    assert fake.env == {"HELM_KUBEAPISERVER": "https://api.example:6443", "HELM_KUBETOKEN": "s3cret-token",
                        "HELM_KUBECAFILE": "/ca.crt", "HELM_KUBEASGROUPS": "a,b"}
    monkeypatch.delenv("K8S_AUTH_KUBECONFIG")
    inline = helm_utils.Helm(fake, "helm", {"kubeconfig": {"apiVersion": "v1", "clusters": []}, "context": "c"})
    path = inline.global_args[1]
    assert inline.global_args == ["--kubeconfig", path] and path.startswith(str(tmp_path))
    assert json.loads(open(path).read())["apiVersion"] == "v1" and inline.env == {"HELM_KUBECONTEXT": "c"}


def test_k8s_auth_variables_reach_helm(monkeypatch):
    monkeypatch.setenv("K8S_AUTH_KUBECONFIG", "/env/kubeconfig")
    monkeypatch.setenv("K8S_AUTH_CONTEXT", "env-ctx")
    helm = helm_utils.Helm(FakeHelm(), "helm", {})
    assert helm.global_args == ["--kubeconfig", "/env/kubeconfig"] and helm.env == {"HELM_KUBECONTEXT": "env-ctx"}


class VersionModule:
    """What installed_version uses of a module: get_bin_path, and run_command answering `answer`, counted."""

    def __init__(self, answer="v3.21.4+g1234"):
        self.answer, self.runs = answer, 0

    def get_bin_path(self, name):
        return None

    def run_command(self, argv):
        self.runs += 1
        return (0, self.answer + "\n", "") if self.answer else (1, "", "Error: unknown command")


def test_a_compiled_helm_is_asked_its_version_once_until_it_changes(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    binary = tmp_path / "helm"
    binary.write_bytes(b"\x7fELF compiled")
    module = VersionModule()
    assert helm_utils.installed_version(module, str(binary)) == "v3.21.4+g1234"
    assert helm_utils.installed_version(module, str(binary)) == "v3.21.4+g1234"
    assert module.runs == 1
    binary.write_bytes(b"\x7fELF another build")   # replaced: another size and mtime
    module.answer = "v4.0.1"
    assert helm_utils.installed_version(module, str(binary)) == "v4.0.1" and module.runs == 2


def test_a_script_is_asked_every_time_and_an_old_or_broken_helm_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    script = tmp_path / "helm-wrapper"
    script.write_text("#!/bin/sh\nexec helm \"$@\"\n")
    module = VersionModule()
    helm_utils.installed_version(module, str(script))
    helm_utils.installed_version(module, str(script))
    assert module.runs == 2
    with pytest.raises(helm_utils.HelmError, match=r"is helm 3\.16\.2; the collection runs helm 3\.17\.0 or later"):
        helm_utils.installed_version(VersionModule("v3.16.2"), str(script))
    with pytest.raises(helm_utils.HelmError, match=r"is not a working helm \(`version --short`: rc 1, Error: unknown"):
        helm_utils.installed_version(VersionModule(None), str(script))
    with pytest.raises(helm_utils.HelmError, match=r"helm not found \(/nonexistent/helm\): install helm 4"):
        helm_utils.installed_version(VersionModule(), "/nonexistent/helm")


def test_the_stored_release_lists_revisions_by_their_labels_and_reads_only_the_latest():
    import base64
    import gzip
    import json as json_

    from ansible_collections.llmd.wide_ep.plugins.module_utils.k8s.client import ACCEPT_METADATA_LIST, Client
    from tests.support.fake_api import FakeApi

    api = FakeApi()
    for revision in (1, 2, 3):
        release = {"version": revision, "info": {"status": "deployed" if revision == 3 else "superseded"},
                   "chart": {"metadata": {"name": "inferencepool", "version": "v1.%d.0" % revision}},
                   "config": {"rev": revision}}
        data = base64.b64encode(base64.b64encode(gzip.compress(json_.dumps(release).encode()))).decode()
        api.put({"apiVersion": "v1", "kind": "Secret", "data": {"release": data}, "metadata": {
            "name": "sh.helm.release.v1.pool.v%d" % revision, "namespace": "ns",
            "labels": {"owner": "helm", "name": "pool", "version": str(revision)}}})
    accepted = []
    real = api.request
    api.request = lambda *a, **kw: accepted.append(kw.get("accept")) or real(*a, **kw)
    found = helm_utils.Helm(FakeHelm(), "helm", {}, client=Client(transport=api)).release("pool", "ns")
    assert found == {"chart": "inferencepool", "version": "v1.3.0", "status": "deployed", "revision": 3,
                     "app_version": None, "values": {"rev": 3}}
    assert [(m, p) for m, p, q in api.log] == [("GET", "/api/v1/namespaces/ns/secrets"),
                                               ("GET", "/api/v1/namespaces/ns/secrets/sh.helm.release.v1.pool.v3")]
    assert accepted == [ACCEPT_METADATA_LIST, "application/json"]


def test_a_revision_pruned_between_the_two_reads_is_read_again_and_a_third_loss_is_an_error():
    import base64
    import gzip
    import json as json_

    from ansible_collections.llmd.wide_ep.plugins.module_utils.k8s.client import Client
    from ansible_collections.llmd.wide_ep.plugins.module_utils.k8s.errors import K8sError
    from tests.support.fake_api import FakeApi

    api = FakeApi()
    release = {"version": 1, "info": {"status": "deployed"}, "config": {},
               "chart": {"metadata": {"name": "inferencepool", "version": "v1.3.0"}}}
    api.put({"apiVersion": "v1", "kind": "Secret", "metadata": {
        "name": "sh.helm.release.v1.pool.v1", "namespace": "ns", "labels": {"owner": "helm", "name": "pool",
                                                                          "version": "1"}},
        "data": {"release": base64.b64encode(base64.b64encode(gzip.compress(json_.dumps(release).encode()))).decode()}})
    secret = "/api/v1/namespaces/ns/secrets/sh.helm.release.v1.pool.v1"
    gone = K8sError.from_response(404, json_.dumps({"kind": "Status", "code": 404, "reason": "NotFound"}))
    reader = helm_utils.Helm(FakeHelm(), "helm", {}, client=Client(transport=api))
    api.fail[("GET", secret)] = gone                  # pruned once: listed again, then read
    assert reader.release("pool", "ns")["revision"] == 1
    assert [p for m, p, q in api.log].count(secret) == 2
    real = api.request

    def always_gone(method, path, **kw):
        if (method, path) == ("GET", secret):
            raise gone
        return real(method, path, **kw)

    api.request = always_gone
    with pytest.raises(helm_utils.HelmError, match="changed under three reads"):
        reader.release("pool", "ns")
