"""What the tests share besides fixtures: where things are, the cluster's kubectl, and running playbooks with the
JSON callback. Imported as tests.support.runs (the one import style of the suite); conftest.py keeps the
fixtures."""
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("LLMD_CACHE", "/var/cache/llmd-wide-ep"))
BIN = CACHE / "bin"
# The helm the tests install charts with: helm 3 unless the matrix leg names another (scripts/test.sh: helm 4).
HELM = Path(os.environ.get("LLMD_HELM") or BIN / "helm")
KUBECONFIG = Path(os.environ.get("LLMD_CLUSTER_DIR", "/var/tmp/llmd-wide-ep/cluster")) / "kubeconfig"
VENV_BIN = Path(sys.executable).parent


def in_cluster_netns():
    """True when this process can reach the local cluster (it runs in its namespace and the API answers)."""
    if not KUBECONFIG.exists():
        return False
    res = subprocess.run([str(BIN / "kubectl"), f"--kubeconfig={KUBECONFIG}", "get", "--raw", "/readyz",
                          "--request-timeout=3s"], capture_output=True, text=True)
    return res.returncode == 0


class Kubectl:
    def __call__(self, *args, stdin=None, check=True):
        res = subprocess.run([str(BIN / "kubectl"), f"--kubeconfig={KUBECONFIG}", *args], input=stdin,
                             capture_output=True, text=True)
        if check and res.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed: {res.stderr}")
        return res

    def json(self, *args):
        return json.loads(self(*args, "-o", "json").stdout)

    def apply(self, objs):
        return self("apply", "--server-side", "-f", "-", stdin=yaml.safe_dump_all(objs))

    def wait_for(self, what, predicate, timeout=90, interval=0.5):
        deadline = time.time() + timeout
        last = None
        while time.time() < deadline:
            last = predicate()
            if last:
                return last
            time.sleep(interval)
        raise AssertionError(f"timed out after {timeout}s waiting for {what}")


@contextlib.contextmanager
def spare_gpu_nodes(cluster, count):
    """`count` kwok GPU nodes like the cluster's own (tests/support/cluster/nodes.yaml), Ready, for a surge group;
    deleted at the end, and the pods they held with them."""
    spec = yaml.safe_load((ROOT / "tests/support/cluster/nodes.yaml").read_text())["defaults"]
    names = ["spare-node-%d" % i for i in range(count)]
    nodes = [{"apiVersion": "v1", "kind": "Node",
              "metadata": {"name": name, "annotations": spec["annotations"],
                           "labels": {**spec["labels"], "kubernetes.io/hostname": name}},
              "status": {"capacity": spec["capacity"], "allocatable": spec["capacity"]}} for name in names]
    cluster("create", "-f", "-", stdin=yaml.safe_dump_all(nodes))
    try:
        cluster("wait", "--for=condition=Ready", "--timeout=60s", *("node/" + n for n in names))
        yield names
    finally:
        cluster("delete", "node", *names, "--ignore-not-found", "--timeout=60s", check=False)


def playbook_command(playbook, inventory="inventories/local", extra_vars=None, check=False, diff=False, extra=(),
                     env=None):
    """(argv, env) of ansible-playbook with the json callback; `env` adds to (or, with None values, removes
    from) the environment."""
    cmd = [str(VENV_BIN / "ansible-playbook"), str(playbook), "-i", inventory]
    if str(playbook).endswith("render.yml") and "render_rbac" not in (extra_vars or {}):
        # The operator's RBAC templates the inventory's router chart; but for the local inventory's copy, those are
        # remote charts out of reach here. test_24 renders it; every other render test leaves it out.
        extra_vars = dict(extra_vars or {}, render_rbac=inventory.endswith("local"))
    if extra_vars:
        cmd += ["-e", json.dumps(extra_vars)]
    if check:
        cmd.append("--check")
    if diff:
        cmd.append("--diff")
    cmd += list(extra)
    run_env = {**os.environ, "ANSIBLE_STDOUT_CALLBACK": "test_json",
               "ANSIBLE_CALLBACK_PLUGINS": str(ROOT / "tests/plugins/callback"), "ANSIBLE_FORCE_COLOR": "0",
               "ANSIBLE_NOCOLOR": "1", "PATH": f"{VENV_BIN}:{BIN}:{os.environ['PATH']}"}
    for key, value in (env or {}).items():
        if value is None:
            run_env.pop(key, None)
        else:
            run_env[key] = value
    return cmd, run_env


def run_playbook(playbook, inventory="inventories/local", extra_vars=None, check=False, diff=False, extra=(),
                 env=None):
    """Run ansible-playbook with the json callback; return (rc, stats-by-host, parsed output, raw stdout)."""
    cmd, env = playbook_command(playbook, inventory, extra_vars, check, diff, extra, env)
    res = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=env)
    return (res.returncode, *parse_playbook_output(res.stdout, res.stderr))


def start_playbook(playbook, extra_vars=None, inventory="inventories/local", env=None):
    """ansible-playbook in the background, in a session of its own (kill_run kills it with all it started)."""
    cmd, env = playbook_command(playbook, inventory, extra_vars=extra_vars, env=env)
    return subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            start_new_session=True)


def kill_run(proc):
    """SIGKILL a background playbook and every process it started, as if its machine died. Killing the process
    group is not enough: Ansible's workers run in sessions of their own and their modules outlive the parent."""
    def children():
        found = {}
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                pid, rest = stat.read_text().split(" ", 1)
            except OSError:
                continue
            found.setdefault(int(rest.rsplit(")", 1)[1].split()[1]), []).append(int(pid))
        return found

    tree, stopped = [proc.pid], set()
    while set(tree) - stopped:  # stop the tree first, so nothing forks a new child while it is being killed
        for pid in set(tree) - stopped:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGSTOP)
            stopped.add(pid)
        found = children()
        tree = [proc.pid]
        for pid in tree:
            tree += found.get(pid, [])
    for pid in tree:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    proc.wait()
    return tree


def parse_playbook_output(stdout, stderr=""):
    try:
        out = json.loads(stdout)
    except ValueError:
        out = {"stats": {}, "plays": [], "raw": stdout}
    return out.get("stats", {}), out, Log(stdout + stderr)


class Log(str):
    """Playbook output; its repr (what a failed assert shows) is only the tail, where the error is."""

    def __repr__(self):
        return "...\n" + self[-3000:]

    __str__ = __repr__  # pytest prints assertion messages with str()


def task_results(out, name_fragment):
    """Results of every task whose name contains name_fragment, per host."""
    found = []
    for play in out.get("plays", []):
        for task in play.get("tasks", []):
            if name_fragment in task["task"]["name"]:
                found.append(task["hosts"])
    return found
