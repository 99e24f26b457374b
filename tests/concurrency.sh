#!/usr/bin/env bash
# Concurrency with several real connections at once (pgbench):
#   - many concurrent enqueues by one user never exceed the plan's call limit,
#     one call at a time or in batches (enqueue_calls), at READ COMMITTED and
#     at SERIALIZABLE; the same batch of keys from many connections queues
#     each call once;
#   - the same idempotency key sent from many connections queues one call;
#   - many workers claiming together never claim a call twice and never take
#     a provider past its concurrency limit;
#   - the same webhook delivered from many connections is recorded once;
#   - rollover_billing_periods() run from several connections at once moves
#     every period on exactly once;
#   - calls that can never be placed, or that wait for a provider without
#     numbers, keep no other tenant's calls from being claimed.
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

# Batches of 7 against a plan of 100: 14 batches fit (98 calls), never a
# 15th, and never part of one.
batcher="'c0c0c0c0-0000-4000-8000-000000000005'"
PGOPTIONS="-c tests.keyed=0" bench "8 connections send 40 batches of 7 calls for one user" \
    -c 8 -j 2 -t 5 -D user=c0c0c0c0-0000-4000-8000-000000000005 -f enqueue_calls.pgbench
check "the plan's 100 calls hold 14 whole batches: 98 calls, not one more" 98 \
    "$(q "SELECT count(*) FROM call_queue WHERE user_id = $batcher")"
PGOPTIONS="-c tests.keyed=0 -c default_transaction_isolation=serializable" \
    bench "... and at SERIALIZABLE (serialization failures retried)" \
    -c 8 -j 2 -t 5 --max-tries=50 -D user=c0c0c0c0-0000-4000-8000-000000000006 -f enqueue_calls.pgbench
check "... 98 calls there too" 98 \
    "$(q "SELECT count(*) FROM call_queue WHERE user_id = 'c0c0c0c0-0000-4000-8000-000000000006'")"
q "UPDATE subscription_plans SET call_limit = NULL WHERE id = 'c0c0c0c0-0000-4000-8000-0000000000a3'"
q "DELETE FROM call_queue WHERE user_id = $batcher"
PGOPTIONS="-c tests.keyed=1" bench "8 connections send the same batch of 7 keys 40 times" \
    -c 8 -j 2 -t 5 -D user=c0c0c0c0-0000-4000-8000-000000000005 -f enqueue_calls.pgbench
check "each key queued one call" "7|7" \
    "$(q "SELECT count(*), count(DISTINCT idempotency_key) FROM call_queue WHERE user_id = $batcher")"

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

# Claim starvation: a tenant's calls that can never be placed (its caller
# number moved to another provider than its template's), and calls waiting
# for a provider without numbers, all older than everyone else's, while 4
# workers claim at once.
hostile="'c0c0c0c0-0000-4000-8000-000000000003'"
q "UPDATE call_queue SET status = 'canceled' WHERE status IN ('queued', 'in-progress'); TRUNCATE claim_log;
   INSERT INTO auth.users (id, email) VALUES ($hostile, 'hostile@example.com');
   INSERT INTO user_subscriptions (user_id, plan_id, status, current_period_start, current_period_end)
   VALUES ($hostile, 'c0c0c0c0-0000-4000-8000-0000000000a2', 'active', now() - interval '1 day', now() + interval '29 days');
   INSERT INTO call_service_providers (id, name, type, concurrency_limit, priority)
   VALUES ('c0c0c0c0-0000-4000-8000-0000000000b5', 'P5 without numbers', 'voice', 50, 5);
   INSERT INTO user_phone_numbers (id, user_id, provider_id, country_code, area_code, phone_number, full_number)
   VALUES ('c0c0c0c0-0000-4000-8000-0000000000c1', $hostile, 'c0c0c0c0-0000-4000-8000-0000000000b1',
           '1', '415', '5550177', '+14155550177');
   INSERT INTO call_templates (id, name, created_by, provider_id) VALUES
       ('c0c0c0c0-0000-4000-8000-0000000000d1', 'On P1', $hostile, 'c0c0c0c0-0000-4000-8000-0000000000b1'),
       ('c0c0c0c0-0000-4000-8000-0000000000d5', 'On P5', $hostile, 'c0c0c0c0-0000-4000-8000-0000000000b5');
   INSERT INTO call_queue (user_id, recipient_number, caller_number_id, template_id, scheduled_time)
   SELECT $hostile, '+1415556' || lpad(g::text, 4, '0'), 'c0c0c0c0-0000-4000-8000-0000000000c1',
          'c0c0c0c0-0000-4000-8000-0000000000d1', now() - interval '3 hours' + g * interval '1 second'
   FROM generate_series(1, 60) g;
   INSERT INTO call_queue (user_id, recipient_number, template_id, scheduled_time)
   SELECT $hostile, '+1415557' || lpad(g::text, 4, '0'), 'c0c0c0c0-0000-4000-8000-0000000000d5',
          now() - interval '2 hours' + g * interval '1 second'
   FROM generate_series(1, 60) g;
   UPDATE user_phone_numbers SET provider_id = 'c0c0c0c0-0000-4000-8000-0000000000b2'
   WHERE id = 'c0c0c0c0-0000-4000-8000-0000000000c1';
   INSERT INTO call_queue (user_id, recipient_number, scheduled_time)
   SELECT 'c0c0c0c0-0000-4000-8000-000000000002', '+1415558' || lpad(g::text, 4, '0'),
          now() - interval '1 hour' + g * interval '1 second'
   FROM generate_series(1, 100) g;" >/dev/null
bench "4 workers claim behind 120 calls that cannot go out now" -c 4 -j 2 -t 60 -f claim.pgbench
check "every other tenant's call was claimed, none twice" "100|100" \
    "$(q "SELECT count(*), count(DISTINCT l.call_queue_id) FROM claim_log l JOIN call_queue q ON q.id = l.call_queue_id
          WHERE q.user_id = 'c0c0c0c0-0000-4000-8000-000000000002'")"
check "the calls that can never be placed failed, saying why" 60 \
    "$(q "SELECT count(*) FROM call_queue WHERE user_id = $hostile AND status = 'failed'
          AND last_error LIKE 'cannot be placed: its caller number now belongs to provider %'")"
check "the calls waiting for a provider without numbers wait, unclaimed" "60|0" \
    "$(q "SELECT count(*) FILTER (WHERE status = 'queued'),
                 (SELECT count(*) FROM claim_log l JOIN call_queue c ON c.id = l.call_queue_id WHERE c.user_id = $hostile)
          FROM call_queue WHERE user_id = $hostile AND template_id = 'c0c0c0c0-0000-4000-8000-0000000000d5'")"
check "no provider is over its limit" "" "$(q "SELECT assert_limits()")"

dropdb "$db"
echo "1..$n"
