#!/usr/bin/env bash
# Idempotent: everything the deployment, the tests and (with --bench) the benchmarks need from outside, built here,
# outside the cluster's loopback-only network namespace, before anything runs inside it: Debian packages, the
# Python venv, the local cluster's binaries, the vLLM argument parsers, the node-prep test hosts' Debian tree,
# the inference-perf venv and its tokenizer. Nothing under `localcluster.py exec` downloads; a missing piece fails there naming the step below.
# Caches live under $LLMD_CACHE (default /var/cache/llmd-wide-ep) so later runs take seconds.
#   --fresh-cluster   wipe the local cluster's state before starting it (the test suite starts from empty)
#   --bench           also build the benchmarks' venv ($LLMD_CACHE/bench-venv)
#   --no-cluster      build only; do not start the local cluster
#   --kind            also build the kind scenario's binaries and images (molecule/kind; the test suite runs it)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CACHE=${LLMD_CACHE:-/var/cache/llmd-wide-ep}
export LLMD_CACHE=$CACHE PIP_CACHE_DIR=$CACHE/pip PIP_DISABLE_PIP_VERSION_CHECK=1
cd "$ROOT"
fresh=false bench=false cluster=true kind=false
for arg; do
  case $arg in
    --fresh-cluster) fresh=true ;; --bench) bench=true ;; --no-cluster) cluster=false ;; --kind) kind=true ;;
    *) echo "setup.sh: unknown option $arg (valid: --fresh-cluster --bench --no-cluster --kind)" >&2; exit 2 ;;
  esac
done
mkdir -p "$CACHE"
source scripts/steps.sh

# Debian packages: iproute2 (netns, tc), openssl (cluster PKI), curl (health probes), openssh-server and
# netcat-openbsd (the NIC mesh test fleet's sshd and its ProxyCommand), debootstrap and dpkg-dev (the node-prep
# test hosts' Debian trees and their stand-in package repository); for the kind scenario docker.io (dockerd,
# containerd, runc, iptables), jq (its runc wrapper), and libzmq3-dev and python3.11-dev (the endpoint picker's
# cgo libraries). Go and Rust (cargo) come with the machine image.
debian_packages() {
  local need=() pair pairs=(ip:iproute2 tc:iproute2 openssl:openssl curl:curl /usr/sbin/sshd:openssh-server
    nc:netcat-openbsd ssh-keygen:openssh-client debootstrap:debootstrap dpkg-scanpackages:dpkg-dev)
  if $kind; then
    pairs+=(dockerd:docker.io jq:jq /usr/include/zmq.h:libzmq3-dev /usr/include/python3.11/Python.h:python3.11-dev)
  fi
  for pair in "${pairs[@]}"; do
    [[ -e ${pair%%:*} ]] || command -v "${pair%%:*}" >/dev/null || need+=("${pair#*:}")
  done
  ((${#need[@]})) || { echo "all present"; return; }
  echo "installing ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
}
step "Debian packages" debian_packages
command -v go >/dev/null || { echo "[setup] Go (>= 1.26) is required to build the local cluster" >&2; exit 1; }

python_venv() {
  local stamp
  stamp=$(sha256sum requirements.txt requirements-dev.txt | sha256sum | cut -c1-16)
  if [[ -x .venv/bin/python && $(cat .venv/.stamp 2>/dev/null) == "$stamp" ]]; then echo "up to date"; return; fi
  python3 -m venv .venv
  .venv/bin/pip install -q -r requirements-dev.txt
  echo "$stamp" > .venv/.stamp
}
step ".venv from requirements-dev.txt" python_venv

# The vLLM argument parsers (tests/vllm): gigabytes of wheels, mostly waiting on the network, so they download and
# install in the background while the Go builds below use the CPUs; awaited after them.
mkdir -p "$CACHE/vllm" && rm -f "$CACHE/vllm/build.rc"
vllm_t0=$SECONDS
( rc=0; tests/support/vllm/build.sh > "$CACHE/vllm/build.log" 2>&1 || rc=$?; echo "$rc" > "$CACHE/vllm/build.rc" ) &

# The local cluster's binaries and upstream YAML: build.sh times and heartbeats each of its own steps.
tests/support/cluster/build.sh

# The kind scenario's binaries, images and node image (molecule/kind): its own build.sh, timed per part.
if $kind; then tests/support/kind/build.sh; fi

vllm_parsers() {  # step() runs this in a subshell: it polls for the background build's exit status
  until [[ -f $CACHE/vllm/build.rc ]]; do sleep 2; done
  cat "$CACHE/vllm/build.log"
  echo "(in the background since the Go builds began: $(elapsed "$vllm_t0") in all)"
  return "$(cat "$CACHE/vllm/build.rc")"
}
step "vLLM argument parsers ($CACHE/vllm, tests/support/vllm/build.sh)" vllm_parsers

# The node-prep test hosts (tests/support/fleet/prep_fleet.py) run sshd chrooted in a debootstrap tree: it needs Debian's
# mirror, so it is built here and never from inside the namespace. prep_fleet.py names the tree and its packages
# and checks the stamp (the package list) before the tests use it.
node_prep_tree() {
  local base include
  read -r base include < <(python3 tests/support/fleet/prep_fleet.py base-spec)
  if [[ -f $base/.llmd-stamp && $(cat "$base/.llmd-stamp") == "$include" ]]; then echo "$base: up to date"; return; fi
  echo "debootstrap bookworm ($include) into $base"
  mkdir -p "$(dirname "$base")" && rm -rf "$base.tmp"
  debootstrap --variant=minbase --include="$include" bookworm "$base.tmp" http://deb.debian.org/debian \
    > "$base.debootstrap.log" 2>&1 || { tail -20 "$base.debootstrap.log"; return 1; }
  chroot "$base.tmp" ssh-keygen -A
  chroot "$base.tmp" apt-get clean
  rm -rf "$base" && mv "$base.tmp" "$base"
  printf '%s' "$include" > "$base/.llmd-stamp"
}
step "node-prep test hosts' Debian tree ($CACHE/hosts/bookworm)" node_prep_tree

find_python() {  # find_python 3.12 -> a python of that minor version that runs (pyenv's shims answer without one)
  local c
  for c in "/root/.pyenv/versions/$1".*/bin/python"$1" "/usr/bin/python$1" "/usr/local/bin/python$1" \
           "$(command -v "python$1")"; do
    if [[ -x $c ]] && "$c" -c "import sys; assert sys.version_info[:2] == tuple(map(int, '$1'.split('.')))" 2>/dev/null
    then echo "$c"; return; fi
  done
  return 1
}

# The benchmark proof: inference-perf 0.7.0 needs Python >= 3.12, so it gets a venv of its own, and a tokenizer
# built here (no network for the real one). Without Python 3.12, setup records why and those tests skip saying so.
perf_venv() {
  local py312 stamp
  if ! py312=$(find_python 3.12); then
    mkdir -p "$CACHE/perf-venv"
    echo "no Python >= 3.12 on this machine (inference-perf 0.7.0 needs it)" | tee "$CACHE/perf-venv/.unavailable"
    return
  fi
  stamp=$(sha256sum tests/support/sim/requirements-perf.txt tests/support/sim/make_tokenizer.py | sha256sum | cut -c1-16)
  if [[ $(cat "$CACHE/perf-venv/.stamp" 2>/dev/null) == "$stamp" && -f $CACHE/perf-venv/sim-tokenizer/tokenizer.json ]]
  then echo "up to date"; return; fi
  rm -rf "$CACHE/perf-venv"
  "$py312" -m venv "$CACHE/perf-venv"
  "$CACHE/perf-venv/bin/pip" install -q -r tests/support/sim/requirements-perf.txt
  "$CACHE/perf-venv/bin/python" tests/support/sim/make_tokenizer.py "$CACHE/perf-venv/sim-tokenizer" 2>/dev/null
  echo "$stamp" > "$CACHE/perf-venv/.stamp"
}
step "inference-perf venv and test tokenizer ($CACHE/perf-venv)" perf_venv

# The test matrix: each leg a venv of its own under $CACHE/ansible-matrix/NAME (scripts/test.sh runs it):
#   oldest       every requirement of requirements.txt at its lower bound (ansible-core 2.18.0, kubernetes 32.0.1, ...)
#   pinned-V     requirements-dev.txt's pins with ansible-core V (the main .venv is the 2.19 pinned leg)
#   newest       requirements.txt as pip resolves it on the day, on the newest Python here: re-resolved once a
#                day, so a release published since yesterday is what it tests (the versions are printed)
MATRIX="oldest:3.11 pinned-2.20.10:3.12 newest:3.13"
matrix_venvs() {
  local entry name python py stamp dir reqs
  for entry in $MATRIX; do
    name=${entry%%:*} python=${entry#*:} dir=$CACHE/ansible-matrix/$name
    py=$(find_python "$python") || py=$(find_python 3.12) || { echo "no Python $python for leg $name" >&2; return 1; }
    case $name in
      pinned-*) reqs=$(.venv/bin/python scripts/matrix_requirements.py pinned "${name#pinned-}") ;;
      *) reqs=$(.venv/bin/python scripts/matrix_requirements.py "$name") ;;
    esac
    stamp=$(cat <(echo "$reqs") <(echo "$py") <([[ $name == newest ]] && date -u +%F) | sha256sum | cut -c1-16)
    if [[ $(cat "$dir/.stamp" 2>/dev/null) == "$stamp" ]]; then echo "$name: up to date ($(cat "$dir/.versions"))"; continue; fi
    rm -rf "$dir" && "$py" -m venv "$dir"
    echo "$reqs" > "$dir/requirements.txt"
    "$dir/bin/pip" install -q -r "$dir/requirements.txt"
    "$dir/bin/python" - > "$dir/.versions" <<'PY'
import platform
from importlib.metadata import version
print("Python %s, %s" % (platform.python_version(), ", ".join(
    "%s %s" % (name, version(name)) for name in ("ansible-core", "kubernetes", "packaging", "PyYAML",
                                                 "matplotlib", "urllib3"))))
PY
    echo "$stamp" > "$dir/.stamp"
    echo "$name: $(cat "$dir/.versions")"
  done
}

step "ansible-core matrix venvs ($CACHE/ansible-matrix: $MATRIX)" matrix_venvs

bench_venv() {
  local stamp
  stamp=$(sha256sum bench/requirements.txt | cut -c1-16)
  if [[ -x $CACHE/bench-venv/bin/ansible-playbook && $(cat "$CACHE/bench-venv/.stamp" 2>/dev/null) == "$stamp" ]]
  then echo "up to date"; return; fi
  rm -rf "$CACHE/bench-venv"
  python3 -m venv "$CACHE/bench-venv"
  "$CACHE/bench-venv/bin/pip" install -q -r bench/requirements.txt
  echo "$stamp" > "$CACHE/bench-venv/.stamp"
}
# kubernetes.core, for the tests that run it beside this collection (one module_defaults block for both) and
# for the benchmark's baseline: the collection as the `ansible` package pinned in bench/requirements.txt ships it.
kubernetes_core() {
  local pin dir=$CACHE/collections
  pin=$(grep -E '^ansible==' bench/requirements.txt)
  if [[ $(cat "$dir/.stamp" 2>/dev/null) == "$pin" ]]; then echo "up to date ($pin)"; return; fi
  rm -rf "$dir" "$CACHE/ansible-wheel"
  .venv/bin/pip download -q --no-deps -d "$CACHE/ansible-wheel" "$pin"
  .venv/bin/python - "$CACHE"/ansible-wheel/*.whl "$dir" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as wheel:
    wheel.extractall(sys.argv[2], [n for n in wheel.namelist() if n.startswith("ansible_collections/kubernetes/core/")])
PY
  rm -rf "$CACHE/ansible-wheel"
  echo "$pin" > "$dir/.stamp"
  echo "kubernetes.core $(grep -o '"version": "[^"]*"' "$dir/ansible_collections/kubernetes/core/MANIFEST.json" | head -1)"
}
step "kubernetes.core collection ($CACHE/collections)" kubernetes_core

# ansible-test sanity builds a venv per test from the package index: prime them here, so test.sh's run
# downloads nothing.
step "ansible-test sanity venvs (~/.ansible/test/venv)" scripts/sanity.sh --prime

if $bench; then step "benchmark venv ($CACHE/bench-venv, bench/requirements.txt)" bench_venv; fi

if $cluster; then
  if $fresh; then  # tests start from an empty cluster, not a previous run's
    step "wipe the local cluster" .venv/bin/python tests/support/cluster/localcluster.py wipe
  fi
  step "start the local cluster" .venv/bin/python tests/support/cluster/localcluster.py up
fi
echo "[setup] ready in $(elapsed "$SETUP_T0")"
