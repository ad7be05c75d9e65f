#!/usr/bin/env bash
# Idempotent: Python environment, local cluster binaries, running local cluster (--fresh-cluster: wiped first).
# Caches live under $LLMD_CACHE (default /var/cache/llmd-wide-ep) so later runs take seconds.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CACHE=${LLMD_CACHE:-/var/cache/llmd-wide-ep}
export PIP_CACHE_DIR=$CACHE/pip PIP_DISABLE_PIP_VERSION_CHECK=1
cd "$ROOT"

need=()
for tool in ip openssl curl go; do command -v "$tool" >/dev/null || need+=("$tool"); done
if ((${#need[@]})); then
  echo "[setup] installing ${need[*]} from Debian packages"
  apt-get update -qq
  pkgs=(); for t in "${need[@]}"; do case $t in ip) pkgs+=(iproute2);; go) pkgs+=(golang-go);; *) pkgs+=("$t");; esac; done
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${pkgs[@]}" >/dev/null
fi

stamp=$(sha256sum requirements.txt requirements-dev.txt | sha256sum | cut -c1-16)
if [[ ! -x .venv/bin/python || $(cat .venv/.stamp 2>/dev/null) != "$stamp" ]]; then
  echo "[setup] creating .venv from requirements-dev.txt"
  python3 -m venv .venv
  .venv/bin/pip install -q -r requirements-dev.txt
  echo "$stamp" > .venv/.stamp
fi

tests/cluster/build.sh
if [[ ${1:-} == --fresh-cluster ]]; then
  .venv/bin/python tests/cluster/localcluster.py wipe   # tests start from an empty cluster, not a previous run's
fi
.venv/bin/python tests/cluster/localcluster.py up
