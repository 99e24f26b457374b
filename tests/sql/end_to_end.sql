-- The whole flow, each step as the role that takes it: a user queues a call,
-- the worker claims it and places it, the provider's webhook reports the
-- result, and the user sees the call in history and in remaining usage.
BEGIN;
\ir ../fixtures/rls.sql
SELECT * FROM no_plan();
\set vapi_report `cat demo/payloads/vapi_end_of_call_report.json`

UPDATE call_queue SET status = 'canceled' WHERE status IN ('queued', 'in-progress');
UPDATE call_templates SET assistant_id = 'f0000000-0000-4000-8000-0000000000aa', provider_id = :provider,
       voice_id = '77777777-7777-4777-8777-000000000001',
       params = '{"patient_name": {"type": "string", "required": true}, "clinic": {"type": "string", "default": "Smile Dental"}}'
WHERE id = '88888888-8888-4888-8888-000000000001';

SELECT tests.as_user(:alice);
SELECT calls_remaining AS remaining_before FROM compute_remaining_usage() \gset
SELECT enqueue_call('+1 (415) 555-0123', template_id => '88888888-8888-4888-8888-000000000001',
                    custom_variables => '{"patient_name": "Ana Silva"}', idempotency_key => 'e2e-1') AS queued \gset
SELECT is((SELECT calls_reserved FROM compute_remaining_usage()), 1::bigint, 'queued: the call is reserved');
SELECT is((SELECT calls_remaining FROM compute_remaining_usage()), :remaining_before - 1::bigint, 'and remaining drops by one');

SELECT tests.as_service();
SELECT * INTO TEMP claimed FROM claim_due_calls(5);
SELECT is((SELECT (call_queue_id, from_number, recipient_number, external_voice_id, variables)::text FROM claimed),
          format('(%s,+14155550100,+14155550123,jennifer,"{""clinic"": ""Smile Dental"", ""patient_name"": ""Ana Silva""}")',
                 (:'queued'::call_queue).id),
          'claimed: the worker gets number, voice and variables');
SELECT lives_ok(format('SELECT mark_call_placed(%L, %L)', (:'queued'::call_queue).id, '3f6c1b2a-9d4e-4c8b-a1f7-5e2d9c0b8a71'),
                'placed: the provider''s call id is recorded');
SELECT is((SELECT result FROM record_call_result(:'vapi_report')), 'recorded', 'the webhook reports the result');

SELECT tests.as_user(:alice);
SELECT is((SELECT status FROM call_queue WHERE id = (:'queued'::call_queue).id), 'completed', 'alice sees her call completed');
SELECT is((SELECT (duration, call_summary)::text FROM user_call_history WHERE call_queue_id = (:'queued'::call_queue).id),
          '(95,"Ana Silva confirmed her Tuesday 10:30 appointment.")', 'and its result in her history');
SELECT is((SELECT (calls_reserved, calls_remaining)::text FROM compute_remaining_usage()),
          format('(0,%s)', :remaining_before - 1), 'settled: no longer reserved, one call used');
SELECT is((SELECT minutes_used FROM compute_remaining_usage()), 2::bigint, 'and its 95 s as 2 minutes used');
SELECT tests.as_user(:bob);
SELECT is((SELECT count(*) FROM user_call_history WHERE call_queue_id = (:'queued'::call_queue).id), 0::bigint,
          'bob sees none of it');

SELECT * FROM finish();
ROLLBACK;
