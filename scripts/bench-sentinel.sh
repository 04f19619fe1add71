#!/usr/bin/env bash
# Redis failover through Sentinel (issue 12): a Redis master with replicas
# and three redis-sentinel processes (down-after-milliseconds 1000), two
# turnus nodes under ticket load; the master is SIGKILLed. Prints, per
# durability mode, when Sentinel switched to the new master (what a client
# of Sentinel alone would see) and when the first ticket was issued on it,
# both from the kill, and how many acknowledged tickets the new master lacks.
# Needs redis-server and redis-sentinel on PATH.
#
#   scripts/bench-sentinel.sh
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-redis.sh
exec cargo test --test integration -- sentinel:: --nocapture --test-threads 1 "$@"
