#!/usr/bin/env bash
# The whole test suite: lint, unit and fidelity tests, then the tests against the local cluster, all inside the
# cluster's loopback-only network namespace.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
"$ROOT/scripts/setup.sh" --fresh-cluster
cd "$ROOT"
.venv/bin/ruff check plugins tests bench
.venv/bin/yamllint -s .
.venv/bin/ansible-lint --nocolor -q
exec .venv/bin/python tests/cluster/localcluster.py exec -- .venv/bin/python -m pytest tests "$@"
