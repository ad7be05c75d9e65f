# Copyright: llm-d wide-EP collection contributors
# Apache-2.0
"""Just enough of the helm CLI for one release: read its state, install or upgrade it, uninstall it."""
from __future__ import annotations

import json
import os
import re
import tempfile

import yaml


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
        _, out, _ = self.run("list", "-n", namespace, "--filter", "^%s$" % re.escape(name), "-a", "-o", "json")
        found = [r for r in json.loads(out or "[]") if r.get("name") == name]
        if not found:
            return None
        rel = found[0]
        chart, _, version = rel.get("chart", "").rpartition("-")
        _, values, _ = self.run("get", "values", name, "-n", namespace, "-o", "json")
        return {"chart": chart, "version": version, "status": rel.get("status"),
                "revision": int(rel.get("revision", 0)), "app_version": rel.get("app_version"),
                "values": json.loads(values or "null") or {}}

    def chart_version(self, chart_ref, version):
        """The version helm will install: the requested one, or a local chart's own."""
        if os.path.exists(chart_ref):
            _, out, _ = self.run("show", "chart", chart_ref)
            meta = yaml.safe_load(out) or {}
            return meta.get("version"), meta.get("name")
        return version, None

    def upgrade(self, name, namespace, chart_ref, version, values, dry_run=False, timeout=300):
        with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as fh:
            yaml.safe_dump(values, fh)
            values_file = fh.name
        try:
            args = ["upgrade", "--install", name, chart_ref, "-n", namespace, "-f", values_file,
                    "--timeout", "%ds" % timeout]
            if version and not os.path.exists(chart_ref):
                args += ["--version", version]
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
