# Copyright: llm-d wide-EP collection contributors
# Apache-2.0
"""The stack's health as one checklist (what verify.yml and every upgrade gate ask): the LeaderWorkerSets the
plan names (or the DisaggregatedSet's current ones), still the same objects, Ready with every container, each
group one incarnation (a split group repaired on request), the pool selecting every role on the topology's
ports, the EPP, the gateway and route."""
from __future__ import annotations

import functools
import time
from concurrent.futures import ThreadPoolExecutor

from ansible_collections.llmd.wide_ep.plugins.module_utils.checklist import Checklist
from ansible_collections.llmd.wide_ep.plugins.module_utils.day2.revisions import Record
from ansible_collections.llmd.wide_ep.plugins.module_utils.errors import WideEPError
from ansible_collections.llmd.wide_ep.plugins.module_utils.k8s import disaggregatedset
from ansible_collections.llmd.wide_ep.plugins.module_utils.k8s.apply import READERS
from ansible_collections.llmd.wide_ep.plugins.module_utils.k8s.client import ref
from ansible_collections.llmd.wide_ep.plugins.module_utils.k8s.errors import K8sError
from ansible_collections.llmd.wide_ep.plugins.module_utils.k8s.lws import (
    LWS_GROUP_LABEL,
    LWS_NAME_LABEL,
    identity,
    split_groups,
)
from ansible_collections.llmd.wide_ep.plugins.module_utils.k8s.readiness import condition, readiness, wait_ready
from ansible_collections.llmd.wide_ep.plugins.module_utils.k8s.serving import role_pods
from ansible_collections.llmd.wide_ep.plugins.module_utils.progress import Progress
from ansible_collections.llmd.wide_ep.plugins.module_utils.render.refs import check, name, workload_refs


def check_release(helm, refs, rep):
    rel = helm.release(refs["release"], refs["namespace"])
    ok = bool(rel) and rel["status"] == "deployed"
    rep.add(ok, "helm release %s: %s" % (refs["release"], "%s-%s %s" % (rel["chart"], rel["version"], rel["status"])
                                         if rel else "not installed"))


def check_role(client, lws_ref, role, want, rep):
    lws = client.get(lws_ref)
    if lws is None:
        rep.add(False, "LeaderWorkerSet %s: missing" % name(lws_ref))
        return
    ok, why = readiness(lws)
    rep.add(ok, "LeaderWorkerSet %s: %s" % (name(lws_ref), why))
    pods = role_pods(client, lws_ref)
    expected_pods = want["replicas"] * want["group_size"]
    ready = []
    for pod in pods:
        statuses = pod.get("status", {}).get("containerStatuses", []) or []
        statuses += [s for s in pod.get("status", {}).get("initContainerStatuses", []) or []
                     if s.get("name") == "routing-proxy"]
        count = sum(1 for s in statuses if s.get("ready"))
        if count >= want["containers"]:
            ready.append(pod["metadata"]["name"])
    rep.add(len(ready) == expected_pods == len(pods), "%s pods: %d/%d with %d/%d containers ready" % (
        role, len(ready), expected_pods, want["containers"], want["containers"]))


def find_split(client, lws_ref, window):
    meta = lws_ref["metadata"]
    selector = "%s=%s" % (LWS_NAME_LABEL, meta["name"])
    return split_groups(client.list("v1", "Pod", meta["namespace"], label_selector=selector),
                        client.list("apps/v1", "StatefulSet", meta["namespace"], label_selector=selector), window)


def check_groups(client, lws_ref, split, rep):
    rep.add(not split, "LeaderWorkerSet %s: %s" % (name(lws_ref), "; ".join(
        "group %s split: %s" % (g["group"], ", ".join(g["why"])) for g in split) or "every group is one incarnation"))


def repair(client, lws_ref, split, timeout):
    """Recreate each split group whole: its leader pod deleted (its worker StatefulSet and workers go with it),
    then every pod of the LeaderWorkerSet a new one for those groups, all Ready."""
    namespace = lws_ref["metadata"]["namespace"]
    groups = {g["group"] for g in split if g["leader"]}
    old = {pod["metadata"]["uid"] for pod in role_pods(client, lws_ref)
           if (pod["metadata"].get("labels") or {}).get(LWS_GROUP_LABEL) in groups}
    for group in split:
        if group["leader"]:
            client.delete(ref("v1", "Pod", group["leader"], namespace))
    deadline = time.time() + timeout
    live = wait_ready(client, [lws_ref], timeout, 2, Progress())
    want = sum(o["spec"].get("replicas", 1) * o["spec"]["leaderWorkerTemplate"].get("size", 1) for o in live.values())
    while True:   # LWS reads Ready on stale status: wait for the new pods themselves
        pods = role_pods(client, lws_ref)
        stale = [pod for pod in pods if pod["metadata"]["uid"] in old]
        ready = [pod for pod in pods if condition(pod, "Ready").get("status") == "True"]
        if not stale and len(ready) >= want:
            return
        if time.time() >= deadline:
            raise K8sError("the repaired groups of %s have not all their %d pods new and Ready after %ds" % (
                name(lws_ref), want, timeout))
        time.sleep(2)


API_OF = {"LeaderWorkerSet": disaggregatedset.LWS_API, "DisaggregatedSet": disaggregatedset.DS_API}


def check_baseline(client, refs, baseline, rep):
    """Each workload of the plan (a LeaderWorkerSet, or the DisaggregatedSet) that was there before the step is
    still there, the same object."""
    for was in baseline:
        now = client.get(ref(API_OF[was["kind"]], was["kind"], was["name"], was["namespace"]))
        if now is None:
            rep.add(False, "%s %s/%s: gone (uid %s)" % (was["kind"], was["namespace"], was["name"], was["uid"]))
        elif now["metadata"]["uid"] != was["uid"]:
            rep.add(False, "%s %s/%s: deleted and recreated (uid %s, was %s)" % (
                was["kind"], was["namespace"], was["name"], now["metadata"]["uid"], was["uid"]))
    if baseline:
        rep.add(True, "workloads before the step: %d checked for their UID" % len(baseline))


def check_disaggregatedset(client, refs, rep):
    """The DisaggregatedSet's own readiness (every role at its current revision, none older left), and refs
    whose `leaderworkersets` name its current children for the per-role checks."""
    live = client.get(refs["disaggregatedset"])
    kids = disaggregatedset.children(client, live) if live else []
    refs, problems = disaggregatedset.current_refs(refs, live, kids)
    for problem in problems:
        rep.add(False, problem)
    if live is not None:
        ok, why, _pending = disaggregatedset.readiness(live, kids, readiness)
        rep.add(ok, "DisaggregatedSet %s: %s" % (name(refs["disaggregatedset"]), why))
    return refs


def check_pool(client, refs, want_ports, rep):
    pool = client.get(refs["pool"])
    ports = [t.get("number") for t in (pool or {}).get("spec", {}).get("targetPorts", [])]
    rep.add(pool is not None and ports == want_ports,
            "InferencePool %s: target ports %s" % (name(refs["pool"]), ports if pool else "missing"))
    if pool is not None:   # the pool selects the model servers of every role (v1 matchLabels, v1alpha2 flat)
        selector = pool["spec"].get("selector") or {}
        labels = selector.get("matchLabels", selector)
        selected = client.list("v1", "Pod", refs["namespace"], label_selector=",".join(
            "%s=%s" % kv for kv in sorted(labels.items()))) if labels else []
        per_role = {role: sum(1 for pod in selected if (pod["metadata"].get("labels") or {}).get(LWS_NAME_LABEL)
                              == lws_ref["metadata"]["name"]) for role, lws_ref in refs["leaderworkersets"].items()}
        rep.add(all(per_role.values()) and bool(per_role), "InferencePool %s selects %s" % (
            name(refs["pool"]), ", ".join("%d %s pod(s)" % (n, role) for role, n in per_role.items()) or "no role"))
    epp = client.get(refs["epp"])
    rep.add(bool(epp) and readiness(epp)[0],
            "EPP %s: %s" % (name(refs["epp"]), readiness(epp)[1] if epp else "missing"))


def check_gateway(client, refs, require_programmed, rep):
    gw = client.get(refs["gateway"])
    gw_name, route_name = name(refs["gateway"]), name(refs["route"])
    programmed = condition(gw, "Programmed").get("status") == "True"
    if require_programmed:
        rep.add(programmed, "Gateway %s: Programmed=%s" % (gw_name, programmed if gw else "missing"))
    else:
        rep.add(gw is not None, "Gateway %s: %s (Programmed not required: no gateway controller)" % (
            gw_name, "exists" if gw else "missing"))
    route = client.get(refs["route"])
    parents = (route or {}).get("status", {}).get("parents", []) or []
    accepted = any(condition({"status": par}, "Accepted").get("status") == "True" for par in parents)
    if require_programmed:
        rep.add(accepted, "HTTPRoute %s: Accepted=%s" % (route_name, accepted if route else "missing"))
    else:
        rep.add(route is not None, "HTTPRoute %s: %s" % (route_name, "exists" if route else "missing"))


def check_all(client, helm, refs, p, rep, repair_now):
    """One pass of every check into `rep`; the split groups repaired first when asked. Returns the repaired.
    The release, each role, the pool and the gateway are read at once over the connection pool (reads only,
    each into its own checklist; the report keeps this order); a repair, which writes, runs them one by one."""
    repaired = []
    check_baseline(client, refs, p["baseline"], rep)
    if refs.get("disaggregatedset"):
        refs = check_disaggregatedset(client, refs, rep)

    def check_one_role(role, lws_ref, own):
        split = find_split(client, lws_ref, p["split_window"])
        if split and repair_now:
            repair(client, lws_ref, split, p["repair_timeout"])
            repaired.extend(dict(g, lws=name(lws_ref)) for g in split)
            split = find_split(client, lws_ref, p["split_window"])
        check_role(client, lws_ref, role, p["expected"][role], own)
        check_groups(client, lws_ref, split, own)

    parts = [functools.partial(check_release, helm, refs)]
    parts += [functools.partial(check_one_role, role, lws_ref) for role, lws_ref in refs["leaderworkersets"].items()]
    parts.append(functools.partial(check_pool, client, refs, p["expected"]["target_ports"]))
    if refs["gateway"]:
        parts.append(functools.partial(check_gateway, client, refs, p["require_programmed"]))
    checklists = [Checklist() for dummy in parts]
    try:
        if repair_now:
            for part, checklist in zip(parts, checklists, strict=True):
                part(checklist)
        else:
            with ThreadPoolExecutor(min(READERS, len(parts))) as pool:
                for done in [pool.submit(part, checklist) for part, checklist in zip(parts, checklists, strict=True)]:
                    done.result()   # the first part's error, in report order
    finally:   # what every part found, also when one of them failed
        for checklist in checklists:
            rep.extend(checklist)
    return repaired


def status(client, helm, p, check_mode=False):
    """Every check of the stack; with p["wait_timeout"], again every 5 s until all pass, one is final (an object
    lost) or time is up. Raises WideEPError with the report when a check fails (noted on the revision record
    after an upgrade step)."""
    rep, repaired, progress = Checklist(), [], Progress()
    try:
        refs = check(p["refs"], "pool", "epp", "leaderworkersets", "gateway", "route")
        deadline, start, last = time.time() + p["wait_timeout"], time.time(), None
        while True:
            rep = Checklist()
            repaired += check_all(client, helm, refs, p, rep, p["repair_split_groups"] and not repaired
                                  and not check_mode)
            lost = any(" gone (uid " in line or " recreated (uid " in line for line in rep.problems)
            if not rep.problems or lost or time.time() >= deadline:
                break
            if rep.problems != last:
                progress.append("%ds: waiting for %s" % (time.time() - start, "; ".join(rep.problems)))
                last = rep.problems
            time.sleep(5)
        workloads = [identity(o) for o in (client.get(r) for r in workload_refs(refs)) if o]
    except WideEPError as exc:
        raise WideEPError(str(exc), report=rep.report, problems=rep.problems + [str(exc)],
                          repaired=repaired) from exc
    if rep.problems:
        step = " after the %s step" % p["step"] if p["step"] else ""
        if p["step"] and not check_mode:
            try:
                Record(client, p["refs"]["namespace"]).note_gate(p["step"], rep.problems)
            except WideEPError as exc:
                rep.add(False, "the revision record could not be written: %s" % exc)
        raise WideEPError("%d check(s) failed%s: %s" % (len(rep.problems), step, "; ".join(rep.problems)),
                          report=rep.report, problems=rep.problems, repaired=repaired, progress=progress)
    return {"changed": bool(repaired), "report": rep.report, "problems": [], "repaired": repaired,
            "workloads": workloads, "progress": progress}
