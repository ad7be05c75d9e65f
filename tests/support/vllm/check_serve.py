"""Runs `vllm serve` command lines through the real vLLM of one version, as the `serve` command would before it
starts anything: its argument parser (exact flag names: no abbreviations), the serve validation, the
data-parallel load-balancing mode (and, under --data-parallel-multi-port-external-lb, the supervisor's own
checks and each child it would start), then EngineArgs.create_engine_config for every engine that line starts.
Also: every JSON-valued flag names only fields of its config, every VLLM_* variable is one this version reads.

Run inside $LLMD_CACHE/vllm/<version> (tests/support/vllm/build.sh):
    python check_serve.py CASES.json RESULTS.json MODEL_DIR
CASES: [{"id": ..., "argv": [args after `vllm serve`], "env": [variable names]}]
RESULTS: {"vllm": version, "results": [{"id": ..., "error": null or what vLLM refused,
                                        "engines": [the data-parallel ranks the line starts]}]}"""
import dataclasses
import json
import sys

import vllm
import vllm.envs
from vllm.engine.arg_utils import EngineArgs

try:
    from vllm.utils.argparse_utils import FlexibleArgumentParser
except ImportError:         # vLLM < 0.11
    from vllm.utils import FlexibleArgumentParser
from vllm.entrypoints.openai.cli_args import make_arg_parser, validate_parsed_serve_args

try:
    from vllm.entrypoints.openai import dp_supervisor
except ImportError:         # before the DP supervisor (vLLM 0.23)
    dp_supervisor = None


class StrictParser(FlexibleArgumentParser):
    """The serve parser with exact flag names, raising what it refuses instead of exiting."""

    def __init__(self):
        super().__init__(allow_abbrev=False)

    def error(self, message):
        raise ValueError(message)


def lb_modes(args):
    """The serve command's one-load-balancing-mode rule (vllm/entrypoints/cli/serve.py, from 0.23 with the
    supervisor; before it, create_engine_config settles the mode itself). True: the supervisor starts it."""
    if dp_supervisor is None:
        return False
    multi_port = getattr(args, "data_parallel_multi_port_external_lb", False)
    external = args.data_parallel_external_lb or args.data_parallel_rank is not None
    hybrid = args.data_parallel_hybrid_lb or (not multi_port and args.data_parallel_start_rank is not None)
    if multi_port + external + hybrid > 1:
        raise ValueError("more than one data-parallel load-balancing mode (multi-port %s, external %s, hybrid %s)"
                         % (multi_port, external, hybrid))
    return multi_port


def json_fields(argv, args):
    """A JSON-valued flag's keys must be fields of the config it builds: some versions drop unknown keys."""
    for i, token in enumerate(argv):
        flag, _, value = token.partition("=")
        if not flag.startswith("--"):
            continue
        value = value or (argv[i + 1] if i + 1 < len(argv) else "")
        if not value.startswith("{"):
            continue
        parsed = getattr(args, flag[2:].replace("-", "_"), None)
        if dataclasses.is_dataclass(parsed):
            unknown = sorted(set(json.loads(value)) - {f.name for f in dataclasses.fields(parsed)})
            if unknown:
                raise ValueError("%s: %s not a field of %s" % (flag, ", ".join(unknown), type(parsed).__name__))


def engines(args, model_dir):
    if lb_modes(args):
        dp_supervisor.validate_multi_port_external_lb_args(args)
        # the supervisor's own derivation of each child's arguments (pinned vLLM versions: no public twin)
        children = [dp_supervisor._build_vllm_dp_server_args(args, rank)
                    for rank in range(args.data_parallel_size_local)]
    else:
        children = [args]
    ranks = []
    for child in children:
        child.model = model_dir
        parallel = EngineArgs.from_cli_args(child).create_engine_config().parallel_config
        # a hybrid-LB server runs its local ranks from its start rank; any other engine is one rank
        ranks += range(parallel.data_parallel_rank, parallel.data_parallel_rank + parallel.data_parallel_size_local)
    return ranks


def check(case, model_dir):
    """What vLLM refuses in the case (every finding, '; '-joined; none: empty) and the ranks its engines run."""
    findings = ["vLLM %s reads no %s" % (vllm.__version__, name) for name in sorted(case["env"])
                if name.startswith("VLLM_") and name not in vllm.envs.environment_variables]
    ranks = []
    try:
        args = make_arg_parser(StrictParser()).parse_args(case["argv"])
        validate_parsed_serve_args(args)
        json_fields(case["argv"], args)
        ranks = engines(args, model_dir)
    except Exception as error:    # what vLLM refuses, whatever its type, is the finding
        findings.append("%s: %s" % (type(error).__name__, error))
    return "; ".join(findings), ranks


def main(cases_path, results_path, model_dir):
    results = []
    for case in json.load(open(cases_path)):
        error, ranks = check(case, model_dir)
        results.append({"id": case["id"], "error": error or None, "engines": [] if error else ranks})
    json.dump({"vllm": vllm.__version__, "results": results}, open(results_path, "w"))


if __name__ == "__main__":
    main(*sys.argv[1:])
