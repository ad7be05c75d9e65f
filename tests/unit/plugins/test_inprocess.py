"""plugins/plugin_utils/inprocess.py: a module run inside the worker behaves as its process would - the same
argument validation, check-mode refusal and no_log masking, and it ends like exit_json/fail_json end a process."""
import pytest

from ansible_collections.llmd.wide_ep.plugins.plugin_utils import inprocess

SPEC = {"password": {"type": "str", "no_log": True}, "count": {"type": "int", "default": 2},
        "verify": {"type": "bool", "aliases": ["validate"]}}


def call(args, check_mode=False, supports_check_mode=True):
    cls = type("Call", (inprocess.ModuleCall,), {"name": "demo", "args": args, "check_mode": check_mode,
                                                 "diff": False, "made": []})
    return cls(SPEC, supports_check_mode=supports_check_mode)


def ended(fn, *args, **kw):
    with pytest.raises(inprocess.ModuleExit) as done:
        fn(*args, **kw)
    return done.value.result


def test_validation_types_defaults_and_aliases():
    module = call({"count": "5", "validate": "yes"})
    assert (module.params["password"], module.params["count"], module.params["verify"]) == (None, 5, True)


def test_unsupported_and_wrongly_typed_parameters_fail_like_ansiblemodule():
    res = ended(call, {"colour": "red"})
    assert res["failed"] and res["msg"].startswith("Unsupported parameters for (demo) module: colour")
    assert "argument 'count' is of type" in ended(call, {"count": "many"})["msg"]


def test_no_log_values_are_masked_in_the_result():
    module = call({"password": "hunter2-secret"})
    res = ended(module.fail_json, msg="login with hunter2-secret refused", detail=["hunter2-secret"])
    assert "hunter2-secret" not in repr(res) and res["failed"] is True


def test_check_mode_without_support_is_skipped_and_exit_defaults_changed():
    assert ended(call, {}, check_mode=True, supports_check_mode=False)["skipped"] is True
    assert ended(call({}).exit_json, answer=42) == {"changed": False, "answer": 42}


def test_exit_is_not_caught_by_a_modules_except_exception():
    module = call({})
    with pytest.raises(inprocess.ModuleExit):
        try:
            module.exit_json(changed=True)
        except Exception:  # noqa: BLE001 - what module code does around its work
            pytest.fail("exit_json was caught as an Exception")


def test_a_module_warning_is_returned_once():
    """The topology module on a renamed release: its one warning, once (not also as a result key)."""
    settings = {"llmd_version": "v0.8.0", "provider": "coreweave", "gateway": "none", "namespace": "llm-d-wide-ep",
                "model": "deepseek-ai/DeepSeek-R1-0528", "model_label": "DeepSeek-R1-0528"}
    res = inprocess.run("llmd.wide_ep.topology", {"settings": settings}, False, False, {})
    assert not res.get("failed"), res
    assert len(res["warnings"]) == 1 and "v0.8.0 now means main-7edda66" in res["warnings"][0]
    assert res["summary"]["llmd_version"] == "main-7edda66"
