# Copyright: llm-d wide-EP collection contributors
# Apache-2.0
"""The model servers' images pulled onto the nodes they may run on, before the workload is applied.

A LeaderWorkerSet group whose pods start together restarts whole while one of them still pulls a 20+ GB image
(kubernetes-sigs/lws#725, #877); pulling first also takes the download out of the time to a Ready stack. The
nodes' own image lists (status.images) say what is there already: a node that has every image is left alone, a
node that lists no image at all (a virtual kubelet, as kwok's) is reported and skipped, and every other candidate
node gets one short-lived pod whose containers are the missing images. A container counts as pulled once the
kubelet created it (an image ID, or running, or terminated - an image without `true` fails to start, after the
pull); the pods are deleted at the end, whatever happened."""
from __future__ import annotations

import time

from ansible_collections.llmd.wide_ep.plugins.module_utils.k8s import placement
from ansible_collections.llmd.wide_ep.plugins.module_utils.k8s.client import ref

LABEL = "llmd.ai/prepull"
NODE_LABEL = "llmd.ai/prepull-node"
# kubelet's waiting reasons: these do not heal; ErrImagePull / ImagePullBackOff are retried by the kubelet
FINAL_ERRORS = ("InvalidImageName", "ErrImageNeverPull", "CreateContainerConfigError")
PULL_ERRORS = ("ErrImagePull", "ImagePullBackOff")
DOCKER_HUB = "docker.io"


def normalize(image):
    """A reference as the kubelet lists it: registry host, `library/` for Docker Hub's own, `:latest` when
    neither a tag nor a digest is given (docker/distribution's normalisation)."""
    name, at, digest = image.partition("@")
    first, slash, rest = name.partition("/")
    if not slash or not ("." in first or ":" in first or first == "localhost"):
        name = DOCKER_HUB + "/" + name
    if name.startswith(DOCKER_HUB + "/") and "/" not in name[len(DOCKER_HUB) + 1:]:
        name = DOCKER_HUB + "/library/" + name[len(DOCKER_HUB) + 1:]
    if at:
        return name.rsplit(":", 1)[0] + "@" + digest if ":" in name.rsplit("/", 1)[1] else name + "@" + digest
    return name if ":" in name.rsplit("/", 1)[1] else name + ":latest"


def images(workloads):
    """{role: [image]} of every container and native sidecar of the plan's workload (leader and worker
    templates), in order; containers the kubelet never pulls for (imagePullPolicy Never) left out."""
    out = {}
    for role, spec in placement.role_specs(workloads):
        lwt = spec["leaderWorkerTemplate"]
        found = out.setdefault(role, [])
        for template in (lwt.get("leaderTemplate"), lwt["workerTemplate"]):
            pod = (template or {}).get("spec") or {}
            for c in pod.get("initContainers", []) + pod.get("containers", []):
                if c.get("imagePullPolicy") != "Never" and c["image"] not in found:
                    found.append(c["image"])
    return out


def present(node):
    """The normalised names of the images a node holds; None when it lists none (it cannot tell)."""
    listed = (node.get("status") or {}).get("images") or []
    names = {normalize(n) for image in listed for n in image.get("names") or []}
    return names or None


def running(pods):
    """{node: normalised images} that the pods' containers (native sidecars included) started from: held there,
    whatever the node's image list says yet (the kubelet refreshes it every 30 s or so)."""
    out = {}
    for p in pods:
        node = (p.get("spec") or {}).get("nodeName")
        status = p.get("status") or {}
        for c in (status.get("containerStatuses") or []) + (status.get("initContainerStatuses") or []):
            if node and (c.get("imageID") or "running" in (c.get("state") or {})):
                out.setdefault(node, set()).add(normalize(c["image"]))
    return out


def plan(nodes, workloads, started=None):
    """What to pull where: {"pull": {node: [image]}, "present": [node], "unknown": [node]} over the nodes a pod of
    some role may run on (placement.why_not, resources aside: a busy node is where the next pod lands).
    `started`: running()'s images per node, held there too."""
    wanted = images(workloads)
    specs = {role: spec for role, dummy, dummy2, spec, dummy3 in placement.roles(workloads)}
    pull, have, unknown = {}, [], []
    for node in nodes:
        needs = [i for role, spec in specs.items() if placement.why_not(node, spec) is None for i in wanted[role]]
        if not needs:
            continue
        name, held = node["metadata"]["name"], present(node)
        if held is None:
            unknown.append(name)
            continue
        held |= (started or {}).get(name, set())
        missing = [i for i in dict.fromkeys(needs) if normalize(i) not in held]
        if missing:
            pull[name] = missing
        else:
            have.append(name)
    return {"pull": pull, "present": have, "unknown": unknown}


def pod(node, pull, namespace, run_id, template_spec):
    """One pod on `node` whose containers are the images to pull; bound by nodeName (no scheduler, no resources
    asked), tolerating every taint, with the workload's pull secrets and ServiceAccount (its imagePullSecrets)."""
    spec = {
        "nodeName": node, "restartPolicy": "Never", "tolerations": [{"operator": "Exists"}],
        "automountServiceAccountToken": False, "enableServiceLinks": False, "terminationGracePeriodSeconds": 0,
        "containers": [{"name": "pull-%d" % i, "image": image, "imagePullPolicy": "IfNotPresent",
                        "command": ["true"]} for i, image in enumerate(pull)],
    }
    for key in ("serviceAccountName", "imagePullSecrets"):
        if template_spec.get(key):
            spec[key] = template_spec[key]
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"generateName": "llmd-prepull-", "namespace": namespace,
                         "labels": {LABEL: run_id, "app.kubernetes.io/managed-by": "llmd.wide_ep"},
                         "annotations": {NODE_LABEL: node}},
            "spec": spec}


def state(pod_obj):
    """(verdict, why) of one pre-pull pod: "pulled", "pulling", "failing" (the kubelet retries) or "failed"."""
    status = pod_obj.get("status") or {}
    wanted = [c["name"] for c in pod_obj["spec"]["containers"]]
    seen = {c["name"]: c for c in status.get("containerStatuses") or []}
    errors, waiting = [], False
    for name in wanted:
        c = seen.get(name)
        if c is None:
            waiting = True
            continue
        st = c.get("state") or {}
        if c.get("imageID") or "running" in st or "terminated" in st or "terminated" in (c.get("lastState") or {}):
            continue
        wait = st.get("waiting") or {}
        reason = wait.get("reason", "")
        if reason in FINAL_ERRORS:
            return "failed", ("%s: %s %s" % (c.get("image"), reason, wait.get("message", ""))).strip()
        if reason in PULL_ERRORS:
            errors.append("%s: %s %s" % (c.get("image"), reason, wait.get("message", "")))
        waiting = True
    if status.get("phase") == "Failed" and not seen:       # refused by the kubelet before any container
        return "failed", "%s %s" % (status.get("reason", "Failed"), status.get("message", ""))
    if errors:
        return "failing", "; ".join(e.strip() for e in errors)
    return ("pulling", "") if waiting else ("pulled", "")


def run(client, workloads, namespace, timeout, error_timeout, progress, check_mode=False, poll=2.0):
    """Pull what plan() says is missing; returns the plan with "seconds" and, per node, "failed" reasons."""
    started = time.monotonic()
    nodes = client.list("v1", "Node")
    todo = plan(nodes, workloads, running(client.list("v1", "Pod", namespace)))
    todo["failed"] = {}
    if not todo["pull"] or check_mode:
        return todo
    run_id = "%x" % int(time.time() * 1000)
    template = dict(placement.roles(workloads)[0][3])
    account = template.get("serviceAccountName")
    if account and client.get(ref("v1", "ServiceAccount", account, namespace)) is None:
        template.pop("serviceAccountName")      # not made yet (a migration's new release): the default's
    client.delete_collection("v1", "Pod", namespace, LABEL)      # what an interrupted run left
    try:
        names = {}
        for node, pull in todo["pull"].items():
            made = client.create(pod(node, pull, namespace, run_id, template))
            names[made["metadata"]["name"]] = node
        todo["failed"] = _wait(client, namespace, run_id, names, todo["pull"], started, timeout, error_timeout,
                               progress, poll)
        # a node's image list lags its kubelet by up to ~40 s: where the kubelet found every image already
        # there, nothing was pulled (and nothing changed)
        for node in already_present(client, namespace, names, todo["pull"]):
            todo["pull"].pop(node)
            todo["present"].append(node)
    finally:
        client.delete_collection("v1", "Pod", namespace, "%s=%s" % (LABEL, run_id))
    return todo


def already_present(client, namespace, names, pulls, tries=3, pause=1.0):
    """The nodes whose kubelet reported every image of its pull pod "already present on machine" (its Pulled
    events; kwok sends none, so its nodes count as pulled)."""
    found = {}
    for attempt in range(tries):
        found = {}
        for event in client.list("v1", "Event", namespace, field_selector="reason=Pulled"):
            pod = (event.get("involvedObject") or {}).get("name")
            if pod in names and "already present on machine" in event.get("message", ""):
                found.setdefault(names[pod], set()).add(event["message"])
        if all(len(found.get(node, ())) >= len(pulls[node]) for node in names.values()) or attempt == tries - 1:
            break
        time.sleep(pause)       # the kubelet's events reach the API server a moment after the container
    return [node for node in names.values() if len(found.get(node, ())) >= len(pulls[node])]


def _wait(client, namespace, run_id, names, pulls, started, timeout, error_timeout, progress, poll):
    failing_since, failed, last = {}, {}, None
    while True:
        pods = {p["metadata"]["name"]: p for p in client.list("v1", "Pod", namespace, "%s=%s" % (LABEL, run_id))}
        done, busy = [], []
        now = time.monotonic()
        for name, node in names.items():
            if node in failed:
                continue
            verdict, why = state(pods[name]) if name in pods else ("failed", "the pod is gone (deleted by others)")
            if verdict == "failing":
                since = failing_since.setdefault(node, now)
                if now - since >= error_timeout:
                    verdict, why = "failed", "%s (for %ds)" % (why, now - since)
            else:
                failing_since.pop(node, None)
            if verdict == "failed":
                failed[node] = why
            elif verdict == "pulled":
                done.append(node)
            else:
                busy.append((node, why or ", ".join(pulls[node])))
        line = "image pre-pull: %d/%d node(s) done%s; pulling: %s" % (
            len(done), len(names), ", %d failed" % len(failed) if failed else "",
            "; ".join("%s (%s)" % b for b in busy[:4]) + (" ..." if len(busy) > 4 else "") if busy else "none")
        if busy and now - started > timeout:
            failed.update((node, "still pulling after %ds: %s" % (timeout, why)) for node, why in busy)
            busy = []
        if not busy:
            progress.append("image pre-pull: %d/%d node(s) done in %.0fs%s" % (
                len(done), len(names), time.monotonic() - started, ", %d failed" % len(failed) if failed else ""))
            return failed
        if line != last:
            progress.live("%s [%.0fs]" % (line, now - started))
            last = line
        else:
            progress.still("%s [%.0fs]" % (line, now - started))
        time.sleep(poll)
