# Copyright: llm-d wide-EP collection contributors
# Apache-2.0
"""The LeaderWorkerSet controller: how the one found was installed, and what the lws role does about it."""
from __future__ import annotations

import re

from ansible_collections.llmd.wide_ep.plugins.module_utils import versions

WEBHOOK_PATH = "/mutate-leaderworkerset-x-k8s-io-v1-leaderworkerset"
DS_WEBHOOK_PATH = "/validate-disaggregatedset-x-k8s-io-v1-disaggregatedset"
DS_MIN_VERSION = "0.9.0"     # the first controller with the DisaggregatedSet (sigs.k8s.io/lws@v0.9.0)
DS_VALUE = "enableDisaggregatedSet"   # the chart's value for its validating webhook and ClusterRoles


def serves_ds(lws):
    """Whether the controller found serves the DisaggregatedSet: its CRD, and the validating webhook that the
    chart installs only with enableDisaggregatedSet (the controller itself always runs the reconciler)."""
    return bool(lws.get("ds_crd") and lws.get("ds_webhook"))


def version(text):
    match = re.search(r"v?(\d+\.\d+\.\d+(?:-[0-9A-Za-z.]+)?)", text or "")
    return match.group(1) if match else None


def found(crd, release, deployment, webhook_url, ds_crd=False, ds_webhook=False):
    """{crd, managed_by (helm, manifest, external, none), version, webhook_url, ds_crd, ds_webhook} of what
    runs."""
    out = {"crd": crd, "managed_by": "none", "version": None, "webhook_url": webhook_url, "ds_crd": ds_crd,
           "ds_webhook": ds_webhook}
    if release:
        out.update(managed_by="helm", version=version(release.get("app_version")) or version(release["version"]))
    elif deployment:
        image = deployment["spec"]["template"]["spec"]["containers"][0].get("image", "")
        out.update(managed_by="manifest", version=version(image.rpartition(":")[2]))
    elif webhook_url:
        out["managed_by"] = "external"
    return out


def action(lws, want, force=False, need_ds=False):
    """(action, why): install, replace (force_version over any install), upgrade (an older helm or manifest
    install), or keep - a newer one, one of unknown version, or a controller outside the cluster is left alone.
    With need_ds (wide_ep_workload: disaggregatedset), a helm release of 0.9.0 or later that does not serve the
    DisaggregatedSet is upgraded in place with enableDisaggregatedSet, and a controller the role would leave
    alone without it is refused (ValueError), before any change."""
    if need_ds:
        if not version(want) or versions.parse(version(want)) < versions.parse(DS_MIN_VERSION):
            raise ValueError("lws_version: %s has no DisaggregatedSet, which wide_ep_workload: disaggregatedset "
                             "runs on; set lws_version: %s or later" % (want, DS_MIN_VERSION))
        chosen = _action(lws, want, force)
        if chosen[0] != "keep" or serves_ds(lws):
            return chosen
        at_least = lws["version"] and versions.parse(lws["version"]) >= versions.parse(DS_MIN_VERSION)
        if lws["managed_by"] == "helm" and at_least:
            return "upgrade", ("enabling the DisaggregatedSet on LeaderWorkerSet %s (helm): %s=true adds its "
                               "validating webhook" % (lws["version"], DS_VALUE))
        raise ValueError(
            "wide_ep_workload: disaggregatedset needs a LeaderWorkerSet controller %s or later that serves the "
            "DisaggregatedSet (its CRD %s, its validating webhook %s); the one found (%s, %s) %s. Fix: %s" % (
                DS_MIN_VERSION, "present" if lws.get("ds_crd") else "missing",
                "present" if lws.get("ds_webhook") else "missing", lws["managed_by"], lws["version"] or
                "unknown version", chosen[1].split("; ", 1)[-1],
                "install LWS %s or later with helm --set %s=true (kubernetes-sigs/lws charts/lws), or let the "
                "lws role do it: lws_version: %s and lws_force_version: true" % (DS_MIN_VERSION, DS_VALUE, want)))
    return _action(lws, want, force)


def _action(lws, want, force):
    if lws["managed_by"] == "none":
        return "install", "no LeaderWorkerSet controller found: installing %s" % want
    if force:
        return "replace", "replacing the %s install (%s) with %s (force_version)" % (
            lws["managed_by"], lws["version"] or "unknown version", want)
    if lws["managed_by"] == "external":
        return "keep", ("LeaderWorkerSet is served by a controller outside the cluster (webhooks call %s); leaving "
                        "it alone" % lws["webhook_url"])
    if lws["version"] is None:
        return "keep", ("LeaderWorkerSet is installed (%s) at an unknown version; leaving it alone "
                        "(lws_force_version: true to replace it)" % lws["managed_by"])
    if version(want) and versions.parse(lws["version"]) < versions.parse(want):
        return "upgrade", "upgrading LeaderWorkerSet %s (%s) to %s" % (lws["version"], lws["managed_by"], want)
    return "keep", ("LeaderWorkerSet %s (%s) is at least %s; leaving it alone (lws_force_version: true to change "
                    "it)" % (lws["version"], lws["managed_by"], want))


# --- the controller's upgrades: what each release does to them (kubernetes-sigs/lws charts at each tag) --------
LWS_CRD = "leaderworkersets.leaderworkerset.x-k8s.io"
DS_CRD = "disaggregatedsets.disaggregatedset.x-k8s.io"
KEEP = {"helm.sh/resource-policy": "keep"}   # helm deletes no object with it, whatever the release's manifest says
CRD_MANAGER = "llmd.wide_ep.lws-crds"
RELEASES = {
    # crds_in_release: the chart renders its CRDs as templates (charts/lws/templates/crds), so helm tracks them and
    # deletes them when an upgrade's chart carries them in crds/ instead (kubernetes-sigs/lws#880).
    "0.7.0": {"crds_in_release": True, "crds": (LWS_CRD,)},
    "0.8.0": {"crds_in_release": False, "crds": (LWS_CRD,),
              "restarts_groups_from_older": "the 0.8.0 controller sees every LeaderWorkerSet as changed and "
                                            "restarts every group (kubernetes-sigs/lws#797, fixed in 0.9.0): "
                                            "upgrade to 0.9.0 directly, or set lws_accept_group_restart: true"},
    "0.9.0": {"crds_in_release": False, "crds": (LWS_CRD, DS_CRD)},
}


def upgrade_problems(have, want, managed_by, accept_group_restart=False):
    """Why the collection refuses to move the controller from `have` to `want`, with the manual step; [] when
    it can make the move safe."""
    want_v, have_v = version(want), version(have)
    if want_v not in RELEASES:
        return ["LeaderWorkerSet %s is not a release this collection knows how to upgrade to safely (known: %s); "
                "its chart may move or drop CRDs that helm would then delete with every LeaderWorkerSet: set "
                "lws_version to one of those, or upgrade by hand (annotate the CRDs helm.sh/resource-policy=keep, "
                "apply the chart's crds/ server-side, then helm upgrade)" % (want, ", ".join(RELEASES))]
    if managed_by == "helm" and have_v and have_v not in RELEASES:
        return ["the LeaderWorkerSet controller runs %s, a release this collection does not know: its upgrade is "
                "yours to make by hand (annotate the CRDs helm.sh/resource-policy=keep first)" % have]
    refuse = RELEASES[want_v].get("restarts_groups_from_older")
    if refuse and not accept_group_restart and have_v and versions.parse(have_v) < versions.parse(want_v):
        return ["lws_version %s: %s" % (want_v, refuse)]
    return []


PROBE_NAMESPACE = "default"      # every cluster has it; a dry run leaves nothing in it


def probe_ds():
    """The smallest DisaggregatedSet the webhook admits: what a server-side dry run sends through it."""
    def role(name):
        return {"name": name, "spec": {"replicas": 1, "leaderWorkerTemplate": {"size": 1, "workerTemplate": {
            "spec": {"containers": [{"name": "probe", "image": "registry.k8s.io/pause:3.10"}]}}}}}
    return {"apiVersion": "disaggregatedset.x-k8s.io/v1", "kind": "DisaggregatedSet",
            "metadata": {"name": "llmd-wide-ep-admission-probe", "namespace": PROBE_NAMESPACE},
            "spec": {"roles": [role("prefill"), role("decode")]}}


def wait_admits_ds(client, timeout, sleep=2):
    """Seconds until the API server admits a DisaggregatedSet through the controller's webhook (a server-side
    dry run: nothing is stored). A controller just started serves its health checks before it registers its
    webhooks, and a DisaggregatedSet applied then fails (HTTP 500, "could not find the requested resource").
    Raises K8sError with the last refusal on timeout."""
    import time

    from ansible_collections.llmd.wide_ep.plugins.module_utils.k8s.errors import K8sError

    start = time.monotonic()
    while True:
        try:
            client.apply(probe_ds(), dry_run=True)
            return round(time.monotonic() - start, 1)
        except K8sError as exc:
            if time.monotonic() - start >= timeout:
                raise K8sError("the LeaderWorkerSet controller does not admit a DisaggregatedSet after %ss: %s" % (
                    timeout, exc), exc.status, exc.reason, exc.body) from None
        time.sleep(sleep)


LEADER_ELECTION_ID = "b8b2488c.x-k8s.io"   # the controller's lease, in its namespace (0.7.0 to 0.9.0)


def workloads(client):
    """Every LeaderWorkerSet and DisaggregatedSet of the cluster, anyone's: [{kind, namespace, name, uid,
    generation, pods}] - what must survive a controller change (pods: {name: uid} of a LeaderWorkerSet's groups)."""
    from ansible_collections.llmd.wide_ep.plugins.module_utils.k8s.errors import K8sError
    from ansible_collections.llmd.wide_ep.plugins.module_utils.k8s.lws import LWS_NAME_LABEL

    pods = {}
    for pod in client.list("v1", "Pod", label_selector=LWS_NAME_LABEL):
        meta = pod["metadata"]
        pods.setdefault((meta["namespace"], meta["labels"][LWS_NAME_LABEL]), {})[meta["name"]] = meta["uid"]
    found = []
    for api_version, kind in (("leaderworkerset.x-k8s.io/v1", "LeaderWorkerSet"),
                              ("disaggregatedset.x-k8s.io/v1", "DisaggregatedSet")):
        try:
            items = client.list(api_version, kind)
        except K8sError as exc:
            if exc.status == 404:   # the kind is not served: nothing of it to lose
                continue
            raise
        found += [{"kind": kind, "namespace": o["metadata"]["namespace"], "name": o["metadata"]["name"],
                   "uid": o["metadata"]["uid"], "generation": o["metadata"].get("generation"),
                   "pods": pods.get((o["metadata"]["namespace"], o["metadata"]["name"]), {}) if
                   kind == "LeaderWorkerSet" else {}} for o in items]
    return sorted(found, key=lambda w: (w["kind"], w["namespace"], w["name"]))


def restarted(before, after):
    """{"kind namespace/name": [pods]}: the pods of each workload that a controller change deleted or recreated."""
    now = {(w["kind"], w["namespace"], w["name"]): w.get("pods", {}) for w in after}
    out = {}
    for w in before:
        key = (w["kind"], w["namespace"], w["name"])
        gone = sorted(n for n, uid in (w.get("pods") or {}).items() if key in now and now[key].get(n) != uid)
        if gone:
            out["%s %s/%s" % key] = gone
    return out


def lost(before, after, restart_accepted=False):
    """What a controller change lost: gone, recreated (another UID) or changed (another generation); groups
    restarted (their pods recreated) unless that was accepted."""
    now = {(w["kind"], w["namespace"], w["name"]): w for w in after}
    problems = []
    for w in before:
        key = (w["kind"], w["namespace"], w["name"])
        what = "%s %s/%s" % key
        if key not in now:
            problems.append("%s is gone" % what)
        elif now[key]["uid"] != w["uid"]:
            problems.append("%s was deleted and recreated (uid %s, was %s)" % (what, now[key]["uid"], w["uid"]))
        elif now[key]["generation"] != w["generation"]:
            problems.append("%s changed (generation %s, was %s)" % (what, now[key]["generation"], w["generation"]))
    if not restart_accepted:
        problems += ["%s: pods %s were recreated - the controller restarted its groups" % (what, ", ".join(pods))
                     for what, pods in restarted(before, after).items()]
    return problems
