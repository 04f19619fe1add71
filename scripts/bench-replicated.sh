#!/usr/bin/env bash
# Ticket issuing throughput with durability `replicated` as a share of
# `async`, in the same run (issue 12; goal >= 0.7). A Redis master with one
# replica on loopback (no persistence), one release node at a time on the
# master, wrk issuing tickets over HTTP; `replicated` acknowledges a ticket
# only after `WAIT 1 500` confirmed it on the replica. The async rate alone
# swings by a third between runs on a small machine, so the two modes run
# in alternating order, `--rounds` times (async first, then replicated
# first, ...); each round's ratio is printed, and their median.
#
#   scripts/bench-replicated.sh [--connections 32] [--duration 10] [--rounds 3] [--skip-build]
set -euo pipefail
CONNECTIONS=32 DURATION=10 WARMUP=2 ROUNDS=3 SKIP_BUILD=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    -c|--connections) CONNECTIONS="$2"; shift 2 ;;
    -d|--duration) DURATION="$2"; shift 2 ;;
    -r|--rounds) ROUNDS="$2"; shift 2 ;;
    --skip-build) SKIP_BUILD=1; shift ;;
    *) sed -n '2,12p' "$0"; exit 1 ;;
  esac
done
cd "$(dirname "$0")/.."
scripts/ensure-redis.sh
command -v wrk >/dev/null || { echo "wrk is missing (apt-get install wrk)" >&2; exit 1; }
[[ $SKIP_BUILD == 1 ]] || cargo build --release --quiet --bin turnus
BIN=${CARGO_TARGET_DIR:-target}/release/turnus

WORK=$(mktemp -d /tmp/turnus-bench-replicated.XXXXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

MASTER=$(free_port); REPLICA=$(free_port)
for port in "$MASTER" "$REPLICA"; do
  mkdir -p "$WORK/$port"
  extra=(); [[ $port == "$REPLICA" ]] && extra=(--replicaof 127.0.0.1 "$MASTER")
  redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --dir "$WORK/$port" \
    --repl-diskless-sync-delay 0 --logfile "$WORK/$port/redis.log" "${extra[@]}" &
  PIDS+=($!)
done
for _ in $(seq 200); do
  redis-cli -p "$REPLICA" info replication 2>/dev/null | grep -q master_link_status:up && break; sleep 0.05
done
redis-cli -p "$REPLICA" info replication | grep -q master_link_status:up || { echo "replica did not sync" >&2; exit 1; }

cat >"$WORK/issue.lua" <<'LUA'
wrk.method = "POST"
wrk.body = '{"service":"cash"}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer bench-kiosk"
LUA

run() { # durability, round → prints requests/s (a branch of its own per run)
  local mode=$1 branch=bench-$1-$2 port; port=$(free_port)
  TURNUS__NODE__ID=$branch TURNUS__NODE__DATA_DIR="$WORK/node-$branch" \
  TURNUS__HTTP__LISTEN=127.0.0.1:$port TURNUS__REDIS__URL=redis://127.0.0.1:$MASTER/ \
  TURNUS__REDIS__DURABILITY=$mode TURNUS__REDIS__MIN_REPLICAS=1 \
  TURNUS__AUTH__ADMIN_TOKENS=bench-admin TURNUS__AUTH__KIOSK_TOKENS=bench-kiosk \
    "$BIN" serve >"$WORK/node-$branch.log" 2>&1 &
  local pid=$!; PIDS+=("$pid")
  for _ in $(seq 300); do curl -fs -o /dev/null "http://127.0.0.1:$port/readyz" && break; sleep 0.05; done
  local base="http://127.0.0.1:$port/api/v1/admin/branches/$branch"
  curl -fsS -o /dev/null -X PUT "$base" -H 'Authorization: Bearer bench-admin' -H 'Content-Type: application/json' \
    -d '{"name":"Bench","timezone":"Europe/Lisbon"}'
  curl -fsS -o /dev/null -X PUT "$base/services/cash" -H 'Authorization: Bearer bench-admin' \
    -H 'Content-Type: application/json' -d '{"name":"Cash","prefix":"C","first":1,"last":999999}'
  local url="http://127.0.0.1:$port/api/v1/branches/$branch/tickets"
  for _ in $(seq 100); do
    [[ $(curl -s -o /dev/null -w '%{http_code}' -X POST "$url" -H 'Authorization: Bearer bench-kiosk' \
      -H 'Content-Type: application/json' -d '{"service":"cash"}') == 201 ]] && break; sleep 0.05
  done
  wrk -t1 -c"$CONNECTIONS" -d"${WARMUP}s" -s "$WORK/issue.lua" "$url" >/dev/null
  wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" -s "$WORK/issue.lua" "$url" >"$WORK/wrk-$mode.txt"
  kill "$pid"; wait "$pid" 2>/dev/null || true
  if grep -q "Non-2xx" "$WORK/wrk-$mode.txt"; then
    echo "$mode: some answers were not 201:" >&2; cat "$WORK/wrk-$mode.txt" >&2; exit 1
  fi
  awk '/Requests\/sec/ {print $2}' "$WORK/wrk-$mode.txt"
}

RATIOS=()
printf '%-6s %12s %12s %8s\n' round async replicated ratio
for round in $(seq "$ROUNDS"); do
  if (( round % 2 == 1 )); then ASYNC=$(run async "$round"); REPLICATED=$(run replicated "$round")
  else REPLICATED=$(run replicated "$round"); ASYNC=$(run async "$round"); fi
  RATIO=$(awk -v r="$REPLICATED" -v a="$ASYNC" 'BEGIN { printf "%.2f", r / a }')
  RATIOS+=("$RATIO")
  printf '%-6s %12s %12s %8s\n' "$round" "$ASYNC" "$REPLICATED" "$RATIO"
done
MEDIAN=$(printf '%s\n' "${RATIOS[@]}" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }')
printf 'replicated / async: median %s of %d rounds (goal >= 0.70), %d connections, %d s each\n' \
  "$MEDIAN" "$ROUNDS" "$CONNECTIONS" "$DURATION"
