"""What the two test clusters share (tests/support/cluster/localcluster.py, tests/support/kind/kindcluster.py):
a network namespace of their own with no way out, daemons inside it behind pid files, kubectl against the
cluster's kubeconfig, and waits that say what they waited for and where the logs are."""
import argparse
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Sandbox:
    netns: str              # the network namespace
    tag: str                # what log lines start with
    state: Path             # pid files under state/pids, daemon output under state/logs
    marker: str             # a word in every daemon's argv: a pid reused by another process does not have it
    kubectl_bin: Path
    kubeconfig: Path
    enter: tuple = ()       # the command prefix that enters the namespace; `ip netns exec NETNS` when empty

    def log(self, msg):
        print(f"[{self.tag} {time.strftime('%H:%M:%S')}] {msg}", flush=True)

    def cmd(self, argv):
        """argv run inside the namespace."""
        return [*(self.enter or ("ip", "netns", "exec", self.netns)), *argv]

    def ensure_netns(self, allowed_links=("lo",), unreachable_default=False):
        """The namespace, its loopback up; it may hold only links whose name starts with one of allowed_links."""
        if self.netns not in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.split():
            subprocess.run(["ip", "netns", "add", self.netns], check=True)
        subprocess.run(self.cmd(["ip", "link", "set", "lo", "up"]), check=True)
        if unreachable_default and "unreachable default" not in subprocess.run(
                self.cmd(["ip", "route"]), capture_output=True, text=True).stdout:
            subprocess.run(self.cmd(["ip", "route", "add", "unreachable", "default"]), check=True)
        links = subprocess.run(self.cmd(["ip", "-o", "link"]), capture_output=True, text=True).stdout
        names = [line.split(":")[1].strip().split("@")[0] for line in links.splitlines()]
        foreign = [n for n in names if not n.startswith(tuple(allowed_links))]
        if foreign:
            sys.exit(f"network namespace {self.netns} has links the project did not make: {foreign}; refusing to start")

    # --- daemons ------------------------------------------------------------------------------------------
    def pidfile(self, name):
        return self.state / "pids" / f"{name}.pid"

    def running(self, name):
        """The daemon's pid while it runs, else None."""
        try:
            pid = int(self.pidfile(name).read_text())
            os.kill(pid, 0)
            for _ in range(20):   # empty while `ip netns exec` execs the daemon: read again, not "exited"
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
                if cmdline:
                    break
                time.sleep(0.05)
            return pid if self.marker.encode() in cmdline else None
        except (FileNotFoundError, ValueError, ProcessLookupError, PermissionError):
            return None

    def start(self, name, argv, enter=None):
        """Start argv in the namespace (or under the prefix `enter`) in a session of its own, unless it runs."""
        if self.running(name):
            return
        for d in ("pids", "logs"):
            (self.state / d).mkdir(parents=True, exist_ok=True)
        with open(self.state / "logs" / f"{name}.log", "ab") as out:
            proc = subprocess.Popen([*enter, *argv] if enter else self.cmd(argv), stdout=out, stderr=out,
                                    stdin=subprocess.DEVNULL, start_new_session=True, cwd=self.state)
        self.pidfile(name).write_text(str(proc.pid))
        self.log(f"started {name} (pid {proc.pid})")

    def stop(self, name, timeout=10):
        """SIGTERM, then SIGKILL after timeout: one still shutting down would answer the next start, then go."""
        pid = self.running(name)
        if not pid:
            return
        os.kill(pid, signal.SIGTERM)
        deadline = time.time() + timeout
        while self.running(name) and time.time() < deadline:
            time.sleep(0.1)
        if self.running(name):
            self.log(f"{name} (pid {pid}) still running {timeout}s after SIGTERM: killing it")
            os.kill(pid, signal.SIGKILL)
            self.wait_for(f"{name} to exit", lambda: not self.running(name), timeout=30)
        self.log(f"stopped {name}")

    # --- waits and kubectl --------------------------------------------------------------------------------
    def wait_for(self, what, check, timeout=120, daemon=None):
        """Poll check until it holds; fail naming what, with the daemon's log tail when it exited meanwhile."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            if check():
                return
            if daemon and not self.running(daemon):
                tail = (self.state / "logs" / f"{daemon}.log").read_text(errors="replace")[-3000:]
                sys.exit(f"{daemon} exited while waiting for {what}; log tail:\n{tail}")
            time.sleep(0.5)
        sys.exit(f"timed out after {timeout}s waiting for {what}; see {self.state / 'logs'}")

    def kubectl(self, *args, stdin=None, check=True):
        res = subprocess.run(self.cmd([str(self.kubectl_bin), f"--kubeconfig={self.kubeconfig}", *args]),
                             input=stdin, capture_output=True, text=True)
        if check and res.returncode:
            sys.exit(f"kubectl {' '.join(args)} failed: {res.stderr.strip()}")
        return res

    # --- the commands both scripts have -------------------------------------------------------------------
    def wipe(self, down, note=""):
        """down(), then the state directory and the namespace."""
        down()
        subprocess.run(["rm", "-rf", str(self.state)], check=True)
        subprocess.run(["ip", "netns", "del", self.netns], capture_output=True)
        self.log(f"wiped {self.state} and netns {self.netns}{note}")

    def exec(self, argv, env):
        """Replace this process with argv inside the namespace, env added to the environment."""
        if not argv:
            sys.exit(f"usage: {self.tag}.py exec -- CMD...")
        os.execvpe(self.cmd(argv)[0], self.cmd(argv), {**os.environ, **env})


def cli(doc, commands, sandbox, env, more=None):
    """Parse `SCRIPT COMMAND` (commands: name -> function(args)) or `SCRIPT exec -- CMD...` (run CMD in the
    sandbox with env), and run it; more(subparsers) adds commands of the script's own."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    for name, fn in commands.items():
        sub.add_parser(name).set_defaults(fn=fn)
    if more:
        more(sub)
    ex = sub.add_parser("exec")
    ex.add_argument("cmd", nargs=argparse.REMAINDER)
    ex.set_defaults(fn=lambda args: sandbox.exec(args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd, env))
    args = parser.parse_args()
    args.fn(args)
