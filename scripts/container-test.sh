#!/usr/bin/env bash
# container-test.sh — build the container image from an already built binary and run it for real.
#
#   scripts/container-test.sh [--binary PATH]      (default: target/dist/zava-mcp, as scripts/release.sh builds it)
#
# Any build of the binary works (target/dist, target/release, target/debug, cargo-llvm-cov's instrumented
# target/llvm-cov-target/debug). The script:
#   1. installs what is missing (scripts/setup.sh podman podman_compose container_base: PostgreSQL, the model,
#      podman, buildah, runc, catatonit, debootstrap, podman-compose, and the base image debian:bookworm-slim made
#      locally with debootstrap when podman lacks it), and checks deploy/ (scripts/deploy-check.py, podman-compose
#      config);
#   2. builds the Dockerfile's `runtime-prebuilt` target from the binary and the embedding model (the layers
#      below the binary stay cached in podman's storage, tagged localhost/zava-mcp:runtime-base);
#   3. meanwhile starts a seeded managed PostgreSQL on the host with the same binary (`db seed`, `db start`);
#   4. runs the image as it ships (--init, host network, the image's identity mode jwt) against that server
#      as an external database, on a free port;
#   5. waits for /health/ready, checks that a request without a token gets 401, makes MCP calls as a store
#      manager with a development token (initialize, get_current_utc_date, execute_sales_query: Seattle's orders
#      only), checks that every process in the container runs as uid 10001 and that `podman healthcheck run`
#      passes, stops it with SIGTERM (`podman stop -t 15`) and requires a clean, quick exit (status 0, "shutting
#      down" in its log); then once more as deploy/k8s runs it (no --init, so zava-mcp is PID 1; a read-only
#      root file system with /data on tmpfs; a probe whose Host is a pod address);
#   6. removes the containers, the image, the cluster and its temporary files, also when a step fails.
# Each step prints how long it took.
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$PWD"

binary=target/dist/zava-mcp
while [[ $# -gt 0 ]]; do
    case $1 in
        --binary) binary="${2:?--binary needs a path}"; shift 2 ;;
        --binary=*) binary="${1#--binary=}"; shift ;;
        -h|--help) awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"; exit 0 ;;
        *) echo "container-test: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done

UID_IN_IMAGE=10001
BASE_TAG=localhost/zava-mcp:runtime-base
IMAGE="localhost/zava-mcp:container-test-$$"
CONTAINER="zava-mcp-container-test-$$"
export CONTAINERS_CONF="${CONTAINERS_CONF:-${repo}/scripts/containers.conf}"

started=$SECONDS
current="starting"
step() {   # NAME: ends the step before (printing its time) and starts this one; no NAME: only ends
    if [[ -n ${step_started:-} ]]; then say "${current}: $((SECONDS - step_started)) s"; fi
    current=${1:-done}
    step_started=$SECONDS
    [[ -z ${1:-} ]] || say "${current}..."
}
say() { printf 'container-test: %s\n' "$*" >&2; }
fail() {
    say "FAILED (${current}): $*"
    exit 1
}
# podman without the harmless "unable to get systemd connection" lines (no systemd here: healthchecks do not
# run on a timer, only through `podman healthcheck run`).
pm() { podman "$@" 2> >(grep -v 'unable to get systemd connection' >&2); }

tmp="$(mktemp -d "${TMPDIR:-/tmp}/zava-container-test.XXXXXX")"
chmod 0755 "$tmp"   # the managed cluster runs as the postgres user, which must enter it
db_dir="${tmp}/db"
db_started=0
# An instrumented binary (cargo-llvm-cov) writes a profile where it runs: keep those in the temporary directory.
export LLVM_PROFILE_FILE="${tmp}/profiles/host-%p-%m.profraw"

cleanup() {
    local status=$?
    set +e
    if [[ $status -ne 0 ]]; then
        local c
        for c in "$CONTAINER" "${CONTAINER}-pid1"; do
            if podman container exists "$c" 2>/dev/null; then
                say "the container's log (${c}, last 40 lines):"
                pm logs --tail 40 "$c" 2>&1 | sed 's/^/container-test:   | /' >&2
            fi
        done
        [[ -f ${tmp}/db.log ]] && { say "the database's log (last 20 lines):"; tail -n 20 "${tmp}/db.log" | sed 's/^/container-test:   | /' >&2; }
    fi
    pm rm -f -t 0 "$CONTAINER" "${CONTAINER}-pid1" >/dev/null 2>&1
    podman rmi -f "$IMAGE" >/dev/null 2>&1
    if [[ -n ${db_pid:-} ]]; then   # the seed still running: its zava-mcp first (gone before `db stop`)
        local children child i
        children="$(pgrep -P "$db_pid")"
        kill "$db_pid" $children 2>/dev/null
        for child in $children; do
            for ((i = 0; i < 50; i++)); do kill -0 "$child" 2>/dev/null || break; sleep 0.1; done
        done
        wait "$db_pid" 2>/dev/null
    fi
    [[ $db_started -eq 1 || -d ${db_dir} ]] && (cd "$tmp" && "$binary" --data-dir "$db_dir" db stop >/dev/null 2>&1)
    rm -rf "$tmp"
    if [[ $status -eq 0 ]]; then
        say "passed in $((SECONDS - started)) s"
    else
        say "failed after $((SECONDS - started)) s"
    fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ------------------------------------------------------------------------------------------------- setup
step "setup (scripts/setup.sh: PostgreSQL, pgvector, the embedding model)"
scripts/setup.sh

[[ -x $binary ]] || fail "no binary at ${binary}: build it first (scripts/release.sh, cargo build), or pass --binary PATH"
binary="$(realpath "$binary")"
version="$(cd "$tmp" && "$binary" --version)" || fail "${binary} --version failed"
say "binary: ${binary} (${version}, $(du -m "$binary" | cut -f1) MB)"
model_dir="${ZAVA_EMBEDDING_MODEL_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/zava-mcp/models/all-MiniLM-L6-v2}"
[[ -f ${model_dir}/config.json ]] || fail "no embedding model in ${model_dir} (scripts/setup.sh installs it)"

# --------------------------------------------------------------------------- database (in the background)
# A small dataset (the tool calls only need some orders) in a managed cluster on a free loopback port, pinned
# running by `db start` until `db stop`. The container reaches it over the host network.
step "database: seeding a managed cluster in the background"
(
    cd "$tmp"
    "$binary" --data-dir "$db_dir" db seed --customers 200 &&
        "$binary" --data-dir "$db_dir" db start
) >"${tmp}/db.log" 2>&1 &
db_pid=$!

# ------------------------------------------------------------------------------------------------- image
step "setup (scripts/setup.sh --only podman podman_compose container_base)"
scripts/setup.sh --only podman podman_compose container_base

step "deploy files: scripts/deploy-check.py, podman-compose config"
python3 scripts/deploy-check.py || fail "deploy/ does not agree with itself or the Dockerfile"
POSTGRES_PASSWORD=check "${XDG_CACHE_HOME:-$HOME/.cache}/zava-mcp/podman-compose/bin/podman-compose" \
    -f deploy/compose.yaml config >"${tmp}/compose.yaml" 2>&1 \
    || { cat "${tmp}/compose.yaml" >&2; fail "podman-compose cannot read deploy/compose.yaml"; }

step "image: building the runtime-prebuilt target"
ctx="${tmp}/context"
mkdir -p "${ctx}/models"
# A debug or instrumented build is mostly debug information (500 MB): leave it out of the image. The profile
# counters of an instrumented build are not debug information and stay.
if command -v strip >/dev/null 2>&1 && readelf -S "$binary" 2>/dev/null | grep -q '\.debug_info'; then
    strip --strip-debug -o "${ctx}/zava-mcp" "$binary"
else
    ln "$binary" "${ctx}/zava-mcp" 2>/dev/null || cp "$binary" "${ctx}/zava-mcp"
fi
cp -r "$model_dir" "${ctx}/models/all-MiniLM-L6-v2"
rm -f "${ctx}/models/all-MiniLM-L6-v2/.verified"
build=(pm build --format docker --pull=never --network host -f "${repo}/Dockerfile")
old_base="$(podman image inspect --format '{{.Id}}' "$BASE_TAG" 2>/dev/null || true)"
"${build[@]}" --target runtime-base -t "$BASE_TAG" "$ctx" >"${tmp}/build.log" 2>&1 \
    || { tail -n 30 "${tmp}/build.log" >&2; fail "podman build --target runtime-base failed"; }
new_base="$(podman image inspect --format '{{.Id}}' "$BASE_TAG")"
if [[ -n $old_base && $old_base != "$new_base" ]]; then
    podman rmi "$old_base" >/dev/null 2>&1 || true   # an earlier Dockerfile's layers, no longer used
fi
"${build[@]}" --target runtime-prebuilt -t "$IMAGE" "$ctx" >>"${tmp}/build.log" 2>&1 \
    || { tail -n 30 "${tmp}/build.log" >&2; fail "podman build --target runtime-prebuilt failed"; }
rm -rf "$ctx"
say "image ${IMAGE}: $(podman image inspect --format '{{.Size}}' "$IMAGE" | awk '{printf "%d MB", $1/1e6}')"
[[ $(podman image inspect --format '{{.User}}' "$IMAGE") == "${UID_IN_IMAGE}:${UID_IN_IMAGE}" ]] \
    || fail "the image's user is not ${UID_IN_IMAGE}"
[[ $(podman image inspect --format '{{json .HealthCheck}}' "$IMAGE") == *health/live* ]] \
    || fail "the image has no HEALTHCHECK on /health/live (built without --format docker?)"

step "database: waiting for the seed"
if ! wait "$db_pid"; then
    db_pid=""
    fail "seeding or starting the managed cluster failed"
fi
db_pid=""
db_started=1
query_url="$(cd "$tmp" && "$binary" --data-dir "$db_dir" db url --role query 2>/dev/null)" \
    || fail "db url --role query failed"
context_key="$(sed -n 's/^context_key *= *"\([0-9a-f]*\)"$/\1/p' "${db_dir}/secrets.toml")"
[[ ${#context_key} -eq 64 ]] || fail "no context key in ${db_dir}/secrets.toml"

# ----------------------------------------------------------------------------------------------- serving
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
port="$(free_port)"
base="http://127.0.0.1:${port}"
env_file="${tmp}/container.env"
(
    umask 077
    printf 'DATABASE_URL=%s\nZAVA_CONTEXT_KEY=%s\n' "$query_url" "$context_key" >"$env_file"
)
# The image's defaults, except the port (the host network is shared) and the resource URI, which a deployment
# must always set for --identity jwt on a non-loopback address.
run_container() {   # NAME [podman run options...]
    local name=$1
    shift
    pm run -d --name "$name" --pull=never --network host "$@" \
        --env-file "$env_file" -e "ZAVA_HTTP=0.0.0.0:${port}" -e "ZAVA_RESOURCE_URI=${base}/mcp" \
        -e LLVM_PROFILE_FILE=/tmp/zava-%p.profraw "$IMAGE" >/dev/null
}
wait_ready() {   # NAME
    local name=$1 i
    for ((i = 0; i < 600; i++)); do
        if curl -fsS -o "${tmp}/ready.json" "${base}/health/ready" 2>/dev/null; then
            grep -q '"status":"ready"' "${tmp}/ready.json" && return 0
        fi
        [[ $(podman inspect --format '{{.State.Running}}' "$name" 2>/dev/null) == true ]] \
            || fail "the container stopped before it was ready"
        sleep 0.2
    done
    fail "${base}/health/ready did not answer ready within 120 s"
}
stop_cleanly() {   # NAME: SIGTERM, then a quick exit with status 0 and "shutting down" in the log
    local name=$1 t0 ms status
    t0=$(date +%s%N)
    pm stop -t 15 "$name" >/dev/null || fail "podman stop failed"
    ms=$((($(date +%s%N) - t0) / 1000000))
    status="$(podman inspect --format '{{.State.ExitCode}}' "$name")"
    say "${name} stopped ${ms} ms after SIGTERM, exit status ${status}"
    [[ $status -eq 0 ]] || fail "exit status ${status} after SIGTERM (137 would mean it had to be killed)"
    ((ms < 10000)) || fail "stopping took ${ms} ms: SIGTERM was not acted on promptly"
    pm logs "$name" 2>&1 | grep -q 'shutting down' || fail "the log does not say it was shutting down"
}

step "container: starting (--init) and waiting for /health/ready"
run_container "$CONTAINER" --init
wait_ready "$CONTAINER"

step "container: MCP calls as Seattle's store manager"
code="$(curl -s -o /dev/null -w '%{http_code}' "${base}/mcp" -H 'Content-Type: application/json' \
    -H 'Accept: application/json, text/event-stream' -d '{"jsonrpc":"2.0","id":1,"method":"tools/list"}')"
[[ $code == 401 ]] || fail "a request without a token got HTTP ${code}, not 401"
token="$(pm exec "$CONTAINER" zava-mcp token --audience "${base}/mcp" --rls-user-id seattle)" \
    || fail "zava-mcp token inside the container failed"
mcp() {   # ID METHOD PARAMS-JSON: prints the JSON-RPC result, fails on an error or an isError result
    local body out
    body="$(printf '{"jsonrpc":"2.0","id":%s,"method":"%s","params":%s}' "$1" "$2" "$3")"
    out="$(curl -fsS "${base}/mcp" -H 'Content-Type: application/json' \
        -H 'Accept: application/json, text/event-stream' -H 'MCP-Protocol-Version: 2025-11-25' \
        -H "Authorization: Bearer ${token}" -d "$body")" || fail "POST /mcp ${2} failed"
    python3 -c '
import json, sys
msg = json.loads(sys.argv[1])
result = msg.get("result")
if result is None or result.get("isError"):
    sys.exit("MCP error: " + sys.argv[1][:500])
print(json.dumps(result))' "$out" || fail "${2}: ${out:0:300}"
}
init="$(mcp 1 initialize '{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"container-test","version":"1"}}')"
[[ $init == *'"serverInfo"'* ]] || fail "initialize returned no serverInfo: ${init:0:300}"
date_result="$(mcp 2 tools/call '{"name":"get_current_utc_date","arguments":{}}')"
[[ $date_result == *"Current UTC Date/Time: $(date -u +%Y-%m-%d)"* ]] || fail "get_current_utc_date: ${date_result:0:300}"
sql='SELECT s.store_name, count(*) AS orders FROM retail.orders o JOIN retail.stores s USING (store_id) GROUP BY s.store_name'
query_result="$(mcp 3 tools/call "{\"name\":\"execute_sales_query\",\"arguments\":{\"postgresql_query\":\"${sql}\"}}")"
python3 -c '
import json, sys
rows = json.loads(json.loads(sys.argv[1])["content"][0]["text"])["r"]
if len(rows) != 1 or rows[0][0] != "Zava Retail Seattle" or int(rows[0][1]) < 1:
    sys.exit("expected the orders of Seattle only, got %r" % rows)
print("container-test: execute_sales_query as Seattle: %s orders, no other store" % rows[0][1], file=sys.stderr)' \
    "$query_result" || fail "execute_sales_query did not return Seattle's orders only"

step "container: non-root user and health check"
inside="$(pm exec "$CONTAINER" id -u)"
[[ $inside == "$UID_IN_IMAGE" ]] || fail "podman exec id -u says ${inside}, not ${UID_IN_IMAGE}"
# Every process of the container, as the host's /proc sees it (with --init: catatonit and zava-mcp): real,
# effective, saved and file-system uid.
pids="$(pm top "$CONTAINER" hpid | tail -n +2)"
[[ -n $pids ]] || fail "podman top listed no processes"
for pid in $pids; do
    uids="$(awk '/^Uid:/ { print $2, $3, $4, $5 }' "/proc/${pid}/status")"
    [[ $uids == "${UID_IN_IMAGE} ${UID_IN_IMAGE} ${UID_IN_IMAGE} ${UID_IN_IMAGE}" ]] \
        || fail "process ${pid} ($(tr '\0' ' ' <"/proc/${pid}/cmdline")) runs as uids ${uids}, not ${UID_IN_IMAGE}"
done
say "$(wc -w <<<"$pids") processes, all uid ${UID_IN_IMAGE}"
pm healthcheck run "$CONTAINER" >/dev/null || fail "podman healthcheck run reported unhealthy"
[[ $(podman inspect --format '{{.State.Health.Status}}' "$CONTAINER" 2>/dev/null) == healthy ]] \
    || fail "the container's health status is not healthy"

step "container: db backup with only the client tools in the image"
superuser_pw="$(sed -n 's/^superuser_password *= *"\(.*\)"$/\1/p' "${db_dir}/secrets.toml")"
db_port="$(python3 -c 'import sys, urllib.parse; print(urllib.parse.urlparse(sys.argv[1]).port)' "$query_url")"
admin_url="postgresql://postgres:${superuser_pw}@127.0.0.1:${db_port}/postgres"
backup="$(pm exec -e "ZAVA_ADMIN_DATABASE_URL=${admin_url}" "$CONTAINER" zava-mcp db backup --output /tmp/backups)" \
    || fail "db backup inside the container failed"
backup="$(tail -n 1 <<<"$backup")"
[[ $backup == /tmp/backups/zava-*.dump ]] || fail "db backup printed ${backup:0:200}, not a backup file"
pm exec "$CONTAINER" sh -c "test -s '${backup}' && test -s '${backup}.sha256'" \
    || fail "the backup or its checksum is missing or empty inside the container"
say "backup written and verified inside the container: ${backup}"

step "container: SIGTERM"
stop_cleanly "$CONTAINER"
pm rm "$CONTAINER" >/dev/null

step "container as deploy/k8s runs it (no --init: zava-mcp is PID 1; read-only root, /data on tmpfs)"
run_container "${CONTAINER}-pid1" --read-only --tmpfs /data:rw,mode=0700,U
wait_ready "${CONTAINER}-pid1"
# The kubelet's probes name the pod's address in Host, which is in no allow-list: the probes must not care.
code="$(curl -s -o /dev/null -w '%{http_code}' -H 'Host: 10.1.2.3:8000' "${base}/health/ready")"
[[ $code == 200 ]] || fail "/health/ready with a pod address as Host got HTTP ${code}, not 200"
stop_cleanly "${CONTAINER}-pid1"
pm rm "${CONTAINER}-pid1" >/dev/null

step
