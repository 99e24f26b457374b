#!/usr/bin/env bash
# The dispatcher's background worker against tests/mock_provider.py, printed
# as Markdown for BENCHMARKS.md:
#   - calls placed per second over $BENCH_SECONDS (60), of 200 users, with three providers
#     of limits 50, 30 and 20, the mock answering in 20 ms and calls lasting
#     200 ms (their results come back through record_call_result()), against
#     the ceiling those allow: sum of limits / (answer time + call length);
#   - how long a call queued on an idle worker waits before its request
#     reaches the provider (20 calls, one at a time).
# Builds pg_dialer in release mode and runs on a cluster of its own with
# shared_preload_libraries = 'pg_dialer'.
#
#   bench/dispatch.sh                 # BENCH_SECONDS=60
set -euo pipefail
export PATH="$HOME/.cargo/bin:$PATH"
cd "$(dirname "$0")/.."
DURATION=${BENCH_SECONDS:-60}
ANSWER_MS=20
CALL_MS=200
scripts/setup.sh >/dev/null
export PG_MAJOR=15
source scripts/pg.sh
export PATH="$PG_BIN:$PATH" PGUSER=postgres PGHOST=/tmp
DB=pg_dialer_bench_dispatch
out=$(mktemp -d /tmp/pg_dialer-bench-dispatch.XXXXXX)
say() { echo "== $*" >&2; }
q() { psql -X -q -At -v ON_ERROR_STOP=1 -d "$DB" -c "$1"; }
mock=
cleanup() {
    [ -z "$mock" ] || kill "$mock" 2>/dev/null || true
    [ -n "${KEEP:-}" ] || scripts/cluster.sh stop bench-dispatch >/dev/null 2>&1 || true
}
trap cleanup EXIT

say "building pg_dialer (release)"
cargo pgrx install --release --pg-config "$PG_CONFIG" >"$out/build.log" 2>&1 || { cat "$out/build.log"; exit 1; }
PGPORT=$(PRELOAD=pg_dialer${PGSS:+,pg_stat_statements}${AUTOEXPLAIN:+,auto_explain} scripts/cluster.sh start bench-dispatch auto:28880)
export PGPORT
[ -z "${PGSS:-}" ] || psql -X -q -d postgres -c "ALTER SYSTEM SET pg_stat_statements.track = 'all'" -c "SELECT pg_reload_conf()" >/dev/null
[ -z "${AUTOEXPLAIN:-}" ] || psql -X -q -d postgres -c "ALTER SYSTEM SET auto_explain.log_min_duration = '$AUTOEXPLAIN'" \
    -c "ALTER SYSTEM SET auto_explain.log_nested_statements = on" -c "ALTER SYSTEM SET auto_explain.log_analyze = on" \
    -c "ALTER SYSTEM SET auto_explain.log_buffers = on" -c "SELECT pg_reload_conf()" >/dev/null
say "PostgreSQL $PG_MAJOR on /tmp:$PGPORT"
createdb "$DB"
psql -X -q -d "$DB" -f tests/dispatch/setup.sql >/dev/null 2>&1
python3 tests/mock_provider.py --answer-ms $ANSWER_MS --call-ms $CALL_MS \
    --provider VAPI:vapi:vapi-key-7c1e93:50 --provider Retell:retell:retell-key-5a0f22:30 \
    --provider Bland:bland:bland-key-9d4b71:20 \
    --psql "psql -X -q -d $DB" >"$out/port" 2>"$out/mock.err" &
mock=$!
for _ in $(seq 50); do [ -s "$out/port" ] && break; sleep 0.1; done
mock_url="http://127.0.0.1:$(head -1 "$out/port")"
stat() { curl -s "$mock_url/_stats" | python3 -c "import json, sys; s = json.load(sys.stdin); print($1)"; }
for api in vapi retell bland; do
    q "ALTER DATABASE $DB SET pg_dialer.${api}_base_url = '$mock_url/$api'"
done
q "ALTER SYSTEM SET pg_dialer.default_call_window = '{\"always\": true}'"
q "ALTER SYSTEM SET pg_dialer.dispatch_in_flight = 100"
q "ALTER SYSTEM SET pg_dialer.dispatcher_database = '$DB'"
q "ALTER SYSTEM SET pg_dialer.dispatcher = on"
q "SELECT pg_reload_conf()" >/dev/null
for _ in $(seq 50); do [ "$(q "SELECT pid IS NOT NULL FROM dispatcher_worker()")" = t ] && break; sleep 0.2; done

# ------------------------------------------------------------ throughput
calls=$(((DURATION + 20) * 500))
say "queueing $calls calls of 200 users"
q "INSERT INTO auth.users (id, email)
   SELECT ('d1d1d1d1-0000-4000-8000-' || lpad(g::text, 12, '0'))::uuid, 'user' || g || '@example.com'
   FROM generate_series(2, 200) g"
q "INSERT INTO user_subscriptions (user_id, plan_id, status, current_period_start, current_period_end)
   SELECT ('d1d1d1d1-0000-4000-8000-' || lpad(g::text, 12, '0'))::uuid, 'd1d1d1d1-0000-4000-8000-0000000000a1', 'active',
          now() - interval '1 day', now() + interval '29 days'
   FROM generate_series(2, 200) g"
q "INSERT INTO call_queue (user_id, recipient_number, template_id, custom_variables, status, scheduled_time)
   SELECT ('d1d1d1d1-0000-4000-8000-' || lpad((1 + g % 200)::text, 12, '0'))::uuid,
          '+1415' || lpad((5500000 + g)::text, 7, '0'), ('d1d1d1d1-0000-4000-8000-0000000000d' || (1 + g % 3))::uuid,
          jsonb_build_object('patient_name', 'Patient ' || g), 'queued', now() - interval '1 minute'
   FROM generate_series(1, $calls) g"
q "ANALYZE"
sleep 5 # warm: every provider at its limit
start_placed=$(stat "sum(s[a]['placed'] for a in s)")
start=$(date +%s.%N)
if [ -n "${PERF:-}" ]; then
    perf record -F 499 -g -p "$(q "SELECT pid FROM dispatcher_worker()")" -o "$PERF" -- sleep 20 >/dev/null 2>&1 &
fi
cpu_before=$(ps -e -o pid=,time=,args= | grep -E 'pg_dialer dispatcher|mock_provider|postgres: postgres' | grep -v grep)
[ -z "${PGSS:-}" ] || q "CREATE EXTENSION IF NOT EXISTS pg_stat_statements" -c "SELECT pg_stat_statements_reset()" >/dev/null
sleep "$DURATION"
[ -z "${PGSS:-}" ] || q "SELECT round(total_exec_time::numeric, 0) AS ms, calls, round((total_exec_time / calls)::numeric, 3) AS ms_each,
                              left(regexp_replace(query, '\s+', ' ', 'g'), 150) FROM pg_stat_statements ORDER BY total_exec_time DESC LIMIT 25" >"$PGSS"
echo "$cpu_before" >"$out/cpu_before"
ps -e -o pid=,time=,args= | grep -E 'pg_dialer dispatcher|mock_provider|postgres: postgres' | grep -v grep >"$out/cpu_after"
say "CPU before/after: $out/cpu_before $out/cpu_after"
end_placed=$(stat "sum(s[a]['placed'] for a in s)")
end=$(date +%s.%N)
over=$(stat "sum(s[a]['over_limit'] for a in s)")
lags=$(curl -s "$mock_url/_lags")
dups=$(stat "sum(s[a]['duplicates'] for a in s)")
cpu=$(ps -o time= -p "$(q "SELECT pid FROM dispatcher_worker()")")
# The rest of the queue goes (the worker off meanwhile: a bulk UPDATE of the
# queue and its claims may deadlock), and the calls out end.
q "ALTER SYSTEM SET pg_dialer.dispatcher = off"
q "SELECT pg_reload_conf()" >/dev/null
for _ in $(seq 50); do [ "$(q "SELECT pid IS NULL FROM dispatcher_worker()")" = t ] && break; sleep 0.2; done
q "UPDATE call_queue SET status = 'canceled' WHERE status = 'queued'" >/dev/null
for _ in $(seq 100); do [ "$(q "SELECT count(*) FROM call_queue WHERE status = 'in-progress'")" = 0 ] && break; sleep 0.2; done
q "ALTER SYSTEM SET pg_dialer.dispatcher = on"
q "SELECT pg_reload_conf()" >/dev/null
for _ in $(seq 50); do [ "$(q "SELECT pid IS NOT NULL FROM dispatcher_worker()")" = t ] && break; sleep 0.2; done

# ------------------------------------------------------------ wake-up latency
say "latency of single calls on an idle worker"
for i in $(seq 20); do
    q "INSERT INTO call_queue (user_id, recipient_number, template_id, custom_variables, status, scheduled_time)
       VALUES ('d1d1d1d1-0000-4000-8000-000000000001', '+1415888$(printf %04d "$i")',
               'd1d1d1d1-0000-4000-8000-0000000000d$((1 + i % 3))', '{\"patient_name\": \"Ana\"}', 'queued', now())" >/dev/null
    echo "+1415888$(printf %04d "$i") $(date +%s.%N)" >>"$out/queued"
    sleep 0.7
done
sleep 1
curl -s "$mock_url/_requests" >"$out/requests.json"

python3 - "$out" "$start_placed" "$end_placed" "$start" "$end" "$over" "$dups" "$cpu" "$ANSWER_MS" "$CALL_MS" "$lags" <<'EOF'
import json, statistics, sys
out, p0, p1, t0, t1, over, dups, cpu, answer, call, lags = sys.argv[1:]
lags = json.loads(lags)
rate = (int(p1) - int(p0)) / (float(t1) - float(t0))
ceiling = (50 + 30 + 20) / ((int(answer) + int(call)) / 1000)
reqs = json.load(open(out + "/requests.json"))
first = {}
for r in reqs:
    to = r["body"].get("customer", {}).get("number") or r["body"].get("to_number") or r["body"].get("phone_number")
    first.setdefault(to, r["at"])
waits = []
for line in open(out + "/queued"):
    number, at = line.split()
    if number in first:
        waits.append((first[number] - float(at)) * 1000)
waits.sort()
print(f"| placed per second (over {float(t1) - float(t0):.0f} s) | ceiling | share of the ceiling |")
print("|---|---|---|")
print(f"| {rate:.1f} | {ceiling:.1f} | {rate / ceiling:.2f} |")
print()
print(f"Over the limit at the mock: {over}; placed twice: {dups}; the worker's CPU time after the run: {cpu}. "
      f"At the mock, call ends fired {lags['timer_ms']:.1f} ms late on average, and their results were recorded "
      f"{lags['delivery_ms']:.1f} ms after them.")
print()
print(f"A call queued on an idle worker reached the provider after (ms, {len(waits)} calls): "
      f"median {statistics.median(waits):.1f}, max {max(waits):.1f}.")
EOF
