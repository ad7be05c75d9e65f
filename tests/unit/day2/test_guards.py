"""The guards before a change of the model servers (module_utils/day2/guards.py) over the in-memory API server:
the other workload of the deployment refuses, naming the move; a rollout's lease refuses, naming its holder."""
import pytest

from ansible_collections.llmd.wide_ep.plugins.module_utils.day2 import guards, lease
from ansible_collections.llmd.wide_ep.plugins.module_utils.errors import WideEPError
from ansible_collections.llmd.wide_ep.plugins.module_utils.k8s.client import Client
from tests.support.fake_api import RESOURCES, FakeApi

DS = {"apiVersion": "disaggregatedset.x-k8s.io/v1", "kind": "DisaggregatedSet",
      "metadata": {"name": "wide-ep-lws-nvidia-gpu-vllm", "namespace": "ns"}}
PAIR = [{"apiVersion": "leaderworkerset.x-k8s.io/v1", "kind": "LeaderWorkerSet",
         "metadata": {"name": "wide-ep-llm-d-" + role, "namespace": "ns"}} for role in ("prefill", "decode")]


def test_the_set_is_refused_beside_a_running_pair_naming_the_move():
    api = FakeApi()
    guards.refuse_beside_the_other_workload(Client(transport=api), DS, PAIR)     # none of the pair: no refusal
    api.put(dict(PAIR[1], spec={"replicas": 1}))
    with pytest.raises(WideEPError) as exc:
        guards.refuse_beside_the_other_workload(Client(transport=api), DS, PAIR)
    assert str(exc.value).startswith("not creating DisaggregatedSet ns/wide-ep-lws-nvidia-gpu-vllm beside "
                                     "LeaderWorkerSet ns/wide-ep-llm-d-decode of the same deployment")
    assert "upgrade_from_workload=leaderworkersets" in str(exc.value)


def test_the_pair_is_refused_beside_a_set_and_a_kind_not_served_is_nothing_running():
    api = FakeApi()
    api.put(dict(DS, spec={"roles": []}))
    with pytest.raises(WideEPError, match="set wide_ep_workload: disaggregatedset to keep it"):
        guards.refuse_beside_the_other_workload(Client(transport=api), PAIR[0], [DS])
    no_set = {k: v for k, v in RESOURCES.items() if k != "disaggregatedset.x-k8s.io/v1"}
    guards.refuse_beside_the_other_workload(Client(transport=FakeApi(served=no_set)), PAIR[0], [DS])


def test_a_held_rollout_lease_refuses_naming_its_holder():
    api = FakeApi()
    guards.refuse_during_rollout(Client(transport=api), PAIR[0])
    lease.Lease(Client(transport=api), "ns", 300, note="upgrade.yml").acquire([])
    with pytest.raises(WideEPError, match="an upgrade or rollback is rolling the model servers of namespace ns"):
        guards.refuse_during_rollout(Client(transport=api), PAIR[0])
