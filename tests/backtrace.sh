#!/usr/bin/env bash
# No Rust backtrace reaches a client, also when the server runs with
# RUST_BACKTRACE=1 in its environment (pgrx would then put one into the DETAIL
# of errors that pass a Rust frame, and PostgREST forwards DETAIL). Starts a
# cluster of its own with RUST_BACKTRACE=1. Prints TAP.
# Needs PG_MAJOR/PG_BIN (scripts/pg.sh) and pg_dialer installed.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=$(mktemp -d /tmp/pg_dialer-backtrace.XXXXXX)
chown postgres "$dir"
as_postgres() { runuser -u postgres -- "$@"; }
trap 'as_postgres env RUST_BACKTRACE=1 "$PG_BIN/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true; rm -rf "$dir"' EXIT
as_postgres "$PG_BIN/initdb" -D "$dir/data" -U postgres --auth=trust >/dev/null
# A port of its own: the first free one from 29500.
port=29500
while [ -e "/tmp/.s.PGSQL.$port.lock" ] || [ -e "$dir/.s.PGSQL.$port" ]; do port=$((port + 1)); done
as_postgres env RUST_BACKTRACE=1 RUST_LIB_BACKTRACE=1 "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w \
    -o "-p $port -k $dir -c listen_addresses=''" start >/dev/null
psql_q() { psql -X -q -h "$dir" -p "$port" -U postgres -v VERBOSITY=verbose "$@"; }
psql_q -d postgres -c 'CREATE EXTENSION pg_dialer CASCADE' 2>/dev/null

n=0
check() { # description, SQL that fails in Rust, expected SQLSTATE
    local out
    out=$(psql_q -d postgres -c "$2" 2>&1 || true)
    n=$((n + 1))
    if grep -q "ERROR:  $3" <<<"$out" && ! grep -Eq "rustc|panicking|pgrx_pg_sys|\.rs:[0-9]" <<<"$(grep -v "^LOCATION:" <<<"$out")"; then
        echo "ok $n - $1: $3 without a backtrace"
    else
        echo "not ok $n - $1: $3 without a backtrace"
        sed 's/^/#   /' <<<"$out" | head -12
    fi
}
check "an error raised from Rust (as a user)" \
    "SET ROLE authenticated; SELECT set_config('request.jwt.claims', '{\"sub\":\"a11ce000-0000-4000-8000-000000000001\"}', false); SELECT * FROM dialer.schema_drift()" 42501
check "malformed JWT claims, read in Rust" \
    "SELECT set_config('request.jwt.claims', '{\"sub\":\"not-a-uuid\"}', false); SELECT dialer.uid()" 42501
check "an error raised from Rust (as the owner)" \
    "SELECT dialer.record_schema_baseline()" 55000
check "an error of PostgreSQL beneath a Rust frame (SPI)" \
    "SELECT * FROM rescue_stale_calls('300000 years')" 22008
check "invalid input to a Rust function" \
    "SELECT * FROM claim_due_calls(0)" 22023
echo "1..$n"
