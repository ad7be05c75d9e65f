# Copyright: llm-d wide-EP collection contributors
# Apache-2.0
"""Just enough of the helm CLI for one release: read its state, install or upgrade it, uninstall it."""
from __future__ import annotations

import json
import os
import re
import tempfile

from ansible_collections.llmd.wide_ep.plugins.module_utils import yamlout

# Options of a module that manages one release; release_state() reads them.
RELEASE_ARG_SPEC = {
    "release": {"type": "str", "required": True},
    "namespace": {"type": "str", "required": True},
    "chart_ref": {"type": "str", "required": True},
    "chart_version": {"type": "str"},
    "values": {"type": "dict", "default": {}},
    "state": {"type": "str", "default": "present", "choices": ["present", "absent"]},
    "wait": {"type": "bool", "default": False},
    "wait_timeout": {"type": "int", "default": 300},
    "helm_binary": {"type": "str", "default": "helm"},
}


class HelmError(Exception):
    pass


class Helm:
    def __init__(self, module, binary="helm", kubeconfig=None, context=None):
        self.module = module
        self.binary = module.get_bin_path(binary, required=False) or binary
        if not os.path.exists(self.binary):
            raise HelmError("helm not found (%s): install helm 3.x on the controller or set helm_binary" % binary)
        self.global_args = []
        kubeconfig = kubeconfig or os.environ.get("K8S_AUTH_KUBECONFIG")
        if kubeconfig:
            self.global_args += ["--kubeconfig", kubeconfig]
        if context:
            self.global_args += ["--kube-context", context]
        self.commands = 0

    def run(self, *args, check=True):
        self.commands += 1
        rc, out, err = self.module.run_command([self.binary, *args, *self.global_args])
        if check and rc != 0:
            raise HelmError("helm %s failed (rc=%d): %s" % (" ".join(args[:2]), rc, (err or out).strip()))
        return rc, out, err

    def release(self, name, namespace):
        """The deployed release as {chart, version, status, revision, values}, or None."""
        dummy, out, dummy_err = self.run("list", "-n", namespace, "--filter", "^%s$" % re.escape(name), "-a",
                                         "-o", "json")
        found = [r for r in json.loads(out or "[]") if r.get("name") == name]
        if not found:
            return None
        rel = found[0]
        chart, dummy, version = rel.get("chart", "").rpartition("-")
        dummy, values, dummy_err = self.run("get", "values", name, "-n", namespace, "-o", "json")
        return {"chart": chart, "version": version, "status": rel.get("status"),
                "revision": int(rel.get("revision", 0)), "app_version": rel.get("app_version"),
                "values": json.loads(values or "null") or {}}

    def chart_version(self, chart_ref, version):
        """The version helm will install: the requested one, or a local chart's own."""
        if os.path.exists(chart_ref):
            dummy, out, dummy_err = self.run("show", "chart", chart_ref)
            meta = yamlout.safe_load(out) or {}
            return meta.get("version"), meta.get("name")
        return version, None

    def upgrade(self, name, namespace, chart_ref, version, values, dry_run=False, timeout=300, repo_url=None,
                create_namespace=False, wait=False, take_ownership=False):
        with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as fh:
            yamlout.safe_dump(values, fh)
            values_file = fh.name
        try:
            args = ["upgrade", "--install", name, chart_ref, "-n", namespace, "-f", values_file,
                    "--timeout", "%ds" % timeout]
            if version and not os.path.exists(chart_ref):
                args += ["--version", version]
            if repo_url:
                args += ["--repo", repo_url]
            if create_namespace:
                args.append("--create-namespace")
            if take_ownership:
                args.append("--take-ownership")
            if wait and not dry_run:
                args.append("--wait")
            if dry_run:
                args.append("--dry-run=server")
            self.run(*args)
        finally:
            os.unlink(values_file)

    def uninstall(self, name, namespace, dry_run=False):
        args = ["uninstall", name, "-n", namespace, "--wait"]
        if dry_run:
            args.append("--dry-run")
        self.run(*args)


def _canon(values):
    return json.loads(json.dumps(values or {}, sort_keys=True))


def _state_yaml(rel):
    if not rel:
        return ""
    shown = {"chart": "%s-%s" % (rel["chart"], rel["version"]), "status": rel.get("status"), "values": rel["values"]}
    return yamlout.safe_dump(shown, sort_keys=True)


def release_state(helm, module, p):
    """Bring release p["release"] to p["state"]; return the module result (changed, before, release, diff).

    Idempotence compares chart version, status and user-supplied values (what `helm get values` returns), so a
    change made to the release's objects behind helm's back is not seen: the same limit as kubernetes.core.helm
    without the helm-diff plugin."""
    name, ns = p["release"], p["namespace"]
    before = helm.release(name, ns)
    result = {"changed": False, "before": {k: v for k, v in (before or {}).items() if k != "values"} or None}
    if p["state"] == "absent":
        if before:
            helm.uninstall(name, ns, dry_run=module.check_mode)
            result["changed"] = True
            if module._diff:
                result["diff"] = {"before": _state_yaml(before), "after": ""}
        return result
    version, chart_name = helm.chart_version(p["chart_ref"], p.get("chart_version"))
    wanted = {"chart": chart_name or (before or {}).get("chart") or p["chart_ref"].rstrip("/").rsplit("/", 1)[-1],
              "version": version, "status": "deployed", "values": _canon(p["values"])}
    changed = (before is None or before["status"] != "deployed" or (version and before["version"] != version)
               or _canon(before["values"]) != wanted["values"])
    if changed:
        try:
            helm.upgrade(name, ns, p["chart_ref"], p.get("chart_version"), p["values"], dry_run=module.check_mode,
                         timeout=p.get("wait_timeout", 300), repo_url=p.get("chart_repo_url"),
                         create_namespace=p.get("create_namespace", False), wait=p.get("wait", False),
                         take_ownership=p.get("take_ownership", False))
        except HelmError as exc:
            # In check mode the namespace may be one an earlier task of this run would create.
            if not (module.check_mode and 'namespaces "%s" not found' % ns in str(exc)):
                raise
            module.warn("namespace %s does not exist yet: the release would be installed into it; its "
                        "server-side render was skipped" % ns)
        if module._diff:
            result["diff"] = {"before_header": "helm release %s" % name, "after_header": "helm release %s" % name,
                              "before": _state_yaml(before), "after": _state_yaml(wanted)}
    result["changed"] = changed
    after = wanted if module.check_mode or not changed else helm.release(name, ns)
    result["release"] = {k: v for k, v in (after or {}).items() if k != "values"}
    result["helm_commands"] = helm.commands
    return result
