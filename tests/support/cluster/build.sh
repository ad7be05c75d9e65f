#!/usr/bin/env bash
# Builds the local cluster's binaries from pinned Go modules and extracts the upstream YAML it needs
# (CRDs, kwok stages, LWS webhooks, the inferencepool chart). Everything lands under $LLMD_CACHE, outside
# the repository; a component is rebuilt only when its go.mod/go.sum or build flags change.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/versions.env"
CACHE=${LLMD_CACHE:-/var/cache/llmd-wide-ep}
BIN=$CACHE/bin
DATA=$CACHE/data
export GOMODCACHE=$CACHE/gomod GOCACHE=$CACHE/gocache GOFLAGS=-modcacherw GOTOOLCHAIN=local CGO_ENABLED=0
mkdir -p "$BIN" "$DATA" "$CACHE/stamps"
STEP_TAG=build
source "$HERE/../../../scripts/steps.sh"

log() { printf '[build] %s\n' "$*"; }

# build NAME "LDFLAGS" OUTPUT PACKAGE... : the module pinned under gomod/NAME. go prints only its downloads, then
# nothing for minutes: step() says every 30 s what is still building.
build() {
  local name=$1 ldflags=$2 out=$3; shift 3
  step "$name: go build $*" pinned_go_build "$CACHE/stamps/$name" "$HERE/gomod/$name" "$out" "$ldflags" "$@"
}

build k8s "$(kube_ldflags "$KUBE_VERSION")" "$BIN/" k8s.io/kubernetes/cmd/kube-apiserver \
  k8s.io/kubernetes/cmd/kube-controller-manager k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubectl
build etcd "-s -w" "$BIN/etcd" go.etcd.io/etcd/server/v3
build kwok "-s -w" "$BIN/kwok" sigs.k8s.io/kwok/cmd/kwok
build lws "-s -w -X sigs.k8s.io/lws/pkg/version.GitVersion=v$LWS_VERSION" "$BIN/lws-manager" sigs.k8s.io/lws/cmd
# the releases an LWS upgrade moves to (tests/integration/test_32_lws_upgrade_kind.py): module gomod/lwsXY0
for v in $LWS_UPGRADE_VERSIONS; do
  build "lws${v//./}" "-s -w -X sigs.k8s.io/lws/pkg/version.GitVersion=v$v" "$BIN/lws-manager-$v" sigs.k8s.io/lws/cmd
done
build helm "-s -w -X helm.sh/helm/v3/internal/version.version=v$HELM_VERSION" "$BIN/helm" helm.sh/helm/v3/cmd/helm
# helm 4 beside it: the tests that install charts run on both (tests/integration/test_23_helm4.py).
build helm4 "-s -w -X helm.sh/helm/v4/internal/version.version=v$HELM4_VERSION" "$BIN/helm4" helm.sh/helm/v4/cmd/helm
# The model-server stand-in of the smoke and benchmark proofs (pure Go, like its upstream image).
build sim "-s -w" "$BIN/llm-d-inference-sim" github.com/llm-d/llm-d-inference-sim/cmd/llm-d-inference-sim

# --- upstream YAML, copied out of the (read-only) module cache -------------------------------------
moddir() { (cd "$HERE/gomod/$1" && go mod download -json "$2" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])'); }
fetch_data() {
  local stamp="layout-10 $KWOK_VERSION $LWS_VERSION $LWS_UPGRADE_VERSIONS $GATEWAY_API_VERSION $GAIE_VERSION"
  stamp+=" $GAIE_V080_VERSION $ISTIO_VERSION $GATEWAY_API_V090_VERSION"
  if [[ -f $DATA/.stamp && $(cat "$DATA/.stamp") == "$stamp" ]]; then echo "up to date"; return; fi
  rm -rf "$DATA" && mkdir -p "$DATA"/{kwok,lws,gateway-api,gateway-api-v$GATEWAY_API_V090_VERSION,gaie}
  mkdir -p "$DATA"/{gaie-v$GAIE_V080_VERSION,istio/crds}
  local kwok lws v lws_next gw gw090 gaie gaie080 istio
  kwok=$(moddir kwok "sigs.k8s.io/kwok@v$KWOK_VERSION")
  lws=$(moddir lws "sigs.k8s.io/lws@v$LWS_VERSION")
  gw=$(moddir data "sigs.k8s.io/gateway-api@v$GATEWAY_API_VERSION")
  gw090=$(moddir gwapi151 "sigs.k8s.io/gateway-api@v$GATEWAY_API_V090_VERSION")
  gaie=$(moddir data "sigs.k8s.io/gateway-api-inference-extension@v$GAIE_VERSION")
  gaie080=$(moddir data "sigs.k8s.io/gateway-api-inference-extension@v$GAIE_V080_VERSION")
  istio=$(moddir data "istio.io/api@v$ISTIO_VERSION")
  cp "$kwok"/kustomize/stage/node/fast/node-initialize.yaml \
     "$kwok"/kustomize/stage/node/heartbeat-with-lease/node-heartbeat-with-lease.yaml \
     "$kwok"/kustomize/stage/pod/fast/{pod-ready,pod-complete,pod-delete}.yaml "$DATA/kwok/"
  # Pods of the fault-injection images (registry.invalid/never-ready|slow-ready, tests/support/cluster/kwok) get their
  # own stages.
  python3 - "$DATA/kwok/pod-ready.yaml" <<'PY'
import sys
path = sys.argv[1]
text = open(path).read()
anchor = "    matchExpressions:\n"
extra = "".join(
    "    - key: '.spec.containers.[] | select( .image | startswith(\"registry.invalid/%s\") ) | .name'\n"
    "      operator: 'DoesNotExist'\n" % fault for fault in ("never-ready", "slow-ready"))
assert anchor in text, "kwok's pod-ready stage changed shape"
open(path, "w").write(text.replace(anchor, anchor + extra, 1))
PY
  cp "$lws"/config/crd/bases/*.yaml "$lws"/config/webhook/{manifests,mutating-patch,validating-patch}.yaml "$DATA/lws/"
  cp -r "$lws"/charts/lws "$DATA/lws/chart"
  for v in $LWS_UPGRADE_VERSIONS; do
    lws_next=$(moddir "lws${v//./}" "sigs.k8s.io/lws@v$v")
    cp -r "$lws_next"/charts/lws "$DATA/lws/chart-$v"
  done
  cp -r "$gw"/config/crd/standard "$gw"/config/crd/experimental "$DATA/gateway-api/"
  cp -r "$gw090"/config/crd/standard "$DATA/gateway-api-v$GATEWAY_API_V090_VERSION/"
  cp -r "$gaie"/config/crd/bases "$DATA/gaie/crds"
  cp -r "$gaie080"/config/crd/bases "$DATA/gaie-v$GAIE_V080_VERSION/crds"
  cp -r "$gaie"/config/charts/inferencepool "$DATA/gaie/inferencepool"
  # Istio's CRDs (what the istio-base chart installs), so the chart's DestinationRule has a home on the local
  # cluster, where no Istio control plane runs.
  cp "$istio"/kubernetes/customresourcedefinitions.gen.yaml "$DATA/istio/crds/istio-crds.yaml"
  chmod -R u+w "$DATA"
  # Package the chart with the version the guide installs, so `helm list` reads inferencepool-vX.
  "$BIN/helm" package "$DATA/gaie/inferencepool" --version "v$GAIE_VERSION" --app-version "v$GAIE_VERSION" \
    -d "$DATA/gaie" >/dev/null
  "$BIN/helm" package "$DATA/lws/chart" --version "$LWS_VERSION" --app-version "v$LWS_VERSION" -d "$DATA/lws" >/dev/null
  for v in $LWS_UPGRADE_VERSIONS; do
    "$BIN/helm" package "$DATA/lws/chart-$v" --version "$v" --app-version "v$v" -d "$DATA/lws" >/dev/null
  done
  echo "$stamp" > "$DATA/.stamp"
  echo "extracted to $DATA"
}
step "upstream YAML: CRDs, kwok stages, LWS webhooks and chart, inferencepool chart" fetch_data
log "done: $(ls "$BIN" | tr '\n' ' ')"
