#!/usr/bin/env bash
# Sets everything up on a fresh machine and runs site.yml against the embedded local cluster.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
"$ROOT/scripts/setup.sh"
cd "$ROOT"
exec .venv/bin/python tests/support/cluster/localcluster.py exec -- .venv/bin/ansible-playbook site.yml -i inventories/local "$@"
