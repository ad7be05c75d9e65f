# Copyright: llm-d wide-EP collection contributors
# Apache-2.0
"""The LeaderWorkerSet controller: how the one found was installed, and what the lws role does about it."""
from __future__ import annotations

import re

from ansible_collections.llmd.wide_ep.plugins.module_utils import versions

WEBHOOK_PATH = "/mutate-leaderworkerset-x-k8s-io-v1-leaderworkerset"


def version(text):
    match = re.search(r"v?(\d+\.\d+\.\d+(?:-[0-9A-Za-z.]+)?)", text or "")
    return match.group(1) if match else None


def found(crd, release, deployment, webhook_url):
    """{crd, managed_by (helm, manifest, external, none), version, webhook_url} of what runs."""
    out = {"crd": crd, "managed_by": "none", "version": None, "webhook_url": webhook_url}
    if release:
        out.update(managed_by="helm", version=version(release.get("app_version")) or version(release["version"]))
    elif deployment:
        image = deployment["spec"]["template"]["spec"]["containers"][0].get("image", "")
        out.update(managed_by="manifest", version=version(image.rpartition(":")[2]))
    elif webhook_url:
        out["managed_by"] = "external"
    return out


def action(lws, want, force=False):
    """(action, why): install, replace (force_version over any install), upgrade (an older helm or manifest
    install), or keep - a newer one, one of unknown version, or a controller outside the cluster is left alone."""
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
