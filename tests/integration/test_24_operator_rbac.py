"""Least privilege, proven against the real RBAC authorizer: render.yml writes the operator's RBAC for the local
inventory; a ServiceAccount bound to exactly those objects runs site.yml, an upgrade.yml of the model servers and
teardown.yml; the same RBAC less one verb fails with one line naming the verb, the resource and the namespace."""
import copy

import pytest
import yaml

from tests.support.runs import KUBECONFIG, run_playbook

NS = "llm-d-wide-ep"
IDENTITY_NS = "llmd-operator"
SUBJECT = {"kind": "ServiceAccount", "name": "operator", "namespace": IDENTITY_NS}


def decode(*extra_args):
    return {"wide_ep_decode": {"replicas": 1, "group_size": 2, "dp_local": 8, "extra_args": list(extra_args)}}


@pytest.fixture(scope="module")
def rbac(cluster, tmp_path_factory):
    out = tmp_path_factory.mktemp("render")
    rc, _, _, log = run_playbook("playbooks/render.yml", extra_vars={
        "render_dir": str(out), "operator_rbac_subject": SUBJECT})
    assert rc == 0, log
    objects = [yaml.safe_load(p.read_text()) for p in sorted(out.glob("rbac-*.yaml"))]
    cluster("create", "namespace", IDENTITY_NS, check=False)
    cluster("create", "serviceaccount", "operator", "-n", IDENTITY_NS, check=False)
    before = {n["metadata"]["name"] for n in cluster.json("get", "namespaces")["items"]}
    yield objects
    created = {n["metadata"]["name"] for n in cluster.json("get", "namespaces")["items"]} - before
    for namespace in sorted(created | {NS}):   # lws-system, made here only to hold the operator's Role
        cluster("delete", "namespace", namespace, "--ignore-not-found", "--wait=true", "--timeout=120s")
    cluster("delete", "namespace", IDENTITY_NS, "--ignore-not-found", "--wait=false")
    for obj in objects:
        if obj["kind"].startswith("Cluster"):
            cluster("delete", obj["kind"].lower(), obj["metadata"]["name"], "--ignore-not-found")


def kubeconfig_of_operator(cluster, path):
    """The local cluster's kubeconfig with the ServiceAccount's token instead of the admin's credentials."""
    token = cluster("create", "token", "operator", "-n", IDENTITY_NS, "--duration=2h").stdout.strip()
    cfg = yaml.safe_load(KUBECONFIG.read_text())
    for user in cfg["users"]:
        user["user"] = {"token": token}
    path.write_text(yaml.safe_dump(cfg))
    return str(path)


def bind(cluster, objects):
    for kind in ("Role", "RoleBinding"):   # the namespaces the Roles live in exist before them
        for obj in objects:
            if obj["kind"] == kind:
                cluster("create", "namespace", obj["metadata"]["namespace"], check=False)
    cluster("apply", "--server-side", "--force-conflicts", "-f", "-", stdin=yaml.safe_dump_all(objects))


def test_rendered_rbac_names_the_operator_and_its_namespaces(rbac):
    kinds = sorted((o["kind"], o["metadata"].get("namespace", "")) for o in rbac)
    assert kinds == [("ClusterRole", ""), ("ClusterRoleBinding", ""), ("Role", NS), ("Role", "lws-system"),
                     ("RoleBinding", NS), ("RoleBinding", "lws-system")]
    assert all(o["subjects"] == [SUBJECT] for o in rbac if "subjects" in o)
    cluster_rules = next(o for o in rbac if o["kind"] == "ClusterRole")["rules"]
    namespaces = [r for r in cluster_rules if r["resources"] == ["namespaces"] and "resourceNames" in r]
    assert namespaces == [{"apiGroups": [""], "resources": ["namespaces"], "resourceNames": [NS],
                           "verbs": ["delete", "get", "patch", "update"]}]
    assert not any("*" in r["verbs"] for o in rbac if "rules" in o for r in o["rules"])


def test_site_upgrade_and_teardown_run_with_exactly_that_rbac(cluster, rbac, tmp_path):
    bind(cluster, rbac)
    access = {"wide_ep_kubeconfig": kubeconfig_of_operator(cluster, tmp_path / "operator.kubeconfig")}
    rc, stats, _, log = run_playbook("site.yml", extra_vars=access)
    assert rc == 0, log
    lws = cluster.json("get", "lws", "wide-ep-llm-d-decode", "-n", NS)
    rc, stats, _, log = run_playbook("playbooks/upgrade.yml", extra_vars={
        **access, **decode("--max-num-seqs=384"), "upgrade_gate_timeout": 120})
    assert rc == 0, log
    after = cluster.json("get", "lws", "wide-ep-llm-d-decode", "-n", NS)
    assert after["metadata"]["generation"] > lws["metadata"]["generation"]
    assert "--max-num-seqs=384" in str(after["spec"]["leaderWorkerTemplate"])
    # The namespace stays: it holds the operator's own Role (teardown_namespace would list it as not ours).
    rc, stats, _, log = run_playbook("playbooks/teardown.yml", extra_vars=access)
    assert rc == 0, log
    assert cluster.json("get", "lws,deploy,inferencepool", "-n", NS)["items"] == []


def test_a_verb_missing_fails_with_one_line_naming_it(cluster, rbac, tmp_path):
    """The Role without `patch` on LeaderWorkerSets: site.yml stops at the model servers with the API server's
    refusal, naming the verb, the resource, its group and the namespace."""
    less = copy.deepcopy(rbac)
    role = next(o for o in less if o["kind"] == "Role" and o["metadata"]["namespace"] == NS)
    for rule in role["rules"]:
        if rule["resources"] == ["leaderworkersets"]:
            rule["verbs"].remove("patch")
    cluster("delete", "role", role["metadata"]["name"], "-n", NS, "--ignore-not-found")
    bind(cluster, less)
    access = {"wide_ep_kubeconfig": kubeconfig_of_operator(cluster, tmp_path / "operator.kubeconfig")}
    rc, stats, _, log = run_playbook("site.yml", extra_vars=access)
    assert rc != 0, log
    line = ('cannot patch resource \\"leaderworkersets\\" in API group \\"leaderworkerset.x-k8s.io\\" in the '
            'namespace \\"llm-d-wide-ep\\"')
    assert line in log, log
    assert cluster.json("get", "lws", "-n", NS)["items"] == []
