-- The last step of CREATE EXTENSION.

-- The helpers in schema dialer are for the extension's own functions,
-- policies and triggers: no EXECUTE for PUBLIC, so none for anon or any other
-- login role; signed-in users and service_role get those that run with their
-- privileges (policies, trigger bodies, the API's PL/pgSQL).
REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA dialer FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
    dialer.uid(), dialer.is_admin(), dialer.is_privileged(),
    dialer.lock_user(uuid), dialer.raised(anyelement, text, text, text, text),
    dialer.check_queued_call(public.call_queue, public.call_queue), dialer.needs_check(uuid),
    dialer.cancel_queued_call(uuid), dialer.place_call(uuid, text), dialer.fail_call(uuid, text, boolean),
    dialer.record_result(text), dialer.enqueue(text, uuid, text, uuid, uuid, timestamptz, text, uuid, uuid, text, timestamptz),
    dialer.enqueue_batch(text, uuid, uuid, uuid, uuid, text, timestamptz, boolean, uuid),
    dialer.campaign_action(uuid, text), dialer.billed_minutes(integer),
    dialer.dispatch_claim(integer), dialer.dispatch_send(uuid[]),
    dialer.pick_number(text, uuid, uuid),
    dialer.reserved_calls_in(uuid, timestamptz, timestamptz), dialer.remaining(bigint, bigint, bigint),
    dialer.subscription_period(timestamptz, timestamptz, timestamptz, text, boolean, boolean, timestamptz),
    dialer.covering_period(timestamptz, timestamptz, timestamptz, text, boolean, boolean, timestamptz),
    dialer.billing_period(uuid, timestamptz, boolean, boolean), dialer.period_usage(uuid, timestamptz)
TO authenticated, service_role;

-- The listing of what was installed, for dialer.schema_drift().
SELECT dialer.record_schema_baseline();
