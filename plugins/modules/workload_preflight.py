#!/usr/bin/python
# Copyright: llm-d wide-EP collection contributors
# Apache-2.0
from __future__ import annotations

DOCUMENTATION = r"""
module: workload_preflight
short_description: Before any change, check that the cluster can run the plan's model servers
description:
  - Reads the nodes and the pods once and runs each check on the plan's workload (the LeaderWorkerSet pair or the
    DisaggregatedSet), each reported C(OK), C(FAIL) or C(SKIP) with why - a check without the data it needs says
    SKIP, never OK.
  - C(placement) - every group of both roles simulated on the nodes as they are (free extended resources, CPU and
    memory, cordons, taints and tolerations, node selector, required node affinity, a required topology domain);
    a group that does not fit is named with what each GPU node lacks. The deployment's own pods are counted as
    free (the plan replaces them).
  - C(scheduler) - a scheduler name other than the default is served (a pod runs it or was placed by it).
  - C(gke_rdma_resources) - llm-d#1730, C(gke_networks) - the GKE RDMA networks the pods attach exist,
    C(driver) - the provider's bad driver branches (GPU feature discovery labels), C(pool_ports) - llm-d#2488,
    every pod the pool selects listens on each target port, C(keepalive) - llm-d#1564, prefill's vLLM keeps idle
    connections longer than the routing sidecar's 90 s pool, C(nvshmem_roce) - llm-d#1934, no upstream vLLM image
    (NVSHMEM 3.4.5 without the RoCE fix) on a RoCE fabric.
  - Fails when a check fails that O(ignore) does not name. Read-only; check mode runs the same.
version_added: 0.5.0
author: llm-d wide-EP collection contributors (@llm-d)
options:
  workloads:
    description: The plan's C(objects.workloads).
    type: list
    elements: dict
    required: true
  namespace:
    description: The deployment's namespace (the plan's C(summary.namespace)).
    type: str
    required: true
  pool_selector:
    description: The labels the InferencePool selects its pods by (the plan's C(router.selector)).
    type: dict
    default: {}
  target_ports:
    description: The pool's target ports (the plan's C(summary.target_ports)).
    type: list
    elements: int
    default: []
  driver_blocklist:
    description: The provider's C({kernel, branch, why}) records (the plan's C(needs.driver_blocklist)).
    type: list
    elements: dict
    default: []
  fabric:
    description:
      - The provider's RDMA fabric (the plan's C(needs.fabric)); unset where the provider's record cannot say.
    type: str
    choices: [roce, infiniband, none]
  replaces:
    description:
      - The other workload of the deployment (the plan's C(refs.replaces)); its pods are counted as free, as the
        move onto this workload frees them.
    type: list
    elements: dict
    default: []
  ignore:
    description:
      - Checks whose FAIL is reported but does not fail the task (as kubeadm's --ignore-preflight-errors), for
        what the API cannot see - a scheduler that runs outside the cluster, say.
    type: list
    elements: str
    choices: [placement, scheduler, gke_rdma_resources, gke_networks, driver, pool_ports, keepalive, nvshmem_roce]
    default: []
extends_documentation_fragment:
  - llmd.wide_ep.k8s
"""

EXAMPLES = r"""
- name: Check the cluster can run the model servers
  llmd.wide_ep.workload_preflight:
    workloads: "{{ wide_ep_plan.objects.workloads }}"
    namespace: "{{ wide_ep_plan.summary.namespace }}"
    pool_selector: "{{ wide_ep_plan.router.selector }}"
    target_ports: "{{ wide_ep_plan.summary.target_ports }}"
    driver_blocklist: "{{ wide_ep_plan.needs.driver_blocklist }}"
    fabric: "{{ wide_ep_plan.needs.fabric | default(omit, true) }}"
"""

RETURN = r"""
checks:
  description: One entry per check, C(name), C(status) (OK, FAIL, SKIP) and C(detail) lines.
  returned: always
  type: list
  elements: dict
report:
  description: One line per check and detail, C(OK    placement - ...), as the task prints it.
  returned: always
  type: list
  elements: str
seconds:
  description: Time the checks took, reads included.
  returned: always
  type: float
api_requests:
  description: API requests made.
  returned: always
  type: int
"""

import time

from ansible_collections.llmd.wide_ep.plugins.module_utils.errors import WideEPError
from ansible_collections.llmd.wide_ep.plugins.module_utils.k8s import preflight
from ansible_collections.llmd.wide_ep.plugins.module_utils.progress import Progress
from ansible_collections.llmd.wide_ep.plugins.module_utils.runner import run_module

CHECKS = ["placement", "scheduler", "gke_rdma_resources", "gke_networks", "driver", "pool_ports", "keepalive",
          "nvshmem_roce"]


def main():
    run_module(dict(workloads={"type": "list", "elements": "dict", "required": True},
                    namespace={"type": "str", "required": True},
                    pool_selector={"type": "dict", "default": {}},
                    target_ports={"type": "list", "elements": "int", "default": []},
                    driver_blocklist={"type": "list", "elements": "dict", "default": []},
                    fabric={"type": "str", "choices": ["roce", "infiniband", "none"]},
                    replaces={"type": "list", "elements": "dict", "default": []},
                    ignore={"type": "list", "elements": "str", "choices": CHECKS, "default": []}),
               check_workload, supports_check_mode=True)


def check_workload(ctx):
    p = ctx.params
    started = time.monotonic()
    own = {o["metadata"]["name"] for o in p["workloads"] + p["replaces"]}
    results = preflight.run(ctx.client, p["workloads"], p["namespace"], p["pool_selector"], p["target_ports"],
                            p["driver_blocklist"], own, p["fabric"])
    report, live = [], Progress()
    for name, status, detail in results:
        ignored = status == preflight.FAIL and name in p["ignore"]
        report.append("%-5s %s - %s%s" % (status, name, detail[0], " [ignored]" if ignored else ""))
        report += ["      %s" % line for line in detail[1:]]
        if status == preflight.SKIP or ignored:
            verdict = "FAIL (ignored)" if ignored else "SKIP"
            ctx.module.warn("preflight %s: %s: %s" % (name, verdict, " ".join(detail)))
    for line in report:        # at default verbosity, through the collection's progress callback
        live.live(line)
    out = {"changed": False, "checks": [{"name": n, "status": s, "detail": d} for n, s, d in results],
           "report": report, "seconds": round(time.monotonic() - started, 3), "api_requests": ctx.client.requests}
    failed = [n for n, s, d in results if s == preflight.FAIL and n not in p["ignore"]]
    if failed:
        raise WideEPError("the cluster cannot run the model servers as planned (%s failed, nothing was changed):\n%s"
                          % (", ".join(failed), "\n".join(report)), **{k: v for k, v in out.items() if k != "changed"})
    return out


if __name__ == "__main__":
    main()
