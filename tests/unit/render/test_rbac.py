"""The operator's RBAC (module_utils/render/rbac.py): what the plan and the charts need, and the charts' own grants.
Proven against the real RBAC authorizer in tests/integration/test_24_operator_rbac.py."""
from ansible_collections.llmd.wide_ep.plugins.module_utils.render import plan, rbac

SETTINGS = {"provider": "local", "dp_mode": "dp-aware", "gateway": "istio", "namespace": "serving",
            "model": "m", "model_label": "m", "epp_prometheus": False}
CHART = [
    {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "epp"}},
    {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": "epp"},
     "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "watch", "list"]},
               {"apiGroups": ["inference.networking.x-k8s.io"], "resources": ["inferenceobjectives"],
                "verbs": ["get"]}]},
    {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "epp-auth"},
     "rules": [{"apiGroups": ["authentication.k8s.io"], "resources": ["tokenreviews"], "verbs": ["create"]},
               {"nonResourceURLs": ["/metrics"], "verbs": ["get"]}]},
    {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": "view"},
     "roleRef": {"kind": "ClusterRole", "name": "view"}},
    {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition", "metadata": {"name": "x.y.z"}},
]


def rules_of(objects, kind, namespace=None):
    (obj,) = [o for o in objects if o["kind"] == kind and o["metadata"].get("namespace") == namespace]
    return obj["rules"]


def test_plural_of_built_in_and_custom_kinds():
    assert rbac.plural("v1", "Endpoints") == "endpoints"
    assert rbac.plural("leaderworkerset.x-k8s.io/v1", "LeaderWorkerSet") == "leaderworkersets"
    assert rbac.plural("networking.istio.io/v1", "DestinationRule") == "destinationrules"
    assert rbac.plural("x/v1", "NetworkPolicy") == "networkpolicies" and rbac.plural("x/v1", "Gateway") == "gateways"


def test_the_plan_the_charts_and_their_grants():
    the_plan = plan.render(SETTINGS)
    objects = rbac.objects(rbac.operator_rules(the_plan, [("serving", CHART)], "lws-system", apply_crds=False),
                           "op", {"kind": "Group", "name": "ops"})
    role = rules_of(objects, "Role", "serving")
    cluster = rules_of(objects, "ClusterRole")
    assert {"apiGroups": ["leaderworkerset.x-k8s.io"], "resources": ["leaderworkersets"],
            "verbs": sorted(rbac.MANAGE)} in role   # the plan's LeaderWorkerSets
    assert {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": sorted(rbac.MANAGE)} in role   # the chart's
    # The chart's Role grants pods and inferenceobjectives: the operator must hold them to create it.
    assert {"apiGroups": ["inference.networking.x-k8s.io"], "resources": ["inferenceobjectives"],
            "verbs": ["get"]} in role
    assert {"apiGroups": ["authentication.k8s.io"], "resources": ["tokenreviews"], "verbs": ["create"]} in cluster
    assert {"nonResourceURLs": ["/metrics"], "verbs": ["get"]} in cluster
    assert {"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["clusterroles"], "resourceNames": ["view"],
            "verbs": ["bind"]} in cluster     # a ClusterRole the chart binds but does not carry
    assert {"apiGroups": ["apiextensions.k8s.io"], "resources": ["customresourcedefinitions"],
            "verbs": sorted(rbac.MANAGE)} in cluster   # the chart's CRD (helm template --include-crds)
    assert {"apiGroups": [""], "resources": ["namespaces"], "resourceNames": ["serving"],
            "verbs": ["delete", "get", "patch", "update"]} in cluster
    assert [o["kind"] for o in objects] == ["ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding", "Role",
                                            "RoleBinding"]
    assert {o["metadata"].get("namespace") for o in objects} == {None, "lws-system", "serving"}
    assert all(o["subjects"] == [{"kind": "Group", "name": "ops"}] for o in objects if "subjects" in o)


def test_crd_writes_only_when_the_run_applies_crds():
    the_plan = plan.render(SETTINGS)
    crd = {"apiGroups": ["apiextensions.k8s.io"], "resources": ["customresourcedefinitions"]}
    without = rules_of(rbac.objects(rbac.operator_rules(the_plan, [], "lws-system", False), "op", {}), "ClusterRole")
    with_crds = rules_of(rbac.objects(rbac.operator_rules(the_plan, [], "lws-system", True), "op", {}), "ClusterRole")
    assert [r["verbs"] for r in without if {k: r[k] for k in crd} == crd] == [["get", "list"]]
    writes = [r["verbs"] for r in with_crds if {k: r[k] for k in crd} == crd]
    assert writes == [["create", "get", "list", "patch", "update"]]


def test_a_disaggregatedset_workload_adds_its_reads_and_the_admission_dry_run():
    pair = rbac.objects(rbac.operator_rules(plan.render(dict(SETTINGS, llmd_version="v0.9.0")), [], "lws-system",
                                            False), "op", {})
    ds = rbac.objects(rbac.operator_rules(plan.render(dict(SETTINGS, llmd_version="v0.9.0",
                                                           workload="disaggregatedset")), [], "lws-system", False),
                      "op", {})
    assert not [o for o in pair if o["metadata"].get("namespace") == "default"]
    assert rules_of(ds, "Role", "default") == [{"apiGroups": ["disaggregatedset.x-k8s.io"],
                                                "resources": ["disaggregatedsets"], "verbs": ["create"]}]
    serving = rules_of(ds, "Role", "serving")
    assert {"apiGroups": ["leaderworkerset.x-k8s.io"], "resources": ["leaderworkersets"],
            "verbs": sorted(rbac.MANAGE)} in serving
    assert {"apiGroups": ["disaggregatedset.x-k8s.io"], "resources": ["disaggregatedsets"],
            "verbs": sorted(rbac.MANAGE)} in serving
    hooks = {"apiGroups": ["admissionregistration.k8s.io"], "resources": ["validatingwebhookconfigurations"],
             "verbs": ["get", "list"]}
    assert hooks in rules_of(ds, "ClusterRole") and hooks not in rules_of(pair, "ClusterRole")


def test_pods_on_gke_networks_let_the_preflight_list_them():
    gke = dict(SETTINGS, provider="gke", dp_mode="hybrid", gateway="gke-l7-rilb")
    for settings, listed in ((gke, True), (SETTINGS, False)):
        objects = rbac.objects(rbac.operator_rules(plan.render(settings), [], "lws-system", apply_crds=False),
                               "op", {"kind": "Group", "name": "ops"})
        rule = {"apiGroups": ["networking.gke.io"], "resources": ["networks"], "verbs": ["list"]}
        assert (rule in rules_of(objects, "ClusterRole")) is listed
