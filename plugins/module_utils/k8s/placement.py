# Copyright: llm-d wide-EP collection contributors
# Apache-2.0
"""Will the groups be placed? Every group of every role of the plan's workload simulated on the nodes as they
are: what each node has free (allocatable minus the requests of the pods it runs, the deployment's own pods left
out since the plan replaces them), whether the pod may run there (cordon, taints and tolerations, node selector,
required node affinity) and whether a group that needs one topology domain finds one. Pure functions over what
the caller read once (nodes, pods); the verdicts name the group that does not fit and what each node lacks."""
from __future__ import annotations

from ansible_collections.llmd.wide_ep.plugins.module_utils.k8s.capacity import GPU

# kueue's topology-aware scheduling (GKE topology-aware overlays): a group's pods must share this node label's value
REQUIRED_TOPOLOGY = "kueue.x-k8s.io/podset-required-topology"
SHOWN_NODES = 6   # nodes named per failing group; the rest are counted


def quantity(value):
    """A Kubernetes quantity as a number (cores, bytes, counts): enough for comparing requests with free."""
    text = str(value)
    suffixes = {"Ki": 2 ** 10, "Mi": 2 ** 20, "Gi": 2 ** 30, "Ti": 2 ** 40, "Pi": 2 ** 50, "Ei": 2 ** 60,
                "n": 1e-9, "u": 1e-6, "m": 1e-3, "k": 1e3, "K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15,
                "E": 1e18}
    for suffix in sorted(suffixes, key=len, reverse=True):
        if text.endswith(suffix):
            return float(text[:-len(suffix)]) * suffixes[suffix]
    return float(text)


def _asked(container):
    res = container.get("resources", {})
    return {k: quantity(v) for k, v in (res.get("requests") or res.get("limits") or {}).items()}


def pod_requests(spec):
    """What one pod asks for: each container's requests (else its limits, which the API server copies) summed
    with its native sidecars' (init containers with restartPolicy Always: they run beside it, as decode's routing
    proxy does); a plain init container's counts where it is larger (it runs before them)."""
    inits = spec.get("initContainers", [])
    total = {}
    for c in spec.get("containers", []) + [c for c in inits if c.get("restartPolicy") == "Always"]:
        for name, amount in _asked(c).items():
            total[name] = total.get(name, 0) + amount
    for c in inits:
        if c.get("restartPolicy") != "Always":
            for name, amount in _asked(c).items():
                total[name] = max(total.get(name, 0), amount)
    return {k: v for k, v in total.items() if v > 0}


def roles(workloads):
    """[(role, replicas, size, pod template spec, pod template annotations)] of the plan's workload objects: the
    LeaderWorkerSet pair or the DisaggregatedSet's roles."""
    out = []
    for name, spec in role_specs(workloads):
        lwt = spec["leaderWorkerTemplate"]
        template = lwt["workerTemplate"]
        out.append((name, spec.get("replicas", 1), lwt.get("size", 1), template["spec"],
                    (template.get("metadata") or {}).get("annotations") or {}))
    return out


def role_specs(workloads):
    """[(role, LeaderWorkerSet spec)]: each LeaderWorkerSet of the pair, or each role of the DisaggregatedSet."""
    out = []
    for obj in workloads:
        if obj["kind"] == "DisaggregatedSet":
            out += [(r["name"], r["spec"]) for r in obj["spec"]["roles"]]
        else:
            out.append((obj["metadata"].get("labels", {}).get("llm-d.ai/role", obj["metadata"]["name"]), obj["spec"]))
    return out


def _tolerated(taint, tolerations):
    for t in tolerations or []:
        if t.get("effect") and t["effect"] != taint.get("effect"):
            continue
        if t.get("operator") == "Exists" and not t.get("key"):
            return True
        if t.get("key") != taint.get("key"):
            continue
        if t.get("operator") == "Exists" or t.get("value", "") == taint.get("value", ""):
            return True
    return False


def _expression(expr, labels):
    key, op, values = expr["key"], expr["operator"], expr.get("values", [])
    have = labels.get(key)
    if op == "In":
        return have in values
    if op == "NotIn":
        return have not in values
    if op == "Exists":
        return key in labels
    if op == "DoesNotExist":
        return key not in labels
    if op in ("Gt", "Lt") and have is not None:
        try:
            return int(have) > int(values[0]) if op == "Gt" else int(have) < int(values[0])
        except ValueError:
            return False
    return False


def _describe(expr):
    values = expr.get("values")
    return "%s %s%s" % (expr["key"], expr["operator"], " %s" % ",".join(values) if values else "")


def why_not(node, spec):
    """Why a pod of `spec` may not run on `node` at all (None: it may), leaving resources aside."""
    meta = node["metadata"]
    labels = meta.get("labels", {})
    if node.get("spec", {}).get("unschedulable"):
        return "cordoned"
    for taint in node.get("spec", {}).get("taints", []) or []:
        if taint.get("effect") in ("NoSchedule", "NoExecute") and not _tolerated(taint, spec.get("tolerations")):
            value = "=" + taint["value"] if taint.get("value") else ""
            return "tainted %s%s:%s" % (taint["key"], value, taint["effect"])
    for key, value in (spec.get("nodeSelector") or {}).items():
        if labels.get(key) != value:
            return "lacks the label %s=%s (nodeSelector)" % (key, value)
    required = (((spec.get("affinity") or {}).get("nodeAffinity") or {})
                .get("requiredDuringSchedulingIgnoredDuringExecution") or {}).get("nodeSelectorTerms")
    if required and not any(all(_expression(e, labels) for e in term.get("matchExpressions", []))
                            for term in required):
        exprs = [e for term in required for e in term.get("matchExpressions", []) if not _expression(e, labels)]
        return "outside the required node affinity (%s)" % "; ".join(_describe(e) for e in exprs)
    return None


def free(nodes, pods, own):
    """{node: {resource: free amount}}: allocatable minus the requests of the pods bound there that still hold
    them, except the pods `own(pod)` says are the deployment's (the plan replaces them) and pods being deleted."""
    out = {}
    for node in nodes:
        alloc = node.get("status", {}).get("allocatable", {})
        out[node["metadata"]["name"]] = {k: quantity(v) for k, v in alloc.items()}
    for pod in pods:
        name = pod.get("spec", {}).get("nodeName")
        if name not in out or pod.get("status", {}).get("phase") in ("Succeeded", "Failed") or own(pod):
            continue
        if pod["metadata"].get("deletionTimestamp"):   # on its way out: the new pods are placed once it is gone
            continue
        for resource, amount in pod_requests(pod["spec"]).items():
            out[name][resource] = out[name].get(resource, 0) - amount
    return out


def _amount(resource, amount):
    if resource in ("memory", "ephemeral-storage"):
        return "%.0fGi" % (amount / 2 ** 30)
    return ("%g" % amount) if amount != int(amount) else "%d" % amount


def _short(resource, amount):
    return "%s %s" % (_amount(resource, amount), resource)


def _ordered(need):
    return sorted(need.items(), key=lambda kv: (kv[0] != GPU, "/" not in kv[0], kv[0]))


def _lacks(room, need):
    """What `room` lacks of `need` ("has 4 of the 8 nvidia.com/gpu a pod needs free"), or None."""
    for resource, amount in _ordered(need):
        have = room.get(resource)
        if have is None:
            return "has no %s" % resource
        if have < amount:
            return "has %s of the %s a pod needs free" % (_amount(resource, max(have, 0)),
                                                          _short(resource, amount))
    return None


def _take(room, need):
    for resource, amount in need.items():
        room[resource] = room.get(resource, 0) - amount


def simulate(nodes, pods, workloads, own):
    """[(role, group index, size, need, None or why it does not fit)] for every group of every role, placed in
    order on what is left by the groups before it: each pod on the fitting node with the most of the first
    resource it needs free; a group that requires one topology domain tries the domains with the most room."""
    room = free(nodes, pods, own)
    by_name = {n["metadata"]["name"]: n for n in nodes}
    claims = {}    # node -> the plan's groups placed on it so far
    out = []
    for role, replicas, size, spec, notes in roles(workloads):
        need = pod_requests(spec)
        allowed = {name: why_not(node, spec) for name, node in by_name.items()}
        domain_key = notes.get(REQUIRED_TOPOLOGY)
        for index in range(replicas):
            placed = _place(room, by_name, allowed, need, size, domain_key)
            for name in placed or ():
                claims.setdefault(name, []).append("%s group %d" % (role, index))
            why = None if placed else _why_group(room, by_name, allowed, need, size, domain_key, claims)
            out.append((role, index, size, need, why))
    return out


def _fits(room, allowed, need, name):
    return allowed[name] is None and _lacks(room[name], need) is None


def _place(room, by_name, allowed, need, size, domain_key):
    domains = {None: list(by_name)}
    if domain_key:
        domains = {}
        for name, node in by_name.items():
            value = node["metadata"].get("labels", {}).get(domain_key)
            if value is not None:
                domains.setdefault(value, []).append(name)
    main = GPU if GPU in need else next(iter(sorted(need)), None)
    for members in sorted(domains.values(), key=lambda ns: -sum(room[n].get(main, 0) for n in ns)):
        trial = {n: dict(room[n]) for n in members}
        chosen = []
        while len(chosen) < size:
            fitting = [n for n in members if _fits(trial, allowed, need, n)]
            if not fitting:
                break
            best = max(fitting, key=lambda n: (trial[n].get(main, 0), n))
            _take(trial[best], need)
            chosen.append(best)
        if len(chosen) == size:
            room.update(trial)
            return chosen
    return None


def _why_group(room, by_name, allowed, need, size, domain_key, claims):
    wants = " and ".join(_short(k, v) for k, v in _ordered(need) if "/" in k)   # the extended resources
    fitting = sorted(n for n in by_name if _fits(room, allowed, need, n))
    head = "needs %d node(s) with %s%s: %s" % (
        size, wants or "room", " in one %s domain" % domain_key if domain_key else "",
        "%d such node(s) free (%s)" % (len(fitting), ", ".join(fitting[:SHOWN_NODES])) if fitting
        else "no such node is free")
    gpu_nodes = [n for n in sorted(by_name) if n not in fitting and any(
        r in by_name[n].get("status", {}).get("allocatable", {}) for r in need if r == GPU or "/" in r)]
    reasons = ["%s %s%s" % (n, allowed[n] or _lacks(room[n], need),
                            " (after %s)" % ", ".join(claims[n]) if n in claims and not allowed[n] else "")
               for n in gpu_nodes[:SHOWN_NODES]]
    if len(gpu_nodes) > SHOWN_NODES:
        reasons.append("%d more" % (len(gpu_nodes) - SHOWN_NODES))
    return head + ("; " + "; ".join(reasons) if reasons else "")
