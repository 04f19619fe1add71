#!/usr/bin/env bash
# Writes docs/screenshots/: every page at kiosk (768x1024), desktop
# (1366x768) and phone (390x844) size, from a real headless Chromium against
# a real node with a few tickets (the ignored test pages::screenshots).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-redis.sh
scripts/ensure-browser.sh
cargo test --locked --test integration pages::screenshots -- --ignored "$@"
ls docs/screenshots
