#!/usr/bin/env bash
# `hodei dev` as a newcomer runs it: the repository cloned into a fresh
# folder only its owner may enter, `hodei dev` from the clone's build (here:
# the hodei binary of the build under test, beside the hodei-dev the build
# writes, pointing at the clone's script), in the foreground of its own
# process group as a terminal would run it. It must print the edge, the
# dashboard line and the API key line, run a job queued with `hodei run`,
# and on Ctrl-C (SIGINT to the whole group, as the terminal sends it) stop
# every process it started — daemons, workers, nats-server, PostgreSQL —
# and keep the data: a second run finds the first run's job, and its
# --purge deletes the state. CTest sets HODEI_ROOT/HODEI_BIN.
set -euo pipefail
: "${HODEI_ROOT:?set HODEI_ROOT to the source tree}" "${HODEI_BIN:?set HODEI_BIN to the built binaries}"

HOME_DIR=$(mktemp -d /tmp/hodei-dev-XXXXXX)
CLONE=$HOME_DIR/hodei
BIN=$CLONE/build/bin
OUT=$HOME_DIR/dev.out
DEV_PID=""

cleanup() {
  if [ -n "$DEV_PID" ] && kill -0 "$DEV_PID" 2>/dev/null; then
    kill -INT -- "-$DEV_PID" 2>/dev/null || true
    for _ in $(seq 1 300); do kill -0 "$DEV_PID" 2>/dev/null || break; sleep 0.1; done
  fi
  if [ -x "$CLONE/scripts/hodei-stack" ]; then
    "$CLONE/scripts/hodei-stack" down --purge --bin "$HODEI_BIN" >/dev/null 2>&1 || true
  fi
  rm -rf "$HOME_DIR"
}
trap cleanup EXIT

step() { echo "--- $*"; }
fail() {
  echo "FAIL: $*" >&2
  [ -f "$OUT" ] && { echo "--- hodei dev's output:" >&2; tail -n 40 "$OUT" >&2; }
  exit 1
}

step "clone into a folder only $(id -un) may enter"
chmod 0700 "$HOME_DIR"
if git -C "$HODEI_ROOT" rev-parse --git-dir >/dev/null 2>&1; then
  git clone -q "$HODEI_ROOT" "$CLONE"
  git -C "$HODEI_ROOT" diff HEAD --binary | git -C "$CLONE" apply --allow-empty
  # and what is new and not committed yet (the script itself, while it is written)
  git -C "$HODEI_ROOT" ls-files --others --exclude-standard -z scripts tests |
    (cd "$HODEI_ROOT" && xargs -0 -r cp --parents -t "$CLONE")
else
  mkdir "$CLONE"
  tar -C "$HODEI_ROOT" -c --exclude='./build*' --exclude=./.hodei --exclude=node_modules . |
    tar -C "$CLONE" -x
fi
# The clone's "build": the binary under test, and the hodei-dev the build
# writes beside it (cli/CMakeLists.txt), pointing at the clone's script.
mkdir -p "$BIN"
cp "$HODEI_BIN/hodei" "$BIN/hodei"
printf '#!/bin/sh\nexec "%s/scripts/hodei-dev" --bin "%s" "$@"\n' "$CLONE" "$HODEI_BIN" >"$BIN/hodei-dev"
chmod +x "$BIN/hodei-dev"
cd "$CLONE"

step "hodei dev refuses a bad argument and changes nothing"
rc=0; "$BIN/hodei" dev --warm 99 >/dev/null 2>"$HOME_DIR/err" || rc=$?
[ $rc -eq 2 ] || fail "--warm 99 exited $rc"
grep -q -- '--warm' "$HOME_DIR/err" || fail "the error does not name --warm: $(cat "$HOME_DIR/err")"
[ ! -e .hodei ] || fail "a refused start made .hodei"

# Starts hodei dev in its own process group (job control), as a terminal's
# foreground job, and waits for its "ready" line.
dev_start() {
  : >"$OUT"
  set -m
  "$BIN/hodei" dev --warm 1 "$@" >"$OUT" 2>&1 &
  DEV_PID=$!
  set +m
  for _ in $(seq 1 1800); do
    grep -q '^hodei-dev: ready' "$OUT" && return 0
    kill -0 "$DEV_PID" 2>/dev/null || fail "hodei dev exited before it was ready"
    sleep 0.1
  done
  fail "hodei dev was not ready within 180 s"
}

# Every process of the stack now: the dev group, the workers (their own
# sessions), nats-server and PostgreSQL (started detached by hodei-stack).
stack_pids() {
  local f p
  pgrep -g "$DEV_PID" || true
  for f in .hodei/workers/*.pid; do
    [ -e "$f" ] || continue
    read -r p _ <"$f" && echo "$p"
  done
  cat .hodei/nats.pid 2>/dev/null || true
  head -n 1 "$(sed -n 's/^HODEI_PG_DATA=//p' .hodei/env)/postmaster.pid" 2>/dev/null || true
}

# Ctrl-C: SIGINT to the whole foreground group; hodei dev must exit and
# leave none of the processes it started.
dev_interrupt() {
  local before p
  before=$(stack_pids | sort -u)
  [ "$(echo "$before" | wc -w)" -ge 8 ] || fail "expected at least 8 processes (5 daemons, a worker, NATS, PostgreSQL), found: $before"
  kill -INT -- "-$DEV_PID"
  for _ in $(seq 1 600); do kill -0 "$DEV_PID" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$DEV_PID" 2>/dev/null && fail "hodei dev still runs 60 s after Ctrl-C"
  rc=0; wait "$DEV_PID" || rc=$?
  [ $rc -eq 130 ] || fail "hodei dev exited $rc after Ctrl-C (want 130)"
  for p in $before; do
    if kill -0 "$p" 2>/dev/null; then
      fail "process $p ($(tr '\0' ' ' </proc/"$p"/cmdline 2>/dev/null)) outlived Ctrl-C"
    fi
  done
  # Nothing else that runs from this clone either.
  for p in /proc/[0-9]*; do
    p=${p#/proc/}
    [ "$p" = $$ ] && continue
    if tr '\0' '\n' 2>/dev/null <"/proc/$p/environ" | grep -qF "$CLONE/.hodei"; then
      fail "process $p ($(tr '\0' ' ' </proc/"$p"/cmdline 2>/dev/null)) from the stack outlived Ctrl-C"
    fi
  done
  grep -q 'stopped; nothing it started is left running' "$OUT" || fail "no closing line"
  DEV_PID=""
}

step "hodei dev starts the stack and prints where it answers"
dev_start
grep -q '^  edge (gRPC): *127\.0\.0\.1:[0-9]*$' "$OUT" || fail "no edge address"
grep -q '^  dashboard: ' "$OUT" || fail "no dashboard line"
grep -q '^  API key: ' "$OUT" || fail "no API key line"
EDGE=$(sed -n 's/^  edge (gRPC): *//p' "$OUT")
KEY=$(sed -n 's/^  API key: *\([^ ]*\)$/\1/p' "$OUT" | grep -v '^none' || true)
[ -d .hodei ] || fail "the state is not in the clone's .hodei"
cat "$OUT"

step "a job queued with hodei run runs on the warm pool"
export HODEI_SERVER=$EDGE
[ -n "$KEY" ] && export HODEI_API_KEY=$KEY
rc=0
out=$("$BIN/hodei" run -- sh -c 'echo hello from dev; exit 3') || rc=$?
[ $rc -eq 3 ] || fail "hodei run exited $rc (want the job's 3): $out"
echo "$out" | grep -qx 'hello from dev' || fail "hodei run printed: $out"
"$BIN/hodei" top --once >"$HOME_DIR/top" || fail "hodei top --once exited $?"
grep -q 'process' "$HOME_DIR/top" || fail "hodei top shows no process provider: $(cat "$HOME_DIR/top")"
PGD=$(sed -n 's/^HODEI_PG_DATA=//p' .hodei/env)

step "Ctrl-C stops everything it started and keeps the data"
dev_interrupt
[ -f "$PGD/PG_VERSION" ] || fail "the data is gone without --purge"
[ -d .hodei ] || fail ".hodei is gone without --purge"

step "a second run finds the first run's job; --purge deletes the state"
dev_start --purge
EDGE=$(sed -n 's/^  edge (gRPC): *//p' "$OUT")
HODEI_SERVER=$EDGE "$BIN/hodei" jobs --state FAILED >"$HOME_DIR/jobs" || fail "hodei jobs exited $?"
grep -q 'FAILED' "$HOME_DIR/jobs" || fail "the first run's job is not listed: $(cat "$HOME_DIR/jobs")"
dev_interrupt
[ ! -e .hodei ] || fail "--purge left .hodei"
[ ! -e "$PGD" ] || fail "--purge left $PGD"

echo "dev: all checks passed"
