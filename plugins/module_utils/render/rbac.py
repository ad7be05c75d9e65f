# Copyright: llm-d wide-EP collection contributors
# Apache-2.0
"""The least-privilege RBAC of the identity that runs site.yml, upgrade.yml and teardown.yml: what the
collection's own requests need (data below, one record per step that needs it), every kind the plan applies,
and every object of the charts the run installs (rendered with `helm template`), with the rules of the chart's
own Roles and ClusterRoles, which the API server lets an identity grant only when it holds them itself."""
from __future__ import annotations

from ansible_collections.llmd.wide_ep.plugins.module_utils.k8s.client import BUILTIN

MANAGE = ["get", "list", "watch", "create", "update", "patch", "delete"]
READ = ["get", "list", "watch"]
RBAC_GROUP = "rbac.authorization.k8s.io"
# Kinds without a namespace that a chart may hold (the others are namespaced: the release's namespace).
CLUSTER_KINDS = {"Namespace", "CustomResourceDefinition", "ClusterRole", "ClusterRoleBinding", "PriorityClass",
                 "MutatingWebhookConfiguration", "ValidatingWebhookConfiguration", "APIService", "StorageClass",
                 "IngressClass", "GatewayClass", "RuntimeClass"}

# What the collection's modules ask of the deployment's namespace, besides the plan's objects: (group,
# resources, verbs, why).
NAMESPACE_NEEDS = [
    ("", ["secrets"], MANAGE, "the Hugging Face token Secret, and helm's release records"),
    ("", ["configmaps"], MANAGE, "the revision record wide-ep-revisions (upgrade, rollback)"),
    ("", ["pods"], READ + ["create", "delete", "deletecollection"],
     "readiness and progress of every group; a split group recreated whole; the image pre-pull's pods"),
    ("", ["pods/log"], ["get"], "why a pod failed, in the progress and verify messages"),
    ("", ["pods/proxy", "services/proxy"], ["get", "create"], "the smoke request and the per-hop probes"),
    ("", ["endpoints", "events"], READ, "the EPP's endpoints; why a pod is pending"),
    ("discovery.k8s.io", ["endpointslices"], READ, "the EPP's endpoints"),
    ("apps", ["replicasets"], READ, "helm 4's readiness watcher on the EPP Deployment"),
    ("coordination.k8s.io", ["leases"], ["get", "create", "update", "delete"], "the rollout lease wide-ep-rollout"),
    ("*", ["*"], ["list"], "teardown_namespace: what else the namespace holds, listed before it is deleted"),
]
# ... of the cluster: (group, resources, verbs, why).
CLUSTER_NEEDS = [
    ("", ["nodes"], READ, "free GPUs for scale and upgrade surge; where each group runs"),
    ("", ["pods"], ["list"], "the GPUs the pods of every namespace hold (what is free for a surge group)"),
    ("apiextensions.k8s.io", ["customresourcedefinitions"], ["get", "list"], "which CRDs and versions are served"),
    ("admissionregistration.k8s.io", ["mutatingwebhookconfigurations"], ["get", "list"],
     "where the LeaderWorkerSet webhook is served (lws_facts)"),
    ("leaderworkerset.x-k8s.io", ["leaderworkersets"], ["list"],
     "every LeaderWorkerSet, anyone's, that a change of the LWS controller must not lose (lws_crds)"),
    ("disaggregatedset.x-k8s.io", ["disaggregatedsets"], ["list"],
     "every DisaggregatedSet that a change of the LWS controller must not lose (lws_crds)"),
]
# ... of the LeaderWorkerSet controller's namespace, to see how it was installed (lws_facts).
LWS_NAMESPACE_NEEDS = [
    ("", ["secrets"], ["get", "list"], "the LWS chart's helm release records"),
    ("apps", ["deployments"], ["get"], "the LWS controller Deployment"),
    ("coordination.k8s.io", ["leases"], ["get"], "which LWS controller holds its leader lease after a change"),
]
# ... for a DisaggregatedSet workload (the plan's needs.disaggregatedset): (scope, group, resources, verbs, why);
# scope None is the cluster, "" the deployment's namespace.
DS_NEEDS = [
    ("", "leaderworkerset.x-k8s.io", ["leaderworkersets"], MANAGE,
     "the DisaggregatedSet's LeaderWorkerSets (readiness per role), and the pair a move scales down and deletes"),
    (None, "admissionregistration.k8s.io", ["validatingwebhookconfigurations"], ["get", "list"],
     "whether the LWS controller serves the DisaggregatedSet webhook (lws_facts)"),
    ("default", "disaggregatedset.x-k8s.io", ["disaggregatedsets"], ["create"],
     "the server-side dry run that proves the controller admits a DisaggregatedSet (nothing is stored)"),
]
# ... when the pods attach GKE networks (the plan's needs.gke_networks)
GKE_NEEDS = [("networking.gke.io", ["networks"], ["list"], "the RDMA networks the pods attach (workload_preflight)")]
CRD_WRITE = ("apiextensions.k8s.io", ["customresourcedefinitions"], ["create", "update", "patch"],
             "the Gateway API and inference-extension CRDs (gateway_api_crds)")


def plural(api_version, kind):
    """The resource of a kind: a built-in's, else Kubernetes' convention for custom resources."""
    if kind in BUILTIN.get(api_version, {}):
        return BUILTIN[api_version][kind][0]
    low = kind.lower()
    if low.endswith("y") and low[-2:-1] not in "aeiou":
        return low[:-1] + "ies"
    return low + ("es" if low.endswith("s") else "s")


def group_of(api_version):
    return api_version.split("/")[0] if "/" in api_version else ""


class Rules:
    """Rules per scope: None for the cluster, else a namespace; merged by (group, resource names)."""

    def __init__(self):
        self.by_scope = {}

    def add(self, scope, group, resources, verbs, resource_names=None, non_resource_urls=None):
        key = (tuple(non_resource_urls or ()), group, tuple(sorted(resources or ())), tuple(resource_names or ()))
        rules = self.by_scope.setdefault(scope, {})
        rules.setdefault(key, set()).update(verbs)

    def add_rule(self, scope, rule):
        """A rule of a chart's Role or ClusterRole (several groups and resources), verbatim."""
        for group in rule.get("apiGroups") or [""]:
            self.add(scope, group, rule.get("resources") or [], rule.get("verbs") or [],
                     rule.get("resourceNames"), rule.get("nonResourceURLs") if scope is None else None)

    def rules(self, scope):
        out = []
        for (urls, group, resources, names), verbs in sorted(self.by_scope.get(scope, {}).items()):
            verbs = ["*"] if "*" in verbs else sorted(verbs)
            if urls:
                out.append({"nonResourceURLs": list(urls), "verbs": verbs})
                continue
            rule = {"apiGroups": [group], "resources": list(resources), "verbs": verbs}
            if names:
                rule["resourceNames"] = list(names)
            out.append(rule)
        return out


def operator_rules(plan, charts, lws_namespace, apply_crds):
    """Rules of the operator: charts is [(namespace, [objects])] as `helm template` renders them."""
    ns = plan["refs"]["namespace"]
    rules = Rules()
    for group, resources, verbs, _why in NAMESPACE_NEEDS:
        rules.add(ns, group, resources, verbs)
    for group, resources, verbs, _why in CLUSTER_NEEDS + ([CRD_WRITE] if apply_crds else []):
        rules.add(None, group, resources, verbs)
    for group, resources, verbs, _why in GKE_NEEDS if plan["needs"].get("gke_networks") else []:
        rules.add(None, group, resources, verbs)
    for group, resources, verbs, _why in LWS_NAMESPACE_NEEDS:
        rules.add(lws_namespace, group, resources, verbs)
    for scope, group, resources, verbs, _why in DS_NEEDS if plan["needs"].get("disaggregatedset") else []:
        rules.add(ns if scope == "" else scope, group, resources, verbs)
    # The deployment's namespace: created if missing; get, change and (teardown_namespace) delete only it.
    rules.add(None, "", ["namespaces"], ["create"])
    rules.add(None, "", ["namespaces"], ["get", "patch", "update", "delete"], resource_names=[ns])
    for group in ("model_servers", "pod_monitors", "gateway"):
        for obj in plan["objects"][group]:
            rules.add(ns, group_of(obj["apiVersion"]), [plural(obj["apiVersion"], obj["kind"])], MANAGE)
    for namespace, objects in charts:
        for obj in objects:
            scope = None if obj["kind"] in CLUSTER_KINDS else (obj.get("metadata") or {}).get("namespace") or namespace
            rules.add(scope, group_of(obj["apiVersion"]), [plural(obj["apiVersion"], obj["kind"])], MANAGE)
            if obj["kind"] in ("Role", "ClusterRole"):   # granted only by who holds it (no escalate)
                for rule in obj.get("rules") or []:
                    rules.add_rule(None if obj["kind"] == "ClusterRole" else scope, rule)
            if obj["kind"] == "Namespace":
                rules.add(None, "", ["namespaces"], ["get", "patch", "update"],
                          resource_names=[obj["metadata"]["name"]])
            ref_ = obj.get("roleRef") or {}
            if ref_.get("kind") == "ClusterRole" and not any(
                    o["kind"] == "ClusterRole" and o["metadata"]["name"] == ref_.get("name") for o in objects):
                rules.add(None, RBAC_GROUP, ["clusterroles"], ["bind"], resource_names=[ref_["name"]])
    return rules


def objects(rules, name, subject):
    """ClusterRole + ClusterRoleBinding and a Role + RoleBinding per namespace, bound to subject."""
    labels = {"app.kubernetes.io/managed-by": "llmd.wide_ep", "app.kubernetes.io/component": "operator-rbac"}
    out = [{"apiVersion": RBAC_GROUP + "/v1", "kind": "ClusterRole", "metadata": {"name": name, "labels": labels},
            "rules": rules.rules(None)},
           {"apiVersion": RBAC_GROUP + "/v1", "kind": "ClusterRoleBinding",
            "metadata": {"name": name, "labels": labels},
            "roleRef": {"apiGroup": RBAC_GROUP, "kind": "ClusterRole", "name": name}, "subjects": [subject]}]
    for scope in sorted(s for s in rules.by_scope if s is not None):
        meta = {"name": name, "namespace": scope, "labels": labels}
        out.append({"apiVersion": RBAC_GROUP + "/v1", "kind": "Role", "metadata": meta, "rules": rules.rules(scope)})
        out.append({"apiVersion": RBAC_GROUP + "/v1", "kind": "RoleBinding", "metadata": dict(meta),
                    "roleRef": {"apiGroup": RBAC_GROUP, "kind": "Role", "name": name}, "subjects": [subject]})
    return out
