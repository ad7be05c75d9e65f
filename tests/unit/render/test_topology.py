"""The topology model: derived numbers and validation. Pure logic; no cluster."""
import pytest

from ansible_collections.llmd.wide_ep.plugins.module_utils.render import manifests, topology

BASE = {"provider": "coreweave", "dp_mode": "dp-aware", "gateway": "istio", "namespace": "llm-d-wide-ep",
        "model": "deepseek-ai/DeepSeek-R1-0528", "model_label": "DeepSeek-R1-0528"}


def build(**over):
    return topology.build({**BASE, **over})


def test_guide_topology_dp_aware():
    t = build()
    for role, base in ((t.prefill, 8000), (t.decode, 8200)):
        assert (role.dp_size, role.dp_local, role.group_size, role.replicas) == (16, 8, 2, 1)
        assert [role.start_rank(w) for w in range(2)] == [0, 8]
        assert role.ranks(1) == list(range(8, 16))
        assert role.vllm_ports == list(range(base, base + 8))
        assert role.ep_size == 16
    assert t.decode.sidecar_ports == list(range(8000, 8008))
    assert t.target_ports == list(range(8000, 8008))
    assert t.gpus == 32


def test_guide_topology_hybrid():
    t = build(dp_mode="hybrid", provider="gke", gateway="gke-l7-rilb")
    assert t.prefill.vllm_ports == [8000] and t.decode.vllm_ports == [8200]
    assert t.decode.sidecar_ports == [8000] and t.target_ports == [8000]
    assert t.prefill.nixl_ports(5600, 1) == list(range(5608, 5616))


def test_every_rank_of_a_group_gets_identical_flags():
    t = build()
    for role in t.roles:
        script = manifests.vllm_script(t, role)
        lines = [line for line in script.splitlines() if line.startswith("CUDA_VISIBLE_DEVICES")]
        assert len(lines) == role.dp_local
        # Only the GPU, port and rank offset differ between the per-GPU servers.
        shapes = {line.replace(f'"{i}"', '"I"').replace(f"--port={role.vllm_port + i}", "--port=P")
                  .replace(f"+ {i})", "+ I)") for i, line in enumerate(lines)}
        assert len(shapes) == 1


BAD = [
    ({"provider": "aws"}, "wide_ep_provider: 'aws' is not one of gke, gke-a4, coreweave, baremetal, local"),
    ({"dp_mode": "auto"}, "wide_ep_dp_mode: 'auto' is not one of hybrid, dp-aware"),
    ({"gateway": "nginx"}, "wide_ep_gateway: 'nginx'"),
    ({"namespace": "LLM_D"}, "wide_ep_namespace: 'LLM_D' is not a valid namespace name"),
    ({"prefill": {"dp_size": 12}}, "wide_ep_prefill.dp_size: 12 does not equal group_size (2) x dp_local (8) = 16"),
    ({"decode": {"dp_local": 16, "dp_size": 32}, "dp_mode": "hybrid"},
     "wide_ep_decode: dp_local (16) x tp (1) = 16 GPUs per pod does not fit a node of wide_ep_node_gpus=8"),
    ({"redundant_experts": 30}, "wide_ep_prefill: routed (256) + redundant (30) experts = 286 is not divisible "
                                "by the EP size 16 (dp_size 16 x tp 1); set wide_ep_redundant_experts to 32"),
    ({"ports": {"decode": 8004}, "dp_mode": "dp-aware"},
     "wide_ep_decode: port 8004 of pod 0 is used by both the vLLM and the routing sidecar"),
    ({"ports": {"nixl": 5550}}, "wide_ep_prefill: port 5555 of pod 0 is used by both the NIXL side channel and"),
    ({"prefill": {"extra_args": ["--data-parallel-rank=3"]}},
     "wide_ep_prefill.extra_args: '--data-parallel-rank=3' is derived from the topology"),
    ({"decode": {"extra_args": ["--data_parallel_size_local", "8"]}},
     "wide_ep_decode.extra_args: '--data_parallel_size_local' is derived"),
    ({"prefill": {"group_sise": 2}}, "wide_ep_prefill.group_sise: unknown setting; valid settings are replicas,"),
    ({"prefill": {"tp": 2}}, "wide_ep_prefill.tp: 2, but DP-aware mode runs one vLLM server per GPU"),
    ({"images": {"vllm": "bad image"}}, "wide_ep_images.vllm: 'bad image' is not an image reference"),
    ({"decode": {"env": {"1BAD": "x"}}}, "wide_ep_decode.env: '1BAD' is not a valid environment variable name"),
    ({"decode": {"replicas": -1}}, "wide_ep_decode.replicas: -1 must be an integer >= 1"),
    ({"decode": {"replicas": 0}}, "wide_ep_decode.replicas: 0 must be an integer >= 1; a role with no group serves "
                                  "nothing (the EPP would route to no decode pod): to take the deployment down use "
                                  "playbooks/teardown.yml"),
    ({"gateway": "kgateway"}, "wide_ep_gateway: kgateway with wide_ep_dp_mode: dp-aware is refused: DP-aware routing "
                              "needs a gateway that sends requests to every InferencePool targetPort, proven only for "
                              "Istio >= 1.28.1 (open bugs elsewhere: kgateway-dev/kgateway#12238, istio/istio#57638, "
                              "llm-d/llm-d#1855"),
    ({"gateway": "kgateway-openshift"}, "or set wide_ep_allow_unverified_gateway: true to accept the risk"),
    ({"gateway": "gke-l7-rilb"}, "wide_ep_gateway: gke-l7-rilb with wide_ep_dp_mode: dp-aware is refused"),
    ({"allow_unverified_gateway": "maybe"}, "wide_ep_allow_unverified_gateway: 'maybe' must be true or false"),
    ({"node_gpus": "eight"}, "wide_ep_node_gpus: 'eight' must be a positive integer"),
    ({"ports": {"prefill": 9000}}, "wide_ep_ports: the InferencePool's target ports must match on prefill"),
    ({"decode": {"resources": {"nvidia.com/gpu": "4"}}},
     "wide_ep_decode.resources.nvidia.com/gpu: not a resource the collection sets; valid keys are cpu, memory, "
     "ephemeral-storage (GPUs and RDMA devices follow from dp_local, tp and the provider)"),
    ({"prefill": {"resources": {"memory": "lots"}}},
     "wide_ep_prefill.resources.memory: 'lots' is not a Kubernetes quantity such as \"16\", \"500m\" or \"256Gi\""),
    ({"prefill": {"resources": ["cpu"]}}, "wide_ep_prefill.resources: must be a mapping of cpu, memory, "
                                          "ephemeral-storage to quantities"),
]


@pytest.mark.parametrize("override,message", BAD, ids=[str(i) for i in range(len(BAD))])
def test_invalid_topology_names_the_variable(override, message):
    with pytest.raises(topology.TopologyError) as err:
        build(**override)
    assert message in str(err.value), str(err.value)


@pytest.mark.parametrize("gateway", ["kgateway", "kgateway-openshift", "gke-l7-rilb"])
def test_an_unverified_gateway_in_dp_aware_mode_is_accepted_when_allowed_or_in_hybrid_mode(gateway):
    assert build(gateway=gateway, allow_unverified_gateway=True).gateway == gateway
    assert build(gateway=gateway, dp_mode="hybrid").dp_mode == "hybrid"


def test_all_problems_reported_together():
    with pytest.raises(topology.TopologyError) as err:
        build(provider="aws", gateway="nginx", prefill={"dp_local": 0})
    assert len(err.value.problems) == 3
    assert str(err.value).startswith("invalid wide-EP topology (3 problems):")


# (setting, value) pairs of another type than the default's that are nonetheless valid: a release name of
# digits, a boolean where null means "the provider's overlay decides", a number given as a string (Ansible's).
INTS = [key for key, value in topology.DEFAULT_SETTINGS.items() if type(value) is int]
VALID_OTHER_TYPES = [("release", "8000"), ("pod_monitors", True)] + [
    (key, str(topology.DEFAULT_SETTINGS[key])) for key in INTS]
WRONG_TYPES = [(key, wrong) for key in sorted(topology.DEFAULT_SETTINGS) for wrong in ("8000", [1], {"x": 1}, 3.5, True)
               if type(wrong) is not type(topology.DEFAULT_SETTINGS[key])
               and (key, wrong) not in [("release", "8000"), ("pod_monitors", True)]
               and not (key in INTS and isinstance(wrong, str))]


@pytest.mark.parametrize("key,wrong", WRONG_TYPES)
def test_a_setting_of_the_wrong_type_is_a_topology_error_naming_it(key, wrong):
    """The model runs before the roles' argument check (site.yml): a wrongly typed setting is one clear problem
    that names the variable, never a crash inside the model, never accepted."""
    with pytest.raises(topology.TopologyError, match="wide_ep_%s" % key):
        build(**{key: wrong})


@pytest.mark.parametrize("key,value", VALID_OTHER_TYPES)
def test_the_values_of_another_type_that_are_valid_build(key, value):
    assert build(**{key: value})


def test_cross_role_checks_run_whatever_else_failed():
    """A bad namespace (or provider) does not hide what the roles disagree on."""
    with pytest.raises(topology.TopologyError) as err:
        build(namespace="LLM_D", provider="aws", redundant_experts=30, ports={"nixl": 5550})
    text = str(err.value)
    assert "wide_ep_namespace: 'LLM_D'" in text and "wide_ep_provider: 'aws'" in text
    assert "wide_ep_prefill: routed (256) + redundant (30) experts = 286 is not divisible" in text
    assert "port 5555 of pod 0 is used by both the NIXL side channel and the DP RPC" in text


def test_cross_role_checks_skip_values_that_failed_their_own_check():
    """An invalid dp_local is replaced to go on; it must not produce an expert or port problem of its own."""
    with pytest.raises(topology.TopologyError) as err:
        build(prefill={"dp_local": 0}, redundant_experts=-1)
    assert len(err.value.problems) == 2, err.value.problems


@pytest.mark.parametrize("value,expected", [("true", True), ("yes", True), ("False", False), ("off", False)])
def test_booleans_given_as_strings_are_read_as_ansible_reads_them(value, expected):
    """-e wide_ep_allow_unverified_gateway=true arrives as the string 'true'."""
    topo = build(gateway="kgateway", allow_unverified_gateway=value) if expected else None
    assert topo is None or topo.gateway == "kgateway"
    if not expected:
        with pytest.raises(topology.TopologyError, match="kgateway with wide_ep_dp_mode: dp-aware is refused"):
            build(gateway="kgateway", allow_unverified_gateway=value)


def test_integers_given_as_strings_are_read_as_ansible_reads_them():
    topo = build(node_gpus="4", dp_mode="hybrid", prefill={"dp_local": "4", "group_size": "4"},
                 decode={"dp_local": 4, "group_size": 4}, ports={"decode": "8200"})
    assert topo.node_gpus == 4 and topo.prefill.dp_local == 4 and topo.prefill.dp_size == 16
    assert topo.ports["decode"] == 8200


def test_resources_override_the_guides_sizes_and_keep_the_devices():
    guide = build()
    decode = next(r for r in guide.roles if r.name == "decode")
    assert manifests.vllm_resources(guide, decode)["requests"]["memory"] == "512Gi"
    small = build(decode={"resources": {"cpu": "500m", "memory": "2Gi"}})
    decode = next(r for r in small.roles if r.name == "decode")
    res = manifests.vllm_resources(small, decode)
    assert res["requests"] == {"cpu": "500m", "memory": "2Gi", "nvidia.com/gpu": "8", "rdma/ib": "1"}
    assert res["limits"] == {"memory": "2Gi", "nvidia.com/gpu": "8", "rdma/ib": "1"}   # no cpu limit, as the guide
    prefill = next(r for r in small.roles if r.name == "prefill")
    assert manifests.vllm_resources(small, prefill)["requests"]["cpu"] == "32"      # the other role keeps the guide's
