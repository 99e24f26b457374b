-- Results and billing: record_call_result with VAPI, Retell and Bland
-- payloads (demo/payloads/), usage settlement, compute_remaining_usage and
-- rollover_billing_periods, including a month-end sequence.
BEGIN;
\ir ../fixtures/rls.sql
SELECT * FROM no_plan();

\set vapi_report `cat demo/payloads/vapi_end_of_call_report.json`
\set vapi_no_answer `cat demo/payloads/vapi_no_answer.json`
\set vapi_status `cat demo/payloads/vapi_status_update.json`
\set retell_ended `cat demo/payloads/retell_call_ended.json`
\set retell_analyzed `cat demo/payloads/retell_call_analyzed.json`
\set bland_post_call `cat demo/payloads/bland_post_call.json`
\set bland_voicemail `cat demo/payloads/bland_voicemail.json`

-- Calls in progress at their providers, as a worker leaves them after
-- claim_due_calls() and mark_call_placed(). Written by the owner.
UPDATE call_queue SET status = 'canceled' WHERE status IN ('queued', 'in-progress');
INSERT INTO call_queue (id, user_id, recipient_number, status, call_id, provider_id, provider_phone_number_id,
                        voice_id, template_id, scheduled_time, claimed_at) VALUES
    ('99999999-9999-4999-8999-0000000000a1', :alice, '+14155550123', 'in-progress', '3f6c1b2a-9d4e-4c8b-a1f7-5e2d9c0b8a71',
     :provider, '55555555-5555-4555-8555-000000000001', '77777777-7777-4777-8777-000000000001',
     '88888888-8888-4888-8888-000000000002', now() - interval '10 minutes', now() - interval '5 minutes'),
    ('99999999-9999-4999-8999-0000000000a2', :alice, '+14155550124', 'in-progress', '9b2e7c4d-1a3f-4e6b-8c9d-0e1f2a3b4c5d',
     :provider, '55555555-5555-4555-8555-000000000001', NULL, NULL, now() - interval '10 minutes', now() - interval '5 minutes'),
    ('99999999-9999-4999-8999-0000000000a3', :bob, '+12125550124', 'in-progress', 'Jabr9TXYYJHfvl6Syypi88rdAHYHmcq6',
     :provider, NULL, NULL, NULL, now() - interval '10 minutes', now() - interval '5 minutes'),
    ('99999999-9999-4999-8999-0000000000a4', :bob, '+442079460199', 'in-progress', '6a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d',
     :provider, NULL, NULL, NULL, now() - interval '10 minutes', now() - interval '5 minutes'),
    ('99999999-9999-4999-8999-0000000000a5', :bob, '+442079460188', 'in-progress', '0f9e8d7c-6b5a-4f3e-9d2c-1b0a9f8e7d6c',
     :provider, NULL, NULL, NULL, now() - interval '10 minutes', now() - interval '5 minutes');
UPDATE call_templates SET assistant_id = 'f0000000-0000-4000-8000-0000000000aa' WHERE id = '88888888-8888-4888-8888-000000000002';
CREATE TEMP TABLE usage_before AS SELECT user_id, calls_used, minutes_used FROM user_call_usage;
GRANT SELECT ON usage_before TO PUBLIC;

---------------------------------------------------------------- who may deliver results
SELECT tests.as_user(:alice);
SELECT throws_ok(format('SELECT * FROM record_call_result(%L)', :'vapi_report'), '42501', 'record_call_result() is for the dialing worker: call it as service_role or as an admin',
                 'a user cannot post a result');
SELECT tests.as_anon();
SELECT throws_ok(format('SELECT * FROM record_call_result(%L)', :'vapi_report'), '42501', 'permission denied for function record_call_result', 'nor can anon');

---------------------------------------------------------------- bad bodies: the caller's error
SELECT tests.as_service();
SELECT throws_ok('SELECT * FROM record_call_result(NULL)', '22023',
                 'payload is required: the webhook body, as the provider sent it', 'a NULL body is refused');
SELECT throws_ok($$SELECT * FROM record_call_result('{"call_id": "x", "corrected_duration": 1e400, "answered_by": "human"}')$$,
                 '22023', 'payload holds a number beyond the range of a double precision float',
                 'a number beyond a double is refused');
SELECT throws_ok(format('SELECT * FROM record_call_result(%L::jsonb)',
                        '{"call_id": "x", "answered_by": "human", "variables": ' || repeat('[', 300) || repeat(']', 300) || '}'),
                 '22023', 'payload nests deeper than 128 levels', 'a body nested 300 deep is refused');
SELECT throws_ok($$SELECT * FROM record_call_result('{"call_id": "x", "corrected_duration": "1000000000000", "answered_by": "human"}')$$,
                 '22023', 'the call''s duration of 1000000000000 seconds is more than a day (86400 seconds)',
                 'a duration of 10^12 s is refused, so minutes_used cannot overflow');

---------------------------------------------------------------- VAPI end-of-call-report
SELECT is((SELECT (queue_status, result)::text FROM record_call_result(:'vapi_report')), '(completed,recorded)',
          'a VAPI end-of-call-report completes the call');
SELECT is((SELECT (status, duration, recording_url, call_summary, provider_id, phone_number_id, voice_id, assistant_id)::text
           FROM user_call_history WHERE call_id = '3f6c1b2a-9d4e-4c8b-a1f7-5e2d9c0b8a71'),
          format('(completed,95,%s,"%s",%s,55555555-5555-4555-8555-000000000001,77777777-7777-4777-8777-000000000001,f0000000-0000-4000-8000-0000000000aa)',
                 'https://storage.vapi.ai/3f6c1b2a-9d4e-4c8b-a1f7-5e2d9c0b8a71-1795694625688-mono.wav',
                 'Ana Silva confirmed her Tuesday 10:30 appointment.', :provider),
          'one history row with duration, recording, summary, provider, numbers, voice and assistant');
SELECT ok((SELECT transcript LIKE 'AI: Hi, this is Dental Care%' FROM user_call_history
           WHERE call_id = '3f6c1b2a-9d4e-4c8b-a1f7-5e2d9c0b8a71'), 'and the transcript');
SELECT is((SELECT call_data FROM user_call_history WHERE call_id = '3f6c1b2a-9d4e-4c8b-a1f7-5e2d9c0b8a71'),
          :'vapi_report'::jsonb, 'the raw payload is kept in call_data');
SELECT is((SELECT (u.calls_used - b.calls_used, u.minutes_used - b.minutes_used)::text
           FROM user_call_usage u JOIN usage_before b USING (user_id) WHERE u.user_id = :alice),
          '(1,2)', 'usage: one call, and 95 s billed as 2 started minutes');
SELECT is((SELECT calls_remaining FROM user_call_usage WHERE user_id = :alice),
          100 - (SELECT calls_used FROM user_call_usage WHERE user_id = :alice)
              - (SELECT count(*)::int FROM call_queue WHERE user_id = :alice AND status IN ('queued', 'in-progress')),
          'calls_remaining is the limit less used and reserved calls');
SELECT is((SELECT minutes_remaining FROM user_call_usage WHERE user_id = :alice),
          300 - (SELECT minutes_used FROM user_call_usage WHERE user_id = :alice), 'minutes_remaining likewise');

-- Delivered again: nothing changes.
SELECT is((SELECT result FROM record_call_result(:'vapi_report')), 'duplicate', 'the same report again is a duplicate');
SELECT is((SELECT count(*) FROM user_call_history WHERE call_id = '3f6c1b2a-9d4e-4c8b-a1f7-5e2d9c0b8a71'), 1::bigint,
          'still one history row');
SELECT is((SELECT (u.calls_used - b.calls_used, u.minutes_used - b.minutes_used)::text
           FROM user_call_usage u JOIN usage_before b USING (user_id) WHERE u.user_id = :alice),
          '(1,2)', 'and usage is counted once');

---------------------------------------------------------------- retryable results
SELECT is((SELECT (queue_status, result)::text FROM record_call_result(:'vapi_no_answer')), '(queued,recorded)',
          'customer-did-not-answer queues the call again');
SELECT is((SELECT (status, retry_count, last_error, call_id)::text FROM call_queue
           WHERE id = '99999999-9999-4999-8999-0000000000a2'), '(queued,1,customer-did-not-answer,)',
          'with the attempt counted and the reason kept');
SELECT ok((SELECT scheduled_time > now() FROM call_queue WHERE id = '99999999-9999-4999-8999-0000000000a2'),
          'after a backoff');
SELECT is((SELECT status FROM user_call_history WHERE call_id = '9b2e7c4d-1a3f-4e6b-8c9d-0e1f2a3b4c5d'), 'failed',
          'the attempt is in the history as failed');
SELECT is((SELECT (provider_id, phone_number_id)::text FROM user_call_history
           WHERE call_id = '9b2e7c4d-1a3f-4e6b-8c9d-0e1f2a3b4c5d'),
          format('(%s,55555555-5555-4555-8555-000000000001)', :provider),
          'with the provider and provider number that placed it, though the call went back to the queue');
SELECT is((SELECT (u.calls_used - b.calls_used, u.minutes_used - b.minutes_used)::text
           FROM user_call_usage u JOIN usage_before b USING (user_id) WHERE u.user_id = :alice),
          '(1,3)', 'an unanswered call uses no call of the plan, but its 30 s are billed');
SELECT is((SELECT (queue_status, result)::text FROM record_call_result(:'vapi_no_answer')), '(queued,duplicate)',
          'delivered again after the call went back to the queue, it is still a duplicate');
SELECT is((SELECT retry_count FROM call_queue WHERE id = '99999999-9999-4999-8999-0000000000a2'), 1,
          'and the attempt is not counted twice');

---------------------------------------------------------------- Retell: call_ended, then call_analyzed
SELECT is((SELECT (queue_status, result)::text FROM record_call_result(:'retell_ended')), '(completed,recorded)',
          'Retell call_ended completes the call');
SELECT is((SELECT (duration, call_summary)::text FROM user_call_history WHERE call_id = 'Jabr9TXYYJHfvl6Syypi88rdAHYHmcq6'),
          '(153,)', 'no summary yet');
SELECT is((SELECT result FROM record_call_result(:'retell_analyzed')), 'enriched', 'call_analyzed enriches the same row');
SELECT is((SELECT (count(*), min(call_summary))::text FROM user_call_history WHERE call_id = 'Jabr9TXYYJHfvl6Syypi88rdAHYHmcq6'),
          '(1,"Dev Patel is happy with the repair and rated the service five out of five.")', 'one row, now with its summary');
SELECT is((SELECT call_data -> 'call' -> 'call_analysis' ->> 'user_sentiment' FROM user_call_history
           WHERE call_id = 'Jabr9TXYYJHfvl6Syypi88rdAHYHmcq6'), 'Positive', 'call_data holds the richer payload');
SELECT is((SELECT (u.calls_used - b.calls_used, u.minutes_used - b.minutes_used)::text
           FROM user_call_usage u JOIN usage_before b USING (user_id) WHERE u.user_id = :bob),
          '(1,3)', 'bob is billed once: one call, 153 s as 3 minutes');
SELECT is((SELECT result FROM record_call_result(:'retell_analyzed')), 'duplicate', 'call_analyzed again changes nothing');
SELECT is((SELECT result FROM record_call_result(:'retell_ended')), 'duplicate', 'nor does a late call_ended');

---------------------------------------------------------------- Bland
SELECT is((SELECT (queue_status, result)::text FROM record_call_result(:'bland_post_call')), '(completed,recorded)',
          'a Bland post-call body completes the call');
SELECT is((SELECT (duration, call_summary)::text FROM user_call_history WHERE call_id = '6a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d'),
          '(48,"Lee Park confirmed the service went well.")', 'with its duration and summary');
SET LOCAL pg_dialer.max_attempts = 1;
SELECT is((SELECT (queue_status, result)::text FROM record_call_result(:'bland_voicemail')), '(failed,recorded)',
          'voicemail on the last attempt ends the call as failed');
SELECT is((SELECT last_error FROM call_queue WHERE id = '99999999-9999-4999-8999-0000000000a5'), 'voicemail',
          'with the reason');

---------------------------------------------------------------- what is refused or ignored
SELECT count(*) AS history_before FROM user_call_history \gset
SELECT throws_ok(format('SELECT * FROM record_call_result(%L)', jsonb_set(:'vapi_report'::jsonb, '{message,call,id}', '"unknown-call"')),
                 'PT404', 'no call has provider call id unknown-call', 'a result for an unknown call is refused');
SELECT throws_ok($$SELECT * FROM record_call_result('{"hello": "world"}')$$, '22023', 'the payload is not a VAPI end-of-call-report, a Retell call event or a Bland post-call body', 'an unknown payload is refused');
SELECT throws_ok($$SELECT * FROM record_call_result('[1,2,3]')$$, '22023', 'the webhook payload must be a JSON object',
                 'a payload that is no object is refused');
SELECT is((SELECT result FROM record_call_result(:'vapi_status')), 'ignored', 'a VAPI status-update is ignored');
SELECT is((SELECT count(*) FROM user_call_history), :history_before::bigint, 'none of these wrote anything');

---------------------------------------------------------------- compute_remaining_usage
SELECT tests.as_user(:alice);
SELECT is((SELECT (plan_name, calls_limit, calls_used, calls_reserved, calls_remaining, minutes_limit)::text
           FROM compute_remaining_usage()),
          format('(Starter,100,%s,%s,%s,300)', (SELECT calls_used FROM user_call_usage WHERE user_id = :alice),
                 (SELECT count(*) FROM call_queue WHERE user_id = :alice AND status IN ('queued', 'in-progress')),
                 100 - (SELECT calls_used FROM user_call_usage WHERE user_id = :alice)
                     - (SELECT count(*) FROM call_queue WHERE user_id = :alice AND status IN ('queued', 'in-progress'))),
          'alice sees her limits, what she used, what is reserved and what remains');
SELECT is((SELECT (period_start, period_end)::text FROM compute_remaining_usage()),
          (date_trunc('month', now()), date_trunc('month', now()) + interval '1 month')::text, 'for her current period');
SELECT is((SELECT count(*) FROM compute_remaining_usage(at => now() - interval '2 months')), 0::bigint,
          'no row where no subscription covers the time');
SELECT is((SELECT (period_start, calls_used)::text FROM compute_remaining_usage(at => now() + interval '2 months')),
          (date_trunc('month', now()) + interval '2 months', 0)::text,
          'a renewing subscription covers its later periods, with nothing used yet');
SELECT throws_ok(format('SELECT * FROM compute_remaining_usage(%L)', :bob), '42501', 'only an admin or service_role can see usage for another user, not for ' || :bob, 'alice cannot see bob''s usage');
SELECT tests.as_admin();
SELECT is((SELECT calls_used FROM compute_remaining_usage(:bob)), (SELECT calls_used::bigint FROM user_call_usage WHERE user_id = :bob),
          'an admin sees bob''s usage');
SELECT tests.as_owner();
UPDATE subscription_plans SET call_limit = NULL WHERE name = 'Starter';
SELECT tests.as_user(:alice);
SELECT is((SELECT calls_remaining FROM compute_remaining_usage()), NULL, 'a NULL limit is unlimited');
SELECT tests.as_anon();
SELECT throws_ok('SELECT * FROM compute_remaining_usage()', '42501', 'permission denied for function compute_remaining_usage', 'anon has no usage');

---------------------------------------------------------------- rollover_billing_periods: month ends
SELECT tests.as_owner();
INSERT INTO auth.users (id, email) VALUES ('d0000000-0000-4000-8000-000000000001', 'dora@example.com'),
                                          ('d0000000-0000-4000-8000-000000000002', 'eve@example.com'),
                                          ('d0000000-0000-4000-8000-000000000003', 'finn@example.com');
INSERT INTO subscription_plans (id, name, price, "interval", call_limit, minutes_limit) VALUES
    ('11111111-1111-4111-8111-1111111111b1', 'Monthly 50', 20, 'monthly', 50, 120),
    ('11111111-1111-4111-8111-1111111111b2', 'Yearly', 200, 'yearly', NULL, NULL);
INSERT INTO user_subscriptions (id, user_id, plan_id, status, current_period_start, current_period_end, cancel_at_period_end) VALUES
    ('22222222-2222-4222-8222-0000000000d1', 'd0000000-0000-4000-8000-000000000001', '11111111-1111-4111-8111-1111111111b1',
     'active', '2026-12-31 00:00+00', '2027-01-31 00:00+00', false),
    ('22222222-2222-4222-8222-0000000000d2', 'd0000000-0000-4000-8000-000000000002', '11111111-1111-4111-8111-1111111111b1',
     'trialing', '2026-12-31 00:00+00', '2027-01-31 00:00+00', true),
    ('22222222-2222-4222-8222-0000000000d3', 'd0000000-0000-4000-8000-000000000003', '11111111-1111-4111-8111-1111111111b2',
     'active', '2028-02-29 09:30+00', '2029-02-28 09:30+00', false);
-- The fixtures' own subscriptions are outside this story.
UPDATE user_subscriptions SET status = 'past_due' WHERE user_id IN (:alice, :bob);

SELECT tests.as_user(:alice);
SELECT throws_ok($$SELECT * FROM rollover_billing_periods()$$, '42501', 'rollover_billing_periods() is for the dialing worker: call it as service_role or as an admin', 'a user cannot roll periods over');
SELECT tests.as_service();
SELECT set_eq($$SELECT subscription_id, action FROM rollover_billing_periods('2027-01-30 23:59+00')$$,
              $$VALUES ('22222222-2222-4222-8222-0000000000d1'::uuid, 'usage-opened'),
                       ('22222222-2222-4222-8222-0000000000d2'::uuid, 'usage-opened')$$,
              'nothing is renewed before its end, but current periods get their usage rows');
SELECT set_eq($$SELECT subscription_id, action, period_start, period_end FROM rollover_billing_periods('2027-01-31 00:00+00')$$,
              $$VALUES ('22222222-2222-4222-8222-0000000000d1'::uuid, 'renewed', '2027-01-31 00:00+00'::timestamptz, '2027-02-28 00:00+00'::timestamptz),
                       ('22222222-2222-4222-8222-0000000000d2'::uuid, 'canceled', '2026-12-31 00:00+00'::timestamptz, '2027-01-31 00:00+00'::timestamptz),
                       ('22222222-2222-4222-8222-0000000000d1'::uuid, 'usage-opened', '2027-01-31 00:00+00'::timestamptz, '2027-02-28 00:00+00'::timestamptz)$$,
              'on Jan 31 the period moves to Jan 31 - Feb 28; cancel_at_period_end cancels');
SELECT is((SELECT status FROM user_subscriptions WHERE id = '22222222-2222-4222-8222-0000000000d2'), 'canceled',
          'the canceled subscription is canceled');
SELECT is((SELECT (calls_used, minutes_used, calls_remaining, minutes_remaining)::text FROM user_call_usage
           WHERE subscription_id = '22222222-2222-4222-8222-0000000000d1' AND billing_period_start = '2027-01-31 00:00+00'),
          '(0,0,50,120)', 'a fresh usage row starts the new period');
SELECT is((SELECT count(*) FROM rollover_billing_periods('2027-01-31 00:00+00')), 0::bigint, 'running it again changes nothing');
SELECT is((SELECT (period_start, period_end)::text FROM rollover_billing_periods('2027-02-28 00:00+00') WHERE action = 'renewed'),
          ('2027-02-28 00:00+00'::timestamptz, '2027-03-31 00:00+00'::timestamptz)::text, 'Feb 28 moves to Mar 31, not Mar 28');
SELECT is((SELECT (period_start, period_end)::text FROM rollover_billing_periods('2027-03-31 00:00+00') WHERE action = 'renewed'),
          ('2027-03-31 00:00+00'::timestamptz, '2027-04-30 00:00+00'::timestamptz)::text, 'Mar 31 moves to Apr 30');
SELECT is((SELECT (period_start, period_end)::text FROM rollover_billing_periods('2027-08-15 00:00+00') WHERE action = 'renewed'),
          ('2027-07-31 00:00+00'::timestamptz, '2027-08-31 00:00+00'::timestamptz)::text,
          'missed runs: several periods at once, to the one that covers the time');
SELECT is((SELECT count(*) FROM user_call_usage WHERE subscription_id = '22222222-2222-4222-8222-0000000000d1'), 5::bigint,
          'one usage row per period that was current at a run');
SELECT is((SELECT (period_start, period_end)::text FROM rollover_billing_periods('2029-03-01 00:00+00')
           WHERE action = 'renewed' AND subscription_id = '22222222-2222-4222-8222-0000000000d3'),
          ('2029-02-28 09:30+00'::timestamptz, '2030-02-28 09:30+00'::timestamptz)::text,
          'a yearly period anchored on Feb 29 ends on Feb 28 in other years');
SELECT is((SELECT (period_start, period_end)::text FROM rollover_billing_periods('2032-02-28 10:00+00')
           WHERE action = 'renewed' AND subscription_id = '22222222-2222-4222-8222-0000000000d3'),
          ('2031-02-28 09:30+00'::timestamptz, '2032-02-29 09:30+00'::timestamptz)::text, 'and on Feb 29 in leap years');

-- Leap-year month ends: Jan 31 -> Feb 29 -> Mar 31.
SELECT tests.as_owner();
UPDATE user_subscriptions SET current_period_start = '2027-12-31 00:00+00', current_period_end = '2028-01-31 00:00+00',
                              billing_anchor = NULL
WHERE id = '22222222-2222-4222-8222-0000000000d1';
SELECT tests.as_service();
SELECT is((SELECT period_end FROM rollover_billing_periods('2028-01-31 00:00+00') WHERE action = 'renewed'),
          '2028-02-29 00:00+00'::timestamptz, 'Jan 31 moves to Feb 29 in a leap year');
SELECT is((SELECT period_end FROM rollover_billing_periods('2028-02-29 00:00+00') WHERE action = 'renewed'),
          '2028-03-31 00:00+00'::timestamptz, 'and Feb 29 to Mar 31');

SELECT * FROM finish();
ROLLBACK;
