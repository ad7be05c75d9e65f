"""The llm-d v0.8.0 profile against the wide-EP guide at llm-d/llm-d@7edda66 (guides/wide-ep-lws/modelserver/
gpu/vllm/{base,coreweave,gke,topology-aware/gke,dgx-cloud-gb200}), fact by fact. Every expected value below was
copied by hand from those manifests; none is produced by the code under test."""
import json
import shlex

import pytest
import yaml

from ansible_collections.llmd.wide_ep.plugins.module_utils.render import plan
from ansible_collections.llmd.wide_ep.plugins.module_utils.render.topology import TopologyError
from tests.support.runs import run_playbook

PROVIDERS = ("baremetal", "coreweave", "gke", "gke-topology-aware", "dgx-cloud-gb200")
GKE = ("gke", "gke-topology-aware")
LABELS = {"llm-d.ai/inference-serving": "true", "llm-d.ai/guide": "wide-ep-lws", "llm-d.ai/accelerator-variant": "gpu",
          "llm-d.ai/accelerator-vendor": "nvidia", "llm-d.ai/model": "DeepSeek-R1-0528"}
# The `exec vllm serve` commands of base/prefill.yaml and base/decode.yaml, as the guide writes them.
PREFILL_SERVE = """exec vllm serve \\
  deepseek-ai/DeepSeek-R1-0528 \\
  --port 8000 \\
  --gpu-memory-utilization 0.80 \\
  --disable-access-log-for-endpoints=/health,/metrics \\
  --data-parallel-multi-port-external-lb \\
  --data-parallel-supervisor-port 8008 \\
  --enable-expert-parallel \\
  --tensor-parallel-size $TP_SIZE \\
  --data-parallel-size $((LWS_GROUP_SIZE * DP_SIZE_LOCAL)) \\
  --data-parallel-size-local $DP_SIZE_LOCAL \\
  --data-parallel-address ${LWS_LEADER_ADDRESS} \\
  --data-parallel-rpc-port 5555 \\
  --data-parallel-start-rank $START_RANK \\
  --kv_transfer_config '{"kv_connector":"NixlConnector",
                          "kv_role":"kv_both",
                          "kv_load_failure_policy":"fail"}' \\
  --moe-backend deep_gemm \\
  --all2all-backend deepep_high_throughput
"""
DECODE_SERVE = """exec vllm serve \\
  deepseek-ai/DeepSeek-R1-0528 \\
  --port 8200 \\
  --disable-access-log-for-endpoints=/health,/metrics \\
  --data-parallel-multi-port-external-lb \\
  --data-parallel-supervisor-port=8208 \\
  --enable-expert-parallel \\
  --tensor-parallel-size $TP_SIZE \\
  --max-num-batched-tokens ${MAX_TOKENS} \\
  --max-num-seqs ${MAX_TOKENS} \\
  --data-parallel-size $((LWS_GROUP_SIZE * DP_SIZE_LOCAL)) \\
  --data-parallel-size-local $DP_SIZE_LOCAL \\
  --data-parallel-address ${LWS_LEADER_ADDRESS} \\
  --data-parallel-rpc-port 5555 \\
  --data-parallel-start-rank $START_RANK \\
  --kv_transfer_config '{"kv_connector":"NixlConnector",
                          "kv_role":"kv_both",
                          "kv_load_failure_policy":"fail"}' \\
  --enable-dbo \\
  --dbo-decode-token-threshold 32 \\
  --all2all-backend deepep_low_latency \\
  --moe-backend deep_gemm
"""
CACHES = [("CUDA_CACHE_PATH", "/var/cache/vllm/cuda"), ("CCACHE_DIR", "/var/cache/vllm/ccache"),
          ("VLLM_CACHE_ROOT", "/var/cache/vllm/vllm"), ("FLASHINFER_WORKSPACE_BASE", "/var/cache/vllm/flashinfer"),
          ("HF_HUB_CACHE", "/var/cache/huggingface")]
NET = [("NVSHMEM_REMOTE_TRANSPORT", "ibgda"), ("NVSHMEM_IB_ENABLE_IBGDA", "true"),
       ("NVSHMEM_BOOTSTRAP_UID_SOCK_IFNAME", "eth0"), ("GLOO_SOCKET_IFNAME", "eth0"), ("NCCL_SOCKET_IFNAME", "eth0"),
       ("VLLM_LOGGING_LEVEL", "INFO")]
PREFILL_ENV = [("HF_TOKEN", "secret llm-d-hf-token/HF_TOKEN"), ("VLLM_ENGINE_READY_TIMEOUT_S", "3000"),
               ("VLLM_MEMORY_PROFILER_ESTIMATE_CUDAGRAPHS", "1"), ("VLLM_RANDOMIZE_DP_DUMMY_INPUTS", "1"),
               ("DP_SIZE_LOCAL", "8"), ("TP_SIZE", "1"), ("TRITON_LIBCUDA_PATH", "/usr/lib64"),
               ("VLLM_SKIP_P2P_CHECK", "1"), ("NVIDIA_GDRCOPY", "enabled")] + NET + [
               ("VLLM_HTTP_TIMEOUT_KEEP_ALIVE", "120"), ("VLLM_NIXL_SIDE_CHANNEL_HOST", "field status.podIP")] + CACHES
DECODE_ENV = [("HF_TOKEN", "secret llm-d-hf-token/HF_TOKEN"), ("VLLM_MEMORY_PROFILER_ESTIMATE_CUDAGRAPHS", "1"),
              ("MAX_TOKENS", "256"), ("DP_SIZE_LOCAL", "8"), ("TP_SIZE", "1"), ("TRITON_LIBCUDA_PATH", "/usr/lib64"),
              ("VLLM_SKIP_P2P_CHECK", "1"), ("VLLM_RANDOMIZE_DP_DUMMY_INPUTS", "1"), ("VLLM_USE_DEEP_GEMM", "1"),
              ("NVIDIA_GDRCOPY", "enabled"), ("NVSHMEM_SYMMETRIC_SIZE", "16G")] + NET + [
              ("VLLM_NIXL_SIDE_CHANNEL_HOST", "field status.podIP")] + CACHES
PROVIDER_ENV = {
    "coreweave": [("NCCL_IB_HCA", "ibp"), ("NVSHMEM_HCA_PREFIX", "ibp")],
    "gke": [("NCCL_TUNER_PLUGIN", "none"), ("NCCL_NET_PLUGIN", ""),
            ("DEEP_EP_DEVICE_TO_HCA_MAPPING",
             "0:mlx5_0:1,1:mlx5_1:1,2:mlx5_2:1,3:mlx5_3:1,4:mlx5_4:1,5:mlx5_5:1,6:mlx5_6:1,7:mlx5_7:1"),
            ("NVSHMEM_DISABLED_GDRCOPY", "true")],
}
PROVIDER_ENV["gke-topology-aware"] = PROVIDER_ENV["gke"]
HOST_CACHES = {"coreweave": ("/mnt/local/hf-cache", "/mnt/local/jit-cache"),
               "gke": ("/mnt/stateful_partition/kube-ephemeral-ssd/shared_disk/vllm-hf-cache/",
                       "/mnt/stateful_partition/kube-ephemeral-ssd/shared_disk/vllm-jit-cache/")}
HOST_CACHES["gke-topology-aware"] = HOST_CACHES["gke"]


def render(provider, **over):
    return plan.render({"llmd_version": "main-7edda66", "provider": provider, "gateway": "istio",
                        "namespace": "llm-d-wide-ep", "model": "deepseek-ai/DeepSeek-R1-0528",
                        "model_label": "DeepSeek-R1-0528", **over})


RENDERED = {}


def exported(inventory, tmp_path_factory):
    """The objects render.yml writes for inventories/<inventory> (what a user gets), read back once per run."""
    if inventory not in RENDERED:
        out = tmp_path_factory.mktemp(inventory)
        rc, _, _, log = run_playbook("playbooks/render.yml", "inventories/" + inventory, {"render_dir": str(out)})
        assert rc == 0, log
        RENDERED[inventory] = {p.name: yaml.safe_load(p.read_text()) for p in out.glob("*.yaml")}
    return RENDERED[inventory]


def by_role(objects):
    """The two LeaderWorkerSets among objects, by role."""
    objs = [o for o in objects if o.get("kind") == "LeaderWorkerSet"]
    assert len(objs) == 2
    return {o["metadata"]["labels"]["llm-d.ai/role"]: o for o in objs}


@pytest.fixture
def lws(tmp_path_factory):
    def get(provider):
        if provider == "baremetal":   # the guide's base: no inventory of its own
            return by_role(render(provider)["objects"]["leaderworkersets"])
        return by_role(exported("main-7edda66-" + provider, tmp_path_factory).values())
    return get


def pod(obj):
    return obj["spec"]["leaderWorkerTemplate"]["workerTemplate"]


def vllm(obj):
    return pod(obj)["spec"]["containers"][0]


def env_pairs(container):
    out = []
    for e in container["env"]:
        src = e.get("valueFrom", {})
        if "secretKeyRef" in src:
            value = "secret %s/%s" % (src["secretKeyRef"]["name"], src["secretKeyRef"]["key"])
        elif "fieldRef" in src:
            value = "field " + src["fieldRef"]["fieldPath"]
        else:
            value = e["value"]
        out.append((e["name"], value))
    return out


def tokens(serve):
    """Shell words of an `exec vllm serve` command; the kv_transfer_config JSON compared parsed (the guide spreads
    it over three lines)."""
    words = shlex.split(serve[serve.index("exec vllm serve"):].replace("\\\n", " "))
    return [json.loads(w) if w.startswith("{") else w for w in words]


def assert_shape(obj, role):
    """A LeaderWorkerSet of the guide since 7edda66: name, labels, one group of 2, the vLLM container's basics."""
    assert obj["metadata"]["name"] == "wide-ep-llm-d-" + role
    assert {k: v for k, v in obj["metadata"]["labels"].items() if k.startswith("llm-d.ai")} == dict(
        LABELS, **{"llm-d.ai/role": role})
    assert obj["spec"]["replicas"] == 1 and obj["spec"]["leaderWorkerTemplate"]["size"] == 2
    assert pod(obj)["spec"]["serviceAccountName"] == "deepseek-r1"
    assert vllm(obj)["securityContext"]["capabilities"] == {"add": ["IPC_LOCK", "SYS_RAWIO"]}
    assert (vllm(obj)["securityContext"]["runAsUser"], vllm(obj)["securityContext"]["runAsGroup"]) == (0, 0)
    assert vllm(obj)["command"] == ["/bin/bash", "-c"] and vllm(obj)["imagePullPolicy"] == "Always"


@pytest.mark.parametrize("provider", PROVIDERS)
def test_shape_labels_images(lws, provider):
    roles = lws(provider)
    for role, obj in roles.items():
        assert_shape(obj, role)
    prefill = "ghcr.io/llm-d/llm-d-cuda-gb200:v0.8.0" if provider == "dgx-cloud-gb200" else \
        "ghcr.io/llm-d/llm-d-cuda:v0.8.0"
    assert vllm(roles["prefill"])["image"] == prefill
    assert vllm(roles["decode"])["image"] == "ghcr.io/llm-d/llm-d-cuda-dev:sha-a1bcf21"


@pytest.mark.parametrize("provider", PROVIDERS)
def test_flags_and_env(lws, provider):
    roles = lws(provider)
    script = vllm(roles["prefill"])["args"][0]
    assert "find /dev/shm -type f -delete" in script
    assert "START_RANK=$(( ${LWS_WORKER_INDEX:-0} * DP_SIZE_LOCAL ))" in script
    assert tokens(vllm(roles["prefill"])["args"][0]) == tokens(PREFILL_SERVE)
    assert tokens(vllm(roles["decode"])["args"][0]) == tokens(DECODE_SERVE)
    extra = PROVIDER_ENV.get(provider, [])
    assert sorted(env_pairs(vllm(roles["prefill"]))) == sorted(PREFILL_ENV + extra)
    assert sorted(env_pairs(vllm(roles["decode"]))) == sorted(DECODE_ENV + extra)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_ports_probes_resources(lws, provider):
    roles = lws(provider)
    ranks = [("rank%d" % i, 8000 + i) for i in range(8)]
    prefill, decode = vllm(roles["prefill"]), vllm(roles["decode"])
    assert [(p["name"], p["containerPort"]) for p in prefill["ports"]] == ranks + [("supervisor", 8008)]
    assert [(p["name"], p["containerPort"]) for p in decode["ports"]] == [
        ("vllm-rank%d" % i, 8200 + i) for i in range(8)] + [("supervisor", 8208)]
    for c in (prefill, decode):
        assert c["startupProbe"] == {"httpGet": {"path": "/health", "port": "supervisor"}, "initialDelaySeconds": 0,
                                     "periodSeconds": 1, "timeoutSeconds": 5, "failureThreshold": 2700}
        assert c["livenessProbe"] == {"httpGet": {"path": "/health", "port": "supervisor"}, "periodSeconds": 30,
                                      "timeoutSeconds": 5, "failureThreshold": 3}
        assert c["readinessProbe"] == {"httpGet": {"path": "/readyz", "port": "supervisor"}, "periodSeconds": 10,
                                       "timeoutSeconds": 5, "failureThreshold": 3}
        limits = {"ephemeral-storage": "1Ti", "memory": "512Gi", "nvidia.com/gpu": "8"}
        requests = {"cpu": "32", "ephemeral-storage": "1Ti", "memory": "512Gi", "nvidia.com/gpu": "8"}
        if provider == "coreweave":
            limits["rdma/ib"] = requests["rdma/ib"] = "1"
        if provider in GKE:
            for i in range(8):
                limits["networking.gke.io.networks/rdma-%d" % i] = "0"
                requests["networking.gke.io.networks/rdma-%d" % i] = "0"
        assert c["resources"] == {"limits": limits, "requests": requests}
        assert c["volumeMounts"] == [{"name": "dshm", "mountPath": "/dev/shm"},
                                     {"name": "hf-cache", "mountPath": "/var/cache/huggingface"},
                                     {"name": "jit-cache", "mountPath": "/var/cache/vllm"}]


@pytest.mark.parametrize("provider", PROVIDERS)
def test_sidecar_volumes_and_provider_overlay(lws, provider):
    roles = lws(provider)
    assert "initContainers" not in pod(roles["prefill"])["spec"]    # v0.8.0: no sidecar on prefill
    (sidecar,) = pod(roles["decode"])["spec"]["initContainers"]
    assert sidecar["name"] == "routing-proxy" and sidecar["restartPolicy"] == "Always"
    assert sidecar["image"] == "ghcr.io/llm-d/llm-d-router-disagg-sidecar:v0.9.0"
    assert sidecar["args"] == ["--port=8000", "--vllm-port=8200", "--data-parallel-size=8", "--kv-connector=nixlv2",
                               "--zap-log-level=1", "--secure-proxy=false", "--enable-prefiller-sampling"]
    assert [(p["name"], p["containerPort"]) for p in sidecar["ports"]] == [("rank%d" % i, 8000 + i) for i in range(8)]
    assert sidecar["securityContext"] == {"allowPrivilegeEscalation": False, "runAsNonRoot": True}
    for obj in roles.values():
        spec = pod(obj)["spec"]
        host = HOST_CACHES.get(provider)
        caches = [{"name": n, "hostPath": {"path": p, "type": "DirectoryOrCreate"}}
                  for n, p in zip(("hf-cache", "jit-cache"), host, strict=True)] if host else \
            [{"name": "hf-cache", "emptyDir": {}}, {"name": "jit-cache", "emptyDir": {}}]
        assert spec["volumes"] == [{"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": "2Gi"}}] + caches
        assert "schedulerName" not in spec           # v0.8.0 CoreWeave: no binpack scheduler, no H200 affinity
        meta = pod(obj)["metadata"]
        if provider in GKE:
            assert vllm(obj)["securityContext"]["privileged"] is True
            assert meta["annotations"]["networking.gke.io/default-interface"] == "eth0"
            nets = json.loads(meta["annotations"]["networking.gke.io/interfaces"])
            assert nets == [{"interfaceName": "eth0", "network": "default"}] + [
                {"interfaceName": "eth%d" % (i + 2), "network": "rdma-%d" % i} for i in range(8)]
            role = obj["metadata"]["labels"]["llm-d.ai/role"]
            terms = spec["affinity"]["podAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
            assert terms == [{"weight": w, "podAffinityTerm": {
                "labelSelector": {"matchLabels": {"llm-d.ai/role": role}}, "matchLabelKeys": ["component"],
                "topologyKey": "cloud.google.com/gce-topology-" + k}} for w, k in ((2, "block"), (1, "subblock"))]
        else:
            assert "affinity" not in spec and "privileged" not in vllm(obj)["securityContext"]
        if provider == "gke-topology-aware":
            assert obj["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "default"
            assert meta["annotations"]["kueue.x-k8s.io/podset-required-topology"] == \
                "cloud.google.com/gce-topology-block"
            assert meta["annotations"]["kueue.x-k8s.io/podset-group-name"] == "llm-d-wide-ep"
        else:
            assert "kueue.x-k8s.io/queue-name" not in obj["metadata"]["labels"]


def test_the_pool_targets_every_rank():
    assert render("coreweave")["summary"]["target_ports"] == list(range(8000, 8008))


@pytest.mark.parametrize("over,says", [
    ({"provider": "gke-a4"}, "no gke-a4 (B200) overlay: its base was deleted in 46a675d"),
    ({"dp_mode": "hybrid"}, "wide_ep_dp_mode: 'hybrid' is not in the wide-EP guide of llm-d main-7edda66"),
    ({"images": {"vllm_decode": ""}}, "wide_ep_images.vllm_decode: '' is not an image reference"),
])
def test_what_v080_does_not_have_is_refused(over, says):
    with pytest.raises(TopologyError, match=r".*" + says.replace("(", r"\(").replace(")", r"\)")):
        render(**{"provider": "coreweave", **over})


def test_v050_refuses_the_new_providers():
    with pytest.raises(TopologyError, match="'dgx-cloud-gb200' is not a provider of llm-d v0.5.0"):
        plan.render({"provider": "dgx-cloud-gb200", "gateway": "istio", "namespace": "n", "model": "m",
                     "model_label": "m"})


# recipes/router/base.values.yaml + router/wide-ep-lws.values.yaml (and the feature files) at 7edda66, as helm
# merges them. The plugin configuration is the guide's text; compared parsed.
GUIDE_EPP_CONFIG = """
apiVersion: llm-d.ai/v1alpha1
kind: EndpointPickerConfig
plugins:
- type: disagg-headers-handler
- type: always-disagg-pd-decider
- type: disagg-profile-handler
  parameters:
    deciderPluginName: always-disagg-pd-decider
- type: prefill-filter
- type: decode-filter
- type: prefix-cache-scorer
- type: queue-scorer
- type: active-request-scorer
schedulingProfiles:
- name: prefill
  plugins:
  - pluginRef: prefill-filter
  - pluginRef: prefix-cache-scorer
    weight: 3
  - pluginRef: queue-scorer
    weight: 2
  - pluginRef: active-request-scorer
    weight: 2
- name: decode
  plugins:
  - pluginRef: decode-filter
  - pluginRef: active-request-scorer
"""
ENVOY_ARGS = ["--service-node", "envoy-sidecar", "--log-level", "warn", "--concurrency", "8", "--drain-strategy",
              "immediate", "--drain-time-s", "60", "-c", "/etc/envoy/envoy.yaml"]


@pytest.mark.parametrize("gateway,chart,provider", [("none", "llm-d-router-standalone", None),
                                                    ("istio", "llm-d-router-gateway", "istio"),
                                                    ("gke-l7-rilb", "llm-d-router-gateway", "gke")])
def test_router_chart_and_values(gateway, chart, provider):
    over = {"allow_unverified_gateway": True} if gateway.startswith("gke") else {}
    provider_name = "gke" if provider == "gke" else "coreweave"
    router = render(provider_name, gateway=gateway, epp_prometheus=False, **over)["router"]
    assert router["chart"] == chart and router["chart_version"] == "v0.9.0"
    assert router["chart_ref"] == "oci://ghcr.io/llm-d/charts/" + chart
    values = router["chart_values"]
    r = values["router"]
    assert r["epp"]["replicas"] == 1 and r["epp"]["flags"] == {"v": 2}
    assert r["epp"]["pluginsConfigFile"] == "wide-ep-lws-config.yaml"
    assert yaml.safe_load(r["epp"]["pluginsCustomConfig"]["wide-ep-lws-config.yaml"]) == yaml.safe_load(
        GUIDE_EPP_CONFIG)
    assert r["epp"]["resources"] == {"requests": {"cpu": "4", "memory": "8Gi"}, "limits": {"memory": "16Gi"}}
    assert r["inferencePool"] == {"failureMode": "FailOpen"}
    assert r["modelServers"] == {"protocol": "http", "targetPorts": [{"number": 8000 + i} for i in range(8)],
                                 "matchLabels": {"llm-d.ai/guide": "wide-ep-lws"}}
    assert r["proxy"] == {"args": ENVOY_ARGS,
                          "resources": {"requests": {"cpu": "4", "memory": "8Gi"}, "limits": {"memory": "16Gi"}}}
    assert r["tracing"] == {"otelExporterEndpoint": "http://localhost:4317",
                            "sampling": {"sampler": "parentbased_traceidratio", "samplerArg": "0.1"}}
    assert r["extraServicePorts"] == [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": 8081}]
    assert "monitoring" not in r
    if provider:
        assert values["httpRoute"] == {"create": True, "inferenceGatewayName": "llm-d-inference-gateway",
                                       "requestTimeout": "0s"}
        assert values["provider"] == {"name": provider}
    else:
        assert set(values) == {"router"}


def test_the_coreweave_inventory_exports_router_values_and_pod_monitors(tmp_path_factory):
    files = exported("main-7edda66-coreweave", tmp_path_factory)
    r = files["llm-d-router-standalone-values.yaml"]["router"]
    assert r["monitoring"] == {"interval": "10s", "prometheus": {"enabled": True, "auth": {"enabled": False}}}
    monitors = {o["metadata"]["name"]: o for o in files.values() if o.get("kind") == "PodMonitor"}
    assert set(monitors) == {"prefill", "decode"}
    for role, pm in monitors.items():
        labels = {"llm-d.ai/inference-serving": "true", "llm-d.ai/guide": "wide-ep-lws",
                  "llm-d.ai/model": "DeepSeek-R1-0528", "llm-d.ai/role": role}
        assert pm["metadata"]["labels"] == labels and pm["spec"]["selector"]["matchLabels"] == labels
        assert pm["spec"]["podMetricsEndpoints"] == [{"port": "rank%d" % i, "path": "/metrics", "interval": "5s"}
                                                     for i in range(8)]


def test_the_guide_names_the_release_and_its_epp():
    refs = render("coreweave", gateway="none")["refs"]
    assert refs["release"] == "wide-ep-lws" and refs["epp_service"]["metadata"]["name"] == "wide-ep-lws-epp"


def test_standalone_has_no_gateway_objects_and_gateway_mode_no_route_of_ours():
    assert render("coreweave", gateway="none")["objects"]["gateway"] == []
    kinds = [o["kind"] for o in render("coreweave", gateway="istio")["objects"]["gateway"]]
    assert kinds == ["ConfigMap", "Gateway"]   # the gateway chart creates the HTTPRoute
