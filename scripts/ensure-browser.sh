#!/usr/bin/env bash
# Makes sure Debian's chromium and chromium-driver are installed: the page
# tests (tests/integration/pages/) drive a real headless Chromium over
# WebDriver. apt-get, as root or through sudo, like ensure-redis.sh.
set -euo pipefail
[[ -x /usr/bin/chromium && -x /usr/bin/chromedriver ]] && exit 0
echo "chromium or chromedriver is missing; installing them (apt-get install chromium chromium-driver)" >&2
if [[ $(id -u) == 0 ]]; then SUDO=(); elif command -v sudo >/dev/null 2>&1; then SUDO=(sudo); else
  echo "cannot install as a normal user without sudo: install chromium and chromium-driver yourself" >&2; exit 1
fi
export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update -qq
"${SUDO[@]}" apt-get install -y -qq chromium chromium-driver fonts-dejavu-core >/dev/null
[[ -x /usr/bin/chromium && -x /usr/bin/chromedriver ]]
