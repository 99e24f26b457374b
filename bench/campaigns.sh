#!/usr/bin/env bash
# Benchmarks of campaigns and calling windows (README, "Campaigns and calling
# windows"), printed as Markdown for BENCHMARKS.md:
#   - enqueue_calls() of 10,000 calls against the owner's bare multi-row
#     INSERT of the same 10,000 rows (no checks, no trigger work), in one run;
#   - claim_due_calls() draining 10,000 due calls with windows in force (half
#     the queue outside its window) against the same without windows.
# Builds pg_dialer in release mode and runs on a cluster of its own.
#
#   bench/campaigns.sh                 # ROUNDS=3 BENCH_SECONDS=15
set -euo pipefail
export PATH="$HOME/.cargo/bin:$PATH"
cd "$(dirname "$0")/.."
root=$(pwd)
ROUNDS=${ROUNDS:-3}
DURATION=${BENCH_SECONDS:-15}
scripts/setup.sh
export PG_MAJOR=15
source scripts/pg.sh
export PATH="$PG_BIN:$PATH" PGUSER=postgres PGHOST=/tmp
DB=pg_dialer_bench
out=$(mktemp -d /tmp/pg_dialer-campaigns.XXXXXX)
results=$out/results.jsonl
say() { echo "== $*" >&2; }
q() { psql -X -q -At -v ON_ERROR_STOP=1 -d "$DB" "$@"; }
cleanup() { scripts/cluster.sh stop campaigns >/dev/null 2>&1 || true; }
trap cleanup EXIT

say "building pg_dialer (release)"
cargo pgrx install --release --pg-config "$PG_CONFIG" >"$out/build.log" 2>&1 || { cat "$out/build.log"; exit 1; }
PGPORT=$(scripts/cluster.sh start campaigns auto:28870)
export PGPORT
say "PostgreSQL $PG_MAJOR on /tmp:$PGPORT"
psql -X -q -d postgres -c "ALTER SYSTEM SET shared_buffers = '2GB'" -c "ALTER SYSTEM SET jit = off"
runuser -u postgres -- "$PG_BIN/pg_ctl" -D /tmp/pg_dialer-campaigns -w restart -l /tmp/pg_dialer-campaigns/server.log >/dev/null
createdb "$DB"
q -c 'CREATE EXTENSION pg_dialer CASCADE' 2>/dev/null
q -f bench/data.sql
q -f bench/setup.sql
run=$out
source "$root"/bench/lib.sh

# 10,000 calls a day ahead (no window), or in a window closed now (its
# opening two hours on, in UTC, where enqueue puts such a call), or in that
# window but due now (a claim moves them), beside 10,000 due calls without a
# window or in one open now.
hour=$(q -c "SELECT extract(hour FROM now() AT TIME ZONE 'UTC')::int")
closed=$(printf '{"hours": [["%02d:00", "%02d:00"]], "time_zone": "UTC"}' $(((hour + 2) % 24)) $(((hour + 2) % 24 + 1)))
queue_calls() { # window of the due calls, window and time of the others
    q -c "UPDATE call_queue SET status = 'canceled' WHERE status IN ('queued', 'in-progress')" \
      -c "TRUNCATE bench_claims" \
      -c "INSERT INTO call_queue (user_id, recipient_number, status, scheduled_time, call_window)
          SELECT ('b0000000-0000-4000-8000-' || lpad((1 + g % 10000)::text, 12, '0'))::uuid,
                 '+1' || (ARRAY['212','415','646','213','281'])[1 + g % 5] || (2000000 + g)::text, 'queued',
                 CASE WHEN g % 2 = 0 THEN now() - interval '1 hour' + g * interval '1 millisecond' ELSE $3 END,
                 CASE WHEN g % 2 = 0 THEN $1 ELSE $2 END
          FROM generate_series(1, 20000) g" \
      -c "VACUUM ANALYZE call_queue"
}
drain() { # name: claims the due calls with one worker
    local dir=$run/$1
    mkdir -p "$dir"
    (cd "$dir" && pgbench -n -M prepared -c 1 -j 1 -t 260 -d "$DB" -f "$root"/bench/workloads/claim.pgbench \
        >pgbench.out 2>&1) || { cat "$dir/pgbench.out"; exit 1; }
    q -c "SELECT json_build_object('name', '$1', 'claimed', count(*),
              'seconds', extract(epoch FROM max(claimed_at) - min(claimed_at))) FROM bench_claims" >>"$results"
}

for round in $(seq 1 "$ROUNDS"); do
    run=$out/round-$round
    say "round $round: enqueue_calls of 10,000 calls, and the bare INSERT"
    bench bare_insert_batch 1 -f "$root"/bench/workloads/bare_insert_batch.pgbench
    bench enqueue_calls 1 -f "$root"/bench/workloads/enqueue_calls.pgbench
    say "round $round: claims without windows, with windows, with windows due"
    queue_calls "NULL::jsonb" "NULL::jsonb" "now() + interval '1 day'"
    drain claims_without_windows
    queue_calls "'{\"hours\": [[\"00:00\", \"24:00\"]]}'::jsonb" "'$closed'::jsonb" \
        "date_trunc('hour', now()) + interval '2 hours'"
    drain claims_with_windows
    queue_calls "'{\"hours\": [[\"00:00\", \"24:00\"]]}'::jsonb" "'$closed'::jsonb" "now() - interval '1 hour'"
    drain claims_with_windows_due
done

say "results in $out"
python3 "$root"/bench/report.py campaigns "$(git rev-parse --short HEAD)" "$ROUNDS" "$DURATION" "$results"
