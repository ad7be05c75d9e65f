"""A LeaderWorkerSet's groups (module_utils/k8s/lws.py): split groups found from pods and StatefulSets alone -
another leader's worker, mixed revisions, a worker made alone long after its group - and nothing else flagged."""
from ansible_collections.llmd.wide_ep.plugins.module_utils.k8s import lws
from tests.support.fake_api import stamp

T0 = 1_800_000_000


def pod(name, group, worker, created, uid=None, revision="r1", sts=None, grace=None):
    meta = {"name": name, "uid": uid or name + "-uid", "creationTimestamp": stamp(T0 + created),
            "labels": {lws.LWS_GROUP_LABEL: str(group), lws.LWS_WORKER_LABEL: str(worker),
                       lws.REVISION_LABEL: revision}}
    if sts:
        meta["ownerReferences"] = [{"kind": "StatefulSet", "name": sts}]
    return {"metadata": meta, "spec": {} if grace is None else {"terminationGracePeriodSeconds": grace}}


def sts(name, leader_uid, created):
    return {"metadata": {"name": name, "creationTimestamp": stamp(T0 + created),
                         "ownerReferences": [{"kind": "Pod", "uid": leader_uid}]}}


def test_whole_groups_are_not_split():
    pods = [pod("d-0", 0, 0, 0), pod("d-0-1", 0, 1, 3, sts="d-0"),
            pod("d-1", 1, 0, 0), pod("d-1-1", 1, 1, 95, sts="d-1", grace=5)]   # a group restarted whole, late
    assert lws.split_groups(pods, [sts("d-0", "d-0-uid", 1), sts("d-1", "d-1-uid", 40)], window=60) == []


def test_a_worker_recreated_alone_is_found_after_the_window_and_its_grace():
    pods = [pod("d-0", 0, 0, 0), pod("d-0-1", 0, 1, 91, sts="d-0", grace=30)]
    assert lws.split_groups(pods, [sts("d-0", "d-0-uid", 1)], window=60) == []            # 90 s: window + grace
    pods[1] = pod("d-0-1", 0, 1, 200, sts="d-0", grace=30)
    split = lws.split_groups(pods, [sts("d-0", "d-0-uid", 1)], window=60)
    assert split[0]["group"] == "0" and split[0]["leader"] == "d-0"
    assert "worker d-0-1 was recreated alone 199s after its group started" in split[0]["why"][0]


def test_another_leaders_worker_and_mixed_revisions_are_found():
    pods = [pod("d-0", 0, 0, 0, revision="r2"), pod("d-0-1", 0, 1, 2, sts="d-0")]
    split = lws.split_groups(pods, [sts("d-0", "old-leader-uid", 1)])
    assert split[0]["why"] == ["its pods are of revisions r1, r2", "worker d-0-1 belongs to another leader"]


def test_identity_is_kind_namespace_name_and_uid():
    obj = {"kind": "LeaderWorkerSet", "metadata": {"namespace": "n", "name": "d", "uid": "u", "generation": 3}}
    assert lws.identity(obj) == {"kind": "LeaderWorkerSet", "namespace": "n", "name": "d", "uid": "u"}
