#!/usr/bin/env bash
# The whole test suite: lint, unit and fidelity tests, then the tests against the local cluster, all inside the
# cluster's loopback-only network namespace; then the Ansible-facing tests again on each other ansible-core of the
# matrix (scripts/setup.sh builds their venvs).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CACHE=${LLMD_CACHE:-/var/cache/llmd-wide-ep}
"$ROOT/scripts/setup.sh" --fresh-cluster --kind
cd "$ROOT"
.venv/bin/ruff check plugins tests bench
.venv/bin/yamllint -s .
.venv/bin/ansible-lint --nocolor -q
scripts/sanity.sh
in_cluster() { .venv/bin/python tests/support/cluster/localcluster.py exec -- "$@"; }
# What runs the collection through ansible-core: rendering, docs, packaging, host plays, a full deployment.
MATRIX_TESTS=(tests/fidelity tests/unit/plugins/test_module_docs.py tests/integration/test_05_packaging.py
              tests/integration/test_15_target_groups.py tests/integration/test_20_deploy_local.py)
if (($#)); then in_cluster .venv/bin/python -m pytest tests "$@"; exit; fi   # pytest options: no matrix
# The ends of every declared range (scripts/setup.sh, matrix_venvs) also run the unit tests and the cluster
# access against the real API server's authenticators; the newest leg installs charts with helm 4.
RANGE_TESTS=(tests/unit tests/integration/test_19_cluster_access.py tests/integration/test_21_helm_storage.py)
rc=0
for leg in oldest pinned-2.20.10 newest; do
  venv=$CACHE/ansible-matrix/$leg tests=("${MATRIX_TESTS[@]}") helm=$CACHE/bin/helm
  [[ $leg == pinned-* ]] || tests+=("${RANGE_TESTS[@]}")
  [[ $leg == newest ]] && helm=$CACHE/bin/helm4
  echo "=== $leg: $(cat "$venv/.versions"), $("$helm" version --short) ==="
  LLMD_HELM=$helm in_cluster "$venv/bin/python" -m pytest -q "${tests[@]}" || rc=1
done
echo "=== ansible-core $(.venv/bin/python -c 'import ansible; print(ansible.__version__)'): the whole suite ==="
in_cluster .venv/bin/python -m pytest tests || rc=1
exit $rc
