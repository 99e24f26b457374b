-- The call pipeline in SQL: the triggers that check every queued call, the
-- functions applications and dialing workers call, and their grants. The
-- checks and routing themselves are Rust (src/queue.rs, src/routing.rs).

-- Raises an error that Rust returned as {"code", "message", "detail", "hint"}
-- (Rust raises only PostgreSQL's own SQLSTATEs; see src/errors.rs).
CREATE FUNCTION dialer.raise_error(err jsonb) RETURNS void
    LANGUAGE plpgsql VOLATILE
    SET search_path = ''
AS $$
BEGIN
    IF err IS NULL OR pg_catalog.jsonb_typeof(err) = 'null' THEN
        RETURN;
    END IF;
    IF err ->> 'detail' IS NOT NULL AND err ->> 'hint' IS NOT NULL THEN
        RAISE EXCEPTION USING ERRCODE = err ->> 'code', MESSAGE = err ->> 'message',
                              DETAIL = err ->> 'detail', HINT = err ->> 'hint';
    ELSIF err ->> 'detail' IS NOT NULL THEN
        RAISE EXCEPTION USING ERRCODE = err ->> 'code', MESSAGE = err ->> 'message', DETAIL = err ->> 'detail';
    ELSIF err ->> 'hint' IS NOT NULL THEN
        RAISE EXCEPTION USING ERRCODE = err ->> 'code', MESSAGE = err ->> 'message', HINT = err ->> 'hint';
    ELSE
        RAISE EXCEPTION USING ERRCODE = err ->> 'code', MESSAGE = err ->> 'message';
    END IF;
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
-- template, variables, voice, caller number, subscription and quota.
-- Skipped for rows that are not (or were not) queued, which the worker moves,
-- and for a superuser (a DBA seeding data or restoring a dump).
---------------------------------------------------------------------------
CREATE FUNCTION dialer.validate_queued_call() RETURNS trigger
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

CREATE TRIGGER validate_queued_call BEFORE INSERT OR UPDATE ON call_queue
    FOR EACH ROW EXECUTE FUNCTION dialer.validate_queued_call();

CREATE FUNCTION dialer.validate_template() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = ''
AS $$
BEGIN
    PERFORM dialer.raise_error(dialer.check_template_params(NEW.params::text, NEW.params_order::text) -> 'error');
    RETURN NEW;
END
$$;

CREATE TRIGGER validate_template BEFORE INSERT OR UPDATE OF params, params_order ON call_templates
    FOR EACH ROW EXECUTE FUNCTION dialer.validate_template();

-- A user's caller number is a phone number, stored in E.164 (src/numbers.rs).
CREATE TRIGGER validate_user_phone_number BEFORE INSERT OR UPDATE OF full_number ON user_phone_numbers
    FOR EACH ROW EXECUTE FUNCTION dialer.validate_user_phone_number();

---------------------------------------------------------------------------
-- enqueue_call: queue one call for the current user (an admin or
-- service_role may name the user). With an idempotency_key, the same key
-- returns the same call, however often it is sent.
---------------------------------------------------------------------------
CREATE FUNCTION enqueue_call(
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
-- cancel_call: the owner (or an admin, or service_role) cancels a queued call.
-- The work is Rust (dialer.cancel_queued_call, src/queue.rs), which checks
-- ownership; this shell raises its PT404/PT409 and returns the row.
---------------------------------------------------------------------------
CREATE FUNCTION cancel_call(call_id uuid) RETURNS public.call_queue
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
-- After a worker tried to place a call: mark_call_placed() records the
-- provider's call id; mark_call_failed() counts the attempt and queues the
-- call again after a backoff (core/src/retry.rs), or ends it as failed.
---------------------------------------------------------------------------

-- A call that is in progress, locked; PT404 or PT409 otherwise.
CREATE FUNCTION dialer.lock_in_progress_call(call_queue_id uuid) RETURNS public.call_queue
    LANGUAGE plpgsql VOLATILE
    SET search_path = ''
AS $$
DECLARE
    c public.call_queue;
BEGIN
    SELECT * INTO c FROM public.call_queue q WHERE q.id = lock_in_progress_call.call_queue_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'call % not found', call_queue_id USING ERRCODE = 'PT404';
    END IF;
    IF c.status <> 'in-progress' THEN
        RAISE EXCEPTION 'call % is %, not in-progress', c.id, c.status USING ERRCODE = 'PT409';
    END IF;
    RETURN c;
END
$$;

-- One failed attempt of a call: queue it again after the backoff, or end it.
CREATE FUNCTION dialer.fail_attempt(c public.call_queue, reason text, retryable boolean)
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

CREATE FUNCTION mark_call_placed(call_queue_id uuid, provider_call_id text) RETURNS public.call_queue
    LANGUAGE plpgsql VOLATILE
    SET search_path = ''
AS $$
DECLARE
    c public.call_queue;
BEGIN
    PERFORM dialer.require_worker('mark_call_placed');
    IF coalesce(pg_catalog.btrim(provider_call_id), '') = '' THEN
        RAISE EXCEPTION 'provider_call_id is empty' USING ERRCODE = '22023';
    END IF;
    c := dialer.lock_in_progress_call(call_queue_id);
    UPDATE public.call_queue q SET call_id = provider_call_id WHERE q.id = c.id RETURNING * INTO c;
    RETURN c;
END
$$;

CREATE FUNCTION mark_call_failed(call_queue_id uuid, error_message text, retryable boolean DEFAULT true)
    RETURNS public.call_queue
    LANGUAGE plpgsql VOLATILE
    SET search_path = ''
AS $$
BEGIN
    PERFORM dialer.require_worker('mark_call_failed');
    IF coalesce(pg_catalog.btrim(error_message), '') = '' THEN
        RAISE EXCEPTION 'error_message is empty' USING ERRCODE = '22023';
    END IF;
    RETURN dialer.fail_attempt(dialer.lock_in_progress_call(call_queue_id), error_message, retryable);
END
$$;

---------------------------------------------------------------------------
-- rescue_stale_calls: calls in progress for longer than older_than (default
-- pg_dialer.stale_call_timeout) without a result count a failed attempt:
-- queued again, or failed once their attempts are used up. older_than =>
-- '0 seconds' takes back every call in progress (after an outage).
---------------------------------------------------------------------------
CREATE FUNCTION rescue_stale_calls(older_than interval DEFAULT NULL) RETURNS SETOF public.call_queue
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

---------------------------------------------------------------------------
-- Grants: the API is for signed-in users and the worker, never anon.
---------------------------------------------------------------------------
REVOKE ALL ON FUNCTION
    enqueue_call(text, uuid, jsonb, uuid, uuid, timestamptz, text, uuid),
    cancel_call(uuid),
    pick_provider_number(text, uuid, uuid),
    claim_due_calls(integer),
    mark_call_placed(uuid, text),
    mark_call_failed(uuid, text, boolean),
    rescue_stale_calls(interval)
FROM PUBLIC, anon;
GRANT EXECUTE ON FUNCTION
    enqueue_call(text, uuid, jsonb, uuid, uuid, timestamptz, text, uuid),
    cancel_call(uuid),
    pick_provider_number(text, uuid, uuid),
    claim_due_calls(integer),
    mark_call_placed(uuid, text),
    mark_call_failed(uuid, text, boolean),
    rescue_stale_calls(interval)
TO authenticated, service_role;
