# Copyright: llm-d wide-EP collection contributors
# Apache-2.0
"""What is in a namespace, and which of it this collection did not create: what deleting the namespace would take
with it besides the deployment. Objects count as the collection's when it wrote them (a managedFields entry of an
`llmd.wide_ep*` manager: every apply, the record, the lease), when its helm release owns them, or when they belong
to such an object (ownerReferences: LWS pods, their headless Services, ReplicaSets). Kubernetes' own per-namespace
objects and derived records (events, endpoints) are never counted."""
from __future__ import annotations

from ansible_collections.llmd.wide_ep.plugins.module_utils.k8s.client import FIELD_MANAGER

# Made by Kubernetes in every namespace, or derived from other objects: not anyone's to keep.
KUBERNETES_OWN = {("ConfigMap", "kube-root-ca.crt"), ("ServiceAccount", "default")}
DERIVED_KINDS = {"Event", "Endpoints", "EndpointSlice"}
HELM_RELEASE_ANNOTATION = "meta.helm.sh/release-name"


def namespaced_resources(client):
    """(apiVersion, kind, plural) of every listable namespaced resource the server serves (preferred versions)."""
    out = []
    for api_version in client.api_groups(preferred=True):
        for r in (client.resources(api_version) or {}).get("resources", []):
            if r.get("namespaced") and "/" not in r["name"] and "list" in r.get("verbs", []):
                out.append((api_version, r["kind"], r["name"]))
    return out


def contents(client, namespace):
    """Every object in the namespace, as {apiVersion, kind, metadata}."""
    found = []
    for api_version, kind, _plural in namespaced_resources(client):
        if kind in DERIVED_KINDS:
            continue
        for item in client.list(api_version, kind, namespace):
            found.append({"apiVersion": api_version, "kind": kind, "metadata": item.get("metadata", {})})
    return found


def is_ours(obj, releases, named=frozenset()):
    meta = obj["metadata"]
    if (obj["kind"], meta.get("name")) in named:
        return True  # one of the plan's objects (an apply that sets no field leaves no managedFields entry)
    if (obj["kind"], meta.get("name")) in KUBERNETES_OWN or meta.get("ownerReferences"):
        return True  # Kubernetes' own, or goes with its owner (listed itself when the owner is someone else's)
    if (meta.get("annotations") or {}).get(HELM_RELEASE_ANNOTATION) in releases:
        return True
    labels = meta.get("labels") or {}
    if labels.get("owner") == "helm" and labels.get("name") in releases:
        return True  # helm's own release record (Secret sh.helm.release.v1.<release>.vN)
    return any((m.get("manager") or "").startswith(FIELD_MANAGER) for m in meta.get("managedFields") or [])


def foreign(client, namespace, releases, definitions=()):
    """'Kind name' of every object in the namespace that the collection did not create, sorted. `definitions` are
    the plan's objects: they are the collection's whoever last wrote them."""
    named = frozenset((d.get("kind"), d.get("metadata", {}).get("name")) for d in definitions)
    releases = set(releases)
    return sorted("%s %s" % (o["kind"], o["metadata"]["name"]) for o in contents(client, namespace)
                  if not is_ours(o, releases, named))
