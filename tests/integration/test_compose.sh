#!/usr/bin/env bash
# compose/docker-compose.yml for real, on a private dockerd
# (tests/harness/private-dockerd; never the machine's engine): `make images`
# (scripts/images) from the build under test, `up -d` to healthy, a job
# queued with the CLI runs in a Docker worker and shows its output,
# `--scale scheduler=2` keeps working, and `down -v` leaves nothing
# (containers, workers, volumes, network). Exit 77 (skipped) only when no
# engine can start here at all.
set -euo pipefail
root=${HODEI_ROOT:?}
bin=${HODEI_BIN:?}
build=$(cd "$bin/.." && pwd)
dir=$(mktemp -d /tmp/hd-compose.XXXXXX)
dockerd=$root/tests/harness/private-dockerd
project=compose # providers.sql labels workers with this project name

fail() { echo "FAIL: $*" >&2; exit 1; }
cleanup() {
  local rc=$?
  if [ $rc -ne 0 ] && [ $rc -ne 77 ] && [ -S "$dir/d.sock" ]; then
    echo "--- docker-compose ps / logs (last lines) ---" >&2
    compose ps >&2 || true
    compose logs --tail=20 >&2 || true
  fi
  "$dockerd" down "$dir" || true
}
trap cleanup EXIT

if ! why=$("$dockerd" up "$dir"); then
  echo "SKIP: no Docker engine can run on this machine: $why"
  exit 77
fi
export DOCKER_HOST=unix://$dir/d.sock
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
export HODEI_EDGE_PORT=$(free_port) HODEI_HEALTH_PORT=$(free_port)
export HODEI_DOCKER_SOCKET=$dir/d.sock HODEI_DOCKER_GID=$(stat -c %g "$dir/d.sock") HODEI_PG_PASSWORD=compose-test
compose() { docker-compose -p "$project" -f "$root/compose/docker-compose.yml" "$@"; }
docker() { "$dockerd" docker "$dir" "$@"; }
cli() { "$bin/hodei" --server "127.0.0.1:$HODEI_EDGE_PORT" "$@"; }

echo "== make images (scripts/images $build)"
t0=$(date +%s)
"$root/scripts/images" "$build"
echo "images: $(( $(date +%s) - t0 )) s"
for img in hodei hodei-worker hodei-nats hodei-postgres; do
  user=$(docker image inspect -f '{{.Config.User}}' "$img:latest")
  [ -n "$user" ] && [ "$user" != root ] && [ "${user%%:*}" != 0 ] || fail "$img runs as root"
done
[ -n "$(docker image inspect -f '{{.Config.Healthcheck}}' hodei:latest | grep healthcheck)" ] ||
  fail "hodei has no HEALTHCHECK"

echo "== config and up"
compose config -q
compose up -d
wait_healthy() {  # every daemon container healthy (the one-shot steps exited 0)
  local deadline=$(( $(date +%s) + $1 )) bad
  while :; do
    bad=$(for c in $(compose ps -q); do
      # a container listed a moment ago may be gone (a `run --rm` step): skip it
      docker inspect -f '{{.Name}} {{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{else}}-{{end}} {{.State.ExitCode}}' "$c" 2>/dev/null || true
    done | awk '!(($2 == "running" && $3 == "healthy") || ($2 == "exited" && $4 == "0"))')
    [ -z "$bad" ] && return 0
    [ "$(date +%s)" -lt "$deadline" ] || fail "not healthy after $1 s: $bad"
    sleep 1
  done
}
wait_healthy 300
compose ps

echo "== the admin API key, then a job with the CLI"
HODEI_API_KEY=$(compose run --rm -T migrate hodei-migrate --create-admin-key compose-admin --replace)
export HODEI_API_KEY
[ -n "$HODEI_API_KEY" ] || fail "no admin API key"
out=$(cli run -- sh -c 'cat /etc/os-release; echo compose-job-ok')
echo "$out"
grep -q compose-job-ok <<<"$out" || fail "no job output"
grep -qi debian <<<"$out" || fail "the job did not run in the worker image"
[ -n "$(docker ps -q --filter label=hodei.provider=docker)" ] || fail "no Docker worker ran it"

echo "== scale the scheduler to 2"
compose up -d --scale scheduler=2
wait_healthy 180
[ "$(compose ps -q scheduler | wc -l)" -eq 2 ] || fail "not 2 schedulers"
for i in 1 2 3; do
  out=$(cli run -- sh -c "echo scaled-$i")
  grep -q "scaled-$i" <<<"$out" || fail "job $i after scaling: $out"
done

echo "== down -v"
compose down -v
left_c=$(docker ps -aq)
left_v=$(docker volume ls -q)
left_n=$(docker network ls -q --filter name=hodei)
[ -z "$left_c$left_v$left_n" ] ||
  fail "left behind: containers [$left_c] volumes [$left_v] networks [$left_n]"
echo "PASS"
