-- The benchmark data set: 10k users with profiles, active subscriptions and
-- usage rows, 3 providers with concurrency limits and 10k numbers across US
-- and UK area codes, voices, a public template with parameters, and 1M
-- history rows (100 per user, over the past year). User n has the id
-- b0000000-0000-4000-8000-<n, 12 digits>. Loaded by the owner.
\set ON_ERROR_STOP 1
SET client_min_messages = warning;

CREATE FUNCTION pg_temp.user_id(n bigint) RETURNS uuid LANGUAGE sql IMMUTABLE
    AS $$ SELECT ('b0000000-0000-4000-8000-' || lpad(n::text, 12, '0'))::uuid $$;

INSERT INTO auth.users (id, email)
SELECT pg_temp.user_id(n), 'user' || n || '@bench.example' FROM generate_series(1, 10000) n;
INSERT INTO user_profiles (id, first_name, email, status)
SELECT pg_temp.user_id(n), 'User ' || n, 'user' || n || '@bench.example', 'active' FROM generate_series(1, 10000) n;

INSERT INTO subscription_plans (id, name, price, "interval", features, call_limit, minutes_limit) VALUES
    ('b1a40000-0000-4000-8000-000000000001', 'Bench Starter', 49, 'monthly', '{"premium_voices": false}', 1000000, 10000000),
    ('b1a40000-0000-4000-8000-000000000002', 'Bench Growth', 199, 'monthly', '{"premium_voices": true}', 1000000, 10000000),
    ('b1a40000-0000-4000-8000-000000000003', 'Bench Scale', 4990, 'yearly', '{"premium_voices": true}', NULL, NULL);
INSERT INTO user_subscriptions (user_id, plan_id, status, current_period_start, current_period_end)
SELECT pg_temp.user_id(n), ('b1a40000-0000-4000-8000-00000000000' || (1 + n % 2))::uuid, 'active',
       date_trunc('month', now()), date_trunc('month', now()) + interval '1 month'
FROM generate_series(1, 10000) n;
INSERT INTO user_call_usage (user_id, subscription_id, billing_period_start, billing_period_end, calls_used, minutes_used)
SELECT s.user_id, s.id, s.current_period_start, s.current_period_end, 20, 45 FROM user_subscriptions s;

INSERT INTO call_service_providers (id, name, api_credentials, type, concurrency_limit, priority) VALUES
    ('b2a40000-0000-4000-8000-000000000001', 'VAPI', '{"api_key": "bench"}', 'voice', 40, 1),
    ('b2a40000-0000-4000-8000-000000000002', 'Retell', '{"api_key": "bench"}', 'voice', 30, 2),
    ('b2a40000-0000-4000-8000-000000000003', 'Bland', '{"api_key": "bench"}', 'voice', 20, 3);

-- 10k numbers: 3334, 3333 and 3333 per provider, over 40 US area codes and London.
INSERT INTO provider_phone_numbers (provider_id, phone_id, country_code, area_code, phone_number, full_number)
SELECT ('b2a40000-0000-4000-8000-00000000000' || (1 + n % 3))::uuid, 'pn_' || n,
       CASE WHEN n % 20 = 0 THEN '44' ELSE '1' END,
       CASE WHEN n % 20 = 0 THEN '20' ELSE a.area END,
       lpad((n % 10000)::text, 7, '5'),
       CASE WHEN n % 20 = 0 THEN '+4420' || lpad(n::text, 8, '7') ELSE '+1' || a.area || lpad((n % 10000)::text, 7, '5') END
FROM generate_series(1, 10000) n,
     LATERAL (SELECT (ARRAY['201','202','203','205','206','207','208','209','210','212','213','214','215','216',
                            '217','218','219','224','225','228','229','231','234','239','240','248','251','252',
                            '253','254','256','260','262','267','269','270','272','276','281','415'])[1 + n % 40] AS area) a;

INSERT INTO voice_options (id, provider_id, voice_id, name, gender, language) VALUES
    ('b3a40000-0000-4000-8000-000000000001', 'b2a40000-0000-4000-8000-000000000001', 'jennifer', 'Jennifer', 'female', 'en-US');
INSERT INTO call_templates (id, name, is_public, created_by, provider_id, assistant_id, voice_id, params, params_order) VALUES
    ('b4a40000-0000-4000-8000-000000000001', 'Bench reminder', true, pg_temp.user_id(1),
     'b2a40000-0000-4000-8000-000000000001', 'b5a40000-0000-4000-8000-000000000001',
     'b3a40000-0000-4000-8000-000000000001',
     '{"patient_name": {"type": "string", "required": true}, "clinic": {"type": "string", "default": "our clinic"}}',
     '["patient_name", "clinic"]');

-- 1M history rows.
INSERT INTO user_call_history (user_id, call_id, provider_id, status, duration, transcript, call_summary, created_at)
SELECT pg_temp.user_id(1 + n % 10000), 'hist-' || n, ('b2a40000-0000-4000-8000-00000000000' || (1 + n % 3))::uuid,
       CASE WHEN n % 10 = 0 THEN 'failed' ELSE 'completed' END, (n % 300),
       'AI: Hello, this is a reminder. User: Thanks.', 'Reminder delivered.',
       now() - (n % 525600) * interval '1 minute'
FROM generate_series(1, 1000000) n;

ANALYZE;
