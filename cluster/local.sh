#!/usr/bin/env bash
# Runs turnus groups on this machine's loopback, for trying the cluster out.
#
#   cluster/local.sh start          master group "central" (2 nodes, one Redis)
#                                   + slave group "north" (2 nodes, another Redis),
#                                   demo data imported on the master
#   cluster/local.sh group [N]      one group of N nodes (default 3) on one Redis
#   cluster/local.sh sentinel       one group of 2 nodes on a Redis master, a
#                                   replica and three sentinels (durability
#                                   replicated); kill the master to see a failover
#   cluster/local.sh status         who runs, who leads
#   cluster/local.sh stop           stops everything this script started
#
# Ports: master nodes 8080, 8081; slave nodes 8180, 8181; group nodes 8090+;
# Redis 16379 (master/group) and 16380 (slave), replica 16381, sentinels
# 16391-16393. Override with BASE_PORT_*.
# State, logs and Redis data live in cluster/.run/. Set TURNUS_BIN to use a
# prebuilt binary; otherwise `cargo build --release` runs first.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
run="$here/.run"
REDIS_A=${BASE_PORT_REDIS:-16379}
REDIS_B=$((REDIS_A + 1))
MASTER_PORT=${BASE_PORT_MASTER:-8080}
SLAVE_PORT=${BASE_PORT_SLAVE:-8180}
GROUP_PORT=${BASE_PORT_GROUP:-8090}

# Demo tokens (the config files' defaults are overridden for the local run).
export TURNUS__AUTH__ADMIN_TOKENS=demo-admin TURNUS__AUTH__OPERATOR_TOKENS=demo-operator
export TURNUS__AUTH__KIOSK_TOKENS=demo-kiosk TURNUS__AUTH__DISPLAY_TOKENS=demo-display
export TURNUS__AUTH__PEER_TOKENS=demo-peer
# The master nodes share the repository's media/ as their library; slave
# nodes mirror it into their data directories.
export TURNUS__MEDIA__LIBRARY_DIR="$root/media"

binary() {
  if [[ -n "${TURNUS_BIN:-}" ]]; then echo "$TURNUS_BIN"; return; fi
  (cd "$root" && cargo build --release --quiet) >&2
  echo "${CARGO_TARGET_DIR:-$root/target}/release/turnus"
}

need_redis() {
  command -v redis-server >/dev/null || {
    echo "redis-server is missing: sudo apt-get install -y redis-server" >&2; exit 1; }
}

start_redis() { # name port
  mkdir -p "$run/$1"
  redis-server --port "$2" --bind 127.0.0.1 --dir "$run/$1" --appendonly yes \
    --save "" --maxmemory-policy noeviction --daemonize yes \
    --pidfile "$run/$1.redis.pid" --logfile "$run/$1/redis.log" >/dev/null
  for _ in $(seq 100); do redis-cli -p "$2" ping >/dev/null 2>&1 && return; sleep 0.05; done
  echo "redis on port $2 did not start" >&2; exit 1
}

start_node() { # id config port redis_port|sentinel [extra args...]
  local id=$1 config=$2 port=$3 redis=$4 url; shift 4
  # "sentinel": the node finds the master through TURNUS__REDIS__SENTINELS.
  if [[ $redis == sentinel ]]; then url=""; else url=redis://127.0.0.1:$redis/; fi
  TURNUS__NODE__ID=$id TURNUS__HTTP__LISTEN=127.0.0.1:$port \
  TURNUS__REDIS__URL=$url TURNUS__NODE__DATA_DIR="$run/$id" \
    "$BIN" serve --config "$config" "$@" >"$run/$id.log" 2>&1 &
  echo $! >"$run/$id.pid"
}

start_sentinel() { # index port master_port
  local conf="$run/sentinel-$1.conf"
  sed -e "s/^port .*/port $2/" -e "s/127.0.0.1 6379 2/127.0.0.1 $3 2/" \
      -e "s|^dir .*|dir $run|" "$here/redis/sentinel.conf" >"$conf"
  redis-sentinel "$conf" --daemonize yes --pidfile "$run/sentinel-$1.redis.pid" \
    --logfile "$run/sentinel-$1.log" >/dev/null
}

wait_ready() { # port
  for _ in $(seq 200); do curl -sf "http://127.0.0.1:$1/readyz" >/dev/null && return; sleep 0.05; done
  echo "node on port $1 did not become ready; see $run/*.log" >&2; exit 1
}

stop_all() {
  shopt -s nullglob
  for pid in "$run"/*.pid; do
    case "$pid" in *.redis.pid) continue ;; esac
    kill "$(cat "$pid")" 2>/dev/null || true; rm -f "$pid"
  done
  sleep 0.5
  for pid in "$run"/*.redis.pid; do kill "$(cat "$pid")" 2>/dev/null || true; rm -f "$pid"; done
}

status() {
  shopt -s nullglob
  for pid in "$run"/*.pid; do
    case "$pid" in *.redis.pid) continue ;; esac
    local id; id=$(basename "$pid" .pid)
    if kill -0 "$(cat "$pid")" 2>/dev/null; then echo "$id running (log $run/$id.log)"; else echo "$id stopped"; fi
  done
  for port in $MASTER_PORT $SLAVE_PORT $GROUP_PORT; do
    curl -s -H 'Authorization: Bearer demo-display' "http://127.0.0.1:$port/api/v1/cluster" 2>/dev/null && echo || true
  done
}

case "${1:-}" in
  start)
    need_redis; mkdir -p "$run"; BIN=$(binary)
    start_redis central "$REDIS_A"; start_redis north "$REDIS_B"
    start_node m1 "$root/config/master.toml" "$MASTER_PORT" "$REDIS_A" --demo
    wait_ready "$MASTER_PORT"
    start_node m2 "$root/config/master.toml" $((MASTER_PORT + 1)) "$REDIS_A"
    export TURNUS__UPSTREAM__MASTER_URLS="http://127.0.0.1:$MASTER_PORT,http://127.0.0.1:$((MASTER_PORT + 1))"
    export TURNUS__UPSTREAM__TOKEN=demo-peer
    start_node s1 "$root/config/slave.toml" "$SLAVE_PORT" "$REDIS_B"
    start_node s2 "$root/config/slave.toml" $((SLAVE_PORT + 1)) "$REDIS_B"
    for p in $((MASTER_PORT + 1)) "$SLAVE_PORT" $((SLAVE_PORT + 1)); do wait_ready "$p"; done
    cat <<MSG
master group "central":  http://127.0.0.1:$MASTER_PORT  http://127.0.0.1:$((MASTER_PORT + 1))   (Redis :$REDIS_A)
slave group "north":     http://127.0.0.1:$SLAVE_PORT  http://127.0.0.1:$((SLAVE_PORT + 1))   (Redis :$REDIS_B)
tokens: demo-admin, demo-operator, demo-kiosk, demo-display

  # administer on the master: add a service to the north group's branch "porto"
  curl -s -X PUT -H 'Authorization: Bearer demo-admin' -H 'Content-Type: application/json' \\
       -d '{"name":"Insurance","prefix":"I"}' http://127.0.0.1:$MASTER_PORT/api/v1/admin/branches/porto/services/insurance
  # a moment later every slave node serves it
  curl -s -H 'Authorization: Bearer demo-display' http://127.0.0.1:$SLAVE_PORT/api/v1/branches/porto
  # take a ticket at the branch
  curl -s -X POST -H 'Authorization: Bearer demo-kiosk' -H 'Content-Type: application/json' \\
       -d '{"service":"insurance"}' http://127.0.0.1:$((SLAVE_PORT + 1))/api/v1/branches/porto/tickets
  # the slave group and its link to the master
  curl -s -H 'Authorization: Bearer demo-display' http://127.0.0.1:$SLAVE_PORT/api/v1/cluster

stop with: cluster/local.sh stop
MSG
    ;;
  group)
    need_redis; mkdir -p "$run"; BIN=$(binary); n=${2:-3}
    start_redis central "$REDIS_A"
    for i in $(seq 0 $((n - 1))); do
      args=(); [[ $i == 0 ]] && args=(--demo)
      start_node "n$((i + 1))" "$root/config/master.toml" $((GROUP_PORT + i)) "$REDIS_A" "${args[@]}"
      [[ $i == 0 ]] && wait_ready "$GROUP_PORT"
    done
    for i in $(seq 0 $((n - 1))); do wait_ready $((GROUP_PORT + i)); echo "node n$((i + 1)): http://127.0.0.1:$((GROUP_PORT + i))"; done
    echo "one Redis on :$REDIS_A; try: curl -s -H 'Authorization: Bearer demo-display' http://127.0.0.1:$GROUP_PORT/api/v1/cluster"
    echo "stop with: cluster/local.sh stop"
    ;;
  sentinel)
    need_redis; mkdir -p "$run"; BIN=$(binary)
    replica=$((REDIS_A + 2)); first_sentinel=$((REDIS_A + 12))
    start_redis central "$REDIS_A"
    start_redis central-replica "$replica"
    redis-cli -p "$replica" replicaof 127.0.0.1 "$REDIS_A" >/dev/null
    sentinels=()
    for i in 0 1 2; do
      start_sentinel "$i" $((first_sentinel + i)) "$REDIS_A"
      sentinels+=("127.0.0.1:$((first_sentinel + i))")
    done
    export TURNUS__REDIS__SENTINELS=$(IFS=,; echo "${sentinels[*]}")
    export TURNUS__REDIS__MASTER_NAME=turnus TURNUS__REDIS__DURABILITY=replicated
    start_node n1 "$root/config/master.toml" "$GROUP_PORT" sentinel --demo
    wait_ready "$GROUP_PORT"
    start_node n2 "$root/config/master.toml" $((GROUP_PORT + 1)) sentinel
    wait_ready $((GROUP_PORT + 1))
    cat <<MSG
nodes: http://127.0.0.1:$GROUP_PORT http://127.0.0.1:$((GROUP_PORT + 1))
Redis master :$REDIS_A, replica :$replica, sentinels ${sentinels[*]} (master name "turnus")
  # fail the master over and watch the nodes follow (their logs: $run/n1.log)
  kill -9 \$(cat $run/central.redis.pid)
  redis-cli -p $first_sentinel sentinel get-master-addr-by-name turnus
stop with: cluster/local.sh stop
MSG
    ;;
  status) status ;;
  stop) stop_all ;;
  *) sed -n '2,19p' "$0"; exit 2 ;;
esac
