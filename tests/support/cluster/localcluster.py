#!/usr/bin/env python3
"""Start, stop and wipe the local Kubernetes cluster used by the tests and `inventories/local`.

Real kube-apiserver, kube-controller-manager, kube-scheduler, etcd, kwok and the LWS controller run as host
processes inside the network namespace `llmd-local`, which has only loopback and an unreachable default
route, so nothing the cluster (or a test in the namespace) does can leave the machine.

    localcluster.py up | down | wipe | status
    localcluster.py lws VERSION         run another LWS controller build (versions.env LWS_UPGRADE_VERSIONS);
                                        0.9.0 serves the DisaggregatedSet, as its chart with enableDisaggregatedSet
    localcluster.py exec -- CMD...      run CMD inside the namespace with KUBECONFIG set
"""
import base64
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[2]))     # run as a script: the repository root, for tests.support
from tests.support.netns import Sandbox, cli  # noqa: E402

CACHE = Path(os.environ.get("LLMD_CACHE", "/var/cache/llmd-wide-ep"))
BIN = CACHE / "bin"
DATA = CACHE / "data"
STATE = Path(os.environ.get("LLMD_CLUSTER_DIR", "/var/tmp/llmd-wide-ep/cluster"))
NETNS = os.environ.get("LLMD_NETNS", "llmd-local")
KUBECONFIG = STATE / "kubeconfig"
PKI = STATE / "pki"
# Advertised by kube-apiserver for the `kubernetes` Service. Nothing listens there and the namespace has no
# route to it: a documentation-range address (RFC 5737) that Endpoints accept, unlike 127.0.0.0/8.
ADVERTISE_ADDRESS = "192.0.2.1"
API_PORT = 6443
# Authenticators beside client certificates, for the credential tests (tests/support/authn.py):
AUTHN = STATE / "authn"
TOKEN_FILE = AUTHN / "tokens.csv"            # static bearer tokens (--token-auth-file)
WEBHOOK_PORT = 9444                          # the token webhook the tests serve on loopback, while they run
LWS_WEBHOOK_PORT = 9443
LWS_HEALTH = "127.0.0.1:8081"
# Every daemon's argv names a file under STATE: that tells ours (started with any LLMD_CACHE) from a process that
# reused a pid.
SANDBOX = Sandbox(netns=NETNS, tag="localcluster", state=STATE, marker=str(STATE), kubectl_bin=BIN / "kubectl",
                  kubeconfig=KUBECONFIG)
log, in_netns, running, stop, wait_for, kubectl = (SANDBOX.log, SANDBOX.cmd, SANDBOX.running, SANDBOX.stop,
                                                   SANDBOX.wait_for, SANDBOX.kubectl)


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, **kw)


# --- PKI --------------------------------------------------------------------------------------------------
def openssl(*args):
    run(["openssl", *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def issue_cert(name, subject, sans=None):
    key, csr, crt = PKI / f"{name}.key", PKI / f"{name}.csr", PKI / f"{name}.crt"
    if crt.exists():
        return
    openssl("genrsa", "-out", str(key), "2048")
    openssl("req", "-new", "-key", str(key), "-subj", subject, "-out", str(csr))
    ext = PKI / f"{name}.ext"
    lines = ["basicConstraints=CA:FALSE", "keyUsage=digitalSignature,keyEncipherment",
             "subjectKeyIdentifier=hash", "authorityKeyIdentifier=keyid,issuer"]
    lines.append("extendedKeyUsage=serverAuth,clientAuth")
    if sans:
        lines.append("subjectAltName=" + ",".join(sans))
    ext.write_text("\n".join(lines) + "\n")
    openssl("x509", "-req", "-in", str(csr), "-CA", str(PKI / "ca.crt"), "-CAkey", str(PKI / "ca.key"),
            "-CAcreateserial", "-days", "3650", "-sha256", "-extfile", str(ext), "-out", str(crt))


# What a PKI of this layout holds: a CA with keyUsage and leaves with an authority key identifier, as kubeadm's
# (Python 3.13 verifies strictly, VERIFY_X509_STRICT). A PKI of an older layout is made anew, the cluster with it.
PKI_LAYOUT = "2: strict X.509"


def ensure_pki():
    layout = PKI / "layout"
    if (PKI / "ca.crt").exists() and (not layout.exists() or layout.read_text() != PKI_LAYOUT):
        log("the PKI under %s predates layout %r: wiping the cluster to make it anew" % (PKI, PKI_LAYOUT))
        cmd_wipe(None)
        STATE.mkdir(parents=True, exist_ok=True)
        SANDBOX.ensure_netns(unreachable_default=True)
    PKI.mkdir(parents=True, exist_ok=True)
    if not (PKI / "ca.crt").exists():
        openssl("genrsa", "-out", str(PKI / "ca.key"), "2048")
        openssl("req", "-x509", "-new", "-key", str(PKI / "ca.key"), "-subj", "/CN=llmd-local-ca",
                "-days", "3650", "-sha256", "-out", str(PKI / "ca.crt"),
                "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
                "-addext", "subjectKeyIdentifier=hash")
        (PKI / "layout").write_text(PKI_LAYOUT)
    if not (PKI / "sa.key").exists():
        openssl("genrsa", "-out", str(PKI / "sa.key"), "2048")
        openssl("rsa", "-in", str(PKI / "sa.key"), "-pubout", "-out", str(PKI / "sa.pub"))
    issue_cert("apiserver", "/CN=kube-apiserver", [
        "IP:127.0.0.1", f"IP:{ADVERTISE_ADDRESS}", "IP:10.96.0.1", "DNS:localhost", "DNS:kubernetes",
        "DNS:kubernetes.default", "DNS:kubernetes.default.svc", "DNS:kubernetes.default.svc.cluster.local"])
    issue_cert("admin", "/O=system:masters/CN=kubernetes-admin")
    issue_cert("webhook", "/CN=lws-webhook", ["IP:127.0.0.1", "DNS:localhost"])
    webhook_dir = PKI / "lws-webhook"
    webhook_dir.mkdir(exist_ok=True)
    for src, dst in (("webhook.crt", "tls.crt"), ("webhook.key", "tls.key")):
        (webhook_dir / dst).write_bytes((PKI / src).read_bytes())
    b64 = lambda p: base64.b64encode((PKI / p).read_bytes()).decode()  # noqa: E731
    kubeconfig = {
        "apiVersion": "v1", "kind": "Config", "current-context": "llmd-local", "preferences": {},
        "clusters": [{"name": "llmd-local", "cluster": {
            "server": f"https://127.0.0.1:{API_PORT}", "certificate-authority-data": b64("ca.crt")}}],
        "users": [{"name": "admin", "user": {
            "client-certificate-data": b64("admin.crt"), "client-key-data": b64("admin.key")}}],
        "contexts": [{"name": "llmd-local", "context": {"cluster": "llmd-local", "user": "admin"}}],
    }
    KUBECONFIG.write_text(yaml.safe_dump(kubeconfig))
    KUBECONFIG.chmod(0o600)
    ensure_authn()


def ensure_authn():
    """A static token (random, made here) and the webhook's kubeconfig: the API server asks the tests' webhook
    about any other bearer token, uncached, so a test can accept and later refuse a token."""
    AUTHN.mkdir(exist_ok=True)
    AUTHN.chmod(0o700)
    issue_cert("authn-webhook", "/CN=llmd-authn-webhook", ["IP:127.0.0.1"])
    if not TOKEN_FILE.exists():
        TOKEN_FILE.write_text("%s,llmd-static-user,llmd-static-uid,system:masters\n" % os.urandom(24).hex())
        TOKEN_FILE.chmod(0o600)
    b64 = base64.b64encode((PKI / "ca.crt").read_bytes()).decode()
    (AUTHN / "webhook.kubeconfig").write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "webhook",
        "clusters": [{"name": "authn", "cluster": {"server": f"https://127.0.0.1:{WEBHOOK_PORT}/authenticate",
                                                   "certificate-authority-data": b64}}],
        "users": [{"name": "apiserver", "user": {}}],
        "contexts": [{"name": "webhook", "context": {"cluster": "authn", "user": "apiserver"}}]}))


# --- processes --------------------------------------------------------------------------------------------
def start(name, argv):
    """Start BIN/argv[0]; one running with other flags or another build (another LLMD_CACHE) is restarted."""
    argv = [str(BIN / argv[0]), *argv[1:]]
    argv_file = STATE / "pids" / f"{name}.argv"
    if running(name):
        if argv_file.exists() and argv_file.read_text() == "\0".join(argv):
            return
        log(f"{name} runs with other flags: restarting it")
        stop(name)
    SANDBOX.start(name, argv)
    argv_file.write_text("\0".join(argv))


def netns_probe(url, cafile=None, cert=None):
    """GET url from inside the namespace (the cluster's loopback is not this process's loopback)."""
    cmd = ["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "3", url]
    if cafile:
        cmd += ["--cacert", str(cafile)]
    if cert:
        cmd += ["--cert", str(cert[0]), "--key", str(cert[1])]
    res = subprocess.run(in_netns(cmd), capture_output=True, text=True)
    return res.stdout.strip() == "200"


def api_ready():
    return netns_probe(f"https://127.0.0.1:{API_PORT}/readyz", PKI / "ca.crt",
                       (PKI / "admin.crt", PKI / "admin.key"))


def start_control_plane():
    start("etcd", ["etcd", "--name=llmd-local", f"--data-dir={STATE / 'etcd'}",
                   "--listen-client-urls=http://127.0.0.1:2379", "--advertise-client-urls=http://127.0.0.1:2379",
                   "--listen-peer-urls=http://127.0.0.1:2380", "--initial-advertise-peer-urls=http://127.0.0.1:2380",
                   "--initial-cluster=llmd-local=http://127.0.0.1:2380", "--listen-metrics-urls=http://127.0.0.1:2381",
                   "--unsafe-no-fsync", "--quota-backend-bytes=4294967296"])
    wait_for("etcd", lambda: netns_probe("http://127.0.0.1:2381/health"), daemon="etcd")
    start("kube-apiserver", [
        "kube-apiserver", "--etcd-servers=http://127.0.0.1:2379", "--bind-address=127.0.0.1",
        f"--secure-port={API_PORT}", f"--advertise-address={ADVERTISE_ADDRESS}",
        f"--tls-cert-file={PKI / 'apiserver.crt'}", f"--tls-private-key-file={PKI / 'apiserver.key'}",
        f"--client-ca-file={PKI / 'ca.crt'}", "--authorization-mode=Node,RBAC",
        "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
        f"--service-account-key-file={PKI / 'sa.pub'}", f"--service-account-signing-key-file={PKI / 'sa.key'}",
        "--service-cluster-ip-range=10.96.0.0/16", "--allow-privileged=true", "--endpoint-reconciler-type=none",
        "--enable-priority-and-fairness=false", "--profiling=false",
        f"--token-auth-file={TOKEN_FILE}", f"--authentication-token-webhook-config-file={AUTHN / 'webhook.kubeconfig'}",
        "--authentication-token-webhook-version=v1", "--authentication-token-webhook-cache-ttl=0s"])
    wait_for("kube-apiserver /readyz", api_ready, timeout=180, daemon="kube-apiserver")
    common = [f"--kubeconfig={KUBECONFIG}", f"--authentication-kubeconfig={KUBECONFIG}",
              f"--authorization-kubeconfig={KUBECONFIG}", "--leader-elect=false", "--bind-address=127.0.0.1"]
    start("kube-controller-manager", [
        "kube-controller-manager", *common, f"--service-account-private-key-file={PKI / 'sa.key'}",
        f"--root-ca-file={PKI / 'ca.crt'}", f"--cluster-signing-cert-file={PKI / 'ca.crt'}",
        f"--cluster-signing-key-file={PKI / 'ca.key'}", "--controllers=*,-nodeipam"])
    start("kube-scheduler", ["kube-scheduler", *common])
    # kwok's own stages, then this project's fault-injection stages (tests/support/cluster/kwok).
    stages = [str(p) for d in (DATA / "kwok", HERE / "kwok") for p in sorted(d.glob("*.yaml"))]
    start("kwok", ["kwok", f"--kubeconfig={KUBECONFIG}", "--manage-all-nodes=true", "--cidr=10.0.0.0/16",
                   "--node-ip=192.0.2.10", "--server-address=127.0.0.1:10247", "--node-lease-duration-seconds=40",
                   *[f"--config={s}" for s in stages]])


# --- LWS controller and its webhooks ----------------------------------------------------------------------
LWS_VERSION_FILE = STATE / "lws-version"    # the controller `lws VERSION` chose; `up` keeps it
BASE_LWS = "0.7.0"                           # tests/support/cluster/versions.env LWS_VERSION


def lws_version():
    return LWS_VERSION_FILE.read_text().strip() if LWS_VERSION_FILE.exists() else BASE_LWS


def ds_webhook(version):
    """The chart's DisaggregatedSet validating webhook (templates/webhook/webhook.yaml with
    enableDisaggregatedSet=true), rendered by helm from the release's own chart; None before 0.9.0."""
    chart = DATA / "lws" / f"chart-{version}"
    if not (chart / "crds" / "disaggregatedset.x-k8s.io_disaggregatedsets.yaml").exists():
        return None
    out = run([str(BIN / "helm"), "template", "lws", str(chart), "--namespace=lws-system",
               "--set=enableDisaggregatedSet=true", "--show-only=templates/webhook/webhook.yaml"],
              capture_output=True, text=True).stdout
    hooks = [h for d in yaml.safe_load_all(out) if d and d["kind"] == "ValidatingWebhookConfiguration"
             for h in d["webhooks"] if h["name"] == "vdisaggregatedset.kb.io"]
    return hooks[0]


def lws_webhook_configs(version=BASE_LWS):
    """The upstream webhook manifests, with the pod objectSelector patches and loopback URLs."""
    docs = list(yaml.safe_load_all((DATA / "lws" / "manifests.yaml").read_text()))
    extra = ds_webhook(version)
    if extra:
        docs[1 if docs[1]["kind"] == "ValidatingWebhookConfiguration" else 0]["webhooks"].append(extra)
    patches = {"MutatingWebhookConfiguration": "mutating-patch.yaml",
               "ValidatingWebhookConfiguration": "validating-patch.yaml"}
    ca = base64.b64encode((PKI / "ca.crt").read_bytes()).decode()
    for doc in docs:
        for op in yaml.safe_load((DATA / "lws" / patches[doc["kind"]]).read_text()):
            index = int(op["path"].rsplit("/", 1)[1])
            doc["webhooks"][index] = op["value"]
        doc["metadata"]["name"] = "lws-" + doc["metadata"]["name"]
        for hook in doc["webhooks"]:
            path = hook["clientConfig"]["service"]["path"]
            hook["clientConfig"] = {"url": f"https://127.0.0.1:{LWS_WEBHOOK_PORT}{path}", "caBundle": ca}
            hook["timeoutSeconds"] = 10
    return docs


def start_lws():
    version = lws_version()
    crd_dir = DATA / "lws" if version == BASE_LWS else DATA / "lws" / f"chart-{version}" / "crds"
    crds = sorted(crd_dir.glob("*.x-k8s.io_*.yaml"))
    kubectl("apply", "--server-side", "--force-conflicts", *[f"-f={c}" for c in crds])
    if not any("disaggregatedset" in c.name for c in crds):   # back from 0.9.0: nothing serves it any more
        kubectl("delete", "crd", "disaggregatedsets.disaggregatedset.x-k8s.io", "--ignore-not-found", check=False)
    wait_for("LWS CRD Established", lambda: kubectl(
        "wait", "--for=condition=Established", "--timeout=5s", "crd/leaderworkersets.leaderworkerset.x-k8s.io",
        check=False).returncode == 0, timeout=60)
    config = {
        "apiVersion": "config.lws.x-k8s.io/v1alpha1", "kind": "Configuration",
        "leaderElection": {"leaderElect": False}, "internalCertManagement": {"enable": False},
        "webhook": {"host": "127.0.0.1", "port": LWS_WEBHOOK_PORT, "certDir": str(PKI / "lws-webhook")},
        "metrics": {"bindAddress": "0"}, "health": {"healthProbeBindAddress": LWS_HEALTH},
    }
    (STATE / "lws-config.yaml").write_text(yaml.safe_dump(config))
    binary = "lws-manager" if version == BASE_LWS else f"lws-manager-{version}"
    start("lws", [binary, f"--config={STATE / 'lws-config.yaml'}", f"--kubeconfig={KUBECONFIG}"])
    wait_for("LWS controller health", lambda: netns_probe(f"http://{LWS_HEALTH}/readyz"), daemon="lws")
    wait_for("LWS webhook server", lambda: netns_probe(
        f"https://127.0.0.1:{LWS_WEBHOOK_PORT}/healthz-none", PKI / "ca.crt") or _webhook_listening(), daemon="lws")
    configs = lws_webhook_configs(version)
    if any(h["name"] == "vdisaggregatedset.kb.io" for c in configs for h in c["webhooks"]):
        # its health checks pass before it registers its webhooks: 404 until then
        wait_for("LWS DisaggregatedSet webhook", lambda: _webhook_listening(
            "/validate-disaggregatedset-x-k8s-io-v1-disaggregatedset", ok=lambda code: code not in ("", "000", "404")),
            daemon="lws")
    kubectl("apply", "--server-side", "--force-conflicts", "-f", "-", stdin=yaml.safe_dump_all(configs))


def _webhook_listening(path="/", ok=lambda code: code not in ("", "000")):
    res = subprocess.run(in_netns(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "2",
                                   "-X", "POST" if path != "/" else "GET", "--cacert", str(PKI / "ca.crt"),
                                   f"https://127.0.0.1:{LWS_WEBHOOK_PORT}{path}"]), capture_output=True, text=True)
    return ok(res.stdout.strip())


# --- nodes ------------------------------------------------------------------------------------------------
def node_manifests():
    spec = yaml.safe_load((HERE / "nodes.yaml").read_text())
    base = spec["defaults"]
    for node in spec["nodes"]:
        labels = {**base.get("labels", {}), **node.get("labels", {}), "kubernetes.io/hostname": node["name"]}
        capacity = {**base.get("capacity", {}), **node.get("capacity", {})}
        yield {"apiVersion": "v1", "kind": "Node",
               "metadata": {"name": node["name"], "labels": labels,
                            "annotations": {**base.get("annotations", {}), **node.get("annotations", {})}},
               "status": {"capacity": capacity, "allocatable": capacity}}


def ensure_nodes():
    manifests = list(node_manifests())
    existing = kubectl("get", "nodes", "-o", "name").stdout.split()
    missing = [m for m in manifests if f"node/{m['metadata']['name']}" not in existing]
    if missing:
        kubectl("create", "-f", "-", stdin=yaml.safe_dump_all(missing))
    wait_for(f"{len(manifests)} nodes Ready", lambda: kubectl(
        "wait", "--for=condition=Ready", "--timeout=5s", "nodes", "--all", check=False).returncode == 0, timeout=120)
    # The ServiceAccount admission plugin rejects pods until the token controller made `default`.
    wait_for("default ServiceAccount", lambda: kubectl("get", "sa", "default", check=False).returncode == 0)


CANARY = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": f"llmd-canary-{os.getpid()}", "namespace": "default"},
          "spec": {"containers": [{"name": "pause", "image": "registry.k8s.io/pause:3.10"}],
                   "tolerations": [{"operator": "Exists"}], "terminationGracePeriodSeconds": 0}}


def canary_runs(timeout):
    deadline = time.time() + timeout
    while time.time() < deadline:
        res = kubectl("get", "pod", CANARY["metadata"]["name"], "-o", "jsonpath={.status.phase}", check=False)
        if res.stdout.strip() == "Running":
            return True
        time.sleep(1)
    return False


def ensure_pods_run():
    """Up means a new pod gets scheduled and run. After an API server restart the scheduler's and kwok's
    watches come back with their own backoff (seen: minutes); a canary pod proves they did, and the two
    stateless components are restarted when they have not within 30 s."""
    kubectl("create", "-f", "-", stdin=json.dumps(CANARY))
    try:
        if canary_runs(30):
            return
        node = kubectl("get", "pod", CANARY["metadata"]["name"], "-o", "jsonpath={.spec.nodeName}", check=False)
        where = f"scheduled to {node.stdout.strip()}, not run by kwok" if node.stdout.strip() else "not scheduled"
        log(f"a new pod is {where} after 30s: restarting kube-scheduler and kwok")
        for name in ("kube-scheduler", "kwok"):
            stop(name)
        start_control_plane()
        if not canary_runs(120):
            pod = kubectl("get", "pod", CANARY["metadata"]["name"], "-o", "wide", check=False).stdout
            sys.exit(f"a new pod is not scheduled and run 150s after the cluster came up:\n{pod}see {STATE / 'logs'}")
    finally:
        kubectl("delete", "pod", CANARY["metadata"]["name"], "--ignore-not-found", "--wait=false", check=False)


# --- commands ---------------------------------------------------------------------------------------------
COMPONENTS = ["lws", "kwok", "kube-scheduler", "kube-controller-manager", "kube-apiserver", "etcd"]


def cmd_up(_args):
    t0 = time.time()
    missing = [b for b in ("etcd", "kube-apiserver", "kubectl", "kwok", "lws-manager") if not (BIN / b).exists()]
    if missing:
        sys.exit(f"missing binaries in {BIN}: {missing}; run tests/support/cluster/build.sh first")
    STATE.mkdir(parents=True, exist_ok=True)
    SANDBOX.ensure_netns(unreachable_default=True)
    ensure_pki()
    start_control_plane()
    start_lws()
    ensure_nodes()
    ensure_pods_run()
    log(f"cluster up in {time.time() - t0:.1f}s; KUBECONFIG={KUBECONFIG} (reachable only inside netns {NETNS})")


def cmd_down(_args):
    for name in COMPONENTS:
        stop(name)


def cmd_lws(args):
    """Run the LWS controller of another version (its CRDs and webhooks with it); `up` keeps that choice."""
    if args.version != BASE_LWS and not (BIN / f"lws-manager-{args.version}").exists():
        sys.exit(f"no lws-manager-{args.version} in {BIN}; versions.env LWS_UPGRADE_VERSIONS lists the builds")
    if args.version == BASE_LWS:
        LWS_VERSION_FILE.unlink(missing_ok=True)
    else:
        LWS_VERSION_FILE.write_text(args.version)
    start_lws()
    log(f"LWS controller {args.version} running")


def cmd_stop(args):
    """Stop one component (the fault tests do); `up` starts it again."""
    stop(args.component)


def cmd_wipe(args):
    SANDBOX.wipe(lambda: cmd_down(args))


def cmd_status(_args):
    ok = True
    for name in reversed(COMPONENTS):
        pid = running(name)
        ok &= bool(pid)
        print(f"{name:25} {'running pid ' + str(pid) if pid else 'stopped'}")
    sys.exit(0 if ok else 1)


def main():
    def stop_command(sub):
        stop = sub.add_parser("stop")
        stop.add_argument("component", choices=COMPONENTS)
        stop.set_defaults(fn=cmd_stop)
        lws = sub.add_parser("lws")
        lws.add_argument("version")
        lws.set_defaults(fn=cmd_lws)
    cli(__doc__, {"up": cmd_up, "down": cmd_down, "wipe": cmd_wipe, "status": cmd_status}, SANDBOX,
        {"KUBECONFIG": str(KUBECONFIG), "K8S_AUTH_KUBECONFIG": str(KUBECONFIG), "PATH": f"{BIN}:{os.environ['PATH']}"},
        more=stop_command)


if __name__ == "__main__":
    main()
