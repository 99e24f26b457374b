-- pg_dialer 0.1.0 -> 0.2.0. Run by ALTER EXTENSION pg_dialer UPDATE; never
-- edit it once 0.2.0 is released. tests/upgrade.sh proves that a database
-- updated with it describes exactly as a fresh CREATE EXTENSION of 0.2.0.
\echo Use "ALTER EXTENSION pg_dialer UPDATE TO '0.2.0'" to load this file. \quit

---------------------------------------------------------------------------
-- The schema listing and its baseline come first: schema_update_begin()
-- records what 0.1.0 installed before anything below changes it.
---------------------------------------------------------------------------
CREATE FUNCTION dialer."schema_listing"() RETURNS TABLE (
	"kind" TEXT,
	"object" TEXT,
	"definition" TEXT
)
STRICT STABLE
SET search_path TO pg_catalog
LANGUAGE c
AS 'MODULE_PATHNAME', 'schema_listing_wrapper';

CREATE FUNCTION dialer."schema_update_begin"() RETURNS void
STRICT VOLATILE
SET search_path TO pg_catalog
LANGUAGE c
AS 'MODULE_PATHNAME', 'schema_update_begin_wrapper';

CREATE FUNCTION dialer."schema_update_end"() RETURNS void
STRICT VOLATILE
SET search_path TO pg_catalog
LANGUAGE c
AS 'MODULE_PATHNAME', 'schema_update_end_wrapper';

CREATE TABLE dialer.schema_baseline (
    snapshot   TEXT NOT NULL CHECK (snapshot IN ('installed', 'before update')),
    kind       TEXT NOT NULL,
    object     TEXT NOT NULL,
    definition TEXT NOT NULL,
    PRIMARY KEY (snapshot, kind, object)
);
ALTER TABLE dialer.schema_baseline ENABLE ROW LEVEL SECURITY;
REVOKE ALL ON dialer.schema_baseline FROM PUBLIC;
GRANT SELECT ON dialer.schema_baseline TO authenticated;
CREATE POLICY "Admin can read the schema baseline" ON dialer.schema_baseline
    FOR SELECT TO authenticated USING ((SELECT dialer.is_admin()));

SELECT dialer.schema_update_begin();

---------------------------------------------------------------------------
-- Schema tooling: drift report, adoption of hand-built tables, version.
---------------------------------------------------------------------------
CREATE FUNCTION dialer."schema_drift"() RETURNS TABLE (
	"kind" TEXT,
	"object" TEXT,
	"difference" TEXT,
	"expected" TEXT,
	"actual" TEXT
)
STRICT STABLE
SET search_path TO pg_catalog
LANGUAGE c
AS 'MODULE_PATHNAME', 'schema_drift_wrapper';

CREATE FUNCTION dialer."record_schema_baseline"() RETURNS void
STRICT VOLATILE
SET search_path TO pg_catalog
LANGUAGE c
AS 'MODULE_PATHNAME', 'record_schema_baseline_wrapper';

CREATE FUNCTION dialer."version"() RETURNS TABLE (
	"extension_version" TEXT,
	"library_version" TEXT,
	"commit" TEXT,
	"pgrx_version" TEXT,
	"postgres_version" TEXT,
	"postgres_major" INT
)
STRICT STABLE
LANGUAGE c
AS 'MODULE_PATHNAME', 'version_wrapper';

CREATE FUNCTION dialer."adopt_tables"() RETURNS void
STRICT VOLATILE
SET search_path TO pg_catalog
LANGUAGE c
AS 'MODULE_PATHNAME', 'adopt_tables_wrapper';

CREATE FUNCTION dialer."adopt_prepare"() RETURNS void
STRICT VOLATILE
SET search_path TO pg_catalog
LANGUAGE c
AS 'MODULE_PATHNAME', 'adopt_prepare_wrapper';

CREATE TABLE dialer.adoption_log (
    logged_at  TIMESTAMPTZ NOT NULL DEFAULT pg_catalog.clock_timestamp(),
    table_name TEXT,
    action     TEXT NOT NULL,
    object     TEXT NOT NULL,
    detail     TEXT NOT NULL
);
REVOKE ALL ON dialer.adoption_log FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('dialer.adoption_log', '');

REVOKE ALL ON FUNCTION
    dialer.record_schema_baseline(), dialer.schema_update_begin(), dialer.schema_update_end(),
    dialer.adopt_prepare(), dialer.adopt_tables(),
    dialer.schema_listing(), dialer.schema_drift(), dialer.version()
FROM PUBLIC;
GRANT EXECUTE ON FUNCTION dialer.schema_listing(), dialer.schema_drift() TO authenticated;
GRANT EXECUTE ON FUNCTION dialer.version() TO authenticated, service_role;

---------------------------------------------------------------------------
-- Tenant-proof locks: a row lock in dialer.user_locks, which only the owner
-- may touch, taken by dialer.lock_user() for oneself (or by a privileged
-- caller for anyone), instead of an advisory lock any role can take.
---------------------------------------------------------------------------
CREATE TABLE dialer.user_locks (
    user_id   UUID PRIMARY KEY,
    locked_at TIMESTAMPTZ NOT NULL DEFAULT pg_catalog.now()
) WITH (fillfactor = 50);
REVOKE ALL ON dialer.user_locks FROM PUBLIC;

CREATE OR REPLACE FUNCTION dialer."lock_user"(
	"user_id" uuid
) RETURNS void
STRICT VOLATILE PARALLEL UNSAFE
SET search_path TO pg_catalog
LANGUAGE c
AS 'MODULE_PATHNAME', 'lock_user_wrapper';

---------------------------------------------------------------------------
-- JSON from callers (webhook bodies, variables, template parameters) comes to
-- Rust as text, so that bad or oversized JSON is the caller's error (22023).
---------------------------------------------------------------------------
DROP FUNCTION dialer.check_queued_call(jsonb, jsonb);
DROP FUNCTION dialer.check_template_params(jsonb, jsonb);
DROP FUNCTION dialer.normalize_call_result(jsonb);
CREATE FUNCTION dialer."check_queued_call"(
	"new_row" TEXT,
	"old_row" TEXT
) RETURNS jsonb
VOLATILE PARALLEL UNSAFE
LANGUAGE c
AS 'MODULE_PATHNAME', 'check_queued_call_wrapper';
CREATE FUNCTION dialer."check_template_params"(
	"params" TEXT,
	"params_order" TEXT
) RETURNS jsonb
IMMUTABLE PARALLEL SAFE
LANGUAGE c
AS 'MODULE_PATHNAME', 'check_template_params_wrapper';
CREATE FUNCTION dialer."normalize_call_result"(
	"payload" TEXT
) RETURNS jsonb
IMMUTABLE PARALLEL SAFE
LANGUAGE c
AS 'MODULE_PATHNAME', 'normalize_call_result_wrapper';

---------------------------------------------------------------------------
-- A user's caller number is a phone number, stored in E.164.
---------------------------------------------------------------------------
CREATE FUNCTION dialer."validate_user_phone_number"()
	RETURNS TRIGGER
	LANGUAGE c
	AS 'MODULE_PATHNAME', 'validate_user_phone_number_wrapper';
CREATE TRIGGER validate_user_phone_number BEFORE INSERT OR UPDATE OF full_number ON user_phone_numbers
    FOR EACH ROW EXECUTE FUNCTION dialer.validate_user_phone_number();

---------------------------------------------------------------------------
-- Publishing a template is an admin's act; a public template is changed by
-- admins only.
---------------------------------------------------------------------------
ALTER POLICY "Users can create templates" ON call_templates
    WITH CHECK ((SELECT dialer.uid()) = created_by AND NOT coalesce(is_public, false));
ALTER POLICY "Users can update own templates" ON call_templates
    USING ((SELECT dialer.uid()) = created_by AND NOT coalesce(is_public, false))
    WITH CHECK ((SELECT dialer.uid()) = created_by AND NOT coalesce(is_public, false));
ALTER POLICY "Users can delete own templates" ON call_templates
    USING ((SELECT dialer.uid()) = created_by AND NOT coalesce(is_public, false));

---------------------------------------------------------------------------
-- No SECURITY DEFINER function a signed-in user may execute: routing counts
-- calls in progress, and cancel_call() cancels, with the owner's privileges
-- inside Rust, for just those statements.
---------------------------------------------------------------------------
DROP FUNCTION dialer.in_progress_calls();
CREATE FUNCTION dialer."cancel_queued_call"(
	"call_id" uuid
) RETURNS jsonb
STRICT VOLATILE PARALLEL UNSAFE
SET search_path TO pg_catalog
LANGUAGE c
AS 'MODULE_PATHNAME', 'cancel_queued_call_wrapper';

-- The helpers in schema dialer: no EXECUTE for PUBLIC (anon or any other
-- login role); signed-in users and service_role get what runs as them.
REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA dialer FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
    dialer.uid(), dialer.is_admin(), dialer.is_privileged(), dialer.caller_is_superuser(),
    dialer.lock_user(uuid), dialer.raise_error(jsonb),
    dialer.check_queued_call(text, text), dialer.check_template_params(text, text),
    dialer.cancel_queued_call(uuid),
    dialer.require_worker(text), dialer.lock_in_progress_call(uuid),
    dialer.fail_attempt(public.call_queue, text, boolean),
    dialer.retry_delay(integer, boolean, double precision), dialer.stale_call_timeout(),
    dialer.reserved_calls(uuid, timestamptz, timestamptz), dialer.usage_row(uuid, timestamptz),
    dialer.refresh_remaining(uuid), dialer.settle_usage(uuid, timestamptz, integer, integer),
    dialer.normalize_call_result(text), dialer.billed_minutes_for(integer),
    dialer.roll_billing_period(bigint, bigint, text, bigint)
TO authenticated, service_role;

---------------------------------------------------------------------------
-- rescue_stale_calls(older_than => '0 seconds') takes back every call in
-- progress; the history row of a retried attempt keeps its provider and number.
---------------------------------------------------------------------------
CREATE OR REPLACE FUNCTION rescue_stale_calls(older_than interval DEFAULT NULL) RETURNS SETOF public.call_queue
    LANGUAGE plpgsql VOLATILE
    SET search_path = ''
AS $$
DECLARE
    timeout interval := coalesce(older_than, dialer.stale_call_timeout());
    c public.call_queue;
BEGIN
    PERFORM dialer.require_worker('rescue_stale_calls');
    IF timeout < interval '0' THEN
        RAISE EXCEPTION 'older_than must not be negative, not %', timeout USING ERRCODE = '22023';
    END IF;
    FOR c IN
        SELECT * FROM public.call_queue q
        WHERE q.status = 'in-progress' AND coalesce(q.claimed_at, q.updated_at) <= pg_catalog.now() - timeout
        ORDER BY coalesce(q.claimed_at, q.updated_at)
        FOR UPDATE SKIP LOCKED
    LOOP
        RETURN NEXT dialer.fail_attempt(c, pg_catalog.format('no result within %s of being claimed', timeout), true);
    END LOOP;
END
$$;

CREATE OR REPLACE FUNCTION record_call_result(payload jsonb)
    RETURNS TABLE (call_queue_id uuid, history_id uuid, queue_status text, result text)
    LANGUAGE plpgsql VOLATILE
    SET search_path = ''
AS $$
#variable_conflict use_column
DECLARE
    normalized jsonb;
    r jsonb;
    provider_call_id text;
    q public.call_queue;
    placed public.call_queue;
    h public.user_call_history;
    seconds integer;
    added_minutes integer;
    changed boolean;
BEGIN
    PERFORM dialer.require_worker('record_call_result');
    normalized := dialer.normalize_call_result(payload::text);
    PERFORM dialer.raise_error(normalized -> 'error');
    r := normalized -> 'ok';
    IF r ->> 'kind' = 'ignored' THEN
        RETURN QUERY SELECT NULL::uuid, NULL::uuid, NULL::text, 'ignored'::text;
        RETURN;
    END IF;
    provider_call_id := r ->> 'call_id';
    seconds := coalesce((r ->> 'duration')::integer, 0);

    -- The call first (its lock orders concurrent deliveries), then its result.
    SELECT * INTO q FROM public.call_queue cq WHERE cq.call_id = provider_call_id FOR UPDATE;
    SELECT * INTO h FROM public.user_call_history ch WHERE ch.call_id = provider_call_id FOR UPDATE;

    IF h.id IS NOT NULL THEN
        changed := (r ->> 'transcript' IS NOT NULL AND h.transcript IS DISTINCT FROM r ->> 'transcript')
                OR (r ->> 'recording_url' IS NOT NULL AND h.recording_url IS DISTINCT FROM r ->> 'recording_url')
                OR (r ->> 'summary' IS NOT NULL AND h.call_summary IS DISTINCT FROM r ->> 'summary')
                OR seconds > coalesce(h.duration, 0);
        IF changed THEN
            added_minutes := dialer.billed_minutes_for(seconds) - dialer.billed_minutes_for(coalesce(h.duration, 0));
            UPDATE public.user_call_history ch
            SET transcript = coalesce(r ->> 'transcript', ch.transcript),
                recording_url = coalesce(r ->> 'recording_url', ch.recording_url),
                call_summary = coalesce(r ->> 'summary', ch.call_summary),
                duration = greatest(coalesce(ch.duration, 0), seconds),
                call_data = payload
            WHERE ch.id = h.id;
            IF added_minutes > 0 THEN
                -- The call's period: its time while the queue row still holds
                -- this attempt (q found by its call id), else when its first
                -- result came.
                PERFORM dialer.settle_usage(h.user_id, coalesce(q.scheduled_time, q.created_at, h.created_at),
                                            0, added_minutes);
            END IF;
        END IF;
        RETURN QUERY
            SELECT h.call_queue_id, h.id, (SELECT cq.status FROM public.call_queue cq WHERE cq.id = h.call_queue_id),
                   CASE WHEN changed THEN 'enriched' ELSE 'duplicate' END;
        RETURN;
    END IF;

    IF q.id IS NULL THEN
        RAISE EXCEPTION 'no call has provider call id %', provider_call_id
            USING ERRCODE = 'PT404',
                  HINT = 'A call gets its provider call id from mark_call_placed() before its result can be recorded.';
    END IF;

    -- The attempt as placed: a retry below clears its provider and number.
    placed := q;
    IF q.status = 'in-progress' THEN
        IF r ->> 'status' = 'completed' THEN
            UPDATE public.call_queue cq SET status = 'completed', last_error = NULL WHERE cq.id = q.id RETURNING * INTO q;
        ELSIF r ->> 'status' = 'canceled' THEN
            UPDATE public.call_queue cq SET status = 'canceled' WHERE cq.id = q.id RETURNING * INTO q;
        ELSE
            q := dialer.fail_attempt(q, coalesce(r ->> 'ended_reason', 'the call failed'), (r ->> 'retryable')::boolean);
        END IF;
    END IF;

    INSERT INTO public.user_call_history AS ch
        (user_id, call_queue_id, call_id, provider_id, assistant_id, phone_number_id, caller_number_id, voice_id,
         transcript, status, duration, recording_url, call_summary, call_data)
    SELECT q.user_id, q.id, provider_call_id, placed.provider_id, t.assistant_id, placed.provider_phone_number_id,
           q.caller_number_id, coalesce(q.voice_id, t.voice_id),
           r ->> 'transcript', r ->> 'status', seconds, r ->> 'recording_url', r ->> 'summary', payload
    FROM (SELECT 1) one
    LEFT JOIN public.call_templates t ON t.id = q.template_id
    RETURNING * INTO h;

    -- Billed to the period of the attempt as placed (a retry moves q on).
    PERFORM dialer.settle_usage(q.user_id, coalesce(placed.scheduled_time, placed.created_at),
                                CASE WHEN r ->> 'status' = 'completed' THEN 1 ELSE 0 END,
                                dialer.billed_minutes_for(seconds));

    RETURN QUERY SELECT q.id, h.id, q.status, 'recorded'::text;
END
$$;

---------------------------------------------------------------------------
-- The checks read rows as text (see above).
---------------------------------------------------------------------------
CREATE OR REPLACE FUNCTION dialer.validate_queued_call() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = ''
AS $$
DECLARE
    result jsonb;
BEGIN
    IF NEW.status IS DISTINCT FROM 'queued'
       OR (TG_OP = 'UPDATE' AND OLD.status IS DISTINCT FROM 'queued')
       OR dialer.caller_is_superuser() THEN
        RETURN NEW;
    END IF;
    result := dialer.check_queued_call(pg_catalog.to_jsonb(NEW)::text,
                                       CASE WHEN TG_OP = 'UPDATE' THEN pg_catalog.to_jsonb(OLD)::text END);
    IF result ? 'error' THEN
        PERFORM dialer.raise_error(result -> 'error');
    END IF;
    RETURN pg_catalog.jsonb_populate_record(NEW, result -> 'ok');
END
$$;

CREATE OR REPLACE FUNCTION dialer.validate_template() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = ''
AS $$
BEGIN
    PERFORM dialer.raise_error(dialer.check_template_params(NEW.params::text, NEW.params_order::text) -> 'error');
    RETURN NEW;
END
$$;

---------------------------------------------------------------------------
-- cancel_call() is no SECURITY DEFINER any more (see above).
---------------------------------------------------------------------------
CREATE OR REPLACE FUNCTION cancel_call(call_id uuid) RETURNS public.call_queue
    LANGUAGE plpgsql VOLATILE
    SET search_path = ''
AS $$
DECLARE
    c public.call_queue;
BEGIN
    PERFORM dialer.raise_error(dialer.cancel_queued_call(cancel_call.call_id) -> 'error');
    SELECT * INTO c FROM public.call_queue q WHERE q.id = cancel_call.call_id;
    RETURN c;
END
$$;

---------------------------------------------------------------------------
-- One definition of the billing period covering a time and of its usage
-- (dialer.subscription_period in Rust, dialer.covering_period, dialer.billing_period,
-- dialer.period_usage), used by the quota, compute_remaining_usage(),
-- claims, settlement and rollover; usage is billed to the call's period.
---------------------------------------------------------------------------
DROP FUNCTION dialer.roll_billing_period(bigint, bigint, text, bigint);
CREATE  FUNCTION dialer."subscription_period"(
	"current_start" timestamp with time zone, /* Option < TimestampWithTimeZone > */
	"current_end" timestamp with time zone, /* Option < TimestampWithTimeZone > */
	"anchor" timestamp with time zone, /* Option < TimestampWithTimeZone > */
	"billing_interval" TEXT, /* Option < & str > */
	"renews" bool, /* Option < bool > */
	"earlier" bool, /* Option < bool > */
	"at" timestamp with time zone /* Option < TimestampWithTimeZone > */
) RETURNS TABLE (
	"period_start" timestamp with time zone,  /* TimestampWithTimeZone */
	"period_end" timestamp with time zone  /* TimestampWithTimeZone */
)
IMMUTABLE PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'subscription_period_wrapper';

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

CREATE FUNCTION dialer.period_usage(user_id uuid, period_start timestamptz)
    RETURNS TABLE (calls_used bigint, minutes_used bigint)
    LANGUAGE sql STABLE PARALLEL SAFE ROWS 1
AS $$
    SELECT coalesce(pg_catalog.sum(u.calls_used), 0)::bigint, coalesce(pg_catalog.sum(u.minutes_used), 0)::bigint
    FROM public.user_call_usage u
    WHERE u.user_id OPERATOR(pg_catalog.=) period_usage.user_id
      AND u.billing_period_start OPERATOR(pg_catalog.=) period_usage.period_start
$$;

REVOKE EXECUTE ON FUNCTION
    dialer.subscription_period(timestamptz, timestamptz, timestamptz, text, boolean, boolean, timestamptz),
    dialer.covering_period(timestamptz, timestamptz, timestamptz, text, boolean, boolean, timestamptz),
    dialer.billing_period(uuid, timestamptz, boolean, boolean), dialer.period_usage(uuid, timestamptz)
FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
    dialer.subscription_period(timestamptz, timestamptz, timestamptz, text, boolean, boolean, timestamptz),
    dialer.covering_period(timestamptz, timestamptz, timestamptz, text, boolean, boolean, timestamptz),
    dialer.billing_period(uuid, timestamptz, boolean, boolean), dialer.period_usage(uuid, timestamptz)
TO authenticated, service_role;

CREATE OR REPLACE FUNCTION dialer.fail_attempt(c public.call_queue, reason text, retryable boolean)
    RETURNS public.call_queue
    LANGUAGE plpgsql VOLATILE
    SET search_path = ''
AS $$
DECLARE
    attempts integer := least(coalesce(c.retry_count, 0)::bigint + 1, 2147483647);
    delay interval := dialer.retry_delay(attempts, retryable, pg_catalog.random());
    result public.call_queue;
BEGIN
    IF delay IS NULL THEN
        UPDATE public.call_queue q
        SET status = 'failed', retry_count = attempts, last_error = reason
        WHERE q.id = c.id RETURNING * INTO result;
    ELSE
        UPDATE public.call_queue q
        SET status = 'queued', retry_count = attempts, last_error = reason,
            scheduled_time = pg_catalog.now() + delay,
            provider_id = NULL, provider_phone_number_id = NULL, claimed_at = NULL, call_id = NULL
        WHERE q.id = c.id RETURNING * INTO result;
    END IF;
    RETURN result;
END
$$;

---------------------------------------------------------------------------
-- The extension is registered in schema extensions, not public (Supabase's
-- linter: extension_in_public); what it installs stays where it is. A fresh
-- install gets the schema from the control file, which creates it if needed
-- without making it a member. A non-relocatable extension has no ALTER
-- EXTENSION ... SET SCHEMA, so the update moves its record itself.
---------------------------------------------------------------------------
DO $move$
BEGIN
    IF to_regnamespace('extensions') IS NULL THEN
        CREATE SCHEMA extensions;
        ALTER EXTENSION pg_dialer DROP SCHEMA extensions;
    END IF;
END
$move$;
UPDATE pg_catalog.pg_depend SET refobjid = 'extensions'::regnamespace
WHERE classid = 'pg_catalog.pg_extension'::regclass
  AND objid = (SELECT oid FROM pg_catalog.pg_extension WHERE extname = 'pg_dialer')
  AND refclassid = 'pg_catalog.pg_namespace'::regclass
  AND refobjid = (SELECT extnamespace FROM pg_catalog.pg_extension WHERE extname = 'pg_dialer');
UPDATE pg_catalog.pg_extension SET extnamespace = 'extensions'::regnamespace WHERE extname = 'pg_dialer';

---------------------------------------------------------------------------
-- compute_remaining_usage(), rollover_billing_periods() and
-- dialer.require_worker() are Rust now, with the same signatures (grants
-- stay); dialer.remaining() is the one definition of what is left of a
-- limit.
---------------------------------------------------------------------------
CREATE OR REPLACE FUNCTION "compute_remaining_usage"(
	"user_id" uuid DEFAULT NULL, /* Option < Uuid > */
	"at" timestamp with time zone DEFAULT now() /* Option < TimestampWithTimeZone > */
) RETURNS TABLE (
	"subscription_id" uuid,  /* Uuid */
	"plan_name" TEXT,  /* Option < String > */
	"period_start" timestamp with time zone,  /* TimestampWithTimeZone */
	"period_end" timestamp with time zone,  /* TimestampWithTimeZone */
	"calls_limit" INT,  /* Option < i32 > */
	"calls_used" bigint,  /* i64 */
	"calls_reserved" bigint,  /* i64 */
	"calls_remaining" bigint,  /* Option < i64 > */
	"minutes_limit" INT,  /* Option < i32 > */
	"minutes_used" bigint,  /* i64 */
	"minutes_remaining" bigint  /* Option < i64 > */
)
STABLE PARALLEL SAFE
SET search_path TO pg_catalog
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'compute_remaining_usage_wrapper';

CREATE OR REPLACE FUNCTION "rollover_billing_periods"(
	"at" timestamp with time zone DEFAULT now() /* Option < TimestampWithTimeZone > */
) RETURNS TABLE (
	"subscription_id" uuid,  /* Uuid */
	"user_id" uuid,  /* Uuid */
	"action" TEXT,  /* String */
	"period_start" timestamp with time zone,  /* TimestampWithTimeZone */
	"period_end" timestamp with time zone  /* TimestampWithTimeZone */
)
VOLATILE PARALLEL UNSAFE
SET search_path TO pg_catalog
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'rollover_billing_periods_wrapper';

CREATE OR REPLACE FUNCTION dialer."require_worker"(
	"function_name" TEXT /* Option < & str > */
) RETURNS void
STABLE PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'require_worker_wrapper';

CREATE FUNCTION dialer."remaining"(
	"limit" bigint, /* i64 */
	"used" bigint, /* i64 */
	"reserved" bigint /* i64 */
) RETURNS bigint /* i64 */
IMMUTABLE STRICT PARALLEL SAFE 
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'plan_remaining_wrapper';

REVOKE EXECUTE ON FUNCTION dialer.remaining(bigint, bigint, bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION dialer.remaining(bigint, bigint, bigint) TO authenticated, service_role;

---------------------------------------------------------------------------
-- Usage settlement is Rust (src/settlement.rs): dialer.settle_usage() keeps
-- its signature and grants; the PL/pgSQL it called goes. Calls reserved in a
-- period are counted by dialer.reserved_calls_in(), plain SQL the planner
-- inlines (the rollover counts for every subscription it opens a period for).
---------------------------------------------------------------------------
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
REVOKE EXECUTE ON FUNCTION dialer.reserved_calls_in(uuid, timestamptz, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION dialer.reserved_calls_in(uuid, timestamptz, timestamptz) TO authenticated, service_role;

CREATE OR REPLACE FUNCTION dialer."settle_usage"(
	"user_id" uuid, /* Uuid */
	"at" timestamp with time zone, /* TimestampWithTimeZone */
	"calls" INT, /* i32 */
	"minutes" INT /* i32 */
) RETURNS void
STRICT VOLATILE PARALLEL UNSAFE
SET search_path TO pg_catalog
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'settle_usage_wrapper';

DROP FUNCTION dialer.usage_row(uuid, timestamptz);
DROP FUNCTION dialer.refresh_remaining(uuid);
DROP FUNCTION dialer.reserved_calls(uuid, timestamptz, timestamptz);

---------------------------------------------------------------------------
-- One definition of acting for another user (core/src/claims.rs), used by
-- enqueue_call(), the check of every queued call and
-- compute_remaining_usage(); its refusal names the user.
---------------------------------------------------------------------------
CREATE FUNCTION dialer."acting_for"(
	"user_id" uuid, /* Option < pgrx :: Uuid > */
	"action" TEXT /* Option < & str > */
) RETURNS uuid /* pgrx :: Uuid */
STABLE PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'acting_for_wrapper';
REVOKE EXECUTE ON FUNCTION dialer.acting_for(uuid, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION dialer.acting_for(uuid, text) TO authenticated, service_role;

CREATE OR REPLACE FUNCTION enqueue_call(
    recipient_number text,
    template_id uuid DEFAULT NULL,
    custom_variables jsonb DEFAULT NULL,
    voice_id uuid DEFAULT NULL,
    caller_number_id uuid DEFAULT NULL,
    scheduled_time timestamptz DEFAULT NULL,
    idempotency_key text DEFAULT NULL,
    user_id uuid DEFAULT NULL
) RETURNS public.call_queue
    LANGUAGE plpgsql VOLATILE
    SET search_path = ''
AS $$
#variable_conflict use_column
DECLARE
    -- the caller, or the user named by an admin or service_role (42501)
    target uuid := dialer.acting_for(enqueue_call.user_id, 'queue calls');
    queued public.call_queue;
BEGIN
    IF enqueue_call.idempotency_key IS NOT NULL THEN
        SELECT * INTO queued FROM public.call_queue q
        WHERE q.user_id = target AND q.idempotency_key = enqueue_call.idempotency_key;
        IF FOUND THEN
            RETURN queued;
        END IF;
    END IF;

    INSERT INTO public.call_queue AS q
        (user_id, recipient_number, caller_number_id, scheduled_time, template_id, voice_id,
         custom_variables, idempotency_key)
    VALUES
        (target, enqueue_call.recipient_number, enqueue_call.caller_number_id, enqueue_call.scheduled_time,
         enqueue_call.template_id, enqueue_call.voice_id, enqueue_call.custom_variables,
         enqueue_call.idempotency_key)
    ON CONFLICT (user_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
    RETURNING * INTO queued;

    IF NOT FOUND THEN
        -- A concurrent request with the same key won the race.
        SELECT * INTO queued FROM public.call_queue q
        WHERE q.user_id = target AND q.idempotency_key = enqueue_call.idempotency_key;
    END IF;
    RETURN queued;
END
$$;


---------------------------------------------------------------------------
-- Last: the baseline takes what this update changed.
---------------------------------------------------------------------------
SELECT dialer.schema_update_end();
