-- What the demo data looks like from each side: the DBA, a customer through
-- row level security, and anon.
\pset footer off
\echo '== Plans'
SELECT name, price, "interval", call_limit, minutes_limit, features->>'premium_voices' AS premium_voices
FROM subscription_plans ORDER BY price;

\echo '== Subscriptions and usage this period'
SELECT u.email, p.name AS plan, s.status, s.current_period_end::date AS period_ends,
       cu.calls_used, cu.calls_remaining, cu.minutes_used, cu.minutes_remaining
FROM user_subscriptions s
JOIN auth.users u ON u.id = s.user_id
JOIN subscription_plans p ON p.id = s.plan_id
LEFT JOIN user_call_usage cu ON cu.subscription_id = s.id
ORDER BY u.email;

\echo '== Providers and their numbers'
SELECT pr.name AS provider, pr.priority, pr.concurrency_limit, n.full_number, n.area_code
FROM call_service_providers pr JOIN provider_phone_numbers n ON n.provider_id = pr.id
ORDER BY pr.priority, n.full_number;

\echo '== Call queue'
SELECT u.email, q.recipient_number, q.status, q.scheduled_time::timestamp(0) AS scheduled, t.name AS template,
       q.retry_count, q.last_error
FROM call_queue q JOIN auth.users u ON u.id = q.user_id LEFT JOIN call_templates t ON t.id = q.template_id
ORDER BY q.scheduled_time;

\echo '== Call history'
SELECT u.email, h.status, h.duration AS seconds, left(h.call_summary, 50) AS summary
FROM user_call_history h JOIN auth.users u ON u.id = h.user_id ORDER BY h.created_at;

\echo '== Maria, signed in (role authenticated, her JWT claims): what row level security lets her see'
BEGIN;
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', '{"sub":"0d1e5c2a-7b1f-4c9e-9d2a-5f3b8e6a1c01","role":"authenticated"}', true) \gset
SELECT 'call_queue' AS "table", count(*) AS rows FROM call_queue
UNION ALL SELECT 'user_call_history', count(*) FROM user_call_history
UNION ALL SELECT 'call_templates (public + own)', count(*) FROM call_templates
UNION ALL SELECT 'user_subscriptions', count(*) FROM user_subscriptions;
\echo '   ...and provider credentials stay hidden even from her SELECT:'
\set ON_ERROR_STOP 0
SELECT api_credentials FROM call_service_providers;
\set ON_ERROR_STOP 1
ROLLBACK;

\echo '== anon (no token): public templates only'
BEGIN;
SET LOCAL ROLE anon;
SELECT name, category FROM call_templates;
ROLLBACK;
