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
  endpoint: {description: Base URL of the gateway as the controller reaches it., type: str}
  prompt: {description: Prompt of the completion., type: str, default: "Hi, how are you?"}
  max_tokens: {description: Tokens to generate., type: int, default: 8}
  timeout:
    description: Seconds allowed for each HTTP request (the completion and each pod probe).
    type: int
    default: 60
extends_documentation_fragment:
  - llmd.wide_ep.k8s
  - llmd.wide_ep.k8s.plan
"""

EXAMPLES = r"""
- name: Smoke request through a port-forward
  llmd.wide_ep.smoke_request:
    refs: "{{ wide_ep_plan.refs }}"
    expected: "{{ wide_ep_plan.summary }}"
    endpoint: http://localhost:8000
"""

RETURN = r"""
report:
  description: The hops in request order (gateway, epp, prefill, decode), each line C(OK) or C(FAIL), hop, detail.
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

from ansible_collections.llmd.wide_ep.plugins.module_utils.day2 import smoke
from ansible_collections.llmd.wide_ep.plugins.module_utils.render.refs import PLAN_ARG_SPEC
from ansible_collections.llmd.wide_ep.plugins.module_utils.runner import run_module


def main():
    run_module(dict(PLAN_ARG_SPEC, **smoke.SMOKE_ARG_SPEC), lambda ctx: smoke.request(ctx.client, ctx.params),
               supports_check_mode=True)


if __name__ == "__main__":
    main()
