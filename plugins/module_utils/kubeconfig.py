# Copyright: llm-d wide-EP collection contributors
# Apache-2.0
"""Kubeconfig credentials and one keep-alive HTTPS connection to the API server, on the standard library alone.

Importing the `kubernetes` package costs about 0.6 s per module call, more than the API requests of a typical
call; the modules only need authenticated JSON over HTTPS. Supported: client certificates (file or data),
bearer tokens (token, tokenFile), basic auth, exec credential plugins (gke-gcloud-auth-plugin, aws, ...), the
in-cluster service account, CA bundles and insecure-skip-tls-verify. Credentials are never logged.
"""
from __future__ import annotations

import base64
import http.client
import json
import os
import ssl
import subprocess
import tempfile
import time
from urllib.parse import urlencode, urlsplit

from ansible_collections.llmd.wide_ep.plugins.module_utils import yamlout

IN_CLUSTER_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
# The API server names the manager of a non-apply write (the rollout lease, created objects) after the user
# agent's first segment: "llmd.wide_ep", like the server-side applies, so teardown can tell what we wrote.
USER_AGENT = "llmd.wide_ep/0.3.0"
RESTART_WINDOW = 60  # seconds a server that answered before may be away (a restart) before calls fail


class K8sError(Exception):
    pass


class ApiError(Exception):
    def __init__(self, status, body):
        super().__init__("HTTP %s" % status)
        self.status = status
        self.body = body.decode("utf-8", "replace") if isinstance(body, bytes) else body


def _named(items, name, what, source):
    for item in items or []:
        if item.get("name") == name:
            return item.get(what) or {}
    raise K8sError("%s %r not found in %s" % (what, name, source))


def _path(base_dir, value):
    return value if os.path.isabs(value) else os.path.join(base_dir, value)


def resolve_kubeconfig(kubeconfig=None):
    """The kubeconfig file to use, or None for the in-cluster service account."""
    candidates = [kubeconfig, os.environ.get("K8S_AUTH_KUBECONFIG")]
    candidates += (os.environ.get("KUBECONFIG") or "").split(os.pathsep)
    for path in candidates:
        if path:
            path = os.path.expanduser(path)
            if not os.path.exists(path):
                raise K8sError("kubeconfig %s does not exist" % path)
            return path
    default = os.path.expanduser("~/.kube/config")
    if os.path.exists(default):
        return default
    if os.environ.get("KUBERNETES_SERVICE_HOST"):
        return None
    raise K8sError("no Kubernetes credentials: set kubeconfig (wide_ep_kubeconfig), K8S_AUTH_KUBECONFIG or "
                   "KUBECONFIG, or run in a pod with a service account")


class Connection:
    def __init__(self, kubeconfig=None, context=None):
        self.requests = 0
        self.answered = False  # set once the server has answered: later refusals mean a restart
        self.headers = {}
        self._tmp = []
        path = resolve_kubeconfig(kubeconfig)
        if path is None:
            self._in_cluster()
        else:
            self._from_file(path, context)
        split = urlsplit(self.server)
        self.prefix = split.path.rstrip("/")
        self.host, self.port, self.scheme = split.hostname, split.port, split.scheme
        self.conn = None

    # --- credentials ------------------------------------------------------------------------------------
    def _in_cluster(self):
        host, port = os.environ["KUBERNETES_SERVICE_HOST"], os.environ.get("KUBERNETES_SERVICE_PORT", "443")
        self.server = "https://%s:%s" % ("[%s]" % host if ":" in host else host, port)
        self.ssl = ssl.create_default_context(cafile=os.path.join(IN_CLUSTER_DIR, "ca.crt"))
        with open(os.path.join(IN_CLUSTER_DIR, "token")) as fh:
            self.headers["Authorization"] = "Bearer " + fh.read().strip()

    def _from_file(self, path, context):
        try:
            with open(path) as fh:
                cfg = yamlout.safe_load(fh) or {}
        except (OSError, yamlout.YAMLError) as exc:
            raise K8sError("cannot read kubeconfig %s: %s" % (path, exc)) from None
        base = os.path.dirname(os.path.abspath(path))
        context = context or cfg.get("current-context")
        if not context:
            raise K8sError("kubeconfig %s has no current-context; set context" % path)
        ctx = _named(cfg.get("contexts"), context, "context", path)
        cluster = _named(cfg.get("clusters"), ctx.get("cluster"), "cluster", path)
        user = _named(cfg.get("users"), ctx.get("user"), "user", path) if ctx.get("user") else {}
        self.server = cluster.get("server") or ""
        if not self.server:
            raise K8sError("cluster %r in %s has no server" % (ctx.get("cluster"), path))
        if cluster.get("insecure-skip-tls-verify"):
            self.ssl = ssl._create_unverified_context()  # the user's explicit choice in their kubeconfig
        elif cluster.get("certificate-authority-data"):
            self.ssl = ssl.create_default_context(
                cadata=base64.b64decode(cluster["certificate-authority-data"]).decode())
        elif cluster.get("certificate-authority"):
            self.ssl = ssl.create_default_context(cafile=_path(base, cluster["certificate-authority"]))
        else:
            self.ssl = ssl.create_default_context()
        if user.get("exec"):
            user = dict(user, **self._exec(user["exec"]))
        cert, key = self._material(user, "client-certificate", base), self._material(user, "client-key", base)
        if cert and key:
            self.ssl.load_cert_chain(cert, key)
        self._cleanup()
        token = user.get("token")
        if not token and user.get("tokenFile"):
            with open(_path(base, user["tokenFile"])) as fh:
                token = fh.read().strip()
        if token:
            self.headers["Authorization"] = "Bearer " + token
        elif user.get("username"):
            pair = "%s:%s" % (user["username"], user.get("password", ""))
            self.headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()

    def _material(self, user, key, base):
        if user.get(key + "-data"):
            fd, name = tempfile.mkstemp(prefix="llmd-k8s-")
            with os.fdopen(fd, "wb") as fh:
                data = user[key + "-data"]
                fh.write(data.encode() if "-----BEGIN" in data else base64.b64decode(data))
            self._tmp.append(name)
            return name
        return _path(base, user[key]) if user.get(key) else None

    def _cleanup(self):
        for name in self._tmp:
            os.unlink(name)
        self._tmp = []

    @staticmethod
    def _exec(spec):
        env = dict(os.environ, **{e["name"]: e["value"] for e in spec.get("env") or []})
        try:
            out = subprocess.run([spec["command"], *(spec.get("args") or [])], env=env, capture_output=True,
                                 text=True, timeout=60, check=True).stdout
            status = json.loads(out).get("status", {})
        except (OSError, subprocess.SubprocessError, ValueError) as exc:
            raise K8sError("credential plugin %s failed: %s" % (spec.get("command"), exc)) from None
        creds = {}
        if status.get("token"):
            creds["token"] = status["token"]
        if status.get("clientCertificateData"):
            creds["client-certificate-data"] = status["clientCertificateData"]
            creds["client-key-data"] = status["clientKeyData"]
        return creds

    # --- HTTP -------------------------------------------------------------------------------------------
    def _connect(self):
        if self.scheme == "https":
            return http.client.HTTPSConnection(self.host, self.port or 443, context=self.ssl, timeout=60)
        return http.client.HTTPConnection(self.host, self.port or 80, timeout=60)

    def request(self, method, path, body=None, query=None, content_type="application/json", raw=False,
                timeout=None):
        """One API request; `timeout` (seconds) bounds this request alone, e.g. a proxied call to a pod."""
        url = self.prefix + path + ("?" + urlencode(query) if query else "")
        headers = dict(self.headers, Accept="application/json", **{"User-Agent": USER_AGENT})
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = content_type
        retried, deadline = False, None
        while True:
            try:
                if self.conn is None:
                    self.conn = self._connect()
                self.requests += 1
                self.conn.timeout = timeout or 60
                if self.conn.sock is not None:
                    self.conn.sock.settimeout(self.conn.timeout)
                self.conn.request(method, url, body=data, headers=headers)
                resp = self.conn.getresponse()
                data_in = resp.read()
                # Right after a restart the server can answer 503 until its storage is ready (not a proxy's 503).
                if resp.status != 503 or not self.answered or "/proxy" in path:
                    break
                error = "HTTP 503 %s" % data_in[:200]
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError,
                    http.client.CannotSendRequest, ConnectionRefusedError) as exc:
                self.conn = None
                if not self.answered:  # never reached: a dropped keep-alive gets one retry, a refusal none
                    if retried or isinstance(exc, ConnectionRefusedError):
                        raise K8sError("cannot reach the Kubernetes API server %s: %s" % (self.server, exc)) from None
                    retried = True
                    continue
                error = exc
            except (OSError, ssl.SSLError) as exc:
                self.conn = None
                raise K8sError("cannot reach the Kubernetes API server %s: %s" % (self.server, exc)) from None
            # The server answered earlier in this call, so it is restarting: every request the modules send is
            # idempotent (GET, server-side apply, DELETE) or compare-and-swap (the rollout lease, which checks a
            # conflict against its own earlier write), so wait for it and send the request again.
            deadline = deadline or time.time() + RESTART_WINDOW
            if time.time() > deadline:
                raise K8sError("lost the Kubernetes API server %s for %ss: %s" % (
                    self.server, RESTART_WINDOW, error)) from None
            time.sleep(1)
        self.answered = True
        if resp.status >= 400:
            raise ApiError(resp.status, data_in)
        if raw:
            return data_in.decode("utf-8", "replace")
        return json.loads(data_in) if data_in else {}
