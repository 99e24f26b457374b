#!/usr/bin/env bash
# The dispatcher's background worker, in a cluster of its own with
# shared_preload_libraries = 'pg_dialer', against tests/mock_provider.py
# (VAPI, Retell and Bland, limits 50, 30 and 20, answering in 20 ms, calls of
# 200 ms whose results come back through record_call_result()):
#   - off until pg_dialer.dispatcher is on (a reload), for the database
#     pg_dialer.dispatcher_database names; a reload turns it off again;
#   - 1,000 calls across three providers are all placed and all their
#     results recorded with no CALL of anyone's, no limit passed at the mock,
#     no call placed twice; dispatcher_status() counts them;
#   - the server restarted mid-run (fast, then immediate) loses no call;
#   - 429 pauses the provider and its calls are placed after; a provider that
#     closes connections or answers garbage gets the calls again and the
#     worker lives on; no key in the server's log.
# Needs PG_MAJOR (scripts/pg.sh); starts and stops its own cluster. Prints TAP.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
source "$root"/scripts/pg.sh
db=pg_dialer_worker
log=$(mktemp -d /tmp/pg_dialer-worker-log.XXXXXX)
name="worker-${PG_MAJOR:-15}-$$"
export PGHOST=/tmp PGUSER=postgres
PGPORT=$(PRELOAD=pg_dialer "$root"/scripts/cluster.sh start "$name" "auto:$((29300 + ${PG_MAJOR:-15}))")
export PGPORT
data=/tmp/pg_dialer-$name
server_log=$data/server.log
mock=
cleanup() {
    [ -z "${KEEP:-}" ] || return 0
    [ -z "$mock" ] || kill "$mock" 2>/dev/null || true
    "$root"/scripts/cluster.sh stop "$name" >/dev/null 2>&1 || true
    rm -rf "$data"
}
trap cleanup EXIT
source "$here"/lib.sh
q() { psql_q -At -d "$db" -c "$1"; }
as_postgres() { runuser -u postgres -- env -u RUST_BACKTRACE -u RUST_LIB_BACKTRACE "$@"; }
restart_server() { as_postgres "$PG_BIN/pg_ctl" -D "$data" -l "$server_log" -m "$1" -w restart >/dev/null; }
# Waits up to $2 seconds (default 30) until SQL $1 answers t.
wait_for() {
    local deadline=$((SECONDS + ${2:-30}))
    until [ "$(q "$1" 2>/dev/null)" = t ]; do
        [ $SECONDS -lt $deadline ] || return 1
        sleep 0.2
    done
}

createdb "$db"
psql_q -d "$db" -f "$here"/dispatch/setup.sql >/dev/null 2>&1
q "ALTER SYSTEM SET pg_dialer.default_call_window = '{\"always\": true}'" >/dev/null
q "ALTER DATABASE $db SET pg_dialer.stale_call_timeout = 5" >/dev/null
q "ALTER DATABASE $db SET pg_dialer.retry_base_delay = 1" >/dev/null
q "ALTER DATABASE $db SET pg_dialer.dispatch_in_flight = 64" >/dev/null

python3 "$here"/mock_provider.py --answer-ms 20 --call-ms 200 \
    --provider VAPI:vapi:vapi-key-7c1e93:50 --provider Retell:retell:retell-key-5a0f22:30 \
    --provider Bland:bland:bland-key-9d4b71:20 \
    --psql "psql -X -q -d $db" >"$log/port" 2>"$log/mock.err" &
mock=$!
for _ in $(seq 50); do [ -s "$log/port" ] && break; sleep 0.1; done
mock_url="http://127.0.0.1:$(head -1 "$log/port")"
stat() { curl -s "$mock_url/_stats" | python3 -c "import json, sys; s = json.load(sys.stdin); print($1)"; }
control() { curl -s -XPOST "$mock_url/_control" -d "$1" >/dev/null; }
for api in vapi retell bland; do
    q "ALTER DATABASE $db SET pg_dialer.${api}_base_url = '$mock_url/$api'" >/dev/null
done
open_calls="SELECT count(*) = 0 FROM call_queue WHERE status IN ('queued', 'in-progress')"

# ------------------------------------------------------------ on and off
check "preloaded, the worker is off until pg_dialer.dispatcher is on" "true|false|" \
    "$(q "SELECT preloaded || '|' || enabled || '|' || coalesce(pid::text, '') FROM dispatcher_worker()")"
check "off, it runs connected to no database" "1|0" \
    "$(pgrep -c -P "$(head -1 "$data/postmaster.pid")" -f 'pg_dialer dispatcher')|$(q "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'pg_dialer dispatcher'")"
q "SELECT queue_calls(1, '100')" >/dev/null
sleep 2
check "and places nothing" "queued" "$(q "SELECT string_agg(status, ',') FROM call_queue")"

q "ALTER SYSTEM SET pg_dialer.dispatcher_database = '$db'" >/dev/null
q "ALTER SYSTEM SET pg_dialer.dispatcher = on" >/dev/null
q "SELECT pg_reload_conf()" >/dev/null
if wait_for "SELECT pid IS NOT NULL FROM dispatcher_worker()" 15; then
    ok "a reload turns it on, connected to pg_dialer.dispatcher_database"
else
    not_ok "the worker starts" "$(tail -5 "$server_log")"
fi
check_match "it says so in the log" "pg_dialer dispatcher: started in database \"$db\"" "$(cat "$server_log")"
if wait_for "$open_calls" 10; then ok "the waiting call is placed and done"; else not_ok "the waiting call is placed"; fi

# ------------------------------------------------------------ 1,000 calls
q "DELETE FROM user_call_history; DELETE FROM call_queue" >/dev/null
q "SELECT queue_calls(1000, '555')" >/dev/null
if wait_for "$open_calls" 120; then
    ok "1,000 queued calls are all placed and done within 120 s, by the worker alone"
else
    not_ok "1,000 calls done" "$(q "SELECT status, count(*) FROM call_queue GROUP BY 1")"
fi
check "every call is completed, its result in the history" "1000|1000" \
    "$(q "SELECT count(*) FILTER (WHERE status = 'completed') || '|' || (SELECT count(DISTINCT call_queue_id) FROM user_call_history) FROM call_queue")"
check "no call was placed twice" "0" "$(stat "sum(s[a]['duplicates'] for a in s)")"
check "no provider ever had more calls in progress than its limit" "0" "$(stat "sum(s[a]['over_limit'] for a in s)")"
check_match "the providers were used in parallel, up to their limits" '^(1[0-9]|[2-4][0-9]|50)\|([5-9]|[12][0-9]|30)\|([5-9]|1[0-9]|20)$' \
    "$(stat "'|'.join(str(s[a]['max_in_progress']) for a in ('vapi', 'retell', 'bland'))")"
check "dispatcher_status() counts what each provider placed in the last hour, and no failure" \
    "$(stat "' '.join(s[a]['name'] + '|' + str(s[a]['placed']) + '|0' for a in ('vapi', 'retell', 'bland'))")" \
    "$(q "SELECT string_agg(provider || '|' || placed_last_hour || '|' || failed_last_hour, ' ' ORDER BY concurrency_limit DESC)
          FROM dispatcher_status()")"
check "the worker's last loop is recent" "t" "$(q "SELECT last_loop > now() - interval '5 seconds' FROM dispatcher_worker()")"

# ------------------------------------------------------------ restarts
for mode in fast immediate; do
    q "DELETE FROM user_call_history; DELETE FROM call_queue" >/dev/null
    before=$(stat "sum(s[a]['placed'] for a in s)")
    dup_before=$(stat "sum(s[a]['duplicates'] for a in s)")
    q "SELECT queue_calls(600, '${#mode}66')" >/dev/null
    deadline=$((SECONDS + 30))
    until [ "$(stat "sum(s[a]['placed'] for a in s)")" -ge $((before + 150)) ] || [ $SECONDS -ge $deadline ]; do sleep 0.05; done
    at_stop=$(stat "sum(s[a]['placed'] for a in s)")
    restart_server "$mode"
    if wait_for "$open_calls" 120; then
        ok "restarted mid-run ($mode): every call is still placed and done"
    else
        not_ok "restarted mid-run ($mode): calls done" "$(q "SELECT status, coalesce(last_error, ''), count(*) FROM call_queue GROUP BY 1, 2")"
    fi
    check "($mode) all 600 completed, each with its result" "600|600" \
        "$(q "SELECT count(*) FILTER (WHERE q.status = 'completed') || '|' || count(h.id) FROM call_queue q
              LEFT JOIN user_call_history h ON h.call_queue_id = q.id")"
    dups=$(($(stat "sum(s[a]['duplicates'] for a in s)") - dup_before))
    echo "# ($mode): $((at_stop - before)) of 600 placed when the server stopped;" \
        "$(q "SELECT count(*) FROM call_queue WHERE retry_count > 0")" \
        "needed another attempt, $dups placed twice"
    check_match "($mode) a call placed twice only if its request was out when the server stopped (at most 64): $dups" \
        '^([0-9]|[1-5][0-9]|6[0-4])$' "$dups"
done
if wait_for "SELECT pid IS NOT NULL FROM dispatcher_worker()" 15; then ok "the worker is back after the restarts"; else not_ok "the worker is back"; fi

# ------------------------------------------------------------ providers misbehaving
q "DELETE FROM user_call_history; DELETE FROM call_queue" >/dev/null
pid=$(q "SELECT pid FROM dispatcher_worker()")
control '{"provider": "bland", "mode": "close", "times": 3}'
control '{"provider": "bland", "mode": "garbage", "times": 3}'
control '{"provider": "retell", "mode": "429", "times": 1, "retry_after": "2"}'
q "SELECT queue_calls(30, '777')" >/dev/null
if wait_for "$open_calls" 60; then
    ok "calls of a provider closing connections, answering garbage or 429 are all placed in the end"
else
    not_ok "misbehaving providers' calls done" "$(q "SELECT status, coalesce(last_error, ''), count(*) FROM call_queue GROUP BY 1, 2")"
fi
check "the worker lived through it" "$pid" "$(q "SELECT pid FROM dispatcher_worker()")"
check_match "dispatcher_status() shows Retell's 429 as its last error" "^retell 429: Account rate limited" \
    "$(q "SELECT last_error FROM dispatcher_status() WHERE provider = 'Retell'")"
check_match "the log names the providers' errors" "pg_dialer dispatcher: provider Bland: .* not placed" "$(cat "$server_log")"
check "no key shows in the server's log" "0" \
    "$(grep -cE 'vapi-key-7c1e93|retell-key-5a0f22|bland-key-9d4b71' "$server_log" || true)"

# ------------------------------------------------------------ being sent
# A call whose request is out is not taken back by a rescue of another
# session, even one that takes every call in progress.
q "DELETE FROM user_call_history; DELETE FROM call_queue" >/dev/null
control '{"provider": "vapi", "mode": "hang", "times": 1}'
id=$(q "INSERT INTO call_queue (user_id, recipient_number, template_id, custom_variables, status, scheduled_time)
        VALUES ('d1d1d1d1-0000-4000-8000-000000000001', '+14155550901', 'd1d1d1d1-0000-4000-8000-0000000000d1',
                '{\"patient_name\": \"Ana\"}', 'queued', now()) RETURNING id")
wait_for "SELECT count(*) = 1 FROM call_queue WHERE id = '$id' AND status = 'in-progress'" 10 || true
sleep 1
check "a rescue of every call in progress leaves the one being sent" "0|in-progress" \
    "$(psql_q -At -d "$db" -c "SET ROLE service_role" -c "SELECT count(*) FROM rescue_stale_calls('0 seconds') WHERE id = '$id'")|$(q "SELECT status FROM call_queue WHERE id = '$id'")"
if wait_for "SELECT status = 'completed' FROM call_queue WHERE id = '$id'" 40; then
    ok "after its request timed out, it is sent again and done"
else
    not_ok "the hung call is done" "$(q "SELECT status || ' ' || retry_count || ' ' || coalesce(last_error, '') FROM call_queue WHERE id = '$id'")"
fi
# Any session may take advisory locks: one holding a call's key does not
# stall the worker.
id=$(q "INSERT INTO call_queue (user_id, recipient_number, template_id, custom_variables, status, scheduled_time)
        VALUES ('d1d1d1d1-0000-4000-8000-000000000001', '+14155550902', 'd1d1d1d1-0000-4000-8000-0000000000d2',
                '{\"patient_name\": \"Ana\"}', 'queued', now() + interval '2 seconds') RETURNING id")
psql -X -q -d "$db" -c "SELECT pg_advisory_lock(1886350437, hashtext('$id'))" -c "SELECT pg_sleep(15)" >/dev/null 2>&1 &
holder=$!
if wait_for "SELECT status = 'completed' FROM call_queue WHERE id = '$id'" 12; then
    ok "a session holding a call's advisory key does not hold the worker up"
else
    not_ok "the call whose key is held is done" "$(q "SELECT status FROM call_queue WHERE id = '$id'")"
fi
kill "$holder" 2>/dev/null || true

# ------------------------------------------------------------ off again
q "ALTER SYSTEM SET pg_dialer.dispatcher = off" >/dev/null
q "SELECT pg_reload_conf()" >/dev/null
if wait_for "SELECT pid IS NULL FROM dispatcher_worker()" 15; then ok "a reload turns it off"; else not_ok "the worker stops"; fi
q "SELECT queue_calls(1, '888')" >/dev/null
sleep 2
check "and nothing is placed" "queued" "$(q "SELECT string_agg(status, ',') FROM call_queue WHERE recipient_number LIKE '+1415888%'")"
check_match "the log says it stopped" "pg_dialer dispatcher: stopping: pg_dialer.dispatcher is off" "$(cat "$server_log")"

echo "1..$n"
