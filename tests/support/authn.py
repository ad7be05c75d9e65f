"""Loopback servers the credential tests run beside the local cluster's API server:

- `Authn`: the API server's token webhook (TokenReview, --authentication-token-webhook-config-file, no cache),
  accepting the tokens a test hands out and refusing them once revoked, and an OpenID issuer (discovery and a
  refresh-token grant) for the kubeconfig `oidc` auth-provider. HTTPS with a certificate of the cluster's CA.
- `ConnectProxy`: an HTTP CONNECT proxy that records where it tunnelled.

Both live in the test process, inside the cluster's network namespace, for one test module."""
import base64
import json
import os
import select
import socket
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

STATE = Path(os.environ.get("LLMD_CLUSTER_DIR", "/var/tmp/llmd-wide-ep/cluster"))
PKI = STATE / "pki"
WEBHOOK_PORT = 9444  # tests/support/cluster/localcluster.py points the API server here
ISSUER = "https://127.0.0.1:%d" % WEBHOOK_PORT


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jwt(claims):
    """A JWT-shaped token (the client reads its expiry; the webhook, not a signature, decides)."""
    return ".".join([b64url(json.dumps({"alg": "none", "typ": "JWT"}).encode()),
                     b64url(json.dumps(claims).encode()), b64url(os.urandom(16))])


def secret(prefix):
    return "%s-%s" % (prefix, os.urandom(12).hex())


class Authn:
    def __init__(self):
        self.accepted = {}        # token -> user name
        self.reviews = []         # (token, authenticated) in order
        self.refreshes = []       # refresh tokens presented to the issuer
        self.refresh_tokens = {}  # refresh token -> the id token it yields
        self.lock = threading.Lock()
        authn = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _json(self, code, doc):
                body = json.dumps(doc).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                if self.path.split("?")[0] == "/.well-known/openid-configuration":
                    self._json(200, {"issuer": ISSUER, "token_endpoint": ISSUER + "/token",
                                     "authorization_endpoint": ISSUER + "/authorize", "jwks_uri": ISSUER + "/keys"})
                else:
                    self._json(404, {})

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                path = self.path.split("?")[0]  # the API server adds ?timeout=
                if path == "/authenticate":
                    review = json.loads(body)
                    token = review["spec"]["token"]
                    with authn.lock:
                        user = authn.accepted.get(token)
                        authn.reviews.append((token, user is not None))
                    status = {"authenticated": True, "user": {"username": user, "groups": ["system:masters"]}} \
                        if user else {"authenticated": False}
                    self._json(200, dict(review, status=status))
                elif path == "/token":
                    form = dict(p.split("=", 1) for p in body.decode().split("&") if "=" in p)
                    with authn.lock:
                        authn.refreshes.append(form.get("refresh_token"))
                        issued = authn.refresh_tokens.pop(form.get("refresh_token"), None)
                    if not issued:
                        self._json(400, {"error": "invalid_grant"})
                        return
                    id_token, next_refresh = issued
                    self._json(200, {"access_token": secret("access"), "token_type": "Bearer", "expires_in": 3600,
                                     "refresh_token": next_refresh, "id_token": id_token})
                else:
                    self._json(404, {})

        self.server = ThreadingHTTPServer(("127.0.0.1", WEBHOOK_PORT), Handler)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(PKI / "authn-webhook.crt", PKI / "authn-webhook.key")
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def token(self, prefix, user="llmd-webhook-user"):
        """A new token the API server accepts (through this webhook) until revoked."""
        value = secret(prefix)
        with self.lock:
            self.accepted[value] = user
        return value

    def revoke(self, token):
        with self.lock:
            self.accepted.pop(token, None)

    def refused(self, token=None):
        with self.lock:
            return [t for t, ok in self.reviews if not ok and (token is None or t == token)]

    def presented(self, token):
        with self.lock:
            return any(t == token for t, ok in self.reviews)

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class ConnectProxy:
    """HTTP CONNECT only: the API server's TLS runs end to end through it."""

    def __init__(self):
        self.tunnels = []
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.url = "http://127.0.0.1:%d" % self.sock.getsockname()[1]
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.closed:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client):
        try:
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = client.recv(4096)
                if not chunk:
                    return
                head += chunk
            method, target = head.split(b" ")[:2]
            if method != b"CONNECT":
                client.sendall(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
                return
            host, port = target.decode().rsplit(":", 1)
            upstream = socket.create_connection((host, int(port)), timeout=10)
            self.tunnels.append(target.decode())
            client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            pair = {client: upstream, upstream: client}
            while True:
                ready, _, _ = select.select(list(pair), [], [], 30)
                if not ready:
                    return
                for s in ready:
                    data = s.recv(65536)
                    if not data:
                        return
                    pair[s].sendall(data)
        except OSError:
            return
        finally:
            client.close()

    def close(self):
        self.closed = True
        self.sock.close()


def wait_until(predicate, timeout=60, what="condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError("timed out waiting for %s" % what)
