-- Billing periods defined once (the period covering a time, its usage, a
-- call's period), and odd rows a DBA may write: each fails on its own, or is
-- refused when written, and everyone else's claims and rollovers go on. A
-- queued call is checked again when it is claimed.
BEGIN;
\ir ../fixtures/rls.sql
SELECT * FROM no_plan();

\set vapi_report `cat demo/payloads/vapi_end_of_call_report.json`
UPDATE call_queue SET status = 'canceled' WHERE status IN ('queued', 'in-progress');
SELECT date_trunc('month', now()) AS this_month \gset

CREATE TEMP TABLE report ON COMMIT DROP AS SELECT :'vapi_report'::jsonb AS body;
GRANT SELECT ON report TO PUBLIC;
-- The VAPI report of a call, lasting `seconds`.
CREATE FUNCTION tests.vapi_result(call_id text, seconds numeric) RETURNS text LANGUAGE sql AS $$
    SELECT result FROM report, record_call_result(jsonb_set(jsonb_set(report.body,
        '{message,call,id}', to_jsonb(call_id)), '{message,durationSeconds}', to_jsonb(seconds)))
$$;
-- A call a worker placed, written as a DBA would (no checks).
CREATE FUNCTION tests.in_progress(id uuid, user_id uuid, call_id text, at timestamptz) RETURNS void LANGUAGE sql AS $$
    SELECT set_config('session_replication_role', 'replica', true);
    INSERT INTO call_queue (id, user_id, recipient_number, status, call_id, provider_id, provider_phone_number_id,
                            scheduled_time, claimed_at)
    VALUES (id, user_id, '+14155550150', 'in-progress', call_id, '44444444-4444-4444-8444-000000000001',
            '55555555-5555-4555-8555-000000000001', at, now());
    SELECT set_config('session_replication_role', 'origin', true);
$$;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA tests TO PUBLIC;

---------------------------------------------------------------- one period, one usage (class 5)
-- An admin extends alice's period: its usage goes with it.
UPDATE user_subscriptions SET current_period_end = current_period_end + interval '10 days' WHERE user_id = :alice;
SELECT tests.as_user(:alice);
SELECT is((SELECT (period_end, calls_used)::text FROM compute_remaining_usage()),
          (:'this_month'::timestamptz + interval '1 month 10 days', 3)::text,
          'after its end moves, the period still counts the calls used in it');
SELECT is((SELECT calls_used FROM compute_remaining_usage(at => :'this_month'::timestamptz + interval '1 month 5 days')),
          3::bigint, 'also for a time in the added days');
SELECT tests.as_owner();
UPDATE subscription_plans SET call_limit = 5 WHERE name = 'Starter';
SELECT tests.as_user(:alice);
SELECT lives_ok($$SELECT enqueue_call('+14155550160', scheduled_time => date_trunc('month', now()) + interval '1 month 5 days')$$,
                'a call in the added days: 3 used, 1 reserved of 5');
SELECT lives_ok($$SELECT enqueue_call('+14155550161')$$, 'the 5th call of the period passes');
SELECT throws_ok($$SELECT enqueue_call('+14155550162', scheduled_time => date_trunc('month', now()) + interval '1 month 6 days')$$,
                 'PT402', 'call limit reached: plan "Starter" allows 5 calls per billing period',
                 'a 6th is refused, in the added days as well');
SELECT tests.as_owner();
UPDATE subscription_plans SET call_limit = 100 WHERE name = 'Starter';
UPDATE call_queue SET status = 'canceled' WHERE status = 'queued';

-- A settled call of the extended period lands in its one usage row, whose
-- end follows the subscription's.
SELECT tests.in_progress('99999999-9999-4999-8999-0000000000c1', :alice, 'period-ext-1',
                         :'this_month'::timestamptz + interval '1 month 2 days');
SELECT tests.as_service();
SELECT is(tests.vapi_result('period-ext-1', 61), 'recorded', 'a result of a call in the added days is recorded');
SELECT tests.as_owner();
SELECT is((SELECT array_agg((calls_used, minutes_used, billing_period_end)::text) FROM user_call_usage WHERE user_id = :alice),
          ARRAY[(4, 2, :'this_month'::timestamptz + interval '1 month 10 days')::text],
          'into the period''s one usage row, which now ends where the period ends');

-- compute_remaining_usage() reads the period and its usage inline: always
-- what dialer.billing_period() and dialer.period_usage() say.
SELECT is_empty($$
    SELECT t FROM unnest(ARRAY[now(), now() + interval '20 days', now() + interval '45 days',
                               now() - interval '40 days', now() + interval '400 days']) AS t
    WHERE (SELECT row(period_start, period_end, calls_used, minutes_used)
           FROM compute_remaining_usage('a11ce000-0000-4000-8000-000000000001', t))
          IS DISTINCT FROM
          (SELECT row(bp.period_start, bp.period_end, pu.calls_used, pu.minutes_used)
           FROM dialer.billing_period('a11ce000-0000-4000-8000-000000000001', t) AS bp,
                dialer.period_usage('a11ce000-0000-4000-8000-000000000001', bp.period_start) AS pu)$$,
    'compute_remaining_usage() agrees with dialer.billing_period() and dialer.period_usage() at every time');

---------------------------------------------------------------- an active subscription between rollovers (class 10)
-- Bob's period ended a month ago and no rollover has run since.
UPDATE user_subscriptions SET current_period_start = :'this_month'::timestamptz - interval '2 months',
                              current_period_end = :'this_month'::timestamptz - interval '1 month'
WHERE user_id = :bob;
SELECT tests.as_user(:bob);
SELECT lives_ok($$SELECT enqueue_call('+14155550170')$$, 'bob still queues calls before the rollover runs');
SELECT is((SELECT (period_start, period_end, calls_used, calls_reserved)::text FROM compute_remaining_usage()),
          (:'this_month'::timestamptz, :'this_month'::timestamptz + interval '1 month', 5, 1)::text,
          'in the period his subscription renews into, with its usage');
SELECT tests.as_service();
SELECT is((SELECT array_agg(action) FROM rollover_billing_periods() WHERE user_id = :bob), ARRAY['renewed'],
          'the rollover then moves it on');
SELECT tests.as_user(:bob);
SELECT is((SELECT (period_start, calls_used, calls_reserved)::text FROM compute_remaining_usage()),
          (:'this_month'::timestamptz, 5, 1)::text, 'to the same period: nothing counted twice or lost');
SELECT tests.as_owner();
UPDATE user_subscriptions SET current_period_start = :'this_month'::timestamptz - interval '2 months',
                              current_period_end = :'this_month'::timestamptz - interval '1 month',
                              cancel_at_period_end = true
WHERE user_id = :bob;
SELECT tests.as_user(:bob);
SELECT throws_ok($$SELECT enqueue_call('+14155550171')$$, 'PT402', format('no active subscription covers the call time %s', now()),
                 'one that ends at period end does not renew');
SELECT tests.as_owner();
UPDATE user_subscriptions SET current_period_start = :'this_month'::timestamptz,
                              current_period_end = :'this_month'::timestamptz + interval '1 month',
                              cancel_at_period_end = false
WHERE user_id = :bob;
UPDATE call_queue SET status = 'canceled' WHERE status = 'queued';

---------------------------------------------------------------- billing lands in the call's period (class 9)
-- Alice's subscription is half a year old; a call of last month, still in
-- progress, reports twice (the second time longer) after her period rolled
-- on, and last month never got a usage row.
UPDATE user_subscriptions SET billing_anchor = :'this_month'::timestamptz - interval '6 months',
                              current_period_end = :'this_month'::timestamptz + interval '1 month'
WHERE user_id = :alice;
UPDATE user_call_usage SET billing_period_end = :'this_month'::timestamptz + interval '1 month' WHERE user_id = :alice;
SELECT tests.in_progress('99999999-9999-4999-8999-0000000000c2', :alice, 'last-month-1',
                         :'this_month'::timestamptz - interval '3 days');
SELECT (calls_used, minutes_used)::text AS alice_now FROM user_call_usage
WHERE user_id = :alice AND billing_period_start = :'this_month' \gset
SELECT tests.as_service();
SELECT is(tests.vapi_result('last-month-1', 90), 'recorded', 'a result of last month''s call');
SELECT is(tests.vapi_result('last-month-1', 200), 'enriched', 'and a longer report of it');
SELECT tests.as_owner();
SELECT is((SELECT (calls_used, minutes_used, billing_period_end)::text FROM user_call_usage
           WHERE user_id = :alice AND billing_period_start = :'this_month'::timestamptz - interval '1 month'),
          (1, 4, :'this_month'::timestamptz)::text,
          'both land in last month''s usage row, created for them: one call, 200 s as 4 minutes');
SELECT is((SELECT (calls_used, minutes_used)::text FROM user_call_usage
           WHERE user_id = :alice AND billing_period_start = :'this_month'), :'alice_now',
          'nothing lands in the current period');

-- A retry whose time no subscription covers is not placed.
UPDATE user_subscriptions SET status = 'canceled', current_period_end = now() - interval '1 hour' WHERE user_id = :alice;
SET LOCAL session_replication_role = replica;
INSERT INTO call_queue (id, user_id, recipient_number, scheduled_time, retry_count)
VALUES ('99999999-9999-4999-8999-0000000000c3', :alice, '+14155550180', now() - interval '1 minute', 1);
SET LOCAL session_replication_role = origin;
SELECT tests.as_service();
SELECT is((SELECT count(*) FROM claim_due_calls(10) WHERE call_queue_id = '99999999-9999-4999-8999-0000000000c3'),
          0::bigint, 'a call after the subscription ended is not claimed');
SELECT is((SELECT (status, last_error)::text FROM call_queue WHERE id = '99999999-9999-4999-8999-0000000000c3'),
          '(failed,"cannot be placed: no subscription period covers its time")', 'it fails, saying why');
SELECT tests.as_owner();
UPDATE user_subscriptions SET status = 'active', current_period_end = :'this_month'::timestamptz + interval '1 month'
WHERE user_id = :alice;

---------------------------------------------------------------- a claim places only what the plan still pays for
-- A subscription gone past_due or canceled places none of its queued calls.
INSERT INTO call_queue (id, user_id, recipient_number, scheduled_time)
VALUES ('99999999-9999-4999-8999-0000000000c4', :alice, '+14155550181', now() - interval '1 minute');
UPDATE user_subscriptions SET status = 'past_due' WHERE user_id = :alice;
SELECT tests.as_service();
SELECT is((SELECT count(*) FROM claim_due_calls(10)), 0::bigint, 'a call of a past_due subscription is not claimed');
SELECT is((SELECT (status, last_error)::text FROM call_queue WHERE id = '99999999-9999-4999-8999-0000000000c4'),
          '(failed,"cannot be placed: no subscription period covers its time")', 'it fails, saying why');
SELECT tests.as_owner();
UPDATE user_subscriptions SET status = 'active' WHERE user_id = :alice;

-- A billing sync moved alice's period on (no rollover, no anchor): a call
-- queued in the period before still goes out, billed there.
UPDATE user_subscriptions SET billing_anchor = NULL, current_period_start = now() - interval '1 hour'
WHERE user_id = :alice;
SET LOCAL session_replication_role = replica;
INSERT INTO call_queue (id, user_id, recipient_number, scheduled_time)
VALUES ('99999999-9999-4999-8999-0000000000c5', :alice, '+14155550182', now() - interval '2 hours');
SET LOCAL session_replication_role = origin;
SELECT tests.as_service();
SELECT is((SELECT array_agg(call_queue_id) FROM claim_due_calls(10)), ARRAY['99999999-9999-4999-8999-0000000000c5']::uuid[],
          'a call of the period before a synced start is placed');
SELECT tests.as_owner();
UPDATE call_queue SET status = 'canceled' WHERE status IN ('queued', 'in-progress');
UPDATE user_subscriptions SET current_period_start = :'this_month', billing_anchor = :'this_month' WHERE user_id = :alice;

-- Limits: calls used up fail, minutes used up fail, and a plan that has room
-- only once calls in progress end makes its calls wait. Bob's plan allows 8
-- calls; he has used 5. Written as a DBA would, with the checks off.
UPDATE subscription_plans SET call_limit = 8 WHERE name = 'Starter';
SET LOCAL session_replication_role = replica;
INSERT INTO call_queue (id, user_id, recipient_number, scheduled_time)
SELECT ('99999999-9999-4999-8999-0000000001' || lpad(g::text, 2, '0'))::uuid, :bob, '+1415555' || lpad((300 + g)::text, 4, '0'),
       now() - interval '30 minutes' + g * interval '1 second'
FROM generate_series(1, 5) g;
SET LOCAL session_replication_role = origin;
SELECT tests.as_service();
SELECT is((SELECT count(*) FROM claim_due_calls(10)), 3::bigint, 'of 5 due calls, the 3 the plan has room for are claimed');
SELECT is((SELECT count(*) FROM call_queue WHERE user_id = :bob AND status = 'queued'), 2::bigint,
          'the other 2 wait: calls in progress may end unanswered');
SELECT is((SELECT count(*) FROM claim_due_calls(10)), 0::bigint, 'and are not claimed while those are in progress');
SELECT tests.as_owner();
UPDATE user_call_usage SET calls_used = 8 WHERE user_id = :bob;
UPDATE call_queue SET status = 'completed' WHERE user_id = :bob AND status = 'in-progress';
SELECT tests.as_service();
SELECT is((SELECT count(*) FROM claim_due_calls(10)), 0::bigint, 'once the calls are used up, none is claimed');
SELECT is((SELECT array_agg(DISTINCT last_error) FROM call_queue WHERE user_id = :bob AND status = 'failed'
           AND id::text LIKE '99999999-9999-4999-8999-0000000001%'),
          ARRAY['cannot be placed: the plan''s calls for its billing period are used up'], 'the waiting ones fail, saying why');
SELECT tests.as_owner();
UPDATE subscription_plans SET call_limit = 100, minutes_limit = 10 WHERE name = 'Starter';
UPDATE user_call_usage SET calls_used = 5, minutes_used = 10 WHERE user_id = :bob;
SET LOCAL session_replication_role = replica;
INSERT INTO call_queue (id, user_id, recipient_number, scheduled_time)
VALUES ('99999999-9999-4999-8999-0000000000c6', :bob, '+14155550183', now() - interval '1 minute');
SET LOCAL session_replication_role = origin;
SELECT tests.as_service();
SELECT is((SELECT count(*) FROM claim_due_calls(10)), 0::bigint, 'with the plan''s minutes used up, no call is claimed');
SELECT is((SELECT last_error FROM call_queue WHERE id = '99999999-9999-4999-8999-0000000000c6'),
          'cannot be placed: the plan''s minutes for its billing period are used up', 'it fails, saying why');
SELECT tests.as_owner();
UPDATE subscription_plans SET minutes_limit = 300 WHERE name = 'Starter';
UPDATE user_call_usage SET minutes_used = 0 WHERE user_id = :bob;

-- A plan whose allowed number types hold a JSON null stops nobody's work.
UPDATE subscription_plans SET features = '{"allowed_number_types": ["premium_rate", null]}' WHERE name = 'Starter';
SELECT tests.as_user(:bob);
SELECT lives_ok($$SELECT enqueue_call('+14155550184')$$, 'a user of that plan queues');
SELECT tests.as_service();
SELECT is((SELECT count(*) FROM claim_due_calls(10)), 1::bigint, 'and the call is claimed');
SELECT tests.as_owner();
UPDATE subscription_plans SET features = '["standard_voices"]' WHERE name = 'Starter';
UPDATE call_queue SET status = 'canceled' WHERE status IN ('queued', 'in-progress');

---------------------------------------------------------------- odd rows stop nobody else (classes 7, 8)
-- Written by a DBA with the checks off, as a restore or a hand fix would.
SET LOCAL session_replication_role = replica;
UPDATE provider_phone_numbers SET last_used_at = 'infinity' WHERE id = '55555555-5555-4555-8555-000000000001';
INSERT INTO provider_phone_numbers (id, provider_id, phone_id, country_code, area_code, phone_number, full_number,
                                    is_active, last_used_at)
VALUES ('55555555-5555-4555-8555-000000000009', :provider, 'ph_9', '1', '415', '5550109', '+14155550109', true, '-infinity');
INSERT INTO call_queue (id, user_id, recipient_number, scheduled_time, custom_variables, retry_count) VALUES
    ('99999999-9999-4999-8999-0000000000d1', :alice, '+14155550190', now() - interval '9 minutes',
     '{"big": 1e400}', 0),
    ('99999999-9999-4999-8999-0000000000d2', :alice, '+14155550191', now() - interval '8 minutes',
     ('{"deep": ' || repeat('[', 300) || repeat(']', 300) || '}')::jsonb, 0),
    ('99999999-9999-4999-8999-0000000000d3', :alice, '+14155550192', now() - interval '7 minutes', NULL, 2147483647),
    ('99999999-9999-4999-8999-0000000000d4', :alice, '+19005550193', now() - interval '6 minutes', NULL, 0),
    ('99999999-9999-4999-8999-0000000000d5', :alice, 'not a number', now() - interval '5 minutes', NULL, 0),
    ('99999999-9999-4999-8999-0000000000d6', :bob, '+14155550194', now() - interval '1 minute', NULL, 0);
INSERT INTO call_templates (id, name, is_public, created_by, params)
SELECT '88888888-8888-4888-8888-0000000000d7', 'Huge', false, :alice,
       jsonb_object_agg('p' || i, jsonb_build_object('type', 'string')) FROM generate_series(1, 20000) i;
INSERT INTO call_queue (id, user_id, recipient_number, scheduled_time, template_id)
VALUES ('99999999-9999-4999-8999-0000000000d7', :alice, '+14155550195', now() - interval '4 minutes',
        '88888888-8888-4888-8888-0000000000d7');
INSERT INTO user_subscriptions (id, user_id, plan_id, status, current_period_start, current_period_end) VALUES
    ('22222222-2222-4222-8222-0000000000d8', 'ad000000-0000-4000-8000-000000000003',
     '11111111-1111-4111-8111-111111111111', 'active', '-infinity', now() - interval '1 day'),
    ('22222222-2222-4222-8222-0000000000d9', 'ad000000-0000-4000-8000-000000000003',
     '11111111-1111-4111-8111-111111111111', 'active', '0100-01-01 00:00+00', '0100-02-01 00:00+00');
SET LOCAL session_replication_role = origin;

SELECT tests.as_service();
SET LOCAL statement_timeout = '2s';
CREATE TEMP TABLE odd_claims ON COMMIT DROP AS SELECT * FROM claim_due_calls(10);
SELECT is((SELECT array_agg(call_queue_id ORDER BY call_queue_id) FROM odd_claims),
          ARRAY['99999999-9999-4999-8999-0000000000d3', '99999999-9999-4999-8999-0000000000d6']::uuid[],
          'the claim goes on: the sound calls are claimed, within 2 s');
SELECT is((SELECT attempt FROM odd_claims WHERE call_queue_id = '99999999-9999-4999-8999-0000000000d3'), 2147483647,
          'a retry_count at the integer maximum is no overflow');
SELECT is((SELECT phone_number_id FROM odd_claims WHERE call_queue_id = '99999999-9999-4999-8999-0000000000d3'),
          '55555555-5555-4555-8555-000000000009'::uuid, 'a number last used at -infinity goes first');
SELECT is((SELECT array_agg(id::text || ': ' || last_error ORDER BY id) FROM call_queue
           WHERE id IN ('99999999-9999-4999-8999-0000000000d1', '99999999-9999-4999-8999-0000000000d2',
                        '99999999-9999-4999-8999-0000000000d4', '99999999-9999-4999-8999-0000000000d5',
                        '99999999-9999-4999-8999-0000000000d7') AND status = 'failed'),
          ARRAY['99999999-9999-4999-8999-0000000000d1: cannot be placed: custom_variables holds a number beyond the range of a double precision float',
                '99999999-9999-4999-8999-0000000000d2: cannot be placed: custom_variables nests deeper than 128 levels',
                '99999999-9999-4999-8999-0000000000d4: cannot be placed: recipient_number +19005550193 is a premium-rate number, which costs the caller extra',
                '99999999-9999-4999-8999-0000000000d5: cannot be placed: recipient_number "not a number" is not a phone number',
                '99999999-9999-4999-8999-0000000000d7: cannot be placed: template params is 588894 bytes of JSON; at most 262144 are accepted'],
          'each odd call fails on its own, saying why');
SELECT is((SELECT (status, retry_count)::text FROM mark_call_failed('99999999-9999-4999-8999-0000000000d3', 'busy')),
          '(failed,2147483647)', 'its failure ends it without an overflow');
SELECT is((SELECT phone_number_id FROM pick_provider_number('+14155550196')), '55555555-5555-4555-8555-000000000009'::uuid,
          'pick_provider_number works with a number last used at infinity, and takes the one used just now first');

SELECT is((SELECT array_agg((subscription_id, action)::text ORDER BY subscription_id) FROM rollover_billing_periods()
           WHERE user_id = 'ad000000-0000-4000-8000-000000000003' AND action <> 'usage-opened'),
          ARRAY['(22222222-2222-4222-8222-0000000000d8,skipped)', '(22222222-2222-4222-8222-0000000000d9,renewed)'],
          'the rollover skips and reports a subscription from -infinity, and renews one from year 100 within 2 s');
SELECT is((SELECT (current_period_start <= now() AND now() < current_period_end)
           FROM user_subscriptions WHERE id = '22222222-2222-4222-8222-0000000000d9'), true,
          'to the period covering now');
RESET statement_timeout;
SELECT tests.as_owner();
UPDATE call_queue SET status = 'canceled' WHERE status IN ('queued', 'in-progress');
UPDATE provider_phone_numbers SET last_used_at = NULL;
UPDATE provider_phone_numbers SET is_active = false WHERE id = '55555555-5555-4555-8555-000000000009';

-- A template a DBA wrote beyond the caps is a clear 22023 for its user.
SET LOCAL session_replication_role = replica;
INSERT INTO call_templates (id, name, is_public, created_by, params)
VALUES ('88888888-8888-4888-8888-0000000000d8', 'Odd', false, :alice, '{"n": {"type": "number", "default": 1e400}}');
SET LOCAL session_replication_role = origin;
SELECT tests.as_user(:alice);
SELECT throws_ok($$SELECT enqueue_call('+14155550197', template_id => '88888888-8888-4888-8888-0000000000d8')$$, '22023',
                 'template "Odd" has invalid params: params holds a number beyond the range of a double precision float',
                 'a template with a number beyond a double is refused when used, naming it');
SELECT tests.as_owner();

---------------------------------------------------------------- a call goes out as it would be queued now (class 3)
INSERT INTO voice_options (id, provider_id, voice_id, name, gender, language, is_active, is_premium)
VALUES ('77777777-7777-4777-8777-0000000000e1', :provider, 'studio', 'Studio', 'female', 'en-US', true, true);
INSERT INTO call_templates (id, name, is_public, created_by, params) VALUES
    ('88888888-8888-4888-8888-0000000000e1', 'Alice voice', false, :alice, NULL),
    ('88888888-8888-4888-8888-0000000000e2', 'Published', true, :alice, '{"name": {"type": "string"}}');
SELECT tests.as_user(:alice);
SELECT lives_ok($$SELECT enqueue_call('+14155550200', template_id => '88888888-8888-4888-8888-0000000000e1')$$,
                'alice queues with her template');
SELECT tests.as_user(:bob);
SELECT lives_ok($$SELECT enqueue_call('+14155550201', template_id => '88888888-8888-4888-8888-0000000000e2',
                                      custom_variables => '{"name": "Bo"}')$$, 'bob queues with a published template');
SELECT lives_ok($$SELECT enqueue_call('+14155550202', template_id => '88888888-8888-4888-8888-0000000000e2',
                                      custom_variables => '{"name": "Al"}', idempotency_key => 'params-change')$$,
                'and once more');
-- Then alice points her template at a premium voice her plan lacks, and an
-- admin renames the parameter of the published template.
SELECT tests.as_user(:alice);
UPDATE call_templates SET voice_id = '77777777-7777-4777-8777-0000000000e1' WHERE id = '88888888-8888-4888-8888-0000000000e1';
SELECT tests.as_owner();
UPDATE call_templates SET params = '{"full_name": {"type": "string", "required": true}}'
WHERE id = '88888888-8888-4888-8888-0000000000e2';
SELECT tests.as_service();
SELECT is((SELECT count(*) FROM claim_due_calls(10)), 0::bigint, 'none of the three is claimed');
SELECT tests.as_owner();
SELECT is((SELECT array_agg(last_error ORDER BY recipient_number) FROM call_queue WHERE status = 'failed'
           AND recipient_number IN ('+14155550200', '+14155550201', '+14155550202')),
          ARRAY['cannot be placed: its voice is premium and its plan does not include premium voices',
                'cannot be placed: custom_variables.name is not a parameter of the template',
                'cannot be placed: custom_variables.name is not a parameter of the template'],
          'each fails with what changed under it');
UPDATE call_templates SET params = '{"name": {"type": "string"}}', is_public = false
WHERE id = '88888888-8888-4888-8888-0000000000e2';
INSERT INTO call_queue (user_id, recipient_number, template_id, custom_variables)
SELECT :bob, '+14155550203', '88888888-8888-4888-8888-0000000000e2', '{"name": "Bo"}'
FROM (SELECT set_config('session_replication_role', 'replica', true)) off;
SELECT set_config('session_replication_role', 'origin', true);
SELECT tests.as_service();
SELECT is((SELECT count(*) FROM claim_due_calls(10)), 0::bigint, 'a template no longer public is not used for bob');
SELECT is((SELECT last_error FROM call_queue WHERE recipient_number = '+14155550203'),
          'cannot be placed: its template is no longer available to its user', 'his call fails, saying why');

SELECT * FROM finish();
ROLLBACK;
