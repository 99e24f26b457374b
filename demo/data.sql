-- Demo data: a small outbound-calling business. Three plans, three customers,
-- three voice providers with their numbers and voices, templates, queued
-- calls and some call history. Loaded by the owner (a DBA), as a seed script.

INSERT INTO auth.users (id, email) VALUES
    ('0d1e5c2a-7b1f-4c9e-9d2a-5f3b8e6a1c01', 'maria@dentalcare.example'),
    ('3f8a2b6c-1d4e-4f7a-8b9c-2e5d7a1f3b02', 'james@autoshop.example'),
    ('7c4d9e1f-2a3b-4c5d-8e6f-9a0b1c2d3e03', 'ops@dialer.example');

INSERT INTO subscription_plans (id, name, description, price, "interval", features, call_limit, minutes_limit) VALUES
    ('5a1f0c3e-0001-4000-8000-00000000a001', 'Starter', 'For a single practice', 49.00, 'monthly',
     '{"premium_voices": false, "concurrent_calls": 2}', 200, 400),
    ('5a1f0c3e-0002-4000-8000-00000000a002', 'Growth', 'For growing teams', 199.00, 'monthly',
     '{"premium_voices": true, "concurrent_calls": 10}', 1500, 4000),
    ('5a1f0c3e-0003-4000-8000-00000000a003', 'Scale', 'Unlimited calling, billed yearly', 4990.00, 'yearly',
     '{"premium_voices": true, "concurrent_calls": 50}', NULL, NULL);

-- Maria and James call customers who asked for these calls (reminders,
-- follow-ups), so their default calling window is turned off (call_window,
-- README "Campaigns and calling windows"); James's campaign in
-- demo/flow.sql keeps the 08:00-21:00 window.
INSERT INTO user_profiles (id, first_name, last_name, phone_number, email, address, preferences, status, call_window) VALUES
    ('0d1e5c2a-7b1f-4c9e-9d2a-5f3b8e6a1c01', 'Maria', 'Lopez', '+14155550101', 'maria@dentalcare.example',
     '{"city": "San Francisco", "state": "CA", "country": "US"}', '{"timezone": "America/Los_Angeles"}', 'active',
     '{"always": true}'),
    ('3f8a2b6c-1d4e-4f7a-8b9c-2e5d7a1f3b02', 'James', 'Okafor', '+12125550102', 'james@autoshop.example',
     '{"city": "New York", "state": "NY", "country": "US"}', '{"timezone": "America/New_York"}', 'active',
     '{"always": true}'),
    ('7c4d9e1f-2a3b-4c5d-8e6f-9a0b1c2d3e03', 'Ops', 'Team', NULL, 'ops@dialer.example', NULL, NULL, 'active', NULL);

INSERT INTO user_subscriptions (id, user_id, plan_id, status, stripe_sub_id, current_period_start, current_period_end) VALUES
    ('b5c0e2d1-0001-4000-8000-00000000b001', '0d1e5c2a-7b1f-4c9e-9d2a-5f3b8e6a1c01',
     '5a1f0c3e-0001-4000-8000-00000000a001', 'active', 'sub_1QdentalA',
     date_trunc('month', now()), date_trunc('month', now()) + interval '1 month'),
    ('b5c0e2d1-0002-4000-8000-00000000b002', '3f8a2b6c-1d4e-4f7a-8b9c-2e5d7a1f3b02',
     '5a1f0c3e-0002-4000-8000-00000000a002', 'trialing', NULL,
     date_trunc('day', now()) - interval '3 days', date_trunc('day', now()) + interval '11 days');

INSERT INTO user_call_usage (user_id, subscription_id, billing_period_start, billing_period_end,
                             calls_used, minutes_used, calls_remaining, minutes_remaining)
SELECT s.user_id, s.id, s.current_period_start, s.current_period_end, 2, 4, p.call_limit - 2, p.minutes_limit - 4
FROM user_subscriptions s JOIN subscription_plans p ON p.id = s.plan_id;

INSERT INTO call_service_providers (id, name, api_credentials, type, concurrency_limit, priority) VALUES
    ('c0a11e70-0001-4000-8000-00000000c001', 'VAPI', '{"api_key": "vapi_sk_demo_not_a_real_key"}', 'voice', 10, 1),
    ('c0a11e70-0002-4000-8000-00000000c002', 'Retell', '{"api_key": "key_retell_demo"}', 'voice', 5, 2),
    ('c0a11e70-0003-4000-8000-00000000c003', 'Bland', '{"api_key": "org_bland_demo"}', 'voice', 3, 3);

INSERT INTO provider_phone_numbers (provider_id, phone_id, country_code, area_code, phone_number, full_number, capabilities) VALUES
    ('c0a11e70-0001-4000-8000-00000000c001', 'pn_vapi_sf', '1', '415', '5550170', '+14155550170', '{"voice": true, "sms": false}'),
    ('c0a11e70-0001-4000-8000-00000000c001', 'pn_vapi_nyc', '1', '212', '5550171', '+12125550171', '{"voice": true, "sms": false}'),
    ('c0a11e70-0002-4000-8000-00000000c002', 'pn_retell_la', '1', '213', '5550172', '+12135550172', '{"voice": true}'),
    ('c0a11e70-0003-4000-8000-00000000c003', 'pn_bland_ldn', '44', '20', '79460173', '+442079460173', '{"voice": true}');

INSERT INTO user_phone_numbers (user_id, provider_id, phone_id, country_code, area_code, phone_number, full_number, is_default) VALUES
    ('0d1e5c2a-7b1f-4c9e-9d2a-5f3b8e6a1c01', 'c0a11e70-0001-4000-8000-00000000c001', 'pn_maria_office',
     '1', '415', '5550180', '+14155550180', true);

INSERT INTO voice_options (id, provider_id, voice_id, name, gender, language, accent, description, is_premium) VALUES
    ('d01ce000-0001-4000-8000-00000000d001', 'c0a11e70-0001-4000-8000-00000000c001', 'jennifer-playht', 'Jennifer',
     'female', 'en-US', 'American', 'Warm and friendly', false),
    ('d01ce000-0002-4000-8000-00000000d002', 'c0a11e70-0001-4000-8000-00000000c001', 'eleven-rachel', 'Rachel',
     'female', 'en-US', 'American', 'Premium, expressive', true),
    ('d01ce000-0003-4000-8000-00000000d003', 'c0a11e70-0002-4000-8000-00000000c002', '11labs-Adrian', 'Adrian',
     'male', 'en-GB', 'British', 'Calm and clear', false);

INSERT INTO call_templates (id, name, description, category, tags, is_public, created_by, provider_id,
                            assistant_id, voice_id, params, params_order) VALUES
    ('7e3a1a7e-0001-4000-8000-00000000e001', 'Appointment reminder', 'Reminds a patient of an appointment',
     'healthcare', '["reminder", "appointments"]', true, '7c4d9e1f-2a3b-4c5d-8e6f-9a0b1c2d3e03',
     'c0a11e70-0001-4000-8000-00000000c001', 'a551a7a0-0001-4000-8000-00000000f001',
     'd01ce000-0001-4000-8000-00000000d001',
     '{"patient_name": {"type": "string", "required": true},
       "appointment_time": {"type": "string", "required": true},
       "clinic_name": {"type": "string", "required": false, "default": "our clinic"}}',
     '["patient_name", "appointment_time", "clinic_name"]'),
    ('7e3a1a7e-0002-4000-8000-00000000e002', 'Service follow-up', 'Asks how the repair went',
     'automotive', '["follow-up"]', false, '3f8a2b6c-1d4e-4f7a-8b9c-2e5d7a1f3b02',
     'c0a11e70-0002-4000-8000-00000000c002', 'a551a7a0-0002-4000-8000-00000000f002',
     'd01ce000-0003-4000-8000-00000000d003',
     '{"customer_name": {"type": "string", "required": true}, "rating_scale": {"type": "integer", "default": 5}}',
     '["customer_name", "rating_scale"]'),
    ('7e3a1a7e-0003-4000-8000-00000000e003', 'Service check (UK)', 'Checks in with UK customers after a repair',
     'automotive', '["follow-up", "uk"]', false, '3f8a2b6c-1d4e-4f7a-8b9c-2e5d7a1f3b02',
     'c0a11e70-0003-4000-8000-00000000c003', 'a551a7a0-0003-4000-8000-00000000f003', NULL,
     '{"customer_name": {"type": "string", "required": true}}', '["customer_name"]');

INSERT INTO call_queue (id, user_id, recipient_number, caller_number_id, scheduled_time, status, call_id, provider_id,
                        template_id, voice_id, custom_variables, retry_count, last_error) VALUES
    ('ca11e000-0001-4000-8000-000000000001', '0d1e5c2a-7b1f-4c9e-9d2a-5f3b8e6a1c01', '+14155550123',
     (SELECT id FROM user_phone_numbers WHERE full_number = '+14155550180'), now() - interval '5 minutes', 'queued',
     NULL, NULL, '7e3a1a7e-0001-4000-8000-00000000e001', 'd01ce000-0001-4000-8000-00000000d001',
     '{"patient_name": "Ana Silva", "appointment_time": "Tuesday 10:30"}', 0, NULL),
    ('ca11e000-0002-4000-8000-000000000002', '3f8a2b6c-1d4e-4f7a-8b9c-2e5d7a1f3b02', '+12125550124',
     NULL, now() + interval '2 hours', 'queued', NULL, NULL, '7e3a1a7e-0002-4000-8000-00000000e002',
     'd01ce000-0003-4000-8000-00000000d003', '{"customer_name": "Dev Patel"}', 0, NULL),
    ('ca11e000-0003-4000-8000-000000000003', '0d1e5c2a-7b1f-4c9e-9d2a-5f3b8e6a1c01', '+14155550125',
     NULL, now() - interval '1 day', 'completed', 'vapi-8f2c1b9e', 'c0a11e70-0001-4000-8000-00000000c001',
     '7e3a1a7e-0001-4000-8000-00000000e001', 'd01ce000-0001-4000-8000-00000000d001',
     '{"patient_name": "Tom Wu", "appointment_time": "Monday 09:00"}', 0, NULL),
    ('ca11e000-0004-4000-8000-000000000004', '3f8a2b6c-1d4e-4f7a-8b9c-2e5d7a1f3b02', '+12125550126',
     NULL, now() - interval '20 hours', 'failed', NULL, 'c0a11e70-0002-4000-8000-00000000c002',
     '7e3a1a7e-0002-4000-8000-00000000e002', NULL, '{"customer_name": "Lee Park"}', 3, 'no-answer after 3 attempts');

INSERT INTO user_call_history (user_id, call_queue_id, call_id, provider_id, assistant_id, phone_number_id,
                               caller_number_id, voice_id, transcript, status, duration, recording_url,
                               call_summary, call_data) VALUES
    ('0d1e5c2a-7b1f-4c9e-9d2a-5f3b8e6a1c01', 'ca11e000-0003-4000-8000-000000000003', 'vapi-8f2c1b9e',
     'c0a11e70-0001-4000-8000-00000000c001', 'a551a7a0-0001-4000-8000-00000000f001',
     (SELECT id FROM provider_phone_numbers WHERE phone_id = 'pn_vapi_sf'), NULL,
     'd01ce000-0001-4000-8000-00000000d001',
     'AI: Hi Tom, this is a reminder of your appointment on Monday at 9:00. User: Thanks, I will be there.',
     'completed', 94, 'https://storage.example/recordings/vapi-8f2c1b9e.wav',
     'Patient confirmed the Monday 9:00 appointment.', '{"endedReason": "customer-ended-call", "cost": 0.11}'),
    ('3f8a2b6c-1d4e-4f7a-8b9c-2e5d7a1f3b02', 'ca11e000-0004-4000-8000-000000000004', NULL,
     'c0a11e70-0002-4000-8000-00000000c002', 'a551a7a0-0002-4000-8000-00000000f002', NULL, NULL, NULL,
     NULL, 'failed', 0, NULL, NULL, '{"disconnection_reason": "dial_no_answer"}');
