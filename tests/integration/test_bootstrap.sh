#!/usr/bin/env bash
# scripts/bootstrap and the make verbs that call it: a build installs build
# dependencies only. A machine without PostgreSQL, nats-server or Node.js is
# played by a dpkg-query that calls those packages missing, and apt-get by one
# that records what it was asked to install; the commands run are the ones
# `make -n` prints for each verb. apt-cache then shows that the build set does
# not pull a server in by dependency either. CTest sets HODEI_ROOT.
set -euo pipefail
: "${HODEI_ROOT:?set HODEI_ROOT to the source tree}"

B=$HODEI_ROOT/scripts/bootstrap
FAKE=$(mktemp -d /tmp/hodei-bootstraptest-XXXXXX)
trap 'rm -rf "$FAKE"' EXIT

step() { echo "--- $*"; }
fail() { echo "FAIL: $*" >&2; exit 1; }
SERVERS='^(postgresql(-[0-9]+)?|nats-server|nodejs|npm)$'

# "A machine without PostgreSQL": the servers and Node.js are not installed.
mkdir "$FAKE/bin"
cat >"$FAKE/bin/dpkg-query" <<'EOF'
#!/bin/sh
pkg=$(eval echo "\${$#}")
case "$pkg" in
  postgresql|postgresql-[0-9]*|nats-server|nodejs|npm) exit 1 ;;
esac
exec /usr/bin/dpkg-query "$@"
EOF
cat >"$FAKE/bin/apt-get" <<EOF
#!/bin/sh
echo "\$*" >> "$FAKE/apt-get.log"
EOF
printf '#!/bin/sh\nexit 127\n' >"$FAKE/bin/node"   # no working Node.js on the PATH either
chmod +x "$FAKE/bin/"*

# Runs the bootstrap commands `make -n VERB` prints, on that machine; prints
# the packages apt-get was asked to install (as root) or bootstrap named as
# missing (as another user).
installs_for() {
  local verb=$1 cmds
  cmds=$(cd "$HODEI_ROOT" && make -n $verb | grep -E '^\./scripts/bootstrap( |$)') ||
    fail "make -n $verb runs no scripts/bootstrap"
  rm -f "$FAKE/apt-get.log"
  (
    cd "$HODEI_ROOT"
    export PATH="$FAKE/bin:$PATH"
    while read -r cmd; do
      eval "$cmd" 2>>"$FAKE/bootstrap.err" || true
    done <<<"$cmds"
  )
  if [ "$(id -u)" -eq 0 ]; then
    [ -f "$FAKE/apt-get.log" ] && grep '^install ' "$FAKE/apt-get.log" | tr ' ' '\n' | grep -v '^-' | grep -vx install || true
  else
    sed -n 's/^bootstrap: missing packages: //p' "$FAKE/bootstrap.err" | tr ' ' '\n'
    : >"$FAKE/bootstrap.err"
  fi
}

step "make (a build) installs no server and no Node.js"
got=$(installs_for "")
echo "${got:-(nothing)}"
echo "$got" | grep -qE "$SERVERS" && fail "a plain make installs: $(echo $got)"
got=$(installs_for build)
echo "$got" | grep -qE "$SERVERS" && fail "make build installs: $(echo $got)"

step "make demo and make bench install the servers; only make bench Node.js (its grpc-js client)"
for verb in demo bench; do
  got=$(installs_for $verb)
  for p in postgresql nats-server; do
    echo "$got" | grep -qx "$p" || fail "make $verb does not install $p (got: $(echo $got))"
  done
done
got=$(installs_for demo)
grep -qE '^(nodejs|npm)$' <<<"$got" && fail "make demo installs Node.js"
got=$(installs_for bench)
for p in nodejs npm; do
  grep -qx "$p" <<<"$got" || fail "make bench does not install $p (got: $(echo $got))"
done

step "make test installs the servers, Node.js and clang-format"
got=$(installs_for test)
for p in postgresql nats-server nodejs npm; do
  echo "$got" | grep -qx "$p" || fail "make test does not install $p (got: $(echo $got))"
done
"$B" --print test | grep -qx clang-format || fail "the test set lacks clang-format (scripts/lint needs it)"
"$B" --print test | grep -qx libcriterion-dev || fail "the test set lacks Criterion"

step "the build set pulls no server in by dependency"
# Packages the build set's packages depend on, recursively (no Recommends:
# bootstrap installs with --no-install-recommends).
closure=$(apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts --no-breaks \
            --no-replaces --no-enhances $("$B" --print build) 2>/dev/null | grep -v '^ ' | sort -u)
echo "$closure" | grep -qx libpq5 || fail "apt-cache gave no dependency closure (apt lists missing?)"
bad=$(echo "$closure" | grep -E "$SERVERS" || true)
[ -z "$bad" ] || fail "the build set depends on: $bad"

step "--dry-run and --print install nothing; bad usage is refused"
rm -f "$FAKE/apt-get.log"
(export PATH="$FAKE/bin:$PATH"; "$B" --dry-run test >"$FAKE/dry.out")
[ ! -e "$FAKE/apt-get.log" ] || fail "--dry-run ran apt-get"
grep -qx postgresql "$FAKE/dry.out" || fail "--dry-run does not name the missing postgresql"
[ "$("$B" --print)" = "$("$B" --print build)" ] || fail "no set is not the build set"
rc=0; "$B" frobnicate >/dev/null 2>&1 || rc=$?
[ $rc -eq 2 ] || fail "unknown set: exit $rc"
rc=0; out=$("$B" --bogus 2>&1) || rc=$?
[ $rc -eq 2 ] && echo "$out" | grep -q "unknown option '--bogus'" || fail "unknown option: exit $rc, $out"

echo "bootstrap: all checks passed"
