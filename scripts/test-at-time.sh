#!/usr/bin/env bash
# Runs the tests with node's clock at another time of day (UTC), through libfaketime:
#
#   scripts/test-at-time.sh "2026-12-31 23:59:30" [vitest arguments]
#
# Only node runs at that time; the clock runs on from it. Redis and PostgreSQL keep the real
# clock (servers the tests start strip libfaketime from their environment): Debian's
# redis-server, built with jemalloc, hangs under libfaketime 0.9.10, and PostgreSQL's
# statement_timeout never fires under it. Tests that need a store at a time of day set it
# themselves (memoryStore({ clock }), exactClockRedisStore, installTestClock).
# Needs libfaketime (Debian: `apt-get install faketime`), and REDIS_URL / DATABASE_URL as usual.
set -euo pipefail

at="${1:?usage: scripts/test-at-time.sh 'YYYY-MM-DD HH:MM:SS' [vitest arguments]}"
shift
offset=$(($(date -u -d "$at" +%s) - $(date -u +%s)))
faked=(faketime -f "$(printf '%+d' "$offset")")
echo "node's clock at $("${faked[@]}" node -p 'new Date().toISOString()') (offset ${offset} s)"
CI="${CI:-true}" "${faked[@]}" npx vitest run "$@"
