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
-- The API's work is Rust behind a typed boundary (src/errors.rs): rows reach
-- Rust as rows, not JSON; a PT error comes back beside the result, and the
-- SQL shells raise it through dialer.raised(). The queued-call trigger
-- fires only for queued rows that need the check (dialer.needs_check()).
-- mark_call_placed(),
-- mark_call_failed(), rescue_stale_calls(), record_call_result() and
-- cancel_call() do their work in Rust (src/calls.rs, src/results.rs,
-- src/queue.rs); validate_template is a Rust trigger.
---------------------------------------------------------------------------
DROP FUNCTION dialer.check_queued_call(jsonb, jsonb);
DROP FUNCTION dialer.check_template_params(jsonb, jsonb);
DROP FUNCTION dialer.normalize_call_result(jsonb);
DROP FUNCTION dialer.raise_error(jsonb);
DROP FUNCTION dialer.lock_in_progress_call(uuid);
DROP FUNCTION dialer.fail_attempt(public.call_queue, text, boolean);
DROP FUNCTION dialer.retry_delay(integer, boolean, double precision);
DROP FUNCTION dialer.stale_call_timeout();
DROP FUNCTION dialer.billed_minutes_for(integer);
DROP FUNCTION dialer.require_worker(text);
DROP FUNCTION dialer.settle_usage(uuid, timestamptz, integer, integer);
DROP FUNCTION dialer.caller_is_superuser();
CREATE FUNCTION dialer.raised(result anyelement, code text, message text, detail text, hint text)
    RETURNS anyelement
    LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
    SET search_path = ''
AS $$
BEGIN
    IF code IS NULL THEN
        RETURN result;
    ELSIF detail IS NOT NULL AND hint IS NOT NULL THEN
        RAISE EXCEPTION USING ERRCODE = code, MESSAGE = message, DETAIL = detail, HINT = hint;
    ELSIF detail IS NOT NULL THEN
        RAISE EXCEPTION USING ERRCODE = code, MESSAGE = message, DETAIL = detail;
    ELSIF hint IS NOT NULL THEN
        RAISE EXCEPTION USING ERRCODE = code, MESSAGE = message, HINT = hint;
    END IF;
    RAISE EXCEPTION USING ERRCODE = code, MESSAGE = message;
END
$$;

CREATE FUNCTION dialer."check_queued_call"(
	"new" public.call_queue,
	"old" public.call_queue
) RETURNS TABLE (
	"call" public.call_queue,
	"error_code" TEXT,
	"error_message" TEXT,
	"error_detail" TEXT,
	"error_hint" TEXT
)
VOLATILE PARALLEL UNSAFE 
LANGUAGE c
AS 'MODULE_PATHNAME', 'check_queued_call_wrapper';
CREATE OR REPLACE FUNCTION dialer.validate_queued_call() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = ''
AS $$
BEGIN
    NEW := (SELECT dialer.raised(o.call, o.error_code, o.error_message, o.error_detail, o.error_hint)
            FROM dialer.check_queued_call(NEW, OLD) AS o);
    RETURN NEW;
END
$$;

CREATE FUNCTION dialer."needs_check"(
	"id" uuid
) RETURNS bool
VOLATILE PARALLEL UNSAFE
LANGUAGE c
AS 'MODULE_PATHNAME', 'needs_check_wrapper';
DROP TRIGGER validate_queued_call ON call_queue;
CREATE TRIGGER validate_queued_call BEFORE INSERT OR UPDATE ON call_queue
    FOR EACH ROW WHEN (NEW.status = 'queued' AND dialer.needs_check(NEW.id))
    EXECUTE FUNCTION dialer.validate_queued_call();
CREATE OR REPLACE FUNCTION dialer."validate_template"()
	RETURNS TRIGGER
	LANGUAGE c
	AS 'MODULE_PATHNAME', 'validate_template_wrapper';
CREATE FUNCTION dialer."place_call"(
	"call_queue_id" uuid,
	"provider_call_id" TEXT
) RETURNS TABLE (
	"call" public.call_queue,
	"error_code" TEXT,
	"error_message" TEXT,
	"error_detail" TEXT,
	"error_hint" TEXT
)
VOLATILE PARALLEL UNSAFE 
SET search_path TO pg_catalog
LANGUAGE c
AS 'MODULE_PATHNAME', 'place_call_wrapper';
CREATE FUNCTION dialer."fail_call"(
	"call_queue_id" uuid,
	"error_message" TEXT,
	"retryable" bool
) RETURNS TABLE (
	"call" public.call_queue,
	"error_code" TEXT,
	"error_message" TEXT,
	"error_detail" TEXT,
	"error_hint" TEXT
)
VOLATILE PARALLEL UNSAFE 
SET search_path TO pg_catalog
LANGUAGE c
AS 'MODULE_PATHNAME', 'fail_call_wrapper';
CREATE FUNCTION dialer."record_result"(
	"payload" TEXT
) RETURNS TABLE (
	"call_queue_id" uuid,
	"history_id" uuid,
	"queue_status" TEXT,
	"result" TEXT,
	"error_code" TEXT,
	"error_message" TEXT,
	"error_detail" TEXT,
	"error_hint" TEXT
)
VOLATILE PARALLEL UNSAFE
SET search_path TO pg_catalog
LANGUAGE c
AS 'MODULE_PATHNAME', 'record_result_wrapper';
CREATE OR REPLACE FUNCTION mark_call_placed(call_queue_id uuid, provider_call_id text) RETURNS public.call_queue
    LANGUAGE plpgsql VOLATILE
    SET search_path = ''
AS $$
BEGIN
    RETURN (SELECT dialer.raised(o.call, o.error_code, o.error_message, o.error_detail, o.error_hint)
            FROM dialer.place_call(mark_call_placed.call_queue_id, mark_call_placed.provider_call_id) AS o);
END
$$;

CREATE OR REPLACE FUNCTION mark_call_failed(call_queue_id uuid, error_message text, retryable boolean DEFAULT true)
    RETURNS public.call_queue
    LANGUAGE plpgsql VOLATILE
    SET search_path = ''
AS $$
BEGIN
    RETURN (SELECT dialer.raised(o.call, o.error_code, o.error_message, o.error_detail, o.error_hint)
            FROM dialer.fail_call(mark_call_failed.call_queue_id, mark_call_failed.error_message,
                                  mark_call_failed.retryable) AS o);
END
$$;

CREATE OR REPLACE FUNCTION record_call_result(payload jsonb)
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

CREATE OR REPLACE FUNCTION "rescue_stale_calls"(
	"older_than" interval DEFAULT NULL
) RETURNS SETOF public.call_queue
VOLATILE PARALLEL UNSAFE 
SET search_path TO pg_catalog
LANGUAGE c
AS 'MODULE_PATHNAME', 'rescue_stale_calls_wrapper';

---------------------------------------------------------------------------
-- A user's caller number is a phone number, stored in E.164.
---------------------------------------------------------------------------
CREATE FUNCTION dialer."validate_user_phone_number"()
	RETURNS TRIGGER
	LANGUAGE c
	AS 'MODULE_PATHNAME', 'validate_user_phone_number_wrapper';
CREATE TRIGGER validate_user_phone_number BEFORE INSERT OR UPDATE OF full_number, phone_id, provider_id ON user_phone_numbers
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
) RETURNS TABLE (
	"call" public.call_queue,
	"error_code" TEXT,
	"error_message" TEXT,
	"error_detail" TEXT,
	"error_hint" TEXT
)
VOLATILE PARALLEL UNSAFE 
SET search_path TO pg_catalog
LANGUAGE c
AS 'MODULE_PATHNAME', 'cancel_queued_call_wrapper';
CREATE OR REPLACE FUNCTION cancel_call(call_id uuid) RETURNS public.call_queue
    LANGUAGE plpgsql VOLATILE
    SET search_path = ''
AS $$
BEGIN
    RETURN (SELECT dialer.raised(o.call, o.error_code, o.error_message, o.error_detail, o.error_hint)
            FROM dialer.cancel_queued_call(cancel_call.call_id) AS o);
END
$$;

-- The helpers in schema dialer: no EXECUTE for PUBLIC (anon or any other
-- login role); signed-in users and service_role get what runs as them.
REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA dialer FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
    dialer.uid(), dialer.is_admin(), dialer.is_privileged(),
    dialer.lock_user(uuid), dialer.raised(anyelement, text, text, text, text),
    dialer.check_queued_call(public.call_queue, public.call_queue), dialer.needs_check(uuid),
    dialer.cancel_queued_call(uuid), dialer.place_call(uuid, text), dialer.fail_call(uuid, text, boolean),
    dialer.record_result(text),
    dialer.reserved_calls(uuid, timestamptz, timestamptz), dialer.usage_row(uuid, timestamptz),
    dialer.refresh_remaining(uuid), dialer.roll_billing_period(bigint, bigint, text, bigint)
TO authenticated, service_role;

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
-- compute_remaining_usage() and rollover_billing_periods() are Rust now,
-- with the same signatures (grants stay); dialer.remaining() is the one
-- definition of what is left of a limit.
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
-- Usage settlement is Rust (src/settlement.rs, called by record_call_result);
-- the PL/pgSQL that did it goes. Calls reserved in a
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

DROP FUNCTION dialer.usage_row(uuid, timestamptz);
DROP FUNCTION dialer.refresh_remaining(uuid);
DROP FUNCTION dialer.reserved_calls(uuid, timestamptz, timestamptz);

---------------------------------------------------------------------------
-- enqueue_call() does its work in Rust (src/queue.rs), with the one
-- definition of acting for another user (core/src/claims.rs) that the check
-- of every queued call and compute_remaining_usage() use; its refusal names
-- the user. The call it checked is not checked again by its trigger.
---------------------------------------------------------------------------
CREATE FUNCTION dialer."enqueue"(
	"recipient_number" TEXT,
	"template_id" uuid,
	"custom_variables" TEXT,
	"voice_id" uuid,
	"caller_number_id" uuid,
	"scheduled_time" timestamp with time zone,
	"idempotency_key" TEXT,
	"user_id" uuid,
	"campaign_id" uuid,
	"call_window" TEXT,
	"expires_at" timestamp with time zone
) RETURNS TABLE (
	"call" public.call_queue,
	"error_code" TEXT,
	"error_message" TEXT,
	"error_detail" TEXT,
	"error_hint" TEXT
)
VOLATILE PARALLEL UNSAFE 
SET search_path TO pg_catalog
LANGUAGE c
AS 'MODULE_PATHNAME', 'enqueue_wrapper';
REVOKE EXECUTE ON FUNCTION dialer.enqueue(text, uuid, text, uuid, uuid, timestamptz, text, uuid, uuid, text, timestamptz)
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION dialer.enqueue(text, uuid, text, uuid, uuid, timestamptz, text, uuid, uuid, text, timestamptz)
    TO authenticated, service_role;
-- enqueue_call() takes a campaign, a calling window and a latest time
-- (see "Campaigns and calling windows" below): new parameters, so a new
-- function in place of 0.1.0's.
DROP FUNCTION enqueue_call(text, uuid, jsonb, uuid, uuid, timestamptz, text, uuid);
CREATE FUNCTION enqueue_call(
    recipient_number text,
    template_id uuid DEFAULT NULL,
    custom_variables jsonb DEFAULT NULL,
    voice_id uuid DEFAULT NULL,
    caller_number_id uuid DEFAULT NULL,
    scheduled_time timestamptz DEFAULT NULL,
    idempotency_key text DEFAULT NULL,
    user_id uuid DEFAULT NULL,
    campaign_id uuid DEFAULT NULL,
    call_window jsonb DEFAULT NULL,
    expires_at timestamptz DEFAULT NULL
) RETURNS public.call_queue
    LANGUAGE plpgsql VOLATILE
    SET search_path = ''
AS $$
BEGIN
    RETURN (SELECT dialer.raised(o.call, o.error_code, o.error_message, o.error_detail, o.error_hint)
            FROM dialer.enqueue(enqueue_call.recipient_number, enqueue_call.template_id,
                                enqueue_call.custom_variables::text, enqueue_call.voice_id,
                                enqueue_call.caller_number_id, enqueue_call.scheduled_time,
                                enqueue_call.idempotency_key, enqueue_call.user_id,
                                enqueue_call.campaign_id, enqueue_call.call_window::text,
                                enqueue_call.expires_at) AS o);
END
$$;
REVOKE ALL ON FUNCTION enqueue_call(text, uuid, jsonb, uuid, uuid, timestamptz, text, uuid, uuid, jsonb, timestamptz)
    FROM PUBLIC, anon;
GRANT EXECUTE ON FUNCTION enqueue_call(text, uuid, jsonb, uuid, uuid, timestamptz, text, uuid, uuid, jsonb, timestamptz)
    TO authenticated, service_role;

---------------------------------------------------------------------------
-- One rule for a user's own caller number (core/src/routing.rs): the call's
-- user's and active. pick_provider_number() answers PT404 for a number that
-- is not the caller's, as enqueue_call() does (22023 before), through its
-- shell over dialer.pick_number().
---------------------------------------------------------------------------
CREATE FUNCTION dialer."pick_number"(
	"recipient_number" TEXT,
	"caller_number_id" uuid,
	"provider_id" uuid
) RETURNS TABLE (
	"provider_id" uuid,
	"provider_name" TEXT,
	"phone_number_id" uuid,
	"phone_id" TEXT,
	"from_number" TEXT,
	"error_code" TEXT,
	"error_message" TEXT,
	"error_detail" TEXT,
	"error_hint" TEXT
)
VOLATILE PARALLEL UNSAFE  
LANGUAGE c
AS 'MODULE_PATHNAME', 'pick_number_wrapper';
REVOKE EXECUTE ON FUNCTION dialer.pick_number(text, uuid, uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION dialer.pick_number(text, uuid, uuid) TO authenticated, service_role;
CREATE OR REPLACE FUNCTION pick_provider_number(recipient_number text, caller_number_id uuid DEFAULT NULL,
                                     provider_id uuid DEFAULT NULL)
    RETURNS TABLE (provider_id uuid, provider_name text, phone_number_id uuid, phone_id text, from_number text)
    LANGUAGE sql STABLE
AS $$
    SELECT o.provider_id, o.provider_name, o.phone_number_id, o.phone_id,
           dialer.raised(o.from_number, o.error_code, o.error_message, o.error_detail, o.error_hint)
    FROM dialer.pick_number(pick_provider_number.recipient_number, pick_provider_number.caller_number_id,
                            pick_provider_number.provider_id) AS o
$$;

---------------------------------------------------------------------------
-- The column guard is a Rust trigger function (src/guards.rs), with the same
-- name, arguments and errors; the triggers stay.
---------------------------------------------------------------------------
CREATE OR REPLACE FUNCTION dialer."protect_columns"()
	RETURNS TRIGGER
	LANGUAGE c
	AS 'MODULE_PATHNAME', 'protect_columns_wrapper';

---------------------------------------------------------------------------
-- Campaigns and calling windows (README): the campaigns table, a queued
-- call's campaign, window and latest time, a user's default window, and
-- the API over them. Calls queued before this update have no window
-- (call_window NULL) and are placed as before.
---------------------------------------------------------------------------
CREATE TABLE campaigns (
    id               UUID PRIMARY KEY DEFAULT uuid_generate_v4(),
    user_id          UUID NOT NULL REFERENCES auth.users (id),
    name             TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    template_id      UUID REFERENCES call_templates (id),
    voice_id         UUID REFERENCES voice_options (id),
    caller_number_id UUID REFERENCES user_phone_numbers (id),
    call_window      JSONB,
    expires_at       TIMESTAMPTZ,
    paused           BOOLEAN NOT NULL DEFAULT false,
    canceled_at      TIMESTAMPTZ,
    created_at       TIMESTAMPTZ DEFAULT CURRENT_TIMESTAMP,
    updated_at       TIMESTAMPTZ DEFAULT CURRENT_TIMESTAMP
);
CREATE INDEX campaigns_user_id ON campaigns (user_id);
ALTER TABLE call_queue
    ADD COLUMN campaign_id UUID REFERENCES campaigns (id),
    ADD COLUMN call_window JSONB,
    ADD COLUMN expires_at TIMESTAMPTZ;
CREATE INDEX call_queue_campaign ON call_queue (campaign_id, status)
    WHERE campaign_id IS NOT NULL;
CREATE INDEX call_queue_expiring ON call_queue (expires_at)
    WHERE status = 'queued' AND expires_at IS NOT NULL;
ALTER TABLE user_profiles ADD COLUMN call_window JSONB;

CREATE FUNCTION dialer."validate_call_window"()
	RETURNS TRIGGER
	LANGUAGE c
	AS 'MODULE_PATHNAME', 'validate_call_window_wrapper';
CREATE FUNCTION dialer."validate_campaign"()
	RETURNS TRIGGER
	LANGUAGE c
	AS 'MODULE_PATHNAME', 'validate_campaign_wrapper';
CREATE FUNCTION dialer."billed_minutes"(
	"seconds" INT
) RETURNS bigint
IMMUTABLE STRICT PARALLEL SAFE
LANGUAGE c
AS 'MODULE_PATHNAME', 'billed_minutes_wrapper';
CREATE FUNCTION dialer."campaign_action"(
	"campaign_id" uuid,
	"action" TEXT
) RETURNS TABLE (
	"campaign" public.campaigns,
	"error_code" TEXT,
	"error_message" TEXT,
	"error_detail" TEXT,
	"error_hint" TEXT
)
VOLATILE PARALLEL UNSAFE
SET search_path TO pg_catalog, pg_temp
LANGUAGE c
AS 'MODULE_PATHNAME', 'campaign_action_wrapper';
CREATE FUNCTION dialer."enqueue_batch"(
	"calls" TEXT,
	"template_id" uuid,
	"voice_id" uuid,
	"caller_number_id" uuid,
	"campaign_id" uuid,
	"call_window" TEXT,
	"expires_at" timestamp with time zone,
	"skip_invalid" bool,
	"user_id" uuid
) RETURNS TABLE (
	"result" jsonb,
	"error_code" TEXT,
	"error_message" TEXT,
	"error_detail" TEXT,
	"error_hint" TEXT
)
VOLATILE PARALLEL UNSAFE
SET search_path TO pg_catalog, pg_temp
LANGUAGE c
AS 'MODULE_PATHNAME', 'enqueue_batch_wrapper';
REVOKE EXECUTE ON FUNCTION dialer.validate_call_window(), dialer.validate_campaign(),
    dialer.billed_minutes(integer), dialer.campaign_action(uuid, text),
    dialer.enqueue_batch(text, uuid, uuid, uuid, uuid, text, timestamptz, boolean, uuid)
FROM PUBLIC;
GRANT EXECUTE ON FUNCTION dialer.billed_minutes(integer), dialer.campaign_action(uuid, text),
    dialer.enqueue_batch(text, uuid, uuid, uuid, uuid, text, timestamptz, boolean, uuid)
TO authenticated, service_role;

-- A user's default window and a campaign's are windows
-- (core/src/window.rs), stored with every key written out; canceling a
-- campaign is cancel_campaign()'s, which cancels its queued calls with it
-- (src/window.rs, src/campaigns.rs).
CREATE TRIGGER validate_call_window BEFORE INSERT OR UPDATE OF call_window ON user_profiles
    FOR EACH ROW EXECUTE FUNCTION dialer.validate_call_window();
CREATE TRIGGER validate_campaign BEFORE INSERT OR UPDATE ON campaigns
    FOR EACH ROW EXECUTE FUNCTION dialer.validate_campaign();

CREATE TRIGGER set_updated_at BEFORE UPDATE ON campaigns
    FOR EACH ROW EXECUTE FUNCTION dialer.set_updated_at();
CREATE TRIGGER protect_columns BEFORE UPDATE ON campaigns
    FOR EACH ROW EXECUTE FUNCTION dialer.protect_columns('id', 'user_id', 'created_at');

-- A user's own campaigns, as for their other rows; only admins delete (a
-- campaign with calls stays, as its calls refer to it).
ALTER TABLE campaigns ENABLE ROW LEVEL SECURITY;
CREATE POLICY "Users can view own campaigns" ON campaigns
    FOR SELECT TO authenticated USING ((SELECT dialer.uid()) = user_id);
CREATE POLICY "Users can create campaigns" ON campaigns
    FOR INSERT TO authenticated
    WITH CHECK ((SELECT dialer.uid()) = user_id AND canceled_at IS NULL);
CREATE POLICY "Users can update own campaigns" ON campaigns
    FOR UPDATE TO authenticated
    USING ((SELECT dialer.uid()) = user_id) WITH CHECK ((SELECT dialer.uid()) = user_id);
CREATE POLICY "Admin can manage all campaigns" ON campaigns
    FOR ALL TO authenticated
    USING ((SELECT dialer.is_admin())) WITH CHECK ((SELECT dialer.is_admin()));
REVOKE ALL ON campaigns FROM PUBLIC, anon, authenticated, service_role;
GRANT SELECT, INSERT, UPDATE, DELETE ON campaigns TO authenticated, service_role;
SELECT pg_catalog.pg_extension_config_dump('campaigns', '');

-- A campaign's progress in one query: its calls by state (an expired call
-- is canceled with last_error 'expired: not placed by ...'; the other canceled calls are
-- counted apart from it) and the minutes billed for them. The caller's
-- own rights apply (security_invoker): a user sees their own campaigns.
CREATE VIEW campaign_progress WITH (security_invoker = true) AS
SELECT c.id AS campaign_id, c.user_id, c.name, c.paused, c.canceled_at, c.expires_at,
       count(q.id) AS calls,
       count(q.id) FILTER (WHERE q.status = 'queued') AS queued,
       count(q.id) FILTER (WHERE q.status = 'in-progress') AS in_progress,
       count(q.id) FILTER (WHERE q.status = 'completed') AS completed,
       count(q.id) FILTER (WHERE q.status = 'failed') AS failed,
       count(q.id) FILTER (WHERE q.status = 'canceled'
                                 AND (q.last_error IS NULL OR q.last_error NOT LIKE 'expired: not placed by %')) AS canceled,
       count(q.id) FILTER (WHERE q.status = 'canceled' AND q.last_error LIKE 'expired: not placed by %') AS expired,
       coalesce(sum(h.minutes), 0)::bigint AS minutes_used
FROM public.campaigns c
LEFT JOIN public.call_queue q ON q.campaign_id = c.id
LEFT JOIN LATERAL (
    SELECT sum(dialer.billed_minutes(coalesce(r.duration, 0))) AS minutes
    FROM public.user_call_history r WHERE r.call_queue_id = q.id) AS h ON true
GROUP BY c.id;
REVOKE ALL ON campaign_progress FROM PUBLIC, anon, authenticated, service_role;
GRANT SELECT ON campaign_progress TO authenticated, service_role;

---------------------------------------------------------------------------
-- Shells (see dialer.raised()): enqueue_calls (src/batch.rs) queues up to
-- 10,000 calls in one request, all or nothing unless skip_invalid; each
-- call is {"recipient_number", "custom_variables", "scheduled_time",
-- "idempotency_key", "call_window", "expires_at"}, the rest is shared.
-- pause_campaign, resume_campaign and cancel_campaign (src/campaigns.rs).
---------------------------------------------------------------------------
CREATE FUNCTION enqueue_calls(
    calls jsonb,
    template_id uuid DEFAULT NULL,
    voice_id uuid DEFAULT NULL,
    caller_number_id uuid DEFAULT NULL,
    campaign_id uuid DEFAULT NULL,
    call_window jsonb DEFAULT NULL,
    expires_at timestamptz DEFAULT NULL,
    skip_invalid boolean DEFAULT false,
    user_id uuid DEFAULT NULL
) RETURNS jsonb
    LANGUAGE plpgsql VOLATILE
    SET search_path = ''
AS $$
BEGIN
    RETURN (SELECT dialer.raised(o.result, o.error_code, o.error_message, o.error_detail, o.error_hint)
            FROM dialer.enqueue_batch(enqueue_calls.calls::text, enqueue_calls.template_id,
                                      enqueue_calls.voice_id, enqueue_calls.caller_number_id,
                                      enqueue_calls.campaign_id, enqueue_calls.call_window::text,
                                      enqueue_calls.expires_at, enqueue_calls.skip_invalid,
                                      enqueue_calls.user_id) AS o);
END
$$;

CREATE FUNCTION pause_campaign(campaign_id uuid) RETURNS public.campaigns
    LANGUAGE plpgsql VOLATILE
    SET search_path = ''
AS $$
BEGIN
    RETURN (SELECT dialer.raised(o.campaign, o.error_code, o.error_message, o.error_detail, o.error_hint)
            FROM dialer.campaign_action(pause_campaign.campaign_id, 'pause') AS o);
END
$$;

CREATE FUNCTION resume_campaign(campaign_id uuid) RETURNS public.campaigns
    LANGUAGE plpgsql VOLATILE
    SET search_path = ''
AS $$
BEGIN
    RETURN (SELECT dialer.raised(o.campaign, o.error_code, o.error_message, o.error_detail, o.error_hint)
            FROM dialer.campaign_action(resume_campaign.campaign_id, 'resume') AS o);
END
$$;

CREATE FUNCTION cancel_campaign(campaign_id uuid) RETURNS public.campaigns
    LANGUAGE plpgsql VOLATILE
    SET search_path = ''
AS $$
BEGIN
    RETURN (SELECT dialer.raised(o.campaign, o.error_code, o.error_message, o.error_detail, o.error_hint)
            FROM dialer.campaign_action(cancel_campaign.campaign_id, 'cancel') AS o);
END
$$;

REVOKE ALL ON FUNCTION
    enqueue_calls(jsonb, uuid, uuid, uuid, uuid, jsonb, timestamptz, boolean, uuid),
    pause_campaign(uuid), resume_campaign(uuid), cancel_campaign(uuid)
FROM PUBLIC, anon;
GRANT EXECUTE ON FUNCTION
    enqueue_calls(jsonb, uuid, uuid, uuid, uuid, jsonb, timestamptz, boolean, uuid),
    pause_campaign(uuid), resume_campaign(uuid), cancel_campaign(uuid)
TO authenticated, service_role;

---------------------------------------------------------------------------
-- The dispatcher (src/dispatch.rs, sql/dispatch.sql): which API a provider
-- speaks, a template's agent id at its provider, the dispatcher's state per
-- provider, and dispatch_due_calls().
---------------------------------------------------------------------------
ALTER TABLE call_service_providers
    ADD COLUMN api TEXT CONSTRAINT call_service_providers_api_check CHECK (api IN ('vapi', 'retell', 'bland'));
ALTER TABLE call_templates
    ADD COLUMN provider_agent_id TEXT
        CONSTRAINT call_templates_provider_agent_id_check CHECK (provider_agent_id ~ '^[!-~]{1,128}$');
GRANT SELECT (api) ON call_service_providers TO authenticated;

CREATE FUNCTION dialer."dispatch_claim"(
	"max_calls" INT
) RETURNS uuid[]
STRICT VOLATILE PARALLEL UNSAFE
SET search_path TO pg_catalog
LANGUAGE c
AS 'MODULE_PATHNAME', 'dispatch_claim_wrapper';

CREATE FUNCTION dialer."dispatch_send"(
	"calls" uuid[]
) RETURNS TABLE (
	"call_queue_id" uuid,
	"provider" TEXT,
	"outcome" TEXT,
	"detail" TEXT
)
STRICT VOLATILE PARALLEL UNSAFE
SET search_path TO pg_catalog
LANGUAGE c
AS 'MODULE_PATHNAME', 'dispatch_send_wrapper';

REVOKE EXECUTE ON FUNCTION dialer.dispatch_claim(integer), dialer.dispatch_send(uuid[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION dialer.dispatch_claim(integer), dialer.dispatch_send(uuid[]) TO authenticated, service_role;

CREATE TABLE dialer.provider_state (
    provider_id   UUID PRIMARY KEY REFERENCES public.call_service_providers (id) ON DELETE CASCADE,
    paused_until  TIMESTAMPTZ,
    last_error    TEXT,
    last_error_at TIMESTAMPTZ
);
REVOKE ALL ON dialer.provider_state FROM PUBLIC;

-- What the dispatcher placed and failed per provider, by 10-second bucket,
-- for dispatcher_status(); buckets older than an hour are dropped.
CREATE TABLE dialer.dispatch_counts (
    provider_id UUID NOT NULL REFERENCES public.call_service_providers (id) ON DELETE CASCADE,
    bucket      TIMESTAMPTZ NOT NULL,
    placed      INTEGER NOT NULL DEFAULT 0,
    failed      INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (provider_id, bucket)
);
REVOKE ALL ON dialer.dispatch_counts FROM PUBLIC;

CREATE PROCEDURE dispatch_due_calls(max_calls integer DEFAULT 50)
    LANGUAGE plpgsql
AS $$
DECLARE claimed uuid[] := dialer.dispatch_claim(max_calls);
BEGIN
    COMMIT;
    WHILE EXISTS (SELECT FROM dialer.dispatch_send(claimed)) LOOP COMMIT; END LOOP;
END
$$;
REVOKE ALL ON PROCEDURE dispatch_due_calls(integer) FROM PUBLIC, anon;
GRANT EXECUTE ON PROCEDURE dispatch_due_calls(integer) TO authenticated, service_role;

CREATE FUNCTION "dispatcher_status"() RETURNS TABLE (
	"provider_id" uuid,
	"provider" TEXT,
	"api" TEXT,
	"concurrency_limit" INT,
	"in_progress" bigint,
	"being_sent" bigint,
	"placed_last_minute" bigint,
	"failed_last_minute" bigint,
	"placed_last_hour" bigint,
	"failed_last_hour" bigint,
	"last_error" TEXT,
	"last_error_at" timestamp with time zone,
	"paused_until" timestamp with time zone
)
STRICT VOLATILE PARALLEL UNSAFE
SET search_path TO pg_catalog
LANGUAGE c
AS 'MODULE_PATHNAME', 'dispatcher_status_wrapper';

CREATE FUNCTION "dispatcher_worker"() RETURNS TABLE (
	"preloaded" bool,
	"enabled" bool,
	"database" TEXT,
	"pid" INT,
	"started_at" timestamp with time zone,
	"last_loop" timestamp with time zone
)
STRICT VOLATILE PARALLEL UNSAFE
SET search_path TO pg_catalog
LANGUAGE c
AS 'MODULE_PATHNAME', 'dispatcher_worker_wrapper';

REVOKE ALL ON FUNCTION dispatcher_status(), dispatcher_worker() FROM PUBLIC, anon;
GRANT EXECUTE ON FUNCTION dispatcher_status(), dispatcher_worker() TO authenticated, service_role;

CREATE FUNCTION dialer."seal_credentials"()
	RETURNS TRIGGER
	LANGUAGE c
	AS 'MODULE_PATHNAME', 'seal_credentials_wrapper';

CREATE FUNCTION dialer."seal_stored_credentials"() RETURNS bigint
STRICT VOLATILE PARALLEL UNSAFE
SET search_path TO pg_catalog
LANGUAGE c
AS 'MODULE_PATHNAME', 'seal_stored_credentials_wrapper';
REVOKE EXECUTE ON FUNCTION dialer.seal_credentials(), dialer.seal_stored_credentials() FROM PUBLIC;

CREATE FUNCTION "rotate_credentials_key"() RETURNS TABLE (
	"key_id" TEXT,
	"sealed_again" bigint,
	"not_opened" bigint
)
STRICT VOLATILE PARALLEL UNSAFE
SET search_path TO pg_catalog
LANGUAGE c
AS 'MODULE_PATHNAME', 'rotate_credentials_key_wrapper';

-- Providers' credentials are sealed when written (src/credentials.rs: under
-- the key pg_dialer.credentials_key names, never stored in the database);
-- rows already there (adopted, or of an earlier version) are sealed now.
CREATE TRIGGER seal_credentials BEFORE INSERT OR UPDATE OF api_credentials, id ON call_service_providers
    FOR EACH ROW EXECUTE FUNCTION dialer.seal_credentials();
SELECT dialer.seal_stored_credentials();
REVOKE ALL ON FUNCTION rotate_credentials_key() FROM PUBLIC, anon;

---------------------------------------------------------------------------
-- schedule_dialer_jobs() takes a schedule for dispatch_due_calls() (hosts
-- without the background worker); unschedule_dialer_jobs() removes it too.
---------------------------------------------------------------------------
DROP FUNCTION schedule_dialer_jobs(text, text);
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

CREATE OR REPLACE FUNCTION unschedule_dialer_jobs() RETURNS SETOF text
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
REVOKE ALL ON FUNCTION schedule_dialer_jobs(text, text, text), unschedule_dialer_jobs() FROM PUBLIC, anon;

---------------------------------------------------------------------------
-- Last: the baseline takes what this update changed.
---------------------------------------------------------------------------
SELECT dialer.schema_update_end();
