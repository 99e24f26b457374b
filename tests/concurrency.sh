#!/usr/bin/env bash
# Concurrency with several real connections at once (pgbench):
#   - many concurrent enqueues by one user never exceed the plan's call limit;
#   - the same idempotency key sent from many connections queues one call;
#   - many workers claiming together never claim a call twice and never take
#     a provider past its concurrency limit.
# Needs PGHOST/PGPORT/PGUSER of a running cluster with pg_dialer installed.
# Prints TAP.
set -euo pipefail
cd "$(dirname "$0")/concurrency"
db=pg_dialer_concurrency
PGBENCH=/usr/lib/postgresql/15/bin/pgbench
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

dropdb "$db"
echo "1..$n"
