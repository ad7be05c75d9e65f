"""Reading the plan's refs (module_utils/render/refs.py): a plan from another version is named, not guessed at."""
import pytest

from ansible_collections.llmd.wide_ep.plugins.module_utils.errors import InvalidInput
from ansible_collections.llmd.wide_ep.plugins.module_utils.render import plan, refs, topology


def test_check_names_every_missing_ref():
    with pytest.raises(InvalidInput, match="refs lacks release, pool: pass the plan's refs"):
        refs.check({"namespace": "ns"}, "pool")


def test_the_plans_refs_have_what_every_module_asks_for():
    p = plan.render(dict(topology.DEFAULT_SETTINGS))
    got = refs.check(p["refs"], "pool", "epp", "epp_service", "leaderworkersets", "gateway", "route")
    assert refs.name(got["pool"]) == "llm-d-infpool" and refs.namespace(got["epp"]) == "llm-d-wide-ep"
