-- The dispatcher's rules that need no provider on the network (those that
-- do are in tests/dispatch.sh, against tests/mock_provider.py): the new
-- columns' checks, who may dispatch, a claim that takes nothing from
-- providers it cannot speak to, and a result that comes before the
-- dispatcher recorded the provider's call id.
BEGIN;
\ir ../fixtures/rls.sql
SELECT * FROM no_plan();

-- A Retell provider beside the fixture's VAPI one.
INSERT INTO call_service_providers (id, name, type, concurrency_limit, priority, api) VALUES
    ('44444444-4444-4444-8444-0000000000d2', 'Retell', 'voice', 5, 2, 'retell');
-- A result for call $1 in a provider's own format, naming $2 as the
-- dispatcher's call_queue_id.
CREATE FUNCTION tests.vapi_result(call_id text, queued uuid, attempt int DEFAULT 1) RETURNS jsonb LANGUAGE sql AS $$
    SELECT jsonb_build_object('message', jsonb_build_object(
        'type', 'end-of-call-report', 'endedReason', 'customer-ended-call', 'durationSeconds', 61,
        'call', jsonb_build_object('id', call_id,
                                   'assistantOverrides', jsonb_build_object('metadata', jsonb_build_object('call_queue_id', queued, 'attempt', attempt)))))
$$;
CREATE FUNCTION tests.retell_result(call_id text, queued uuid, attempt int DEFAULT 1) RETURNS jsonb LANGUAGE sql AS $$
    SELECT jsonb_build_object('event', 'call_ended', 'call', jsonb_build_object(
        'call_id', call_id, 'disconnection_reason', 'user_hangup', 'duration_ms', 61000,
        'metadata', jsonb_build_object('call_queue_id', queued, 'attempt', attempt)))
$$;
-- A call of alice's in progress with the VAPI provider, as a claim leaves it.
CREATE FUNCTION tests.in_progress(id uuid, call_id text DEFAULT NULL) RETURNS void LANGUAGE sql AS $$
    INSERT INTO call_queue (id, user_id, recipient_number, status, provider_id, claimed_at, call_id)
    VALUES (id, 'a11ce000-0000-4000-8000-000000000001', '+14155550142', 'in-progress',
            '44444444-4444-4444-8444-000000000001', now(), call_id)
$$;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA tests TO PUBLIC;

---------------------------------------------------------------- columns
SELECT throws_ok($$UPDATE call_service_providers SET api = 'twilio' WHERE id = '44444444-4444-4444-8444-000000000001'$$,
                 '23514', 'new row for relation "call_service_providers" violates check constraint "call_service_providers_api_check"',
                 'a provider''s api is one the dispatcher speaks');
SELECT lives_ok($$UPDATE call_service_providers SET api = 'vapi' WHERE id = '44444444-4444-4444-8444-000000000001'$$,
                'vapi, retell or bland');
SELECT throws_ok($$UPDATE call_templates SET provider_agent_id = 'agent 1' WHERE id = '88888888-8888-4888-8888-000000000001'$$,
                 '23514', 'new row for relation "call_templates" violates check constraint "call_templates_provider_agent_id_check"',
                 'an agent id has no spaces');
SELECT throws_ok($$UPDATE call_templates SET provider_agent_id = '' WHERE id = '88888888-8888-4888-8888-000000000001'$$,
                 '23514', NULL, 'nor is it empty');
SELECT throws_ok($$UPDATE call_templates SET provider_agent_id = repeat('a', 129) WHERE id = '88888888-8888-4888-8888-000000000001'$$,
                 '23514', NULL, 'nor longer than 128 characters');
SELECT throws_ok($$UPDATE call_templates SET provider_agent_id = E'agent\u00e9' WHERE id = '88888888-8888-4888-8888-000000000001'$$,
                 '23514', NULL, 'nor other than printable ASCII');
SELECT lives_ok($$UPDATE call_templates SET provider_agent_id = 'agent_8d2f0c1e9b' WHERE id = '88888888-8888-4888-8888-000000000001'$$,
                'a Retell agent id fits');

SELECT tests.as_admin();
SELECT is((SELECT api FROM call_service_providers WHERE id = '44444444-4444-4444-8444-000000000001'), 'vapi',
          'an admin reads which api a provider speaks (not its credentials)');
SELECT tests.as_owner();

---------------------------------------------------------------- who may
SELECT tests.as_user(:alice);
SELECT throws_ok($$SELECT dialer.dispatch_claim(10)$$, '42501',
                 'dispatch_due_calls() is for the dialing worker: call it as service_role or as an admin',
                 'a signed-in user may not claim for the dispatcher');
SELECT throws_ok($$SELECT * FROM dialer.dispatch_send('{}')$$, '42501', NULL, 'nor send');
SELECT tests.as_anon();
SELECT throws_ok($$SELECT dialer.dispatch_claim(10)$$, '42501', 'permission denied for function dispatch_claim',
                 'anon may not call it at all');
SELECT tests.as_service();
SELECT throws_ok($$SELECT dialer.dispatch_claim(0)$$, '22023', 'max_calls must be between 1 and 1000, not 0',
                 'max_calls is checked');
SELECT throws_ok($$CALL dispatch_due_calls(10)$$, '2D000', 'invalid transaction termination',
                 'a pass commits: it is not for a transaction block');

---------------------------------------------------------------- claims
-- A due call for the Retell provider, which has no number: it waits; a call
-- for a provider without api waits too, rather than failing.
SELECT tests.as_owner();
UPDATE call_service_providers SET api = NULL WHERE id = '44444444-4444-4444-8444-000000000001';
INSERT INTO call_queue (id, user_id, recipient_number, status, scheduled_time, template_id)
VALUES ('c0000000-0000-4000-8000-0000000000d1', :alice, '+14155550143', 'queued', now() - interval '1 minute',
        '88888888-8888-4888-8888-000000000001');
SELECT tests.as_service();
SELECT is(dialer.dispatch_claim(10), '{}'::uuid[], 'the dispatcher claims nothing of a provider without api');
SELECT is((SELECT status || '|' || retry_count FROM call_queue WHERE id = 'c0000000-0000-4000-8000-0000000000d1'),
          'queued|0', 'and the call waits, queued, for a worker outside');
SELECT is((SELECT count(*) FROM claim_due_calls(10) WHERE call_queue_id = 'c0000000-0000-4000-8000-0000000000d1'),
          1::bigint, 'which claims it');
SELECT tests.as_owner();
UPDATE call_service_providers SET api = 'vapi' WHERE id = '44444444-4444-4444-8444-000000000001';
UPDATE call_queue SET status = 'queued', provider_id = NULL, claimed_at = NULL WHERE id = 'c0000000-0000-4000-8000-0000000000d1';
INSERT INTO dialer.provider_state (provider_id, paused_until) VALUES ('44444444-4444-4444-8444-000000000001', now() + interval '1 minute');
SELECT tests.as_service();
SELECT is(dialer.dispatch_claim(10), '{}'::uuid[], 'nor of a paused provider');
SELECT tests.as_owner();
UPDATE dialer.provider_state SET paused_until = now() - interval '1 second';
SELECT tests.as_service();
SELECT is(dialer.dispatch_claim(10), ARRAY['c0000000-0000-4000-8000-0000000000d1']::uuid[], 'once the pause is over it claims');
SELECT is((SELECT status || '|' || (call_id IS NULL) FROM call_queue WHERE id = 'c0000000-0000-4000-8000-0000000000d1'),
          'in-progress|true', 'a claimed call is in progress without a call id: being sent');

---------------------------------------------------------------- early results
SELECT tests.as_owner();
SELECT tests.in_progress('c0000000-0000-4000-8000-0000000000e1');
SELECT tests.as_service();
SELECT is((SELECT queue_status FROM record_call_result(tests.vapi_result('vapi-early-1', 'c0000000-0000-4000-8000-0000000000e1'))),
          'completed', 'a result that comes before its call id was recorded finds its call by the call_queue_id sent');
SELECT is((SELECT call_id || '|' || status FROM call_queue WHERE id = 'c0000000-0000-4000-8000-0000000000e1'),
          'vapi-early-1|completed', 'which gets the provider''s call id and the result');
SELECT throws_ok($$SELECT mark_call_placed('c0000000-0000-4000-8000-0000000000e1', 'vapi-early-1')$$, 'PT409',
                 'call c0000000-0000-4000-8000-0000000000e1 is completed, not in-progress',
                 'the dispatcher''s record after it finds the call done');

SELECT tests.as_owner();
SELECT tests.in_progress('c0000000-0000-4000-8000-0000000000e2');
SELECT tests.as_service();
SELECT throws_ok($$SELECT * FROM record_call_result(tests.vapi_result('vapi-late', 'c0000000-0000-4000-8000-0000000000e2', 2))$$,
                 'PT404', 'no call has provider call id vapi-late',
                 'a result naming another attempt of the call does not bind to this one');
SELECT throws_ok($$SELECT * FROM record_call_result(tests.retell_result('retell-x', 'c0000000-0000-4000-8000-0000000000e2'))$$,
                 'PT404', 'no call has provider call id retell-x',
                 'a result in Retell''s format does not bind a call of a VAPI provider');
SELECT tests.as_owner();
SELECT tests.in_progress('c0000000-0000-4000-8000-0000000000e3', 'vapi-known-3');
SELECT tests.as_service();
SELECT throws_ok($$SELECT * FROM record_call_result(tests.vapi_result('vapi-other-3', 'c0000000-0000-4000-8000-0000000000e3'))$$,
                 'PT404', 'no call has provider call id vapi-other-3',
                 'nor a call that has its call id already');
SELECT tests.as_owner();
INSERT INTO call_queue (id, user_id, recipient_number, status, provider_id)
VALUES ('c0000000-0000-4000-8000-0000000000e4', :alice, '+14155550144', 'queued', '44444444-4444-4444-8444-000000000001');
SELECT tests.as_service();
SELECT throws_ok($$SELECT * FROM record_call_result(tests.vapi_result('vapi-queued', 'c0000000-0000-4000-8000-0000000000e4'))$$,
                 'PT404', NULL, 'nor a call that is not in progress');
SELECT is((SELECT count(*) FROM call_queue WHERE call_id IN ('vapi-late', 'retell-x', 'vapi-other-3', 'vapi-queued')),
          0::bigint, 'refused results bound nothing');

---------------------------------------------------------------- caller numbers
-- A user's own number is sent as the caller number only with a phone_id,
-- which an admin writes: a user could name any number of the operator's.
SELECT tests.as_user(:alice);
SELECT throws_ok($$INSERT INTO user_phone_numbers (user_id, provider_id, phone_id, country_code, area_code, phone_number, full_number)
                   VALUES ('a11ce000-0000-4000-8000-000000000001', '44444444-4444-4444-8444-000000000001', 'ph_1', '1', '212', '5550188', '+12125550188')$$,
                 '42501', NULL, 'a user may not add a number with a phone_id');
SELECT throws_ok($$UPDATE user_phone_numbers SET phone_id = 'ph_2' WHERE id = '66666666-6666-4666-8666-000000000001'$$,
                 '42501', NULL, 'nor give their number one');
SELECT lives_ok($$INSERT INTO user_phone_numbers (user_id, provider_id, country_code, area_code, phone_number, full_number)
                  VALUES ('a11ce000-0000-4000-8000-000000000001', '44444444-4444-4444-8444-000000000001', '1', '212', '5550188', '+12125550188')$$,
                'a number without one is theirs to add');
SELECT tests.as_admin();
SELECT lives_ok($$UPDATE user_phone_numbers SET phone_id = 'vapi-number-111' WHERE id = '66666666-6666-4666-8666-000000000001'$$,
                'an admin verifies a number by giving it its phone_id');
SELECT tests.as_user(:alice);
SELECT throws_ok($$UPDATE user_phone_numbers SET full_number = '+12125550199' WHERE id = '66666666-6666-4666-8666-000000000001'$$,
                 '42501', NULL, 'the user may not change a verified number''s full_number');
SELECT throws_ok($$UPDATE user_phone_numbers SET provider_id = '44444444-4444-4444-8444-0000000000d2' WHERE id = '66666666-6666-4666-8666-000000000001'$$,
                 '42501', NULL, 'nor its provider');
SELECT throws_ok($$UPDATE user_phone_numbers SET phone_id = NULL WHERE id = '66666666-6666-4666-8666-000000000001'$$,
                 '42501', NULL, 'nor its phone_id');
SELECT lives_ok($$UPDATE user_phone_numbers SET is_default = true, full_number = '+14155550111' WHERE id = '66666666-6666-4666-8666-000000000001'$$,
                'the rest of it stays theirs');
SELECT is((SELECT phone_id || '|' || full_number FROM user_phone_numbers WHERE id = '66666666-6666-4666-8666-000000000001'),
          'vapi-number-111|+14155550111', 'as the admin left it');

---------------------------------------------------------------- visibility
SELECT tests.as_user(:alice);
SELECT throws_ok($$SELECT * FROM dispatcher_status()$$, '42501', NULL, 'a user may not see the dispatcher''s state');
SELECT throws_ok($$SELECT * FROM dispatcher_worker()$$, '42501', NULL, 'nor its worker');
SELECT tests.as_anon();
SELECT throws_ok($$SELECT * FROM dispatcher_status()$$, '42501', 'permission denied for function dispatcher_status',
                 'anon may not call it');
SELECT tests.as_admin();
SELECT is((SELECT count(*) FROM dispatcher_status()), (SELECT count(*) FROM call_service_providers),
          'an admin sees a row per provider');
SELECT is((SELECT in_progress::text || '|' || being_sent || '|' || (paused_until IS NOT NULL)
           FROM dispatcher_status() WHERE provider_id = '44444444-4444-4444-8444-000000000001'),
          (SELECT count(*) FILTER (WHERE status = 'in-progress')::text || '|'
                  || count(*) FILTER (WHERE status = 'in-progress' AND call_id IS NULL) || '|true'
           FROM call_queue WHERE provider_id = '44444444-4444-4444-8444-000000000001'),
          'its calls in progress, those being sent, and its pause');
SELECT is((SELECT preloaded::text || '|' || enabled || '|' || (pid IS NULL) FROM dispatcher_worker()),
          'false|false|true', 'the worker: not preloaded here, off, none running');

SELECT * FROM finish();
ROLLBACK;
