#!/usr/bin/env bash
# schedule_dialer_jobs() with a real pg_cron: a clear error while pg_cron is
# missing, then the jobs scheduled (the rollover, the rescue, a dispatch
# pass), run by pg_cron itself (it rolls an
# ended subscription over), and unscheduled. pg_cron runs in the database
# named by cron.database_name, which scripts/cluster.sh sets to "postgres".
# Takes up to two minutes: pg_cron's smallest step is one minute. Prints TAP.
set -euo pipefail
db=postgres
q() { psql -X -q -At -v ON_ERROR_STOP=1 -d "$db" -c "$1"; }
n=0
check() {
    n=$((n + 1))
    if [ "$2" = "$3" ]; then echo "ok $n - $1"; else echo "not ok $n - $1"; echo "#   expected: $2"; echo "#        got: $3"; fi
}

q "CREATE EXTENSION IF NOT EXISTS pg_dialer CASCADE" 2>/dev/null
check "without pg_cron, schedule_dialer_jobs() says what is missing" \
    "ERROR:  pg_cron is not installed in database postgres" \
    "$(psql -X -q -At -d "$db" -c "SELECT * FROM schedule_dialer_jobs()" 2>&1 | head -1)"

q "CREATE EXTENSION pg_cron"
q "INSERT INTO auth.users (id, email) VALUES ('c7070000-0000-4000-8000-000000000001', 'cron@example.com')"
q "INSERT INTO subscription_plans (id, name, price, \"interval\") VALUES ('c7070000-0000-4000-8000-0000000000a1', 'Cron', 1, 'monthly')"
q "INSERT INTO user_subscriptions (id, user_id, plan_id, status, current_period_start, current_period_end)
   VALUES ('c7070000-0000-4000-8000-0000000000b1', 'c7070000-0000-4000-8000-000000000001',
           'c7070000-0000-4000-8000-0000000000a1', 'active', date_trunc('month', now()) - interval '1 month',
           date_trunc('month', now()))"

check "schedule_dialer_jobs() schedules the rollover and the rescue" \
    "pg_dialer_rescue_stale_calls|* * * * *,pg_dialer_rollover|* * * * *" \
    "$(q "SELECT string_agg(jobname || '|' || schedule, ',' ORDER BY jobname) FROM schedule_dialer_jobs('* * * * *', '* * * * *')")"
check "and dispatch_due_calls() when given its schedule (no background worker)" \
    "pg_dialer_dispatch|* * * * *,pg_dialer_rescue_stale_calls|* * * * *,pg_dialer_rollover|* * * * *" \
    "$(q "SELECT string_agg(jobname || '|' || schedule, ',' ORDER BY jobname) FROM schedule_dialer_jobs('* * * * *', '* * * * *', '* * * * *')")"
check "scheduling again replaces the jobs rather than adding more" 3 \
    "$(q "SELECT count(*) FROM schedule_dialer_jobs('* * * * *', '* * * * *', '* * * * *')" >/dev/null; q "SELECT count(*) FROM cron.job WHERE jobname LIKE 'pg_dialer_%'")"

# Wait for pg_cron to run both jobs.
for _ in $(seq 1 75); do
    done_jobs=$(q "SELECT count(DISTINCT j.jobname) FROM cron.job_run_details d JOIN cron.job j USING (jobid)
                   WHERE j.jobname LIKE 'pg_dialer_%' AND d.status IN ('succeeded', 'failed')")
    [ "$done_jobs" = 3 ] && break
    sleep 2
done
check "pg_cron ran the three jobs, and all succeeded" "pg_dialer_dispatch|succeeded,pg_dialer_rescue_stale_calls|succeeded,pg_dialer_rollover|succeeded" \
    "$(q "SELECT string_agg(DISTINCT j.jobname || '|' || d.status, ',' ORDER BY j.jobname || '|' || d.status) FROM cron.job_run_details d JOIN cron.job j USING (jobid)
          WHERE j.jobname LIKE 'pg_dialer_%'")"
check "the rollover job moved the ended subscription on" t \
    "$(q "SELECT current_period_start = date_trunc('month', now()) FROM user_subscriptions WHERE id = 'c7070000-0000-4000-8000-0000000000b1'")"

check "unschedule_dialer_jobs() removes the jobs" "pg_dialer_dispatch,pg_dialer_rescue_stale_calls,pg_dialer_rollover" \
    "$(q "SELECT string_agg(j, ',' ORDER BY j) FROM unschedule_dialer_jobs() j")"
check "and none is left" 0 "$(q "SELECT count(*) FROM cron.job WHERE jobname LIKE 'pg_dialer_%'")"

q "DROP EXTENSION pg_cron"
q "DROP EXTENSION pg_dialer"
echo "1..$n"
