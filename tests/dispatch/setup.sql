-- A world for the dispatcher's tests: one user on an unlimited plan, three
-- providers (VAPI, Retell, Bland: limits 50, 30 and 20) with keys, numbers
-- and a template each, all answered by tests/mock_provider.py.
CREATE EXTENSION IF NOT EXISTS pg_dialer CASCADE;

INSERT INTO auth.users (id, email) VALUES ('d1d1d1d1-0000-4000-8000-000000000001', 'dialer@example.com');
INSERT INTO subscription_plans (id, name, price, "interval", call_limit)
    VALUES ('d1d1d1d1-0000-4000-8000-0000000000a1', 'Unlimited', 99, 'monthly', NULL);
INSERT INTO user_subscriptions (user_id, plan_id, status, current_period_start, current_period_end)
    VALUES ('d1d1d1d1-0000-4000-8000-000000000001', 'd1d1d1d1-0000-4000-8000-0000000000a1', 'active',
            now() - interval '1 day', now() + interval '29 days');

INSERT INTO call_service_providers (id, name, type, concurrency_limit, priority, api, api_credentials) VALUES
    ('d1d1d1d1-0000-4000-8000-0000000000b1', 'VAPI', 'voice', 50, 1, 'vapi', '{"api_key": "vapi-key-7c1e93"}'),
    ('d1d1d1d1-0000-4000-8000-0000000000b2', 'Retell', 'voice', 30, 2, 'retell', '{"api_key": "retell-key-5a0f22"}'),
    ('d1d1d1d1-0000-4000-8000-0000000000b3', 'Bland', 'voice', 20, 3, 'bland', '{"api_key": "bland-key-9d4b71"}');
INSERT INTO provider_phone_numbers (provider_id, phone_id, country_code, area_code, phone_number, full_number)
SELECT p.id, p.name || '-' || n, '1', a.area, '55502' || lpad((p.priority * 10 + n)::text, 2, '0'),
       '+1' || a.area || '55502' || lpad((p.priority * 10 + n)::text, 2, '0')
FROM call_service_providers p, generate_series(1, 3) n,
     LATERAL (SELECT (ARRAY['415', '212', '646'])[n] AS area) a;
INSERT INTO voice_options (id, provider_id, voice_id, name, language) VALUES
    ('d1d1d1d1-0000-4000-8000-0000000000c1', 'd1d1d1d1-0000-4000-8000-0000000000b1', '11labs:21m00Tcm4TlvDq8ikWAM', 'Rachel', 'en-US');
INSERT INTO call_templates (id, name, is_public, provider_id, assistant_id, provider_agent_id, voice_id, params) VALUES
    ('d1d1d1d1-0000-4000-8000-0000000000d1', 'VAPI reminder', true, 'd1d1d1d1-0000-4000-8000-0000000000b1',
     'a551a7a0-0001-4000-8000-00000000f001', NULL, 'd1d1d1d1-0000-4000-8000-0000000000c1',
     '{"patient_name": {"type": "string", "required": true}}'),
    ('d1d1d1d1-0000-4000-8000-0000000000d2', 'Retell follow-up', true, 'd1d1d1d1-0000-4000-8000-0000000000b2',
     NULL, 'agent_8d2f0c1e9b', NULL, '{"patient_name": {"type": "string", "required": true}}'),
    ('d1d1d1d1-0000-4000-8000-0000000000d3', 'Bland survey', true, 'd1d1d1d1-0000-4000-8000-0000000000b3',
     NULL, '5e8f3a2b-1c4d-4e6f-9a0b-7c8d9e0f1a2b', NULL, '{"patient_name": {"type": "string", "required": true}}');

-- $1 calls due now, spread over the three templates (so the providers).
CREATE FUNCTION queue_calls(how_many int, prefix text) RETURNS void LANGUAGE sql AS $$
    INSERT INTO call_queue (user_id, recipient_number, template_id, custom_variables, status, scheduled_time)
    SELECT 'd1d1d1d1-0000-4000-8000-000000000001', '+1415' || prefix || lpad(g::text, 4, '0'),
           ('d1d1d1d1-0000-4000-8000-0000000000d' || (1 + g % 3))::uuid,
           jsonb_build_object('patient_name', 'Patient ' || g), 'queued', now() - interval '1 minute'
    FROM generate_series(1, how_many) g
$$;
