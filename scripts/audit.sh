#!/usr/bin/env bash
# The outside audit of issue 8, repeatable: starts a master node and a slave
# node of its own (embedded Redis each, demo data on the master), then runs
#   - schemathesis with every check, once per role's token (and without a
#     token), against the master, and as admin and peer against the slave;
#   - promtool check metrics on both nodes' /metrics.
# Exits non-zero on any failure. Not part of scripts/test.sh (it takes a few
# minutes); the integration tests in tests/integration/edge/ cover each
# finding in CI. Installs what it needs when missing: promtool (Debian
# package prometheus) and schemathesis (PyPI, into target/audit-venv).
#
#   scripts/audit.sh                      # 25 examples per operation and phase
#   AUDIT_MAX_EXAMPLES=200 scripts/audit.sh
set -euo pipefail
cd "$(dirname "$0")/.."
MAX_EXAMPLES=${AUDIT_MAX_EXAMPLES:-25}
VENV=$PWD/target/audit-venv
CONFIG=$PWD/scripts/audit-schemathesis.toml

scripts/ensure-redis.sh
if ! command -v promtool >/dev/null 2>&1; then
  echo "promtool is missing; installing the Debian package prometheus" >&2
  if [[ $(id -u) == 0 ]]; then SUDO=(); else SUDO=(sudo); fi
  DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y -qq --no-install-recommends prometheus >/dev/null
fi
if [[ ! -x $VENV/bin/schemathesis ]]; then
  echo "schemathesis is missing; installing it into $VENV" >&2
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q 'schemathesis>=4,<5'
fi
cargo build --quiet --bin turnus
BIN=target/debug/turnus

work=$(mktemp -d -t turnus-audit-XXXXXX)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
declare -A TOKEN=([admin]=audit-admin [operator]=audit-operator [kiosk]=audit-kiosk [display]=audit-display [peer]=audit-peer)
common=(
  TURNUS__AUTH__ADMIN_TOKENS=${TOKEN[admin]} TURNUS__AUTH__OPERATOR_TOKENS=${TOKEN[operator]}
  TURNUS__AUTH__KIOSK_TOKENS=${TOKEN[kiosk]} TURNUS__AUTH__DISPLAY_TOKENS=${TOKEN[display]}
  TURNUS__AUTH__PEER_TOKENS=${TOKEN[peer]} TURNUS__HTTP__WORKERS=2
)
master_port=$(free_port)
slave_port=$(free_port)
env "${common[@]}" TURNUS__NODE__ID=audit-master TURNUS__NODE__DATA_DIR="$work/master" \
  TURNUS__HTTP__LISTEN=127.0.0.1:$master_port \
  "$BIN" serve --demo >"$work/master.log" 2>&1 &
pids+=($!)
env "${common[@]}" TURNUS__NODE__ID=audit-slave TURNUS__NODE__DATA_DIR="$work/slave" \
  TURNUS__HTTP__LISTEN=127.0.0.1:$slave_port TURNUS__NODE__ROLE=slave TURNUS__NODE__GROUP=north \
  TURNUS__UPSTREAM__MASTER_URLS=http://127.0.0.1:$master_port TURNUS__UPSTREAM__TOKEN=${TOKEN[peer]} \
  "$BIN" serve >"$work/slave.log" 2>&1 &
pids+=($!)
for port in "$master_port" "$slave_port"; do
  for _ in $(seq 1 300); do
    curl -fsS -o /dev/null "http://127.0.0.1:$port/readyz" && break
    sleep 0.2
  done
  curl -fsS -o /dev/null "http://127.0.0.1:$port/readyz" || {
    echo "node on port $port not ready" >&2; cat "$work"/*.log >&2; exit 1; }
done

failed=()
schemathesis() { # name port [token]
  local name=$1 port=$2 token=${3:-}
  local args=(run "http://127.0.0.1:$port/api/v1/openapi.json" --checks all
    --max-examples "$MAX_EXAMPLES" --workers 2 --no-color --seed 8)
  [[ -n $token ]] && args+=(-H "Authorization: Bearer $token")
  echo "== schemathesis: $name"
  # Run in the work dir: schemathesis keeps a cache in .schemathesis/ there.
  if (cd "$work" && "$VENV/bin/schemathesis" --config-file "$CONFIG" "${args[@]}") >"$work/st-$name.txt" 2>&1; then
    tail -n 1 "$work/st-$name.txt"
  else
    sed -n '/FAILURES/,$p' "$work/st-$name.txt" | head -n 150
    failed+=("schemathesis $name")
  fi
}
for role in admin operator kiosk display peer; do
  schemathesis "master-$role" "$master_port" "${TOKEN[$role]}"
done
schemathesis master-no-token "$master_port"
schemathesis slave-admin "$slave_port" "${TOKEN[admin]}"
schemathesis slave-peer "$slave_port" "${TOKEN[peer]}"

for node in "master:$master_port" "slave:$slave_port"; do
  echo "== promtool check metrics: ${node%%:*}"
  if curl -fsS "http://127.0.0.1:${node#*:}/metrics" | promtool check metrics; then
    echo "ok"
  else
    failed+=("promtool ${node%%:*}")
  fi
done

if grep -h -E ' ERROR | panicked' "$work"/master.log "$work"/slave.log; then
  failed+=("errors in the node logs")
fi
if ((${#failed[@]})); then
  printf 'audit FAILED: %s\n' "${failed[@]}" >&2
  exit 1
fi
echo "audit passed: schemathesis (all checks, every role, master and slave) and promtool"
