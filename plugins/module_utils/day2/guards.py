# Copyright: llm-d wide-EP collection contributors
# Apache-2.0
"""What refuses a change of the model servers before it is made: another workload of the same deployment, and a
rollout in progress. Each raises WideEPError naming what to do instead."""
from __future__ import annotations

from ansible_collections.llmd.wide_ep.plugins.module_utils.day2 import lease
from ansible_collections.llmd.wide_ep.plugins.module_utils.errors import WideEPError
from ansible_collections.llmd.wide_ep.plugins.module_utils.k8s.errors import K8sError


def refuse_beside_the_other_workload(client, obj, replaces):
    """The LeaderWorkerSet pair and the DisaggregatedSet of one deployment each take every GPU of the topology."""
    for other in replaces:
        try:
            live = client.get(other)
        except K8sError as exc:
            if exc.status == 404:   # its kind is not served here: none of it runs
                continue
            raise
        if live is None:
            continue
        if obj["kind"] == "DisaggregatedSet":
            how = ("move it onto the DisaggregatedSet with playbooks/upgrade.yml -e upgrade_from_workload="
                   "leaderworkersets (wide_ep_workload: disaggregatedset), or tear it down first")
        else:
            how = ("set wide_ep_workload: disaggregatedset to keep it, or tear it down (teardown.yml with "
                   "wide_ep_workload: disaggregatedset) before deploying the LeaderWorkerSet pair")
        raise WideEPError("not creating %s %s/%s beside %s %s/%s of the same deployment: both would take the "
                          "topology's GPUs. %s" % (obj["kind"], obj["metadata"].get("namespace"),
                                                   obj["metadata"]["name"], other["kind"],
                                                   other["metadata"]["namespace"], other["metadata"]["name"], how))


def refuse_during_rollout(client, obj):
    """An upgrade or rollback rolls these LeaderWorkerSets behind health gates while it holds the namespace's
    rollout lease: a plain apply under it would change what its gate is judging (and what it would roll back)."""
    ns = obj["metadata"].get("namespace")
    held = lease.running(client, ns)
    if held:
        raise WideEPError("not changing %s %s/%s: an upgrade or rollback is rolling the model servers "
                          "of namespace %s (Lease %s held by %s, renewed %s). Run again after it ends; if its "
                          "controller died, the lease expires %ss after that renewal" % (
                              obj["kind"], ns, obj["metadata"]["name"], ns, lease.LEASE_NAME, *held))
