#!/usr/bin/env bash
# This checkout side by side with a release, in one run: both are built with
# --release, each gets a database of the same data set (its own bench/data.sql
# and bench/setup.sql) in one PostgreSQL 15 cluster, and every workload of
# bench/run.sh runs on one version and then the other, round after round
# (the order alternates), so that both see the same machine. The library
# file is swapped between runs (pgbench's new connections load the one in
# place). Prints the medians of the rounds as Markdown (bench/report.py
# interleaved), for BENCHMARKS.md.
#
#   bench/compare.sh [RELEASE_COMMIT [LABEL]]   # default: 0.1.0 (RELEASES.md)
#   ROUNDS=3 BENCH_SECONDS=8 bench/compare.sh
set -euo pipefail
export PATH="$HOME/.cargo/bin:$PATH"
cd "$(dirname "$0")/.."
root=$(pwd)
release=${1:-96218e07597cec4bdc71dc0493b27f20efb3c32a}
label=${2:-0.1.0}
ROUNDS=${ROUNDS:-3}
DURATION=${BENCH_SECONDS:-8}
scripts/setup.sh
export PG_MAJOR=15
source scripts/pg.sh
export PATH="$PG_BIN:$PATH" PGUSER=postgres PGHOST=/tmp PGPORT=28862
libdir=$("$PG_CONFIG" --pkglibdir)
out=$(mktemp -d /tmp/pg_dialer-compare.XXXXXX)
say() { echo "== $*" >&2; }
q() { psql -X -q -At -v ON_ERROR_STOP=1 -d "$DB" "$@"; }
source "$root"/bench/lib.sh

# Puts a version's library in place: a new file renamed over the old one, so
# that no process that has the old one mapped sees it change.
use() {
    cp "$out/$1.so" "$libdir/.pg_dialer.so.swap"
    mv -f "$libdir/.pg_dialer.so.swap" "$libdir/pg_dialer.so"
}
cleanup() {
    scripts/cluster.sh stop compare >/dev/null 2>&1 || true
    git -C "$root" worktree remove --force "$out/release" >/dev/null 2>&1 || true
}
trap cleanup EXIT

say "starting PostgreSQL $PG_MAJOR on /tmp:$PGPORT"
scripts/cluster.sh start compare "$PGPORT" >/dev/null
psql -X -q -d postgres -c "ALTER SYSTEM SET shared_buffers = '2GB'" -c "ALTER SYSTEM SET max_connections = 50" \
    -c "ALTER SYSTEM SET jit = off"
runuser -u postgres -- "$PG_BIN/pg_ctl" -D /tmp/pg_dialer-compare -w restart -l /tmp/pg_dialer-compare/server.log >/dev/null

# old: the release, from a worktree of its commit; new: this checkout. Each
# is built and installed (library, control file, scripts) right before its
# database is created, so that each database gets its own version.
git worktree add --detach "$out/release" "$release" >/dev/null 2>&1
src_old=$out/release
src_new=$root
target_old=$root/target/release-$label
target_new=$root/target
for v in old new; do
    src=src_$v
    src=${!src}
    target=target_$v
    say "building and installing $v ($src, release build)"
    (cd "$src" && CARGO_TARGET_DIR=${!target} cargo pgrx install --release --pg-config "$PG_CONFIG") \
        >"$out/build-$v.log" 2>&1 || { tail -30 "$out/build-$v.log"; exit 1; }
    cp "$libdir/pg_dialer.so" "$out/$v.so"
    DB=bench_$v
    say "loading the data set into $DB"
    createdb "$DB"
    q -c "SET client_min_messages = warning" -c "CREATE EXTENSION pg_dialer CASCADE"
    q -f "$src/bench/data.sql"
    q -f "$src/bench/setup.sql"
    q -v body="$(cat "$src/demo/payloads/vapi_end_of_call_report.json")" <<<"INSERT INTO bench_payloads VALUES (:'body');"
    past_calls 100000
done

# Every workload of bench/run.sh, shorter, on version $1 (round $2).
measure() {
    local v=$1 round=$2 src w
    src=src_$v
    src=${!src}
    DB=bench_$v
    run=$out/$v-$round
    results=$out/$v-$round.jsonl
    mkdir -p "$run"
    use "$v"
    say "round $round: $v"
    for c in 1 2 8; do
        bench bare_insert "$c" -f "$src"/bench/workloads/bare_insert.pgbench
        bench enqueue_call "$c" -f "$src"/bench/workloads/enqueue.pgbench
    done
    for w in 1 4 8; do
        queue_due_calls 30000
        (cd "$run" && pgbench -n -M prepared -c "$w" -j "$((w < 2 ? 1 : 2))" -t "$((30000 / 50 / w))" -d "$DB" \
            -f "$src"/bench/workloads/claim.pgbench >"claim-$w.out" 2>&1) || { cat "$run/claim-$w.out"; exit 1; }
        q -c "SELECT json_build_object('name', 'claim_due_calls', 'workers', $w, 'claimed', count(*),
                  'seconds', extract(epoch FROM max(claimed_at) - min(claimed_at))) FROM bench_claims" >>"$results"
    done
    calls_in_progress 100000
    for c in 1 2 8; do
        PGOPTIONS="-c role=service_role" bench record_call_result "$c" -f "$src"/bench/workloads/record_result.pgbench
    done
    q -c "UPDATE call_queue SET status = 'completed' WHERE status IN ('queued', 'in-progress')" \
      -c "VACUUM ANALYZE call_queue"
    local user_opts='-c role=authenticated -c request.jwt.claims={"sub":"b0000000-0000-4000-8000-000000004242","role":"authenticated"}'
    PGOPTIONS=$user_opts bench compute_remaining_usage 1 -f "$src"/bench/workloads/remaining_usage.pgbench
    PGOPTIONS=$user_opts bench pick_provider_number 1 -f "$src"/bench/workloads/pick_number.pgbench
    PGOPTIONS=$user_opts bench history_page 1 -f "$src"/bench/workloads/history_page.pgbench
    ended_subscriptions 50000
    rollover
}

for round in $(seq 1 "$ROUNDS"); do
    if ((round % 2)); then order="old new"; else order="new old"; fi
    for v in $order; do measure "$v" "$round"; done
done
use new
say "results in $out"
python3 bench/report.py interleaved "$label" "$(git rev-parse --short HEAD)" "$ROUNDS" "$DURATION" \
    "$(ls "$out"/old-*.jsonl | paste -sd,)" "$(ls "$out"/new-*.jsonl | paste -sd,)"
