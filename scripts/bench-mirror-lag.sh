#!/usr/bin/env bash
# Propagation lag of the configuration mirror: a master group and a slave
# group "north" (two real nodes each, one Redis per group) on loopback,
# 200 administrative changes on the master, each timed from the master's
# admin answer until a slave node (alternating between the two) serves the
# new version. Prints p50, p99 and max; asserts no timing.
#
#   scripts/bench-mirror-lag.sh            (needs redis-server on PATH)
#
# Extra arguments go to the test binary (e.g. --test-threads=1).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-redis.sh
exec cargo test --release --test integration -- --ignored --nocapture --exact slave::lag::mirror_lag "$@"
