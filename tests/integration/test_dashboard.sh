#!/usr/bin/env bash
# The dashboard in a real browser: `hodei dev` (scripts/hodei-dev: private
# nats-server and PostgreSQL, every daemon, the process provider's warm
# pool) and Debian's chromium, headless, driven by tests/browser/dashboard.js
# (puppeteer-core, installed by scripts/test-deps). Screenshots of the jobs
# list, a job's page, workers, providers and metrics go to HODEI_TEST_OUT.
# CTest sets HODEI_ROOT/HODEI_BIN.
set -euo pipefail
: "${HODEI_ROOT:?set HODEI_ROOT to the source tree}" "${HODEI_BIN:?set HODEI_BIN to the built binaries}"

state=$(mktemp -d /tmp/hodei-dash-XXXXXX)
out=${HODEI_TEST_OUT:-$state/out}
DEV_PID=""
cleanup() {
  if [ -n "$DEV_PID" ] && kill -0 "$DEV_PID" 2>/dev/null; then
    kill -INT -- "-$DEV_PID" 2>/dev/null || true
    for _ in $(seq 1 300); do kill -0 "$DEV_PID" 2>/dev/null || break; sleep 0.1; done
  fi
  "$HODEI_ROOT/scripts/hodei-stack" down --purge --state-dir "$state/dev" >/dev/null 2>&1 || true
  rm -rf "$state"
}
trap cleanup EXIT
fail() {
  echo "FAIL: $*" >&2
  tail -n 30 "$state/dev.out" >&2 || true
  exit 1
}

[ -x /usr/bin/chromium ] || fail "chromium is not installed (scripts/bootstrap test)"
mods=$HODEI_ROOT/tests/browser/node_modules
[ -d "$mods/puppeteer-core" ] || "$HODEI_ROOT/scripts/test-deps" >/dev/null ||
  fail "puppeteer-core could not be installed (scripts/test-deps)"

set -m
"$HODEI_ROOT/scripts/hodei-dev" --bin "$HODEI_BIN" --state-dir "$state/dev" --warm 2 --purge \
  >"$state/dev.out" 2>&1 &
DEV_PID=$!
set +m
for _ in $(seq 1 1800); do
  grep -q '^hodei-dev: ready' "$state/dev.out" && break
  kill -0 "$DEV_PID" 2>/dev/null || fail "hodei dev exited before it was ready"
  sleep 0.1
done
grep -q '^hodei-dev: ready' "$state/dev.out" || fail "hodei dev was not ready within 180 s"
url=$(sed -n 's/^  dashboard: *\(http[^ ]*\).*$/\1/p' "$state/dev.out")
key=$(sed -n 's/^  API key: *\([^ ]*\)$/\1/p' "$state/dev.out")
[ -n "$url" ] || fail "no dashboard URL in hodei dev's output"
[ -n "$key" ] || fail "no API key in hodei dev's output"

node "$HODEI_ROOT/tests/browser/dashboard.js" "${url%/}/" "$key" "$out" ||
  { tail -n 20 "$state/dev/job-api.log" >&2 || true; fail "the dashboard in chromium"; }
for f in jobs job workers; do
  [ -s "$out/$f.png" ] || fail "no screenshot $out/$f.png"
done
echo "dashboard: screenshots in $out"
