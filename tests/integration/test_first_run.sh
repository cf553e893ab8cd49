#!/usr/bin/env bash
# A first run, as a new user makes it: the repository cloned into a fresh
# folder only its owner may enter (as root: what /root is, mode 0700), then,
# from inside the clone, `scripts/hodei-stack up | status | down --purge`
# with the default state folder, and `scripts/demo` (what `make demo` runs
# after the build) showing its job's output. The binaries are the build
# under test (HODEI_BIN): building again in the clone would only take time,
# and no other user runs them. CTest sets HODEI_ROOT/HODEI_BIN.
set -euo pipefail
: "${HODEI_ROOT:?set HODEI_ROOT to the source tree}" "${HODEI_BIN:?set HODEI_BIN to the built binaries}"

HOME_DIR=$(mktemp -d /tmp/hodei-firstrun-XXXXXX)
CLONE=$HOME_DIR/hodei
S=$CLONE/scripts/hodei-stack

cleanup() {
  if [ -x "$S" ]; then "$S" down --purge --bin "$HODEI_BIN" >/dev/null 2>&1 || true; fi
  rm -rf "$HOME_DIR"
}
trap cleanup EXIT

step() { echo "--- $*"; }
fail() { echo "FAIL: $*" >&2; exit 1; }
envval() { sed -n "s/^$1=//p" "$CLONE/.hodei/env"; }

step "clone into a folder only $(id -un) may enter"
chmod 0700 "$HOME_DIR"
if git -C "$HODEI_ROOT" rev-parse --git-dir >/dev/null 2>&1; then
  git clone -q "$HODEI_ROOT" "$CLONE"
  # The tree under test: with what is not committed yet.
  git -C "$HODEI_ROOT" diff HEAD --binary | git -C "$CLONE" apply --allow-empty
else
  mkdir "$CLONE"
  tar -C "$HODEI_ROOT" -c --exclude='./build*' --exclude=./.hodei --exclude=node_modules . |
    tar -C "$CLONE" -x
fi
[ "$(stat -c '%a %U' "$HOME_DIR")" = "700 $(id -un)" ] || fail "$HOME_DIR: $(stat -c '%a %U' "$HOME_DIR")"
[ ! -e "$CLONE/.hodei" ] || fail "the clone has a state folder already"

step "hodei-stack up from inside the clone (default state folder)"
cd "$CLONE"
scripts/hodei-stack up --bin "$HODEI_BIN" || fail "up exited $?"
[ -f .hodei/env ] || fail "no .hodei/env in the clone"
scripts/hodei-stack status || fail "status exited $?"
PGD=$(envval HODEI_PG_DATA)
PG_PID=$(head -n 1 "$PGD/postmaster.pid")
NATS_PID=$(cat .hodei/nats.pid)
if [ "$(id -u)" -eq 0 ]; then
  [ "$(ps -o user= -p "$PG_PID")" = postgres ] || fail "postgres does not run as user postgres"
  case "$PGD" in "$HOME_DIR"/*) fail "PostgreSQL's data $PGD is where postgres cannot reach" ;; esac
  runuser -u postgres -- test -x "$HOME_DIR" && fail "postgres can enter $HOME_DIR: the test proves nothing"
fi
[ "$(psql -X -tA -d "$(envval HODEI_DATABASE_URL)" -c 'SELECT count(*) > 0 FROM schema_migrations')" = t ] ||
  fail "the schema is not migrated"
[ "$(stat -c %a "$HOME_DIR")" = 700 ] || fail "up changed $HOME_DIR to $(stat -c %a "$HOME_DIR")"

step "hodei-stack down keeps the data"
scripts/hodei-stack down || fail "down exited $?"
kill -0 "$PG_PID" 2>/dev/null && fail "postgres survived down"
kill -0 "$NATS_PID" 2>/dev/null && fail "nats-server survived down"
[ -f "$PGD/PG_VERSION" ] || fail "down removed the data"

step "scripts/demo (make demo) runs a job and shows its output"
rc=0
out=$(scripts/demo "$(dirname "$HODEI_BIN")" 2>demo.err) || rc=$?
echo "$out"
[ $rc -eq 0 ] || { tail -n 40 demo.err >&2; fail "demo exited $rc"; }
echo "$out" | grep -q '^hello from .*, job ' || fail "no greeting from the job"
echo "$out" | grep -q '^step 5$' || fail "the job's output is incomplete"
grep -q 'SUCCEEDED' demo.err || fail "hodei jobs does not list the job as SUCCEEDED"
for f in .hodei/workers/*.pid; do
  [ -e "$f" ] || continue
  read -r wpid _ <"$f"
  kill -0 "$wpid" 2>/dev/null && fail "worker $wpid outlived the demo"
done
rc=0; scripts/hodei-stack status >/dev/null || rc=$?
[ $rc -eq 3 ] || fail "the demo left the stack running (status $rc)"

step "hodei-stack down --purge removes everything it made"
scripts/hodei-stack down --purge || fail "down --purge exited $?"
[ ! -e .hodei ] || fail "purge left .hodei"
[ ! -e "$PGD" ] || fail "purge left $PGD"
if [ "$(id -u)" -eq 0 ]; then [ ! -e "$(dirname "$PGD")" ] || fail "purge left $(dirname "$PGD")"; fi

echo "first_run: all checks passed"
