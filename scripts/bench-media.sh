#!/usr/bin/env bash
# Media mirror benchmark (issue 10): a master group and a slave group
# "north" (two release nodes each, one Redis per group) on loopback.
# Prints, as tables: ticket issuing on the slave leader alone and during
# the first seconds of a 1 GB mirror, the mirror's rate meanwhile (the busy
# pace) and after; every node's peak RSS while the 1 GB file moves; then
# three rounds of 200 MB master -> slave leader -> follower against plain
# curl downloads of the same bytes from the master in the same round (to
# /dev/null, into a file, into an fsynced file, two fsynced files at once),
# with every process's CPU seconds: once with both slave nodes on this
# machine's one disk, once with one of them on tmpfs (/dev/shm) standing in
# for its own disk, as two machines have. Asserts no timing.
#
#   scripts/bench-media.sh          (needs redis-server and curl on PATH,
#                                    about 3.5 GB of free disk in $TMPDIR)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-redis.sh
command -v curl >/dev/null || apt-get install -y curl
exec cargo test --release --test integration -- --ignored --nocapture --test-threads 1 --exact \
    media::bench::media_mirror media::bench::media_mirror_rate media::bench::media_mirror_rate_own_disks "$@"
