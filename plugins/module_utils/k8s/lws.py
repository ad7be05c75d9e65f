# Copyright: llm-d wide-EP collection contributors
# Apache-2.0
"""LeaderWorkerSet labels and pods."""
from __future__ import annotations

LWS_NAME_LABEL = "leaderworkerset.sigs.k8s.io/name"
LWS_GROUP_LABEL = "leaderworkerset.sigs.k8s.io/group-index"


def lws_pods(client, namespace, lws_name, group=None):
    """The pods of one LeaderWorkerSet (of one of its groups when `group` is given)."""
    selector = "%s=%s" % (LWS_NAME_LABEL, lws_name)
    if group is not None:
        selector += ",%s=%s" % (LWS_GROUP_LABEL, group)
    return client.list("v1", "Pod", namespace, label_selector=selector)
