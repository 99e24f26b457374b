#!/usr/bin/env bash
# Concurrency with several real connections at once (pgbench):
#   - many concurrent enqueues by one user never exceed the plan's call limit;
#   - the same idempotency key sent from many connections queues one call;
#   - many workers claiming together never claim a call twice and never take
#     a provider past its concurrency limit;
#   - the same webhook delivered from many connections is recorded once;
#   - rollover_billing_periods() run from several connections at once moves
#     every period on exactly once.
# Needs PGHOST/PGPORT/PGUSER of a running cluster with pg_dialer installed.
# Prints TAP.
set -euo pipefail
cd "$(dirname "$0")/concurrency"
db=pg_dialer_concurrency
PGBENCH=${PG_BIN:-/usr/lib/postgresql/15/bin}/pgbench
q() { psql -X -q -At -v ON_ERROR_STOP=1 -d "$db" -c "$1"; }
n=0
check() { # description, expected, actual
    n=$((n + 1))
    if [ "$2" = "$3" ]; then echo "ok $n - $1"; else echo "not ok $n - $1"; echo "#   expected: $2"; echo "#        got: $3"; fi
}
bench() { # description, pgbench args...
    local description=$1 log
    shift
    if log=$("$PGBENCH" -n -d "$db" "$@" 2>&1) && ! grep -q "aborted" <<<"$log"; then
        check "$description" "clean" "clean"
    else
        check "$description" "clean" "errors"
        sed 's/^/#   /' <<<"$log" | tail -15
    fi
}

dropdb --if-exists "$db" >/dev/null
createdb "$db"
psql -X -q -v ON_ERROR_STOP=1 -d "$db" -f setup.sql >/dev/null 2>&1

user="'c0c0c0c0-0000-4000-8000-000000000001'"
bench "8 connections enqueue 200 calls for one user" -c 8 -j 2 -t 25 -f enqueue.pgbench
check "exactly the plan's 40 calls were queued, not one more" 40 \
    "$(q "SELECT count(*) FROM call_queue WHERE user_id = $user AND recipient_number = '+14155550100'")"

q "UPDATE subscription_plans SET call_limit = NULL"
bench "8 connections send the same idempotency key 80 times" -c 8 -j 2 -t 10 -f idempotent.pgbench
check "one call was queued for the key" 1 "$(q "SELECT count(*) FROM call_queue WHERE idempotency_key = 'retry-me'")"

bench "6 workers claim and finish calls at once" -c 6 -j 2 -t 80 -f claim.pgbench
check "no call was claimed twice" 0 "$(q "SELECT count(*) FROM (SELECT call_queue_id FROM claim_log GROUP BY 1 HAVING count(*) > 1) d")"
check "the workers drained all 300 due calls (and the 41 queued above)" 341 "$(q "SELECT count(DISTINCT call_queue_id) FROM claim_log")"
check "several workers took part" t "$(q "SELECT count(DISTINCT worker) > 1 FROM claim_log")"
check "every provider was used" 3 "$(q "SELECT count(DISTINCT provider_id) FROM claim_log")"
check "no provider is over its limit now" "" "$(q "SELECT assert_limits()")"

# The same end-of-call report, delivered 40 times from 8 connections.
psql -X -q -v ON_ERROR_STOP=1 -d "$db" \
    -v body="$(cat ../../demo/payloads/vapi_end_of_call_report.json)" \
    -c "INSERT INTO call_queue (user_id, recipient_number, status, call_id, scheduled_time, claimed_at)
        VALUES ($user, '+14155550123', 'in-progress', '3f6c1b2a-9d4e-4c8b-a1f7-5e2d9c0b8a71', now(), now())" \
    -c "UPDATE user_call_usage SET calls_used = 0, minutes_used = 0 WHERE user_id = $user" \
    >/dev/null
psql -X -q -v ON_ERROR_STOP=1 -d "$db" -v body="$(cat ../../demo/payloads/vapi_end_of_call_report.json)" \
    <<<"INSERT INTO payloads VALUES ('vapi', :'body');" >/dev/null
bench "8 connections deliver the same result 40 times" -c 8 -j 2 -t 5 -f deliver.pgbench
check "one history row for the call" 1 \
    "$(q "SELECT count(*) FROM user_call_history WHERE call_id = '3f6c1b2a-9d4e-4c8b-a1f7-5e2d9c0b8a71'")"
check "the call is billed once: 1 call, 2 minutes" "1|2" \
    "$(q "SELECT sum(calls_used), sum(minutes_used) FROM user_call_usage WHERE user_id = $user")"

bench "4 connections run rollover_billing_periods() at once" -c 4 -j 2 -t 3 -f rollover.pgbench
check "every ended subscription moved on exactly one period" 60 \
    "$(q "SELECT count(*) FROM user_subscriptions WHERE user_id::text LIKE 'c0c0c0c0-0000-4000-9000-%'
          AND current_period_start = date_trunc('month', now())
          AND current_period_end = date_trunc('month', now()) + interval '1 month'")"
check "each has exactly one usage row for its new period" 60 \
    "$(q "SELECT count(*) FROM (SELECT s.id FROM user_subscriptions s JOIN user_call_usage u
          ON u.subscription_id = s.id AND u.billing_period_start = s.current_period_start
          WHERE s.user_id::text LIKE 'c0c0c0c0-0000-4000-9000-%' GROUP BY s.id HAVING count(*) = 1) x")"

dropdb "$db"
echo "1..$n"
