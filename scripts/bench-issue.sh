#!/usr/bin/env bash
# Load benchmark of ticket issuing (POST /api/v1/branches/{branch}/tickets).
#
# Starts its own Redis (loopback, random free port, no persistence) and a
# release `turnus serve` node on it, drives ticket issuing with wrk at a chosen
# concurrency, then runs the very same issue script (`turnus script issue`)
# straight against the same Redis with redis-benchmark, and prints HTTP
# requests/s, latency p50/p99, the redis-benchmark rate, their ratio, and the
# node's resident memory after at least --min-tickets HTTP-issued tickets,
# each checked against the project's goals.
#
# Usage (from the repository root):
#   scripts/bench-issue.sh [--connections 32] [--duration 10] [--threads 1]
#                          [--warmup 3] [--workers 0] [--min-tickets 100000]
#                          [--redis-requests auto] [--skip-build] [--strict]
#                          [--profile SECONDS]
#
# Goals (2-core machine, wrk + node + Redis on the same host):
#   HTTP rate >= 0.30 x redis-benchmark rate; p99 < 10 ms at 32 connections;
#   node VmRSS < 32 MB after 100,000 tickets.
# --profile N adds a last wrk pass of N seconds with Redis's SLOWLOG recording
# every command, and prints per script (by name) and per command: calls per
# ticket, average and largest time in Redis (needs jq). Recording costs Redis
# time, so that pass's rate is not a figure; the measured passes are unchanged.
# PROFILE_KEEP=FILE also keeps that SLOWLOG as JSON. TURNUS_BIN=PATH runs that
# binary instead of the release build (with --skip-build: compare two builds).
# Exit status: 0 when the run was valid (every response 2xx, no socket
# errors), 1 when it was not or something failed; with --strict, 3 when the
# run was valid but a goal was missed.
set -euo pipefail

CONNECTIONS=32
DURATION=10
THREADS=1
WARMUP=3
WORKERS=0
MIN_TICKETS=100000
REDIS_REQUESTS=auto
SKIP_BUILD=0
STRICT=0
PROFILE=0

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }

while [[ $# -gt 0 ]]; do
  case "$1" in
    -c|--connections) CONNECTIONS="$2"; shift 2 ;;
    -d|--duration) DURATION="$2"; shift 2 ;;
    -t|--threads) THREADS="$2"; shift 2 ;;
    --warmup) WARMUP="$2"; shift 2 ;;
    --workers) WORKERS="$2"; shift 2 ;;
    --min-tickets) MIN_TICKETS="$2"; shift 2 ;;
    --redis-requests) REDIS_REQUESTS="$2"; shift 2 ;;
    --skip-build) SKIP_BUILD=1; shift ;;
    --strict) STRICT=1; shift ;;
    --profile) PROFILE="$2"; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "unknown argument: $1 (try --help)" >&2; exit 1 ;;
  esac
done
for n in CONNECTIONS DURATION THREADS WARMUP WORKERS MIN_TICKETS PROFILE; do
  [[ "${!n}" =~ ^[0-9]+$ ]] || { echo "--${n,,} must be a whole number" >&2; exit 1; }
done
[[ "$REDIS_REQUESTS" == auto || "$REDIS_REQUESTS" =~ ^[0-9]+$ ]] \
  || { echo "--redis-requests must be a number or auto" >&2; exit 1; }
(( CONNECTIONS >= THREADS && THREADS >= 1 && DURATION >= 1 )) \
  || { echo "need --threads >= 1, --connections >= --threads, --duration >= 1" >&2; exit 1; }

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
log() { printf '==> %s\n' "$*" >&2; }

# --- tools ------------------------------------------------------------------
missing=()
command -v wrk >/dev/null || missing+=(wrk)
command -v redis-server >/dev/null || missing+=(redis-server)
{ command -v redis-cli >/dev/null && command -v redis-benchmark >/dev/null; } || missing+=(redis-tools)
command -v curl >/dev/null || missing+=(curl)
(( PROFILE == 0 )) || command -v jq >/dev/null || missing+=(jq)
if [[ ${#missing[@]} -gt 0 ]]; then
  if [[ $(id -u) -ne 0 ]]; then
    echo "missing: ${missing[*]}; install them (apt-get install ${missing[*]}) or run as root" >&2
    exit 1
  fi
  log "installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# --- build ------------------------------------------------------------------
TARGET_DIR="$(cargo metadata --format-version 1 --no-deps 2>/dev/null \
  | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')"
if [[ -z "$TARGET_DIR" ]]; then
  TARGET_DIR="${CARGO_TARGET_DIR:-target}"
  [[ "$TARGET_DIR" = /* ]] || TARGET_DIR="$REPO/$TARGET_DIR"
fi
BIN="${TURNUS_BIN:-$TARGET_DIR/release/turnus}"
if [[ $SKIP_BUILD -eq 0 ]]; then
  log "cargo build --release (target dir $TARGET_DIR)"
  cargo build --release --quiet --bin turnus
fi
[[ -x "$BIN" ]] || { echo "no release binary at $BIN" >&2; exit 1; }

# --- processes, cleaned up whatever happens ---------------------------------
WORK="$(mktemp -d -t turnus-bench.XXXXXX)"
REDIS_PID=""
NODE_PID=""
LOAD_PID="" # the wrk or redis-benchmark running now
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  for pid in "$LOAD_PID" "$NODE_PID" "$REDIS_PID"; do
    [[ -n "$pid" ]] && kill "$pid" 2>/dev/null || true
  done
  for pid in "$LOAD_PID" "$NODE_PID" "$REDIS_PID"; do
    if [[ -n "$pid" ]]; then
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -9 "$pid" 2>/dev/null || true
      wait "$pid" 2>/dev/null || true
    fi
  done
  if [[ $rc -ne 0 && $rc -ne 3 ]]; then
    for f in node.log redis.log; do
      # (backtrace frames left out)
      [[ -s "$WORK/$f" ]] && { echo "--- last lines of $f:" >&2; { grep -v '^  ' "$WORK/$f" | tail -n 20 >&2 || true; }; }
    done
  fi
  rm -rf "$WORK"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# run_load OUT CMD...: runs a load generator in the background and waits for
# it, so that Ctrl-C or a TERM reaches the trap at once (bash does not run an
# INT trap after a foreground child that handles SIGINT itself, as wrk does).
run_load() {
  local out="$1"; shift
  "$@" >"$out" &
  LOAD_PID=$!
  wait "$LOAD_PID"
  LOAD_PID=""
  kill -0 "$NODE_PID" 2>/dev/null || { echo "turnus serve died during the load" >&2; exit 1; }
  kill -0 "$REDIS_PID" 2>/dev/null || { echo "redis-server died during the load" >&2; exit 1; }
}

# A port nothing uses, below the kernel's ephemeral range, so that no client
# socket of this very benchmark (wrk, redis-benchmark) can be holding it.
read -r EPHEMERAL_LOW _ < /proc/sys/net/ipv4/ip_local_port_range || EPHEMERAL_LOW=32768
port_is_free() {
  if command -v ss >/dev/null; then
    [[ -z "$(ss -Htan "( sport = :$1 or dport = :$1 )" 2>/dev/null)" ]]
  else
    ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
  fi
}
free_port() {
  local p low=10000 high=$(( EPHEMERAL_LOW - 1 ))
  (( high > low + 1000 )) || { low=20000; high=29999; }
  for _ in $(seq 200); do
    p=$(( low + (RANDOM * 32768 + RANDOM) % (high - low + 1) ))
    [[ $p -ne 6379 && $p -ne "${1:-0}" ]] && port_is_free "$p" && { echo "$p"; return; }
  done
  echo "no free port found" >&2; return 1
}

REDIS_PORT="$(free_port)"
log "redis-server on 127.0.0.1:$REDIS_PORT"
redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --dir "$WORK" \
  --save "" --appendonly no --daemonize no --logfile "$WORK/redis.log" &
REDIS_PID=$!
RCLI=(redis-cli -h 127.0.0.1 -p "$REDIS_PORT")
for _ in $(seq 100); do
  [[ "$("${RCLI[@]}" PING 2>/dev/null)" == PONG ]] && break
  kill -0 "$REDIS_PID" 2>/dev/null || { echo "redis-server exited" >&2; exit 1; }
  sleep 0.1
done
[[ "$("${RCLI[@]}" PING 2>/dev/null)" == PONG ]] || { echo "redis-server does not answer" >&2; exit 1; }

HTTP_PORT="$(free_port "$REDIS_PORT")"
ADMIN_TOKEN="bench-admin-$RANDOM$RANDOM$RANDOM"
KIOSK_TOKEN="bench-kiosk-$RANDOM$RANDOM$RANDOM"
BASE="http://127.0.0.1:$HTTP_PORT"
log "turnus serve on $BASE (workers: ${WORKERS/#0/one per core})"
TURNUS__REDIS__URL="redis://127.0.0.1:$REDIS_PORT" \
TURNUS__HTTP__LISTEN="127.0.0.1:$HTTP_PORT" \
TURNUS__HTTP__WORKERS="$WORKERS" \
TURNUS__NODE__ID=bench \
TURNUS__NODE__DATA_DIR="$WORK/data" \
TURNUS__AUTH__ADMIN_TOKENS="$ADMIN_TOKEN" \
TURNUS__AUTH__KIOSK_TOKENS="$KIOSK_TOKEN" \
RUST_LOG=warn \
  "$BIN" serve >"$WORK/node.log" 2>&1 &
NODE_PID=$!
for _ in $(seq 150); do
  curl -fs -o /dev/null "$BASE/readyz" && break
  kill -0 "$NODE_PID" 2>/dev/null || { echo "turnus serve exited" >&2; exit 1; }
  sleep 0.1
done
curl -fs -o /dev/null "$BASE/readyz" || { echo "node not ready after 15 s" >&2; exit 1; }

admin_put() {
  curl -fsS -o /dev/null -X PUT "$BASE$1" -H "Authorization: Bearer $ADMIN_TOKEN" \
    -H 'Content-Type: application/json' -d "$2"
}
admin_put /api/v1/admin/branches/bench '{"name":"Benchmark","timezone":"UTC"}'
admin_put /api/v1/admin/branches/bench/services/s1 \
  '{"name":"Benchmark service","prefix":"A","first":1,"last":999999}'
ISSUE_URL="$BASE/api/v1/branches/bench/tickets"
first_ticket="$(curl -fsS -X POST "$ISSUE_URL" -H "Authorization: Bearer $KIOSK_TOKEN" \
  -H 'Content-Type: application/json' -d '{"service":"s1"}')"
[[ "$first_ticket" == *'"number":"A000001"'* ]] \
  || { echo "unexpected first ticket: $first_ticket" >&2; exit 1; }

# --- HTTP load --------------------------------------------------------------
cat >"$WORK/issue.lua" <<EOF
wrk.method = "POST"
wrk.body = '{"service":"s1"}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $KIOSK_TOKEN"

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "BENCH requests=%d duration_us=%d p50_us=%d p99_us=%d non2xx=%d socket_errors=%d\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.status, e.connect + e.read + e.write + e.timeout))
end
EOF

# run_wrk SECONDS LABEL: runs wrk, keeps its full output in $WORK/wrk-LABEL.txt,
# sets W_REQUESTS W_RPS W_P50_US W_P99_US W_NON2XX W_SOCKERR.
TOTAL_REQUESTS=0
TOTAL_BAD=0
run_wrk() {
  local out="$WORK/wrk-$2.txt" line
  run_load "$out" wrk --latency -t"$THREADS" -c"$CONNECTIONS" -d"$1"s -s "$WORK/issue.lua" "$ISSUE_URL"
  line="$(grep '^BENCH ' "$out")" || { cat "$out" >&2; echo "wrk printed no summary" >&2; exit 1; }
  eval "$(sed 's/^BENCH //; s/\([a-z0-9_]*\)=/W_\U\1\E=/g' <<<"$line")"
  W_RPS="$(awk -v r="$W_REQUESTS" -v d="$W_DURATION_US" 'BEGIN { printf "%.0f", r / (d / 1e6) }')"
  TOTAL_REQUESTS=$(( TOTAL_REQUESTS + W_REQUESTS ))
  TOTAL_BAD=$(( TOTAL_BAD + W_NON2XX + W_SOCKET_ERRORS ))
}
# CPU time (user + system, in clock ticks) a process has used so far.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
CLK_TCK="$(getconf CLK_TCK)"
us_per() { awk -v t="$1" -v n="$2" -v hz="$CLK_TCK" 'BEGIN { printf "%.0f", (n > 0 ? t / hz * 1e6 / n : 0) }'; }
ms() { awk -v u="$1" 'BEGIN { printf "%.2f", u / 1000 }'; }

if (( WARMUP > 0 )); then
  log "warm-up: wrk -t$THREADS -c$CONNECTIONS -d${WARMUP}s"
  run_wrk "$WARMUP" warmup
fi
log "measured: wrk --latency -t$THREADS -c$CONNECTIONS -d${DURATION}s -s issue.lua POST $ISSUE_URL"
node_cpu0="$(cpu_ticks "$NODE_PID")" redis_cpu0="$(cpu_ticks "$REDIS_PID")"
run_wrk "$DURATION" main
NODE_US_PER_REQ="$(us_per $(( $(cpu_ticks "$NODE_PID") - node_cpu0 )) "$W_REQUESTS")"
REDIS_US_PER_REQ="$(us_per $(( $(cpu_ticks "$REDIS_PID") - redis_cpu0 )) "$W_REQUESTS")"
HTTP_RPS=$W_RPS HTTP_P50=$W_P50_US HTTP_P99=$W_P99_US
HTTP_REQ=$W_REQUESTS HTTP_NON2XX=$W_NON2XX HTTP_SOCKERR=$W_SOCKET_ERRORS
sed -n '/Latency Distribution/,/Requests\/sec/p' "$WORK/wrk-main.txt" | sed 's/^/    /' >&2

issued() { "${RCLI[@]}" GET 'turnus:b:{bench}:next-id'; }
pass=0
while (( $(issued) < MIN_TICKETS )); do
  pass=$(( pass + 1 ))
  (( pass <= 20 )) || { echo "cannot reach $MIN_TICKETS tickets" >&2; exit 1; }
  remaining=$(( MIN_TICKETS - $(issued) ))
  secs=$(( remaining / (HTTP_RPS > 0 ? HTTP_RPS : 1) + 1 ))
  log "top-up pass $pass: $remaining tickets to go, wrk -d${secs}s"
  run_wrk "$secs" "topup$pass"
done
HTTP_TICKETS="$(issued)"
# Every counted response must have issued a ticket (the first came from curl;
# requests still in flight when wrk stops may add a few more).
if (( HTTP_TICKETS < TOTAL_REQUESTS + 1 - TOTAL_BAD )); then
  echo "only $HTTP_TICKETS tickets for $TOTAL_REQUESTS answered requests" >&2
  TOTAL_BAD=$(( TOTAL_BAD + TOTAL_REQUESTS + 1 - HTTP_TICKETS ))
fi
sleep 1 # let the node settle after the load
NODE_RSS_KB="$(awk '/^VmRSS:/ { print $2 }' "/proc/$NODE_PID/status")"
NODE_HWM_KB="$(awk '/^VmHWM:/ { print $2 }' "/proc/$NODE_PID/status")"

# --- the same script straight on Redis ---------------------------------------
SHA="$("${RCLI[@]}" SCRIPT LOAD "$("$BIN" script issue)")"
[[ "$SHA" =~ ^[0-9a-f]{40}$ ]] || { echo "SCRIPT LOAD failed: $SHA" >&2; exit 1; }
# ARGV as Store::issue passes it: no Idempotency-Key ('') and the request's
# fingerprint, then service, prefix, first, last, UTC offset, and the three
# floors of a store that lost nothing (no day floor, 0, 0).
RB_ARGS=(EVALSHA "$SHA" 1 'turnus:b:{bench}:' '' issue s1 A 1 999999 0 -1 0 0)
[[ "$("${RCLI[@]}" "${RB_ARGS[@]}")" == *ticket-issued* ]] \
  || { echo "the issue script does not issue when run directly" >&2; exit 1; }
# rb_run N: runs redis-benchmark; sets RB_RPS RB_P50 RB_P99 (ms) from its CSV.
rb_run() {
  run_load "$WORK/redis-benchmark.csv" \
    redis-benchmark -h 127.0.0.1 -p "$REDIS_PORT" -c "$CONNECTIONS" -n "$1" --csv "${RB_ARGS[@]}"
  read -r RB_RPS RB_P50 RB_P99 \
    <<<"$(awk -F, 'NR > 1 { gsub(/"/, ""); print $2, $5, $7 }' "$WORK/redis-benchmark.csv" | tail -n 1)"
  [[ "$RB_RPS" =~ ^[0-9.]+$ ]] \
    || { cat "$WORK/redis-benchmark.csv" >&2; echo "cannot read the redis-benchmark rate" >&2; exit 1; }
}
if [[ "$REDIS_REQUESTS" == auto ]]; then
  # A short calibration pass (also a warm-up), then enough for ~5 s.
  rb_run 20000
  REDIS_REQUESTS="$(awk -v r="$RB_RPS" 'BEGIN { n = int(r * 5); print (n < 50000 ? 50000 : n) }')"
fi
log "measured: redis-benchmark -c $CONNECTIONS -n $REDIS_REQUESTS EVALSHA <issue sha> 1 'turnus:b:{bench}:' '' issue s1 A 1 999999 0 -1 0 0"
before="$(issued)"
redis_cpu0="$(cpu_ticks "$REDIS_PID")" node_cpu0="$(cpu_ticks "$NODE_PID")"
rb_run "$REDIS_REQUESTS"
RB_REDIS_US_PER_REQ="$(us_per $(( $(cpu_ticks "$REDIS_PID") - redis_cpu0 )) "$REDIS_REQUESTS")"
# The node's only work during that pass is in the background: its statistics
# aggregator applying those tickets' events, and its event hub receiving
# their PUBLISH. Wait until the aggregator has applied them (or stopped
# moving: aggregator idle), and count the node's CPU until then.
applied() { local n; n="$("${RCLI[@]}" HGET 'turnus:b:{bench}:stats-meta' applied)"; echo "${n:-0}"; }
last=-1 still=0
while (( $(applied) < $(issued) && still < 20 )); do
  now="$(applied)"
  if [[ "$now" == "$last" ]]; then still=$(( still + 1 )); else still=0 last="$now"; fi
  sleep 0.1
done
AGG_NODE_US_PER_REQ="$(us_per $(( $(cpu_ticks "$NODE_PID") - node_cpu0 )) "$REDIS_REQUESTS")"
# redis-benchmark counts error replies as requests: make sure each one issued.
(( $(issued) - before == REDIS_REQUESTS )) \
  || { echo "redis-benchmark issued $(( $(issued) - before )) of $REDIS_REQUESTS tickets" >&2; exit 1; }

# --- profile: where Redis spends its time while tickets are issued ------------
if (( PROFILE > 0 )); then
  log "profile: wrk -d${PROFILE}s with SLOWLOG recording every command"
  "${RCLI[@]}" CONFIG SET slowlog-max-len 2000000 >/dev/null
  "${RCLI[@]}" CONFIG SET slowlog-log-slower-than 0 >/dev/null
  "${RCLI[@]}" SLOWLOG RESET >/dev/null
  before="$(issued)"
  run_wrk "$PROFILE" profile
  "${RCLI[@]}" CONFIG SET slowlog-log-slower-than -1 >/dev/null
  PROFILE_TICKETS=$(( $(issued) - before ))
  # sha -> script name, for every script the node may run.
  : >"$WORK/shas"
  for name in issue call finish stats_apply outbox_trim heartbeat lease_renew \
    fence_probe cluster_state upstream_status close_day; do
    src="$("$BIN" script "$name" 2>/dev/null)" || continue
    # (the node's text ends with the newline that $(…) strips)
    echo "$("${RCLI[@]}" SCRIPT LOAD "$src"$'\n') $name" >>"$WORK/shas"
  done
  "${RCLI[@]}" -2 --json SLOWLOG GET -1 \
    | jq -r '.[] | select((.[3][0] | ascii_downcase) != "slowlog") | "\(.[3][0] | ascii_downcase) \(.[3][1] // "-") \(.[2]) \(.[3] | length)"' \
    >"$WORK/slowlog"
  [[ -n "${PROFILE_KEEP:-}" ]] && "${RCLI[@]}" -2 --json SLOWLOG GET -1 >"$PROFILE_KEEP"
  PROFILE_TABLE="$(awk -v tickets="$PROFILE_TICKETS" '
    NR == FNR { name[$1] = $2; next }
    {
      k = ($1 == "evalsha" && ($2 in name)) ? "script " name[$2] : $1
      n[k]++; sum[k] += $3; if ($3 > max[k]) max[k] = $3; total += $3
    }
    END {
      printf "  %-24s %12s %10s %10s %12s\n", "Redis command", "calls/ticket", "avg us", "max us", "us/ticket"
      for (k in n)
        printf "  %-24s %12.4f %10.1f %10d %12.2f\n", k, n[k] / tickets, sum[k] / n[k], max[k], sum[k] / tickets | "sort -k5 -g -r"
      close("sort -k5 -g -r")
      printf "  %-24s %12s %10s %10s %12.2f\n", "all (" tickets " tickets)", "", "", "", total / tickets
    }' "$WORK/shas" "$WORK/slowlog")"
fi

# --- report -------------------------------------------------------------------
RATIO="$(awk -v h="$HTTP_RPS" -v r="$RB_RPS" 'BEGIN { printf "%.2f", h / r }')"
verdict() { if awk "BEGIN { exit !($1) }"; then echo PASS; else echo MISS; fi; }
G_RATIO="$(verdict "$HTTP_RPS >= 0.30 * $RB_RPS")"
G_P99="$(verdict "$HTTP_P99 < 10000")"
(( CONNECTIONS == 32 )) || G_P99="$G_P99 (goal is set at 32 connections)"
G_RSS="$(verdict "$NODE_RSS_KB < 32768 && $HTTP_TICKETS >= 100000")"
VALID=1
(( TOTAL_BAD == 0 )) || VALID=0

cat <<EOF

turnus ticket issuing benchmark   $(date -u +%Y-%m-%dT%H:%M:%SZ)  $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)
  wrk --latency -t$THREADS -c$CONNECTIONS -d${DURATION}s (after ${WARMUP}s warm-up), node workers: ${WORKERS/#0/one per core}
  ------------------------------------------------------------------
  HTTP issue rate            $(printf '%10s' "$HTTP_RPS") req/s   ($HTTP_REQ requests)
  HTTP latency p50           $(printf '%10s' "$(ms "$HTTP_P50")") ms
  HTTP latency p99           $(printf '%10s' "$(ms "$HTTP_P99")") ms
  non-2xx / socket errors    $(printf '%10s' "$HTTP_NON2XX / $HTTP_SOCKERR")         (all passes: $TOTAL_BAD of $TOTAL_REQUESTS)
  redis-benchmark EVALSHA    $(printf '%10s' "$RB_RPS") req/s   (-c $CONNECTIONS -n $REDIS_REQUESTS; p50 $RB_P50 ms, p99 $RB_P99 ms)
  CPU per ticket, HTTP run   $(printf '%10s' "$NODE_US_PER_REQ") us node, $REDIS_US_PER_REQ us redis
  CPU per ticket, redis-b.   $(printf '%10s' "$RB_REDIS_US_PER_REQ") us redis (with the aggregator's share), $AGG_NODE_US_PER_REQ us node (aggregator + event hub)
  ratio HTTP / redis         $(printf '%10s' "$RATIO")
  node VmRSS                 $(printf '%10s' "$(( NODE_RSS_KB / 1024 ))") MB      (peak VmHWM $(( NODE_HWM_KB / 1024 )) MB, after $HTTP_TICKETS tickets over HTTP)
  ------------------------------------------------------------------
  goal ratio >= 0.30                    $G_RATIO
  goal p99 < 10 ms                      $G_P99
  goal VmRSS < 32 MB after 100k tickets $G_RSS
EOF
if (( PROFILE > 0 )); then
  printf '\n  profile pass (%s s, SLOWLOG on: its rate is not a figure), time inside Redis per command\n  (commands a script runs are listed on their own too; their time is part of the script'"'"'s)\n%s\n' \
    "$PROFILE" "$PROFILE_TABLE"
fi

if (( VALID == 0 )); then
  echo "INVALID RUN: $TOTAL_BAD requests got a non-2xx answer or a socket error" >&2
  exit 1
fi
if (( STRICT == 1 )) && [[ "$G_RATIO $G_P99 $G_RSS" == *MISS* ]]; then
  exit 3
fi
