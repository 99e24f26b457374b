# Shared by bench/run.sh and bench/compare.sh: one pgbench run, and the states
# the claim, result and rollover workloads start from. The caller sets root,
# DB, DURATION, run (a directory for pgbench's files) and results (the JSON
# lines file), and defines q (psql on $DB).

# One pgbench run: name, clients, extra pgbench arguments -> one JSON line
# (TPS, p50, p99) in $results.
bench() {
    local name=$1 clients=$2
    shift 2
    local dir=$run/$name-$clients
    mkdir -p "$dir"
    (cd "$dir" && pgbench -n -M prepared -c "$clients" -j "$((clients < 2 ? 1 : 2))" -T "$DURATION" \
        --log --log-prefix=tx -d "$DB" "$@" >"$dir/pgbench.out" 2>&1) ||
        { cat "$dir/pgbench.out"; exit 1; }
    if grep -q "aborted" "$dir/pgbench.out"; then cat "$dir/pgbench.out"; exit 1; fi
    python3 "$root"/bench/report.py pgbench "$name" "$clients" "$dir" >>"$results"
}

# $1 calls of 10,000 users that ended last month, and call_queue analyzed: a
# queue as it looks after a while in use. On a queue that was analyzed empty
# the first plans of a session scan the whole table for the quota count
# until autovacuum analyzes it again, a minute later or so.
past_calls() {
    q -c "INSERT INTO call_queue (user_id, recipient_number, status, call_id, provider_id, scheduled_time,
                                  created_at, claimed_at)
          SELECT ('b0000000-0000-4000-8000-' || lpad((1 + g % 10000)::text, 12, '0'))::uuid,
                 '+1415' || (3000000 + g)::text, 'completed', 'bench-past-' || g,
                 'b2a40000-0000-4000-8000-000000000001', t, t, t
          FROM generate_series(1, $1) g,
               LATERAL (SELECT date_trunc('month', now()) - interval '20 days' + g * interval '1 second' AS t) at" \
      -c "VACUUM ANALYZE call_queue" >/dev/null
}

# $1 calls due now, of 10,000 users, to five area codes; nothing else queued
# or in progress, and no claims recorded.
queue_due_calls() {
    q -c "UPDATE call_queue SET status = 'canceled' WHERE status IN ('queued', 'in-progress')" \
      -c "TRUNCATE bench_claims" \
      -c "INSERT INTO call_queue (user_id, recipient_number, status, scheduled_time)
          SELECT ('b0000000-0000-4000-8000-' || lpad((1 + g % 10000)::text, 12, '0'))::uuid,
                 '+1' || (ARRAY['212','415','646','213','281'])[1 + g % 5] || (2000000 + g)::text,
                 'queued', now() - interval '1 hour' + g * interval '1 millisecond'
          FROM generate_series(1, $1) g" \
      -c "VACUUM ANALYZE call_queue"
}

# $1 calls in progress with the provider call ids bench-rec-1, bench-rec-2, ...
# and no result recorded yet; bench_rec_seq (the next id to report) restarts.
calls_in_progress() {
    q -c "UPDATE call_queue SET status = 'canceled' WHERE status IN ('queued', 'in-progress')" \
      -c "DELETE FROM user_call_history WHERE call_id LIKE 'bench-rec-%'" \
      -c "SELECT setval('bench_rec_seq', 1, false)" \
      -c "INSERT INTO call_queue (user_id, recipient_number, status, call_id, provider_id, scheduled_time, claimed_at)
          SELECT ('b0000000-0000-4000-8000-' || lpad((1 + g % 10000)::text, 12, '0'))::uuid, '+1415' || (2000000 + g)::text,
                 'in-progress', 'bench-rec-' || g, 'b2a40000-0000-4000-8000-000000000001', now(), now()
          FROM generate_series(1, $1) g" \
      -c "VACUUM ANALYZE call_queue" >/dev/null
}

# $1 active subscriptions whose period ended at the start of this month, of
# users of their own (created the first time).
ended_subscriptions() {
    q -c "INSERT INTO auth.users (id, email)
          SELECT ('b9000000-0000-4000-8000-' || lpad(g::text, 12, '0'))::uuid, 'r' || g || '@bench.example'
          FROM generate_series(1, $1) g ON CONFLICT DO NOTHING" \
      -c "DELETE FROM user_call_usage WHERE user_id::text LIKE 'b9000000%'" \
      -c "DELETE FROM user_subscriptions WHERE user_id::text LIKE 'b9000000%'" \
      -c "INSERT INTO user_subscriptions (user_id, plan_id, status, current_period_start, current_period_end)
          SELECT ('b9000000-0000-4000-8000-' || lpad(g::text, 12, '0'))::uuid, 'b1a40000-0000-4000-8000-000000000001',
                 'active', date_trunc('month', now()) - interval '1 month', date_trunc('month', now())
          FROM generate_series(1, $1) g" \
      -c "VACUUM ANALYZE user_subscriptions"
}

# One rollover over what is due -> one JSON line (renewed, seconds) in $results.
rollover() {
    local start renewed
    start=$(date +%s.%N)
    renewed=$(PGOPTIONS="-c role=service_role" q -c "SELECT count(*) FILTER (WHERE action = 'renewed') FROM rollover_billing_periods()")
    python3 -c "import json, sys; print(json.dumps({'name': 'rollover', 'renewed': int(sys.argv[1]),
                'seconds': round(float(sys.argv[3]) - float(sys.argv[2]), 3)}))" \
        "$renewed" "$start" "$(date +%s.%N)" >>"$results"
}
