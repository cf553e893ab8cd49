#!/usr/bin/env bash
# The edge's REST/JSON door with curl, as a user of its OpenAPI document
# (GET /v1/openapi.json) would: every resource answers, a bad request gets
# the gRPC door's own message naming the field, errors carry the HTTP status
# of their gRPC code, a log followed over Server-Sent Events gives every line
# once, jobs filter by label, metrics count the jobs run, and the document
# lists every route. Real nats-server, PostgreSQL and daemons (the process
# provider runs the jobs). CTest sets HODEI_ROOT/HODEI_BIN.
set -euo pipefail
: "${HODEI_ROOT:?set HODEI_ROOT to the source tree}" "${HODEI_BIN:?set HODEI_BIN to the built binaries}"

state=$(mktemp -d /tmp/hodei-rest-XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  for f in "$state"/workers/*.pid; do
    [ -e "$f" ] || continue
    read -r wpid _ < "$f" || continue
    kill -TERM -- "-$wpid" 2>/dev/null || kill -TERM "$wpid" 2>/dev/null || true
  done
  "$HODEI_ROOT/scripts/hodei-stack" down --purge --state-dir "$state" >/dev/null 2>&1 || true
  rm -rf "$state"
}
trap cleanup EXIT
step() { echo "--- $*"; }
fail() {
  echo "FAIL: $*" >&2
  tail -20 "$state/job-api.log" >&2 || true
  exit 1
}

"$HODEI_ROOT/scripts/hodei-stack" up --state-dir "$state" --bin "$HODEI_BIN" >&2
set -a; . "$state/env"; set +a
out=${HODEI_TEST_OUT:-$state/out}
mkdir -p "$out"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
gport=$(free_port)
hport=$(free_port)
export HODEI_GRPC_LISTEN=127.0.0.1:$gport HODEI_SERVER=127.0.0.1:$gport
export HODEI_HTTP_LISTEN=127.0.0.1:$hport
export HODEI_REPLIES_PAGE_BYTES_MAX=32768 # ListJobs pages by bytes (the last step)
export HODEI_PROVISIONER_EDGE_ADDRESS=127.0.0.1:$gport HODEI_PROVISIONER_STATE_DIR=$state
export HODEI_SECRETS_MASTER_KEY=00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff
for d in job-api outbox-relay scheduler provisioner supervisor; do
  "$HODEI_BIN/hodei-$d" 2>>"$state/$d.log" & pids+=($!)
done
H=http://127.0.0.1:$hport
for _ in $(seq 200); do curl -s -o /dev/null "$H/" && break; sleep 0.1; done

# call METHOD PATH [BODY]: sets $code and $body.
auth=(-H "Authorization: Bearer $HODEI_API_KEY")
call() {
  local args=(-s -o "$state/body" -w '%{http_code}' -X "$1")
  [ $# -ge 3 ] && args+=(-H 'Content-Type: application/json' --data-binary "$3")
  [ -n "${HODEI_API_KEY:-}" ] && args+=(-H "Authorization: Bearer $HODEI_API_KEY")
  code=$(curl "${args[@]}" "$H$2")
  body=$(cat "$state/body")
}
# j EXPR: a Python expression on the JSON answer (as d).
j() { python3 -c "import json,sys,base64; d=json.loads(sys.argv[1]); print($1)" "$body"; }
expect() { # STATUS what
  [ "$code" = "$1" ] || fail "$2: HTTP $code, want $1: $body"
}
# expect_error STATUS CODE MESSAGE [FIELD]
expect_error() {
  expect "$1" "$3"
  [ "$(j 'd["code"]')" = "$2" ] || fail "code $(j 'd["code"]'), want $2: $body"
  [ "$(j 'd["message"]')" = "$3" ] || fail "message: $body, want '$3'"
  if [ $# -ge 4 ]; then [ "$(j 'd.get("field","")')" = "$4" ] || fail "field: $body, want $4"; fi
}
wait_state() { # JOB_ID STATE
  for _ in $(seq 600); do
    call GET "/v1/jobs/$1"
    [ "$(j 'd["job"]["state"]')" = "$2" ] && return 0
    sleep 0.1
  done
  fail "job $1 never reached $2: $body"
}

step "QueueJob: POST /v1/jobs"
call POST /v1/jobs '{"spec":{"name":"rest-lines","command":{"command":"sh","args":["-c","for i in $(seq 1 40); do echo line $i; sleep 0.05; done"]},"labels":{"team":"rest"}},"idempotencyKey":"k-1"}'
expect 200 "queue"
job=$(j 'd["jobId"]')
[ "$(j 'd["state"]')" = JOB_STATE_PENDING ] || fail "state: $body"
call POST /v1/jobs '{"spec":{"name":"rest-lines","command":{"command":"sh","args":["-c","for i in $(seq 1 40); do echo line $i; sleep 0.05; done"]},"labels":{"team":"rest"}},"idempotency_key":"k-1"}'
expect 200 "queue again"
[ "$(j 'd["jobId"]')" = "$job" ] || fail "the same idempotency key (proto name) gave another job: $body"

step "SubscribeLogs over SSE: every line once"
curl -s -N --max-time 60 "${auth[@]}" "$H/v1/jobs/$job/logs:follow" > "$state/sse" || true
python3 - "$state/sse" <<'EOF' || fail "SSE stream: $(head -c 600 "$state/sse")"
import json, sys, base64
seen, ended, final = [], None, None
for block in open(sys.argv[1]).read().split("\n\n"):
    lines = block.split("\n")
    if "event: end" in lines:
        ended = json.loads([l for l in lines if l.startswith("data: ")][0][6:])
        continue
    for l in lines:
        if l.startswith("data: "):
            c = json.loads(l[6:])
            if c.get("endOfStream"):
                final = c["finalState"]
            for ln in c.get("lines", []):
                seen.append((int(ln["sequence"]), base64.b64decode(ln["data"]).decode()))
assert [s for s, _ in seen] == list(range(1, 41)), seen
assert [t for _, t in seen] == ["line %d" % i for i in range(1, 41)], seen
assert final == "JOB_STATE_SUCCEEDED", final
assert ended == {"code": "OK", "message": ""}, ended
EOF
step "SSE resumes after Last-Event-ID"
curl -s -N --max-time 30 "${auth[@]}" -H 'Last-Event-ID: 38' "$H/v1/jobs/$job/logs:follow" > "$state/sse2" || true
grep -q '"sequence":"39"' "$state/sse2" && ! grep -q '"sequence":"38"' "$state/sse2" ||
  fail "resume: $(head -c 400 "$state/sse2")"

step "GetJobStatus, ListJobs, GetLogs"
wait_state "$job" JOB_STATE_SUCCEEDED
[ "$(j 'd["job"]["spec"]["labels"]["team"]')" = rest ] || fail "labels: $body"
call GET "/v1/jobs?state=JOB_STATE_SUCCEEDED&pageSize=10"
expect 200 "list"
[ "$(j '[x["id"] for x in d["jobs"]].count("'"$job"'")')" = 1 ] || fail "list: $body"
call GET "/v1/jobs?state=JOB_STATE_FAILED"
expect 200 "list failed"
[ "$(j 'len(d.get("jobs",[]))')" = 0 ] || fail "a FAILED filter lists: $body"
step "ListJobs by label: ?label=key=value (every one must match); over gRPC: hodei jobs --label"
call GET "/v1/jobs?label=team=rest"
expect 200 "list by label"
[ "$(j '[x["id"] for x in d.get("jobs", [])]')" = "['$job']" ] || fail "label team=rest: $body"
call GET "/v1/jobs?labels=team=rest&state=JOB_STATE_SUCCEEDED"
[ "$(j '[x["id"] for x in d.get("jobs", [])]')" = "['$job']" ] || fail "labels (proto name) and state: $body"
call GET "/v1/jobs?label=team=rest&label=tier=gpu"
expect 200 "two labels"
[ "$(j 'len(d.get("jobs", []))')" = 0 ] || fail "team=rest AND tier=gpu matched: $body"
call GET "/v1/jobs?label=team=other"
[ "$(j 'len(d.get("jobs", []))')" = 0 ] || fail "team=other matched: $body"
call GET "/v1/jobs?label=team=rest&state=JOB_STATE_FAILED"
[ "$(j 'len(d.get("jobs", []))')" = 0 ] || fail "a label and a state the job is not in: $body"
call GET "/v1/jobs?label=bad%20key=1"
expect_error 400 INVALID_ARGUMENT 'labels["bad key"]: key must be 1 to 63 characters of [a-zA-Z0-9._/-]' 'labels["bad key"]'
call GET "/v1/jobs?label=novalue"
expect 400 "a label without ="
[ "$(j 'd["field"]')" = labels ] || fail "label without '=': $body"
jobs_json=$("$HODEI_BIN/hodei" -o json jobs --label team=rest) || fail "hodei jobs --label: $jobs_json"
[ "$(python3 -c 'import json,sys; print([x["id"] for x in json.loads(sys.argv[1])["jobs"]])' "$jobs_json")" = "['$job']" ] ||
  fail "hodei jobs --label team=rest: $jobs_json"
jobs_json=$("$HODEI_BIN/hodei" -o json jobs --label team=rest --label tier=gpu) || fail "hodei jobs, two labels"
[ "$(python3 -c 'import json,sys; print(len(json.loads(sys.argv[1])["jobs"]))' "$jobs_json")" = 0 ] ||
  fail "hodei jobs with two labels: $jobs_json"
rc=0; "$HODEI_BIN/hodei" jobs --label 'bad key=1' 2>"$state/err" || rc=$?
[ $rc -eq 2 ] && grep -qF -- '--label (labels["bad key"]): key must be' "$state/err" ||
  fail "hodei jobs --label 'bad key=1': exit $rc, $(cat "$state/err")"

call GET "/v1/jobs/$job/logs?maxLines=5"
expect 200 "logs page"
[ "$(j '[base64.b64decode(x["data"]).decode() for x in d["lines"]]')" = "['line 1', 'line 2', 'line 3', 'line 4', 'line 5']" ] ||
  fail "logs page: $body"
call GET "/v1/jobs/$job/logs?fromSequence=40"
[ "$(j 'len(d["lines"])')" = 1 ] || fail "logs from 40: $body"

step "CancelJob: POST /v1/jobs/{id}:cancel"
call POST /v1/jobs '{"spec":{"name":"rest-sleep","command":{"command":"sleep","args":["60"]}}}'
expect 200 "queue sleeper"
sleeper=$(j 'd["jobId"]')
call POST "/v1/jobs/$sleeper:cancel" '{"reason":"from REST"}'
expect 200 "cancel"
wait_state "$sleeper" JOB_STATE_CANCELLED
call POST "/v1/jobs/$sleeper:cancel" '{}'
expect_error 400 FAILED_PRECONDITION "job $sleeper has already finished (CANCELLED)"

step "validation: the gRPC door's messages, naming the field"
call POST /v1/jobs '{"spec":{"name":"x"}}'
expect_error 400 INVALID_ARGUMENT "spec.payload: either command or script is required" spec.payload
call POST /v1/jobs '{"spec":{"name":"x","command":{"command":"true"},"priority":5000}}'
expect 400 "priority"
[ "$(j 'd["field"]')" = spec.priority ] || fail "priority: $body"
call POST /v1/jobs '{"spec":{"name":"x","command":{"command":"true"},"timeoutMs":"soon"}}'
expect_error 400 INVALID_ARGUMENT "spec.timeout_ms: must be an integer" spec.timeout_ms
call POST /v1/jobs '{"spec":{"name":"x","command":{"command":"true"}},"colour":"red"}'
expect_error 400 INVALID_ARGUMENT "colour: unknown field" colour
call POST /v1/jobs '{"spec":'
expect 400 "truncated body"
case "$body" in *'"message":"request body: not JSON'*) ;; *) fail "bad JSON: $body" ;; esac
call GET /v1/jobs/not-a-uuid
expect_error 400 INVALID_ARGUMENT "job_id: must be a job id (a UUID)" job_id
call GET /v1/jobs/01a24fa4-b982-7abc-bb57-6942f361b5ea
expect 404 "unknown job"
[ "$(j 'd["code"]')" = NOT_FOUND ] || fail "unknown job: $body"
call GET "/v1/jobs?state=JOB_STATE_NOPE"
expect 400 "bad state"
[ "$(j 'd["field"]')" = "states[0]" ] || fail "bad state: $body"
call GET "/v1/jobs?colour=red"
expect_error 400 INVALID_ARGUMENT "colour: unknown parameter" colour
call GET "/v1/jobs/$job/logs:follow?fromEpoch=-1"
expect 400 "SSE validation is a plain error"
[ "$(j 'd["field"]')" = from_epoch ] || fail "from_epoch: $body"
call DELETE /v1/jobs
expect 405 "DELETE /v1/jobs"
call GET /v1/nothing
expect 404 "unknown resource"

step "templates"
call POST /v1/templates '{"template":{"name":"greet","spec":{"name":"greet","command":{"command":"echo","args":["hi ${who}"]}},"parameters":["who"]}}'
expect 200 "create template"
call GET /v1/templates/greet
expect 200 "get template"
[ "$(j 'd["template"]["parameters"]')" = "['who']" ] || fail "template: $body"
call GET /v1/templates
expect 200 "list templates"
[ "$(j '[t["name"] for t in d["templates"]]')" = "['greet']" ] || fail "templates: $body"
call POST /v1/templates/greet:run '{"parameters":{"who":"rest"}}'
expect 200 "run template"
tjob=$(j 'd["jobId"]')
wait_state "$tjob" JOB_STATE_SUCCEEDED
call POST /v1/templates/greet:run '{}'
expect 400 "run without its parameter"
call GET /v1/templates/nope
expect 404 "unknown template"

step "secrets: names only"
call PUT /v1/secrets/db.password '{"value":"'"$(printf 's3cret' | base64)"'"}'
expect 200 "set secret"
call GET /v1/secrets
expect 200 "list secrets"
[ "$(j '[s["name"] for s in d["secrets"]]')" = "['db.password']" ] || fail "secrets: $body"
case "$body" in *s3cret* | *czNjcmV0*) fail "a secret's value is listed: $body" ;; esac
call PUT "/v1/secrets/bad%20name" '{"value":"eA=="}'
expect 400 "bad secret name"
[ "$(j 'd["field"]')" = name ] || fail "secret name: $body"
call DELETE /v1/secrets/db.password
expect 200 "delete secret"
call DELETE /v1/secrets/db.password
expect 404 "delete it again"

step "workers, providers, scheduler"
call GET /v1/workers
expect 200 "workers"
[ "$(j 'len(d["workers"]) >= 1 and d["workers"][0]["provider"]')" = process ] || fail "workers: $body"
call GET "/v1/workers?provider=process"
expect 200 "workers of a provider"
call GET /v1/providers
expect 200 "providers"
[ "$(j '[p["name"] for p in d["providers"]]')" = "['process']" ] || fail "providers: $body"
call GET /v1/providers/process/health
expect 200 "provider health"
[ "$(j 'd["healthy"]')" = True ] || fail "health: $body"
call GET /v1/providers/nope/health
expect 404 "unknown provider"
call POST /v1/providers '{"provider":{"name":"Bad Name"}}'
expect 400 "bad provider"
call PUT /v1/scheduler '{"strategy":"NOPE"}'
expect 400 "bad strategy"
[ "$(j 'd["field"]')" = strategy ] || fail "strategy: $body"

step "metrics: the jobs above, counted"
# Ended so far: rest-lines and the template's job SUCCEEDED, the sleeper CANCELLED.
# live_workers: READY or BUSY workers listed now (the worker may idle out
# between the steps on a slow machine).
live_workers() {
  call GET /v1/workers
  j 'sum(1 for w in d["workers"] if w.get("state") in ("WORKER_STATE_READY", "WORKER_STATE_BUSY"))'
}
live_before=$(live_workers)
call GET "/v1/metrics?windowMs=3600000"
expect 200 "metrics"
live_after=$(live_workers)
by() { j '{c["state"]: int(c.get("jobs", "0")) for c in d["jobsByState"]}.get("'"$1"'", 0)'; }
[ "$(j 'len(d["jobsByState"])')" -ge 7 ] || fail "jobsByState lists every state: $body"
[ "$(by JOB_STATE_SUCCEEDED)" = 2 ] || fail "SUCCEEDED in the window: $(by JOB_STATE_SUCCEEDED), want 2: $body"
[ "$(by JOB_STATE_CANCELLED)" = 1 ] || fail "CANCELLED in the window: $(by JOB_STATE_CANCELLED), want 1: $body"
[ "$(by JOB_STATE_FAILED)" = 0 ] || fail "FAILED in the window: $body"
[ "$(j 'int(d["jobsFinishedInWindow"])')" = 3 ] || fail "jobsFinishedInWindow: $body"
[ "$(j 'int(d["windowMs"])')" = 3600000 ] || fail "windowMs: $body"
[ "$(j 'int(d["dispatchLatency"]["count"]) >= 2 and d["runDuration"]["p50Ms"] > 0')" = True ] ||
  fail "dispatch and run summaries: $body"
[ "$(j 'sum(int(b.get("jobsQueued", "0")) for b in d["series"])')" = 3 ] || fail "series, jobs queued: $body"
[ "$(j 'sum(int(b.get("jobsSucceeded", "0")) for b in d["series"])')" = 2 ] || fail "series, succeeded: $body"
live_now=$(j 'int(d["current"].get("workersLive", "0"))')
# a worker live before and after the call was live during it
if [ "$live_before" -ge 1 ] && [ "$live_after" -ge 1 ]; then
  [ "$live_now" -ge 1 ] || fail "current workers: $body"
fi
call GET "/v1/metrics?windowMs=10"
expect_error 400 INVALID_ARGUMENT "window_ms: must be 0 (the last hour) or between 1000 (1 s) and 604800000 (7 days), got 10" window_ms

step "authentication: no key 401, a missing scope 403, on every resource"
call POST /v1/keys '{"name":"logs-only","scopes":["logs:read"]}'
expect 200 "create a logs:read key"
logs_key=$(j 'd["secret"]')
call POST /v1/keys '{"name":"read-only","scopes":["jobs:read"]}'
expect 200 "create a jobs:read key"
read_key=$(j 'd["secret"]')
call GET /v1/whoami
expect 200 "whoami"
routes=(
  "POST /v1/jobs" "GET /v1/jobs" "GET /v1/jobs/$job" "POST /v1/jobs/$job:cancel"
  "POST /v1/jobs/$job:schedule" "GET /v1/jobs/$job/logs" "GET /v1/jobs/$job/logs:follow"
  "GET /v1/templates" "POST /v1/templates" "GET /v1/templates/greet" "POST /v1/templates/greet:run"
  "GET /v1/secrets" "PUT /v1/secrets/x" "DELETE /v1/secrets/x" "GET /v1/workers"
  "PUT /v1/scheduler" "GET /v1/providers" "POST /v1/providers" "GET /v1/providers/process/health"
  "GET /v1/metrics" "GET /v1/metrics:stream" "GET /v1/keys" "POST /v1/keys"
  "POST /v1/keys/x:revoke" "GET /v1/whoami" "GET /v1/audit"
)
admin_key=$HODEI_API_KEY
n=0
for r in "${routes[@]}"; do
  read -r m p <<< "$r"
  # even a bad body is refused for the key first, as over gRPC
  b=()
  case "$m" in POST | PUT) b=('{"nope":1}') ;; esac
  HODEI_API_KEY= call "$m" "$p" "${b[@]}"
  expect 401 "$r without a key"
  [ "$(j 'd["code"]')" = UNAUTHENTICATED ] || fail "$r without a key: $body"
  HODEI_API_KEY=hodei_0000000000000000000000000000000000000000000000000000000000000000 call "$m" "$p"
  expect 401 "$r with an unknown key"
  [ "$p" = /v1/whoami ] && continue # any valid key
  case "$p" in */logs | */logs:follow) key=$read_key ;; *) key=$logs_key ;; esac
  HODEI_API_KEY=$key call "$m" "$p" "${b[@]}"
  expect 403 "$r with a key missing its scope"
  [ "$(j 'd["code"]')" = PERMISSION_DENIED ] || fail "$r: $body"
  n=$((n + 1))
done
echo "    $n resources refuse a missing key and a missing scope"
HODEI_API_KEY=$read_key call GET "/v1/jobs/$job"
expect 200 "a jobs:read key reads a job"
HODEI_API_KEY=$admin_key

step "the OpenAPI document: generated at build time, served, every route in it and answering"
curl -sf -o "$state/openapi.json" "$H/v1/openapi.json" || fail "GET /v1/openapi.json"
python3 "$HODEI_ROOT/tests/integration/check_openapi.py" "$state/openapi.json" \
  "$HODEI_BIN/../docs/openapi.json" "$H" "${routes[@]}" || fail "the OpenAPI document"

step "dashboard"
call GET /
expect 200 "dashboard"
case "$body" in *'<html'*) ;; *) fail "dashboard: $body" ;; esac
case "$body" in *'/app.js'*) ;; *) fail "dashboard: no script in $body" ;; esac
call GET /app.js
expect 200 "the dashboard's script"
case "$body" in *textContent*) ;; *) fail "dashboard script: ${body:0:200}" ;; esac
call GET /style.css
expect 200 "the dashboard's style sheet"
call POST /
expect 405 "POST /"
step "ListJobs pages end at replies.page_bytes_max (32 KiB here), at least one job each"
pad() { python3 -c "print('true ' + '#' * ($1 - 5))"; }
paged=()
for n in 40000 15000 15000 15000; do # oldest first; the first alone passes the budget
  call POST /v1/jobs '{"spec":{"name":"rest-page","command":{"command":"sh","args":["-c","'"$(pad $n)"'"]},"labels":{"team":"pages"}}}'
  expect 200 "queue a $n-byte job"
  paged=("$(j 'd["jobId"]')" "${paged[@]}")
done
token="" sizes="" listed=()
while :; do
  call GET "/v1/jobs?label=team=pages&pageSize=1000&pageToken=$token"
  expect 200 "a page of large jobs"
  sizes="$sizes$(j 'len(d.get("jobs", []))') "
  for id in $(j '" ".join(x["id"] for x in d.get("jobs", []))'); do listed+=("$id"); done
  token=$(j 'd.get("nextPageToken", "")')
  [ -n "$token" ] || break
done
[ "$sizes" = "2 1 1 " ] || fail "pages of $sizes jobs, want 2 1 1"
[ "${listed[*]}" = "${paged[*]}" ] || fail "listed ${listed[*]}, want ${paged[*]} (newest first, each once)"
echo "rest: all passed"
