#!/usr/bin/env bash
# scripts/hodei-stack driven as an operator would: up, env, status, a second
# up, stopping and starting each server, down keeping data, down --purge,
# bad usage, PostgreSQL's files where its user reaches them, a state folder
# deleted without down. Real nats-server and PostgreSQL; CTest sets
# HODEI_ROOT/HODEI_BIN.
set -euo pipefail
: "${HODEI_ROOT:?set HODEI_ROOT to the source tree}" "${HODEI_BIN:?set HODEI_BIN to the built binaries}"

S=$HODEI_ROOT/scripts/hodei-stack
DIR=$(mktemp -d /tmp/hodei-stacktest-XXXXXX)
DIR2=$(mktemp -d /tmp/hodei-stacktest-XXXXXX)
DIR3=$(mktemp -d /tmp/hodei-stacktest-XXXXXX)
DIR4=$(mktemp -d /tmp/hodei-stacktest-XXXXXX)

cleanup() {
  for d in "$DIR" "$DIR2" "$DIR3" "$DIR4"; do
    "$S" down --purge --state-dir "$d" >/dev/null 2>&1 || true
    rm -rf "$d"
  done
}
trap cleanup EXIT

step() { echo "--- $*"; }
fail() { echo "FAIL: $*" >&2; exit 1; }

# psql against the stack in DIR ($1), with the env file's URL.
sql() { (set -a; . "$1/env"; psql -X -q -tA -v ON_ERROR_STOP=1 -d "$HODEI_DATABASE_URL" -c "$2"); }
envval() { sed -n "s/^$2=//p" "$1/env"; }
nats_pid() { cat "$1/nats.pid"; }
pg_data() { envval "$1" HODEI_PG_DATA; }
pg_pid() { head -n 1 "$(pg_data "$1")/postmaster.pid"; }

# listeners on port $1 are all on 127.0.0.1
loopback_only() {
  local addrs
  addrs=$(ss -Htln "sport = :$1" | awk '{print $4}')
  [ -n "$addrs" ] || return 1
  ! echo "$addrs" | grep -qv '^127\.0\.0\.1:'
}

step "up"
"$S" up --state-dir "$DIR" --bin "$HODEI_BIN" || fail "up exited $?"
[ -f "$DIR/env" ] || fail "no env file"

step "env file is usable from a shell"
(
  set -a; . "$DIR/env"; set +a
  [ "$HODEI_STATE_DIR" = "$DIR" ] || fail "HODEI_STATE_DIR=$HODEI_STATE_DIR"
  [ "$HODEI_DATABASE_URL" = "postgresql://hodei@127.0.0.1:$HODEI_PG_PORT/hodei?passfile=$DIR/secrets/pgpass" ] ||
    fail "url $HODEI_DATABASE_URL"
  [ "$HODEI_NATS_USER" = hodei ] && [ "$HODEI_NATS_PASSWORD_FILE" = "$DIR/secrets/nats-password" ] ||
    fail "nats credentials $HODEI_NATS_USER $HODEI_NATS_PASSWORD_FILE"
  [ "$HODEI_NATS_URL" = "nats://127.0.0.1:$HODEI_NATS_PORT" ] || fail "nats url $HODEI_NATS_URL"
  [ "$(psql -X -tA -d "$HODEI_DATABASE_URL" -c 'SELECT current_user || current_database()')" = hodeihodei ] ||
    fail "cannot use the database as hodei"
  curl -sf "http://127.0.0.1:$HODEI_NATS_MONITOR_PORT/healthz?js-enabled-only=true" >/dev/null ||
    fail "nats JetStream not healthy"
  exec 3<>"/dev/tcp/127.0.0.1/$HODEI_NATS_PORT"
  read -r -t 5 line <&3
  case "$line" in INFO*'"jetstream":true'*) ;; *) fail "nats client port: $line" ;; esac
  case "$HODEI_API_KEY" in hodei_????????????????????????????????????????????????????????????????) ;;
    *) fail "no admin API key in the env file" ;; esac
  [ "$(psql -X -tA -d "$HODEI_DATABASE_URL" -c "SELECT count(*) FROM api_keys WHERE name = 'local-admin'
        AND 'admin' = ANY(scopes) AND revoked_at IS NULL AND key_hash = sha256('$HODEI_API_KEY'::bytea)")" = 1 ] ||
    fail "the env file's key is not the stack's active admin key"
)
[ "$(stat -c %a "$DIR/env")" = 600 ] || fail "the env file holds a key: mode $(stat -c %a "$DIR/env")"
[ "$("$S" env --state-dir "$DIR")" = "$(cat "$DIR/env")" ] || fail "env command differs from the file"

# One NATS client exchange on port $1: CONNECT with JSON $2, then PING; prints
# the server's first answer after its INFO line.
nats_try() {
  exec 3<>"/dev/tcp/127.0.0.1/$1"
  local line
  read -r -t 5 line <&3
  printf 'CONNECT %s\r\nPING\r\n' "$2" >&3
  read -r -t 5 line <&3
  exec 3<&-
  printf '%s' "${line%$'\r'}"
}

step "both servers require credentials; no secret is in the env file"
(
  set -a; . "$DIR/env"; set +a
  pw=$(cat "$HODEI_NATS_PASSWORD_FILE")
  [ ${#pw} -ge 32 ] || fail "nats password too short"
  case "$(nats_try "$HODEI_NATS_PORT" '{"verbose":false}')" in
    *"Authorization Violation"*) ;; *) fail "nats without credentials was not refused" ;; esac
  case "$(nats_try "$HODEI_NATS_PORT" '{"verbose":false,"user":"hodei","pass":"wrong"}')" in
    *"Authorization Violation"*) ;; *) fail "nats with a wrong password was not refused" ;; esac
  [ "$(nats_try "$HODEI_NATS_PORT" "{\"verbose\":false,\"user\":\"hodei\",\"pass\":\"$pw\"}")" = PONG ] ||
    fail "nats with the stack's credentials was refused"
  out=$(PGPASSFILE=/dev/null psql -X -w -tA -h 127.0.0.1 -p "$HODEI_PG_PORT" -U hodei -d hodei -c 'SELECT 1' 2>&1) &&
    fail "PostgreSQL over TCP without a password let us in"
  case "$out" in *"password"*) ;; *) fail "PostgreSQL refused for another reason: $out" ;; esac
  out=$(PGPASSWORD=wrong psql -X -w -tA -h 127.0.0.1 -p "$HODEI_PG_PORT" -U postgres -d postgres -c 'SELECT 1' 2>&1) &&
    fail "PostgreSQL over TCP as postgres with a wrong password let us in"
  case "$out" in *"password authentication failed"*) ;; *) fail "postgres refused for another reason: $out" ;; esac
  [ "$(psql -X -tA -d "$HODEI_DATABASE_URL" -c "SELECT string_agg(DISTINCT auth_method, ',')
        FROM pg_hba_file_rules WHERE type = 'host'")" = scram-sha-256 ] || fail "TCP rules are not all SCRAM"
  [ "$(psql -X -tA -d "$HODEI_DATABASE_URL" -c "SELECT rolpassword LIKE 'SCRAM-SHA-256\$%'
        FROM pg_authid WHERE rolname = 'hodei'")" = t ] || fail "hodei's password is not a SCRAM verifier"
  ! grep -qF "$pw" "$DIR/env" || fail "the env file holds the NATS password"
  ! grep -qF "$(cat "$DIR/secrets/db-password")" "$DIR/env" || fail "the env file holds the database password"
)
[ "$(stat -c %a "$DIR/secrets")" = 700 ] || fail "secrets folder mode $(stat -c %a "$DIR/secrets")"
for f in nats-password db-password pgpass; do
  [ "$(stat -c %a "$DIR/secrets/$f")" = 600 ] || fail "secrets/$f mode $(stat -c %a "$DIR/secrets/$f")"
done
[ "$(stat -c %a "$DIR/nats.conf")" = 600 ] || fail "nats.conf mode $(stat -c %a "$DIR/nats.conf")"

step "the schema is migrated and the settings hold"
[ "$(sql "$DIR" "SELECT count(*) FROM schema_migrations")" -ge 1 ] || fail "no migrations"
[ "$(sql "$DIR" "SELECT to_regclass('jobs') IS NOT NULL AND to_regclass('outbox') IS NOT NULL")" = t ] ||
  fail "jobs/outbox missing"
[ "$(sql "$DIR" "SHOW synchronous_commit")" = on ] || fail "synchronous_commit is not on"
[ "$(sql "$DIR" "SHOW fsync")" = on ] || fail "fsync is not on"
[ "$(sql "$DIR" "SHOW max_connections")" = 200 ] || fail "max_connections"
[ "$(sql "$DIR" "SHOW shared_buffers")" = 256MB ] || fail "shared_buffers"

step "servers listen on 127.0.0.1 only"
loopback_only "$(envval "$DIR" HODEI_PG_PORT)" || fail "postgres listens beyond loopback"
loopback_only "$(envval "$DIR" HODEI_NATS_PORT)" || fail "nats listens beyond loopback"
loopback_only "$(envval "$DIR" HODEI_NATS_MONITOR_PORT)" || fail "nats monitor listens beyond loopback"
if [ "$(id -u)" -eq 0 ]; then
  [ "$(ps -o user= -p "$(pg_pid "$DIR")")" = postgres ] || fail "postgres does not run as user postgres"
fi

step "PostgreSQL's files are where its user reaches them"
PGD=$(pg_data "$DIR")
[ -f "$PGD/PG_VERSION" ] || fail "HODEI_PG_DATA=$PGD holds no cluster"
[ "$(cat "$PGD/PG_VERSION")" = "$(basename "$(dirname "$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)")")" ] ||
  fail "the cluster is not of the newest installed PostgreSQL"
if [ "$(id -u)" -eq 0 ]; then
  # The state folder stays 0700 (mktemp's): postgres never enters it.
  [ "$(stat -c %a "$DIR")" = 700 ] || fail "state folder mode changed to $(stat -c %a "$DIR")"
  case "$PGD" in /var/lib/hodei/stacks/*/pg) ;; *) fail "as root, data in $PGD" ;; esac
  [ "$(stat -c %U "$(dirname "$PGD")")" = postgres ] || fail "$(dirname "$PGD") not owned by postgres"
  [ "$(cat "$(dirname "$PGD")/state-dir")" = "$DIR" ] || fail "no state-dir note in $(dirname "$PGD")"
  runuser -u postgres -- test -w "$PGD/postmaster.pid" || fail "postgres cannot reach its data"
else
  [ "$PGD" = "$DIR/pg" ] || fail "data in $PGD, not in the state folder"
fi

step "status tells the truth"
out=$("$S" status --state-dir "$DIR") || fail "status exited $? with both up"
echo "$out"
echo "$out" | grep -q "nats: *running.*127.0.0.1:$(envval "$DIR" HODEI_NATS_PORT)" || fail "status nats line"
echo "$out" | grep -q "postgres: *running.*127.0.0.1:$(envval "$DIR" HODEI_PG_PORT)" || fail "status postgres line"

step "a second up is harmless"
env_before=$(cat "$DIR/env"); npid=$(nats_pid "$DIR"); ppid=$(pg_pid "$DIR")
out=$("$S" up --state-dir "$DIR" --bin "$HODEI_BIN") || fail "second up exited $?"
echo "$out" | grep -qi "already running" || fail "second up: $out"
[ "$(cat "$DIR/env")" = "$env_before" ] || fail "second up changed the env file"
[ "$(nats_pid "$DIR")" = "$npid" ] && [ "$(pg_pid "$DIR")" = "$ppid" ] || fail "second up restarted a server"

step "pg-stop / pg-start keep data and port"
sql "$DIR" "INSERT INTO audit_log (actor, action, object_type, object_id) VALUES ('t', 'kept', 'x', '1')" >/dev/null
"$S" pg-stop --state-dir "$DIR"
rc=0; out=$("$S" status --state-dir "$DIR") || rc=$?
[ $rc -eq 3 ] || fail "status exit $rc with postgres down"
echo "$out" | grep -q "postgres: *stopped" || fail "status with postgres down: $out"
echo "$out" | grep -q "nats: *running" || fail "status with postgres down: $out"
"$S" pg-start --state-dir "$DIR"
[ "$(sql "$DIR" "SELECT count(*) FROM audit_log WHERE action = 'kept'")" = 1 ] || fail "row lost across pg restart"
[ "$(sql "$DIR" "SHOW port")" = "$(envval "$DIR" HODEI_PG_PORT)" ] || fail "postgres came back on another port"

step "nats-stop / nats-start keep the ports"
"$S" nats-stop --state-dir "$DIR"
rc=0; out=$("$S" status --state-dir "$DIR") || rc=$?
[ $rc -eq 3 ] || fail "status exit $rc with nats down"
echo "$out" | grep -q "nats: *stopped" || fail "status with nats down: $out"
kill -0 "$npid" 2>/dev/null && fail "nats-server still running after nats-stop"
"$S" nats-start --state-dir "$DIR"
curl -sf "http://127.0.0.1:$(envval "$DIR" HODEI_NATS_MONITOR_PORT)/healthz?js-enabled-only=true" >/dev/null ||
  fail "nats not back on its monitor port"
"$S" status --state-dir "$DIR" >/dev/null || fail "status not 0 after restarts"

step "down keeps data; up brings it back"
npid=$(nats_pid "$DIR"); ppid=$(pg_pid "$DIR")
"$S" down --state-dir "$DIR"
kill -0 "$npid" 2>/dev/null && fail "nats-server survived down"
kill -0 "$ppid" 2>/dev/null && fail "postgres survived down"
rc=0; "$S" status --state-dir "$DIR" >/dev/null || rc=$?
[ $rc -eq 3 ] || fail "status exit $rc after down"
[ -d "$PGD" ] || fail "down removed the data"
"$S" up --state-dir "$DIR" --bin "$HODEI_BIN" >/dev/null || fail "up after down exited $?"
[ "$(sql "$DIR" "SELECT count(*) FROM audit_log WHERE action = 'kept'")" = 1 ] || fail "row lost across down/up"
[ "$(sql "$DIR" "SELECT count(*) FROM api_keys")" = 1 ] || fail "up after down made another key"

step "two stacks side by side get distinct ports"
"$S" up --state-dir "$DIR2" --bin "$HODEI_BIN" >/dev/null || fail "second stack up"
p1="$(envval "$DIR" HODEI_PG_PORT) $(envval "$DIR" HODEI_NATS_PORT) $(envval "$DIR" HODEI_NATS_MONITOR_PORT)"
p2="$(envval "$DIR2" HODEI_PG_PORT) $(envval "$DIR2" HODEI_NATS_PORT) $(envval "$DIR2" HODEI_NATS_MONITOR_PORT)"
[ "$(echo $p1 $p2 | tr ' ' '\n' | sort -u | wc -l)" = 6 ] || fail "ports shared: $p1 / $p2"
[ "$(sql "$DIR2" "SELECT count(*) FROM audit_log WHERE action = 'kept'")" = 0 ] || fail "stacks share data"

step "down --purge removes everything"
npid=$(nats_pid "$DIR"); ppid=$(pg_pid "$DIR")
"$S" down --purge --state-dir "$DIR"
[ -e "$DIR" ] && fail "purge left $DIR"
[ -e "$(dirname "$PGD")" ] && fail "purge left $(dirname "$PGD")"
kill -0 "$npid" 2>/dev/null && fail "nats-server survived down --purge"
kill -0 "$ppid" 2>/dev/null && fail "postgres survived down --purge"
rc=0; "$S" status --state-dir "$DIR" >/dev/null || rc=$?
[ $rc -eq 3 ] || fail "status exit $rc with no stack"
"$S" down --state-dir "$DIR" >/dev/null || fail "down of nothing is not harmless"

if [ "$(id -u)" -eq 0 ]; then   # (as another user the data goes with the folder)
step "a state folder deleted without down: the next up starts afresh, down --purge cleans"
"$S" up --state-dir "$DIR4" --bin "$HODEI_BIN" >/dev/null || fail "up in $DIR4"
sql "$DIR4" "INSERT INTO audit_log (actor, action, object_type, object_id) VALUES ('t', 'old', 'x', '1')" >/dev/null
ppid=$(pg_pid "$DIR4"); npid=$(nats_pid "$DIR4"); PGD4=$(pg_data "$DIR4")
rm -rf "$DIR4"; mkdir -m 0700 "$DIR4"
"$S" up --state-dir "$DIR4" --bin "$HODEI_BIN" >/dev/null || fail "up after the folder was deleted"
kill -0 "$ppid" 2>/dev/null && fail "the old postgres still runs"
kill -0 "$npid" 2>/dev/null && fail "the old nats-server still runs"
[ "$(sql "$DIR4" "SELECT count(*) FROM audit_log WHERE action = 'old'")" = 0 ] || fail "the new stack has the old one's data"
ppid=$(pg_pid "$DIR4"); npid=$(nats_pid "$DIR4")
rm -rf "$DIR4"
"$S" down --purge --state-dir "$DIR4" >/dev/null || fail "down --purge of a deleted folder"
kill -0 "$ppid" 2>/dev/null && fail "postgres survived down --purge of a deleted folder"
kill -0 "$npid" 2>/dev/null && fail "nats-server survived down --purge of a deleted folder"
[ -e "$(dirname "$PGD4")" ] && fail "down --purge left $PGD4"
fi

step "clear refusals"
rc=0; "$S" frobnicate >/dev/null 2>&1 || rc=$?
[ $rc -eq 2 ] || fail "bad command exit $rc"
"$S" --help | grep -q "nats-start" || fail "--help"
rc=0; out=$("$S" up --state-dir "$DIR3" --bin /nonexistent 2>&1) || rc=$?
[ $rc -eq 1 ] || fail "up without hodei-migrate exit $rc"
echo "$out" | grep -q "/nonexistent/hodei-migrate not found" || fail "unclear message: $out"
[ ! -e "$DIR3/pg" ] || fail "up without hodei-migrate started something"
echo keep > "$DIR3/precious"
rc=0; out=$("$S" up --state-dir "$DIR3" --bin "$HODEI_BIN" 2>&1) || rc=$?
[ $rc -eq 1 ] || fail "up in a foreign folder exit $rc"
rc=0; "$S" down --purge --state-dir "$DIR3" >/dev/null 2>&1 || rc=$?
[ -f "$DIR3/precious" ] || fail "down --purge deleted a folder that is not a stack"
rc=0; out=$(HODEI_STACK_PG_BIN=/nonexistent "$S" up --state-dir "$DIR4" --bin "$HODEI_BIN" 2>&1) || rc=$?
[ $rc -eq 1 ] || fail "up with a bad HODEI_STACK_PG_BIN exit $rc"
echo "$out" | grep -q "HODEI_STACK_PG_BIN=/nonexistent holds no initdb" || fail "unclear message: $out"
"$S" down --purge --state-dir "$DIR4" >/dev/null

echo "stack: all checks passed"
