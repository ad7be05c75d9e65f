"""The smoke request's hops (module_utils/day2/smoke.py) over the in-memory API server and its pod proxy: the
hop to blame is the first failing one behind the gateway; a dead port is named with its pod."""
import json

from ansible_collections.llmd.wide_ep.plugins.module_utils.checklist import Checklist
from ansible_collections.llmd.wide_ep.plugins.module_utils.day2 import smoke
from ansible_collections.llmd.wide_ep.plugins.module_utils.k8s.client import Client, proxy_path
from ansible_collections.llmd.wide_ep.plugins.module_utils.k8s.lws import LWS_NAME_LABEL
from ansible_collections.llmd.wide_ep.plugins.module_utils.k8s.serving import Reply
from ansible_collections.llmd.wide_ep.plugins.module_utils.render import plan, topology
from tests.support.fake_api import FakeApi

PLAN = plan.render(dict(topology.DEFAULT_SETTINGS, provider="baremetal", dp_mode="hybrid"))
NS = PLAN["refs"]["namespace"]
MODELS = json.dumps({"data": [{"id": topology.DEFAULT_SETTINGS["model"]}]})


def params():
    return {"refs": PLAN["refs"], "expected": PLAN["summary"], "timeout": 5, "prompt": "hi", "max_tokens": 4,
            "endpoint": None}


def add_pods(api, role, ready=True):
    lws = PLAN["refs"]["leaderworkersets"][role]["metadata"]["name"]
    for i in range(2):
        api.put({"apiVersion": "v1", "kind": "Pod", "metadata": {
            "name": "%s-0%s" % (lws, "-1" if i else ""), "namespace": NS, "labels": {LWS_NAME_LABEL: lws}},
            "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}})


def test_the_first_failing_hop_behind_the_gateway_is_to_blame():
    hops = Checklist()
    hops.add(False, "no completion", "gateway")
    hops.add(True, "ok", "epp")
    hops.add(False, "pod x not Ready", "decode")
    assert smoke.cause(hops)["hop"] == "decode"
    only_gateway = Checklist()
    only_gateway.add(False, "404", "gateway")
    assert smoke.cause(only_gateway)["hop"] == "gateway" and smoke.cause(Checklist()) is None


def test_a_role_with_every_port_answering_passes_and_a_dead_port_is_named():
    api = FakeApi()
    add_pods(api, "prefill")
    ports = PLAN["summary"]["prefill"]["endpoint_ports"]
    for name in ("wide-ep-llm-d-prefill-0", "wide-ep-llm-d-prefill-0-1"):
        for port in ports:
            api.proxied[proxy_path(NS, "pods", name, port) + "/v1/models"] = MODELS
    hops = Checklist()
    smoke.check_role(Client(transport=api), params(), "prefill", hops)
    assert hops.items[0]["ok"] is True and hops.items[0]["detail"].startswith("2 pods Ready")
    del api.proxied[proxy_path(NS, "pods", "wide-ep-llm-d-prefill-0-1", ports[0]) + "/v1/models"]
    hops = Checklist()
    smoke.check_role(Client(transport=api), params(), "prefill", hops)
    assert hops.problems == ["pod wide-ep-llm-d-prefill-0-1 port %d: HTTP 503 from the API server proxy: error "
                             "trying to reach service: connection refused" % ports[0]]


def test_missing_and_unready_pods_are_said_without_a_probe():
    api = FakeApi()
    hops = Checklist()
    smoke.check_role(Client(transport=api), params(), "decode", hops)
    assert hops.problems == ["0 of 2 pods exist"]
    add_pods(api, "decode", ready=False)
    hops = Checklist()
    smoke.check_role(Client(transport=api), params(), "decode", hops)
    assert "pod wide-ep-llm-d-decode-0 not Ready (Running)" in hops.problems[0]
    assert [m for m, path, q in api.log if "/proxy/" in path] == []


class Target:
    def __init__(self, label, *replies):
        self.label, self.replies = label, list(replies)

    def call(self, client, method, path, body=None, timeout=30):
        return self.replies.pop(0)


def test_the_completion_tries_the_next_way_in_only_when_nothing_answers():
    done = json.dumps({"choices": [{"text": " fine"}], "usage": {"completion_tokens": 2}})
    completion, tried = smoke.complete(None, params(), [
        Target("gateway address", Reply(error="cannot connect")),
        Target("gateway service", Reply(200, MODELS), Reply(200, done, seconds=0.5))])
    assert completion == {"text": " fine", "usage": {"completion_tokens": 2}, "seconds": 0.5,
                          "via": "gateway service"}
    assert tried == ["gateway address: cannot connect"]
    completion, tried = smoke.complete(None, params(), [
        Target("gateway", Reply(200, MODELS), Reply(503, "no healthy upstream"))])
    assert completion is None and tried == [
        "gateway: completion HTTP 503: no healthy upstream (no healthy upstream: the endpoint picker or every "
        "model server is unavailable)"]
