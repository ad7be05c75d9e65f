# Copyright: llm-d wide-EP collection contributors
# Apache-2.0
"""The collection's Kubernetes client: one transport per module call (the official client's REST layer, with
its TLS, client certificates, proxy and token refresh), server-side apply under a named field manager, dry run
for check mode, and discovery only of the group-versions a call touches (none for the built-in kinds)."""
from __future__ import annotations

import calendar
import copy
import json
import threading
import time
from urllib.parse import urlencode

from ansible_collections.llmd.wide_ep.plugins.module_utils.k8s.errors import K8sError

FIELD_MANAGER = "llmd.wide_ep"
# The API server names the manager of a non-apply write (the rollout lease, created objects) after the user
# agent's first segment: "llmd.wide_ep", like the server-side applies, so teardown can tell what we wrote.
USER_AGENT = "llmd.wide_ep/0.5.0"
RESTART_WINDOW = 60  # seconds a server that answered before may be away (a restart) before calls fail
VOLATILE_METADATA = ("managedFields", "resourceVersion", "generation", "uid", "creationTimestamp",
                     "selfLink", "annotations.kubectl.kubernetes.io/last-applied-configuration")
# The built-in kinds the collection touches: (plural, namespaced), so they cost no discovery request.
BUILTIN = {
    "v1": {"Namespace": ("namespaces", False), "Node": ("nodes", False), "Pod": ("pods", True),
           "Service": ("services", True), "ConfigMap": ("configmaps", True), "Secret": ("secrets", True),
           "ServiceAccount": ("serviceaccounts", True), "Endpoints": ("endpoints", True)},
    "admissionregistration.k8s.io/v1": {"MutatingWebhookConfiguration": ("mutatingwebhookconfigurations", False),
                                        "ValidatingWebhookConfiguration": ("validatingwebhookconfigurations", False)},
    "apiextensions.k8s.io/v1": {"CustomResourceDefinition": ("customresourcedefinitions", False)},
    "apps/v1": {"Deployment": ("deployments", True), "StatefulSet": ("statefulsets", True),
                "DaemonSet": ("daemonsets", True)},
    "batch/v1": {"Job": ("jobs", True)},
    "coordination.k8s.io/v1": {"Lease": ("leases", True)},
    "discovery.k8s.io/v1": {"EndpointSlice": ("endpointslices", True)},
    "rbac.authorization.k8s.io/v1": {"Role": ("roles", True), "RoleBinding": ("rolebindings", True),
                                     "ClusterRole": ("clusterroles", False),
                                     "ClusterRoleBinding": ("clusterrolebindings", False)},
}


# Metadata only, as the API server serves it to controllers (meta.k8s.io/v1, Kubernetes 1.15+); an older
# server answers the full object to the second type.
ACCEPT_METADATA = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json"
ACCEPT_METADATA_LIST = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json"


class Transport:
    """JSON over the official client's REST layer (urllib3, keep-alive) with the credentials of `auth.load`.

    A 401 re-reads credentials that can change (exec plugins, auth-providers, token files) once, as kubectl
    does; an API server that answered before and then went away (a restart) is waited for up to
    RESTART_WINDOW seconds, resending the request: every request the collection sends is idempotent (GET,
    server-side apply, DELETE) or compare-and-swap (the rollout lease)."""

    sent = 0  # every request of this process, over all transports (the in-process runner reports it per task)

    def __init__(self, params, environ=None):
        from ansible_collections.llmd.wide_ep.plugins.module_utils.k8s import auth

        self._load = lambda: auth.load(params, environ)
        self.requests = 0
        self.answered = False
        self._lock = threading.Lock()  # the apply loop reads from several threads; credentials refresh once
        self._connect(self._load())

    def _connect(self, access):
        from kubernetes.client import ApiClient

        self.access = access
        self.server = access.configuration.host
        self.api = ApiClient(access.configuration)

    def request(self, method, path, body=None, query=None, content_type="application/json", raw=False,
                timeout=None, accept="application/json"):
        """One API request: the decoded JSON answer (text with raw); K8sError for an error answer or none."""
        import urllib3
        from kubernetes.client.exceptions import ApiException

        url = self.server + path + ("?" + urlencode(query) if query else "")
        deadline, retried, refreshed = None, False, False
        while True:
            with self._lock:
                headers = urllib3.HTTPHeaderDict(self.access.headers)
                headers.update({"Accept": accept, "Content-Type": content_type,
                                "User-Agent": USER_AGENT})
                token = self.access.token()  # runs the client's refresh hook (exec plugins, auth-providers)
                if token:  # a tokenFile's newline is not the token's (kubectl trims it)
                    headers["authorization"] = token.strip()
                self.requests += 1
                Transport.sent += 1
                api = self.api
            status = None
            try:
                status, data = _send(api.rest_client, method, url, headers, body, timeout or 60)
            except ApiException as exc:  # status 0: the client's wrapping of urllib3's SSLError
                raise K8sError("cannot reach the Kubernetes API server %s: %s" % (self.server, exc.reason)) from None
            except ValueError as exc:
                if not str(exc).startswith("Invalid header"):
                    raise  # a bug, not the cluster: its traceback, never "cannot reach"
                # http.client refuses a header value (a token with a newline): never echo it
                raise K8sError("cannot send %s %s to the Kubernetes API server: %s in the request (the credentials "
                               "or the request are malformed)" % (method, path, type(exc).__name__)) from None
            except urllib3.exceptions.ReadTimeoutError:
                raise K8sError("the Kubernetes API server %s did not answer %s %s in %ss (timed out)" % (
                    self.server, method, path, timeout or 60)) from None
            except urllib3.exceptions.HTTPError as exc:
                refused = isinstance(exc, urllib3.exceptions.NewConnectionError)
                if not self.answered:  # never reached: a dropped keep-alive gets one resend, a refusal none
                    if retried or refused or isinstance(exc, urllib3.exceptions.ProxyError):
                        raise K8sError("cannot reach the Kubernetes API server %s: %s" % (
                            self.server, _reason(exc))) from None
                    retried = True
                    continue
                error = _reason(exc)
            if status is not None:
                self.answered = True
                if 200 <= status <= 299:
                    return data if raw else (json.loads(data) if data else {})
                if status == 401 and not refreshed and self.access.refreshable:
                    refreshed = True
                    with self._lock:
                        if self.api is api:  # not already re-read by another thread
                            self._connect(self._load())
                    continue
                # Right after a restart the server can answer 503 until its storage is ready, and 429 for a CRD
                # whose storage is still initializing (or under API priority and fairness): asked again, as
                # client-go does (a proxied pod's own answer is never resent).
                if status not in (429, 503) or "/proxy" in path:
                    raise K8sError.from_response(status, data)
                error = "HTTP %d %s" % (status, data[:200])
            deadline = deadline or time.time() + RESTART_WINDOW
            if time.time() > deadline:
                raise K8sError("lost the Kubernetes API server %s for %ss: %s" % (
                    self.server, RESTART_WINDOW, error)) from None
            time.sleep(1)


def _send(rest_client, method, url, headers, body, timeout):
    """(status, text) of one request through the official client's RESTClientObject.request, called with the
    keyword arguments its documented signature has in every release of the declared range (the query is in
    the URL). Up to kubernetes 36 it raises ApiException for a non-2xx answer and returns the text read;
    from 37 it returns every answer unread. Both come out the same here; status 0 (TLS) is raised."""
    from kubernetes.client.exceptions import ApiException

    try:
        resp = rest_client.request(method, url, headers=headers, body=body, _request_timeout=timeout)
    except ApiException as exc:
        if not exc.status:
            raise
        return exc.status, _text(exc.body)
    return resp.status, _text(resp.data if resp.data is not None else resp.read())


def _text(data):
    return data.decode("utf-8", "replace") if isinstance(data, bytes) else (data or "")


def _reason(exc):
    return str(getattr(exc, "reason", None) or exc)


def api_root(api_version):
    """/api/v1 for the core group, /apis/<group>/<version> for the others."""
    return "/api/v1" if api_version == "v1" else "/apis/%s" % api_version


class Client:
    """One authenticated transport to one API server, reused for every object of a module call."""

    def __init__(self, params=None, transport=None, environ=None):
        # `params`: the module's auth options (auth.AUTH_ARG_SPEC); `transport`: any object with Transport's
        # request() - the unit tests pass an in-memory API server.
        self.transport = transport or Transport(params or {}, environ)
        self._resources = {}
        self._namespaces = {}
        self.dry_runs = 0  # server-side dry-run applies sent: what the digest and the reused reads save
        self._counting = threading.Lock()  # the apply loop dry-runs from several threads

    @property
    def requests(self):
        return self.transport.requests

    def _call(self, method, path, what, none_on=(), **kw):
        """The answer; None for an error status in none_on (404: gone, 409: lost a race); else K8sError."""
        try:
            return self.transport.request(method, path, **kw)
        except K8sError as exc:
            if exc.status in none_on:
                return None
            raise exc.within(what) from None

    # --- discovery, limited to what is used -------------------------------------------------------------
    def version(self):
        return self._call("GET", "/version", "server version")

    def api_groups(self, preferred=False):
        """Every group/version served ("v1" first), or only each group's preferred version."""
        groups = self._call("GET", "/apis", "API groups").get("groups", [])
        if preferred:
            return ["v1"] + [g["preferredVersion"]["groupVersion"] for g in groups]
        return ["v1"] + sorted(v["groupVersion"] for g in groups for v in g.get("versions", []))

    def resources(self, api_version):
        """The discovery list of a group/version (its kinds, plurals, verbs); None when not served."""
        listing = self._call("GET", api_root(api_version), "discovery of %s" % api_version, none_on=(404,))
        if listing is not None:
            self._resources[api_version] = {
                r["kind"]: (r["name"], r["namespaced"]) for r in listing.get("resources", []) if "/" not in r["name"]}
        return listing

    def resource(self, api_version, kind):
        """(plural, namespaced) for a kind: built in, or one discovery request per group-version."""
        if kind in BUILTIN.get(api_version, {}):
            return BUILTIN[api_version][kind]
        if api_version not in self._resources and self.resources(api_version) is None:
            raise K8sError("the API server does not serve %s (needed for %s): is its CRD installed?" % (
                api_version, kind), 404, "NotFound")
        found = self._resources[api_version].get(kind)
        if not found:
            raise K8sError("the API server serves %s but not kind %s: is the CRD up to date?" % (api_version, kind))
        return found

    def path(self, obj, name=True):
        api_version, kind = obj["apiVersion"], obj["kind"]
        plural, namespaced = self.resource(api_version, kind)
        meta = obj.get("metadata", {})
        base = api_root(api_version)
        if namespaced:
            if not meta.get("namespace"):
                raise K8sError("%s/%s needs metadata.namespace" % (kind, meta.get("name")))
            base += "/namespaces/%s" % meta["namespace"]
        base += "/%s" % plural
        return "%s/%s" % (base, meta["name"]) if name else base

    def namespace_exists(self, name):
        if name not in self._namespaces:
            self._namespaces[name] = self.get(ref("v1", "Namespace", name)) is not None
        return self._namespaces[name]

    # --- object verbs -----------------------------------------------------------------------------------
    def get(self, obj, metadata_only=False):
        """The live object, or None when it does not exist. metadata_only: only its metadata (labels,
        annotations, managedFields), for what needs no more - a CustomResourceDefinition is up to megabytes."""
        return self._call("GET", self.path(obj), "get %s" % describe(obj), none_on=(404,),
                          accept=ACCEPT_METADATA if metadata_only else "application/json")

    def list(self, api_version, kind, namespace=None, label_selector=None, field_selector=None,
             metadata_only=False):
        """The items of a kind, in one namespace or all, filtered by selectors; each with apiVersion/kind. With
        metadata_only, the items carry their metadata and nothing else (an empty list of them has items null)."""
        plural, namespaced = self.resource(api_version, kind)
        path = api_root(api_version) + ("/namespaces/%s" % namespace if namespace and namespaced else "")
        query = {k: v for k, v in (("labelSelector", label_selector), ("fieldSelector", field_selector)) if v}
        items = self._call("GET", "%s/%s" % (path, plural), "list %s" % kind, query=query,
                           accept=ACCEPT_METADATA_LIST if metadata_only else "application/json")["items"] or []
        return [dict(item, apiVersion=api_version, kind=kind) for item in items]

    def apply(self, obj, field_manager=FIELD_MANAGER, force=False, dry_run=False):
        query = {"fieldManager": field_manager}
        if force:
            query["force"] = "true"
        if dry_run:
            query["dryRun"] = "All"
            with self._counting:
                self.dry_runs += 1
        try:
            # JSON is valid YAML: the apply-patch content type takes the object as is.
            return self.transport.request("PATCH", self.path(obj), body=obj, query=query,
                                          content_type="application/apply-patch+yaml")
        except K8sError as exc:
            msg = str(exc)
            if exc.status == 409:
                msg += "; another field manager owns these fields: set force_conflicts to take them over"
            if "failed calling webhook" in msg and obj.get("kind") == "LeaderWorkerSet":
                msg += " (the LeaderWorkerSet controller serves this webhook: is it running?)"
            raise K8sError("apply %s: %s" % (describe(obj), msg), exc.status, exc.reason, exc.body) from None

    def create(self, obj, conflict_ok=False):
        """POST; with conflict_ok, None when it already exists (someone else created it first)."""
        return self._call("POST", self.path(obj, name=False), "create %s" % describe(obj),
                          none_on=(409,) if conflict_ok else (), body=obj)

    def replace(self, obj, conflict_ok=False):
        """PUT, a compare-and-swap on obj's resourceVersion; with conflict_ok, None when it lost the race."""
        return self._call("PUT", self.path(obj), "replace %s" % describe(obj),
                          none_on=(409,) if conflict_ok else (), body=obj)

    def delete(self, obj, dry_run=False, resource_version=None):
        """Foreground delete; None when already gone. resource_version: only that version (else 409)."""
        query = {"propagationPolicy": "Foreground"}
        if dry_run:
            query["dryRun"] = "All"
        body = {"preconditions": {"resourceVersion": resource_version}} if resource_version else None
        return self._call("DELETE", self.path(obj), "delete %s" % describe(obj), none_on=(404,),
                          query=query, body=body)

    def delete_collection(self, api_version, kind, namespace, label_selector):
        """Every object of a kind in a namespace that the label selector matches, in one call (background)."""
        plural, dummy = self.resource(api_version, kind)
        path = "%s/namespaces/%s/%s" % (api_root(api_version), namespace, plural)
        return self._call("DELETE", path, "delete %s %s" % (kind, label_selector), none_on=(404,),
                          query={"labelSelector": label_selector, "propagationPolicy": "Background"})

    def scale(self, obj, replicas, field_manager):
        """Set spec.replicas through the scale subresource (the workload's other fields and their owners stay)."""
        return self._call("PATCH", self.path(obj) + "/scale", "scale %s" % describe(obj),
                          body={"spec": {"replicas": replicas}}, query={"fieldManager": field_manager},
                          content_type="application/merge-patch+json")

    def patch(self, obj, body):
        """A JSON merge patch (metadata.resourceVersion in `body` makes it a compare-and-swap)."""
        return self._call("PATCH", self.path(obj), "patch %s" % describe(obj), body=body,
                          content_type="application/merge-patch+json")

    def evict(self, pod):
        """Evict a pod through the Eviction API (PodDisruptionBudgets apply); None when already gone."""
        meta = pod["metadata"]
        body = {"apiVersion": "policy/v1", "kind": "Eviction",
                "metadata": {"name": meta["name"], "namespace": meta["namespace"]}}
        return self._call("POST", "/api/v1/namespaces/%s/pods/%s/eviction" % (meta["namespace"], meta["name"]),
                          "evict pod %s/%s" % (meta["namespace"], meta["name"]), none_on=(404,), body=body)

    def logs(self, namespace, pod, container=None):
        """A pod's log, as text."""
        query = {"container": container} if container else None
        return self._call("GET", "/api/v1/namespaces/%s/pods/%s/log" % (namespace, pod),
                          "log of pod %s/%s" % (namespace, pod), query=query, raw=True)

    def proxy(self, method, target, path, body=None, timeout=None):
        """A request to a pod or Service through the API server proxy; target is the proxy path prefix
        (proxy_path()). The answer as text; K8sError with the status for an error answer."""
        return self.transport.request(method, target + path, body=body, raw=True, timeout=timeout)


def proxy_path(namespace, kind, name, port, scheme=None):
    """The API server proxy prefix of a pod's or Service's port: kind 'pods' or 'services'."""
    return "/api/v1/namespaces/%s/%s/%s%s:%s/proxy" % (namespace, kind, scheme + ":" if scheme else "", name, port)


def ref(api_version, kind, name, namespace=None):
    meta = {"name": name}
    if namespace:
        meta["namespace"] = namespace
    return {"apiVersion": api_version, "kind": kind, "metadata": meta}


def epoch(stamp):
    """Seconds since the epoch of an API Time or MicroTime (by the clock of whoever wrote it); 0 for none."""
    return calendar.timegm(time.strptime(stamp[:19], "%Y-%m-%dT%H:%M:%S")) if stamp else 0


def applied_at(obj, manager):
    """When `manager` last applied to the object, by the server's clock (from managedFields); now when never."""
    times = [epoch(m["time"]) for m in obj.get("metadata", {}).get("managedFields", []) or []
             if m.get("manager") == manager and m.get("operation") == "Apply" and m.get("time")]
    return max(times) if times else time.time()


def describe(obj):
    meta = obj.get("metadata", {})
    ns = meta.get("namespace")
    return "%s %s%s" % (obj.get("kind"), "%s/" % ns if ns else "", meta.get("name"))


def normalize(obj, hide_secrets=False):
    """The object without server-managed bookkeeping, for comparisons; with hide_secrets, for diffs."""
    if obj is None:
        return None
    out = copy.deepcopy(obj)
    meta = out.get("metadata", {})
    for key in VOLATILE_METADATA:
        if key.startswith("annotations."):
            meta.get("annotations", {}).pop(key.split(".", 1)[1], None)
            if meta.get("annotations") == {}:
                meta.pop("annotations")
        else:
            meta.pop(key, None)
    out.pop("status", None)
    if hide_secrets and out.get("kind") == "Secret":
        out["data"] = {k: "VALUE_HIDDEN" for k in out.get("data", {})}
        out.pop("stringData", None)
    return out
