#!/usr/bin/env bash
# Statistics benchmarks, in release mode, printing their figures (they
# assert no timing):
#   - master ingest: one master node, 1,000 branches in 200 slave groups, a
#     simulator of the 200 groups' leaders shipping batches of 100 events
#     concurrently; events applied per second, and the same apply script run
#     by redis-benchmark on the same Redis, with the ratio;
#   - GET /api/v1/stats/summary latency over those 1,000 branches;
#   - lag from a ticket's answer at a slave to the master's figures;
#   - backlog drain after a 10-minute outage at 50 tickets/s.
#
#   scripts/bench-stats.sh            (needs redis-server and redis-benchmark)
#
# Extra arguments go to the test binary (e.g. --exact stats::bench::stats_ingest_and_summary).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-redis.sh
command -v redis-benchmark >/dev/null || {
  echo "redis-benchmark is missing (apt-get install redis-tools)" >&2
  exit 1
}
exec cargo test --release --test integration -- --ignored --nocapture --test-threads=1 stats::bench "$@"
