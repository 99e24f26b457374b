-- The call pipeline in SQL: the triggers that check every queued call, the
-- functions applications and dialing workers call, and their grants. The
-- checks and routing themselves are Rust (src/queue.rs, src/routing.rs).

-- The typed error boundary (src/errors.rs): a Rust function that can fail
-- with one of PostgREST's PT codes returns the error beside its result, and
-- its SQL shell hands both here: the error is raised, or the result returned.
-- A PT code raised beneath a Rust frame would reach the client as XX000.
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

-- One user's quota checks and usage settlements run one at a time, until the
-- transaction ends: dialer.lock_user() (src/locks.rs) locks the user's row
-- here. Only the extension's owner may touch the table, so no other role can
-- hold a tenant's lock.
CREATE TABLE dialer.user_locks (
    user_id   UUID PRIMARY KEY,
    locked_at TIMESTAMPTZ NOT NULL DEFAULT pg_catalog.now()
) WITH (fillfactor = 50);
REVOKE ALL ON dialer.user_locks FROM PUBLIC;

---------------------------------------------------------------------------
-- Every queued call passes the same checks, whether it comes through
-- enqueue_call() or a direct INSERT or UPDATE: recipient normalized to E.164,
-- template, variables, voice, caller number, subscription and quota
-- (dialer.check_queued_call(), src/queue.rs; this shell raises its errors).
-- Skipped for rows that are not (or were not) queued, which the worker
-- moves, and for a superuser (a DBA seeding data or restoring a dump).
---------------------------------------------------------------------------
CREATE FUNCTION dialer.validate_queued_call() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = ''
AS $$
BEGIN
    NEW := (SELECT dialer.raised(o.call, o.error_code, o.error_message, o.error_detail, o.error_hint)
            FROM dialer.check_queued_call(NEW, OLD) AS o);
    RETURN NEW;
END
$$;

-- Not fired for rows that are not queued, nor for the row enqueue_call
-- checked and is inserting, nor for a superuser's (dialer.needs_check()).
CREATE TRIGGER validate_queued_call BEFORE INSERT OR UPDATE ON call_queue
    FOR EACH ROW WHEN (NEW.status = 'queued' AND dialer.needs_check(NEW.id))
    EXECUTE FUNCTION dialer.validate_queued_call();

-- A template's params and params_order (src/queue.rs).
CREATE TRIGGER validate_template BEFORE INSERT OR UPDATE OF params, params_order ON call_templates
    FOR EACH ROW EXECUTE FUNCTION dialer.validate_template();

-- A user's caller number is a phone number, stored in E.164 (src/numbers.rs).
CREATE TRIGGER validate_user_phone_number BEFORE INSERT OR UPDATE OF full_number, phone_id, provider_id ON user_phone_numbers
    FOR EACH ROW EXECUTE FUNCTION dialer.validate_user_phone_number();

---------------------------------------------------------------------------
-- Shells of the API functions whose work is Rust and that can fail with a
-- PT code (see dialer.raised()): each calls its Rust function and raises
-- the error it returned, or returns its result, and does nothing else.
-- PL/pgSQL rather than SQL: a session keeps the plan of a PL/pgSQL
-- statement, where a SQL function's body is planned at every call.
-- enqueue_call (src/queue.rs): queue one call for the current user (an
-- admin or service_role may name the user); with an idempotency_key, the
-- same key returns the same call, however often it is sent. A campaign
-- lends the call its template, voice, caller number, window and latest
-- time where the call names none; the call waits for its window to open.
-- cancel_call (src/queue.rs): the owner (or an admin, or service_role)
-- cancels a queued call. mark_call_placed and mark_call_failed
-- (src/calls.rs), for the worker: a call in progress gets the provider's
-- call id, or counts a failed attempt. rescue_stale_calls() is Rust alone.
---------------------------------------------------------------------------
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

CREATE FUNCTION cancel_call(call_id uuid) RETURNS public.call_queue
    LANGUAGE plpgsql VOLATILE
    SET search_path = ''
AS $$
BEGIN
    RETURN (SELECT dialer.raised(o.call, o.error_code, o.error_message, o.error_detail, o.error_hint)
            FROM dialer.cancel_queued_call(cancel_call.call_id) AS o);
END
$$;

CREATE FUNCTION mark_call_placed(call_queue_id uuid, provider_call_id text) RETURNS public.call_queue
    LANGUAGE plpgsql VOLATILE
    SET search_path = ''
AS $$
BEGIN
    RETURN (SELECT dialer.raised(o.call, o.error_code, o.error_message, o.error_detail, o.error_hint)
            FROM dialer.place_call(mark_call_placed.call_queue_id, mark_call_placed.provider_call_id) AS o);
END
$$;

CREATE FUNCTION mark_call_failed(call_queue_id uuid, error_message text, retryable boolean DEFAULT true)
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

-- pick_provider_number (src/routing.rs): the provider and number a call
-- would go out on now. A SQL function: its parameter provider_id and its
-- result column of the same name cannot both be PL/pgSQL variables. It
-- only reads (STABLE) and names everything with its schema, without a SET
-- clause: so PostgreSQL inlines it into the query that calls it instead of
-- planning its body at every call.
CREATE FUNCTION pick_provider_number(recipient_number text, caller_number_id uuid DEFAULT NULL,
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
-- Grants: the API is for signed-in users and the worker, never anon.
---------------------------------------------------------------------------
REVOKE ALL ON FUNCTION
    enqueue_call(text, uuid, jsonb, uuid, uuid, timestamptz, text, uuid, uuid, jsonb, timestamptz),
    cancel_call(uuid),
    pick_provider_number(text, uuid, uuid),
    claim_due_calls(integer),
    mark_call_placed(uuid, text),
    mark_call_failed(uuid, text, boolean),
    rescue_stale_calls(interval)
FROM PUBLIC, anon;
GRANT EXECUTE ON FUNCTION
    enqueue_call(text, uuid, jsonb, uuid, uuid, timestamptz, text, uuid, uuid, jsonb, timestamptz),
    cancel_call(uuid),
    pick_provider_number(text, uuid, uuid),
    claim_due_calls(integer),
    mark_call_placed(uuid, text),
    mark_call_failed(uuid, text, boolean),
    rescue_stale_calls(interval)
TO authenticated, service_role;
