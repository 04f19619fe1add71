#!/usr/bin/env bash
# Makes sure redis-server (and redis-benchmark/redis-cli), redis-sentinel and
# openssl (the TLS tests make their certificates with it) are installed:
# Debian/Ubuntu packages via apt-get, as root or through sudo.
set -euo pipefail
present() { command -v redis-server && command -v redis-sentinel && command -v openssl; } >/dev/null 2>&1
present && exit 0
echo "redis-server, redis-sentinel or openssl is missing; installing them (apt-get install redis-server redis-sentinel openssl)" >&2
if [[ $(id -u) == 0 ]]; then SUDO=(); elif command -v sudo >/dev/null 2>&1; then SUDO=(sudo); else
  echo "cannot install as a normal user without sudo: install redis-server yourself" >&2; exit 1
fi
export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update -qq
"${SUDO[@]}" apt-get install -y -qq redis-server redis-sentinel openssl >/dev/null
present
