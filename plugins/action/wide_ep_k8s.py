# Copyright: llm-d wide-EP collection contributors
# Apache-2.0
"""Action plugin of every Kubernetes module of the collection, and of `topology` (meta/runtime.yml routes them
here).

Cluster access, in this order: the task's options (with its module_defaults for the module or for
group/llmd.wide_ep.k8s), then the connection options of module_defaults for group/kubernetes.core.k8s (so one
block configures both collections), then the shared settings `wide_ep_kubeconfig`, `wide_ep_kube_context`
and `wide_ep_helm_binary` (role wide_ep_defaults), then the module's K8S_AUTH_* variables.

On the controller - a local connection, which every Kubernetes task here has - the module runs in this worker
(plugin_utils/inprocess.py): the `kubernetes` package is imported below, once, when the strategy loads this
plugin in ansible-playbook's main process, and every task's worker inherits it. Elsewhere, or async, or with
LLMD_WIDE_EP_IN_PROCESS=0, the module runs the usual way, in a new Python on the target.
"""
from __future__ import annotations

import gc
import importlib
import json
import os
import ssl
import tempfile

from ansible.plugins.action import ActionBase
from ansible.plugins.action.normal import ActionModule as NormalAction
from ansible.plugins.loader import filter_loader, module_loader, test_loader

from ansible_collections.llmd.wide_ep.plugins.module_utils.k8s.auth import AUTH_ARG_SPEC
from ansible_collections.llmd.wide_ep.plugins.plugin_utils import inprocess

# The modules routed here (meta/runtime.yml; tests/unit/render/test_defaults.py keeps the lists equal): the Kubernetes
# modules, and modules that only compute on the controller, run in the worker to spare a Python start.
CONTROLLER_MODULES = ("topology", "operator_rbac")
K8S_MODULES = ("k8s_objects", "leaderworkerset", "inferencepool", "cluster_facts", "stack_status", "helm_release",
               "lws_facts", "nic_mesh_pods", "gpu_capacity", "smoke_request", "benchmark_run", "modelserver_rollout",
               "upgrade_plan", "node_drain", "namespace_contents", "lws_crds", "workload_move", "workload_preflight",
               "image_prepull")
try:
    # Paid here, in ansible-playbook's main process, once per run: every task's worker is forked from it.
    import kubernetes.client  # noqa: F401  pylint: disable=unused-import
    import kubernetes.config  # noqa: F401  pylint: disable=unused-import

    HAS_KUBERNETES = True
except ImportError:
    HAS_KUBERNETES = False
if HAS_KUBERNETES:  # and the modules themselves, with their module_utils (0.2 s once, instead of per task)
    for _name in K8S_MODULES + CONTROLLER_MODULES:
        importlib.import_module("ansible_collections.llmd.wide_ep.plugins.modules." + _name)
    # What each worker would otherwise do first, done here once: OpenSSL reads its configuration when a process
    # makes its first TLS context (2 ms of every task's first request).
    ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
# ansible.builtin's Jinja filters and tests: the plugin loader reads all of a kind when a process first looks one
# up, as a worker does when it first compiles an expression with a filter or test (3-5 ms of such a worker).
for _loader, _plugin in ((filter_loader, "ansible.builtin.bool"), (test_loader, "ansible.builtin.match")):
    try:
        _loader.get(_plugin)
    except Exception:  # pylint: disable=broad-except  # only a head start: a worker loads them itself
        pass
# Everything loaded so far (Ansible, the parsed playbook, the kubernetes client) lives as long as this process:
# frozen out of the garbage collector, as the gc module's documentation advises before forks, so that no task's
# worker walks (and copies on write) these objects in each of its collections. 0.1-0.2 s of a no-op site.yml.
gc.freeze()

# option -> the shared setting that fills it
SHARED = {"kubeconfig": "wide_ep_kubeconfig", "context": "wide_ep_kube_context"}
HELM = {"helm_binary": "wide_ep_helm_binary"}
# the modules that run helm (the others do not accept helm_binary)
HELM_MODULES = ("helm_release", "inferencepool", "lws_facts", "stack_status", "upgrade_plan", "cluster_facts",
                "operator_rbac", "lws_crds")
CORE_GROUP = "group/kubernetes.core.k8s"
LOCAL = ("local", "ansible.builtin.local", "ansible.legacy.local")
NAMES = {name: (name, *spec.get("aliases", ())) for name, spec in AUTH_ARG_SPEC.items()}
CANONICAL = {alias: name for name, names in NAMES.items() for alias in names}


class ActionModule(NormalAction):

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        module = module_loader.find_plugin_with_context(
            self._task.action, collection_list=self._task.collections).resolved_fqcn
        short = module.rsplit(".", 1)[-1]
        if short in K8S_MODULES:
            args = self._with_access(dict(self._task.args), short, task_vars)
        else:
            # Ansible matches module_defaults groups by the action plugin, which these modules share with the
            # Kubernetes ones: drop the connection options group/llmd.wide_ep.k8s gave them (they take none).
            args = {k: v for k, v in self._task.args.items() if k not in CANONICAL and (
                k != "helm_binary" or short in HELM_MODULES)}
            if short in HELM_MODULES:   # helm without a cluster (helm template)
                args = self._with_shared(args, HELM, task_vars)
        self._task.args = args
        if not self._in_process():
            return super().run(tmp, task_vars)
        result = ActionBase.run(self, tmp, task_vars)
        environment = {}
        self._compute_environment_string(environment)
        plain = json.loads(json.dumps(args, default=str))  # the values a module process would receive
        with tempfile.TemporaryDirectory(prefix="llmd-wide-ep-") as private:
            if isinstance(plain.get("kubeconfig"), dict):  # as a file, so no result or message can echo it
                path = os.path.join(private, "kubeconfig")
                with open(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600), "w") as fh:
                    json.dump(plain["kubeconfig"], fh)
                plain["kubeconfig"] = path
            return dict(result, **inprocess.run(module, plain, bool(self._task.check_mode), bool(self._task.diff),
                                                environment))

    def _with_access(self, args, short, task_vars):
        """args with the cluster access the task leaves out: kubernetes.core's group defaults, then the shared
        settings (and the module's own K8S_AUTH_* variables after that, in module_utils/k8s/auth.py)."""
        for option, value in self._core_group_defaults().items():
            if all(args.get(name) is None for name in NAMES[option]):
                args[option] = value
        return self._with_shared(args, dict(SHARED, **(HELM if short in HELM_MODULES else {})), task_vars)

    def _with_shared(self, args, settings, task_vars):
        """args with each option the task leaves out taken from its shared setting (option -> variable)."""
        for option, variable in settings.items():
            if args.get(option) in (None, "") and variable in task_vars:
                value = self._templar.template(task_vars[variable])
                if value not in (None, ""):
                    args[option] = value
        return args

    def _in_process(self):
        return (HAS_KUBERNETES and self._connection.transport in LOCAL and not self._task.async_val
                and os.environ.get("LLMD_WIDE_EP_IN_PROCESS", "1") != "0")

    def _core_group_defaults(self):
        """The connection options that module_defaults give kubernetes.core's k8s group."""
        found = {}
        for defaults in self._task.module_defaults or []:
            for option, value in (defaults.get(CORE_GROUP) or {}).items():
                if option in CANONICAL:
                    found[CANONICAL[option]] = self._templar.template(value)
        return found
