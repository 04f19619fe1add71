#!/usr/bin/env bash
# Failover figures of a three-node group with the default leader timings
# (DESIGN.md §4): SIGKILL, SIGTERM and SIGSTOP of the leader, from the signal
# until another node holds the lease, plus fenced writes accepted from a
# resumed ex-leader (must be 0). Needs redis-server on PATH.
#
#   scripts/bench-failover.sh               # 10 trials of each
#   FAILOVER_TRIALS=20 scripts/bench-failover.sh
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-redis.sh
exec cargo test --release --test integration -- \
    --ignored --exact cluster::bench::failover_timing --nocapture "$@"
