# Copyright: llm-d wide-EP collection contributors
# Apache-2.0
"""One model-server rollout at a time: a coordination.k8s.io Lease in the deployment's namespace, taken by the
run that changes the LeaderWorkerSets and renewed while it waits on gates. A second run finds it held and
stops; a run whose controller died leaves a lease nobody renews, which the next run takes over once it has
gone unrenewed for its duration (measured on this machine's clock, so clock skew between machines is harmless).
"""
from __future__ import annotations

import os
import socket
import time
import uuid

from ansible_collections.llmd.wide_ep.plugins.module_utils.errors import WideEPError
from ansible_collections.llmd.wide_ep.plugins.module_utils.k8s.client import epoch
from ansible_collections.llmd.wide_ep.plugins.module_utils.k8s.errors import K8sError

LEASE_NAME = "wide-ep-rollout"


class Held(WideEPError):
    """Another run holds the lease and is alive (it renewed while this run watched), or took it from this run."""


def now_micro():
    """A MicroTime with real microseconds, so two renewals within one second still differ."""
    now = time.time()
    return "%s.%06dZ" % (time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)), int(now % 1 * 1e6))


def ref(namespace, name=LEASE_NAME):
    return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": name, "namespace": namespace}}


def holder_of(live):
    """(holder, renewTime, duration) of a live Lease; holder is None when nobody holds it."""
    spec = (live or {}).get("spec", {}) or {}
    return spec.get("holderIdentity"), spec.get("renewTime") or spec.get("acquireTime"), \
        int(spec.get("leaseDurationSeconds") or 0)


def fresh(live, now=None):
    """Whether the lease looks held right now by the holder's own clock (a quick, read-only check)."""
    holder, renewed, duration = holder_of(live)
    return bool(holder) and epoch(renewed) + duration > (now or time.time())


def running(client, namespace):
    """(holder, renewTime, duration) of the namespace's rollout lease while it looks held, else None."""
    live = client.get(ref(namespace))
    return holder_of(live) if fresh(live) else None


class Lease:
    def __init__(self, client, namespace, duration, name=LEASE_NAME, note=""):
        self.client, self.duration, self.note = client, int(duration), note
        self.ref = ref(namespace, name)
        self.identity = "%s/%d/%s" % (socket.gethostname(), os.getpid(), uuid.uuid4().hex[:8])
        self.live, self.renewed_at = None, 0.0

    def describe(self, live):
        holder, renewed, duration = holder_of(live)
        return "Lease %s/%s is held by %s (renewed %s, for %ss)" % (
            self.ref["metadata"]["namespace"], self.ref["metadata"]["name"], holder, renewed, duration)

    def _write(self, method, body):
        """POST or PUT (with resourceVersion: compare-and-swap). None on a conflict (someone else wrote first)."""
        if method == "PUT":
            return self.client.replace(body, conflict_ok=True)
        return self.client.create(body, conflict_ok=True)

    def _mine(self):
        """After a conflict: a retried write of ours may have landed (the client resends after a restart)."""
        live = self.client.get(self.ref)
        if holder_of(live)[0] == self.identity:
            self.live, self.renewed_at = live, time.time()
            return True
        return False

    def acquire(self, progress, sleep=2.0):
        """Take the lease: free, already expired, or unrenewed for its duration while watched. Raises Held."""
        watched = None  # (holder, renewTime) first seen, and when
        while True:
            live = self.client.get(self.ref)
            holder, renewed, duration = holder_of(live)
            stamp = now_micro()
            spec = {"holderIdentity": self.identity, "leaseDurationSeconds": self.duration,
                    "acquireTime": stamp, "renewTime": stamp}
            if live is None:
                body = dict(self.ref, metadata=dict(self.ref["metadata"], labels={
                    "app.kubernetes.io/managed-by": "llmd.wide_ep"}, annotations={"wide-ep.llm-d.ai/note": self.note}),
                    spec=dict(spec, leaseTransitions=0))
                self.live = self._write("POST", body)
            else:
                now = time.time()
                stale = not holder or epoch(renewed) + 2 * duration < now  # clearly abandoned, even with skew
                if not stale:
                    if watched is None:
                        watched = ((holder, renewed), now)
                        progress.append("%s; waiting up to %ss for it to be renewed or to expire" % (
                            self.describe(live), duration))
                    elif watched[0] != (holder, renewed):
                        raise Held("another upgrade or rollback is running: %s. Let it finish (its record is "
                                   "ConfigMap wide-ep-revisions); a run whose controller died leaves a lease "
                                   "that expires %ss after its last renewal" % (self.describe(live), duration))
                    if now - watched[1] <= duration:
                        time.sleep(sleep)
                        continue
                    progress.append("took over the lease of %s: not renewed for %ss" % (holder, duration))
                elif holder:
                    progress.append("took over the lease of %s: last renewed %s" % (holder, renewed))
                live["metadata"].setdefault("annotations", {})["wide-ep.llm-d.ai/note"] = self.note
                old = live.get("spec") or {}
                live["spec"] = dict(old, **spec, leaseTransitions=int(old.get("leaseTransitions") or 0) + 1)
                self.live = self._write("PUT", live)
            if self.live is not None or self._mine():
                self.renewed_at = time.time()
                return
            watched = None  # someone else wrote in between: look again

    def renew(self, force=False):
        """Renew at most every third of the duration; Held when another run took the lease meanwhile."""
        if self.live is None or (not force and time.time() - self.renewed_at < self.duration / 3.0):
            return
        body = dict(self.live, spec=dict(self.live["spec"], renewTime=now_micro()))
        written = self._write("PUT", body)
        if written is None and not self._mine():
            raise Held("lost the rollout lease: %s" % self.describe(self.client.get(self.ref)))
        self.live, self.renewed_at = written or self.live, time.time()

    def release(self):
        """Delete the lease if it is still this run's (resourceVersion precondition: never someone else's)."""
        if self.live is None:
            return
        try:
            self.client.delete(self.ref, resource_version=self.live["metadata"]["resourceVersion"])
        except K8sError as exc:
            if exc.status != 409:
                raise
        self.live = None
