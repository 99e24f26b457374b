-- The whole call flow on the demo data, each step as the role that takes it
-- over PostgREST: customers queue calls, the dialing worker claims and places
-- them, provider webhooks report results, customers read history and usage;
-- then a campaign across time zones, each call in its recipient's window.
\set ON_ERROR_STOP 1
\set SHOW_CONTEXT never
\pset footer off
\set maria '{"sub":"0d1e5c2a-7b1f-4c9e-9d2a-5f3b8e6a1c01","role":"authenticated"}'
\set james '{"sub":"3f8a2b6c-1d4e-4f7a-8b9c-2e5d7a1f3b02","role":"authenticated"}'
\set vapi_report `cat demo/payloads/vapi_end_of_call_report.json`
\set vapi_no_answer `cat demo/payloads/vapi_no_answer.json`
\set retell_ended `cat demo/payloads/retell_call_ended.json`
\set retell_analyzed `cat demo/payloads/retell_call_analyzed.json`
\set bland_post_call `cat demo/payloads/bland_post_call.json`

\echo '== 1. Customers queue calls (POST /rpc/enqueue_call with their JWT)'
SET ROLE authenticated;
SELECT set_config('request.jwt.claims', :'maria', false) \g /dev/null
SELECT recipient_number, status, scheduled_time::timestamp(0) AS due
FROM enqueue_call('+1 (415) 555-0142', template_id => '7e3a1a7e-0001-4000-8000-00000000e001',
                  custom_variables => '{"patient_name": "Tom Wu", "appointment_time": "Friday 16:00"}',
                  idempotency_key => 'reminder-tom-wu');
\echo '   the same request again (a client retry) returns the same call:'
SELECT count(*) AS calls_with_that_key FROM (
    SELECT enqueue_call('+1 (415) 555-0142', template_id => '7e3a1a7e-0001-4000-8000-00000000e001',
                        custom_variables => '{"patient_name": "Tom Wu", "appointment_time": "Friday 16:00"}',
                        idempotency_key => 'reminder-tom-wu')) x, call_queue q WHERE q.idempotency_key = 'reminder-tom-wu';
\echo '   bad input is refused, naming what is wrong, and writes nothing:'
\set ON_ERROR_STOP 0
SELECT enqueue_call('+1 (415) 555-0143', template_id => '7e3a1a7e-0001-4000-8000-00000000e001',
                    custom_variables => '{"patient_name": "Kim"}');
SELECT enqueue_call('555-0143');
SELECT enqueue_call('+14155550144', voice_id => 'd01ce000-0002-4000-8000-00000000d002');
\set ON_ERROR_STOP 1
SELECT set_config('request.jwt.claims', :'james', false) \g /dev/null
SELECT recipient_number, status FROM enqueue_call('+1 212 555 0124', template_id => '7e3a1a7e-0002-4000-8000-00000000e002',
                                                  custom_variables => '{"customer_name": "Dev Patel"}');
SELECT recipient_number, status FROM enqueue_call('+44 20 7946 0199', template_id => '7e3a1a7e-0003-4000-8000-00000000e003',
                                                  custom_variables => '{"customer_name": "Lee Park"}');
RESET ROLE;

\echo '== 2. The dialing worker claims due calls (service_role: POST /rpc/claim_due_calls)'
SET ROLE service_role;
SELECT set_config('request.jwt.claims', '{"role":"service_role"}', false) \g /dev/null
CREATE TEMP TABLE claimed AS SELECT * FROM claim_due_calls(10);
SELECT recipient_number, provider_name AS provider, from_number, attempt, external_voice_id AS voice,
       variables
FROM claimed ORDER BY provider_name, recipient_number;

\echo '== 3. It places them and records the providers'' call ids (POST /rpc/mark_call_placed)'
SELECT c.recipient_number, p.call_id AS provider_call_id
FROM claimed c
CROSS JOIN LATERAL mark_call_placed(c.call_queue_id, CASE c.recipient_number
    WHEN '+14155550123' THEN '3f6c1b2a-9d4e-4c8b-a1f7-5e2d9c0b8a71'
    WHEN '+14155550142' THEN '9b2e7c4d-1a3f-4e6b-8c9d-0e1f2a3b4c5d'
    WHEN '+12125550124' THEN 'Jabr9TXYYJHfvl6Syypi88rdAHYHmcq6'
    WHEN '+442079460199' THEN '6a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d' END) p
ORDER BY c.recipient_number;

\echo '== 4. Provider webhooks post their results as delivered (POST /rpc/record_call_result)'
SELECT 'VAPI end-of-call-report' AS webhook, * FROM record_call_result(:'vapi_report')
UNION ALL SELECT 'VAPI report, delivered again', * FROM record_call_result(:'vapi_report')
UNION ALL SELECT 'VAPI customer-did-not-answer', * FROM record_call_result(:'vapi_no_answer')
UNION ALL SELECT 'Retell call_ended', * FROM record_call_result(:'retell_ended')
UNION ALL SELECT 'Retell call_analyzed (later)', * FROM record_call_result(:'retell_analyzed')
UNION ALL SELECT 'Bland post-call', * FROM record_call_result(:'bland_post_call');
RESET ROLE;

\echo '== 5. The queue afterwards'
SELECT u.email, q.recipient_number, q.status, q.retry_count AS attempts_failed, q.last_error,
       q.scheduled_time::timestamp(0) AS next_due
FROM call_queue q JOIN auth.users u ON u.id = q.user_id
ORDER BY u.email, q.recipient_number, q.scheduled_time;

\echo '== 6. Maria reads her history and her remaining usage (RLS: only her own rows)'
SET ROLE authenticated;
SELECT set_config('request.jwt.claims', :'maria', false) \g /dev/null
SELECT status, duration AS seconds, left(call_summary, 55) AS summary, left(recording_url, 40) || '...' AS recording
FROM user_call_history ORDER BY created_at;
SELECT plan_name, calls_limit, calls_used, calls_reserved, calls_remaining, minutes_limit, minutes_used, minutes_remaining
FROM compute_remaining_usage();
SELECT set_config('request.jwt.claims', :'james', false) \g /dev/null
\echo '== 7. James, likewise'
SELECT status, duration AS seconds, left(call_summary, 55) AS summary FROM user_call_history ORDER BY created_at;
SELECT plan_name, calls_limit, calls_used, calls_reserved, calls_remaining, minutes_limit, minutes_used, minutes_remaining
FROM compute_remaining_usage();
RESET ROLE;

\echo '== 8. James runs a campaign across time zones (POST /rpc/enqueue_calls, one request)'
\echo '   each call waits for 08:00-21:00 in its recipient''s own zone (the zone comes from the number)'
SET ROLE authenticated;
SELECT set_config('request.jwt.claims', :'james', false) \g /dev/null
INSERT INTO campaigns (id, user_id, name, template_id, call_window, expires_at) VALUES
    ('ca4a1900-0001-4000-8000-0000000ca001', '3f8a2b6c-1d4e-4f7a-8b9c-2e5d7a1f3b02', 'Winter tire check',
     '7e3a1a7e-0002-4000-8000-00000000e002', '{"hours": [["08:00", "21:00"]]}', now() + interval '7 days');
SELECT r->'queued' AS queued, r->'invalid' AS invalid FROM (
    SELECT enqueue_calls('[{"recipient_number": "+1 808 555 0130", "custom_variables": {"customer_name": "Kai"}},
                           {"recipient_number": "+1 303 555 0131", "custom_variables": {"customer_name": "Rosa"}},
                           {"recipient_number": "+1 212 555 0132", "custom_variables": {"customer_name": "Sam"}},
                           {"recipient_number": "+44 20 7946 0133", "custom_variables": {"customer_name": "Olu"}},
                           {"recipient_number": "+61 2 9374 4134", "custom_variables": {"customer_name": "Mia"}}]',
                         campaign_id => 'ca4a1900-0001-4000-8000-0000000ca001') AS r) x;
SELECT q.recipient_number, z.zone AS recipient_zone, to_char(now() AT TIME ZONE z.zone, 'Dy HH24:MI') AS local_now,
       CASE WHEN q.scheduled_time <= now() THEN 'due now'
            ELSE 'waits until ' || to_char(q.scheduled_time AT TIME ZONE z.zone, 'Dy HH24:MI') || ' local' END AS dialed
FROM call_queue q
JOIN (VALUES ('+18085550130', 'Pacific/Honolulu'), ('+13035550131', 'America/Denver'), ('+12125550132', 'America/New_York'),
             ('+442079460133', 'Europe/London'), ('+61293744134', 'Australia/Sydney')) AS z(number, zone)
  ON z.number = q.recipient_number
WHERE q.campaign_id = 'ca4a1900-0001-4000-8000-0000000ca001'
ORDER BY q.scheduled_time, q.recipient_number;
RESET ROLE;

\echo '== 9. The worker''s next claim takes only the campaign''s calls whose window is open now'
SET ROLE service_role;
SELECT set_config('request.jwt.claims', '{"role":"service_role"}', false) \g /dev/null
SELECT recipient_number, provider_name AS provider, from_number FROM claim_due_calls(10) ORDER BY recipient_number;
RESET ROLE;

\echo '== 10. James sees the campaign''s progress in one query'
SET ROLE authenticated;
SELECT set_config('request.jwt.claims', :'james', false) \g /dev/null
SELECT name, paused, calls, queued, in_progress, completed, failed, canceled, expired, minutes_used
FROM campaign_progress;
RESET ROLE;
