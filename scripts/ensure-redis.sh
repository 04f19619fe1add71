#!/usr/bin/env bash
# Makes sure redis-server (and redis-benchmark/redis-cli) are installed:
# Debian/Ubuntu packages via apt-get, as root or through sudo.
set -euo pipefail
command -v redis-server >/dev/null 2>&1 && command -v redis-sentinel >/dev/null 2>&1 && exit 0
echo "redis-server or redis-sentinel is missing; installing it (apt-get install redis-server redis-sentinel)" >&2
if [[ $(id -u) == 0 ]]; then SUDO=(); elif command -v sudo >/dev/null 2>&1; then SUDO=(sudo); else
  echo "cannot install as a normal user without sudo: install redis-server yourself" >&2; exit 1
fi
export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update -qq
"${SUDO[@]}" apt-get install -y -qq redis-server redis-sentinel >/dev/null
command -v redis-server >/dev/null 2>&1 && command -v redis-sentinel >/dev/null 2>&1
