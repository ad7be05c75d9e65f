# Copyright: llm-d wide-EP collection contributors
# Apache-2.0
"""The record of deployed model-server revisions, kept in the cluster (ConfigMap `wide-ep-revisions` of the
deployment's namespace), from which a failed upgrade is rolled back and a later run knows what happened."""
from __future__ import annotations

import json
import time

RECORD_NAME = "wide-ep-revisions"
KEEP_REVISIONS = 10


class Record:
    """Revisions of the model servers, newest last, in one ConfigMap of the deployment's namespace."""

    def __init__(self, client, namespace, name=RECORD_NAME):
        self.client, self.ref = client, {"apiVersion": "v1", "kind": "ConfigMap",
                                         "metadata": {"name": name, "namespace": namespace}}
        live = client.get(self.ref)
        data = (live or {}).get("data", {}) or {}
        self.revisions = sorted((json.loads(v) for k, v in data.items() if k.startswith("rev-")),
                                key=lambda r: r["revision"])

    @property
    def current(self):
        done = [r for r in self.revisions if r["status"] == "deployed"]
        return done[-1] if done else None

    def add(self, status, objects, note, **extra):
        for old in self.revisions:
            if old["status"] == "in-progress":  # a run that was killed or lost its connection
                old.update(status="interrupted", reason="superseded by a later run")
        rev = {"revision": (self.revisions[-1]["revision"] + 1) if self.revisions else 1,
               "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "status": status, "note": note,
               "leaderworkersets": {o["metadata"]["name"]: o for o in objects}, **extra}
        self.revisions.append(rev)
        self.save()
        return rev

    def update(self, rev, **fields):
        rev.update(fields, time=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
        self.save()

    def note_gate(self, step, problems):
        """What a step's gate found lost, on the newest revision (its status untouched: rollback still reads it)."""
        if not self.revisions:
            return None
        rev = self.revisions[-1]
        rev.setdefault("gates", []).append({"step": step, "problems": problems,
                                            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
        self.save()
        return rev

    def save(self):
        keep = self.revisions[-KEEP_REVISIONS:]
        body = dict(self.ref)
        body["metadata"] = dict(self.ref["metadata"], labels={"app.kubernetes.io/managed-by": "llmd.wide_ep"})
        body["data"] = {"rev-%04d" % r["revision"]: json.dumps(r, sort_keys=True) for r in keep}
        # The whole map each time under its own field manager: keys left out (pruned revisions) go away.
        self.client.apply(body, field_manager="llmd.wide_ep.record", force=True)
