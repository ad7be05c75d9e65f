"""Where a Kubernetes module's credentials come from: the action plugin gives every module of the collection
wide_ep_kubeconfig (role wide_ep_defaults) when neither the task nor module_defaults set it; both still win."""
import pytest

from tests.support.runs import KUBECONFIG, run_playbook, task_results

MISSING = "/nonexistent/kubeconfig"


def read(extra):
    rc, stats, out, log = run_playbook("tests/playbooks/credentials.yml", extra_vars=extra)
    ran = [r["localhost"] for r in task_results(out, "Read the cluster") if not r["localhost"].get("skipped")]
    assert len(ran) == 1, log
    return rc, ran[0], log


@pytest.mark.parametrize("case,extra,works", [
    ("the shared setting alone", {"wide_ep_kubeconfig": str(KUBECONFIG)}, True),
    ("a wrong shared setting", {"wide_ep_kubeconfig": MISSING}, False),
    ("module_defaults over a wrong shared setting",
     {"wide_ep_kubeconfig": MISSING, "credentials_defaults_kubeconfig": str(KUBECONFIG)}, True),
    ("a wrong module_defaults over a right shared setting",
     {"wide_ep_kubeconfig": str(KUBECONFIG), "credentials_defaults_kubeconfig": MISSING}, False),
    ("the task option over both", {"wide_ep_kubeconfig": MISSING, "credentials_task_kubeconfig": str(KUBECONFIG),
                                   "credentials_defaults_kubeconfig": MISSING}, True),
])
def test_precedence(cluster, case, extra, works):
    rc, res, log = read(extra)
    if works:
        assert rc == 0 and res["version"].startswith("1."), (case, log)
    else:
        assert rc != 0 and MISSING in res["msg"], (case, log)
