# Copyright: llm-d wide-EP collection contributors
# Apache-2.0
"""The smoke request: one OpenAI completion through the gateway, then each hop on its own (gateway, EPP,
prefill, decode) in the order a request takes them, so a failure names where it broke."""
from __future__ import annotations

import random

from ansible_collections.llmd.wide_ep.plugins.module_utils.checklist import Checklist
from ansible_collections.llmd.wide_ep.plugins.module_utils.errors import WideEPError
from ansible_collections.llmd.wide_ep.plugins.module_utils.k8s import disaggregatedset, serving
from ansible_collections.llmd.wide_ep.plugins.module_utils.k8s.readiness import condition
from ansible_collections.llmd.wide_ep.plugins.module_utils.render.refs import check, name

# What a status code from the gateway most likely means on this stack.
GATEWAY_HINTS = {
    404: "no route matched: is the HTTPRoute attached to the Gateway and accepted?",
    429: "the endpoint picker shed the request: the pool is saturated",
    500: "the gateway failed to call the endpoint picker or a model server",
    502: "the gateway got no valid answer from the picked model server",
    503: "no healthy upstream: the endpoint picker or every model server is unavailable",
    504: "the picked model server did not answer in time",
}


# The options of a smoke request: module smoke_request's, and stack_status' `smoke` (with `send`).
SMOKE_ARG_SPEC = {"endpoint": {"type": "str"}, "prompt": {"type": "str", "default": "Hi, how are you?"},
                  "max_tokens": {"type": "int", "default": 8, "no_log": False},
                  "timeout": {"type": "int", "default": 60}}


def cause(hops):
    """The hop to blame: the first failing one behind the gateway, else the gateway itself (a gateway failure
    with every backend healthy points at the gateway or its route)."""
    behind = [h for h in hops.failed if h["hop"] != "gateway"]
    return (behind or hops.failed or [None])[0]


def complete(client, p, targets):
    """(completion dict or None, list of what each target answered)."""
    model = p["expected"]["model"]
    tried = []
    for target in targets:
        models = target.call(client, "GET", "/v1/models", timeout=p["timeout"])
        if models.status is None:
            tried.append("%s: %s" % (target.label, models.describe()))
            continue  # nothing answers here: try the next way in
        served = serving.served_models(models)
        if served is not None and model not in served:
            tried.append("%s: serves %s, not %s" % (target.label, served, model))
            return None, tried
        body = {"model": model, "prompt": p["prompt"], "max_tokens": p["max_tokens"],
                "seed": random.randint(1, 2 ** 31 - 1)}
        reply = target.call(client, "POST", "/v1/completions", body=body, timeout=p["timeout"])
        doc = reply.json() if reply.ok else None
        choices = (doc or {}).get("choices") or []
        if choices:
            return {"text": choices[0].get("text", ""), "usage": doc.get("usage", {}),
                    "seconds": round(reply.seconds, 3), "via": target.label}, tried
        hint = GATEWAY_HINTS.get(reply.status, "")
        tried.append("%s: completion %s%s" % (target.label, reply.describe() if not reply.ok else "had no choices",
                                              " (%s)" % hint if hint else ""))
        return None, tried
    return None, tried


def check_epp(client, refs, hops):
    ns, epp = refs["namespace"], name(refs["epp"])
    dep = client.get(refs["epp"])
    if dep is None:
        hops.add(False, "Deployment %s missing" % epp, "epp")
        return
    avail = dep.get("status", {}).get("availableReplicas", 0)
    slices = client.list("discovery.k8s.io/v1", "EndpointSlice", ns,
                         label_selector="kubernetes.io/service-name=" + name(refs["epp_service"]))
    ready = sum(1 for s in slices for e in s.get("endpoints") or []
                if (e.get("conditions") or {}).get("ready") is not False)
    hops.add(avail > 0 and ready > 0, "Deployment %s: %d available; Service %s: %d ready endpoint(s)" % (
        epp, avail, name(refs["epp_service"]), ready), "epp")


def check_role(client, p, role, hops):
    want = p["expected"][role]
    ports = want["endpoint_ports"]
    pods = serving.role_pods(client, p["refs"]["leaderworkersets"][role])
    expected = want["replicas"] * want["group_size"]
    if len(pods) < expected:
        hops.add(False, "%d of %d pods exist" % (len(pods), expected), role)
        return
    bad = []
    for pod in sorted(pods, key=lambda x: x["metadata"]["name"]):
        pod_name = pod["metadata"]["name"]
        if condition(pod, "Ready").get("status") != "True":
            bad.append("pod %s not Ready (%s)" % (pod_name, pod.get("status", {}).get("phase")))
            continue
        for port in ports:
            target = serving.pod_target(pod, port)
            reply = target.call(client, "GET", "/v1/models", timeout=p["timeout"])
            if serving.served_models(reply) is None:
                rest = len(ports) - ports.index(port) - 1
                untried = " (%d more port(s) not tried)" % rest if rest else ""
                bad.append("pod %s port %s: %s%s" % (pod_name, port, reply.describe(), untried))
                break  # one dead port per pod is enough to blame it; the rest would cost a timeout each
    if bad:
        hops.add(False, "; ".join(bad), role)
    else:
        hops.add(True, "%d pods Ready, ports %s answer /v1/models" % (
            len(pods), "%s-%s" % (ports[0], ports[-1]) if len(ports) > 1 else ports), role)


def request(client, p):
    """The smoke request and every hop's check; raises WideEPError naming the hop to blame."""
    hops = Checklist()
    result = {"changed": False, "completion": None}
    try:
        refs, missing = disaggregatedset.resolve_refs(client, check(p["refs"], "epp", "epp_service",
                                                                    "leaderworkersets", "gateway"))
        p = dict(p, refs=refs)
        targets = serving.gateway_targets(client, refs["gateway"], p["endpoint"], refs.get("standalone_entry"))
        completion, tried = complete(client, p, targets)
        result["completion"] = completion
        if completion:
            hops.add(True, "completion via %s in %.2fs: %r" % (
                completion["via"], completion["seconds"], completion["text"][:60]), "gateway")
        else:
            gw = serving.gateway(client, refs["gateway"])
            programmed = condition(gw, "Programmed").get("status") if gw else "missing"
            hops.add(False, "; ".join(tried or ["no address: the Gateway has none, no Service carries its label, "
                                                "and no endpoint was given"])
                     + " [Gateway Programmed=%s]" % programmed, "gateway")
        check_epp(client, refs, hops)
        for role in ("prefill", "decode"):
            if role in refs["leaderworkersets"]:
                check_role(client, p, role, hops)
            else:
                hops.add(False, "; ".join(missing), role)
    except WideEPError as exc:
        raise WideEPError(str(exc), report=hops.report, hops=hops.items) from exc
    result.update(report=hops.report, hops=hops.items)
    failed = cause(hops)
    if failed:
        others = ["%s: %s" % (h["hop"], h["detail"]) for h in hops.items if not h["ok"] and h is not failed]
        raise WideEPError("smoke request: the %s hop fails: %s%s" % (
            failed["hop"], failed["detail"], " (also: %s)" % "; ".join(others) if others else ""), **result)
    return result
