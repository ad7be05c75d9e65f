"""Bad input gets one clear error before any change. Each case is a row of the README's table "What a bad input
gets" (a test below keeps the two equal): the playbook a user runs, what they got wrong, the error they see, and
that nothing changed - the play reports 0 changed and the deployment's objects keep their resourceVersions."""
import json
import re

import pytest
import yaml

from tests.support.runs import KUBECONFIG, ROOT, run_playbook

NS = "llm-d-wide-ep"
DECODE = {"replicas": 1, "group_size": 2, "dp_local": 8}

# (what is wrong, playbook, extra vars, the error the user sees (a fragment of it))
CASES = [
    # --- inventory and topology: refused by the topology step, before the cluster is touched ---------------------
    ("unknown provider", "site.yml", {"wide_ep_provider": "aws"},
     "wide_ep_provider: 'aws' is not one of gke, gke-a4, coreweave, baremetal, local, gke-topology-aware, "
     "dgx-cloud-gb200"),
    ("several problems, one message", "site.yml", {"wide_ep_provider": "aws", "wide_ep_namespace": "LLM_D",
                                                   "wide_ep_redundant_experts": 30},
     "invalid wide-EP topology (4 problems)"),
    ("unknown DP mode", "site.yml", {"wide_ep_dp_mode": "auto"},
     "wide_ep_dp_mode: 'auto' is not one of hybrid, dp-aware"),
    ("unknown llm-d release", "site.yml", {"wide_ep_llmd_version": "v0.6.0"},
     "wide_ep_llmd_version: 'v0.6.0' is not one of v0.5.0, main-7edda66"),
    ("a provider the release does not have", "site.yml", {"wide_ep_llmd_version": "main-7edda66",
                                                          "wide_ep_provider": "gke-a4"},
     "wide_ep_provider: the wide-EP guide of llm-d main-7edda66 (llm-d/llm-d@7edda66) has no gke-a4 (B200) overlay"),
    ("a DP mode the release does not have", "site.yml", {"wide_ep_llmd_version": "main-7edda66",
                                                         "wide_ep_dp_mode": "hybrid"},
     "wide_ep_dp_mode: 'hybrid' is not in the wide-EP guide of llm-d main-7edda66, which runs only dp-aware"),
    ("a gateway the release has no recipe for", "site.yml", {"wide_ep_llmd_version": "main-7edda66",
                                                             "wide_ep_gateway": "kgateway"},
     "wide_ep_gateway: 'kgateway' has no recipe in the wide-EP guide of llm-d main-7edda66; valid: none, istio"),
    ("unknown gateway", "site.yml", {"wide_ep_gateway": "traefik"},
     "wide_ep_gateway: 'traefik' is not one of istio, kgateway"),
    ("namespace not a DNS label", "site.yml", {"wide_ep_namespace": "LLM_D"},
     "wide_ep_namespace: 'LLM_D' is not a valid namespace name"),
    ("empty model", "site.yml", {"wide_ep_model": ""}, "wide_ep_model: must be a non-empty string"),
    ("model label with a space", "site.yml", {"wide_ep_model_label": "R1 0528"},
     "wide_ep_model_label: 'R1 0528' is not a valid label value"),
    ("image reference with a space", "site.yml", {"wide_ep_images": {"vllm": "bad image"}},
     "wide_ep_images.vllm: 'bad image' is not an image reference"),
    ("unknown image key", "site.yml", {"wide_ep_images": {"tokenizer": "x:1"}},
     "wide_ep_images.tokenizer: unknown image of llm-d v0.5.0; valid keys are vllm, routing_sidecar, epp"),
    ("release name not a DNS label", "site.yml", {"wide_ep_release": "Bad_Name"},
     "wide_ep_release: 'Bad_Name' is not a valid helm release name"),
    ("role not a mapping", "site.yml", {"wide_ep_prefill": "two groups"},
     "wide_ep_prefill: must be a mapping of replicas, group_size, dp_local, tp, expert_parallel"),
    ("unknown role setting", "site.yml", {"wide_ep_prefill": {"group_sise": 2}},
     "wide_ep_prefill.group_sise: unknown setting; valid settings are replicas, group_size"),
    ("dp_size that contradicts the group", "site.yml", {"wide_ep_prefill": {"dp_size": 12}},
     "wide_ep_prefill.dp_size: 12 does not equal group_size (2) x dp_local (8) = 16; set dp_size to 16"),
    ("zero replicas", "site.yml", {"wide_ep_decode": {**DECODE, "replicas": 0}},
     "wide_ep_decode.replicas: 0 must be an integer >= 1; a role with no group serves nothing"),
    ("negative replicas", "site.yml", {"wide_ep_prefill": {"replicas": -1}},
     "wide_ep_prefill.replicas: -1 must be an integer >= 1"),
    ("zero group size", "site.yml", {"wide_ep_prefill": {"group_size": 0}},
     "wide_ep_prefill.group_size: 0 must be an integer >= 1"),
    ("more GPUs per pod than a node has", "site.yml", {"wide_ep_dp_mode": "hybrid", "wide_ep_decode": {
        "dp_local": 16, "dp_size": 32}}, "dp_local (16) x tp (1) = 16 GPUs per pod does not fit a node of "
                                        "wide_ep_node_gpus=8"),
    ("TP in DP-aware mode", "site.yml", {"wide_ep_prefill": {"tp": 2}},
     "wide_ep_prefill.tp: 2, but DP-aware mode runs one vLLM server per GPU"),
    ("expert_parallel not a boolean", "site.yml", {"wide_ep_decode": {**DECODE, "expert_parallel": "perhaps"}},
     "wide_ep_decode.expert_parallel: 'perhaps' must be true or false"),
    ("experts that do not divide by the EP size", "site.yml", {"wide_ep_redundant_experts": 30},
     "is not divisible by the EP size 16 (dp_size 16 x tp 1); set wide_ep_redundant_experts to 32"),
    ("zero routed experts", "site.yml", {"wide_ep_routed_experts": 0},
     "wide_ep_routed_experts: 0 must be a positive integer"),
    ("zero GPUs per node", "site.yml", {"wide_ep_node_gpus": 0},
     "wide_ep_node_gpus: 0 must be a positive integer"),
    ("port above 65535", "site.yml", {"wide_ep_ports": {"decode": 70000}},
     "wide_ep_ports.decode: 70000 is not a port number (1-65535)"),
    ("unknown port key", "site.yml", {"wide_ep_ports": {"metrics": 9090}},
     "wide_ep_ports.metrics: unknown port; valid keys are prefill, decode, sidecar, dp_rpc, nixl"),
    ("vLLM and sidecar ports overlap", "site.yml", {"wide_ep_ports": {"decode": 8004}},
     "wide_ep_decode: port 8004 of pod 0 is used by both the vLLM and the routing sidecar"),
    ("NIXL ports run into the DP RPC port", "site.yml", {"wide_ep_ports": {"nixl": 5550}},
     "port 5555 of pod 0 is used by both the NIXL side channel and the DP RPC"),
    ("pool target ports differ between roles", "site.yml", {"wide_ep_ports": {"prefill": 9000}},
     "wide_ep_ports: the InferencePool's target ports must match on prefill"),
    ("a flag the model derives, by hand", "site.yml", {"wide_ep_prefill": {"extra_args": ["--data-parallel-rank=3"]}},
     "wide_ep_prefill.extra_args: '--data-parallel-rank=3' is derived from the topology"),
    ("extra_args not a list", "site.yml", {"wide_ep_decode": {**DECODE, "extra_args": "--max-num-seqs 8"}},
     "wide_ep_decode.extra_args: must be a list of strings"),
    ("env name that is not a name", "site.yml", {"wide_ep_decode": {**DECODE, "env": {"1BAD": "x"}}},
     "wide_ep_decode.env: '1BAD' is not a valid environment variable name"),
    ("env value that is a boolean", "site.yml", {"wide_ep_decode": {**DECODE, "env": {"FLAG": True}}},
     "wide_ep_decode.env.FLAG: True must be a string or number (quote booleans)"),
    ("DP-aware behind a gateway not proven for it", "site.yml", {"wide_ep_gateway": "kgateway"},
     "wide_ep_gateway: kgateway with wide_ep_dp_mode: dp-aware is refused"),
    ("risk flag not a boolean", "site.yml", {"wide_ep_allow_unverified_gateway": "maybe"},
     "wide_ep_allow_unverified_gateway: 'maybe' must be true or false"),
    # --- credentials -----------------------------------------------------------------------------------------
    ("kubeconfig that does not exist", "site.yml", {"wide_ep_kubeconfig": "/nonexistent/kubeconfig"},
     "/nonexistent/kubeconfig"),
    ("context the kubeconfig does not have", "site.yml", {"wide_ep_kube_context": "no-such-context"},
     "no-such-context"),
    ("helm that is not there", "site.yml", {"wide_ep_helm_binary": "/nonexistent/helm"},
     "helm not found (/nonexistent/helm): install helm 4, or helm 3.17 or later on the controller or set "
     "wide_ep_helm_binary"),
    ("a token the API server rejects", "site.yml", {"wide_ep_kubeconfig": "@bad-token"}, "401"),
    ("no Hugging Face token where one is required", "site.yml", {"namespace_hf_token_required": True,
                                                                 "wide_ep_hf_token": ""}, "HF_TOKEN"),
    # --- versions and day-2 settings -------------------------------------------------------------------------
    ("upgrade gate timeout of 0", "playbooks/upgrade.yml", {"upgrade_gate_timeout": 0}, "upgrade_gate_timeout"),
    ("rollout lease shorter than its gate checks", "playbooks/upgrade.yml", {"upgrade_lock_duration": 1},
     "upgrade_lock_duration"),
    ("a migration whose two releases share a name", "playbooks/upgrade.yml", {
        "wide_ep_llmd_version": "main-7edda66", "upgrade_from_llmd_version": "v0.5.0",
        "wide_ep_release": "llm-d-infpool"},
     "the old stack's release (llm-d-infpool) and the new one (llm-d-infpool) have the same name"),
    ("an older chart than the running one", "playbooks/upgrade.yml", {"inferencepool_chart_version": "v1.2.0"},
     "inferencepool_chart v1.2.0 would downgrade v1.3.0 (set upgrade_allow_downgrade to mean it)"),
    ("a chart without the InferencePool v1 API", "playbooks/upgrade.yml", {"inferencepool_chart_version": "v0.9.0"},
     "inferencepool_chart v0.9.0 is below 1.0.0: InferencePool inference.networking.k8s.io/v1, which the HTTPRoute "
     "references"),
    # --- cluster state ---------------------------------------------------------------------------------------
    ("monitoring objects without their CRDs", "site.yml", {"wide_ep_epp_prometheus": True},
     "the API server does not serve monitoring.coreos.com/v1, needed for the deployment's ServiceMonitor. Install "
     "kube-prometheus-stack (monitoring_install_stack: true), or set wide_ep_epp_prometheus: false"),
    ("more groups than free GPUs", "playbooks/scale.yml", {"wide_ep_decode": {**DECODE, "replicas": 2}},
     "the added prefill/decode groups need 2 more pods (8 GPUs each); only 0 fit"),
    ("maintenance of a node that does not exist", "playbooks/node_maintenance.yml",
     {"maintenance_node": "gpu-node-9"}, "gpu-node-9"),
    ("deleting a namespace that holds a user's objects", "playbooks/teardown.yml", {"teardown_namespace": True},
     "would also delete 1 object(s) this collection did not create: ConfigMap user-notes"),
    ("NIC mesh preflight with no GPU nodes", "playbooks/preflight.yml", {},
     "the NIC mesh preflight has no host to run on: the host pattern 'gpu_nodes' matches no host"),
]


def bad_token_kubeconfig(tmp_path):
    """The local cluster's kubeconfig with its credentials replaced by a token the API server does not know."""
    cfg = yaml.safe_load(KUBECONFIG.read_text())
    for user in cfg["users"]:
        user["user"] = {"token": "not-a-token-the-server-knows"}
    path = tmp_path / "bad-token.kubeconfig"
    path.write_text(yaml.safe_dump(cfg))
    return str(path)


def snapshot(cluster):
    """resourceVersion of every object of the deployment (and the user's ConfigMap)."""
    kinds = "lws,deployment,service,configmap,serviceaccount,inferencepool,gateway,httproute,secret"
    items = cluster.json("get", kinds, "-n", NS)["items"]
    return {(o["kind"], o["metadata"]["name"]): o["metadata"]["resourceVersion"] for o in items}


@pytest.fixture(scope="module")
def stack(cluster):
    rc, _, _, log = run_playbook("site.yml")
    assert rc == 0, log
    cluster.apply([{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "user-notes", "namespace": NS},
                    "data": {"owner": "platform team"}}])
    yield cluster
    cluster("delete", "namespace", NS, "--wait=true", "--timeout=120s")   # the GPUs, for the next module


@pytest.mark.parametrize("what,playbook,extra,error", CASES, ids=[c[0] for c in CASES])
def test_bad_input_gets_one_clear_error_and_changes_nothing(stack, tmp_path, what, playbook, extra, error):
    if extra.get("wide_ep_kubeconfig") == "@bad-token":
        extra = dict(extra, wide_ep_kubeconfig=bad_token_kubeconfig(tmp_path))
    before = snapshot(stack)
    rc, stats, _, log = run_playbook(playbook, "inventories/local", extra)   # (it has no gpu_nodes group)
    assert rc != 0, log
    assert error in log, log
    assert "argument_spec_data" not in log  # one message, never Ansible's dump of a role's whole spec
    assert sum(h.get("changed", 0) for h in stats.values()) == 0, log
    assert snapshot(stack) == before


def readme_rows():
    text = (ROOT / "README.md").read_text().split("### What a bad input gets", 1)[1]
    rows = []
    for line in text.splitlines():
        if line.startswith("|"):
            rows.append(line)
        elif rows:
            break
    return [[cell.strip() for cell in re.split(r"(?<!\\)\|", row.strip("|"))] for row in rows[2:]]


def test_the_readme_table_is_these_cases():
    rows = readme_rows()
    assert len(rows) == len(CASES) >= 40
    for row, (what, playbook, extra, error) in zip(rows, CASES, strict=True):
        assert row[0] == what and row[1] == "`%s`" % playbook, row
        assert row[2] == "`%s`" % (json.dumps(extra) if extra else "(inventory without gpu_nodes)"), row
        assert row[3].replace("\\|", "|").strip("`") == error, row



def test_key_value_extra_vars_are_read_as_ansible_reads_them(tmp_path):
    """`-e wide_ep_allow_unverified_gateway=true -e wide_ep_node_gpus=8` (strings) as the JSON true and 8."""
    rc, stats, out, log = run_playbook("playbooks/render.yml", "inventories/coreweave", extra=(
        "-e", "render_dir=%s" % tmp_path, "-e", "wide_ep_gateway=kgateway",
        "-e", "wide_ep_allow_unverified_gateway=true", "-e", "wide_ep_node_gpus=8", "-e", "wide_ep_epp_prometheus=no"))
    assert rc == 0, log
    values = yaml.safe_load((tmp_path / "inferencepool-values.yaml").read_text())
    assert values["provider"]["name"] == "none"   # kgateway's, accepted by the risk flag
    rc, stats, out, log = run_playbook("playbooks/render.yml", "inventories/coreweave", extra=(
        "-e", "render_dir=%s" % tmp_path, "-e", "wide_ep_gateway=kgateway",
        "-e", "wide_ep_allow_unverified_gateway=false"))
    assert rc != 0 and "kgateway with wide_ep_dp_mode: dp-aware is refused" in log, log
