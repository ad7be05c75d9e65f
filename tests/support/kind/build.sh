#!/usr/bin/env bash
# Builds what the kind scenario (molecule/kind) runs, from pinned sources, into $LLMD_CACHE/kind: kind itself,
# the node's kubelet/kubeadm and kube-proxy, CoreDNS, pause, the registry, the llm-d endpoint picker and routing
# sidecar, the ext_proc test client; the node's Debian tree; then the images (kindcluster.py images). Each part
# is rebuilt only when its pins change. Needs Debian's docker.io, containerd, runc, jq,
# libzmq3-dev and python3.11-dev, and cargo.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
CACHE=${LLMD_CACHE:-/var/cache/llmd-wide-ep}
KIND=$CACHE/kind
export PATH=$PATH:$HOME/.cargo/bin   # rustup's cargo, where the machine image puts it
export GOMODCACHE=$CACHE/gomod GOCACHE=$CACHE/gocache GOFLAGS=-modcacherw GOTOOLCHAIN=local CGO_ENABLED=0
mkdir -p "$KIND/bin" "$KIND/stamps" "$CACHE/build"
STEP_TAG=kind
source "$HERE/../../../scripts/steps.sh"

KIND_VERSION=0.33.0
KUBE_VERSION=1.36.3
TOKENIZERS_VERSION=1.22.1       # daulet/tokenizers, as the endpoint picker's go.sum pins it
# The node's Debian packages: what kind's base image installs, with Debian's containerd, runc and CNI plugins.
NODE_PACKAGES=systemd,systemd-sysv,dbus,conntrack,iptables,nftables,iproute2,ethtool,util-linux,mount,kmod,libseccomp2,pigz,ca-certificates,curl,jq,procps,containerd,runc,containernetworking-plugins,socat,ebtables,findutils

# A part is rebuilt when the hash of its inputs (files and the words that shape the build) changes.
inputs_hash() { { cat "${@:2}"; echo "$1"; } | sha256sum | cut -c1-16; }
up_to_date() { [[ -f $KIND/stamps/$1.build && $(cat "$KIND/stamps/$1.build") == "$2" ]]; }

# gobuild NAME DIR "LDFLAGS" PACKAGE... : the module pinned in DIR (under this directory) into $KIND/bin.
gobuild() {
  local name=$1 dir=$HERE/$2 ldflags=$3; shift 3
  pinned_go_build "$KIND/stamps/$name.build" "$dir" "$KIND/bin/" "$ldflags" "$@"
}
kube_ld=$(kube_ldflags "$KUBE_VERSION")

step "kind v$KIND_VERSION" gobuild kind gomod/kind "-s -w" sigs.k8s.io/kind
step "kubelet, kubeadm, kube-proxy v$KUBE_VERSION" gobuild node gomod/node "$kube_ld" \
  k8s.io/kubernetes/cmd/kubelet k8s.io/kubernetes/cmd/kubeadm k8s.io/kubernetes/cmd/kube-proxy
step "CoreDNS" gobuild coredns gomod/coredns "-s -w" github.com/coredns/coredns
step "registry (distribution)" gobuild registry gomod/registry "-s -w" github.com/distribution/distribution/v3/cmd/registry
step "routing sidecar (pd-sidecar)" gobuild pd-sidecar gomod/epp "-s -w" \
  github.com/llm-d/llm-d-inference-scheduler/cmd/pd-sidecar
step "ext_proc test client" gobuild extproc extproc "-s -w" .

# The endpoint picker links the Hugging Face tokenizers through cgo: its static library is built with cargo
# from the same module source the Go build uses (crates from crates.io, pinned by its Cargo.lock).
tokenizers() {
  local src=$GOMODCACHE/github.com/daulet/tokenizers@v$TOKENIZERS_VERSION build=$CACHE/build/tokenizers
  [[ -d $src ]] || (cd "$HERE/gomod/epp" && go mod download "github.com/daulet/tokenizers@v$TOKENIZERS_VERSION")
  if [[ -f $build/target/release/libtokenizers.a && $(cat "$build/.llmd-version" 2>/dev/null) == "$TOKENIZERS_VERSION" ]]; then
    echo "up to date"; return
  fi
  rm -rf "$build" && cp -r "$src" "$build" && chmod -R u+w "$build"
  (cd "$build" && CARGO_HOME=$CACHE/cargo cargo build --release --locked --lib -j "$(nproc)" 2>&1 | grep -v "^ *Compiling" || true)
  [[ -f $build/target/release/libtokenizers.a ]]
  echo "$TOKENIZERS_VERSION" > "$build/.llmd-version"
}
step "tokenizers static library v$TOKENIZERS_VERSION (cargo)" tokenizers
# ... and embeds CPython for its chat-template preprocessing (llm-d-kv-cache-manager): Debian's 3.11, whose
# shared library the image carries.
CGO_ENABLED=1 CGO_CFLAGS="$(/usr/bin/python3.11-config --includes)" \
  CGO_LDFLAGS="$(/usr/bin/python3.11-config --ldflags --embed) -L$CACHE/build/tokenizers/target/release" \
  step "endpoint picker (epp, cgo)" gobuild epp gomod/epp "-s -w" github.com/llm-d/llm-d-inference-scheduler/cmd/epp

pause() {
  local src=$GOMODCACHE/k8s.io/kubernetes@v$KUBE_VERSION/build/pause/linux/pause.c hash
  hash=$(inputs_hash "gcc -Os -static" "$src")
  if up_to_date pause "$hash"; then echo "up to date"; return; fi
  gcc -Os -static -DVERSION=v3.10.2 -o "$KIND/bin/pause" "$src"
  echo "$hash" > "$KIND/stamps/pause.build"
}
step "pause (static, from the Kubernetes module's source)" pause

node_rootfs() {
  local base=$KIND/rootfs
  if [[ -f $base/.llmd-stamp && $(cat "$base/.llmd-stamp") == "$NODE_PACKAGES" ]]; then echo "up to date"; return; fi
  rm -rf "$base.tmp"
  debootstrap --variant=minbase --include="$NODE_PACKAGES" bookworm "$base.tmp" http://deb.debian.org/debian \
    > "$KIND/debootstrap.log" 2>&1 || { tail -20 "$KIND/debootstrap.log"; return 1; }
  chroot "$base.tmp" apt-get clean
  rm -rf "$base" && mv "$base.tmp" "$base"
  printf '%s' "$NODE_PACKAGES" > "$base/.llmd-stamp"
}
step "kind node's Debian tree ($KIND/rootfs)" node_rootfs

step "images: node, control plane, workloads (dockerd in netns llmd-kind)" \
  "$HERE/../../../.venv/bin/python" "$HERE/kindcluster.py" images
