#!/usr/bin/env bash
# Runs the migrations and store tests against TimescaleDB 2.23 compiled to WASM
# (PGlite, from npm), served on a free loopback port by scripts/timescale/server.mjs.
#
# PGlite holds one database and serves one connection at a time, so the tests run
# one package at a time, with a pool of one connection, emptying the database
# between tests (AMAS_TEST_SINGLE_DB=1, see store/storetest/single.go).
#
# TIMESCALE_TESTS narrows the tests run (a go test -run pattern).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cache="$root/.cache/timescale"
tests=${TIMESCALE_TESTS:-.}

mkdir -p "$cache"
# Reinstall only when the pinned versions change.
if ! cmp -s "$root/scripts/timescale/package.json" "$cache/package.json" || [ ! -d "$cache/node_modules" ]; then
    cp "$root/scripts/timescale/package.json" "$cache/package.json"
    # pglite-socket's peer dependency is the upstream PGlite; the TimescaleDB build
    # replaces it, so npm must not fetch it.
    (cd "$cache" && npm install --no-audit --no-fund --legacy-peer-deps --no-package-lock)
fi
# ESM resolves packages next to the importing file, so the launcher runs from the cache.
cp "$root/scripts/timescale/server.mjs" "$cache/server.mjs"

log="$cache/server.log"
node "$cache/server.mjs" >"$log" 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true' EXIT

addr=""
for _ in $(seq 120); do
    addr=$(sed -n 's/^listening //p' "$log")
    [ -n "$addr" ] && break
    if ! kill -0 "$server" 2>/dev/null; then
        echo "test-timescale: the PGlite server exited:" >&2
        cat "$log" >&2
        exit 1
    fi
    sleep 0.5
done
if [ -z "$addr" ]; then
    echo "test-timescale: the PGlite server did not start within 60s; its log is $log" >&2
    exit 1
fi
echo "test-timescale: TimescaleDB (PGlite) at $addr"

# PGlite accepts any password but requires one. Its one session outlives each
# client connection, prepared statements included, so pgx must not name any.
export AMAS_TEST_DATABASE_URL="postgres://postgres:postgres@$addr/postgres?sslmode=disable&pool_max_conns=1&default_query_exec_mode=exec"
export AMAS_TEST_SINGLE_DB=1
cd "$root"
status=0
go test -count=1 -p 1 -timeout 30m -run "$tests" ./migrations/ ./store/ || status=$?
if [ "$status" -ne 0 ] && ! kill -0 "$server" 2>/dev/null; then
    echo "test-timescale: the PGlite server died; the end of its log:" >&2
    grep -v '^DEBUG' "$log" | tail -40 >&2
fi
exit "$status"
