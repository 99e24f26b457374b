#!/usr/bin/env bash
# Where the time of enqueue_call and record_call_result goes, statement by
# statement, next to a bare INSERT of the same row: each workload of
# bench/workloads/ runs alone with pg_stat_statements counting every
# statement, also those run inside pg_dialer's functions (track = all), on
# the data set of bench/data.sql. Prints Markdown for bench/NOTES.md.
#
#   bench/profile.sh            # BENCH_SECONDS=15 CLIENTS=1 by default
set -euo pipefail
export PATH="$HOME/.cargo/bin:$PATH"
cd "$(dirname "$0")/.."
root=$(pwd)
DURATION=${BENCH_SECONDS:-15}
CLIENTS=${CLIENTS:-1}
scripts/setup.sh >&2
export PG_MAJOR=15
source scripts/pg.sh
export PATH="$PG_BIN:$PATH" PGUSER=postgres PGHOST=/tmp
DB=pg_dialer_profile
out=$(mktemp -d /tmp/pg_dialer-profile.XXXXXX)
say() { echo "== $*" >&2; }
q() { psql -X -q -At -v ON_ERROR_STOP=1 -d "$DB" "$@"; }
record() { :; }   # bench/lib.sh's figures are not needed here
run=$out
results=$out/results.jsonl
source "$root"/bench/lib.sh
cleanup() { scripts/cluster.sh stop profile >/dev/null 2>&1 || true; }
trap cleanup EXIT

say "building pg_dialer (release)"
cargo pgrx install --release --pg-config "$PG_CONFIG" >"$out/build.log" 2>&1 || { cat "$out/build.log"; exit 1; }
PGPORT=$(scripts/cluster.sh start profile auto:29900)
export PGPORT
say "PostgreSQL $PG_MAJOR on /tmp:$PGPORT"
psql -X -q -d postgres -c "ALTER SYSTEM SET shared_buffers = '2GB'" -c "ALTER SYSTEM SET jit = off" \
    -c "ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'"
runuser -u postgres -- "$PG_BIN/pg_ctl" -D /tmp/pg_dialer-profile -w restart -l /tmp/pg_dialer-profile/server.log >/dev/null
# the module's settings exist once it is loaded
psql -X -q -d postgres -c "ALTER SYSTEM SET pg_stat_statements.track = 'all'" \
    -c "ALTER SYSTEM SET pg_stat_statements.track_planning = on" -c "SELECT pg_reload_conf()" >/dev/null

say "loading the data set"
createdb "$DB"
q -c 'CREATE EXTENSION pg_dialer CASCADE' -c 'CREATE EXTENSION pg_stat_statements' 2>/dev/null
q -f bench/data.sql
q -f bench/setup.sql
q -v body="$(cat demo/payloads/vapi_end_of_call_report.json)" <<<"INSERT INTO bench_payloads VALUES (:'body');"
past_calls 100000

# One workload alone: its transactions, their mean latency, and each
# statement's calls per transaction and mean time (execution and planning).
profile() { # title, workload, PGOPTIONS for pgbench's sessions
    local title=$1 workload=$2 options=${3:-}
    q -c "VACUUM ANALYZE" -c "SELECT pg_stat_statements_reset()" >/dev/null
    (cd "$out" && PGOPTIONS=$options pgbench -n -M prepared -c "$CLIENTS" -j "$CLIENTS" -T "$DURATION" -d "$DB" \
        -f "$root/bench/workloads/$workload.pgbench" >"$out/$workload.out" 2>&1) ||
        { cat "$out/$workload.out"; exit 1; }
    local tx latency
    tx=$(grep -oP 'number of transactions actually processed: \K[0-9]+' "$out/$workload.out")
    latency=$(grep -oP 'latency average = \K[0-9.]+' "$out/$workload.out")
    echo
    echo "**$title** ($CLIENTS client, $tx transactions, $latency ms each on average as pgbench sees them)"
    echo
    echo "| statement | per transaction | µs each (execution + planning) | µs per transaction |"
    echo "|---|---:|---:|---:|"
    q -F '|' -c "
        SELECT '| \`' || left(regexp_replace(query, '\s+', ' ', 'g'), 90)
               || CASE WHEN length(regexp_replace(query, '\s+', ' ', 'g')) > 90 THEN '...' ELSE '' END || '\`',
               round(calls::numeric / $tx, 2),
               round(((total_exec_time + total_plan_time) / calls * 1000)::numeric),
               round(((total_exec_time + total_plan_time) / $tx * 1000)::numeric) || ' |'
        FROM pg_stat_statements
        WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
          AND calls >= $tx / 2 AND query !~* '^(BEGIN|COMMIT|SET LOCAL ROLE|SELECT pg_stat_statements)'
        ORDER BY total_exec_time + total_plan_time DESC
        LIMIT 14"
}

echo "Measured by bench/profile.sh (BENCH_SECONDS=$DURATION, CLIENTS=$CLIENTS) at $(git rev-parse --short HEAD)."
echo "A statement inside another counts in both: the figures of nested statements add up to part of"
echo "their caller's; the rest of the caller's time is its own work (Rust, triggers, executor start-up)."
profile "A bare INSERT by the owner" bare_insert
profile "enqueue_call as a user" enqueue
calls_in_progress 200000
profile "record_call_result, first deliveries" record_result "-c role=service_role"
