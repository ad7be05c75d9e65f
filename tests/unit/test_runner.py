"""The module runner (module_utils/runner.py): a domain error (any of the error root's) fails
the task with its message and extra fields, anything else keeps its traceback; the client is made once, on use."""
import pytest

from ansible_collections.llmd.wide_ep.plugins.module_utils import runner
from ansible_collections.llmd.wide_ep.plugins.module_utils.day2.lease import Held
from ansible_collections.llmd.wide_ep.plugins.module_utils.day2.rollout import Failed
from ansible_collections.llmd.wide_ep.plugins.module_utils.errors import InvalidInput, WideEPError
from ansible_collections.llmd.wide_ep.plugins.module_utils.k8s.errors import K8sError
from ansible_collections.llmd.wide_ep.plugins.module_utils.k8s.helm import HelmError
from ansible_collections.llmd.wide_ep.plugins.module_utils.render.topology import TopologyError


class Exit(BaseException):
    def __init__(self, result):
        super().__init__()
        self.result = result


class FakeModule:
    """AnsibleModule's exit and fail: what the runner calls."""

    made = []

    def __init__(self, argument_spec, **kwargs):
        self.argument_spec, self.kwargs = argument_spec, kwargs
        self.params = {k: v.get("default") for k, v in argument_spec.items()}
        self.check_mode = False
        FakeModule.made.append(self)

    def exit_json(self, **result):
        raise Exit(dict(result, failed=False))

    def fail_json(self, msg, **result):
        raise Exit(dict(result, failed=True, msg=msg))


@pytest.fixture(autouse=True)
def fake_module(monkeypatch):
    FakeModule.made = []
    monkeypatch.setattr(runner, "AnsibleModule", FakeModule)


def run(body, **kwargs):
    with pytest.raises(Exit) as done:
        runner.run_module({"x": {"type": "int", "default": 3}}, body, **kwargs)
    return done.value.result


def test_every_domain_error_shares_one_root():
    for error in (K8sError, HelmError, TopologyError, Held, Failed, InvalidInput):
        assert issubclass(error, WideEPError), error
    assert not issubclass(TopologyError, ValueError)   # a bug's ValueError is not a user's mistake


def test_the_result_is_the_task_result_and_a_domain_error_a_clean_failure():
    assert run(lambda ctx: {"changed": True, "x": ctx.params["x"]}) == {"changed": True, "x": 3, "failed": False}

    def refuse(ctx):
        raise InvalidInput("wide_ep_x: 3 is not 4", problems=["x"])
    assert run(refuse) == {"failed": True, "msg": "wide_ep_x: 3 is not 4", "problems": ["x"]}


def test_a_bug_keeps_its_traceback():
    def bug(ctx):
        return {}["missing"]
    with pytest.raises(KeyError):
        runner.run_module({}, bug)


def test_cluster_modules_get_the_access_options_and_host_modules_do_not():
    run(lambda ctx: {})
    assert {"kubeconfig", "context", "host"} <= set(FakeModule.made[-1].argument_spec)
    run(lambda ctx: {}, cluster=False, supports_check_mode=True)
    assert set(FakeModule.made[-1].argument_spec) == {"x"}
    assert FakeModule.made[-1].kwargs == {"supports_check_mode": True}


def test_the_client_is_made_once_and_only_when_used(monkeypatch):
    made = []

    class Client:
        def __init__(self, params):
            made.append(params)

    from ansible_collections.llmd.wide_ep.plugins.module_utils.k8s import client
    monkeypatch.setattr(client, "Client", Client)
    run(lambda ctx: {})
    assert made == []
    run(lambda ctx: {"same": ctx.client is ctx.client})
    assert len(made) == 1
