# Copyright: llm-d wide-EP collection contributors
# Apache-2.0
"""The apply loop shared by the object modules: validate every object, resolve every path, then apply them all
over one client; honest check mode (server-side dry run) and --diff; optional wait for readiness."""
from __future__ import annotations

import time

from ansible_collections.llmd.wide_ep.plugins.module_utils import yamlout
from ansible_collections.llmd.wide_ep.plugins.module_utils.k8s import (
    Client,
    K8sError,
    describe,
    normalize,
    readiness,
    wait_ready,
)
from ansible_collections.llmd.wide_ep.plugins.module_utils.progress import Progress


def _yaml(obj):
    return yamlout.dump(obj, sort_keys=True) if obj is not None else ""


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


def run(module, objects, kinds=None, before_change=None):
    """Apply (or delete) the objects. before_change(client, obj), when given, is called once, before the first
    object that would change (in check mode too, so --check fails where a real run would); it raises to refuse."""
    p = module.params
    check = module.check_mode
    objects = validate(objects, kinds, p.get("namespace"))
    client = Client(p.get("kubeconfig"), p.get("context"))
    for obj in objects:          # resolve every kind before the first change: a missing CRD fails cleanly
        client.path(obj)

    guarded = []

    def guard(obj):   # the first object that would change, once
        if before_change and not guarded:
            before_change(client, obj)
            guarded.append(obj)

    results, diffs, changed = [], [], False
    for obj in objects:
        before = client.get(obj)
        if p["state"] == "present":
            after, obj_changed = _apply_one(client, obj, before, p, check, guard)
        else:
            after, obj_changed = None, before is not None
            if before is not None:
                client.delete(obj, dry_run=check)
        changed |= obj_changed
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
    if p.get("wait") and not check:
        if p["state"] == "present":
            live = wait_ready(client, objects, p["wait_timeout"], p["wait_sleep"], progress)
            for result in results:
                obj = live.get("%s %s/%s" % (result["kind"], result["namespace"], result["name"])) or live.get(
                    "%s %s" % (result["kind"], result["name"]))
                if obj:
                    result["status"] = obj.get("status", {})
                    result["ready"] = readiness(obj)[1]
        else:
            _wait_gone(client, objects, p["wait_timeout"], p["wait_sleep"], progress)
    out = {"changed": changed, "results": results, "api_requests": client.requests}
    if progress:
        out["progress"] = progress
    if diffs:
        out["diff"] = diffs
    return out


def _apply_one(client, obj, before, p, check, guard):
    """Apply one object; report a change only when the stored object would differ.

    An existing object is first applied as a server-side dry run and compared without server bookkeeping: a
    no-op apply is then never sent. (A real no-op apply can still bump an object's generation, as the LWS
    webhook's defaulting does, which would report a change that changed nothing.)"""
    ns = obj["metadata"].get("namespace")
    if before is not None:
        preview = client.apply(obj, p["field_manager"], p["force_conflicts"], dry_run=True)
        if normalize(preview) == normalize(before):
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
