"""What a namespace holds that the collection did not create (module_utils/k8s/ownership.py)."""
from ansible_collections.llmd.wide_ep.plugins.module_utils.k8s import ownership


def obj(kind, name, **meta):
    return {"kind": kind, "metadata": dict(name=name, **meta)}


def test_ours_by_field_manager_release_owner_or_plan():
    releases = {"llm-d-infpool"}
    assert ownership.is_ours(obj("ConfigMap", "x", managedFields=[{"manager": "llmd.wide_ep.rollout"}]), releases)
    assert ownership.is_ours(obj("Deployment", "e", annotations={ownership.HELM_RELEASE_ANNOTATION: "llm-d-infpool"}),
                             releases)
    assert ownership.is_ours(obj("Secret", "sh.helm.release.v1.llm-d-infpool.v1",
                                 labels={"owner": "helm", "name": "llm-d-infpool"}), releases)
    assert ownership.is_ours(obj("Pod", "p", ownerReferences=[{"kind": "StatefulSet"}]), releases)
    assert ownership.is_ours(obj("ServiceAccount", "default"), releases)
    assert ownership.is_ours(obj("ServiceAccount", "deepseek-r1"), releases, frozenset({("ServiceAccount",
                                                                                         "deepseek-r1")}))


def test_someone_elses_objects_are_foreign():
    releases = {"llm-d-infpool"}
    assert not ownership.is_ours(obj("ConfigMap", "team-b", managedFields=[{"manager": "kubectl-client-side-apply"}]),
                                 releases)
    assert not ownership.is_ours(obj("Deployment", "e", annotations={ownership.HELM_RELEASE_ANNOTATION: "other"}),
                                 releases)
