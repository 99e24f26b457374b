-- A user's own rows: user_profiles, user_subscriptions, user_call_usage,
-- user_phone_numbers. Each as anon, the owner, another user, an admin and
-- service_role, with forged ids, owners and status.
BEGIN;
\ir ../fixtures/rls.sql
SELECT * FROM no_plan();

---------------------------------------------------------------- anon
SELECT tests.as_anon();
SELECT throws_ok('SELECT * FROM user_profiles', '42501', 'permission denied for table user_profiles', 'anon cannot read profiles');
SELECT throws_ok('SELECT * FROM user_subscriptions', '42501', 'permission denied for table user_subscriptions', 'anon cannot read subscriptions');
SELECT throws_ok('SELECT * FROM user_call_usage', '42501', 'permission denied for table user_call_usage', 'anon cannot read usage');
SELECT throws_ok('SELECT * FROM user_phone_numbers', '42501', 'permission denied for table user_phone_numbers', 'anon cannot read phone numbers');
SELECT throws_ok($$INSERT INTO user_profiles (id) VALUES ('a11ce000-0000-4000-8000-000000000001')$$, '42501', 'permission denied for table user_profiles',
                 'anon cannot create a profile');
SELECT throws_ok($$UPDATE user_phone_numbers SET is_active = false$$, '42501', 'permission denied for table user_phone_numbers', 'anon cannot update phone numbers');

---------------------------------------------------------------- user_profiles
SELECT tests.as_user(:alice);
SELECT is((SELECT array_agg(first_name) FROM user_profiles), ARRAY['Alice'], 'alice sees only her profile');
SELECT is(tests.affected($$UPDATE user_profiles SET first_name = 'Alicia'$$), 1::bigint,
          'alice updates her own profile, and only hers');
SELECT is(tests.affected($$UPDATE user_profiles SET first_name = 'Hacked' WHERE id = 'b0b00000-0000-4000-8000-000000000002'$$),
          0::bigint, 'alice cannot update bob''s profile');
SELECT throws_ok($$UPDATE user_profiles SET id = 'b0b00000-0000-4000-8000-000000000002'$$, '42501', 'user_profiles.id can only be changed by an admin',
                 'alice cannot move her profile onto bob''s id');
SELECT throws_ok($$UPDATE user_profiles SET status = 'inactive'$$, '42501',
                 'user_profiles.status can only be changed by an admin', 'alice cannot change her own status');
SELECT is(tests.affected($$DELETE FROM user_profiles$$), 0::bigint, 'alice cannot delete profiles');
SELECT throws_ok($$INSERT INTO user_profiles (id, first_name) VALUES ('b0b00000-0000-4000-8000-000000000002', 'Fake')$$,
                 '42501', 'new row violates row-level security policy for table "user_profiles"', 'alice cannot create a profile for bob');

-- A new user creates their own profile, inactive; a forged status is refused.
SELECT tests.as_owner();
INSERT INTO auth.users (id, email) VALUES ('ca201000-0000-4000-8000-000000000004', 'carol@example.com');
SELECT tests.as_user('ca201000-0000-4000-8000-000000000004');
SELECT throws_ok($$INSERT INTO user_profiles (id, first_name, status)
                   VALUES ('ca201000-0000-4000-8000-000000000004', 'Carol', 'active')$$,
                 '42501', 'new row violates row-level security policy for table "user_profiles"', 'a new user cannot make herself active');
SELECT lives_ok($$INSERT INTO user_profiles (id, first_name) VALUES ('ca201000-0000-4000-8000-000000000004', 'Carol')$$,
                'a new user creates her own profile');
SELECT is((SELECT status FROM user_profiles), 'inactive', 'and it starts inactive');

SELECT tests.as_admin();
SELECT is(tests.visible('user_profiles'), 3::bigint, 'an admin sees every profile');
SELECT is(tests.affected($$UPDATE user_profiles SET status = 'active' WHERE id = 'ca201000-0000-4000-8000-000000000004'$$),
          1::bigint, 'an admin activates a profile');
SELECT is(tests.affected($$DELETE FROM user_profiles WHERE id = 'ca201000-0000-4000-8000-000000000004'$$),
          1::bigint, 'an admin deletes a profile');

SELECT tests.as_service();
SELECT is(tests.affected($$UPDATE user_profiles SET status = 'inactive' WHERE id = 'b0b00000-0000-4000-8000-000000000002'$$),
          1::bigint, 'service_role changes a status');

---------------------------------------------------------------- user_subscriptions and user_call_usage
SELECT tests.as_user(:bob);
SELECT is((SELECT array_agg(user_id) FROM user_subscriptions), ARRAY[:bob::uuid], 'bob sees only his subscription');
SELECT is((SELECT array_agg(calls_used) FROM user_call_usage), ARRAY[5], 'bob sees only his usage');
SELECT throws_ok($$INSERT INTO user_subscriptions (user_id, plan_id, status, current_period_start, current_period_end)
                   VALUES ('b0b00000-0000-4000-8000-000000000002', '11111111-1111-4111-8111-111111111111',
                           'active', now(), now() + interval '10 years')$$,
                 '42501', 'new row violates row-level security policy for table "user_subscriptions"', 'bob cannot give himself a subscription');
SELECT is(tests.affected($$UPDATE user_subscriptions SET current_period_end = '2099-01-01'$$), 0::bigint,
          'bob cannot extend his subscription');
SELECT is(tests.affected($$DELETE FROM user_subscriptions$$), 0::bigint, 'bob cannot delete subscriptions');
SELECT throws_ok($$INSERT INTO user_call_usage (user_id, billing_period_start, billing_period_end, calls_remaining)
                   VALUES ('b0b00000-0000-4000-8000-000000000002', now(), now(), 100000)$$,
                 '42501', 'new row violates row-level security policy for table "user_call_usage"', 'bob cannot write himself usage');
SELECT is(tests.affected($$UPDATE user_call_usage SET calls_used = 0, calls_remaining = 100000$$), 0::bigint,
          'bob cannot reset his usage');
SELECT is(tests.affected($$DELETE FROM user_call_usage$$), 0::bigint, 'bob cannot delete usage');

SELECT tests.as_admin();
SELECT is(tests.visible('user_subscriptions'), 2::bigint, 'an admin sees every subscription');
SELECT is(tests.affected($$UPDATE user_subscriptions SET status = 'past_due' WHERE user_id = 'b0b00000-0000-4000-8000-000000000002'$$),
          1::bigint, 'an admin updates a subscription');
SELECT is(tests.affected($$UPDATE user_call_usage SET calls_used = 6 WHERE user_id = 'b0b00000-0000-4000-8000-000000000002'$$),
          1::bigint, 'an admin corrects usage');
SELECT tests.as_service();
SELECT is(tests.visible('user_call_usage'), 2::bigint, 'service_role sees all usage');
SELECT lives_ok($$INSERT INTO user_call_usage (user_id, subscription_id, billing_period_start, billing_period_end)
                  VALUES ('a11ce000-0000-4000-8000-000000000001', '22222222-2222-4222-8222-000000000001',
                          date_trunc('month', now()) + interval '1 month',
                          date_trunc('month', now()) + interval '2 months')$$, 'service_role opens a usage period');

---------------------------------------------------------------- user_phone_numbers
SELECT tests.as_user(:alice);
SELECT is((SELECT array_agg(full_number) FROM user_phone_numbers), ARRAY['+14155550111'], 'alice sees only her numbers');
SELECT lives_ok($$INSERT INTO user_phone_numbers (user_id, provider_id, country_code, area_code, phone_number, full_number)
                  VALUES ('a11ce000-0000-4000-8000-000000000001', '44444444-4444-4444-8444-000000000001',
                          '1', '415', '5550112', '+14155550112')$$, 'alice adds a number of her own');
SELECT throws_ok($$INSERT INTO user_phone_numbers (user_id, provider_id, country_code, area_code, phone_number, full_number)
                   VALUES ('b0b00000-0000-4000-8000-000000000002', '44444444-4444-4444-8444-000000000001',
                           '1', '415', '5550113', '+14155550113')$$,
                 '42501', 'new row violates row-level security policy for table "user_phone_numbers"', 'alice cannot add a number for bob');
SELECT is((SELECT full_number FROM user_phone_numbers WHERE phone_number = '5550114' AND user_id = :alice),
          NULL, '(no such number yet)');
SELECT lives_ok($$INSERT INTO user_phone_numbers (user_id, provider_id, country_code, area_code, phone_number, full_number)
                  VALUES ('a11ce000-0000-4000-8000-000000000001', '44444444-4444-4444-8444-000000000001',
                          '1', '415', '5550114', '+1 (415) 555-0114')$$, 'a number in any spelling is accepted');
SELECT is((SELECT full_number FROM user_phone_numbers WHERE phone_number = '5550114'), '+14155550114',
          '... and stored in E.164');
SELECT throws_ok($$INSERT INTO user_phone_numbers (user_id, provider_id, country_code, area_code, phone_number, full_number)
                   VALUES ('a11ce000-0000-4000-8000-000000000001', '44444444-4444-4444-8444-000000000001',
                           '1', '415', '5550115', 'call me')$$,
                 '22023', 'full_number "call me" is not a phone number', 'a caller number that is no number is refused');
SELECT throws_ok(format($$INSERT INTO user_phone_numbers (user_id, provider_id, country_code, area_code, phone_number, full_number)
                          VALUES ('a11ce000-0000-4000-8000-000000000001', '44444444-4444-4444-8444-000000000001',
                                  '1', '415', '5550116', %L)$$, '+1' || repeat('4', 10000)),
                 '22023', 'full_number is 10002 characters long; a phone number has at most 64',
                 'a 10 kB caller number is refused before it reaches the index');
SELECT throws_ok($$UPDATE user_phone_numbers SET full_number = 'nope' WHERE phone_number = '5550114'$$,
                 '22023', 'full_number "nope" is not a phone number', 'an update is checked too');
SELECT is(tests.affected($$DELETE FROM user_phone_numbers WHERE phone_number = '5550114'$$), 1::bigint,
          'she removes that number again');
SELECT throws_ok($$UPDATE user_phone_numbers SET user_id = 'b0b00000-0000-4000-8000-000000000002'
                   WHERE full_number = '+14155550112'$$, '42501', 'user_phone_numbers.user_id can only be changed by an admin', 'alice cannot give her number to bob');
SELECT throws_ok($$UPDATE user_phone_numbers SET id = 'b0b00000-0000-4000-8000-00000000beef'
                   WHERE full_number = '+14155550112'$$, '42501', 'user_phone_numbers.id can only be changed by an admin',
                 'alice cannot change a number''s id');
SELECT is(tests.affected($$UPDATE user_phone_numbers SET is_default = false WHERE full_number = '+14155550111'$$),
          1::bigint, 'alice updates her own number');
SELECT is(tests.affected($$UPDATE user_phone_numbers SET is_active = false WHERE user_id = 'b0b00000-0000-4000-8000-000000000002'$$),
          0::bigint, 'alice cannot update bob''s number');
SELECT is(tests.affected($$DELETE FROM user_phone_numbers WHERE user_id = 'b0b00000-0000-4000-8000-000000000002'$$),
          0::bigint, 'alice cannot delete bob''s number');
SELECT is(tests.affected($$DELETE FROM user_phone_numbers WHERE full_number = '+14155550112'$$), 1::bigint,
          'alice deletes her own number');
SELECT tests.as_admin();
SELECT is(tests.visible('user_phone_numbers'), 2::bigint, 'an admin sees every user number');
SELECT is(tests.affected($$UPDATE user_phone_numbers SET is_active = false WHERE user_id = 'b0b00000-0000-4000-8000-000000000002'$$),
          1::bigint, 'an admin deactivates bob''s number');
SELECT tests.as_service();
SELECT is(tests.affected($$DELETE FROM user_phone_numbers WHERE user_id = 'b0b00000-0000-4000-8000-000000000002'$$),
          1::bigint, 'service_role deletes a number');

---------------------------------------------------------------- nothing leaked
SELECT tests.as_owner();
SELECT is((SELECT first_name FROM user_profiles WHERE id = :bob), 'Bob', 'bob''s profile is untouched by alice');
SELECT is((SELECT status FROM user_profiles WHERE id = :alice), 'active', 'alice''s status is unchanged');
SELECT is((SELECT current_period_end FROM user_subscriptions WHERE user_id = :bob),
          date_trunc('month', now()) + interval '1 month',
          'bob''s subscription period is unchanged');
SELECT is((SELECT calls_used FROM user_call_usage WHERE user_id = :bob), 6, 'only the admin changed bob''s usage');

SELECT * FROM finish();
ROLLBACK;
