#!/usr/bin/python
# Copyright: llm-d wide-EP collection contributors
# Apache-2.0
from __future__ import annotations

DOCUMENTATION = r"""
module: smoke_request
short_description: Send one OpenAI completion through the gateway and say which hop fails when it does
description:
  - Does what the guide's verification does by hand - C(GET /v1/models), then C(POST /v1/completions) with a
    C(seed) (so no engine cache answers) - through the gateway.
  - Then checks each hop on its own, in the order a request takes them, so a failure names where it broke -
    C(gateway) (the entry answers, the Gateway is programmed), C(epp) (the endpoint picker Deployment is
    available and its Service has ready endpoints), C(prefill) and C(decode) (every pod is Ready and every port
    the InferencePool targets answers C(/v1/models) through the API server's pod proxy).
  - The gateway is reached at O(endpoint) when given (a port-forward or load balancer URL), else at the
    Gateway's address, else through its Service via the API server, so the controller needs no pod network.
  - Never changes anything. Fails when the completion or any hop fails, naming the hop to blame - the first
    failing one behind the gateway, else the gateway.
version_added: 0.2.0
author: llm-d wide-EP collection contributors (@llm-d)
options:
  namespace:
    description: Namespace of the deployment.
    type: str
    required: true
  release:
    description: InferencePool release (its EPP is C(<release>-epp)).
    type: str
    default: llm-d-infpool
  expected:
    description: M(llmd.wide_ep.topology)'s summary - the model, and per role the pod ports to probe.
    type: dict
    required: true
  endpoint:
    description: Base URL of the gateway as the controller reaches it.
    type: str
  prompt:
    description: Prompt of the completion.
    type: str
    default: "Hi, how are you?"
  max_tokens:
    description: Tokens to generate.
    type: int
    default: 8
  timeout:
    description: Seconds allowed for each HTTP request (the completion and each pod probe).
    type: int
    default: 60
extends_documentation_fragment:
  - llmd.wide_ep.k8s
"""

EXAMPLES = r"""
- name: Smoke request through a port-forward
  llmd.wide_ep.smoke_request:
    namespace: llm-d-wide-ep
    expected: "{{ wide_ep_plan.summary }}"
    endpoint: http://localhost:8000
"""

RETURN = r"""
report:
  description: One line per hop, C(OK) or C(FAIL) first.
  returned: always
  type: list
  elements: str
hops:
  description: Per hop C(hop), C(ok) and C(detail).
  returned: always
  type: list
  elements: dict
completion:
  description: C(text), C(usage), C(seconds) and C(via) of the completion, when one came back.
  returned: success
  type: dict
"""

import random

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.llmd.wide_ep.plugins.module_utils import serving
from ansible_collections.llmd.wide_ep.plugins.module_utils.k8s import AUTH_ARG_SPEC, Client, K8sError, condition

# What a status code from the gateway most likely means on this stack.
GATEWAY_HINTS = {
    404: "no route matched: is the HTTPRoute attached to the Gateway and accepted?",
    429: "the endpoint picker shed the request: the pool is saturated",
    500: "the gateway failed to call the endpoint picker or a model server",
    502: "the gateway got no valid answer from the picked model server",
    503: "no healthy upstream: the endpoint picker or every model server is unavailable",
    504: "the picked model server did not answer in time",
}


class Hops:
    def __init__(self):
        self.items = []

    def add(self, hop, ok, detail):
        self.items.append({"hop": hop, "ok": bool(ok), "detail": detail})

    @property
    def report(self):
        return ["%s  %-8s %s" % ("OK  " if h["ok"] else "FAIL", h["hop"], h["detail"]) for h in self.items]

    def cause(self):
        """The hop to blame: the first failing one behind the gateway, else the gateway itself (a gateway
        failure with every backend healthy points at the gateway or its route)."""
        failing = [h for h in self.items if not h["ok"]]
        behind = [h for h in failing if h["hop"] != "gateway"]
        return (behind or failing or [None])[0]


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


def check_epp(client, p, hops):
    ns, name = p["namespace"], p["release"] + "-epp"
    dep = client.get({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": ns}})
    if dep is None:
        hops.add("epp", False, "Deployment %s missing" % name)
        return
    avail = dep.get("status", {}).get("availableReplicas", 0)
    slices = client.request("GET", "/apis/discovery.k8s.io/v1/namespaces/%s/endpointslices" % ns,
                            query={"labelSelector": "kubernetes.io/service-name=%s" % name})["items"]
    ready = sum(1 for s in slices for e in s.get("endpoints") or []
                if (e.get("conditions") or {}).get("ready") is not False)
    hops.add("epp", avail > 0 and ready > 0,
             "Deployment %s: %d available; Service %s: %d ready endpoint(s)" % (name, avail, name, ready))


def check_role(client, p, role, hops):
    want = p["expected"][role]
    ports = want.get("sidecar_ports") or want.get("vllm_ports") or []
    pods = serving.role_pods(client, p["namespace"], role)
    expected = want["replicas"] * want["group_size"]
    if len(pods) < expected:
        hops.add(role, False, "%d of %d pods exist" % (len(pods), expected))
        return
    bad = []
    for pod in sorted(pods, key=lambda x: x["metadata"]["name"]):
        name = pod["metadata"]["name"]
        if condition(pod, "Ready").get("status") != "True":
            bad.append("pod %s not Ready (%s)" % (name, pod.get("status", {}).get("phase")))
            continue
        for port in ports:
            target = serving.pod_target(p["namespace"], pod, port)
            reply = target.call(client, "GET", "/v1/models", timeout=p["timeout"])
            if serving.served_models(reply) is None:
                rest = len(ports) - ports.index(port) - 1
                untried = " (%d more port(s) not tried)" % rest if rest else ""
                bad.append("pod %s port %s: %s%s" % (name, port, reply.describe(), untried))
                break  # one dead port per pod is enough to blame it; the rest would cost a timeout each
    if bad:
        hops.add(role, False, "; ".join(bad))
    else:
        hops.add(role, True, "%d pods Ready, ports %s answer /v1/models" % (
            len(pods), "%s-%s" % (ports[0], ports[-1]) if len(ports) > 1 else ports))


def main():
    spec = dict(AUTH_ARG_SPEC)
    spec.update(namespace={"type": "str", "required": True}, release={"type": "str", "default": "llm-d-infpool"},
                expected={"type": "dict", "required": True}, endpoint={"type": "str"},
                prompt={"type": "str", "default": "Hi, how are you?"},
                max_tokens={"type": "int", "default": 8, "no_log": False},
                timeout={"type": "int", "default": 60})
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True)
    p = module.params
    hops = Hops()
    result = {"changed": False, "completion": None}
    try:
        client = Client(p["kubeconfig"], p["context"])
        targets = serving.gateway_targets(client, p["namespace"], p["endpoint"])
        completion, tried = complete(client, p, targets)
        result["completion"] = completion
        if completion:
            hops.add("gateway", True, "completion via %s in %.2fs: %r" % (
                completion["via"], completion["seconds"], completion["text"][:60]))
        else:
            gw = serving.gateway(client, p["namespace"])
            programmed = condition(gw, "Programmed").get("status") if gw else "missing"
            hops.add("gateway", False, "; ".join(tried or ["no address: the Gateway has none, no Service carries "
                                                           "its label, and no endpoint was given"])
                     + " [Gateway Programmed=%s]" % programmed)
        check_epp(client, p, hops)
        for role in ("prefill", "decode"):
            check_role(client, p, role, hops)
    except K8sError as exc:
        module.fail_json(msg=str(exc), report=hops.report, hops=hops.items)
    result.update(report=hops.report, hops=hops.items)
    failed = hops.cause()
    if failed:
        others = ["%s: %s" % (h["hop"], h["detail"]) for h in hops.items if not h["ok"] and h is not failed]
        module.fail_json(msg="smoke request: the %s hop fails: %s%s" % (
            failed["hop"], failed["detail"], " (also: %s)" % "; ".join(others) if others else ""), **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
