-- The catalog tables that users only read and admins manage:
-- subscription_plans, call_service_providers, provider_phone_numbers,
-- voice_options. Each as anon, a user, an admin and service_role.
BEGIN;
\ir ../fixtures/rls.sql
SELECT * FROM no_plan();

---------------------------------------------------------------- anon
SELECT tests.as_anon();
SELECT throws_ok('SELECT * FROM subscription_plans', '42501', 'permission denied for table subscription_plans', 'anon cannot read plans');
SELECT throws_ok('SELECT id, name FROM call_service_providers', '42501', 'permission denied for table call_service_providers', 'anon cannot read providers');
SELECT throws_ok('SELECT * FROM provider_phone_numbers', '42501', 'permission denied for table provider_phone_numbers', 'anon cannot read provider numbers');
SELECT throws_ok('SELECT * FROM voice_options', '42501', 'permission denied for table voice_options', 'anon cannot read voices');
SELECT throws_ok($$INSERT INTO subscription_plans (name, price, "interval") VALUES ('Free', 0, 'monthly')$$,
                 '42501', 'permission denied for table subscription_plans', 'anon cannot create plans');
SELECT throws_ok($$UPDATE voice_options SET is_active = true$$, '42501', 'permission denied for table voice_options', 'anon cannot update voices');
SELECT throws_ok($$DELETE FROM provider_phone_numbers$$, '42501', 'permission denied for table provider_phone_numbers', 'anon cannot delete provider numbers');

---------------------------------------------------------------- a user
SELECT tests.as_user(:alice);
SELECT is(tests.visible('subscription_plans'), 1::bigint, 'a user sees the plans');
SELECT is((SELECT count(*) FROM call_service_providers), 1::bigint, 'a user sees the providers');
SELECT is((SELECT array_agg(full_number) FROM provider_phone_numbers), ARRAY['+14155550100'],
          'a user sees active provider numbers only');
SELECT is((SELECT array_agg(voice_id) FROM voice_options), ARRAY['jennifer'],
          'a user sees active voices only');

SELECT throws_ok($$INSERT INTO subscription_plans (name, price, "interval") VALUES ('Free', 0, 'monthly')$$,
                 '42501', 'new row violates row-level security policy for table "subscription_plans"', 'a user cannot create plans');
SELECT throws_ok($$INSERT INTO call_service_providers (name, type) VALUES ('Rogue', 'voice')$$,
                 '42501', 'new row violates row-level security policy for table "call_service_providers"', 'a user cannot create providers');
SELECT throws_ok($$INSERT INTO provider_phone_numbers (provider_id, country_code, area_code, phone_number, full_number)
                   VALUES ('44444444-4444-4444-8444-000000000001', '1', '415', '5550000', '+14155550000')$$,
                 '42501', 'new row violates row-level security policy for table "provider_phone_numbers"', 'a user cannot add provider numbers');
SELECT throws_ok($$INSERT INTO voice_options (provider_id, voice_id, name, language)
                   VALUES ('44444444-4444-4444-8444-000000000001', 'mine', 'Mine', 'en')$$,
                 '42501', 'new row violates row-level security policy for table "voice_options"', 'a user cannot add voices');

SELECT is(tests.affected($$UPDATE subscription_plans SET price = 0$$), 0::bigint, 'a user cannot update plans');
SELECT is(tests.affected($$UPDATE call_service_providers SET concurrency_limit = 1000$$), 0::bigint,
          'a user cannot update providers');
SELECT is(tests.affected($$UPDATE provider_phone_numbers SET is_active = true$$), 0::bigint,
          'a user cannot update provider numbers');
SELECT is(tests.affected($$UPDATE voice_options SET is_premium = false$$), 0::bigint, 'a user cannot update voices');
SELECT is(tests.affected($$DELETE FROM subscription_plans$$), 0::bigint, 'a user cannot delete plans');
SELECT is(tests.affected($$DELETE FROM voice_options$$), 0::bigint, 'a user cannot delete voices');
SELECT is(tests.affected($$DELETE FROM provider_phone_numbers$$), 0::bigint, 'a user cannot delete provider numbers');

-- Provider credentials are out of reach: not readable, not filterable, not returnable.
SELECT throws_ok('SELECT * FROM call_service_providers', '42501', 'permission denied for table call_service_providers', 'a user cannot SELECT * providers');
SELECT throws_ok('SELECT api_credentials FROM call_service_providers', '42501', 'permission denied for table call_service_providers',
                 'a user cannot read api_credentials');
SELECT throws_ok($$SELECT id FROM call_service_providers WHERE api_credentials->>'api_key' LIKE 'sk-%'$$, '42501', 'permission denied for table call_service_providers',
                 'a user cannot filter on api_credentials');

---------------------------------------------------------------- an admin
SELECT tests.as_admin();
SELECT is(tests.visible('provider_phone_numbers'), 2::bigint, 'an admin sees inactive provider numbers too');
SELECT is(tests.visible('voice_options'), 2::bigint, 'an admin sees inactive voices too');
SELECT lives_ok($$INSERT INTO subscription_plans (id, name, price, "interval", call_limit)
                  VALUES ('11111111-1111-4111-8111-111111111112', 'Pro', 99, 'yearly', 1000)$$,
                'an admin creates a plan');
SELECT is(tests.affected($$UPDATE subscription_plans SET price = 89 WHERE name = 'Pro'$$), 1::bigint,
          'an admin updates a plan');
SELECT is(tests.affected($$DELETE FROM subscription_plans WHERE name = 'Pro'$$), 1::bigint, 'an admin deletes a plan');
SELECT lives_ok($$INSERT INTO call_service_providers (id, name, type, api_credentials)
                  VALUES ('44444444-4444-4444-8444-000000000002', 'Retell', 'voice', '{"api_key":"key_retell"}')$$,
                'an admin creates a provider with credentials');
SELECT is(tests.affected($$UPDATE call_service_providers SET api_credentials = '{"api_key":"rotated"}'
                           WHERE id = '44444444-4444-4444-8444-000000000002'$$), 1::bigint,
          'an admin rotates credentials');
SELECT throws_ok('SELECT api_credentials FROM call_service_providers', '42501', 'permission denied for table call_service_providers',
                 'an admin cannot read api_credentials either');
SELECT throws_ok($$UPDATE call_service_providers SET priority = 2 RETURNING *$$, '42501', 'permission denied for table call_service_providers',
                 'an admin cannot get api_credentials back through RETURNING');
SELECT is(tests.affected($$UPDATE provider_phone_numbers SET is_active = true
                           WHERE id = '55555555-5555-4555-8555-000000000002'$$), 1::bigint,
          'an admin reactivates a provider number');
SELECT lives_ok($$INSERT INTO voice_options (provider_id, voice_id, name, language, is_premium)
                  VALUES ('44444444-4444-4444-8444-000000000001', 'premium-1', 'Premium', 'en-GB', true)$$,
                'an admin adds a voice');
SELECT is(tests.affected($$DELETE FROM voice_options WHERE voice_id = 'premium-1'$$), 1::bigint,
          'an admin deletes a voice');
SELECT is(tests.affected($$DELETE FROM call_service_providers WHERE id = '44444444-4444-4444-8444-000000000002'$$),
          1::bigint, 'an admin deletes a provider');

---------------------------------------------------------------- a forged admin
SELECT tests.act_as('authenticated', jsonb_build_object('sub', :alice, 'role', 'authenticated',
                    'user_metadata', jsonb_build_object('role', 'admin')));
SELECT is(tests.affected($$UPDATE subscription_plans SET price = 0$$), 0::bigint,
          'user_metadata.role = admin makes no admin');
SELECT tests.act_as('authenticated', jsonb_build_object('sub', :alice, 'role', 'admin'));
SELECT is(tests.affected($$DELETE FROM voice_options$$), 0::bigint, 'a top-level role claim makes no admin');

---------------------------------------------------------------- service_role
SELECT tests.as_service();
SELECT is((SELECT (api_credentials ? 'pg_dialer_sealed') AND strpos(api_credentials::text, 'sk-secret-vapi') = 0
           FROM call_service_providers WHERE id = :provider), true,
          'service_role reads api_credentials, sealed: no key in clear');
SELECT is(tests.visible('provider_phone_numbers'), 2::bigint, 'service_role sees every provider number');
SELECT is(tests.visible('voice_options'), 2::bigint, 'service_role sees every voice');
SELECT lives_ok($$INSERT INTO subscription_plans (name, price, "interval") VALUES ('Team', 199, 'monthly')$$,
                'service_role creates a plan');
SELECT is(tests.affected($$UPDATE call_service_providers SET concurrency_limit = 10$$), 1::bigint,
          'service_role updates providers');
SELECT is(tests.affected($$DELETE FROM subscription_plans WHERE name = 'Team'$$), 1::bigint,
          'service_role deletes a plan');

---------------------------------------------------------------- nothing leaked
SELECT tests.as_owner();
SELECT is((SELECT price FROM subscription_plans WHERE name = 'Starter'), 29.00::numeric(10,2),
          'the plan price users tried to change is intact');
SELECT is((SELECT count(*) FROM voice_options WHERE voice_id IN ('jennifer', 'retired')), 2::bigint,
          'the voices users tried to delete are intact');
SELECT is((SELECT concurrency_limit FROM call_service_providers WHERE id = :provider), 10,
          'only service_role changed the concurrency limit');
SELECT is((SELECT count(*) FROM subscription_plans), 1::bigint, 'only the original plan is left');
SELECT is((SELECT count(*) FROM provider_phone_numbers), 2::bigint, 'provider numbers are intact');

SELECT * FROM finish();
ROLLBACK;
