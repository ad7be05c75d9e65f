#!/usr/bin/env bash
# Idempotent: Python environment, local cluster binaries, running local cluster (--fresh-cluster: wiped first).
# Caches live under $LLMD_CACHE (default /var/cache/llmd-wide-ep) so later runs take seconds.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CACHE=${LLMD_CACHE:-/var/cache/llmd-wide-ep}
export PIP_CACHE_DIR=$CACHE/pip PIP_DISABLE_PIP_VERSION_CHECK=1
cd "$ROOT"

# Debian packages: iproute2 (netns, tc), openssl (cluster PKI), curl (health probes), openssh-server and
# netcat-openbsd (the NIC mesh test fleet's sshd and its ProxyCommand), debootstrap and dpkg-dev (the node-prep
# test hosts' Debian trees and their stand-in package repository). Go comes with the machine image.
need=()
for pair in ip:iproute2 tc:iproute2 openssl:openssl curl:curl /usr/sbin/sshd:openssh-server nc:netcat-openbsd \
            ssh-keygen:openssh-client debootstrap:debootstrap dpkg-scanpackages:dpkg-dev; do
  command -v "${pair%%:*}" >/dev/null || need+=("${pair#*:}")
done
if ((${#need[@]})); then
  echo "[setup] installing ${need[*]} from Debian packages"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
command -v go >/dev/null || { echo "[setup] Go (>= 1.26) is required to build the local cluster" >&2; exit 1; }

stamp=$(sha256sum requirements.txt requirements-dev.txt | sha256sum | cut -c1-16)
if [[ ! -x .venv/bin/python || $(cat .venv/.stamp 2>/dev/null) != "$stamp" ]]; then
  echo "[setup] creating .venv from requirements-dev.txt"
  python3 -m venv .venv
  .venv/bin/pip install -q -r requirements-dev.txt
  echo "$stamp" > .venv/.stamp
fi

tests/cluster/build.sh

# The benchmark proof: inference-perf 0.7.0 needs Python >= 3.12, so it gets a venv of its own, and a tokenizer
# built here (no network for the real one). Without Python 3.12 those tests skip and say why.
py312=""
for c in /root/.pyenv/versions/3.12.*/bin/python3.12 /usr/bin/python3.12 /usr/local/bin/python3.12 python3.12; do
  if "$c" -c 'import sys; assert sys.version_info >= (3, 12)' 2>/dev/null; then py312=$c; break; fi  # not a shim
done
perf_stamp=$(sha256sum tests/sim/requirements-perf.txt tests/sim/make_tokenizer.py | sha256sum | cut -c1-16)
if [[ -n $py312 && ( $(cat "$CACHE/perf-venv/.stamp" 2>/dev/null) != "$perf_stamp" ||
                     ! -f $CACHE/perf-venv/sim-tokenizer/tokenizer.json ) ]]; then
  echo "[setup] creating $CACHE/perf-venv (inference-perf) with $py312"
  rm -rf "$CACHE/perf-venv"
  "$py312" -m venv "$CACHE/perf-venv"
  "$CACHE/perf-venv/bin/pip" install -q -r tests/sim/requirements-perf.txt
  "$CACHE/perf-venv/bin/python" tests/sim/make_tokenizer.py "$CACHE/perf-venv/sim-tokenizer" 2>/dev/null
  echo "$perf_stamp" > "$CACHE/perf-venv/.stamp"
elif [[ -z $py312 ]]; then
  echo "[setup] no python3.12: the inference-perf benchmark proof will be skipped" >&2
fi
if [[ ${1:-} == --fresh-cluster ]]; then
  .venv/bin/python tests/cluster/localcluster.py wipe   # tests start from an empty cluster, not a previous run's
fi
.venv/bin/python tests/cluster/localcluster.py up
