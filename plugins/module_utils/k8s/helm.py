# Copyright: llm-d wide-EP collection contributors
# Apache-2.0
"""Just enough of the helm CLI for one release: read its state, install or upgrade it, uninstall it."""
from __future__ import annotations

import base64
import gzip
import json
import os
import re
import tarfile
import tempfile

from ansible_collections.llmd.wide_ep.plugins.module_utils import versions, yamlout
from ansible_collections.llmd.wide_ep.plugins.module_utils.errors import WideEPError
from ansible_collections.llmd.wide_ep.plugins.module_utils.k8s import auth

# The helm CLIs the collection runs; both are tested (helm 4 by the test matrix's newest leg).
HELM3_MINIMUM = "3.17.0"   # --take-ownership
HELM_WANTED = "install helm 4, or helm 3.17 or later"
# Options of every module that runs helm (doc fragment llmd.wide_ep.k8s.helm).
HELM_ARG_SPEC = {"helm_binary": {"type": "str", "default": "helm"}}
# Options of a module that manages one release; release_state() reads them.
RELEASE_ARG_SPEC = {
    "release": {"type": "str", "required": True},
    "namespace": {"type": "str", "required": True},
    "chart_ref": {"type": "str"},
    "chart_version": {"type": "str"},
    "values": {"type": "dict", "default": {}},
    "state": {"type": "str", "default": "present", "choices": ["present", "absent", "rolled_back"]},
    "wait": {"type": "bool", "default": False},
    "wait_timeout": {"type": "int", "default": 300},
    **HELM_ARG_SPEC,
}


ALL_STATES = ("--deployed", "--failed", "--pending", "--superseded", "--uninstalled", "--uninstalling")


class HelmError(WideEPError):
    """A helm command that failed; the message says which and why."""


def installed_version(module, binary):
    """`helm version --short` of `binary`, which must be a helm the collection runs (else HelmError with the fix).
    A compiled helm's answer is kept in the user's cache under the file's identity (path, inode, size, mtime), so
    a re-run starts no helm (a script, which may wrap another helm, is asked every time)."""
    path = module.get_bin_path(binary) or binary
    if not os.path.exists(path):
        raise HelmError("helm not found (%s): %s on the controller or set wide_ep_helm_binary" % (binary, HELM_WANTED))
    real = os.path.realpath(path)
    st = os.stat(real)
    cached = os.path.join(yamlout.cache_dir("helm-version"),
                          "%d-%d-%d-%d" % (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns))
    try:
        with open(cached) as fh:
            out = fh.read().strip()
    except OSError:
        out = ""
    found = versions.parse(out)
    if found is None:
        rc, out, err = module.run_command([path, "version", "--short"])
        out = out.strip()
        found = None if rc else versions.parse(out)
        if found is None:
            raise HelmError("%s is not a working helm (`version --short`: rc %d, %s): %s" % (
                path, rc, (out or err).strip()[:200], HELM_WANTED))
        with open(real, "rb") as fh:
            if fh.read(2) != b"#!":
                yamlout.keep_text(cached, out)
    if not (found.major == 4 or (found.major == 3 and found >= versions.parse(HELM3_MINIMUM))):
        raise HelmError("%s is helm %s; the collection runs helm %s or later (its --take-ownership and "
                        "--dry-run=server) or helm 4: %s" % (path, found, HELM3_MINIMUM, HELM_WANTED))
    return out


class Helm:
    """The helm CLI with the module's cluster access: the same auth options as the API calls, passed as helm's
    own flags and HELM_KUBE* variables (a token never goes on a command line, where `ps` shows it)."""

    def __init__(self, module, binary="helm", params=None, client=None):
        # client: read releases from helm's storage Secrets over the API (two requests, no helm process)
        self.module, self.client = module, client
        self.binary = module.get_bin_path(binary, required=False) or binary
        if not os.path.exists(self.binary):
            raise HelmError("helm not found (%s): %s on the controller or set helm_binary" % (binary, HELM_WANTED))
        self.global_args, self.env = [], {}
        opts = auth.options(params or {})
        explicit = opts.get("host") and opts.get("api_key")  # as auth.load: then no kubeconfig is read
        kubeconfig = None if explicit else opts.get("kubeconfig")
        if isinstance(kubeconfig, dict):  # helm reads files only: a private copy for this call
            fd, path = tempfile.mkstemp(prefix="llmd-kubeconfig-", dir=module.tmpdir)
            with os.fdopen(fd, "w") as fh:
                json.dump(kubeconfig, fh)
            kubeconfig = path
        if kubeconfig:
            self.global_args += ["--kubeconfig", kubeconfig]
        if opts.get("client_cert") and not kubeconfig:
            raise HelmError("helm takes a client certificate only from a kubeconfig: set kubeconfig")
        env = {"context": "HELM_KUBECONTEXT", "host": "HELM_KUBEAPISERVER", "api_key": "HELM_KUBETOKEN",
               "ca_cert": "HELM_KUBECAFILE", "impersonate_user": "HELM_KUBEASUSER"}
        self.env = {var: opts[name] for name, var in env.items() if opts.get(name)}
        if opts.get("impersonate_groups"):
            self.env["HELM_KUBEASGROUPS"] = ",".join(opts["impersonate_groups"])
        if opts.get("validate_certs") is False:
            self.env["HELM_KUBEINSECURE_SKIP_TLS_VERIFY"] = "true"
        if opts.get("proxy"):
            self.env["HTTPS_PROXY"] = opts["proxy"]
        self.commands = 0

    def run(self, *args, check=True):
        self.commands += 1
        rc, out, err = self.module.run_command([self.binary, *args, *self.global_args], environ_update=self.env)
        if check and rc != 0:
            raise HelmError("helm %s failed (rc=%d): %s" % (" ".join(args[:2]), rc, (err or out).strip()))
        return rc, out, err

    def release(self, name, namespace):
        """The latest revision of a release as {chart, version, status, revision, values}, or None."""
        driver = os.environ.get("HELM_DRIVER", "secret").lower()
        if self.client is not None and driver in ("", "secret", "secrets"):
            return self._stored_release(name, namespace)
        # Every state, spelled as helm 3 and helm 4 both take it (helm 4 has no -a; its default is every state).
        dummy, out, dummy_err = self.run("list", "-n", namespace, "--filter", "^%s$" % re.escape(name), *ALL_STATES,
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

    def _stored_release(self, name, namespace):
        """What `helm list -a` and `helm get values` say, from the Secrets helm keeps each revision in
        (sh.helm.release.v1.NAME.vN: the release as gzipped JSON, base64-encoded by helm and by the API)."""
        # every revision's labels (helm keeps up to 10 revisions of ~40 KB each), then the latest one whole; read
        # again if a helm run pruned it between the two reads
        for _attempt in range(3):
            secrets = self.client.list("v1", "Secret", namespace, label_selector="owner=helm,name=%s" % name,
                                       metadata_only=True)
            if not secrets:
                return None
            latest = self.client.get(max(secrets, key=lambda s: int(s["metadata"].get("labels", {}).get(
                "version", 0))))
            if latest is not None:
                break
        else:
            raise HelmError("the Secrets of helm release %s/%s changed under three reads" % (namespace, name))
        stored = base64.b64decode(base64.b64decode(latest["data"]["release"]))
        rel = json.loads(gzip.decompress(stored) if stored[:2] == b"\x1f\x8b" else stored)
        meta = (rel.get("chart") or {}).get("metadata") or {}
        return {"chart": meta.get("name"), "version": meta.get("version"), "status": rel["info"]["status"],
                "revision": int(rel.get("version", 0)), "app_version": meta.get("appVersion"),
                "values": rel.get("config") or {}}

    def chart_version(self, chart_ref, version):
        """The version helm will install: the requested one, or a local chart's own (read from its Chart.yaml)."""
        meta = _local_chart(chart_ref)
        if meta is not None:
            return meta.get("version"), meta.get("name")
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

    def template(self, name, namespace, chart_ref, version, values, include_crds=True):
        """The objects a chart renders for these values (no cluster); with `include_crds` its crds/ too."""
        with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as fh:
            yamlout.safe_dump(values, fh)
            values_file = fh.name
        try:
            args = ["template", name, chart_ref, "-n", namespace, "-f", values_file]
            args += ["--include-crds"] if include_crds else []
            if version and not os.path.exists(chart_ref):
                args += ["--version", version]
            dummy, out, dummy_err = self.run(*args)
        finally:
            os.unlink(values_file)
        return [doc for doc in yamlout.load_all(out) if isinstance(doc, dict) and doc.get("kind")]

    def rollback(self, name, namespace, revision, wait=False, timeout=300, dry_run=False):
        args = ["rollback", name, str(revision), "-n", namespace, "--timeout", "%ds" % timeout]
        if wait and not dry_run:
            args.append("--wait")
        if dry_run:
            args.append("--dry-run")
        self.run(*args)

    def uninstall(self, name, namespace, dry_run=False):
        args = ["uninstall", name, "-n", namespace, "--wait"]
        if dry_run:
            args.append("--dry-run")
        self.run(*args)


def _local_chart(chart_ref):
    """Chart.yaml of a local chart directory or .tgz, or None (a remote chart, or another archive layout)."""
    try:
        if os.path.isdir(chart_ref):
            with open(os.path.join(chart_ref, "Chart.yaml")) as fh:
                return yamlout.safe_load(fh) or {}
        if os.path.isfile(chart_ref) and tarfile.is_tarfile(chart_ref):
            with tarfile.open(chart_ref) as tar:
                for member in tar.getmembers():
                    if member.name.count("/") == 1 and member.name.endswith("/Chart.yaml"):
                        return yamlout.safe_load(tar.extractfile(member).read()) or {}
    except (OSError, tarfile.TarError, yamlout.YAMLError):
        return None
    return None


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
    if p["state"] == "rolled_back":
        return _rolled_back(helm, module, p, before, result)
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


def _rolled_back(helm, module, p, before, result):
    """Return the release to the revision before its last one: what a failed upgrade's rescue does."""
    name, ns = p["release"], p["namespace"]
    if not before or before["revision"] < 2:
        raise HelmError("helm release %s/%s has no earlier revision to roll back to (%s)" % (
            ns, name, "revision %d" % before["revision"] if before else "not installed"))
    target = before["revision"] - 1
    helm.rollback(name, ns, target, wait=p.get("wait", False), timeout=p.get("wait_timeout", 300),
                  dry_run=module.check_mode)
    after = before if module.check_mode else helm.release(name, ns)
    result.update(changed=True, rolled_back_to=target,
                  release={k: v for k, v in (after or {}).items() if k != "values"}, helm_commands=helm.commands)
    return result
