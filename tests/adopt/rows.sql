-- The team's rows: two customers, a plan each, a provider with numbers and
-- voices, templates, calls queued and finished, their history and usage.
INSERT INTO auth.users (id, email) VALUES
    ('a0000000-0000-4000-8000-00000000000a', 'ada@clinic.example'),
    ('b0000000-0000-4000-8000-00000000000b', 'ben@garage.example');
INSERT INTO subscription_plans (id, name, price, interval, features, call_limit, minutes_limit) VALUES
    ('c0000000-0000-4000-8000-000000000001', 'Starter', 19.00, 'monthly', '{"premium_voices": false}', 100, 300),
    ('c0000000-0000-4000-8000-000000000002', 'Pro', 990.00, 'yearly', '{"premium_voices": true}', NULL, NULL);
INSERT INTO user_profiles (id, first_name, last_name, email, status) VALUES
    ('a0000000-0000-4000-8000-00000000000a', 'Ada', 'Lind', 'ada@clinic.example', 'active'),
    ('b0000000-0000-4000-8000-00000000000b', 'Ben', 'Okafor', 'ben@garage.example', 'active');
INSERT INTO user_subscriptions (id, user_id, plan_id, status, current_period_start, current_period_end) VALUES
    ('d0000000-0000-4000-8000-000000000001', 'a0000000-0000-4000-8000-00000000000a',
     'c0000000-0000-4000-8000-000000000001', 'active', '2026-11-01', '2026-12-01'),
    ('d0000000-0000-4000-8000-000000000002', 'b0000000-0000-4000-8000-00000000000b',
     'c0000000-0000-4000-8000-000000000002', 'active', '2026-01-15', '2027-01-15');
INSERT INTO user_call_usage (id, user_id, subscription_id, billing_period_start, billing_period_end,
                             calls_used, minutes_used, calls_remaining, minutes_remaining) VALUES
    ('e0000000-0000-4000-8000-000000000001', 'a0000000-0000-4000-8000-00000000000a',
     'd0000000-0000-4000-8000-000000000001', '2026-11-01', '2026-12-01', 1, 3, 99, 297);
INSERT INTO call_service_providers (id, name, api_credentials, type, concurrency_limit, priority) VALUES
    ('f0000000-0000-4000-8000-000000000001', 'VAPI', '{"api_key": "team-secret"}', 'voice', 10, 1);
INSERT INTO provider_phone_numbers (id, provider_id, phone_id, country_code, area_code, phone_number, full_number) VALUES
    ('f1000000-0000-4000-8000-000000000001', 'f0000000-0000-4000-8000-000000000001', 'pn_1', '1', '415', '5550100', '+14155550100'),
    ('f1000000-0000-4000-8000-000000000002', 'f0000000-0000-4000-8000-000000000001', 'pn_2', '1', '212', '5550100', '+12125550100');
INSERT INTO user_phone_numbers (id, user_id, provider_id, phone_id, country_code, area_code, phone_number, full_number, is_default) VALUES
    ('f2000000-0000-4000-8000-000000000001', 'a0000000-0000-4000-8000-00000000000a',
     'f0000000-0000-4000-8000-000000000001', 'pn_1', '1', '415', '5550100', '+14155550100', true);
INSERT INTO voice_options (id, provider_id, voice_id, name, gender, language) VALUES
    ('f3000000-0000-4000-8000-000000000001', 'f0000000-0000-4000-8000-000000000001', 'jennifer', 'Jennifer', 'female', 'en-US');
INSERT INTO call_templates (id, name, is_public, created_by, provider_id, assistant_id, voice_id, params, params_order) VALUES
    ('f4000000-0000-4000-8000-000000000001', 'Appointment reminder', false, 'a0000000-0000-4000-8000-00000000000a',
     'f0000000-0000-4000-8000-000000000001', 'f4a00000-0000-4000-8000-000000000001',
     'f3000000-0000-4000-8000-000000000001',
     '{"patient_name": {"type": "string", "required": true}}', '["patient_name"]');
INSERT INTO call_queue (id, user_id, recipient_number, caller_number_id, scheduled_time, status, call_id,
                        provider_id, template_id, voice_id, custom_variables, created_at) VALUES
    ('f5000000-0000-4000-8000-000000000001', 'a0000000-0000-4000-8000-00000000000a', '+14155550142',
     'f2000000-0000-4000-8000-000000000001', '2026-11-20 15:00+00', 'completed', 'vapi-call-1',
     'f0000000-0000-4000-8000-000000000001', 'f4000000-0000-4000-8000-000000000001',
     'f3000000-0000-4000-8000-000000000001', '{"patient_name": "Tom"}', '2026-11-20 14:00+00'),
    ('f5000000-0000-4000-8000-000000000002', 'a0000000-0000-4000-8000-00000000000a', '+14155550143',
     'f2000000-0000-4000-8000-000000000001', '2030-01-10 15:00+00', 'queued', NULL,
     NULL, 'f4000000-0000-4000-8000-000000000001', NULL, '{"patient_name": "Kim"}', '2026-11-20 14:05+00');
INSERT INTO user_call_history (id, user_id, call_queue_id, call_id, provider_id, assistant_id, phone_number_id,
                               caller_number_id, voice_id, transcript, status, duration, call_summary, call_data) VALUES
    ('f6000000-0000-4000-8000-000000000001', 'a0000000-0000-4000-8000-00000000000a',
     'f5000000-0000-4000-8000-000000000001', 'vapi-call-1', 'f0000000-0000-4000-8000-000000000001',
     'f4a00000-0000-4000-8000-000000000001', 'f1000000-0000-4000-8000-000000000001',
     'f2000000-0000-4000-8000-000000000001', 'f3000000-0000-4000-8000-000000000001',
     'AI: Hello Tom...', 'completed', 142, 'Tom confirmed Friday.', '{"cost": 0.12}');
