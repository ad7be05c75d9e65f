# Copyright: llm-d wide-EP collection contributors
# Apache-2.0
"""How the controller reaches the serving path: the gateway (a URL the user gives, the Gateway's address, or
its Service through the API server's proxy) and each model-server pod (through the API server's pod proxy, so
no pod network access is needed on the controller). Used by the smoke request and the benchmark."""
from __future__ import annotations

import json
import time
from urllib.error import HTTPError, URLError

from ansible.module_utils.urls import open_url

from ansible_collections.llmd.wide_ep.plugins.module_utils.k8s.client import proxy_path
from ansible_collections.llmd.wide_ep.plugins.module_utils.k8s.errors import K8sError
from ansible_collections.llmd.wide_ep.plugins.module_utils.k8s.lws import lws_pods

GATEWAY_LABEL = "gateway.networking.k8s.io/gateway-name"


class Reply:
    """One HTTP exchange: status (None when nothing answered), body text, error text, seconds taken."""

    def __init__(self, status=None, body="", error=None, seconds=0.0):
        self.status, self.body, self.error, self.seconds = status, body, error, seconds

    @property
    def ok(self):
        return self.status is not None and 200 <= self.status < 300

    def json(self):
        try:
            return json.loads(self.body)
        except ValueError:
            return None

    def describe(self):
        if self.status is None:
            return self.error or "no answer"
        doc = self.json()
        if isinstance(doc, dict) and doc.get("kind") == "Status":  # the API server's proxy speaking
            return "HTTP %s from the API server proxy: %s" % (self.status, doc.get("message", ""))
        text = " ".join(self.body.split())[:200]
        return "HTTP %s%s" % (self.status, ": " + text if text else "")


class Target:
    """A base URL (direct) or an API server proxy path prefix (proxied through `client`)."""

    def __init__(self, label, url=None, proxy=None):
        self.label, self.url, self.proxy = label, url, proxy

    def call(self, client, method, path, body=None, timeout=30):
        start = time.monotonic()
        if self.proxy is not None:
            try:
                text = client.proxy(method, self.proxy, path, body=body, timeout=timeout)
                return Reply(200, text, seconds=time.monotonic() - start)
            except K8sError as exc:
                if exc.status is not None:
                    return Reply(exc.status, exc.body, seconds=time.monotonic() - start)
                if "timed out" in str(exc):  # the API server waits on the pod; the pod is what is slow
                    return Reply(error="no answer in %ss through the API server proxy" % timeout,
                                 seconds=time.monotonic() - start)
                return Reply(error=str(exc), seconds=time.monotonic() - start)
        data = json.dumps(body) if body is not None else None
        try:  # Ansible's HTTP client: proxies from the environment, its TLS handling; never a proxy's credentials
            resp = open_url(self.url + path, data=data, method=method, timeout=timeout, follow_redirects="none",
                            headers={"Content-Type": "application/json", "Accept": "application/json"})
            with resp:
                return Reply(resp.status, resp.read().decode("utf-8", "replace"), seconds=time.monotonic() - start)
        except HTTPError as exc:
            return Reply(exc.code, exc.read().decode("utf-8", "replace"), seconds=time.monotonic() - start)
        except (TimeoutError, URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            return Reply(error="cannot connect to %s: %s" % (self.url, reason), seconds=time.monotonic() - start)


def gateway(client, gateway_ref):
    """The live Gateway of the plan's reference (None without one)."""
    return client.get(gateway_ref) if gateway_ref else None


def _gateway_ways_in(client, gateway_ref):
    """(the Gateway's addresses, the Services carrying its name label)."""
    if not gateway_ref:
        return [], []
    gw = gateway(client, gateway_ref)
    meta = gateway_ref["metadata"]
    addresses = [a["value"] for a in (gw or {}).get("status", {}).get("addresses") or []]
    services = client.list("v1", "Service", meta["namespace"],
                           label_selector="%s=%s" % (GATEWAY_LABEL, meta["name"]))
    return addresses, services


STANDALONE_PORT = 80


def service_target(service_ref, port):
    meta = service_ref["metadata"]
    return Target("Service %s:%s via the API server" % (meta["name"], port),
                  proxy=proxy_path(meta["namespace"], "services", meta["name"], port, scheme="http"))


def gateway_targets(client, gateway_ref, endpoint=None, standalone=None):
    """Where to send requests, best first: the user's endpoint alone, else the Gateway's address, then its
    Service through the API server (for controllers outside the cluster network); with the standalone router, its
    Service's port 80 through the API server."""
    if endpoint:
        return [Target("endpoint %s" % endpoint, url=endpoint.rstrip("/"))]
    if standalone:
        return [service_target(standalone, STANDALONE_PORT)]
    addresses, services = _gateway_ways_in(client, gateway_ref)
    targets = [Target("Gateway address %s" % a, url="http://%s:80" % a) for a in addresses[:1]]
    for svc in services:
        ports = [p["port"] for p in svc["spec"].get("ports", [])]
        targets.append(service_target(svc, 80 if 80 in ports else (ports or [80])[0]))
    return targets


def gateway_url_in_cluster(client, gateway_ref, standalone=None):
    """The URL a pod in the cluster uses for the gateway: its address, else its Service's DNS name; with the
    standalone router, its Service's."""
    if standalone:
        meta = standalone["metadata"]
        return "http://%s.%s.svc:%d" % (meta["name"], meta["namespace"], STANDALONE_PORT)
    addresses, services = _gateway_ways_in(client, gateway_ref)
    if addresses:
        return "http://%s:80" % addresses[0]
    if services:
        meta = services[0]["metadata"]
        return "http://%s.%s.svc:80" % (meta["name"], meta["namespace"])
    return None


def role_pods(client, lws_ref):
    meta = lws_ref["metadata"]
    return lws_pods(client, meta["namespace"], meta["name"])


def pod_target(pod, port):
    name, namespace = pod["metadata"]["name"], pod["metadata"]["namespace"]
    return Target("pod %s:%s" % (name, port), proxy=proxy_path(namespace, "pods", name, port))


def served_models(reply):
    """Model ids from a /v1/models reply, or None when the reply is not one."""
    doc = reply.json() if reply.ok else None
    if not isinstance(doc, dict) or not isinstance(doc.get("data"), list):
        return None
    return [m.get("id") for m in doc["data"] if isinstance(m, dict)]
