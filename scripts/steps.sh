# Progress for the long set-up (sourced by setup.sh and tests/support/cluster/build.sh): every step says what it builds,
# says every 30 s that it is still at it, and how long it took.
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
