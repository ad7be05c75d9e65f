"""Helm releases read from helm's storage Secrets over the API (module_utils/k8s/helm.py, no helm process) say what
the helm CLI says - after an install, an upgrade with other values and a rollback - against the real release
site.yml installs."""
import json
import subprocess

import pytest

from ansible_collections.llmd.wide_ep.plugins.module_utils.k8s.client import Client
from ansible_collections.llmd.wide_ep.plugins.module_utils.k8s.helm import Helm
from ansible_collections.llmd.wide_ep.plugins.plugin_utils.inprocess import ModuleCall
from tests.support.runs import BIN, HELM, KUBECONFIG, run_playbook

NS, RELEASE = "llm-d-wide-ep", "llm-d-infpool"
ACCESS = {"kubeconfig": str(KUBECONFIG)}


@pytest.fixture(scope="module")
def deployed(cluster):
    rc, _, _, log = run_playbook("site.yml")
    assert rc == 0, log
    yield cluster
    cluster("delete", "namespace", NS, "--wait=true", "--timeout=180s")  # the tests after start from none


def module_call():
    return type("Call", (ModuleCall,), {"args": {}, "made": []})({})  # run_command and get_bin_path, in process


def reads():
    module = module_call()
    cli = Helm(module, str(HELM), ACCESS).release(RELEASE, NS)
    stored = Helm(module, str(HELM), ACCESS, client=Client(ACCESS)).release(RELEASE, NS)
    return cli, stored


def helm(*args):
    res = subprocess.run([str(HELM), "--kubeconfig", str(KUBECONFIG), *args], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    return res.stdout


def test_stored_release_equals_the_cli_through_upgrade_and_rollback(deployed, tmp_path):
    cli, stored = reads()
    assert cli is not None and stored == cli
    values = json.loads(helm("get", "values", RELEASE, "-n", NS, "-o", "json"))
    values["llmdStorageTest"] = {"revision": "two"}
    (tmp_path / "values.json").write_text(json.dumps(values))
    chart = "%s/data/gaie/inferencepool-%s.tgz" % (BIN.parent, cli["version"])
    helm("upgrade", RELEASE, chart, "-n", NS, "-f", str(tmp_path / "values.json"))
    cli, stored = reads()
    assert stored == cli and stored["values"]["llmdStorageTest"] == {"revision": "two"}
    helm("rollback", RELEASE, "-n", NS)
    cli, stored = reads()
    assert stored == cli and "llmdStorageTest" not in stored["values"] and stored["status"] == "deployed"
    assert Helm(module_call(), str(HELM), ACCESS, client=Client(ACCESS)).release("no-such-release", NS) is None


def test_metadata_only_reads_carry_the_labels_and_no_data(deployed):
    """Client.get/list(metadata_only=True) against the real API server: PartialObjectMetadata, no spec or data
    (the release read above lists its revisions so, then reads the latest Secret whole)."""
    client = Client(ACCESS)
    secrets = client.list("v1", "Secret", NS, label_selector="owner=helm,name=%s" % RELEASE, metadata_only=True)
    assert secrets and all("data" not in s and s["metadata"]["labels"]["name"] == RELEASE for s in secrets)
    crd = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
           "metadata": {"name": "leaderworkersets.leaderworkerset.x-k8s.io"}}
    partial = client.get(crd, metadata_only=True)
    assert partial["kind"] == "PartialObjectMetadata" and "spec" not in partial
    assert partial["metadata"]["uid"] == client.get(crd)["metadata"]["uid"]
    assert client.get(dict(crd, metadata={"name": "nothings.example.com"}), metadata_only=True) is None
    # an empty PartialObjectMetadataList comes with items null
    assert client.list("v1", "Secret", NS, label_selector="name=no-such-release", metadata_only=True) == []
