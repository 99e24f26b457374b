-- A world for the concurrency tests: one user on a plan of 40 calls, three
-- providers with small concurrency limits and a few numbers each, and a log
-- of what every worker claimed.
CREATE EXTENSION IF NOT EXISTS pg_dialer CASCADE;

INSERT INTO auth.users (id, email) VALUES ('c0c0c0c0-0000-4000-8000-000000000001', 'load@example.com');
INSERT INTO subscription_plans (id, name, price, "interval", call_limit)
    VALUES ('c0c0c0c0-0000-4000-8000-0000000000a1', 'Forty', 10, 'monthly', 40);
INSERT INTO user_subscriptions (user_id, plan_id, status, current_period_start, current_period_end)
    VALUES ('c0c0c0c0-0000-4000-8000-000000000001', 'c0c0c0c0-0000-4000-8000-0000000000a1', 'active',
            now() - interval '1 day', now() + interval '29 days');

INSERT INTO call_service_providers (id, name, type, concurrency_limit, priority) VALUES
    ('c0c0c0c0-0000-4000-8000-0000000000b1', 'P1', 'voice', 3, 1),
    ('c0c0c0c0-0000-4000-8000-0000000000b2', 'P2', 'voice', 2, 2),
    ('c0c0c0c0-0000-4000-8000-0000000000b3', 'P3', 'voice', 4, 3);
INSERT INTO provider_phone_numbers (provider_id, phone_id, country_code, area_code, phone_number, full_number)
SELECT p.id, p.name || '-' || n, '1', a.area, '55501' || lpad((p.priority * 10 + n)::text, 2, '0'),
       '+1' || a.area || '55501' || lpad((p.priority * 10 + n)::text, 2, '0')
FROM call_service_providers p, generate_series(1, 3) n,
     LATERAL (SELECT (ARRAY['415', '212', '646'])[n] AS area) a;

-- 300 due calls of another user on an unlimited plan, queued directly by
-- the owner.
INSERT INTO auth.users (id, email) VALUES ('c0c0c0c0-0000-4000-8000-000000000002', 'bulk@example.com');
INSERT INTO subscription_plans (id, name, price, "interval", call_limit)
    VALUES ('c0c0c0c0-0000-4000-8000-0000000000a2', 'Unlimited', 99, 'monthly', NULL);
INSERT INTO user_subscriptions (user_id, plan_id, status, current_period_start, current_period_end)
    VALUES ('c0c0c0c0-0000-4000-8000-000000000002', 'c0c0c0c0-0000-4000-8000-0000000000a2', 'active',
            now() - interval '1 day', now() + interval '29 days');
INSERT INTO call_queue (user_id, recipient_number, status, scheduled_time)
SELECT 'c0c0c0c0-0000-4000-8000-000000000002', '+1415555' || lpad(g::text, 4, '0'), 'queued',
       now() - interval '1 hour' + g * interval '1 second'
FROM generate_series(1, 300) g;

CREATE TABLE claim_log (call_queue_id uuid, provider_id uuid, worker int, claimed_at timestamptz DEFAULT clock_timestamp());
GRANT INSERT, SELECT ON claim_log TO service_role;

\ir ../fixtures/assert_limits.sql

-- Webhook bodies, loaded by concurrency.sh.
CREATE TABLE payloads (name text PRIMARY KEY, body jsonb);
GRANT SELECT ON payloads TO service_role;

-- 60 subscriptions whose monthly period ended at the start of this month.
INSERT INTO auth.users (id, email)
SELECT ('c0c0c0c0-0000-4000-9000-' || lpad(g::text, 12, '0'))::uuid, 'sub' || g || '@example.com'
FROM generate_series(1, 60) g;
INSERT INTO user_subscriptions (user_id, plan_id, status, current_period_start, current_period_end)
SELECT ('c0c0c0c0-0000-4000-9000-' || lpad(g::text, 12, '0'))::uuid, 'c0c0c0c0-0000-4000-8000-0000000000a1',
       'active', date_trunc('month', now()) - interval '1 month', date_trunc('month', now())
FROM generate_series(1, 60) g;

-- Two users on a plan of 100 calls, for concurrent enqueue_calls() requests
-- (at READ COMMITTED and at SERIALIZABLE).
INSERT INTO auth.users (id, email) VALUES
    ('c0c0c0c0-0000-4000-8000-000000000005', 'batch-rc@example.com'),
    ('c0c0c0c0-0000-4000-8000-000000000006', 'batch-ser@example.com');
INSERT INTO subscription_plans (id, name, price, "interval", call_limit)
    VALUES ('c0c0c0c0-0000-4000-8000-0000000000a3', 'Hundred', 20, 'monthly', 100);
INSERT INTO user_subscriptions (user_id, plan_id, status, current_period_start, current_period_end)
SELECT u, 'c0c0c0c0-0000-4000-8000-0000000000a3', 'active', now() - interval '1 day', now() + interval '29 days'
FROM unnest(ARRAY['c0c0c0c0-0000-4000-8000-000000000005', 'c0c0c0c0-0000-4000-8000-000000000006']::uuid[]) u;
