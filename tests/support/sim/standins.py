"""llm-d-inference-sim standing in for the model servers on the local cluster. kwok gives pods IPs but runs no
containers, so the test adds each pod IP to the loopback device of the cluster's network namespace and starts one
simulator with 8 ranks (ports 8000-8007) that answers on all of them: the API server's pod proxy, the smoke
request and inference-perf then reach a real OpenAI-compatible server at the pod's address. Cutting one IP off
the loopback makes that pod unreachable, as a dead node would."""
import subprocess
import time
import urllib.request

import pytest

from tests.support.runs import BIN, CACHE

MODEL = "deepseek-ai/DeepSeek-R1-0528"
PERF = CACHE / "perf-venv" / "bin" / "inference-perf"
TOKENIZER = CACHE / "perf-venv" / "sim-tokenizer"


def require_perf():
    """inference-perf is installed by scripts/setup.sh outside the namespace. Skips only where setup recorded why
    it could not be built (no Python 3.12); otherwise a missing venv is a failure naming the step."""
    unavailable = CACHE / "perf-venv" / ".unavailable"
    if PERF.exists() and (TOKENIZER / "tokenizer.json").exists():
        return
    if unavailable.exists():
        pytest.skip("inference-perf not built by scripts/setup.sh: " + unavailable.read_text().strip())
    pytest.fail("%s or the test tokenizer is missing: build them with scripts/setup.sh (step \"inference-perf venv "
                "and test tokenizer\"), outside the cluster's network namespace" % PERF, pytrace=False)


class Standins:
    def __init__(self, pod_ips, port=8000, ranks=8):
        self.ips, self.port, self.ranks = list(pod_ips), port, ranks
        self.proc = None

    def __enter__(self):
        for ip in self.ips:
            self.plug(ip)
        self.proc = subprocess.Popen(
            [str(BIN / "llm-d-inference-sim"), "--port", str(self.port), "--data-parallel-size", str(self.ranks),
             "--model", MODEL, "--force-dummy-tokenizer", "--max-model-len", "4096", "--max-num-seqs", "256",
             "--time-to-first-token", "20ms", "--inter-token-latency", "2ms"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        deadline = time.time() + 30
        while True:
            try:
                with urllib.request.urlopen("http://127.0.0.1:%d/v1/models" % (self.port + self.ranks - 1), timeout=2):
                    return self
            except OSError:
                if self.proc.poll() is not None or time.time() > deadline:
                    raise AssertionError("llm-d-inference-sim did not start: %s"
                                         % self.proc.stderr.read()[-2000:]) from None
                time.sleep(0.2)

    def __exit__(self, *exc):
        self.proc.terminate()
        self.proc.wait(10)
        for ip in self.ips:
            self.cut(ip)

    @staticmethod
    def plug(ip):
        subprocess.run(["ip", "addr", "replace", "%s/32" % ip, "dev", "lo"], check=True)

    @staticmethod
    def cut(ip):
        subprocess.run(["ip", "addr", "del", "%s/32" % ip, "dev", "lo"], capture_output=True)
