"""The rollout lease (module_utils/day2/lease.py) over the in-memory API server, on a fake clock: taken when free,
refused while its holder renews, taken over when nobody renews it, and never deleted when it is someone else's."""
import pytest

from ansible_collections.llmd.wide_ep.plugins.module_utils.day2 import lease
from ansible_collections.llmd.wide_ep.plugins.module_utils.k8s.client import Client
from ansible_collections.llmd.wide_ep.plugins.module_utils.progress import Progress
from tests.support.fake_api import FakeApi

REF = lease.ref("ns")


class Clock:
    def __init__(self, start=1_800_000_000.0):
        self.now = start
        self.hooks = []      # called at each sleep: another run renewing meanwhile

    def time(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds
        for hook in self.hooks:
            hook()


@pytest.fixture
def clock(monkeypatch):
    c = Clock()
    monkeypatch.setattr(lease.time, "time", c.time)
    monkeypatch.setattr(lease.time, "sleep", c.sleep)
    return c


def test_a_free_lease_is_taken_and_given_back(clock):
    api = FakeApi()
    mine = lease.Lease(Client(transport=api), "ns", 30, note="upgrade.yml")
    mine.acquire(Progress())
    live = Client(transport=api).get(REF)
    assert live["spec"]["holderIdentity"] == mine.identity and live["spec"]["leaseDurationSeconds"] == 30
    assert lease.running(Client(transport=api), "ns")[0] == mine.identity
    mine.release()
    assert Client(transport=api).get(REF) is None


def test_a_renewing_holder_keeps_it(clock):
    api = FakeApi()
    holder = lease.Lease(Client(transport=api), "ns", 30)
    holder.acquire(Progress())
    clock.hooks.append(lambda: holder.renew(force=True))
    with pytest.raises(lease.Held, match="another upgrade or rollback is running: Lease ns/wide-ep-rollout is held"):
        lease.Lease(Client(transport=api), "ns", 30).acquire(Progress())


def test_an_unrenewed_lease_is_taken_over_after_its_duration(clock):
    api = FakeApi()
    dead = lease.Lease(Client(transport=api), "ns", 30)
    dead.acquire(Progress())
    start = clock.now
    progress = Progress()
    heir = lease.Lease(Client(transport=api), "ns", 30)
    heir.acquire(progress)
    assert clock.now - start > 30
    assert any("took over the lease of %s" % dead.identity in line for line in progress)
    live = Client(transport=api).get(REF)
    assert live["spec"]["holderIdentity"] == heir.identity and live["spec"]["leaseTransitions"] == 1


def test_the_loser_can_neither_renew_nor_delete(clock):
    api = FakeApi()
    dead = lease.Lease(Client(transport=api), "ns", 30)
    dead.acquire(Progress())
    clock.now += 3600                        # long abandoned: taken at once
    heir = lease.Lease(Client(transport=api), "ns", 30)
    heir.acquire(Progress())
    with pytest.raises(lease.Held, match="lost the rollout lease"):
        dead.renew(force=True)
    dead.release()                           # its resourceVersion precondition fails: nothing deleted
    assert Client(transport=api).get(REF)["spec"]["holderIdentity"] == heir.identity


def test_renewal_is_rate_limited_to_a_third_of_the_duration(clock):
    api = FakeApi()
    mine = lease.Lease(Client(transport=api), "ns", 30)
    mine.acquire(Progress())
    puts = lambda: sum(1 for m, p, q in api.log if m == "PUT")  # noqa: E731
    mine.renew()
    assert puts() == 0
    clock.now += 11
    mine.renew()
    assert puts() == 1
