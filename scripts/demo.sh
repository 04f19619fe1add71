#!/usr/bin/env bash
# The first command of the README: builds turnus, and runs one node on the
# embedded default (a private redis-server it starts and stops itself, data
# in data/demo) with the demo branches and demo tokens. Prints what to try.
# Extra arguments go to `turnus serve`, e.g. scripts/demo.sh --config FILE.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-redis.sh
cargo build --release --quiet
export TURNUS__NODE__DATA_DIR=${TURNUS__NODE__DATA_DIR:-data/demo}
exec "${CARGO_TARGET_DIR:-target}/release/turnus" serve --demo "$@"
