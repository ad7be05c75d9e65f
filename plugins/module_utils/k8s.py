# Copyright: llm-d wide-EP collection contributors
# Apache-2.0
"""A small Kubernetes client for this collection's modules: one connection per module call, server-side apply
with a named field manager, server-side dry run for check mode, discovery only of the group-versions a call
actually touches, and readiness predicates for the kinds the collection waits on."""
from __future__ import annotations

import calendar
import copy
import json
import time

from ansible_collections.llmd.wide_ep.plugins.module_utils.kubeconfig import ApiError, Connection, K8sError

FIELD_MANAGER = "llmd.wide_ep"
VOLATILE_METADATA = ("managedFields", "resourceVersion", "generation", "uid", "creationTimestamp",
                     "selfLink", "annotations.kubectl.kubernetes.io/last-applied-configuration")

AUTH_ARG_SPEC = {
    "kubeconfig": {"type": "path"},
    "context": {"type": "str"},
}
APPLY_ARG_SPEC = {
    "state": {"type": "str", "default": "present", "choices": ["present", "absent"]},
    "field_manager": {"type": "str", "default": FIELD_MANAGER},
    "force_conflicts": {"type": "bool", "default": False},
    "wait": {"type": "bool", "default": False},
    "wait_timeout": {"type": "int", "default": 600},
    "wait_sleep": {"type": "float", "default": 2.0},
}


def _status_message(exc):
    try:
        body = json.loads(exc.body)
        return "%s (HTTP %s %s)" % (body.get("message", exc.body), exc.status, body.get("reason", ""))
    except (TypeError, ValueError, AttributeError):
        return "HTTP %s: %s" % (getattr(exc, "status", "?"), getattr(exc, "body", exc))


def api_root(api_version):
    """/api/v1 for the core group, /apis/<group>/<version> for the others."""
    return "/api/v1" if api_version == "v1" else "/apis/%s" % api_version


class Client:
    """One authenticated connection to one API server, reused for every object of a module call."""

    def __init__(self, kubeconfig=None, context=None):
        self.conn = Connection(kubeconfig, context)
        self._resources = {}
        self._namespaces = {}

    @property
    def requests(self):
        return self.conn.requests

    def request(self, method, path, body=None, query=None):
        try:
            return self.conn.request(method, path, body=body, query=query)
        except ApiError as exc:
            raise K8sError("%s %s: %s" % (method, path, _status_message(exc))) from None

    def namespace_exists(self, name):
        if name not in self._namespaces:
            self._namespaces[name] = self.get({"apiVersion": "v1", "kind": "Namespace",
                                               "metadata": {"name": name}}) is not None
        return self._namespaces[name]

    def version(self):
        return self.request("GET", "/version")

    # --- discovery, limited to what is used -------------------------------------------------------------
    def resource(self, api_version, kind):
        """(plural, namespaced) for a kind, from one discovery request per group-version."""
        if api_version not in self._resources:
            try:
                listing = self.conn.request("GET", api_root(api_version))
            except ApiError as exc:
                if exc.status == 404:
                    raise K8sError("the API server does not serve %s (needed for %s): is its CRD installed?" % (
                        api_version, kind)) from None
                raise K8sError("discovery of %s: %s" % (api_version, _status_message(exc))) from None
            self._resources[api_version] = {
                r["kind"]: (r["name"], r["namespaced"]) for r in listing.get("resources", []) if "/" not in r["name"]}
        found = self._resources[api_version].get(kind)
        if not found:
            raise K8sError("the API server serves %s but not kind %s: is the CRD up to date?" % (api_version, kind))
        return found

    def path(self, obj, name=True):
        api_version, kind = obj["apiVersion"], obj["kind"]
        plural, namespaced = self.resource(api_version, kind)
        base = api_root(api_version)
        meta = obj.get("metadata", {})
        if namespaced:
            if not meta.get("namespace"):
                raise K8sError("%s/%s needs metadata.namespace" % (kind, meta.get("name")))
            base += "/namespaces/%s" % meta["namespace"]
        base += "/%s" % plural
        return "%s/%s" % (base, meta["name"]) if name else base

    # --- object verbs -----------------------------------------------------------------------------------
    def get(self, obj):
        try:
            return self.conn.request("GET", self.path(obj))
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise K8sError("get %s: %s" % (describe(obj), _status_message(exc))) from None

    def apply(self, obj, field_manager=FIELD_MANAGER, force=False, dry_run=False):
        query = {"fieldManager": field_manager}
        if force:
            query["force"] = "true"
        if dry_run:
            query["dryRun"] = "All"
        try:
            # JSON is valid YAML: the apply-patch content type takes the object as is.
            return self.conn.request("PATCH", self.path(obj), body=obj, query=query,
                                     content_type="application/apply-patch+yaml")
        except ApiError as exc:
            msg = _status_message(exc)
            if exc.status == 409:
                msg += "; another field manager owns these fields: set force_conflicts to take them over"
            raise K8sError("apply %s: %s" % (describe(obj), msg)) from None

    def delete(self, obj, dry_run=False):
        query = {"propagationPolicy": "Foreground"}
        if dry_run:
            query["dryRun"] = "All"
        try:
            return self.conn.request("DELETE", self.path(obj), query=query)
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise K8sError("delete %s: %s" % (describe(obj), _status_message(exc))) from None


LWS_NAME_LABEL = "leaderworkerset.sigs.k8s.io/name"
LWS_GROUP_LABEL = "leaderworkerset.sigs.k8s.io/group-index"


def lws_pods(client, namespace, lws_name, group=None):
    """The pods of one LeaderWorkerSet (of one of its groups when `group` is given)."""
    selector = "%s=%s" % (LWS_NAME_LABEL, lws_name)
    if group is not None:
        selector += ",%s=%s" % (LWS_GROUP_LABEL, group)
    return client.request("GET", "/api/v1/namespaces/%s/pods" % namespace,
                          query={"labelSelector": selector})["items"]


def pod_state(pod):
    """Why a pod is not serving yet, in a few words: not scheduled (and the scheduler's reason), an image not
    pulled, a container crashing or starting, a readiness probe not passing; "Ready" when it is."""
    status = pod.get("status", {}) or {}
    if pod["metadata"].get("deletionTimestamp"):
        return "Terminating"
    scheduled = condition(pod, "PodScheduled")
    if scheduled.get("status") == "False":
        return "Pending, not scheduled: %s" % (scheduled.get("message") or scheduled.get("reason") or "?")[:160]
    for c in (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or []):
        waiting = (c.get("state") or {}).get("waiting")
        if waiting and waiting.get("reason") not in (None, "PodInitializing"):
            return "%s: %s" % (c["name"], waiting["reason"])  # ErrImagePull, ImagePullBackOff, CrashLoopBackOff
    if condition(pod, "Ready").get("status") == "True":
        return "Ready"
    if status.get("phase") == "Running":
        why = condition(pod, "Ready").get("reason")
        return "Running, not Ready%s: readiness probe not passing yet" % (" (%s)" % why if why else "")
    return status.get("phase") or "Pending"


def pods_summary(pods):
    """'3/4 pods Ready; 1 Running, not Ready: readiness probe not passing yet (decode-0-1)' for a set of pods."""
    states = {}
    for pod in pods:
        states.setdefault(pod_state(pod), []).append(pod["metadata"]["name"])
    ready = len(states.pop("Ready", []))
    out = "%d/%d pods Ready" % (ready, len(pods))
    for state, names in sorted(states.items(), key=lambda kv: -len(kv[1])):
        out += "; %d %s (%s%s)" % (len(names), state, ", ".join(sorted(names)[:3]), ", ..." if len(names) > 3 else "")
    return out


def epoch(stamp):
    """Seconds since the epoch of an API Time or MicroTime (by the clock of whoever wrote it); 0 for none."""
    return calendar.timegm(time.strptime(stamp[:19], "%Y-%m-%dT%H:%M:%S")) if stamp else 0


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


# --- readiness --------------------------------------------------------------------------------------------
def condition(obj, ctype):
    """The condition of type ctype of an object (or of a status-like mapping), or {}."""
    for cond in (obj or {}).get("status", {}).get("conditions", []) or []:
        if cond.get("type") == ctype:
            return cond
    return {}


def readiness(obj):
    """(ready, reason) for a live object."""
    kind = obj.get("kind")
    spec, status = obj.get("spec", {}), obj.get("status", {}) or {}
    if kind == "LeaderWorkerSet":
        want = spec.get("replicas", 1)
        ready, updated = status.get("readyReplicas", 0), status.get("updatedReplicas", 0)
        available = condition(obj, "Available").get("status") == "True"
        ok = available and ready >= want and updated >= want
        if want == 0:  # scaled to zero: done when no group is left
            ok = status.get("replicas", 0) == 0
        return ok, "%d/%d groups ready, %d updated, Available=%s" % (ready, want, updated, available)
    if kind == "Deployment":
        want = spec.get("replicas", 1)
        current = status.get("observedGeneration", 0) >= obj["metadata"].get("generation", 0)
        avail = status.get("availableReplicas", 0)
        ok = current and avail >= want and status.get("updatedReplicas", 0) >= want
        return ok, "%d/%d replicas available" % (avail, want)
    if kind == "Node":
        ok = condition(obj, "Ready").get("status") == "True"
        return ok, "Ready=%s" % ok
    if kind == "CustomResourceDefinition":
        ok = condition(obj, "Established").get("status") == "True"
        return ok, "Established=%s" % ok
    return True, "exists"


def wait_ready(client, objs, timeout, sleep, progress):
    """Poll every object until all are ready; return the live objects. Raises K8sError on timeout."""
    deadline = time.time() + timeout
    pending = list(objs)
    live = {}
    last = {}
    while True:
        still = []
        for obj in pending:
            cur = client.get(obj)
            ok, reason = readiness(cur) if cur else (False, "not found")
            if cur and not ok and cur.get("kind") == "LeaderWorkerSet":  # say which pods hold it up, and why
                reason += "; " + pods_summary(lws_pods(client, cur["metadata"]["namespace"], cur["metadata"]["name"]))
            key = describe(obj)
            if last.get(key) != reason:
                progress.append("%s %s: %s" % (time.strftime("%H:%M:%S"), key, reason))
                last[key] = reason
            if ok:
                live[key] = cur
            else:
                still.append(obj)
        pending = still
        if not pending:
            return live
        if time.time() >= deadline:
            raise K8sError("timed out after %ss waiting for %s" % (
                timeout, "; ".join("%s (%s)" % (describe(o), last.get(describe(o))) for o in pending)))
        progress.still("still waiting for %s" % "; ".join(
            "%s (%s)" % (describe(o), last.get(describe(o))) for o in pending))
        time.sleep(sleep)
