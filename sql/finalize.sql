-- The last step of CREATE EXTENSION.

-- The helpers in schema dialer are for the extension's own functions,
-- policies and triggers: no EXECUTE for PUBLIC, so none for anon or any other
-- login role; signed-in users and service_role get those that run with their
-- privileges (policies, trigger bodies, the API's PL/pgSQL).
REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA dialer FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
    dialer.uid(), dialer.is_admin(), dialer.is_privileged(), dialer.caller_is_superuser(),
    dialer.acting_for(uuid, text),
    dialer.lock_user(uuid), dialer.raise_error(jsonb),
    dialer.check_queued_call(text, text), dialer.check_template_params(text, text),
    dialer.cancel_queued_call(uuid),
    dialer.require_worker(text), dialer.lock_in_progress_call(uuid),
    dialer.fail_attempt(public.call_queue, text, boolean),
    dialer.retry_delay(integer, boolean, double precision), dialer.stale_call_timeout(),
    dialer.reserved_calls_in(uuid, timestamptz, timestamptz),
    dialer.settle_usage(uuid, timestamptz, integer, integer),
    dialer.normalize_call_result(text), dialer.billed_minutes_for(integer), dialer.remaining(bigint, bigint, bigint),
    dialer.subscription_period(timestamptz, timestamptz, timestamptz, text, boolean, boolean, timestamptz),
    dialer.covering_period(timestamptz, timestamptz, timestamptz, text, boolean, boolean, timestamptz),
    dialer.billing_period(uuid, timestamptz, boolean, boolean), dialer.period_usage(uuid, timestamptz)
TO authenticated, service_role;

-- The listing of what was installed, for dialer.schema_drift().
SELECT dialer.record_schema_baseline();
