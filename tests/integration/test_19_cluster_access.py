"""Every kind of cluster access a platform engineer's kubeconfig or environment carries, against the local
kube-apiserver with real authenticators: client certificates, a static token file, a token webhook (for exec
plugins and the oidc/gcp auth-providers, through tests/support/authn.py), an HTTP CONNECT proxy. Each case runs
the collection's modules in ansible-playbook and checks the API server saw the credential it should have."""
import base64
import copy
import json
import sys
import time

import pytest
import yaml

from tests.support.authn import ISSUER, PKI, Authn, ConnectProxy, jwt, secret, wait_until
from tests.support.runs import CACHE, KUBECONFIG, ROOT, kill_run, run_playbook, start_playbook, task_results

TOKEN_FILE = KUBECONFIG.parent / "authn" / "tokens.csv"
TOKEN_CACHE = 10  # seconds the API server keeps a token's successful authentication (not configurable)
DEAD = "https://127.0.0.1:1"  # nothing listens: a context pointing here fails if it is used
CORE = CACHE / "collections"    # kubernetes.core, from the ansible package (scripts/setup.sh)


@pytest.fixture(scope="module")
def authn(cluster):
    server = Authn()
    yield server
    server.close()


@pytest.fixture(scope="module")
def admin():
    return yaml.safe_load(KUBECONFIG.read_text())


def static_token():
    return TOKEN_FILE.read_text().split(",")[0]


def kubeconfig(path, admin, user, cluster=None, contexts=None, current="test"):
    """A kubeconfig with the local cluster (plus `cluster` fields) as context `test` for `user`."""
    doc = copy.deepcopy(admin)
    doc["clusters"] = [{"name": "local", "cluster": dict(doc["clusters"][0]["cluster"], **(cluster or {}))},
                       {"name": "dead", "cluster": {"server": DEAD, "insecure-skip-tls-verify": True}}]
    doc["users"] = [{"name": "test", "user": user}, {"name": "admin", "user": admin["users"][0]["user"]}]
    doc["contexts"] = contexts or [{"name": "test", "context": {"cluster": "local", "user": "test"}}]
    doc["current-context"] = current
    path.write_text(yaml.safe_dump(doc))
    path.chmod(0o600)
    return str(path)


def playbook(tmp_path, tasks, module_defaults=None):
    path = tmp_path / "access.yml"
    path.write_text(yaml.safe_dump([{"name": "Cluster access", "hosts": "localhost", "connection": "local",
                                     "gather_facts": False, "module_defaults": module_defaults or {},
                                     "vars": {"ansible_python_interpreter": "{{ ansible_playbook_python }}"},
                                     "tasks": tasks}], sort_keys=False))
    return path


def list_nodes(**options):
    """A task that needs a real identity: listing nodes is refused to anonymous users."""
    return {"name": "List the nodes", "llmd.wide_ep.gpu_capacity": options}


def run(tmp_path, tasks, module_defaults=None, env=None, extra=()):
    rc, stats, out, log = run_playbook(playbook(tmp_path, tasks, module_defaults), "localhost,", env=env,
                                       extra=extra)
    return rc, out, log


def nodes_listed(out, log, task="List the nodes"):
    (hosts,) = task_results(out, task)
    res = hosts["localhost"]
    assert not res.get("failed"), log
    assert any(n.startswith("gpu-node-") for n in res["free"]), res
    return res


def test_client_certificate_files(tmp_path, admin):
    user = admin["users"][0]["user"]
    for key in ("client-certificate", "client-key"):
        (tmp_path / key).write_bytes(base64.b64decode(user[key + "-data"]))
    path = kubeconfig(tmp_path / "kc", admin, {"client-certificate": "client-certificate",
                                               "client-key": "client-key"})  # relative to the kubeconfig
    rc, out, log = run(tmp_path, [list_nodes(kubeconfig=path)])
    assert rc == 0, log
    nodes_listed(out, log)


@pytest.mark.parametrize("how", ["token", "tokenFile"])
def test_bearer_token_of_the_token_file_authenticator(tmp_path, admin, how):
    token = static_token()
    if how == "tokenFile":
        (tmp_path / "token").write_text(token + "\n")
        user = {"tokenFile": str(tmp_path / "token")}
    else:
        user = {"token": token}
    rc, out, log = run(tmp_path, [list_nodes(kubeconfig=kubeconfig(tmp_path / "kc", admin, user))])
    assert rc == 0, log
    nodes_listed(out, log)
    assert token not in log


def test_a_refused_token_fails_with_the_servers_answer(tmp_path, admin, authn):
    rc, out, log = run(tmp_path, [list_nodes(kubeconfig=kubeconfig(tmp_path / "kc", admin, {"token": "wrong"}))])
    (hosts,) = task_results(out, "List the nodes")
    assert rc != 0 and "401" in hosts["localhost"]["msg"] and "Unauthorized" in hosts["localhost"]["msg"], log


def test_kubernetes_core_options_without_a_kubeconfig(tmp_path, authn):
    """host + api_key + ca_cert, the names kubernetes.core takes; and K8S_AUTH_* for the same."""
    token = authn.token("apikey")
    rc, out, log = run(tmp_path, [list_nodes(host="https://127.0.0.1:6443", api_key=token,
                                             ca_cert=str(PKI / "ca.crt"))], env={"KUBECONFIG": "/nonexistent"})
    assert rc == 0, log
    nodes_listed(out, log)
    assert authn.presented(token) and token not in log
    env_token = authn.token("env")
    rc, out, log = run(tmp_path, [list_nodes()], env={
        "KUBECONFIG": "/nonexistent", "K8S_AUTH_HOST": "https://127.0.0.1:6443", "K8S_AUTH_API_KEY": env_token,
        "K8S_AUTH_VERIFY_SSL": "false"})
    assert rc == 0, log
    nodes_listed(out, log)
    assert authn.presented(env_token)


def test_impersonation_is_sent(tmp_path, admin):
    rc, out, log = run(tmp_path, [list_nodes(kubeconfig=str(KUBECONFIG), impersonate_user="llmd-nobody")])
    (hosts,) = task_results(out, "List the nodes")
    assert rc != 0 and 'User "llmd-nobody" cannot list resource "nodes"' in hosts["localhost"]["msg"], log


def exec_plugin(tmp_path, tokens, expiring):
    """An exec credential plugin handing out `tokens` one per run (counted in a file)."""
    (tmp_path / "tokens.json").write_text(json.dumps(tokens))
    script = tmp_path / "credential-plugin"
    script.write_text(f"""#!{sys.executable}
import datetime, json, os, pathlib
here = pathlib.Path({str(tmp_path)!r})
runs = here / "runs"
n = len(runs.read_text().splitlines()) if runs.exists() else 0
with open(runs, "a") as fh:
    fh.write(os.environ.get("KUBERNETES_EXEC_INFO", "{{}}") + "\\n")
status = {{"token": json.loads((here / "tokens.json").read_text())[n]}}
if {expiring!r}:  # the client refreshes 5 minutes before expiry: this token is stale 3 s after it is issued
    expiry = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(minutes=5, seconds=3)
    status["expirationTimestamp"] = expiry.strftime("%Y-%m-%dT%H:%M:%SZ")
print(json.dumps({{"apiVersion": "client.authentication.k8s.io/v1", "kind": "ExecCredential", "status": status}}))
""")
    script.chmod(0o755)
    return {"exec": {"apiVersion": "client.authentication.k8s.io/v1", "command": str(script),
                     "interactiveMode": "Never", "provideClusterInfo": True}}


def plugin_runs(tmp_path):
    runs = tmp_path / "runs"
    return [json.loads(line) for line in runs.read_text().splitlines()] if runs.exists() else []


@pytest.mark.parametrize("expiring", [False, True], ids=["refused-mid-wait", "expiring"])
def test_exec_plugin_token_replaced_during_a_long_wait(tmp_path, admin, authn, cluster, namespace, expiring):
    """The first token stops being accepted while the module waits for a Deployment; the wait still succeeds:
    with an expiry the client runs the plugin again before it lapses, without one it does so on the 401."""
    tokens = [authn.token("exec-first")] + [authn.token("exec-next") for _ in range(60)]
    path = kubeconfig(tmp_path / "kc", admin, exec_plugin(tmp_path, tokens, expiring))
    label = "llmd-access-" + namespace
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "waits", "namespace": namespace},
                  "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "waits"}}, "template": {
                      "metadata": {"labels": {"app": "waits"}},
                      "spec": {"nodeSelector": {label: "yes"}, "containers": [{"name": "c", "image": "busybox"}],
                               "tolerations": [{"operator": "Exists"}]}}}}
    tasks = [{"name": "Apply and wait", "llmd.wide_ep.k8s_objects": {
        "kubeconfig": path, "definitions": [deployment], "wait": True, "wait_timeout": 120, "wait_sleep": 1}}]
    proc = start_playbook(playbook(tmp_path, tasks), inventory="localhost,")
    node = "gpu-node-0"
    try:
        wait_until(lambda: plugin_runs(tmp_path), what="the credential plugin's first run")
        time.sleep(5)
        authn.revoke(tokens[0])   # the server stops accepting the first token while the module waits
        time.sleep(TOKEN_CACHE + 3)
        cluster("label", "node", node, label + "=yes")
        stdout, stderr = proc.communicate(timeout=150)
    finally:
        if proc.poll() is None:
            kill_run(proc)
        cluster("label", "node", node, label + "-")
    assert proc.returncode == 0, stdout[-3000:] + stderr[-3000:]
    runs = plugin_runs(tmp_path)
    assert len(runs) >= 2, runs
    assert runs[0]["spec"]["cluster"]["server"] == "https://127.0.0.1:6443"   # provideClusterInfo
    if expiring:
        assert not set(authn.refused()) & set(tokens), "refreshed before the token lapsed: nothing refused"
    else:
        assert authn.refused(tokens[0]), "the first token was refused during the wait"
    assert authn.presented(tokens[1])
    assert not any(t in stdout + stderr for t in tokens)


def test_oidc_auth_provider_refreshes_an_expired_id_token(tmp_path, admin, authn):
    expired = jwt({"iss": ISSUER, "sub": "oidc-user", "exp": int(time.time()) - 60})
    fresh = jwt({"iss": ISSUER, "sub": "oidc-user", "exp": int(time.time()) + 3600})
    authn.accepted[fresh] = "oidc-user"
    refresh, next_refresh = secret("refresh"), secret("refresh")
    authn.refresh_tokens[refresh] = (fresh, next_refresh)
    ca = base64.b64encode((PKI / "ca.crt").read_bytes()).decode()
    user = {"auth-provider": {"name": "oidc", "config": {
        "client-id": "llmd", "client-secret": secret("client"), "id-token": expired, "refresh-token": refresh,
        "idp-issuer-url": ISSUER, "idp-certificate-authority-data": ca}}}
    rc, out, log = run(tmp_path, [list_nodes(kubeconfig=kubeconfig(tmp_path / "kc", admin, user))])
    assert rc == 0, log
    nodes_listed(out, log)
    assert refresh in authn.refreshes and authn.presented(fresh) and not authn.presented(expired)
    assert fresh not in log and refresh not in log


def test_gcp_auth_provider_with_a_current_access_token(tmp_path, admin, authn):
    token = authn.token("gcp")
    user = {"auth-provider": {"name": "gcp", "config": {"access-token": token, "expiry": "2099-01-01T00:00:00Z"}}}
    rc, out, log = run(tmp_path, [list_nodes(kubeconfig=kubeconfig(tmp_path / "kc", admin, user))])
    assert rc == 0, log
    nodes_listed(out, log)
    assert authn.presented(token)


def test_merged_kubeconfig_files_with_the_context_in_the_second(tmp_path, admin):
    """KUBECONFIG=missing:first:second, the first file naming the current context the second one defines."""
    first = tmp_path / "first.yaml"
    first.write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "Config", "current-context": "second-ctx",
                                     "clusters": [{"name": "dead", "cluster": {"server": DEAD}}],
                                     "users": [], "contexts": []}))
    second = kubeconfig(tmp_path / "second.yaml", admin, admin["users"][0]["user"],
                        contexts=[{"name": "second-ctx", "context": {"cluster": "local", "user": "test"}},
                                  {"name": "dead-ctx", "context": {"cluster": "dead", "user": "test"}}],
                        current="dead-ctx")
    files = ":".join([str(tmp_path / "missing.yaml"), str(first), second])
    rc, out, log = run(tmp_path, [list_nodes()], env={"KUBECONFIG": files})
    assert rc == 0, log
    nodes_listed(out, log)


def test_k8s_auth_context_and_one_module_defaults_block_for_both_collections(tmp_path, admin):
    """K8S_AUTH_CONTEXT picks the context; then one module_defaults block, of either collection's group, sends
    kubernetes.core and llmd.wide_ep modules to the same cluster (the environment points both elsewhere)."""
    path = kubeconfig(tmp_path / "kc", admin, admin["users"][0]["user"], current="dead-ctx", contexts=[
        {"name": "live", "context": {"cluster": "local", "user": "test"}},
        {"name": "dead-ctx", "context": {"cluster": "dead", "user": "test"}}])
    rc, out, log = run(tmp_path, [list_nodes(kubeconfig=path)], env={"K8S_AUTH_CONTEXT": "live"})
    assert rc == 0, log
    nodes_listed(out, log)
    assert (CORE / "ansible_collections/kubernetes/core").is_dir(), "scripts/setup.sh installs kubernetes.core"
    both = [{"name": "kubernetes.core lists the nodes",
             "kubernetes.core.k8s_info": {"kind": "Node", "label_selectors": ["type=kwok"]}}, list_nodes()]
    env = {"ANSIBLE_COLLECTIONS_PATH": "%s:%s" % (ROOT / "collections", CORE), "KUBECONFIG": "/nonexistent",
           "K8S_AUTH_CONTEXT": "dead-ctx"}
    for group in ("group/kubernetes.core.k8s", "group/llmd.wide_ep.k8s"):
        rc, out, log = run(tmp_path, both, module_defaults={group: {"kubeconfig": path, "context": "live"}}, env=env)
        assert rc == 0, (group, [h for t in task_results(out, "") for h in t.values() if h.get("failed")])
        (core,) = task_results(out, "kubernetes.core lists the nodes")
        assert len(core["localhost"]["resources"]) >= 4, (group, core)
        nodes_listed(out, log)


def test_proxy_url_of_the_kubeconfig_goes_through_a_connect_proxy(tmp_path, admin):
    proxy = ConnectProxy()
    try:
        path = kubeconfig(tmp_path / "kc", admin, admin["users"][0]["user"], cluster={"proxy-url": proxy.url})
        rc, out, log = run(tmp_path, [list_nodes(kubeconfig=path)])
        assert rc == 0, log
        nodes_listed(out, log)
        assert proxy.tunnels and set(proxy.tunnels) == {"127.0.0.1:6443"}
        proxy.tunnels.clear()
        rc, out, log = run(tmp_path, [list_nodes(kubeconfig=str(KUBECONFIG), proxy=proxy.url)])
        assert rc == 0 and proxy.tunnels, log
    finally:
        proxy.close()


def test_no_credential_reaches_output_diffs_or_logs(tmp_path, admin, namespace):
    """What a user sees at -vvv with --diff (the default callback), for an inline kubeconfig with a client key,
    a token option and a Secret's value: none of them."""
    token, key = static_token(), admin["users"][0]["user"]["client-key-data"]
    value = secret("hf")
    hf_secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "hf", "namespace": namespace},
                 "stringData": {"HF_TOKEN": value}}
    tasks = [list_nodes(kubeconfig=copy.deepcopy(admin)),
             {"name": "Apply a Secret", "llmd.wide_ep.k8s_objects": {
                 "host": "https://127.0.0.1:6443", "api_key": token, "validate_certs": False,
                 "definitions": [hf_secret]}}]
    rc, out, log = run(tmp_path, tasks, extra=["-vvv", "--diff"], env={"ANSIBLE_STDOUT_CALLBACK": "default"})
    assert rc == 0 and "changed=1" in log, log
    for credential in (token, key, value, base64.b64encode(value.encode()).decode()):
        assert credential not in log
