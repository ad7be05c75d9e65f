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

from ansible_collections.llmd.wide_ep.plugins.module_utils import manifests
from ansible_collections.llmd.wide_ep.plugins.module_utils.k8s import lws_pods
from ansible_collections.llmd.wide_ep.plugins.module_utils.kubeconfig import ApiError, K8sError

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
                text = client.conn.request(method, self.proxy + path, body=body, raw=True, timeout=timeout)
                return Reply(200, text, seconds=time.monotonic() - start)
            except ApiError as exc:
                text = exc.body.decode("utf-8", "replace") if isinstance(exc.body, bytes) else str(exc.body)
                return Reply(exc.status, text, seconds=time.monotonic() - start)
            except K8sError as exc:
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


def gateway(client, namespace):
    return client.get({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
                       "metadata": {"name": manifests.GATEWAY_NAME, "namespace": namespace}})


def _gateway_ways_in(client, namespace):
    """(the Gateway's addresses, the Services carrying its name label)."""
    gw = gateway(client, namespace)
    addresses = [a["value"] for a in (gw or {}).get("status", {}).get("addresses") or []]
    services = client.request("GET", "/api/v1/namespaces/%s/services" % namespace,
                              query={"labelSelector": "%s=%s" % (GATEWAY_LABEL, manifests.GATEWAY_NAME)})["items"]
    return addresses, services


def gateway_targets(client, namespace, endpoint=None):
    """Where to send requests, best first: the user's endpoint alone, else the Gateway's address, then its
    Service through the API server (for controllers outside the cluster network)."""
    if endpoint:
        return [Target("endpoint %s" % endpoint, url=endpoint.rstrip("/"))]
    addresses, services = _gateway_ways_in(client, namespace)
    targets = [Target("Gateway address %s" % a, url="http://%s:80" % a) for a in addresses[:1]]
    for svc in services:
        ports = [p["port"] for p in svc["spec"].get("ports", [])]
        port = 80 if 80 in ports else (ports or [80])[0]
        name = svc["metadata"]["name"]
        targets.append(Target("Service %s:%s via the API server" % (name, port),
                              proxy="/api/v1/namespaces/%s/services/http:%s:%s/proxy" % (namespace, name, port)))
    return targets


def gateway_url_in_cluster(client, namespace):
    """The URL a pod in the cluster uses for the gateway: its address, else its Service's DNS name."""
    addresses, services = _gateway_ways_in(client, namespace)
    if addresses:
        return "http://%s:80" % addresses[0]
    if services:
        return "http://%s.%s.svc:80" % (services[0]["metadata"]["name"], namespace)
    return None


def role_pods(client, namespace, role):
    return lws_pods(client, namespace, manifests.LWS_NAME[role])


def pod_target(namespace, pod, port):
    name = pod["metadata"]["name"]
    return Target("pod %s:%s" % (name, port), proxy="/api/v1/namespaces/%s/pods/%s:%s/proxy" % (namespace, name, port))


def served_models(reply):
    """Model ids from a /v1/models reply, or None when the reply is not one."""
    doc = reply.json() if reply.ok else None
    if not isinstance(doc, dict) or not isinstance(doc.get("data"), list):
        return None
    return [m.get("id") for m in doc["data"] if isinstance(m, dict)]
