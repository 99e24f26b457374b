-- The dispatcher on the demo data (scripts/demo.sh starts a local provider
-- stand-in, tests/mock_provider.py, and points the providers' base URLs at
-- it): an admin says which API each provider speaks and publishes agents;
-- customers queue calls; the background worker then places them.
\set ON_ERROR_STOP 1
\set SHOW_CONTEXT never
\pset footer off
\set admin '{"sub":"7c4d9e1f-2a3b-4c5d-8e6f-9a0b1c2d3e03","role":"authenticated","app_metadata":{"role":"admin"}}'
\set maria '{"sub":"0d1e5c2a-7b1f-4c9e-9d2a-5f3b8e6a1c01","role":"authenticated"}'
\set james '{"sub":"3f8a2b6c-1d4e-4f7a-8b9c-2e5d7a1f3b02","role":"authenticated"}'

\echo '== 11. An admin tells pg_dialer which API each provider speaks, and publishes agents'
SET ROLE authenticated;
SELECT set_config('request.jwt.claims', :'admin', false) \g /dev/null
UPDATE call_service_providers SET api = lower(name) WHERE name IN ('VAPI', 'Retell', 'Bland');
-- VAPI takes a voice as <voice provider>:<voice id>
UPDATE voice_options SET voice_id = 'playht:jennifer' WHERE voice_id = 'jennifer-playht';
INSERT INTO call_templates (id, name, description, is_public, created_by, provider_id, provider_agent_id, params, params_order)
VALUES ('7e3a1a7e-0004-4000-8000-00000000e004', 'Delivery follow-up', 'Asks how a delivery went', true,
        '7c4d9e1f-2a3b-4c5d-8e6f-9a0b1c2d3e03', 'c0a11e70-0002-4000-8000-00000000c002', 'agent_7f1e2d3c4b5a',
        '{"customer_name": {"type": "string", "required": true}}', '["customer_name"]'),
       ('7e3a1a7e-0005-4000-8000-00000000e005', 'UK satisfaction survey', 'A three-question survey', true,
        '7c4d9e1f-2a3b-4c5d-8e6f-9a0b1c2d3e03', 'c0a11e70-0003-4000-8000-00000000c003',
        '5e8f3a2b-1c4d-4e6f-9a0b-7c8d9e0f1a2b', '{"customer_name": {"type": "string", "required": true}}', '["customer_name"]');
SELECT name, api FROM call_service_providers ORDER BY priority;
\echo '   the keys were sealed when written: nobody reads them back, and a dump holds only this:'
RESET ROLE;
SELECT name, left(api_credentials::text, 60) || '...' AS api_credentials FROM call_service_providers ORDER BY priority;

\echo '== 12. Customers queue calls (the background worker is woken as each commits)'
SET ROLE authenticated;
SELECT set_config('request.jwt.claims', :'maria', false) \g /dev/null
SELECT recipient_number, status FROM enqueue_call('+1 415 555 0150', template_id => '7e3a1a7e-0001-4000-8000-00000000e001',
    custom_variables => '{"patient_name": "Rosa Diaz", "appointment_time": "Monday 11:00"}');
SELECT recipient_number, status FROM enqueue_call('+1 415 555 0151', template_id => '7e3a1a7e-0001-4000-8000-00000000e001',
    custom_variables => '{"patient_name": "Sam Lee", "appointment_time": "Monday 11:30"}',
    caller_number_id => (SELECT id FROM user_phone_numbers WHERE full_number = '+14155550180'));
SELECT set_config('request.jwt.claims', :'james', false) \g /dev/null
SELECT recipient_number, status FROM enqueue_call('+1 213 555 0152', template_id => '7e3a1a7e-0004-4000-8000-00000000e004',
    custom_variables => '{"customer_name": "Ana Ruiz"}');
SELECT recipient_number, status FROM enqueue_call('+44 20 7946 0153', template_id => '7e3a1a7e-0005-4000-8000-00000000e005',
    custom_variables => '{"customer_name": "Olivia Brown"}');
RESET ROLE;
