"""The image pre-pull's pure parts (module_utils/k8s/prepull.py): reference normalisation as the kubelet lists
images, which nodes need what, the pod it makes, and how a pod's status reads. The pods themselves run on the
local cluster (tests/integration/test_28_cluster_preflight.py) and on kind's real kubelets (molecule/kind)."""
import pytest

from ansible_collections.llmd.wide_ep.plugins.module_utils.k8s import prepull
from ansible_collections.llmd.wide_ep.plugins.module_utils.render import plan, topology

VLLM = "ghcr.io/llm-d/llm-d-cuda:v0.9.0"
SIDECAR = "ghcr.io/llm-d/llm-d-router-disagg-sidecar:v0.10.0"


@pytest.mark.parametrize("ref, listed", [
    ("vllm/vllm-openai:v0.10.1", "docker.io/vllm/vllm-openai:v0.10.1"),
    ("busybox", "docker.io/library/busybox:latest"),
    ("docker.io/busybox:1.36", "docker.io/library/busybox:1.36"),
    ("localhost:5000/sim/vllm:dev", "localhost:5000/sim/vllm:dev"),
    ("registry.local/x/y", "registry.local/x/y:latest"),
    ("ghcr.io/a/b:v1@sha256:abc", "ghcr.io/a/b@sha256:abc"),
    ("ghcr.io/a/b@sha256:abc", "ghcr.io/a/b@sha256:abc"),
])
def test_references_read_as_the_kubelet_lists_them(ref, listed):
    assert prepull.normalize(ref) == listed


def workloads(version="v0.9.0", **over):
    settings = dict(topology.DEFAULT_SETTINGS, provider="local", dp_mode="dp-aware", llmd_version=version, **over)
    return plan.render(settings)["objects"]["workloads"]


def node(name, images=(), labels=None, taints=()):
    return {"metadata": {"name": name, "labels": labels or {}},
            "spec": {"taints": list(taints)},
            "status": {"images": [{"names": list(images) + ["registry.k8s.io/pause:3.10"], "sizeBytes": 1}]
                       if images is not None else []}}


def test_the_workloads_images_per_role_sidecar_included():
    found = prepull.images(workloads())
    assert found["prefill"] == [VLLM]
    assert set(found["decode"]) == {VLLM, SIDECAR}


def test_each_node_gets_what_it_lacks_and_nodes_that_list_nothing_are_named():
    nodes = [node("has-all", [VLLM, SIDECAR]), node("has-vllm", [VLLM]), node("bare"),
             node("kwok", images=None)]
    out = prepull.plan(nodes, workloads())
    assert out == {"pull": {"has-vllm": [SIDECAR], "bare": [VLLM, SIDECAR]}, "present": ["has-all"],
                   "unknown": ["kwok"]}


def test_nodes_no_pod_of_the_workload_may_run_on_are_left_alone():
    taint = {"key": "dedicated", "value": "infra", "effect": "NoSchedule"}
    out = prepull.plan([node("infra", taints=[taint]), node("gpu")], workloads())
    assert list(out["pull"]) == ["gpu"] and out["present"] == [] and out["unknown"] == []


def test_the_pod_is_bound_to_its_node_tolerates_all_and_pulls_with_the_workloads_secrets():
    spec = {"serviceAccountName": "wide-ep", "imagePullSecrets": [{"name": "ghcr"}]}
    obj = prepull.pod("gpu-3", [VLLM, SIDECAR], "llm-d", "r1", spec)
    assert obj["spec"]["nodeName"] == "gpu-3" and obj["spec"]["restartPolicy"] == "Never"
    assert obj["spec"]["tolerations"] == [{"operator": "Exists"}]
    assert [c["image"] for c in obj["spec"]["containers"]] == [VLLM, SIDECAR]
    assert all("resources" not in c for c in obj["spec"]["containers"])
    assert obj["spec"]["imagePullSecrets"] == [{"name": "ghcr"}] and obj["spec"]["serviceAccountName"] == "wide-ep"
    assert obj["metadata"]["labels"][prepull.LABEL] == "r1"


def status(*containers, phase="Pending", **extra):
    return {"spec": {"containers": [{"name": "pull-%d" % i} for i in range(len(containers))]},
            "status": dict(phase=phase, containerStatuses=[dict(c, name="pull-%d" % i, image="img%d" % i)
                                                           for i, c in enumerate(containers) if c is not None],
                           **extra)}


@pytest.mark.parametrize("pod, verdict", [
    (status({"state": {"terminated": {"exitCode": 0}}, "imageID": "sha256:1"}), "pulled"),
    (status({"state": {"running": {}}}), "pulled"),                               # kwok sets no imageID
    (status({"state": {"terminated": {"reason": "StartError"}}}), "pulled"),      # no `true` in the image
    (status({"state": {"running": {}}}, {"state": {"waiting": {"reason": "ContainerCreating"}}}), "pulling"),
    (status({"state": {"running": {}}}, None), "pulling"),
    (status({"state": {"waiting": {"reason": "ImagePullBackOff", "message": "Back-off pulling"}}}), "failing"),
    (status({"state": {"waiting": {"reason": "InvalidImageName", "message": "bad"}}}), "failed"),
    (status(None, phase="Failed", reason="OutOfpods", message="Node didn't have enough resource"), "failed"),
])
def test_a_pods_status_reads_as_pulled_pulling_failing_or_failed(pod, verdict):
    got, why = prepull.state(pod)
    assert got == verdict
    assert bool(why) == (verdict in ("failing", "failed"))


def test_an_image_a_running_container_started_from_is_held_before_the_node_lists_it():
    pods = [{"spec": {"nodeName": "has-vllm"}, "status": {"initContainerStatuses": [   # the native sidecar
        {"image": SIDECAR, "imageID": "sha256:1", "state": {"running": {}}}]}},
        {"spec": {"nodeName": "bare"}, "status": {"containerStatuses": [
            {"image": VLLM, "imageID": "", "state": {"waiting": {"reason": "ContainerCreating"}}}]}}]
    out = prepull.plan([node("has-vllm", [VLLM]), node("bare")], workloads(), prepull.running(pods))
    assert out["pull"] == {"bare": [VLLM, SIDECAR]} and out["present"] == ["has-vllm"]


class Events:
    """A client whose namespace holds these Pulled events (what prepull.already_present lists)."""

    def __init__(self, events):
        self.events = events

    def list(self, api_version, kind, namespace=None, label_selector=None, field_selector=None):
        assert (kind, field_selector) == ("Event", "reason=Pulled")
        return self.events


def test_a_node_whose_kubelet_had_every_image_pulled_nothing():
    def pulled(pod, image, present):
        message = ("Container image %r already present on machine" % image if present else
                   "Successfully pulled image %r in 3.2s" % image)
        return {"involvedObject": {"name": pod}, "message": message}
    names = {"pp-a": "gpu-0", "pp-b": "gpu-1"}
    pulls = {"gpu-0": [VLLM, SIDECAR], "gpu-1": [VLLM, SIDECAR]}
    events = [pulled("pp-a", VLLM, True), pulled("pp-a", SIDECAR, True), pulled("pp-b", VLLM, True),
              pulled("pp-b", SIDECAR, False), pulled("elsewhere", VLLM, True)]
    assert prepull.already_present(Events(events), "ns", names, pulls, pause=0) == ["gpu-0"]
    assert prepull.already_present(Events([]), "ns", names, pulls, pause=0) == []     # kwok: no events
