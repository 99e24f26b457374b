#!/usr/bin/env bash
# Benchmarks of pg_dialer's SQL API against plain SQL, written to BENCHMARKS.md.
# Builds pg_dialer in release mode, starts a local PostgreSQL 15 cluster, loads
# the data set of bench/data.sql (10k users, 3 providers, 10k numbers, 1M
# history rows), runs every workload of bench/workloads/ with pgbench, and
# renders the figures, all from this one run, with bench/report.py.
set -euo pipefail
export PATH="$HOME/.cargo/bin:$PATH"
cd "$(dirname "$0")/.."
root=$(pwd)
scripts/setup.sh
export PG_MAJOR=15
source scripts/pg.sh
export PATH="$PG_BIN:$PATH" PGUSER=postgres PGHOST=/tmp PGPORT=28860
DB=pg_dialer_bench
DURATION=${BENCH_SECONDS:-15}
out=$(mktemp -d /tmp/pg_dialer-bench.XXXXXX)
results=$out/results.jsonl
say() { echo "== $*" >&2; }
record() { echo "$1" >>"$results"; }   # one JSON object per line
now() { date +%s.%N; }
since() { python3 -c "import sys; print(round(float(sys.argv[2]) - float(sys.argv[1]), 3))" "$1" "$(now)"; }
q() { psql -X -q -At -v ON_ERROR_STOP=1 -d "$DB" "$@"; }

say "building pg_dialer (release)"
cargo pgrx install --release --pg-config "$PG_CONFIG" >"$out/build.log" 2>&1 || { cat "$out/build.log"; exit 1; }

say "starting PostgreSQL $PG_MAJOR on /tmp:$PGPORT"
scripts/cluster.sh start bench "$PGPORT"
psql -X -q -d postgres -c "ALTER SYSTEM SET shared_buffers = '2GB'" -c "ALTER SYSTEM SET max_connections = 50" \
    -c "ALTER SYSTEM SET jit = off"
runuser -u postgres -- "$PG_BIN/pg_ctl" -D /tmp/pg_dialer-bench -w restart -l /tmp/pg_dialer-bench/server.log >/dev/null

say "loading the data set"
createdb "$DB"
q -c 'CREATE EXTENSION pg_dialer CASCADE' 2>/dev/null
start=$(now)
q -f bench/data.sql
q -f bench/setup.sql
record "{\"name\": \"load\", \"seconds\": $(since "$start")}"
record "$(q -c "SELECT json_build_object('name', 'server', 'version', version(), 'commit', '$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- . ':!BENCHMARKS.md' || echo -dirty)')")"
q -v body="$(cat demo/payloads/vapi_end_of_call_report.json)" <<<"INSERT INTO bench_payloads VALUES (:'body');"

run=$out
source "$root"/bench/lib.sh
past_calls 100000

say "enqueue_call against a bare INSERT, 1, 2 and 8 clients"
for c in 1 2 8; do
    bench bare_insert "$c" -f "$root"/bench/workloads/bare_insert.pgbench
    bench enqueue_call "$c" -f "$root"/bench/workloads/enqueue.pgbench
done

say "claim_due_calls draining 100k calls with 1, 4 and 8 workers"
for w in 1 4 8; do
    queue_due_calls 100000
    per_worker=$((100000 / 50 / w + 200))
    dir=$out/claim-$w
    mkdir -p "$dir"
    (cd "$dir" && pgbench -n -M prepared -c "$w" -j "$((w < 2 ? 1 : 2))" -t "$per_worker" -d "$DB" \
        -f "$root"/bench/workloads/claim.pgbench >pgbench.out 2>&1) || { cat "$dir/pgbench.out"; exit 1; }
    if grep -q "aborted" "$dir/pgbench.out"; then cat "$dir/pgbench.out"; exit 1; fi
    record "$(q -c "SELECT json_build_object(
        'name', 'claim_due_calls', 'workers', $w,
        'claimed', count(*), 'distinct', count(DISTINCT call_queue_id),
        'seconds', extract(epoch FROM max(claimed_at) - min(claimed_at)),
        'per_provider', (SELECT json_object_agg(p.name, c.n) FROM (SELECT provider_id, count(*) n FROM bench_claims GROUP BY 1) c
                         JOIN call_service_providers p ON p.id = c.provider_id),
        'left_queued', (SELECT count(*) FROM call_queue WHERE status = 'queued'))
        FROM bench_claims")"
done

say "record_call_result"
calls_in_progress 200000
for c in 1 2 8; do
    PGOPTIONS="-c role=service_role" bench record_call_result "$c" -f "$root"/bench/workloads/record_result.pgbench
done
record "$(q -c "SELECT json_build_object('name', 'record_call_result_check',
    'history_rows', (SELECT count(*) FROM user_call_history WHERE call_id LIKE 'bench-rec-%'),
    'delivered', (SELECT last_value FROM bench_rec_seq))")"

# Calls left in progress by the run above would be counted by routing; a real
# queue holds no more calls in progress than the providers' limits.
q -c "UPDATE call_queue SET status = 'completed' WHERE status IN ('queued', 'in-progress')" -c "VACUUM ANALYZE call_queue"

say "latencies: compute_remaining_usage, pick_provider_number, a user's history page"
user_opts='-c role=authenticated -c request.jwt.claims={"sub":"b0000000-0000-4000-8000-000000004242","role":"authenticated"}'
PGOPTIONS=$user_opts bench compute_remaining_usage 1 -f "$root"/bench/workloads/remaining_usage.pgbench
PGOPTIONS=$user_opts bench pick_provider_number 1 -f "$root"/bench/workloads/pick_number.pgbench
PGOPTIONS=$user_opts bench history_page 1 -f "$root"/bench/workloads/history_page.pgbench
PGOPTIONS=$user_opts bench history_page_rls_only 1 -f "$root"/bench/workloads/history_page_rls_only.pgbench
PGOPTIONS=$user_opts psql -X -q -At -d "$DB" -c "EXPLAIN (COSTS OFF) $(grep -v '^--' bench/workloads/history_page.pgbench)" \
    >"$out/history_explain.txt"
python3 -c 'import json,sys; print(json.dumps({"name": "history_explain", "plan": sys.stdin.read()}))' \
    <"$out/history_explain.txt" >>"$results"

say "rollover_billing_periods over 100k ended subscriptions"
ended_subscriptions 100000
rollover

scripts/cluster.sh stop bench
say "writing BENCHMARKS.md"
python3 bench/report.py render "$results" >BENCHMARKS.md
echo "Wrote BENCHMARKS.md (raw results in $results)"
