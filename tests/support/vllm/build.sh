#!/usr/bin/env bash
# The vLLM argument parsers the rendered `vllm serve` lines are checked against (tests/vllm/test_serve_lines.py):
# one venv per vLLM version an image of a release profile ships, $LLMD_CACHE/vllm/<version>, with vLLM and only
# what its parser imports (requirements-<version>.txt, written by scripts/vllm_lock.py). Torch and its CUDA
# libraries - which torch loads on import even without a GPU - are one venv per torch version, hard-linked into
# each vLLM venv that pins it, so two vLLM versions on one torch cost its 5 GiB once. A platform plugin
# (llmd_vllm_cpu_platform.py) gives vLLM a platform on a machine without a GPU. Run by scripts/setup.sh, outside
# the cluster's namespace. Idempotent: a venv whose stamp matches is kept.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
DIR=${LLMD_CACHE:-/var/cache/llmd-wide-ep}/vllm
export PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1   # the wheels are gigabytes: not kept twice
PYTHON=${VLLM_PARSER_PYTHON:-python3.11}
mkdir -p "$DIR"

stamp_of() { cat "$@" | sha256sum | cut -c1-16; }

torch_venv() {  # torch_venv VERSION -> the venv of that torch and its CUDA libraries
  local req=$HERE/requirements-torch-$1.txt dir=$DIR/torch-$1 stamp
  stamp=$(stamp_of "$req")
  [[ $(cat "$dir/.stamp" 2>/dev/null) == "$stamp" ]] && return
  rm -rf "$dir" "$dir.tmp"
  "$PYTHON" -m venv "$dir.tmp"
  "$dir.tmp/bin/python" -m pip install -q --no-deps -r "$req"
  echo "$stamp" > "$dir.tmp/.stamp" && mv "$dir.tmp" "$dir"
}

vllm_venv() {  # vllm_venv VERSION
  local req=$HERE/requirements-$1.txt dir=$DIR/$1 torch stamp site t0=$SECONDS
  torch=$(sed -n 's/^# torch: requirements-torch-\(.*\)\.txt$/\1/p' "$req")
  stamp=$(stamp_of "$req" "$HERE/requirements-torch-$torch.txt" "$HERE/llmd_vllm_cpu_platform.py")
  if [[ $(cat "$dir/.stamp" 2>/dev/null) == "$stamp" ]]; then echo "vLLM $1: up to date"; return; fi
  torch_venv "$torch"
  rm -rf "$dir" "$dir.tmp"
  cp -al "$DIR/torch-$torch" "$dir.tmp" && rm -f "$dir.tmp/.stamp"
  "$dir.tmp/bin/python" -m pip install -q --no-deps -r "$req"
  site=$("$dir.tmp/bin/python" -c 'import sysconfig; print(sysconfig.get_path("purelib"))')
  cp "$HERE/llmd_vllm_cpu_platform.py" "$site/"
  mkdir -p "$site/llmd_vllm_cpu_platform-1.0.dist-info"
  printf 'Metadata-Version: 2.1\nName: llmd-vllm-cpu-platform\nVersion: 1.0\n' \
    > "$site/llmd_vllm_cpu_platform-1.0.dist-info/METADATA"
  printf '[vllm.platform_plugins]\nllmd_cpu = llmd_vllm_cpu_platform:platform\n' \
    > "$site/llmd_vllm_cpu_platform-1.0.dist-info/entry_points.txt"
  : > "$site/llmd_vllm_cpu_platform-1.0.dist-info/RECORD"
  HF_HUB_OFFLINE=1 VLLM_CONFIGURE_LOGGING=0 "$dir.tmp/bin/python" -c \
    'import vllm.engine.arg_utils, vllm.entrypoints.openai.cli_args, vllm.entrypoints.cli.serve' \
    || { echo "vLLM $1: the parser does not import (requirements-$1.txt misses a package?)" >&2; return 1; }
  echo "$stamp" > "$dir.tmp/.stamp" && mv "$dir.tmp" "$dir"
  echo "vLLM $1 (torch $torch): built in $((SECONDS - t0)) s"
}

versions=()
for req in "$HERE"/requirements-[0-9]*.txt; do v=${req##*/requirements-}; versions+=("${v%.txt}"); done
for v in "${versions[@]}"; do vllm_venv "$v"; done
# versions and torches no longer listed: gone
for dir in "$DIR"/*/; do
  name=$(basename "$dir")
  [[ -f $HERE/requirements-$name.txt ]] || rm -rf "$dir"   # <version> and torch-<version> alike
done
du -sh "$DIR" | sed 's/^/vLLM parsers: /'
