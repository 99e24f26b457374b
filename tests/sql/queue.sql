-- The call pipeline: enqueue_call and direct writes, pick_provider_number,
-- claim_due_calls, mark_call_placed / mark_call_failed with retries,
-- cancel_call and rescue_stale_calls. Every rule, as the roles that use it.
BEGIN;
\ir ../fixtures/rls.sql
SELECT * FROM no_plan();

-- More of the world, as the owner: a second provider, more numbers, a premium
-- voice, a template with parameters, and a plan that allows premium voices.
INSERT INTO call_service_providers (id, name, type, concurrency_limit, priority) VALUES
    ('44444444-4444-4444-8444-000000000002', 'Retell', 'voice', 2, 2);
INSERT INTO provider_phone_numbers (id, provider_id, phone_id, country_code, area_code, phone_number, full_number) VALUES
    ('55555555-5555-4555-8555-000000000003', '44444444-4444-4444-8444-000000000001', 'ph_3', '1', '212', '5550177', '+12125550177'),
    ('55555555-5555-4555-8555-000000000004', '44444444-4444-4444-8444-000000000001', 'ph_4', '1', '415', '5550178', '+14155550178'),
    ('55555555-5555-4555-8555-000000000005', '44444444-4444-4444-8444-000000000002', 'rt_1', '44', '20', '79460100', '+442079460100');
INSERT INTO voice_options (id, provider_id, voice_id, name, language, is_premium) VALUES
    ('77777777-7777-4777-8777-000000000003', '44444444-4444-4444-8444-000000000001', 'rachel', 'Rachel', 'en-US', true),
    ('77777777-7777-4777-8777-000000000004', '44444444-4444-4444-8444-000000000002', 'adrian', 'Adrian', 'en-GB', false);
INSERT INTO call_templates (id, name, is_public, created_by, provider_id, assistant_id, voice_id, params, params_order) VALUES
    ('88888888-8888-4888-8888-000000000004', 'Reminder with params', true, 'b0b00000-0000-4000-8000-000000000002',
     '44444444-4444-4444-8444-000000000001', 'f0000000-0000-4000-8000-000000000001',
     '77777777-7777-4777-8777-000000000001',
     '{"patient_name": {"type": "string", "required": true},
       "party_size": {"type": "integer", "default": 1},
       "clinic": {"type": "string", "default": "our clinic"}}',
     '["patient_name", "party_size", "clinic"]'),
    ('88888888-8888-4888-8888-000000000005', 'Retell template', true, 'b0b00000-0000-4000-8000-000000000002',
     '44444444-4444-4444-8444-000000000002', NULL, NULL, NULL, NULL);
INSERT INTO subscription_plans (id, name, price, "interval", features, call_limit, minutes_limit) VALUES
    ('11111111-1111-4111-8111-111111111112', 'Premium', 99, 'monthly', '{"premium_voices": true}', NULL, NULL);
-- Carol: a user with no subscription at all.
INSERT INTO auth.users (id, email) VALUES ('ca201000-0000-4000-8000-000000000004', 'carol@example.com');
\set carol '''ca201000-0000-4000-8000-000000000004'''

CREATE FUNCTION tests.queued_count() RETURNS bigint LANGUAGE sql SECURITY DEFINER
    AS $$ SELECT count(*) FROM public.call_queue $$;
GRANT EXECUTE ON FUNCTION tests.queued_count() TO PUBLIC;

---------------------------------------------------------------- enqueue_call
SELECT tests.as_user(:alice);
SELECT is((SELECT recipient_number FROM enqueue_call('+1 (415) 555-0100')), '+14155550100',
          'the recipient is stored in E.164');
SELECT is((SELECT (user_id, status, scheduled_time = now())::text FROM enqueue_call('+1 212 555 0101')),
          format('(%s,queued,t)', :alice), 'the call is queued for the caller, now when no time is given');
SELECT is((SELECT scheduled_time FROM enqueue_call('+14155550102', scheduled_time => now() + interval '1 hour')),
          now() + interval '1 hour', 'a scheduled time is kept');

-- Malformed input: an error naming the value, and nothing written.
SELECT tests.queued_count() AS before_bad_input \gset
SELECT throws_ok($$SELECT enqueue_call('(415) 555-0100')$$, '22023',
                 'recipient_number "(415) 555-0100" has no valid country code', 'a number without country code is refused');
SELECT throws_ok($$SELECT enqueue_call('call me maybe')$$, '22023',
                 'recipient_number "call me maybe" is not a phone number', 'garbage is refused');
SELECT throws_ok($$SELECT enqueue_call('+1 415 555 01')$$, '22023', 'recipient_number "+1 415 555 01" is not a valid number in country +1', 'a number too short for its country is refused');
SELECT throws_ok($$SELECT enqueue_call('+14155550100', custom_variables => '[1,2]')$$, '22023',
                 'custom_variables must be a JSON object, not an array', 'variables must be an object');
-- Oversized or odd JSON and keys: the caller's error (22023), naming the field.
SELECT throws_ok(format($$SELECT enqueue_call('+14155550100', custom_variables => %L::jsonb)$$,
                        '{"a": ' || repeat('[', 300) || repeat(']', 300) || '}'),
                 '22023', 'custom_variables nests deeper than 128 levels', 'variables nested 300 deep are refused');
SELECT throws_ok($$SELECT enqueue_call('+14155550100', custom_variables => '{"big": 1e400}')$$, '22023',
                 'custom_variables holds a number beyond the range of a double precision float',
                 'a number beyond a double in the variables is refused');
SELECT throws_ok(format($$SELECT enqueue_call('+14155550100', custom_variables => jsonb_build_object('note', %L::text))$$,
                        repeat('x', 300000)),
                 '22023', 'custom_variables is 300011 bytes of JSON; at most 262144 are accepted', 'variables of 300 kB are refused');
SELECT throws_ok(format($$SELECT enqueue_call('+14155550100', idempotency_key => %L)$$, repeat('k', 10000)),
                 '22023', 'idempotency_key is 10000 characters long; at most 255 are accepted',
                 'a 10 kB idempotency key is refused before it reaches the index');
SELECT throws_ok(format($$INSERT INTO call_queue (user_id, recipient_number, idempotency_key) VALUES (%L, '+14155550100', %L)$$,
                        :alice, repeat('k', 10000)),
                 '22023', 'idempotency_key is 10000 characters long; at most 255 are accepted', '... also in a direct INSERT');
SELECT throws_ok(format($$INSERT INTO call_templates (name, created_by, params) VALUES ('Huge', %L, %L::jsonb)$$,
                        :alice, (SELECT jsonb_object_agg('p' || i, '{"type": "string"}'::jsonb) FROM generate_series(0, 500) i)),
                 '22023', 'params declares 501 parameters; at most 500 are accepted',
                 'a template with more than 500 parameters is refused');
SELECT is(tests.queued_count(), :before_bad_input::bigint, 'bad input wrote nothing');

-- Numbers that cost the caller extra (libphonenumber's own classification):
-- refused unless the plan or the DBA allows their kind.
SAVEPOINT costly_numbers;
SELECT throws_ok($$SELECT enqueue_call('+1 900 555 0100')$$, '22023',
                 'recipient_number +19005550100 is a premium-rate number, which costs the caller extra',
                 'a US premium-rate number is refused, naming it');
SELECT throws_ok($$SELECT enqueue_call('+44 909 876 5432')$$, '22023',
                 'recipient_number +449098765432 is a premium-rate number, which costs the caller extra',
                 'a UK premium-rate number is refused');
SELECT throws_ok($$SELECT enqueue_call('+808 1234 5678')$$, '22023',
                 'recipient_number +80812345678 is a shared-cost number, which costs the caller extra',
                 'a shared-cost number is refused');
SELECT throws_ok($$SELECT enqueue_call('+44 70 1234 5678')$$, '22023',
                 'recipient_number +447012345678 is a personal number, which costs the caller extra',
                 'a personal number is refused');
SELECT throws_ok($$SELECT enqueue_call('+882 16 1234 5678')$$, '22023',
                 'recipient_number +8821612345678 is a number of an international network, which costs the caller extra',
                 'an international network number is refused');
SELECT throws_ok(format($$INSERT INTO call_queue (user_id, recipient_number) VALUES (%L, '+883 510 012 3456')$$, :alice),
                 '22023', 'recipient_number +8835100123456 is a number of an international network, which costs the caller extra', 'a direct INSERT (POST /call_queue) of one is refused too');
SELECT lives_ok($$SELECT enqueue_call('+1 800 555 0100')$$, 'a toll-free number is fine');
SELECT tests.as_owner();
UPDATE subscription_plans SET features = '{"allowed_number_types": "premium_rate"}'
    WHERE id = '11111111-1111-4111-8111-111111111111';
SELECT tests.as_user(:alice);
SELECT throws_ok($$SELECT enqueue_call('+1 900 555 0100')$$, '22023', 'recipient_number +19005550100 is a premium-rate number, which costs the caller extra',
                 'allowed_number_types that is not an array allows nothing');
SELECT tests.as_owner();
UPDATE subscription_plans SET features = '{"allowed_number_types": ["premium_rate"]}'
    WHERE id = '11111111-1111-4111-8111-111111111111';
SELECT tests.as_user(:alice);
SELECT is((SELECT recipient_number FROM enqueue_call('+1 900 555 0100')), '+19005550100',
          'a plan with "premium_rate" in features.allowed_number_types may call premium-rate numbers');
SELECT throws_ok($$SELECT enqueue_call('+882 16 1234 5678')$$, '22023', 'recipient_number +8821612345678 is a number of an international network, which costs the caller extra', '... and no other costly kind');
SELECT tests.as_owner();
SET LOCAL pg_dialer.allowed_number_types = 'shared_cost, international_network';
SELECT tests.as_user(:alice);
SELECT lives_ok($$SELECT enqueue_call('+882 16 1234 5678')$$,
                'pg_dialer.allowed_number_types allows a kind for every plan');
ROLLBACK TO costly_numbers;

-- Templates: public or one's own.
SELECT lives_ok($$SELECT enqueue_call('+14155550103', template_id => '88888888-8888-4888-8888-000000000002')$$,
                'alice uses her own private template');
SELECT lives_ok($$SELECT enqueue_call('+14155550104', template_id => '88888888-8888-4888-8888-000000000001')$$,
                'alice uses bob''s public template');
SELECT throws_ok($$SELECT enqueue_call('+14155550105', template_id => '88888888-8888-4888-8888-000000000003')$$,
                 'PT404', 'template 88888888-8888-4888-8888-000000000003 not found',
                 'alice cannot use bob''s private template');
SELECT throws_ok($$SELECT enqueue_call('+14155550105', template_id => '00000000-0000-4000-8000-000000000000')$$,
                 'PT404', 'template 00000000-0000-4000-8000-000000000000 not found', 'an unknown template is not found');

-- Variables against the template's params.
SELECT is((SELECT custom_variables FROM enqueue_call('+14155550106', template_id => '88888888-8888-4888-8888-000000000004',
                                                      custom_variables => '{"patient_name": "Ana", "party_size": 2}')),
          '{"patient_name": "Ana", "party_size": 2}'::jsonb, 'good variables are stored as given');
SELECT throws_ok($$SELECT enqueue_call('+14155550107', template_id => '88888888-8888-4888-8888-000000000004',
                                       custom_variables => '{"party_size": 2}')$$,
                 '22023', 'custom_variables.patient_name is required by the template', 'a missing required value is named');
SELECT throws_ok($$SELECT enqueue_call('+14155550107', template_id => '88888888-8888-4888-8888-000000000004',
                                       custom_variables => '{"patient_name": "Ana", "party_size": "two"}')$$,
                 '22023', 'custom_variables.party_size must be an integer, not a string', 'a wrongly typed value is named');
SELECT throws_ok($$SELECT enqueue_call('+14155550107', template_id => '88888888-8888-4888-8888-000000000004',
                                       custom_variables => '{"patient_name": "Ana", "pet": "cat"}')$$,
                 '22023', 'custom_variables.pet is not a parameter of the template', 'an unknown variable is named');

-- Voices: active; premium only with a plan that allows it.
SELECT lives_ok($$SELECT enqueue_call('+14155550108', voice_id => '77777777-7777-4777-8777-000000000001')$$,
                'an active voice is accepted');
SELECT throws_ok($$SELECT enqueue_call('+14155550108', voice_id => '77777777-7777-4777-8777-000000000002')$$,
                 '22023', 'voice 77777777-7777-4777-8777-000000000002 is not available',
                 'an inactive voice is refused as such (22023), though a user''s view hides it');
SELECT tests.as_service();
SELECT throws_ok(format($$SELECT enqueue_call('+14155550108', voice_id => '77777777-7777-4777-8777-000000000002',
                                              user_id => %L)$$, :alice),
                 '22023', 'voice 77777777-7777-4777-8777-000000000002 is not available',
                 '... and the same for service_role');
SELECT tests.as_user(:alice);
SELECT throws_ok($$SELECT enqueue_call('+14155550108', voice_id => '70000000-0000-4000-8000-000000000000')$$,
                 'PT404', 'voice 70000000-0000-4000-8000-000000000000 not found', 'a voice that does not exist is not found');
SELECT throws_ok($$SELECT enqueue_call('+14155550108', voice_id => '77777777-7777-4777-8777-000000000003')$$,
                 'PT402', 'voice 77777777-7777-4777-8777-000000000003 is premium and plan "Starter" does not include premium voices',
                 'a premium voice needs a plan with premium_voices');
SELECT throws_ok($$SELECT enqueue_call('+14155550108', template_id => '88888888-8888-4888-8888-000000000004',
                                       custom_variables => '{"patient_name": "Ana"}',
                                       voice_id => '77777777-7777-4777-8777-000000000004')$$,
                 '22023', 'the call''s template belongs to provider 44444444-4444-4444-8444-000000000001 but its voice to provider 44444444-4444-4444-8444-000000000002', 'a voice of another provider than the template''s is refused');

SELECT tests.as_owner();
UPDATE voice_options SET is_active = false WHERE id = '77777777-7777-4777-8777-000000000001';
SELECT tests.as_user(:alice);
SELECT throws_ok($$SELECT enqueue_call('+14155550108', template_id => '88888888-8888-4888-8888-000000000004',
                                       custom_variables => '{"patient_name": "Ana"}')$$,
                 '22023', 'voice 77777777-7777-4777-8777-000000000001 is not available',
                 'a template whose voice was retired cannot be used until it has another');
SELECT tests.as_owner();
UPDATE voice_options SET is_active = true WHERE id = '77777777-7777-4777-8777-000000000001';
SELECT tests.as_user(:alice);

-- Caller numbers: one's own active numbers only.
SELECT is((SELECT caller_number_id FROM enqueue_call('+14155550109', caller_number_id => '66666666-6666-4666-8666-000000000001')),
          '66666666-6666-4666-8666-000000000001'::uuid, 'alice calls from her own number');
SELECT throws_ok($$SELECT enqueue_call('+14155550109', caller_number_id => '66666666-6666-4666-8666-000000000002')$$,
                 'PT404', 'caller_number_id 66666666-6666-4666-8666-000000000002 is not one of your phone numbers',
                 'alice cannot call from bob''s number');
SELECT tests.as_owner();
UPDATE user_phone_numbers SET is_active = false WHERE id = '66666666-6666-4666-8666-000000000001';
SELECT tests.as_user(:alice);
SELECT throws_ok($$SELECT enqueue_call('+14155550109', caller_number_id => '66666666-6666-4666-8666-000000000001')$$,
                 '22023', 'caller number 66666666-6666-4666-8666-000000000001 is not active', 'an inactive number is refused');
SELECT tests.as_owner();
UPDATE user_phone_numbers SET is_active = true WHERE id = '66666666-6666-4666-8666-000000000001';

-- Subscriptions.
SELECT tests.as_user(:carol);
SELECT throws_ok($$SELECT enqueue_call('+14155550110')$$, 'PT402', format('no active subscription covers the call time %s', now()), 'a user without a subscription cannot queue');
SELECT tests.as_user(:alice);
SELECT throws_ok($$SELECT enqueue_call('+14155550110', scheduled_time => now() - interval '3 months')$$, 'PT402', format('no active subscription covers the call time %s', now() - interval '3 months'),
                 'a call before the paid period is refused');
-- Calls are queued into the period that covers now: one that ends at period
-- end sells nothing after it, and one that renews sells its later periods
-- when they come (tests/sql/periods_and_odd_rows.sql).
SELECT tests.as_owner();
UPDATE user_subscriptions SET cancel_at_period_end = true WHERE user_id = :alice;
SELECT tests.as_user(:alice);
SELECT throws_ok($$SELECT enqueue_call('+14155550110', scheduled_time => now() + interval '3 months')$$, 'PT402', format('no active subscription covers the call time %s', now() + interval '3 months'),
                 'a call after the last paid period is refused');
SELECT tests.as_owner();
UPDATE user_subscriptions SET cancel_at_period_end = false WHERE user_id = :alice;
SELECT tests.as_user(:alice);
SELECT throws_ok($$SELECT enqueue_call('+14155550110', scheduled_time => date_trunc('month', now()) + interval '3 months 1 day')$$,
                 'PT402', format('no active subscription covers the call time %s', date_trunc('month', now()) + interval '3 months 1 day'), 'nor does a renewing one sell its later periods in advance');
SELECT throws_ok($$SELECT enqueue_call('+14155550110', scheduled_time => date_trunc('month', now()) + interval '1 month')$$,
                 'PT402', format('no active subscription covers the call time %s', date_trunc('month', now()) + interval '1 month'), 'not even the very start of the next one');
SELECT tests.as_owner();
UPDATE user_subscriptions SET status = 'trialing' WHERE user_id = :alice;
SELECT tests.as_user(:alice);
SELECT lives_ok($$SELECT enqueue_call('+14155550110')$$, 'a trialing subscription may queue');
SELECT tests.as_owner();
UPDATE user_subscriptions SET status = 'past_due' WHERE user_id = :alice;
SELECT tests.as_user(:alice);
SELECT throws_ok($$SELECT enqueue_call('+14155550111')$$, 'PT402', format('no active subscription covers the call time %s', now()), 'a past_due subscription may not queue');
SELECT tests.as_owner();
UPDATE user_subscriptions SET status = 'active' WHERE user_id = :alice;

-- Quota: calls used plus calls queued or in progress stay within call_limit.
SELECT tests.as_owner();
SELECT (SELECT calls_used FROM user_call_usage WHERE user_id = :alice)
     + (SELECT count(*) FROM call_queue WHERE user_id = :alice AND status IN ('queued', 'in-progress')) AS alice_taken \gset
UPDATE subscription_plans SET call_limit = :alice_taken + 1 WHERE name = 'Starter';
SELECT tests.as_user(:alice);
SELECT lives_ok($$SELECT enqueue_call('+14155550112')$$, 'the last call of the quota is queued');
SELECT throws_ok($$SELECT enqueue_call('+14155550113')$$, 'PT402',
                 format('call limit reached: plan "Starter" allows %s calls per billing period', :alice_taken + 1),
                 'one more is refused');
-- The DETAIL counts what fills the quota and names the period as the
-- session writes times (its DateStyle and TimeZone).
SELECT tests.as_owner();
SET DateStyle = 'SQL, DMY';
SET TimeZone = 'Pacific/Honolulu';
SELECT format('%s calls used and %s queued or in progress in the period %s to %s',
              u.calls_used, :alice_taken + 1 - u.calls_used, p.period_start, p.period_end) AS quota_detail
FROM user_call_usage u, dialer.billing_period(:alice, now()) p
WHERE u.user_id = :alice AND u.billing_period_start = p.period_start \gset
SELECT tests.as_user(:alice);
SELECT is(tests.error_detail($$SELECT enqueue_call('+14155550113')$$) ->> 'detail', :'quota_detail',
          'the refusal says what fills the quota, in which period');
RESET DateStyle;
RESET TimeZone;
-- A token naming the nil uuid (the billing rollover's lock key) is nobody:
-- it cannot queue, nor hold the rollover's lock through a queued call.
SELECT tests.act_as('authenticated', '{"sub": "00000000-0000-0000-0000-000000000000", "role": "authenticated"}');
SELECT throws_ok($$SELECT enqueue_call('+14155550199')$$, '42501',
                 'request.jwt.claims: sub is the nil uuid, which names no user',
                 'a token naming the nil uuid queues nothing');
SELECT tests.as_user(:alice);
SELECT throws_ok($$INSERT INTO call_queue (recipient_number) VALUES ('+14155550113')$$, 'PT402', 'call limit reached: plan "Starter" allows 15 calls per billing period',
                 'a direct INSERT cannot get around the quota');
SELECT lives_ok($$SELECT cancel_call(id) FROM call_queue WHERE recipient_number = '+14155550112'$$,
                'alice cancels a queued call');
SELECT lives_ok($$SELECT enqueue_call('+14155550113')$$, 'a canceled call frees its reservation');
SELECT tests.as_owner();
UPDATE subscription_plans SET call_limit = NULL, minutes_limit = 300 WHERE name = 'Starter';
UPDATE user_call_usage SET minutes_used = 300 WHERE user_id = :alice;
SELECT tests.as_user(:alice);
SELECT throws_ok($$SELECT enqueue_call('+14155550114')$$, 'PT402', 'minute limit reached: plan "Starter" allows 300 minutes per billing period', 'no call once the minutes are used up');
SELECT tests.as_owner();
UPDATE user_call_usage SET minutes_used = 0 WHERE user_id = :alice;
UPDATE subscription_plans SET minutes_limit = NULL WHERE name = 'Starter';

-- Idempotency.
SELECT tests.as_user(:alice);
SELECT enqueue_call('+14155550115', idempotency_key => 'order-42') AS first_call \gset
SELECT is((SELECT id FROM enqueue_call('+14155550115', idempotency_key => 'order-42')), (:'first_call'::call_queue).id,
          'the same key returns the same call');
SELECT is((SELECT count(*) FROM call_queue WHERE idempotency_key = 'order-42'), 1::bigint, 'and queues it once');
SELECT isnt((SELECT id FROM enqueue_call('+14155550115', idempotency_key => 'order-43')), (:'first_call'::call_queue).id,
            'another key queues another call');
SELECT tests.as_user(:bob);
SELECT isnt((SELECT id FROM enqueue_call('+14155550115', idempotency_key => 'order-42')), (:'first_call'::call_queue).id,
            'keys are per user');

-- Who may queue for whom.
SELECT tests.as_user(:bob);
SELECT throws_ok(format('SELECT enqueue_call(%L, user_id => %L)', '+14155550116', :alice), '42501', 'only an admin or service_role can queue calls for another user, not for ' || :alice,
                 'bob cannot queue a call for alice');
SELECT tests.as_admin();
SELECT is((SELECT user_id FROM enqueue_call('+14155550116', user_id => :alice)), :alice::uuid, 'an admin queues for alice');
SELECT tests.as_service();
SELECT is((SELECT user_id FROM enqueue_call('+14155550117', user_id => :bob)), :bob::uuid, 'service_role queues for bob');
SELECT throws_ok($$SELECT enqueue_call('+14155550117')$$, '42501', 'sign in to queue calls',
                 'service_role must name the user');
SELECT tests.as_anon();
SELECT throws_ok($$SELECT enqueue_call('+14155550118')$$, '42501', 'permission denied for function enqueue_call', 'anon cannot queue calls');

-- Direct writes get the same checks.
SELECT tests.as_user(:alice);
SELECT lives_ok($$INSERT INTO call_queue (id, recipient_number) VALUES ('99999999-9999-4999-8999-000000000020', '+1 415-555-0119')$$,
                'alice inserts a call directly');
SELECT is((SELECT (user_id, recipient_number, scheduled_time = now())::text FROM call_queue
           WHERE id = '99999999-9999-4999-8999-000000000020'),
          format('(%s,+14155550119,t)', :alice), 'it is normalized, hers, and due now');
SELECT throws_ok($$INSERT INTO call_queue (recipient_number) VALUES ('not a number')$$, '22023', 'recipient_number "not a number" is not a phone number',
                 'a direct INSERT with a bad number is refused');
SELECT throws_ok($$INSERT INTO call_queue (recipient_number, template_id)
                   VALUES ('+14155550120', '88888888-8888-4888-8888-000000000003')$$, 'PT404', 'template 88888888-8888-4888-8888-000000000003 not found',
                 'a direct INSERT with someone''s private template is refused');
SELECT throws_ok($$INSERT INTO call_queue (recipient_number, user_id) VALUES ('+14155550120', 'b0b00000-0000-4000-8000-000000000002')$$,
                 '42501', 'only an admin or service_role can queue calls for another user, not for b0b00000-0000-4000-8000-000000000002', 'a direct INSERT for bob is refused');
SELECT throws_ok($$UPDATE call_queue SET recipient_number = 'garbage' WHERE id = '99999999-9999-4999-8999-000000000020'$$,
                 '22023', 'recipient_number "garbage" is not a phone number', 'a direct UPDATE with a bad number is refused');
SELECT throws_ok($$UPDATE call_queue SET template_id = '88888888-8888-4888-8888-000000000004',
                   custom_variables = '{"party_size": 1}' WHERE id = '99999999-9999-4999-8999-000000000020'$$,
                 '22023', 'custom_variables.patient_name is required by the template',
                 'a direct UPDATE with missing variables is refused');
SELECT throws_ok($$UPDATE call_queue SET scheduled_time = now() - interval '5 years'
                   WHERE id = '99999999-9999-4999-8999-000000000020'$$, 'PT402', format('no active subscription covers the call time %s', now() - interval '5 years'),
                 'a direct UPDATE cannot move a call out of the paid period');
SELECT is(tests.affected($$UPDATE call_queue SET recipient_number = '+1 (212) 555-0121'
                           WHERE id = '99999999-9999-4999-8999-000000000020'$$), 1::bigint, 'a good direct UPDATE passes');
SELECT is((SELECT recipient_number FROM call_queue WHERE id = '99999999-9999-4999-8999-000000000020'), '+12125550121',
          'and is normalized');
SELECT throws_ok($$INSERT INTO call_queue (recipient_number, provider_id)
                   VALUES ('+14155550122', '44444444-4444-4444-8444-000000000002')$$, '42501', 'new row violates row-level security policy for table "call_queue"',
                 'a user cannot pin the provider a worker assigns');

-- Templates keep well-formed params.
SELECT throws_ok($$INSERT INTO call_templates (name, created_by, params)
                   VALUES ('Bad', 'a11ce000-0000-4000-8000-000000000001', '{"a": {"type": "uuid"}}')$$,
                 '22023', 'params.a.type "uuid" is not a known type', 'a template with malformed params is refused');
SELECT throws_ok($$INSERT INTO call_templates (name, created_by, params, params_order)
                   VALUES ('Bad', 'a11ce000-0000-4000-8000-000000000001', '{"a": {}}', '["b"]')$$,
                 '22023', 'params_order names "b" which is not in params', 'params_order must name declared params');

---------------------------------------------------------------- cancel_call
SELECT tests.as_user(:bob);
SELECT throws_ok($$SELECT cancel_call('99999999-9999-4999-8999-000000000020')$$, 'PT404', 'call 99999999-9999-4999-8999-000000000020 not found',
                 'bob cannot cancel alice''s call (and learns nothing about it)');
SELECT tests.as_user(:alice);
SELECT throws_ok($$SELECT cancel_call('99999999-9999-4999-8999-000000000002')$$, 'PT409',
                 'call 99999999-9999-4999-8999-000000000002 is in-progress; only a queued call can be canceled',
                 'a call in progress cannot be canceled');
SELECT is((SELECT status FROM cancel_call('99999999-9999-4999-8999-000000000020')), 'canceled', 'alice cancels her call');
SELECT throws_ok($$SELECT cancel_call('99999999-9999-4999-8999-000000000020')$$, 'PT409', 'call 99999999-9999-4999-8999-000000000020 is canceled; only a queued call can be canceled', 'only once');
SELECT throws_ok($$SELECT cancel_call('00000000-0000-4000-8000-000000000000')$$, 'PT404', 'call 00000000-0000-4000-8000-000000000000 not found', 'an unknown call is not found');
SELECT tests.as_admin();
SELECT is((SELECT status FROM cancel_call('99999999-9999-4999-8999-000000000003')), 'canceled', 'an admin cancels bob''s call');
SELECT tests.as_anon();
SELECT throws_ok($$SELECT cancel_call('99999999-9999-4999-8999-000000000001')$$, '42501', 'permission denied for function cancel_call', 'anon cannot cancel');

---------------------------------------------------------------- pick_provider_number
-- Start from an empty queue: only what the tests below put in it.
SELECT tests.as_owner();
UPDATE call_queue SET status = 'canceled' WHERE status IN ('queued', 'in-progress');
SELECT tests.as_user(:alice);
SELECT is((SELECT (provider_name, phone_id, from_number)::text FROM pick_provider_number('+1 415 555 0199')),
          '(VAPI,ph_1,+14155550100)', 'VAPI (priority 1), a local 415 number for a 415 recipient');
SELECT is((SELECT phone_id FROM pick_provider_number('+12125550199')), 'ph_3', 'a local 212 number for a 212 recipient');
SELECT is((SELECT phone_id FROM pick_provider_number('+13105550199')), 'ph_1',
          'any US number of the first provider for another area, first by id when none was used');
SELECT is((SELECT (phone_id, from_number)::text FROM pick_provider_number('+14155550199', caller_number_id => '66666666-6666-4666-8666-000000000001')),
          '(,+14155550111)', 'the caller''s own number when chosen');
SELECT throws_ok($$SELECT * FROM pick_provider_number('+14155550199', caller_number_id => '66666666-6666-4666-8666-000000000002')$$,
                 'PT404', 'caller_number_id 66666666-6666-4666-8666-000000000002 is not one of your phone numbers',
                 'not bob''s number: PT404, as enqueue_call says (one rule, core/src/routing.rs)');
SELECT tests.as_owner();
UPDATE user_phone_numbers SET is_active = false WHERE id = '66666666-6666-4666-8666-000000000001';
SELECT tests.as_user(:alice);
SELECT throws_ok($$SELECT * FROM pick_provider_number('+14155550199', caller_number_id => '66666666-6666-4666-8666-000000000001')$$,
                 '22023', 'caller number 66666666-6666-4666-8666-000000000001 is not active', 'her own inactive number: 22023');
SELECT throws_ok($$SELECT enqueue_call('+14155550199', caller_number_id => '66666666-6666-4666-8666-000000000001')$$,
                 '22023', 'caller number 66666666-6666-4666-8666-000000000001 is not active', 'the same for enqueue_call');
SELECT tests.as_owner();
UPDATE user_phone_numbers SET is_active = true WHERE id = '66666666-6666-4666-8666-000000000001';
SELECT tests.as_user(:alice);
SELECT is((SELECT provider_name FROM pick_provider_number('+442079460111', provider_id => '44444444-4444-4444-8444-000000000002')),
          'Retell', 'a given provider');
SELECT tests.as_owner();
UPDATE provider_phone_numbers SET last_used_at = now() - interval '1 minute' WHERE phone_id = 'ph_1';
SELECT tests.as_user(:alice);
SELECT is((SELECT phone_id FROM pick_provider_number('+14155550199')), 'ph_4', 'the least recently used local number');
-- VAPI full: 5 calls in progress (its limit).
SELECT tests.as_owner();
INSERT INTO call_queue (user_id, recipient_number, status, provider_id, claimed_at)
SELECT :alice, '+1415555' || (1000 + g), 'in-progress', :provider, now() FROM generate_series(1, 5) g;
SELECT tests.as_user(:alice);
SELECT is((SELECT provider_name FROM pick_provider_number('+14155550199')), 'Retell',
          'a provider at its concurrency limit is skipped (seen by a user, who sees none of those calls)');
SELECT tests.as_owner();
INSERT INTO call_queue (user_id, recipient_number, status, provider_id, claimed_at)
SELECT :alice, '+1415555' || (2000 + g), 'in-progress', '44444444-4444-4444-8444-000000000002', now() FROM generate_series(1, 2) g;
SELECT tests.as_user(:alice);
SELECT is((SELECT count(*) FROM pick_provider_number('+14155550199')), 0::bigint, 'no row when no provider has capacity');
SELECT tests.as_owner();
UPDATE call_queue SET status = 'completed' WHERE status = 'in-progress';
UPDATE provider_phone_numbers SET last_used_at = NULL;

---------------------------------------------------------------- claim_due_calls
SELECT tests.as_owner();
UPDATE call_service_providers SET concurrency_limit = 2 WHERE name = 'VAPI';
UPDATE call_service_providers SET concurrency_limit = 1 WHERE name = 'Retell';
SELECT tests.as_user(:alice);
SELECT enqueue_call('+14155550201', template_id => '88888888-8888-4888-8888-000000000004',
                    custom_variables => '{"patient_name": "First"}') AS c1 \gset
SELECT enqueue_call('+12125550202') AS c2 \gset
SELECT enqueue_call('+14155550203', caller_number_id => '66666666-6666-4666-8666-000000000001') AS c3 \gset
SELECT enqueue_call('+442079460204', template_id => '88888888-8888-4888-8888-000000000005') AS c4 \gset
SELECT enqueue_call('+14155550205') AS c5 \gset
SELECT enqueue_call('+14155550206', scheduled_time => now() + interval '1 hour') AS later \gset
SELECT tests.as_owner();
-- Oldest first: spread the due calls over the last minutes in queue order.
UPDATE call_queue SET scheduled_time = now() - interval '10 minutes' + (n * interval '1 minute')
FROM (VALUES ((:'c1'::call_queue).id, 1), ((:'c2'::call_queue).id, 2), ((:'c3'::call_queue).id, 3),
             ((:'c4'::call_queue).id, 4), ((:'c5'::call_queue).id, 5)) AS v(id, n)
WHERE call_queue.id = v.id;

SELECT tests.as_user(:alice);
SELECT throws_ok('SELECT * FROM claim_due_calls()', '42501', 'claim_due_calls() is for the dialing worker: call it as service_role or as an admin', 'a user cannot claim calls');
SELECT tests.as_service();
CREATE TEMP TABLE claimed ON COMMIT DROP AS SELECT * FROM claim_due_calls(10);
SELECT is((SELECT array_agg(recipient_number ORDER BY recipient_number) FROM claimed),
          ARRAY['+12125550202', '+14155550201', '+442079460204'],
          'VAPI takes two calls (its limit), Retell the one pinned to it; the rest waits');
SELECT is((SELECT (provider_name, phone_id, from_number, attempt, assistant_id, external_voice_id, variables)::text
           FROM claimed WHERE recipient_number = '+14155550201'),
          '(VAPI,ph_1,+14155550100,1,f0000000-0000-4000-8000-000000000001,jennifer,"{""clinic"": ""our clinic"", ""party_size"": 1, ""patient_name"": ""First""}")',
          'a claimed call carries all the worker needs, template defaults merged');
SELECT is((SELECT phone_id FROM claimed WHERE recipient_number = '+12125550202'), 'ph_3', 'a local number for 212');
SELECT is((SELECT (status, provider_id IS NOT NULL, provider_phone_number_id IS NOT NULL, claimed_at = now())::text
           FROM call_queue WHERE id = (:'c1'::call_queue).id), '(in-progress,t,t,t)',
          'claimed calls are in progress with provider, number and claim time');
SELECT ok((SELECT last_used_at >= now() FROM provider_phone_numbers WHERE phone_id = 'ph_1'), 'the number''s use is recorded');
SELECT is((SELECT count(*) FROM claim_due_calls(10)), 0::bigint, 'nothing more while the providers are full');
SELECT is((SELECT status FROM call_queue WHERE id = (:'later'::call_queue).id), 'queued', 'a call not yet due waits');

-- A worker reports: placed, failed and retried, failed for good.
SELECT is((SELECT call_id FROM mark_call_placed((:'c1'::call_queue).id, 'vapi-abc')), 'vapi-abc', 'the provider call id is recorded');
SELECT throws_ok(format('SELECT mark_call_placed(%L, %L)', (:'c5'::call_queue).id, 'x'), 'PT409',
                 format('call %s is queued, not in-progress', (:'c5'::call_queue).id),
                 'a queued call cannot be marked placed');
SELECT throws_ok($$SELECT mark_call_placed('00000000-0000-4000-8000-000000000000', 'x')$$, 'PT404', 'call 00000000-0000-4000-8000-000000000000 not found',
                 'an unknown call is not found');
SELECT throws_ok(format('SELECT mark_call_placed(%L, %L)', (:'c2'::call_queue).id, ' '), '22023', 'provider_call_id is empty',
                 'an empty provider call id is refused');
SELECT mark_call_failed((:'c2'::call_queue).id, 'provider returned 503') AS retried \gset
SELECT is(((:'retried'::call_queue).status, (:'retried'::call_queue).retry_count, (:'retried'::call_queue).last_error,
           (:'retried'::call_queue).provider_id)::text, '(queued,1,"provider returned 503",)',
          'a retryable failure queues the call again, counted, with its error');
SELECT ok((:'retried'::call_queue).scheduled_time BETWEEN now() + interval '30 seconds' AND now() + interval '60 seconds',
          'after a backoff of 30 to 60 seconds (base 60 s, half of it jitter)');
SELECT is((SELECT status FROM mark_call_failed((:'c4'::call_queue).id, 'number not in service', retryable => false)),
          'failed', 'a non-retryable failure ends the call');
SET LOCAL pg_dialer.max_attempts = 2;
SELECT tests.as_owner();
UPDATE call_queue SET scheduled_time = now() - interval '1 hour' WHERE id = (:'c2'::call_queue).id;
SELECT tests.as_service();
SELECT is((SELECT attempt FROM claim_due_calls(10) WHERE call_queue_id = (:'c2'::call_queue).id), 2,
          'once due, its second attempt is claimed first (the oldest due call)');
SELECT is((SELECT (status, retry_count, last_error)::text FROM mark_call_failed((:'c2'::call_queue).id, 'busy')),
          '(failed,2,busy)', 'failing the last attempt ends the call, keeping the error');
SELECT tests.as_user(:alice);
SELECT throws_ok(format('SELECT mark_call_failed(%L, %L)', (:'c1'::call_queue).id, 'x'), '42501', 'mark_call_failed() is for the dialing worker: call it as service_role or as an admin',
                 'a user cannot report results');

-- Stale calls come back.
SELECT tests.as_owner();
UPDATE call_queue SET claimed_at = now() - interval '20 minutes' WHERE id = (:'c1'::call_queue).id;
SELECT tests.as_user(:alice);
SELECT throws_ok('SELECT * FROM rescue_stale_calls()', '42501', 'rescue_stale_calls() is for the dialing worker: call it as service_role or as an admin', 'a user cannot rescue calls');
SELECT tests.as_service();
SET LOCAL pg_dialer.max_attempts = 3;
SELECT is((SELECT array_agg(id) FROM rescue_stale_calls()), ARRAY[(:'c1'::call_queue).id],
          'a call in progress past pg_dialer.stale_call_timeout (15 min) is rescued, a recent one is not');
SELECT is((SELECT (status, retry_count, call_id, claimed_at)::text FROM call_queue WHERE id = (:'c1'::call_queue).id),
          '(queued,1,,)', 'it is queued again with the attempt counted');
SELECT is((SELECT count(*) FROM rescue_stale_calls(interval '1 hour')), 0::bigint, 'older_than overrides the timeout');
SELECT tests.as_owner();
UPDATE call_queue SET status = 'in-progress', retry_count = 2, claimed_at = now() - interval '2 hours'
    WHERE id = (:'c1'::call_queue).id;
SELECT tests.as_service();
SELECT is((SELECT status FROM rescue_stale_calls(interval '1 hour')), 'failed', 'a stale last attempt ends as failed');
SELECT throws_ok($$SELECT * FROM rescue_stale_calls(interval '-1 minute')$$, '22023',
                 'older_than must not be negative, not -00:01:00', 'a negative timeout is refused, naming it');
SELECT tests.as_owner();
UPDATE call_queue SET status = 'in-progress', retry_count = 0, claimed_at = now(), call_id = 'just-placed'
    WHERE id = (:'c1'::call_queue).id;
SELECT tests.as_service();
SELECT ok((SELECT (:'c1'::call_queue).id = ANY (array_agg(id)) FROM rescue_stale_calls(interval '0 seconds')),
          'older_than => 0 takes back every call in progress, one claimed just now too (after an outage)');
SELECT tests.as_owner();
SELECT is((SELECT count(*) FROM call_queue WHERE status = 'in-progress'), 0::bigint, 'no call is left in progress');
SELECT tests.as_service();
SELECT is((SELECT (status, retry_count)::text FROM call_queue WHERE id = (:'c1'::call_queue).id), '(queued,1)',
          'queued again, its attempt counted');

-- Calls that can never be placed end, failed with the reason; calls waiting
-- for a full provider, or for one without numbers, hold no one back.
SELECT tests.as_owner();
UPDATE call_queue SET status = 'canceled' WHERE status IN ('queued', 'in-progress');
UPDATE call_service_providers SET concurrency_limit = 100 WHERE name = 'VAPI';
UPDATE call_service_providers SET concurrency_limit = 0 WHERE name = 'Retell';
INSERT INTO call_service_providers (id, name, type, concurrency_limit, priority) VALUES
    ('44444444-4444-4444-8444-000000000003', 'Numberless', 'voice', 10, 3);
INSERT INTO call_templates (id, name, is_public, created_by, provider_id) VALUES
    ('88888888-8888-4888-8888-000000000009', 'On Numberless', false, :alice, '44444444-4444-4444-8444-000000000003');
-- Written by the owner, as rows that were valid when queued: 60 with alice's
-- VAPI caller number but a Retell template (the number or template moved
-- since), 60 waiting for Retell (full), 60 for a provider without numbers,
-- all due before bob's one ordinary call.
INSERT INTO call_queue (user_id, recipient_number, caller_number_id, template_id, scheduled_time)
SELECT :alice, '+1415555' || (3000 + g), '66666666-6666-4666-8666-000000000001',
       '88888888-8888-4888-8888-000000000005', now() - interval '3 hours' + g * interval '1 second'
FROM generate_series(1, 60) g;
INSERT INTO call_queue (user_id, recipient_number, template_id, scheduled_time)
SELECT :alice, '+1415555' || (4000 + g), '88888888-8888-4888-8888-000000000005', now() - interval '2 hours' + g * interval '1 second'
FROM generate_series(1, 60) g;
INSERT INTO call_queue (user_id, recipient_number, template_id, scheduled_time)
SELECT :alice, '+1415555' || (5000 + g), '88888888-8888-4888-8888-000000000009', now() - interval '1 hour' + g * interval '1 second'
FROM generate_series(1, 60) g;
INSERT INTO call_queue (id, user_id, recipient_number, scheduled_time) VALUES
    ('99999999-9999-4999-8999-0000000000b1', :bob, '+14155550777', now() - interval '1 minute');
SELECT tests.as_service();
SELECT is((SELECT array_agg(recipient_number) FROM claim_due_calls(5)), ARRAY['+14155550777'],
          'bob''s call is claimed behind 180 calls that cannot go now or ever (2 x 5 = 10 would have been looked at)');
SELECT tests.as_owner();
SELECT is((SELECT count(*) FROM call_queue WHERE recipient_number LIKE '+14155553%' AND status = 'failed'), 5::bigint,
          'each claim ends the calls that can never be placed among the oldest, as many as its batch (5)');
SELECT tests.as_service();
CREATE TEMP TABLE more_claims (n bigint) ON COMMIT DROP;
GRANT ALL ON more_claims TO PUBLIC;
DO $$
BEGIN
    FOR i IN 1 .. 11 LOOP
        INSERT INTO more_claims SELECT count(*) FROM claim_due_calls(5);
    END LOOP;
END
$$;
SELECT is((SELECT sum(n) FROM more_claims), 0::numeric, 'eleven more claims, nothing to place');
SELECT tests.as_owner();
SELECT is((SELECT (count(*), min(last_error))::text FROM call_queue
           WHERE recipient_number LIKE '+14155553%' AND status = 'failed'),
          '(60,"cannot be placed: its caller number now belongs to provider 44444444-4444-4444-8444-000000000001 but its template or voice to provider 44444444-4444-4444-8444-000000000002")',
          'calls whose caller number and template no longer share a provider end as failed, saying why');
SELECT is((SELECT count(*) FROM call_queue WHERE (recipient_number LIKE '+14155554%' OR recipient_number LIKE '+14155555%')
                                            AND status = 'queued'), 120::bigint,
          'calls waiting for a full provider, or one without numbers, keep waiting');
UPDATE call_queue SET status = 'canceled' WHERE status IN ('queued', 'in-progress');

-- A session's claims of every batch size each claim exactly their batch
-- (a plan is kept per batch size, up to eight, src/plans.rs).
SELECT tests.as_owner();
UPDATE call_service_providers SET concurrency_limit = 100 WHERE name = 'VAPI';
UPDATE user_subscriptions SET plan_id = '11111111-1111-4111-8111-111111111112' WHERE user_id = :alice;
INSERT INTO call_queue (user_id, recipient_number, scheduled_time)
SELECT :alice, '+1415555' || (6000 + g), now() - interval '1 hour' + g * interval '1 second'
FROM generate_series(1, 55) g;
SELECT tests.as_service();
CREATE TEMP TABLE batch_claims (batch int, n bigint) ON COMMIT DROP;
GRANT ALL ON batch_claims TO PUBLIC;
DO $$
BEGIN
    FOR k IN 1 .. 10 LOOP
        INSERT INTO batch_claims SELECT k, count(*) FROM claim_due_calls(k);
    END LOOP;
END
$$;
SELECT is((SELECT array_agg(n ORDER BY batch) FROM batch_claims), ARRAY[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]::bigint[],
          'ten claims of batch sizes 1 to 10 in one session claim 1 to 10 calls');
SELECT tests.as_owner();
SELECT is((SELECT count(*) FROM call_queue WHERE recipient_number LIKE '+14155556%' AND status = 'queued'), 0::bigint,
          'all 55 calls are claimed');
UPDATE call_queue SET status = 'canceled' WHERE status IN ('queued', 'in-progress');

-- Admins may run the worker functions too; REPEATABLE READ is refused.
SELECT tests.as_admin();
SELECT lives_ok('SELECT * FROM claim_due_calls(1)', 'an admin may claim');

SELECT * FROM finish();
ROLLBACK;
