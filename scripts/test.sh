#!/usr/bin/env bash
# The second command of the README, and what CI runs: the whole test suite.
# Unit tests need nothing; integration tests start their own redis-server
# processes on free loopback ports (never 6379) and the real turnus binary,
# so redis-server is installed first when it is missing; the page tests
# drive a headless Chromium, so chromium and chromium-driver are too.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-redis.sh
scripts/ensure-browser.sh
cargo test --locked "$@"
