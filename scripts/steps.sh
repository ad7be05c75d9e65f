# What the set-up scripts share (sourced by setup.sh, tests/support/cluster/build.sh, tests/support/kind/build.sh):
# progress for the long set-up (every step says what it builds, says every 30 s that it is still at it, and how
# long it took), and the pinned Go builds.
SETUP_T0=${SETUP_T0:-$SECONDS}

elapsed() {  # elapsed START_SECONDS -> "3m07s"
  local s=$((SECONDS - $1))
  if ((s >= 60)); then printf '%dm%02ds' $((s / 60)) $((s % 60)); else printf '%ds' "$s"; fi
}

# step "WHAT" COMMAND... : runs COMMAND (a function or a program) with its output indented and a heartbeat while
# it runs; stops the script if it fails. The command runs as a background job so that `set -e` holds inside it.
step() {
  local what=$1 t0=$SECONDS beat pid rc=0 tag=${STEP_TAG:-setup}; shift
  echo "[$tag] $what ..."
  ( while sleep 30; do echo "[$tag]   ... still at: $what ($(elapsed "$t0"))"; done ) &
  beat=$!
  ( "$@" 2>&1 | sed -u "s/^/[$tag]   /" ) &
  pid=$!
  wait "$pid" || rc=$?
  kill "$beat" 2>/dev/null; wait "$beat" 2>/dev/null || true
  if ((rc)); then echo "[$tag] FAILED: $what (exit $rc after $(elapsed "$t0"))" >&2; exit "$rc"; fi
  echo "[$tag] $what: done in $(elapsed "$t0")"
}

# pinned_go_build STAMP MODULE_DIR OUTPUT "LDFLAGS" PACKAGE... : go build in MODULE_DIR, whose go.mod and go.sum pin
# every dependency, into OUTPUT (a directory ending in / or a file). Skipped while the file STAMP holds the hash of
# what shapes the build: go.mod, go.sum, the *.go beside them, the flags, cgo's flags and the Go version.
pinned_go_build() {
  local stamp=$1 dir=$2 out=$3 ldflags=$4 hash; shift 4
  hash=$({ cat "$dir/go.mod" "$dir/go.sum"; find "$dir" -maxdepth 1 -name '*.go' -print0 | sort -z | xargs -0r cat
           echo "$ldflags $out $* ${CGO_ENABLED:-} ${CGO_CFLAGS:-} ${CGO_LDFLAGS:-} $(go version)"; } | sha256sum | cut -c1-16)
  if [[ -f $stamp && $(cat "$stamp") == "$hash" ]]; then echo "up to date"; return; fi
  (cd "$dir" && go build -p "$(nproc)" -trimpath -ldflags "$ldflags" -o "$out" "$@" 2>&1 \
    | awk '/^go: downloading/ {n++; next} {print} END {if (n) print "downloaded " n " modules"}')
  mkdir -p "$(dirname "$stamp")" && echo "$hash" > "$stamp"
}

# kube_ldflags VERSION : the -X flags that make Kubernetes binaries report vVERSION.
kube_ldflags() {
  local flags="-s -w" minor=${1#*.} pkg
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    flags+=" -X $pkg.gitVersion=v$1 -X $pkg.gitMajor=${1%%.*} -X $pkg.gitMinor=${minor%%.*} -X $pkg.gitTreeState=clean"
  done
  echo "$flags"
}
