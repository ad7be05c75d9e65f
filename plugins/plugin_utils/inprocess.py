# Copyright: llm-d wide-EP collection contributors
# Apache-2.0
"""Run one of the collection's modules inside the task's worker process instead of a new Python.

Every Kubernetes task of the collection runs on the controller, and the official `kubernetes` client costs every
process that imports it 0.37 s here (1.96 s on a slower machine) - more than the API work of a typical task.
The action plugin imports it once, in ansible-playbook's main process (the strategy loads action plugins there),
and each task's worker, forked from it, runs the module's own main() against `ModuleCall`: the part of
AnsibleModule the modules use, with AnsibleModule's argument validation (types, defaults, choices, aliases,
no_log) and its masking of no_log values in the result. The worker is a fresh fork per task, so nothing a module
does to the process outlives the task.
"""
from __future__ import annotations

import importlib
import os
import shutil
import subprocess
import tempfile

from ansible.module_utils.common.arg_spec import ModuleArgumentSpecValidator
from ansible.module_utils.common.parameters import remove_values
from ansible.module_utils.common.process import get_bin_path

from ansible_collections.llmd.wide_ep.plugins.module_utils import runner


class ModuleExit(BaseException):
    """exit_json/fail_json: ends the module's main() like SystemExit ends a module process (never caught by a
    module's `except Exception`)."""

    def __init__(self, result):
        super().__init__()
        self.result = result


class ModuleCall:
    """What the collection's modules use of AnsibleModule, for one call inside this process."""

    name, args, check_mode, diff, made = "module", {}, False, False, []  # set per call by run()

    def __init__(self, argument_spec, supports_check_mode=False, mutually_exclusive=None, required_together=None,
                 required_one_of=None, required_if=None, required_by=None, **_ignored):
        self.check_mode, self._diff, self._warnings, self._tmpdir = type(self).check_mode, type(self).diff, [], None
        self.no_log_values = set()
        validated = ModuleArgumentSpecValidator(argument_spec, mutually_exclusive, required_together,
                                                required_one_of, required_if, required_by).validate(dict(self.args))
        self.no_log_values.update(validated._no_log_values)
        self.params = validated.validated_parameters
        if validated.error_messages:
            msg = validated.errors.msg
            if type(validated.errors[0]).__name__ == "UnsupportedError":
                msg = "Unsupported parameters for (%s) module: %s" % (self.name, msg)
            self.fail_json(msg=msg)
        if self.check_mode and not supports_check_mode:
            raise ModuleExit({"skipped": True, "msg": "this module does not support check mode"})

    def _finish(self, result):
        if self._warnings:
            result["warnings"] = list(result.get("warnings", [])) + self._warnings
        return remove_values(result, self.no_log_values)

    def exit_json(self, **result):
        result.setdefault("changed", False)
        raise ModuleExit(self._finish(result))

    def fail_json(self, msg, **result):
        result.update(failed=True, msg=msg)
        raise ModuleExit(self._finish(result))

    def warn(self, warning):
        self._warnings.append(warning)

    def get_bin_path(self, arg, required=False, opt_dirs=None):
        try:
            return get_bin_path(arg, opt_dirs=opt_dirs)
        except ValueError as exc:
            if required:
                self.fail_json(msg=str(exc))
            return None

    def run_command(self, args, check_rc=False, data=None, environ_update=None, cwd=None, **_ignored):
        env = dict(os.environ, **(environ_update or {}))
        try:
            proc = subprocess.run(args, input=data, capture_output=True, text=True, env=env, cwd=cwd, check=False)
        except OSError as exc:
            if check_rc:
                self.fail_json(msg=str(exc), cmd=args, rc=2)
            return 2, "", str(exc)
        if check_rc and proc.returncode:
            self.fail_json(msg="non-zero return code", cmd=args, rc=proc.returncode, stdout=proc.stdout,
                           stderr=proc.stderr)
        return proc.returncode, proc.stdout, proc.stderr

    @property
    def tmpdir(self):
        if self._tmpdir is None:
            self._tmpdir = tempfile.mkdtemp(prefix="llmd-wide-ep-")
            self.made.append(self._tmpdir)
        return self._tmpdir


def run(fqcn, args, check_mode, diff, environment):
    """The result of module `fqcn` (llmd.wide_ep.NAME) run here with `args`, as its process would return it."""
    namespace, collection, name = fqcn.split(".")
    module = importlib.import_module("ansible_collections.%s.%s.plugins.modules.%s" % (namespace, collection, name))
    made = []
    call = type("ModuleCall_" + name, (ModuleCall,), {
        "name": name, "args": args, "check_mode": check_mode, "diff": diff, "made": made})
    runner.AnsibleModule = call   # every module builds its AnsibleModule in runner.run_module
    os.environ.update({k: str(v) for k, v in environment.items()})  # the task's environment: this worker's own
    _sent(reset=True)
    try:
        module.main()
        return {"failed": True, "msg": "module %s returned without exit_json or fail_json" % fqcn}
    except ModuleExit as done:
        done.result.setdefault("api_requests", _sent())
        return done.result
    finally:
        for path in made:
            shutil.rmtree(path, ignore_errors=True)
        _forget_temp_files()


def _sent(reset=False):
    """The API requests of this call (a loop's items run one after the other in the same worker)."""
    from ansible_collections.llmd.wide_ep.plugins.module_utils.k8s.client import Transport

    if reset:
        Transport.sent = 0
    return Transport.sent


def _forget_temp_files():
    """The official loader writes certificate and key data to temporary files and deletes them at exit; a
    forked worker leaves through os._exit, which skips that, so delete them here."""
    try:
        from kubernetes.config import kube_config
    except ImportError:
        return
    kube_config._cleanup_temp_files()
