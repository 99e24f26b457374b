-- Results and billing: record_call_result() for provider webhooks, the
-- billing period and usage definitions, and the pg_cron jobs that run
-- rollover and stale-call rescue. compute_remaining_usage() (src/usage.rs),
-- rollover_billing_periods() (src/rollover.rs), results (src/results.rs),
-- usage settlement (src/settlement.rs), payload normalization and period
-- arithmetic (src/billing.rs, core/src/results.rs, core/src/billing.rs) are
-- Rust.

-- Calls a user has reserved in a period: queued or in progress, by their call
-- time. The one definition that settlement (src/settlement.rs) and the
-- rollover count with; enqueue's quota check in src/queue.rs counts the
-- same, inline, on its hot path. Plain SQL that the planner inlines (the
-- rollover counts for every subscription it opens a period for), so every
-- name and operator is schema-qualified instead of SET search_path.
CREATE FUNCTION dialer.reserved_calls_in(user_id uuid, period_start timestamptz, period_end timestamptz)
    RETURNS TABLE (calls bigint)
    LANGUAGE sql STABLE PARALLEL SAFE ROWS 1
AS $$
    SELECT pg_catalog.count(*) FROM public.call_queue q
    WHERE q.user_id OPERATOR(pg_catalog.=) reserved_calls_in.user_id
      AND q.status OPERATOR(pg_catalog.=) ANY ('{queued,in-progress}'::pg_catalog.text[])
      AND coalesce(q.scheduled_time, q.created_at) OPERATOR(pg_catalog.>=) reserved_calls_in.period_start
      AND coalesce(q.scheduled_time, q.created_at) OPERATOR(pg_catalog.<) reserved_calls_in.period_end
$$;

-- The period of a subscription that covers `at`: dialer.subscription_period()
-- (Rust), which answers for any time, with its most common answer, the
-- current period, given here. Plain SQL, so that PostgreSQL inlines it into
-- the queries that call it (a claim asks once per due call, and a call of a
-- set-returning function costs more than the rest of the question); so no
-- SET search_path: every name and operator below is schema-qualified.
CREATE FUNCTION dialer.covering_period(current_start timestamptz, current_end timestamptz,
                                       anchor timestamptz, billing_interval text, renews boolean,
                                       earlier boolean, at timestamptz)
    RETURNS TABLE (period_start timestamptz, period_end timestamptz)
    LANGUAGE sql STABLE PARALLEL SAFE ROWS 1
AS $$
    SELECT current_start, current_end
    WHERE current_start OPERATOR(pg_catalog.<=) at AND at OPERATOR(pg_catalog.<) current_end
    UNION ALL
    SELECT p.period_start, p.period_end
    FROM dialer.subscription_period(current_start, current_end, anchor, billing_interval, renews,
                                    earlier, at) AS p
    WHERE (current_start OPERATOR(pg_catalog.<=) at AND at OPERATOR(pg_catalog.<) current_end) IS NOT TRUE
$$;

-- The billing period that covers `at` for a user, with its plan's name,
-- limits and features (premium voices; the costly number types it allows):
-- the one definition, used by the quota, compute_remaining_usage(), claims
-- and settlement.
-- dialer.covering_period() decides for each subscription: an
-- active or trialing subscription covers its current period and, unless it
-- ends at period end, the ones after it, also before rollover_billing_periods()
-- has moved it on. With `earlier`, a subscription also covers its earlier
-- periods, counted from its anchor (a claim places, and bills there, a call
-- queued in a period that has since ended). With `ended`, canceled and
-- past_due subscriptions count too, for what they covered: settlement bills a
-- result of a call already placed, whatever became of the subscription since.
-- Inlined into its callers' queries like dialer.covering_period(), so
-- schema-qualified throughout instead of SET search_path.
CREATE FUNCTION dialer.billing_period(user_id uuid, at timestamptz, earlier boolean DEFAULT false,
                                      ended boolean DEFAULT false)
    RETURNS TABLE (subscription_id uuid, plan_id uuid, period_start timestamptz, period_end timestamptz,
                   plan_name text, call_limit integer, minutes_limit integer,
                   premium_voices boolean, allowed_number_types text[])
    LANGUAGE sql STABLE PARALLEL SAFE ROWS 1
AS $$
    SELECT sub.id, sub.plan_id, per.period_start, per.period_end,
           p.name, p.call_limit, p.minutes_limit,
           coalesce(p.features OPERATOR(pg_catalog.->) 'premium_voices'
                    OPERATOR(pg_catalog.=) 'true'::pg_catalog.jsonb, false),
           CASE WHEN pg_catalog.jsonb_typeof(p.features OPERATOR(pg_catalog.->) 'allowed_number_types')
                     OPERATOR(pg_catalog.=) 'array'
                THEN ARRAY(SELECT e FROM pg_catalog.jsonb_array_elements_text(
                                             p.features OPERATOR(pg_catalog.->) 'allowed_number_types') AS e
                           WHERE e IS NOT NULL) END
    FROM public.user_subscriptions sub
    JOIN public.subscription_plans p ON p.id OPERATOR(pg_catalog.=) sub.plan_id
    CROSS JOIN LATERAL dialer.covering_period(
        sub.current_period_start, sub.current_period_end,
        coalesce(sub.billing_anchor, sub.current_period_start), p."interval",
        sub.status OPERATOR(pg_catalog.=) ANY ('{active,trialing}'::pg_catalog.text[])
            AND NOT coalesce(sub.cancel_at_period_end, false),
        billing_period.earlier, billing_period.at) AS per
    WHERE sub.user_id OPERATOR(pg_catalog.=) billing_period.user_id
      AND (sub.status OPERATOR(pg_catalog.=) ANY ('{active,trialing}'::pg_catalog.text[]) OR billing_period.ended)
    ORDER BY sub.status OPERATOR(pg_catalog.=) ANY ('{active,trialing}'::pg_catalog.text[]) DESC, per.period_end DESC, sub.id
    LIMIT 1
$$;

-- The usage of a period: the usage rows of the user that start where the
-- period starts. An end moved by an admin or a billing sync keeps its usage.
-- Inlined like dialer.billing_period().
CREATE FUNCTION dialer.period_usage(user_id uuid, period_start timestamptz)
    RETURNS TABLE (calls_used bigint, minutes_used bigint)
    LANGUAGE sql STABLE PARALLEL SAFE ROWS 1
AS $$
    SELECT coalesce(pg_catalog.sum(u.calls_used), 0)::bigint, coalesce(pg_catalog.sum(u.minutes_used), 0)::bigint
    FROM public.user_call_usage u
    WHERE u.user_id OPERATOR(pg_catalog.=) period_usage.user_id
      AND u.billing_period_start OPERATOR(pg_catalog.=) period_usage.period_start
$$;

---------------------------------------------------------------------------
-- record_call_result: a provider's end-of-call webhook body, as delivered.
-- The work is Rust (dialer.record_result, src/results.rs); this shell raises
-- the PT404 it returns for a call nobody placed (see dialer.raised()).
---------------------------------------------------------------------------
CREATE FUNCTION record_call_result(payload jsonb)
    RETURNS TABLE (call_queue_id uuid, history_id uuid, queue_status text, result text)
    LANGUAGE plpgsql VOLATILE
    SET search_path = ''
AS $$
BEGIN
    RETURN QUERY
        SELECT o.call_queue_id, o.history_id, o.queue_status,
               dialer.raised(o.result, o.error_code, o.error_message, o.error_detail, o.error_hint)
        FROM dialer.record_result(record_call_result.payload::text) AS o;
END
$$;

---------------------------------------------------------------------------
-- pg_cron: schedule_dialer_jobs() runs rollover_billing_periods() and
-- rescue_stale_calls() in this database, and dispatch_due_calls() if given a
-- schedule (hosts without the background worker); unschedule_dialer_jobs()
-- stops them.
-- Both need pg_cron installed in this database (cron.database_name).
---------------------------------------------------------------------------
CREATE FUNCTION dialer.require_pg_cron() RETURNS void
    LANGUAGE plpgsql STABLE
    SET search_path = ''
AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'pg_cron') THEN
        RAISE EXCEPTION 'pg_cron is not installed in database %', pg_catalog.current_database()
            USING ERRCODE = '55000',
                  HINT = 'Add pg_cron to shared_preload_libraries, set cron.database_name to this database, '
                         'restart, and run CREATE EXTENSION pg_cron. Or call rollover_billing_periods() '
                         'and rescue_stale_calls() from a scheduler of your own.';
    END IF;
END
$$;

CREATE FUNCTION schedule_dialer_jobs(
    rollover_schedule text DEFAULT '*/5 * * * *',
    rescue_schedule text DEFAULT '* * * * *',
    dispatch_schedule text DEFAULT NULL
) RETURNS TABLE (jobname text, schedule text, jobid bigint)
    LANGUAGE plpgsql VOLATILE
    SET search_path = ''
AS $$
BEGIN
    PERFORM dialer.require_pg_cron();
    RETURN QUERY EXECUTE
        'SELECT name, sched, cron.schedule(name, sched, command)
         FROM (VALUES ($1, $2, $3), ($4, $5, $6), ($7, $8, $9)) AS jobs(name, sched, command) WHERE sched IS NOT NULL'
    USING 'pg_dialer_rollover', rollover_schedule, 'SELECT public.rollover_billing_periods()',
          'pg_dialer_rescue_stale_calls', rescue_schedule, 'SELECT public.rescue_stale_calls()',
          'pg_dialer_dispatch', dispatch_schedule, 'CALL public.dispatch_due_calls(200)';
END
$$;

CREATE FUNCTION unschedule_dialer_jobs() RETURNS SETOF text
    LANGUAGE plpgsql VOLATILE
    SET search_path = ''
AS $$
BEGIN
    PERFORM dialer.require_pg_cron();
    RETURN QUERY EXECUTE
        'SELECT jobname::text FROM cron.job
         WHERE jobname IN (''pg_dialer_rollover'', ''pg_dialer_rescue_stale_calls'', ''pg_dialer_dispatch'') AND cron.unschedule(jobid)';
END
$$;

---------------------------------------------------------------------------
-- Grants.
---------------------------------------------------------------------------
REVOKE ALL ON FUNCTION
    record_call_result(jsonb),
    compute_remaining_usage(uuid, timestamptz),
    rollover_billing_periods(timestamptz),
    schedule_dialer_jobs(text, text, text),
    unschedule_dialer_jobs()
FROM PUBLIC, anon;
GRANT EXECUTE ON FUNCTION
    record_call_result(jsonb),
    compute_remaining_usage(uuid, timestamptz),
    rollover_billing_periods(timestamptz)
TO authenticated, service_role;
