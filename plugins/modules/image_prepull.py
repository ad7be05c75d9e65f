#!/usr/bin/python
# Copyright: llm-d wide-EP collection contributors
# Apache-2.0
from __future__ import annotations

DOCUMENTATION = r"""
module: image_prepull
short_description: Pull the model servers' images onto the nodes they may run on, before the workload is applied
description:
  - A LeaderWorkerSet group restarts whole while one of its pods still pulls the 20+ GB image
    (kubernetes-sigs/lws#725, #877); pulling first avoids that and takes the download out of the start.
  - Reads the nodes once. A node a pod of the workload may run on (taints, node selector, required affinity,
    cordon; resources aside) that lists every image is left alone; one that lists no image at all (a virtual
    kubelet, as kwok's) is reported as not known; every other one gets one pod, bound to it by C(nodeName), whose
    containers are the images it lacks (C(IfNotPresent), the workload's ServiceAccount and pull secrets,
    tolerating every taint, no resources asked). Progress is shown live; the pods are deleted at the end, and
    a pod left by an interrupted run at the start.
  - Check mode says what would be pulled where and creates nothing.
version_added: 0.5.0
author: llm-d wide-EP collection contributors (@llm-d)
options:
  workloads:
    description: The plan's C(objects.workloads).
    type: list
    elements: dict
    required: true
  namespace:
    description: Where the pull pods run (the deployment's namespace; it must exist).
    type: str
    required: true
  timeout:
    description: Seconds the pulls may take in all.
    type: int
    default: 1800
  error_timeout:
    description:
      - Seconds a node's pull may keep failing (C(ErrImagePull), C(ImagePullBackOff), which the kubelet retries)
        before it counts as failed. Errors that do not heal (an invalid name) fail at once.
    type: int
    default: 300
extends_documentation_fragment:
  - llmd.wide_ep.k8s
"""

EXAMPLES = r"""
- name: Pull the model server images onto their nodes
  llmd.wide_ep.image_prepull:
    workloads: "{{ wide_ep_plan.objects.workloads }}"
    namespace: "{{ wide_ep_plan.summary.namespace }}"
"""

RETURN = r"""
pulled:
  description: Node -> the images pulled onto it (in check mode, that would be).
  returned: always
  type: dict
present:
  description: The nodes that held every image already.
  returned: always
  type: list
  elements: str
unknown:
  description: The nodes that list no image (virtual kubelets); nothing is pulled there.
  returned: always
  type: list
  elements: str
failures:
  description: Node -> why its pull failed (C(failed) is Ansible's own key).
  returned: always
  type: dict
seconds:
  description: Time taken.
  returned: always
  type: float
"""

import time

from ansible_collections.llmd.wide_ep.plugins.module_utils.errors import WideEPError
from ansible_collections.llmd.wide_ep.plugins.module_utils.k8s import prepull
from ansible_collections.llmd.wide_ep.plugins.module_utils.progress import Progress
from ansible_collections.llmd.wide_ep.plugins.module_utils.runner import run_module


def main():
    run_module(dict(workloads={"type": "list", "elements": "dict", "required": True},
                    namespace={"type": "str", "required": True},
                    timeout={"type": "int", "default": 1800},
                    error_timeout={"type": "int", "default": 300}),
               pull_images, supports_check_mode=True)


def pull_images(ctx):
    p, started, progress = ctx.params, time.monotonic(), Progress()
    done = prepull.run(ctx.client, p["workloads"], p["namespace"], p["timeout"], p["error_timeout"], progress,
                       check_mode=ctx.check_mode)
    if done["unknown"]:
        ctx.module.warn("image pre-pull: %d node(s) list no images, so what they hold cannot be told and nothing "
                        "is pulled there (virtual kubelets, as kwok's): %s" % (
                            len(done["unknown"]), ", ".join(done["unknown"][:6])))
    summary = "image pre-pull: %s%d node(s) held every image, %d list none" % (
        "%d node(s) %s, " % (len(done["pull"]), "would pull" if ctx.check_mode else "pulled")
        if done["pull"] else "", len(done["present"]), len(done["unknown"]))
    progress.append(summary)
    out = {"changed": bool(done["pull"]), "msg": summary, "pulled": done["pull"], "present": done["present"],
           "unknown": done["unknown"], "failures": done["failed"], "progress": list(progress),
           "seconds": round(time.monotonic() - started, 3)}
    if done["failed"]:
        raise WideEPError("image pre-pull failed on %d node(s), nothing of the workload was applied: %s" % (
            len(done["failed"]), "; ".join("%s: %s" % kv for kv in sorted(done["failed"].items()))),
            **{k: v for k, v in out.items() if k != "changed"})
    return out


if __name__ == "__main__":
    main()
