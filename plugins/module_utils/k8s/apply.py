# Copyright: llm-d wide-EP collection contributors
# Apache-2.0
"""The apply loop shared by the object modules: validate every object, resolve every path, then apply them all
over one client; honest check mode (server-side dry run) and --diff; optional wait for readiness."""
from __future__ import annotations

import copy
import hashlib
import json
import time
from concurrent.futures import ThreadPoolExecutor

from ansible_collections.llmd.wide_ep.plugins.module_utils import yamlout
from ansible_collections.llmd.wide_ep.plugins.module_utils.k8s.client import (
    FIELD_MANAGER,
    Client,
    applied_at,
    describe,
    normalize,
)
from ansible_collections.llmd.wide_ep.plugins.module_utils.k8s.errors import K8sError
from ansible_collections.llmd.wide_ep.plugins.module_utils.k8s.readiness import readiness, wait_ready
from ansible_collections.llmd.wide_ep.plugins.module_utils.progress import Progress

READERS = 4  # concurrent reads and dry runs: the API server computes a dry-run apply of a large CRD for ~30 ms
APPLY_ARG_SPEC = {
    "state": {"type": "str", "default": "present", "choices": ["present", "absent"]},
    "field_manager": {"type": "str", "default": FIELD_MANAGER},
    "force_conflicts": {"type": "bool", "default": False},
    "wait": {"type": "bool", "default": False},
    "wait_timeout": {"type": "int", "default": 600},
    "wait_sleep": {"type": "float", "default": 2.0},
}


def _yaml(obj):
    return yamlout.dump(obj, sort_keys=True) if obj is not None else ""


# A CustomResourceDefinition is up to megabytes, and the API server takes ~30 ms to compute a dry-run apply of
# one: a CRD this collection applied carries the digest of what it sent, and while no one else holds any of its
# fields, the same digest means the same apply, so the dry run is skipped.
DIGEST_ANNOTATION = "llmd.ai/applied-digest"
DIGESTED_KINDS = ("CustomResourceDefinition",)


def with_digest(obj):
    """`obj` with the digest of its content (without the digest) as an annotation, for DIGESTED_KINDS."""
    if obj.get("kind") not in DIGESTED_KINDS:
        return obj
    out = copy.deepcopy(obj)
    notes = out.setdefault("metadata", {}).setdefault("annotations", {})
    notes.pop(DIGEST_ANNOTATION, None)
    if not notes:
        out["metadata"].pop("annotations")
    body = json.dumps(out, sort_keys=True, separators=(",", ":")).encode()
    out["metadata"].setdefault("annotations", {})[DIGEST_ANNOTATION] = hashlib.sha256(body).hexdigest()[:32]
    return out


def unchanged_by_digest(obj, live, field_manager):
    """True when `live` is what applying `obj` (with_digest) already made: same digest, and every field owner is
    this field manager's apply or a status writer. Another manager's Update or Apply (kubectl edit, another
    tool) owns fields then, and the caller falls back to the dry run."""
    want = ((obj.get("metadata") or {}).get("annotations") or {}).get(DIGEST_ANNOTATION)
    meta = (live or {}).get("metadata") or {}
    if not want or (meta.get("annotations") or {}).get(DIGEST_ANNOTATION) != want:
        return False
    return all(m.get("subresource") == "status" or (m.get("manager") == field_manager and m.get("operation") == "Apply")
               for m in meta.get("managedFields") or [])


def would_change(client, obj, live, force=False, field_manager=FIELD_MANAGER):
    """(changed, live, preview): whether applying `obj` would change the stored object, by a server-side dry run
    compared without server bookkeeping (so admission defaulting counts, and a no-op is never sent). `live` is
    the object as read (None: it does not exist, which always changes; preview is then None)."""
    if live is None:
        return True, None, None
    if unchanged_by_digest(obj, live, field_manager):
        return False, live, None
    preview = client.apply(obj, field_manager, force, dry_run=True)
    return normalize(preview) != normalize(live), live, preview


BUNDLE_ANNOTATIONS = ("gateway.networking.k8s.io/bundle-version", "inference.networking.k8s.io/bundle-version")


def keep_newer_bundles(client, objects, seen=None):
    """(objects to apply, lines saying what is kept): a CustomResourceDefinition whose bundle-version annotation
    (Gateway API, inference extension) is older than the one installed is left out. Another deployment on the
    cluster may need the newer one, and Gateway API v1.5's safe-upgrades ValidatingAdmissionPolicy refuses the
    older CRDs anyway."""
    from ansible_collections.llmd.wide_ep.plugins.module_utils import versions

    def bundle_key(obj):
        notes = (obj.get("metadata") or {}).get("annotations") or {}
        return next((k for k in BUNDLE_ANNOTATIONS if k in notes), None) \
            if obj.get("kind") == "CustomResourceDefinition" else None

    def installed(obj):
        return client.get(obj) if bundle_key(obj) else None

    with ThreadPoolExecutor(READERS) as pool:
        lives = list(pool.map(installed, objects))
    out, kept = [], []
    for obj, live in zip(objects, lives, strict=True):
        if seen is not None and bundle_key(obj):   # what was read, for run(known=...) not to read it again
            seen[describe(obj)] = live
        notes = (obj.get("metadata") or {}).get("annotations") or {}
        key = bundle_key(obj)
        have = ((live or {}).get("metadata", {}).get("annotations") or {}).get(key)
        if have and versions.newer(have, notes[key]):
            kept.append("%s: %s installed, newer than %s: kept" % (obj["metadata"]["name"], have, notes[key]))
            continue
        out.append(obj)
    return out, kept


def validate(objects, kinds=None, namespace=None):
    """Return the objects with the module's namespace filled in, or raise K8sError listing every problem."""
    problems, out = [], []
    for i, obj in enumerate(objects or []):
        where = "definitions[%d]" % i
        if not isinstance(obj, dict):
            problems.append("%s: not a mapping" % where)
            continue
        obj = dict(obj)
        meta = dict(obj.get("metadata") or {})
        for key in ("apiVersion", "kind"):
            if not obj.get(key):
                problems.append("%s: missing %s" % (where, key))
        if not meta.get("name"):
            problems.append("%s: missing metadata.name" % where)
        if kinds and obj.get("kind") not in kinds:
            problems.append("%s: kind %s is not handled here (only %s)" % (where, obj.get("kind"), ", ".join(kinds)))
        cluster_scoped = obj.get("kind") in ("Namespace", "CustomResourceDefinition")
        if namespace and not meta.get("namespace") and not cluster_scoped:
            meta["namespace"] = namespace
        obj["metadata"] = meta
        out.append(obj)
    if problems:
        raise K8sError("invalid definitions: " + "; ".join(problems))
    return out


def run(module, objects, kinds=None, before_change=None, client=None, known=None):
    """Apply (or delete) the objects. before_change(client, obj), when given, is called once, before the first
    object that would change (in check mode too, so --check fails where a real run would); it raises to refuse.
    known: {describe(obj): live object or None} the caller has just read, not read again."""
    p = module.params
    check = module.check_mode
    started = time.monotonic()
    objects = [with_digest(o) for o in validate(objects, kinds, p.get("namespace"))]
    client = client or Client(p)
    for obj in objects:          # resolve every kind before the first change: a missing CRD fails cleanly
        client.path(obj)

    guarded = []

    def guard(obj):   # the first object that would change, once
        if before_change and not guarded:
            before_change(client, obj)
            guarded.append(obj)

    results, diffs, changed, since = [], [], False, {}
    reads = _read_all(client, objects, p, known or {})
    for i, obj in enumerate(objects):
        read = reads[i]
        before = read[1]
        if p["state"] == "present":
            after, obj_changed = _apply_one(client, obj, read, p, check, guard)
        else:
            after, obj_changed = None, before is not None
            if before is not None:
                client.delete(obj, dry_run=check)
        changed |= obj_changed
        if obj_changed and after is not None and before is not None and obj["kind"] == "LeaderWorkerSet" and \
                after["spec"].get("leaderWorkerTemplate") != before["spec"].get("leaderWorkerTemplate"):
            since[describe(obj)] = applied_at(after, p["field_manager"])   # its groups roll: wait for new pods
        result = {"name": obj["metadata"]["name"], "kind": obj["kind"],
                  "namespace": obj["metadata"].get("namespace"), "changed": obj_changed}
        if after is not None:
            result["status"] = after.get("status", {})
        results.append(result)
        if obj_changed and module._diff:
            diffs.append({"before_header": describe(obj), "after_header": describe(obj),
                          "before": _yaml(normalize(before, hide_secrets=True)),
                          "after": _yaml(normalize(after, hide_secrets=True))})

    progress = Progress()
    applied, applied_requests = time.monotonic(), client.requests
    if p.get("wait") and not check:
        if p["state"] == "present":
            unchanged = {describe(obj): read[1] for obj, read in zip(objects, reads, strict=True) if not read[0]}
            live = wait_ready(client, objects, p["wait_timeout"], p["wait_sleep"], progress, known=unchanged,
                              since=since)
            for result in results:
                obj = live.get("%s %s/%s" % (result["kind"], result["namespace"], result["name"])) or live.get(
                    "%s %s" % (result["kind"], result["name"]))
                if obj:
                    result["status"] = obj.get("status", {})
                    result["ready"] = readiness(obj, client)[1]
        else:
            _wait_gone(client, objects, p["wait_timeout"], p["wait_sleep"], progress)
    out = {"changed": changed, "results": results, "api_requests": client.requests,
           "timings": {"apply_seconds": round(applied - started, 3), "apply_requests": applied_requests,
                       "dry_runs": client.dry_runs,
                       "wait_seconds": round(time.monotonic() - applied, 3),
                       "wait_requests": client.requests - applied_requests}}
    if progress:
        out["progress"] = progress
    if diffs:
        out["diff"] = diffs
    return out


def _read_all(client, objects, p, known):
    """(would change, live, dry-run preview) of every object, read at once over the connection pool: the
    reads and dry runs change nothing, so their order does not matter; the writes that follow go in order."""
    def read(obj):
        key = describe(obj)
        live = known[key] if key in known else client.get(obj)
        if p["state"] != "present":
            return live is not None, live, None
        return would_change(client, obj, live, p["force_conflicts"], p["field_manager"])

    if len(objects) < 2:
        return [read(obj) for obj in objects]
    with ThreadPoolExecutor(min(READERS, len(objects))) as pool:
        return list(pool.map(read, objects))


def _apply_one(client, obj, read, p, check, guard):
    """Apply one object; report a change only when the stored object would differ.

    An existing object was first applied as a server-side dry run and compared without server bookkeeping
    (_read_all): a no-op apply is then never sent. (A real no-op apply can still bump an object's generation, as
    the LWS webhook's defaulting does, which would report a change that changed nothing.)"""
    ns = obj["metadata"].get("namespace")
    changed, before, preview = read
    if not changed:
        return before, False
    guard(obj)   # from here on the object changes
    if check and before is not None:
        return preview, True
    if check and ns and not client.namespace_exists(ns):
        # Created by this call or an earlier task of the same run: a dry run would only say it is missing.
        return obj, True
    after = client.apply(obj, p["field_manager"], p["force_conflicts"], dry_run=check)
    return after, True


def _wait_gone(client, objects, timeout, sleep, progress):
    deadline = time.time() + timeout
    while True:
        left = [o for o in objects if client.get(o) is not None]
        if not left:
            return
        if time.time() >= deadline:
            raise K8sError("timed out after %ss waiting for deletion of %s" % (
                timeout, ", ".join(describe(o) for o in left)))
        progress.append("%s waiting for deletion of %d objects" % (time.strftime("%H:%M:%S"), len(left)))
        time.sleep(sleep)
