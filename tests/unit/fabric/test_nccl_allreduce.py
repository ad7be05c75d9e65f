"""The NCCL all-reduce probe (module_utils/fabric/nccl_allreduce.py) is a script gpu_check writes on the host:
it must compile, check every rank's sum, and compute bus bandwidth as nccl-tests does (its run on two H200s is
tests/fixtures/gpu/h200x2-gpu-check-report.json, read by test_gpu.py)."""
import ast

from ansible_collections.llmd.wide_ep.plugins.module_utils.fabric.nccl_allreduce import SCRIPT


def test_the_script_compiles_and_checks_the_sum():
    tree = ast.parse(SCRIPT)
    names = {node.name for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)}
    assert names == {"worker"}
    assert "world * (world + 1) / 2" in SCRIPT                    # sum over ranks of (rank + 1)
    assert "algbw * 2 * (world - 1) / world" in SCRIPT             # nccl-tests' all-reduce bus bandwidth
