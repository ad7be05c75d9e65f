"""The rollout lease (module_utils/day2/lease.py) against the real API server: one holder at a time, a live holder
keeps it, a dead one loses it after its duration, nobody deletes a lease that is not theirs."""
import threading
import time

import pytest

from ansible_collections.llmd.wide_ep.plugins.module_utils.day2 import lease
from ansible_collections.llmd.wide_ep.plugins.module_utils.k8s.client import Client
from tests.support.runs import KUBECONFIG

DURATION = 10


def holder(cluster, namespace):
    res = cluster("get", "lease", "-n", namespace, lease.LEASE_NAME, "-o", "json", check=False)
    return cluster.json("get", "lease", "-n", namespace, lease.LEASE_NAME)["spec"] if res.returncode == 0 else None


def new_lease(namespace, note):
    return lease.Lease(Client({"kubeconfig": str(KUBECONFIG)}), namespace, DURATION, note=note)


def test_a_live_holder_keeps_the_lease_and_a_dead_one_loses_it(cluster, namespace):
    first, second = new_lease(namespace, "first"), new_lease(namespace, "second")
    progress = []
    first.acquire(progress)
    assert progress == []                                  # free: created, nothing to wait for
    spec = holder(cluster, namespace)
    assert (spec["holderIdentity"], spec["leaseDurationSeconds"], spec["leaseTransitions"]) == \
        (first.identity, DURATION, 0)

    # The first run is alive (renews): the second sees the renewal and gives up without touching the lease.
    stop = threading.Event()
    renewer = threading.Thread(target=lambda: [first.renew(force=True) for _ in iter(lambda: stop.wait(1), True)])
    renewer.start()
    try:
        started = time.time()
        with pytest.raises(lease.Held, match="another upgrade or rollback is running: Lease %s/%s is held by %s" % (
                namespace, lease.LEASE_NAME, first.identity)):
            second.acquire([], sleep=0.5)
        assert time.time() - started < DURATION
    finally:
        stop.set()
        renewer.join()
    assert holder(cluster, namespace)["holderIdentity"] == first.identity

    # The first run dies (stops renewing): the second waits out the duration, then takes the lease over.
    progress, started = [], time.time()
    second.acquire(progress, sleep=0.5)
    assert DURATION <= time.time() - started < DURATION + 10
    assert progress[-1] == "took over the lease of %s: not renewed for %ss" % (first.identity, DURATION)
    spec = holder(cluster, namespace)
    assert (spec["holderIdentity"], spec["leaseTransitions"]) == (second.identity, 1)

    # The first run, back from the dead, learns it lost the lease and cannot delete the second's.
    with pytest.raises(lease.Held, match="lost the rollout lease: .* held by %s" % second.identity):
        first.renew(force=True)
    first.release()
    assert holder(cluster, namespace)["holderIdentity"] == second.identity
    second.release()
    assert holder(cluster, namespace) is None


def test_a_lease_abandoned_long_ago_is_taken_at_once(cluster, namespace):
    cluster.apply([{"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                    "metadata": {"name": lease.LEASE_NAME, "namespace": namespace},
                    "spec": {"holderIdentity": "a-run-from-yesterday", "leaseDurationSeconds": 90,
                             "renewTime": "2026-01-01T00:00:00.000000Z"}}])
    third, progress = new_lease(namespace, "third"), []
    started = time.time()
    third.acquire(progress)
    assert time.time() - started < 5
    assert progress == ["took over the lease of a-run-from-yesterday: last renewed 2026-01-01T00:00:00.000000Z"]
    assert holder(cluster, namespace)["holderIdentity"] == third.identity
    third.release()
    assert holder(cluster, namespace) is None


def test_the_plan_check_reads_a_fresh_lease_as_held():
    now = time.time()
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime(now - 30))
    live = {"spec": {"holderIdentity": "run", "renewTime": stamp, "leaseDurationSeconds": 90}}
    assert lease.fresh(live, now)
    assert not lease.fresh(live, now + 61)
    assert not lease.fresh({"spec": {"renewTime": stamp, "leaseDurationSeconds": 90}}, now)  # released
    assert not lease.fresh(None, now)
