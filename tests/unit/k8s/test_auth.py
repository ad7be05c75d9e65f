"""module_utils/k8s/auth.py: which options win and what the official client's Configuration ends up with. Only
configuration is built here (no request); tests/integration/test_19_cluster_access.py sends real ones."""
import pytest
import yaml

from ansible_collections.llmd.wide_ep.plugins.module_utils.k8s import auth
from ansible_collections.llmd.wide_ep.plugins.module_utils.k8s.errors import K8sError


def kubeconfig(path, server="https://10.0.0.1:6443", user=None, current="ctx", cluster=None, name="ctx"):
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": current,
        "clusters": [{"name": name, "cluster": dict({"server": server, "insecure-skip-tls-verify": True},
                                                    **(cluster or {}))}],
        "users": [{"name": name, "user": user or {"token": "t-" + name}}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": name}}]}))
    return str(path)


def test_options_take_the_k8s_auth_variables_under_both_names():
    env = {"K8S_AUTH_HOST": "https://h", "K8S_AUTH_VERIFY_SSL": "no", "K8S_AUTH_SSL_CA_CERT": "/ca",
           "K8S_AUTH_CLIENT_CERT": "/c", "K8S_AUTH_IMPERSONATE_GROUPS": "a,b", "K8S_AUTH_CONTEXT": "env-ctx",
           "K8S_AUTH_PROXY_HEADERS_USER_AGENT": "ua"}
    opts = auth.options({"context": "task-ctx"}, env)
    assert opts == {"host": "https://h", "validate_certs": False, "ca_cert": "/ca", "client_cert": "/c",
                    "impersonate_groups": ["a", "b"], "context": "task-ctx", "proxy_headers": {"user_agent": "ua"}}


def test_host_and_token_need_no_kubeconfig():
    access = auth.load({"host": "https://api:6443/", "api_key": "tok", "validate_certs": False},
                       {"KUBECONFIG": "/nonexistent"})
    cfg = access.configuration
    assert cfg.host == "https://api:6443" and access.token() == "Bearer tok" and not cfg.verify_ssl


def test_merged_files_skip_missing_ones_and_take_the_first_current_context(tmp_path):
    first = tmp_path / "a.yaml"
    first.write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "Config", "current-context": "two",
                                     "clusters": [], "users": [], "contexts": []}))
    second = kubeconfig(tmp_path / "b.yaml", server="https://two:6443", current="nope", name="two")
    access = auth.load({}, {"KUBECONFIG": "%s:%s:%s" % (tmp_path / "missing", first, second)})
    assert access.configuration.host == "https://two:6443"
    assert access.token() == "Bearer t-two"
    assert access.source.endswith("context two")


def test_proxy_url_tls_server_name_and_environment_proxy(tmp_path):
    path = kubeconfig(tmp_path / "kc", cluster={"proxy-url": "http://proxy:3128", "tls-server-name": "api.internal"})
    cfg = auth.load({"kubeconfig": path}, {}).configuration
    assert cfg.proxy == "http://proxy:3128" and cfg.tls_server_name == "api.internal"
    env = {"HTTPS_PROXY": "http://envproxy:3128", "NO_PROXY": "internal"}
    assert auth.load({"kubeconfig": kubeconfig(tmp_path / "k2")}, env).configuration.proxy == "http://envproxy:3128"
    loopback = kubeconfig(tmp_path / "k3", server="https://127.0.0.1:6443")
    assert auth.load({"kubeconfig": loopback}, env).configuration.proxy is None  # as kubectl: never for loopback
    assert auth.load({"kubeconfig": path, "proxy": "http://opt:1"}, env).configuration.proxy == "http://opt:1"


def test_a_kubeconfig_mapping_and_impersonation_headers(tmp_path):
    doc = yaml.safe_load(open(kubeconfig(tmp_path / "kc")).read())
    access = auth.load({"kubeconfig": doc, "impersonate_user": "u", "impersonate_groups": ["g1", "g2"]}, {})
    assert access.configuration.host == "https://10.0.0.1:6443"
    assert access.headers["Impersonate-User"] == "u" and access.headers.getlist("Impersonate-Group") == ["g1", "g2"]


@pytest.mark.parametrize("params,env,message", [
    ({}, {"KUBECONFIG": "/nonexistent/a:/nonexistent/b"}, "no kubeconfig at /nonexistent/a:/nonexistent/b"),
    ({"context": "other"}, None, "Expected object with name other"),
])
def test_missing_files_and_contexts_are_named(tmp_path, params, env, message):
    if env is None:
        env = {"KUBECONFIG": kubeconfig(tmp_path / "kc")}
    with pytest.raises(K8sError, match=message):
        auth.load(params, env)


def test_a_failing_exec_plugin_is_reported_with_its_error(tmp_path):
    user = {"exec": {"apiVersion": "client.authentication.k8s.io/v1", "command": str(tmp_path / "no-such-plugin"),
                     "interactiveMode": "Never"}}
    with pytest.raises(K8sError, match="credential plugin .*no-such-plugin gave no credentials"):
        auth.load({"kubeconfig": kubeconfig(tmp_path / "kc", user=user)}, {})


def test_refreshable_credentials_are_the_ones_that_change(tmp_path):
    assert not auth.load({"kubeconfig": kubeconfig(tmp_path / "a")}, {}).refreshable     # a fixed token
    (tmp_path / "tok").write_text("x")
    assert auth.load({"kubeconfig": kubeconfig(tmp_path / "b", user={"tokenFile": str(tmp_path / "tok")})},
                     {}).refreshable



def loaders(monkeypatch, refuse):
    """The official loaders, one of them refusing: which one load() takes shows."""
    from kubernetes import config as kconfig

    def refused(*args, **kwargs):
        raise AssertionError("%s should not run here" % refuse)

    monkeypatch.setattr(kconfig, refuse, refused)


def location_free(path, opts):
    """auth._location_free for the context `ctx` of one kubeconfig file."""
    docs, found = auth._read_kubeconfigs(path)
    entry = auth._named(docs, "contexts", "ctx")
    return auth._location_free(found, docs, opts, auth._named(docs, "clusters", entry["cluster"]),
                               auth._named(docs, "users", entry["user"]))


def test_a_kubeconfig_that_depends_on_its_folder_is_loaded_as_a_file(tmp_path, monkeypatch):
    """The parsed mapping is handed to the official loader only when nothing in it depends on the file's place;
    a relative tokenFile is read from the kubeconfig's folder (not the working directory), as kubectl reads it."""
    (tmp_path / "kube").mkdir()
    (tmp_path / "kube" / "tok").write_text("from-the-folder")
    relative = kubeconfig(tmp_path / "kube" / "config", user={"tokenFile": "tok"})
    monkeypatch.chdir(tmp_path)          # a tok here would be the wrong one
    (tmp_path / "tok").write_text("from-the-working-directory")
    loaders(monkeypatch, "load_kube_config_from_dict")
    assert auth.load({"kubeconfig": relative}, {}).token() == "Bearer from-the-folder"
    for user in ({"exec": {"command": "/bin/true"}}, {"auth-provider": {"name": "oidc", "config": {}}}):
        doc = kubeconfig(tmp_path / "other", user=user)
        assert not location_free(doc, {})
    absolute = kubeconfig(tmp_path / "abs", user={"tokenFile": str(tmp_path / "kube" / "tok")})
    assert not location_free(absolute, {"persist_config": True})
    assert location_free(absolute, {}) and location_free("%s:%s" % (tmp_path / "missing", absolute), {})
    assert not location_free("%s:%s" % (tmp_path / "kube", absolute), {})   # a folder listed: the file loader's
    # the file loader keeps the first of two users of one name; the mapping loader would refuse the file
    twice = yaml.safe_load(open(absolute).read())
    twice["users"].append(dict(twice["users"][0], user={"token": "second"}))
    (tmp_path / "twice").write_text(yaml.safe_dump(twice))
    assert auth.load({"kubeconfig": str(tmp_path / "twice")}, {}).token() == "Bearer from-the-folder"
    # an empty file in KUBECONFIG's list is the official loader's to judge, as before
    (tmp_path / "empty").write_text("")
    with pytest.raises(K8sError, match="empty"):
        auth.load({}, {"KUBECONFIG": "%s:%s" % (tmp_path / "empty", absolute)})


def test_a_location_free_file_loads_from_the_parsed_mapping_as_the_file_loader_would(tmp_path, monkeypatch):
    import base64

    from kubernetes import client as kclient
    from kubernetes import config as kconfig

    (tmp_path / "client.crt").write_text("not read until a request")
    path = kubeconfig(tmp_path / "kc", user={"token": "abc", "client-certificate": str(tmp_path / "client.crt")},
                      cluster={"tls-server-name": "api.internal", "insecure-skip-tls-verify": False,
                               "certificate-authority-data": base64.b64encode(b"a CA").decode()})
    official = kclient.Configuration()
    kconfig.load_kube_config(config_file=path, client_configuration=official, persist_config=False)
    loaders(monkeypatch, "load_kube_config")
    access = auth.load({"kubeconfig": path}, {})
    ours = access.configuration
    for attr in ("host", "verify_ssl", "tls_server_name", "cert_file"):
        assert getattr(ours, attr) == getattr(official, attr), attr
    assert ours.cert_file == str(tmp_path / "client.crt") and ours.tls_server_name == "api.internal"
    assert open(ours.ssl_ca_cert, "rb").read() == b"a CA"
    assert access.token() == "Bearer abc"
