# Copyright: llm-d wide-EP collection contributors
# Apache-2.0
"""Reading the plan's `refs` (module_utils/render/plan.py makes them): the options of the modules that take them and
short accessors, so no module builds an object name itself."""
from __future__ import annotations

from ansible_collections.llmd.wide_ep.plugins.module_utils.errors import InvalidInput

# The options of a module that works on the deployment (doc fragment llmd.wide_ep.plan).
PLAN_ARG_SPEC = {
    "refs": {"type": "dict", "required": True},
    "expected": {"type": "dict", "required": True},
}


def name(ref):
    return ref["metadata"]["name"]


def namespace(ref):
    return ref["metadata"].get("namespace")


def check(refs, *keys):
    """Raise InvalidInput naming the refs a module needs that are not there (a plan from another version)."""
    missing = [k for k in ("namespace", "release") + keys if k not in (refs or {})]
    if missing:
        raise InvalidInput("refs lacks %s: pass the plan's refs (wide_ep_plan.refs, from the topology role)"
                           % ", ".join(missing))
    return refs


def workload_refs(refs):
    """The model servers' workload objects, whose identity a change must keep: the DisaggregatedSet, or each
    LeaderWorkerSet."""
    return [refs["disaggregatedset"]] if refs.get("disaggregatedset") else list(refs["leaderworkersets"].values())
