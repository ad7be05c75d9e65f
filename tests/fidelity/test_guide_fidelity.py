"""The exported objects of the gke, gke-a4 and coreweave inventories carry what the guide's manifests carry.

Every expected value below is written out from ../shared/reference/wide-ep-guide.md (llm-d/llm-d@59bebce),
field by field; none is computed by the code under test.
"""
import json
import shlex
import subprocess

import pytest
import yaml

from tests.support.runs import ROOT, run_playbook, task_results

VLLM_IMAGE = "ghcr.io/llm-d/llm-d-cuda:v0.5.0"
SIDECAR_IMAGE = "ghcr.io/llm-d/llm-d-routing-sidecar:v0.5.0"
LABELS = {"llm-d.ai/inference-serving": "true", "llm-d.ai/guide": "wide-ep-lws", "llm-d.ai/accelerator-variant": "gpu",
          "llm-d.ai/accelerator-vendor": "nvidia", "llm-d.ai/model": "DeepSeek-R1-0528"}
KV = '{"kv_connector":"NixlConnector","kv_role":"kv_both","kv_load_failure_policy":"fail"}'
EPLB = '{"window_size":"1000","step_interval":"3000","num_redundant_experts":"32","log_balancedness":"False"}'
BASE_ENV = {
    "DP_SIZE_LOCAL": "8", "TP_SIZE": "1", "TRITON_LIBCUDA_PATH": "/usr/lib64", "VLLM_SKIP_P2P_CHECK": "1",
    "VLLM_RANDOMIZE_DP_DUMMY_INPUTS": "1", "VLLM_USE_DEEP_GEMM": "1", "NVIDIA_GDRCOPY": "enabled",
    "NVSHMEM_REMOTE_TRANSPORT": "ibgda", "NVSHMEM_IB_ENABLE_IBGDA": "true", "NVSHMEM_BOOTSTRAP_UID_SOCK_IFNAME": "eth0",
    "GLOO_SOCKET_IFNAME": "eth0", "NCCL_SOCKET_IFNAME": "eth0", "VLLM_LOGGING_LEVEL": "INFO",
    "CUDA_CACHE_PATH": "/var/cache/vllm/cuda", "CCACHE_DIR": "/var/cache/vllm/ccache",
    "VLLM_CACHE_ROOT": "/var/cache/vllm/vllm", "FLASHINFER_WORKSPACE_BASE": "/var/cache/vllm/flashinfer",
    "HF_HUB_CACHE": "/var/cache/huggingface",
}
GKE_ENV = {"DEEP_EP_DEVICE_TO_HCA_MAPPING": "0:mlx5_0:1,1:mlx5_1:1,2:mlx5_2:1,3:mlx5_3:1,4:mlx5_4:1,5:mlx5_5:1,"
                                            "6:mlx5_6:1,7:mlx5_7:1",
           "BASH_ENV": "/usr/local/gib/scripts/set_nccl_env.sh", "NVSHMEM_DISABLED_GDRCOPY": "true"}
COREWEAVE_ENV = {"HF_HUB_DISABLE_XET": "1", "NCCL_IB_HCA": "ibp", "NVSHMEM_HCA_PREFIX": "ibp"}
HYBRID_COMMON = ["--trust-remote-code", "--disable-uvicorn-access-log", "--data-parallel-hybrid-lb",
                 "--enable-expert-parallel", "--tensor-parallel-size $TP_SIZE",
                 "--data-parallel-size $((LWS_GROUP_SIZE * DP_SIZE_LOCAL))",
                 "--data-parallel-size-local $DP_SIZE_LOCAL",
                 "--data-parallel-address ${LWS_LEADER_ADDRESS}", "--data-parallel-rpc-port 5555",
                 "--data-parallel-start-rank $START_RANK", f"--kv_transfer_config '{KV}'", "--async-scheduling",
                 "--enable-dbo", "--enable-eplb", f"--eplb-config '{EPLB}'"]
HYBRID_ROLE = {
    "prefill": ["--port 8000", "--dbo-prefill-token-threshold 32", "--all2all-backend deepep_high_throughput",
                "--gpu-memory-utilization 0.75"],
    "decode": ["--port 8200", "--dbo-decode-token-threshold 32", "--all2all-backend deepep_low_latency",
               "--kv-cache-memory-bytes=${KV_CACHE_MEMORY_BYTES-}",
               "--compilation_config '{\"cudagraph_mode\": \"FULL_DECODE_ONLY\"}'"],
}
PROBES = {"startupProbe": ("/health", 1, 2700), "livenessProbe": ("/health", 30, 3),
          "readinessProbe": ("/v1/models", 10, 3)}


@pytest.fixture(scope="module", params=["gke", "gke-a4", "coreweave"])
def rendered(request, tmp_path_factory):
    out = tmp_path_factory.mktemp(request.param)
    rc, _, _, log = run_playbook("playbooks/render.yml", f"inventories/{request.param}", {"render_dir": str(out)})
    assert rc == 0, log
    objs = [yaml.safe_load(p.read_text()) for p in sorted(out.glob("[0-9][0-9]-*.yaml"))]
    values = yaml.safe_load((out / "inferencepool-values.yaml").read_text())
    return request.param, objs, values


def by_kind(objs, kind):
    return {o["metadata"]["name"]: o for o in objs if o["kind"] == kind}


def lws_pair(objs):
    found = by_kind(objs, "LeaderWorkerSet")
    assert set(found) == {"wide-ep-llm-d-prefill", "wide-ep-llm-d-decode"}
    return {"prefill": found["wide-ep-llm-d-prefill"], "decode": found["wide-ep-llm-d-decode"]}


def vllm(lws):
    containers = lws["spec"]["leaderWorkerTemplate"]["workerTemplate"]["spec"]["containers"]
    assert [c["name"] for c in containers] == ["vllm"]
    return containers[0]


def env_map(container):
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


def test_lws_shape_labels_and_identity(rendered):
    _, objs, _ = rendered
    assert by_kind(objs, "ServiceAccount").keys() == {"deepseek-r1"}
    for role, lws in lws_pair(objs).items():
        want = {**LABELS, "llm-d.ai/role": role}
        assert lws["apiVersion"] == "leaderworkerset.x-k8s.io/v1"
        assert lws["metadata"]["labels"] == want
        tmpl = lws["spec"]["leaderWorkerTemplate"]
        assert lws["spec"]["replicas"] == 1 and tmpl["size"] == 2
        assert "leaderTemplate" not in tmpl and "restartPolicy" not in tmpl  # LWS default: RecreateGroupOnPodRestart
        assert tmpl["workerTemplate"]["metadata"]["labels"] == want
        assert tmpl["workerTemplate"]["spec"]["serviceAccountName"] == "deepseek-r1"
        c = vllm(lws)
        assert (c["image"], c["imagePullPolicy"], c["command"]) == (VLLM_IMAGE, "Always", ["/bin/bash", "-c"])
        sc = c["securityContext"]
        assert sc["capabilities"] == {"add": ["IPC_LOCK", "SYS_RAWIO"]} and sc["runAsUser"] == 0
        assert sc["runAsGroup"] == 0
        script = c["args"][0]
        assert "find /dev/shm -type f -delete" in script
        assert "START_RANK=$(( ${LWS_WORKER_INDEX:-0} * DP_SIZE_LOCAL ))" in script
        assert "deepseek-ai/DeepSeek-R1-0528" in script


def test_resources_volumes_probes(rendered):
    provider, objs, _ = rendered
    hostpaths = {"gke": ("/mnt/stateful_partition/kube-ephemeral-ssd/shared_disk/vllm-hf-cache/",
                         "/mnt/stateful_partition/kube-ephemeral-ssd/shared_disk/vllm-jit-cache/"),
                 "coreweave": ("/mnt/local/hf-cache", "/mnt/local/jit-cache")}
    hostpaths["gke-a4"] = hostpaths["gke"]
    for role, lws in lws_pair(objs).items():
        c = vllm(lws)
        spec = lws["spec"]["leaderWorkerTemplate"]["workerTemplate"]["spec"]
        res = c["resources"]
        eph = not (provider == "coreweave" and role == "decode")  # DP-aware decode drops ephemeral-storage
        req = {"cpu": "32", "memory": "512Gi", "nvidia.com/gpu": "8", **({"ephemeral-storage": "1Ti"} if eph else {})}
        lim = {"memory": "512Gi", "nvidia.com/gpu": "8", **({"ephemeral-storage": "1Ti"} if eph else {})}
        if provider == "coreweave":
            req["rdma/ib"] = lim["rdma/ib"] = "1"
        assert res == {"requests": req, "limits": lim}
        vols = {v["name"]: v for v in spec["volumes"]}
        assert vols["dshm"] == {"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": "2Gi"}}
        hf, jit = hostpaths[provider]
        assert vols["hf-cache"]["hostPath"] == {"path": hf, "type": "DirectoryOrCreate"}
        assert vols["jit-cache"]["hostPath"] == {"path": jit, "type": "DirectoryOrCreate"}
        mounts = {m["name"]: m["mountPath"] for m in c["volumeMounts"]}
        assert mounts["dshm"] == "/dev/shm" and mounts["hf-cache"] == "/var/cache/huggingface"
        assert mounts["jit-cache"] == "/var/cache/vllm"
        port = "rank0" if provider == "coreweave" else "vllm"
        for probe, (path, period, failures) in PROBES.items():
            p = c[probe]
            assert p["httpGet"] == {"path": path, "port": port}
            assert (p["periodSeconds"], p["timeoutSeconds"], p["failureThreshold"]) == (period, 5, failures)
        assert c["startupProbe"]["initialDelaySeconds"] == 0


def test_env(rendered):
    provider, objs, _ = rendered
    for role, lws in lws_pair(objs).items():
        want = dict(BASE_ENV)
        want["VLLM_NIXL_SIDE_CHANNEL_HOST"] = {"fieldRef": {"fieldPath": "status.podIP"}}
        if role == "decode":
            want["VLLM_MOE_DP_CHUNK_SIZE"] = "384"
        else:   # not the guide's: the collection's backport of llm-d#1686 (profiles.py backported_env)
            want["VLLM_HTTP_TIMEOUT_KEEP_ALIVE"] = "120"
        if provider in ("gke", "gke-a4"):
            want.update(GKE_ENV)
        if provider == "gke-a4" and role == "decode":
            want["KV_CACHE_MEMORY_BYTES"] = "63000000000"
        if provider == "coreweave":
            want.update(COREWEAVE_ENV)
            del want["VLLM_RANDOMIZE_DP_DUMMY_INPUTS"]  # dropped by the DP-aware manifests
        assert env_map(vllm(lws)) == want


def test_hybrid_vllm_flags_and_sidecar(rendered):
    provider, objs, _ = rendered
    if provider == "coreweave":
        pytest.skip("coreweave inventory runs DP-aware")
    for role, lws in lws_pair(objs).items():
        script = vllm(lws)["args"][0]
        served = script.split("exec vllm serve deepseek-ai/DeepSeek-R1-0528 \\\n", 1)[1]
        flags = [line.strip().rstrip("\\").strip() for line in served.strip().splitlines()]
        assert sorted(flags) == sorted(HYBRID_COMMON + HYBRID_ROLE[role])
        ports = vllm(lws)["ports"]
        base = 8000 if role == "prefill" else 8200
        assert ports == [{"containerPort": base, "name": "vllm", "protocol": "TCP"},
                         {"containerPort": 5600, "name": "nixl", "protocol": "TCP"}]
        spec = lws["spec"]["leaderWorkerTemplate"]["workerTemplate"]["spec"]
        if role == "prefill":
            assert "initContainers" not in spec
            continue
        (sidecar,) = spec["initContainers"]
        assert sidecar == {
            "name": "routing-proxy", "image": SIDECAR_IMAGE, "imagePullPolicy": "Always", "restartPolicy": "Always",
            "args": ["--port=8000", "--vllm-port=8200", "--connector=nixlv2", "--zap-log-level=1",
                     "--secure-proxy=false", "--enable-prefiller-sampling"],
            "ports": [{"containerPort": 8000, "name": "sidecar", "protocol": "TCP"}], "resources": {},
            "securityContext": {"allowPrivilegeEscalation": False, "runAsNonRoot": True}}


def test_dp_aware_servers_ports_and_sidecar(rendered):
    provider, objs, values = rendered
    if provider != "coreweave":
        pytest.skip("gke inventories run hybrid load-balancing")
    for role, lws in lws_pair(objs).items():
        c = vllm(lws)
        base = 8000 if role == "prefill" else 8200
        assert c["args"][1] == "vllm-parallel-launcher"
        assert c["ports"] == [{"containerPort": base + i, "name": f"rank{i}", "protocol": "TCP"} for i in range(8)]
        script = c["args"][0]
        for i in range(8):
            line = (f'CUDA_VISIBLE_DEVICES="{i}" vllm serve deepseek-ai/DeepSeek-R1-0528 --host=0.0.0.0 '
                    f'--port={base + i} --data-parallel-rank=$((START_RANK + {i})) "${{COMMON_VLLM_ARGS[@]}}" &')
            assert line in script
        assert script.rstrip().endswith("wait")
        common = script.split("COMMON_VLLM_ARGS=(\n", 1)[1].split("\n)", 1)[0]
        args = shlex.split(common)
        for flag in ("--data-parallel-hybrid-lb", "--trust-remote-code", "--async-scheduling",
                     "--data-parallel-size-local"):
            assert flag not in args
        assert "--data-parallel-address=${LWS_LEADER_ADDRESS}" in args and "--data-parallel-rpc-port=5555" in args
        assert args[args.index("--kv_transfer_config") + 1] == KV
        if role == "prefill":
            assert args[args.index("--max-model-len") + 1] == "65536"
            assert args[args.index("--all2all-backend") + 1] == "deepep_high_throughput"
            assert "--tensor-parallel-size=1" in args and "--enable-eplb" not in args
        else:
            assert args[args.index("--all2all-backend") + 1] == "deepep_low_latency"
            assert args[args.index("--eplb-config") + 1] == EPLB
            assert "--enable-dbo" in args and "--kv-cache-memory-bytes=${KV_CACHE_MEMORY_BYTES-}" in args
            (sidecar,) = lws["spec"]["leaderWorkerTemplate"]["workerTemplate"]["spec"]["initContainers"]
            assert sidecar["args"] == ["--port=8000", "--vllm-port=8200", "--data-parallel-size=8",
                                       "--connector=nixlv2", "--zap-log-level=1", "--secure-proxy=false",
                                       "--enable-prefiller-sampling"]
            assert [p["containerPort"] for p in sidecar["ports"]] == list(range(8000, 8008))
    assert values["inferencePool"]["targetPorts"] == [{"number": p} for p in range(8000, 8008)]


def test_provider_overlay(rendered):
    provider, objs, _ = rendered
    for role, lws in lws_pair(objs).items():
        tmpl = lws["spec"]["leaderWorkerTemplate"]["workerTemplate"]
        spec, c = tmpl["spec"], vllm(lws)
        if provider in ("gke", "gke-a4"):
            assert c["securityContext"]["privileged"] is True
            terms = spec["affinity"]["podAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
            assert [(t["weight"], t["podAffinityTerm"]["topologyKey"]) for t in terms] == [
                (2, "cloud.google.com/gce-topology-block"), (1, "cloud.google.com/gce-topology-subblock")]
            for t in terms:
                assert t["podAffinityTerm"]["labelSelector"] == {"matchLabels": {"llm-d.ai/role": role}}
                assert t["podAffinityTerm"]["matchLabelKeys"] == ["component"]
            ann = tmpl["metadata"]["annotations"]
            assert ann["networking.gke.io/default-interface"] == "eth0"
            nets = json.loads(ann["networking.gke.io/interfaces"])
            assert nets[0] == {"interfaceName": "eth0", "network": "default"}
            assert nets[1:] == [{"interfaceName": f"eth{i + 2}", "network": f"rdma-{i}"} for i in range(8)]
            vols = {v["name"]: v for v in spec["volumes"]}
            assert vols["gib"]["hostPath"] == {"path": "/home/kubernetes/bin/gib", "type": ""}
            assert {"name": "gib", "mountPath": "/usr/local/gib"} in c["volumeMounts"]
            assert "schedulerName" not in spec
        else:
            assert "privileged" not in c["securityContext"]
            assert spec["schedulerName"] == "custom-binpack-scheduler"
            term = spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
            assert term["nodeSelectorTerms"] == [{"matchExpressions": [
                {"key": "gpu.nvidia.com/model", "operator": "In", "values": ["H200"]}]}]
            assert "annotations" not in tmpl["metadata"]
    monitors = by_kind(objs, "PodMonitor")
    if provider == "coreweave":
        assert set(monitors) == {"ms-wide-ep-llm-d-modelservice-decode-podmonitor",
                                 "ms-wide-ep-llm-d-modelservice-prefill-podmonitor"}
        for name, pm in monitors.items():
            role = "decode" if "decode" in name else "prefill"
            four = {"llm-d.ai/inference-serving": "true", "llm-d.ai/guide": "wide-ep-lws",
                    "llm-d.ai/model": "DeepSeek-R1-0528", "llm-d.ai/role": role}
            assert pm["spec"]["selector"]["matchLabels"] == four
            assert pm["metadata"]["labels"] == four     # pod-monitors.yaml labels the monitors themselves too
            assert pm["spec"]["podMetricsEndpoints"] == [
                {"port": f"rank{i}", "path": "/metrics", "interval": "5s"} for i in range(8)]
    else:
        assert monitors == {}


def test_inferencepool_values(rendered):
    provider, _, values = rendered
    ext = values["inferenceExtension"]
    assert ext["image"] == {"name": "llm-d-inference-scheduler", "hub": "ghcr.io/llm-d", "tag": "v0.5.0"}
    assert ext["replicas"] == 1 and ext["extProcPort"] == 9002
    assert ext["flags"] == {"kv-cache-usage-percentage-metric": "vllm:kv_cache_usage_perc", "v": 1}
    assert ext["monitoring"]["interval"] == "10s"
    assert ext["monitoring"]["prometheus"]["enabled"] is True   # every provider, GKE included
    assert ext["pluginsConfigFile"] == "custom-plugins.yaml"
    cfg = yaml.safe_load(ext["pluginsCustomConfig"]["custom-plugins.yaml"])
    assert (cfg["apiVersion"], cfg["kind"]) == ("inference.networking.x-k8s.io/v1alpha1", "EndpointPickerConfig")
    plugins = {p["type"]: p.get("parameters") for p in cfg["plugins"]}
    assert plugins["pd-profile-handler"] == {"threshold": 0, "hashBlockSize": 5}
    profiles = {p["name"]: [(r["pluginRef"], r.get("weight")) for r in p["plugins"]] for p in cfg["schedulingProfiles"]}
    assert values["inferencePool"]["modelServers"]["matchLabels"] == {
        "llm-d.ai/inference-serving": "true", "llm-d.ai/guide": "wide-ep-lws", "llm-d.ai/model": "DeepSeek-R1-0528"}
    if provider == "coreweave":
        assert profiles == {
            "prefill": [("prefill-filter", None), ("prefix-cache-scorer", 3), ("active-request-scorer", 2),
                        ("queue-scorer", 2)],
            "decode": [("decode-filter", None), ("active-request-scorer", 1), ("queue-scorer", 1)]}
        assert values["provider"]["name"] == "istio"
        dr = values["provider"]["istio"]["destinationRule"]
        assert dr["host"] == "llm-d-infpool-epp"
        assert dr["trafficPolicy"]["tls"] == {"mode": "SIMPLE", "insecureSkipVerify": True}
        assert dr["trafficPolicy"]["connectionPool"] == {
            "http": {"http1MaxPendingRequests": 256000, "maxRequestsPerConnection": 256000,
                     "http2MaxRequests": 256000, "idleTimeout": "900s"},
            "tcp": {"maxConnections": 256000, "maxConnectionDuration": "1800s", "connectTimeout": "900s"}}
    else:
        assert plugins["random-picker"] == {"maxNumOfEndpoints": 1}
        assert profiles == {"prefill": [("prefill-filter", None), ("random-picker", None)],
                            "decode": [("decode-filter", None), ("random-picker", None)]}
        assert values["provider"] == {"name": "gke"}
        assert "targetPorts" not in values["inferencePool"]  # the chart's default [{number: 8000}]


def test_gateway_recipe(rendered):
    provider, objs, _ = rendered
    gw = by_kind(objs, "Gateway")["llm-d-inference-gateway"]
    route = by_kind(objs, "HTTPRoute")["llm-d-route"]
    assert gw["spec"]["listeners"] == [{"name": "default", "port": 80, "protocol": "HTTP",
                                        "allowedRoutes": {"namespaces": {"from": "All"}}}]
    (rule,) = route["spec"]["rules"]
    assert rule["matches"] == [{"path": {"type": "PathPrefix", "value": "/"}}]
    assert rule["backendRefs"] == [{"group": "inference.networking.k8s.io", "kind": "InferencePool",
                                    "name": "llm-d-infpool", "port": 8000}]
    assert route["spec"]["parentRefs"][0]["name"] == "llm-d-inference-gateway"
    if provider == "coreweave":
        assert gw["spec"]["gatewayClassName"] == "istio"
        assert gw["metadata"]["labels"] == {"istio.io/enable-inference-extproc": "true"}
        assert gw["spec"]["infrastructure"]["parametersRef"] == {"group": "", "kind": "ConfigMap",
                                                                 "name": "llm-d-inference-gateway"}
        cm = by_kind(objs, "ConfigMap")["llm-d-inference-gateway"]
        proxy = yaml.safe_load(cm["data"]["deployment"])["spec"]["template"]["spec"]["containers"][0]
        assert proxy["args"] == ["proxy", "router", "--domain", "$(POD_NAMESPACE).svc.cluster.local",
                                 "--proxyLogLevel", "warn", "--proxyComponentLogLevel", "misc:warn",
                                 "--log_output_level", "default:warn"]
        assert proxy["resources"] == {"limits": {"cpu": "8", "memory": "16Gi"},
                                      "requests": {"cpu": "2", "memory": "4Gi"}}
        assert yaml.safe_load(cm["data"]["service"]) == {"spec": {"type": "ClusterIP"}}
        assert rule["timeouts"] == {"backendRequest": "0s", "request": "0s"}
    else:
        assert gw["spec"]["gatewayClassName"] == "gke-l7-regional-external-managed"
        assert "timeouts" not in rule


def test_export_is_one_file_per_object_and_stable(tmp_path):
    for _ in range(2):
        rc, stats, _, log = run_playbook("playbooks/render.yml", "inventories/coreweave", {"render_dir": str(tmp_path)})
        assert rc == 0, log
    assert stats["localhost"]["changed"] == 0, "a second export of the same inventory rewrites nothing"
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names[-1] == "inferencepool-values.yaml"
    kinds = [yaml.safe_load((tmp_path / n).read_text())["kind"] for n in names[:-1]]
    assert kinds[0] == "Namespace" and kinds.count("LeaderWorkerSet") == 2
    assert not (ROOT / "render").exists()


GKE_MONITORING = {  # guides' chart templates/gke.yaml (GAIE v1.3.0) with prometheus enabled, release llm-d-infpool
    ("PodMonitoring", "llm-d-infpool"), ("ServiceAccount", "llm-d-infpool-metrics-reader-sa"),
    ("Secret", "llm-d-infpool-metrics-reader-secret"), ("ClusterRole", "llm-d-wide-ep-llm-d-infpool-metrics-reader"),
    ("ClusterRoleBinding", "llm-d-wide-ep-llm-d-infpool-metrics-reader-role-binding"),
    ("Role", "llm-d-infpool-metrics-reader-secret-read"),
    ("RoleBinding", "gmp-system:collector:llm-d-wide-ep-llm-d-infpool-metrics-reader-secret-read"),
}


@pytest.mark.parametrize("inventory", ["gke", "gke-a4"])
def test_gke_chart_release_has_the_managed_prometheus_objects(inventory, tmp_path):
    """The guide installs the chart with provider.name=gke and Prometheus enabled: the chart then makes the
    PodMonitoring, its metrics-reader identity and the gmp-system collector's access, and no ServiceMonitor."""
    from tests.support.runs import BIN, CACHE

    rc, _, _, log = run_playbook("playbooks/render.yml", f"inventories/{inventory}", {"render_dir": str(tmp_path)})
    assert rc == 0, log
    chart = CACHE / "data/gaie/inferencepool-v1.3.0.tgz"
    res = subprocess.run([str(BIN / "helm"), "template", "llm-d-infpool", str(chart), "-n", "llm-d-wide-ep",
                          "-f", str(tmp_path / "inferencepool-values.yaml")],
                         capture_output=True, text=True, check=True)
    objs = [o for o in yaml.safe_load_all(res.stdout) if o]
    kinds = {(o["kind"], o["metadata"]["name"]) for o in objs}
    assert GKE_MONITORING <= kinds, GKE_MONITORING - kinds
    assert not [o for o in objs if o["kind"] == "ServiceMonitor"]
    pm = next(o for o in objs if o["kind"] == "PodMonitoring")
    (endpoint,) = pm["spec"]["endpoints"]
    assert (endpoint["port"], endpoint["interval"], endpoint["path"]) == ("metrics", "10s", "/metrics")
    assert endpoint["authorization"]["credentials"]["secret"] == {"name": "llm-d-infpool-metrics-reader-secret",
                                                                   "key": "token"}
    rb = next(o for o in objs if o["kind"] == "RoleBinding")
    assert rb["subjects"] == [{"name": "collector", "namespace": "gmp-system", "kind": "ServiceAccount"}]
    assert {("HealthCheckPolicy", "llm-d-infpool"), ("GCPBackendPolicy", "llm-d-infpool")} <= kinds


def test_kgateway_openshift_gateway_parameters():
    """guides/recipes/gateway/kgateway-openshift/gateway-parameters.yaml at 59bebce, field by field."""
    from ansible_collections.llmd.wide_ep.plugins.module_utils.render import routing, topology

    topo = topology.build({"provider": "baremetal", "dp_mode": "hybrid", "gateway": "kgateway-openshift",
                           "namespace": "llm-d-wide-ep", "model": "deepseek-ai/DeepSeek-R1-0528",
                           "model_label": "DeepSeek-R1-0528"})
    objs = {o["kind"]: o for o in routing.gateway_objects(topo)}
    params = objs["GatewayParameters"]
    assert params["apiVersion"] == "gateway.kgateway.dev/v1alpha1"
    assert params["metadata"]["name"] == "kgateway-params"
    assert params["metadata"]["labels"] == {"app.kubernetes.io/component": "inference-gateway"}
    assert params["spec"]["kube"] == {
        "envoyContainer": {"securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                                               "runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}},
        "service": {"type": "ClusterIP"},
        "floatingUserId": True,
        "sdsContainer": {"securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                                             "seccompProfile": {"type": "RuntimeDefault"}}}}
    assert objs["Gateway"]["spec"]["gatewayClassName"] == "kgateway"
    assert objs["Gateway"]["spec"]["infrastructure"] == {"parametersRef": {
        "name": "kgateway-params", "group": "gateway.kgateway.dev", "kind": "GatewayParameters"}}


def test_export_check_mode_says_what_would_change_and_writes_nothing(tmp_path):
    rc, _, _, log = run_playbook("playbooks/render.yml", "inventories/coreweave", {"render_dir": str(tmp_path)})
    assert rc == 0, log
    before = {p.name: p.read_text() for p in tmp_path.iterdir()}
    changed = {"render_dir": str(tmp_path), "wide_ep_decode": {"replicas": 1, "group_size": 2, "dp_local": 8,
                                                                "extra_args": ["--max-num-seqs=64"]}}
    rc, stats, out, log = run_playbook("playbooks/render.yml", "inventories/coreweave", changed, check=True,
                                       diff=True)
    assert rc == 0 and stats["localhost"]["changed"] == 1, log
    assert {p.name: p.read_text() for p in tmp_path.iterdir()} == before      # nothing written
    (diff,) = [d for task in task_results(out, "Validate the topology") for d in task["localhost"]["diff"]]
    assert diff["before_header"].endswith("-leaderworkerset-wide-ep-llm-d-decode.yaml")
    assert "--max-num-seqs=64" in diff["after"] and "--max-num-seqs=64" not in diff["before"]
