#!/usr/bin/env bash
# ansible-test sanity over what ships: the built collection (galaxy.yml's build_ignore leaves tests, bench and dev
# files out) unpacked under ansible_collections/llmd/wide_ep, with tests/sanity/ignore-*.txt beside it.
#   scripts/sanity.sh [--prime] [ansible-test sanity options]
# --prime builds ansible-test's per-test venvs (it downloads from the package index: scripts/setup.sh runs it
# outside the cluster's namespace); the suite then runs sanity with nothing left to download.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
VENV=${SANITY_VENV:-$ROOT/.venv}
PY=$("$VENV/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
DEST=$WORK/ansible_collections/llmd/wide_ep
mkdir -p "$DEST"
(cd "$ROOT" && "$VENV/bin/ansible-galaxy" collection build --output-path "$WORK" >/dev/null)
tar -xzf "$WORK"/llmd-wide_ep-*.tar.gz -C "$DEST"
mkdir -p "$DEST/tests/sanity"
cp "$ROOT"/tests/sanity/ignore-*.txt "$DEST/tests/sanity/" 2>/dev/null || true
# ansible-test installs pip into its venvs with a get-pip.py it downloads from an address that is not reachable
# here: our bootstrap installs the bundled pip instead (scripts/ansible_test_get_pip.py).
pip_version=$(grep -oP "pip='\K[0-9.]+" "$VENV"/lib/python3*/site-packages/ansible_test/_internal/python_requirements.py)
mkdir -p ~/.ansible/test/cache
cp "$ROOT/scripts/ansible_test_get_pip.py" ~/.ansible/test/cache/get_pip_${pip_version//./_}.py
cd "$DEST"
if [[ ${1:-} == --prime ]]; then
  shift
  exec "$VENV/bin/ansible-test" sanity --local --python "$PY" --prime-venvs "$@"
fi
exec "$VENV/bin/ansible-test" sanity --local --python "$PY" "$@"
