-- updated_at / last_updated are kept by triggers on UPDATE; INSERT keeps the
-- values it is given, so a pg_restore brings timestamps back unchanged; and
-- policies evaluate the identity once per statement (an initPlan).
BEGIN;
\ir ../fixtures/rls.sql
SELECT * FROM no_plan();

CREATE FUNCTION tests.stamp_after_update(tab regclass, col text) RETURNS SETOF timestamptz
    LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('UPDATE %s SET %I = %L', tab, col, '2000-01-01');
    RETURN QUERY EXECUTE format('SELECT DISTINCT %I FROM %s', col, tab);
END $$;

SELECT set_eq(format('SELECT tests.stamp_after_update(%L, %L)', tab, col),
              ARRAY[now()], format('%s.%s is set to now() by every UPDATE', tab, col))
FROM (VALUES ('subscription_plans', 'updated_at'), ('user_profiles', 'updated_at'),
             ('user_subscriptions', 'updated_at'), ('user_call_usage', 'last_updated'),
             ('call_service_providers', 'updated_at'), ('provider_phone_numbers', 'updated_at'),
             ('user_phone_numbers', 'updated_at'), ('voice_options', 'updated_at'),
             ('call_templates', 'updated_at'), ('call_queue', 'updated_at')) AS t(tab, col);

-- Every table that has updated_at or last_updated has its trigger.
SELECT is(
    (SELECT count(*) FROM information_schema.columns c
     WHERE c.table_schema = 'public' AND c.column_name IN ('updated_at', 'last_updated')
       AND NOT EXISTS (SELECT 1 FROM pg_trigger t
                       WHERE t.tgrelid = format('public.%I', c.table_name)::regclass
                         AND t.tgname IN ('set_updated_at', 'set_last_updated'))),
    0::bigint, 'no table with an update timestamp lacks its trigger');

-- A restore inserts rows with their old timestamps: they must stay.
INSERT INTO subscription_plans (name, price, "interval", created_at, updated_at)
    VALUES ('Legacy', 9, 'monthly', '2024-01-02 03:04:05+00', '2024-05-06 07:08:09+00');
SELECT is((SELECT (created_at, updated_at)::text FROM subscription_plans WHERE name = 'Legacy'),
          ('2024-01-02 03:04:05+00'::timestamptz, '2024-05-06 07:08:09+00'::timestamptz)::text,
          'INSERT keeps the timestamps it is given');

-- A user's own update moves updated_at too, through RLS.
ALTER TABLE user_profiles DISABLE TRIGGER set_updated_at;
UPDATE user_profiles SET updated_at = '2000-01-01';
ALTER TABLE user_profiles ENABLE TRIGGER set_updated_at;
SELECT tests.as_user(:alice);
SELECT is(tests.affected($$UPDATE user_profiles SET first_name = 'Al'$$), 1::bigint, 'alice edits her profile');
SELECT is((SELECT updated_at FROM user_profiles), now(), 'her update stamped updated_at');

-- Policies read the identity once per statement.
SELECT tests.as_owner();
CREATE FUNCTION tests.plan_of(query text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE line text; plan text := '';
BEGIN
    FOR line IN EXECUTE 'EXPLAIN (COSTS OFF) ' || query LOOP plan := plan || line || E'\n'; END LOOP;
    RETURN plan;
END $$;
GRANT EXECUTE ON FUNCTION tests.plan_of(text) TO PUBLIC;
SELECT tests.as_user(:alice);
SELECT matches(tests.plan_of('SELECT * FROM user_call_history'), 'InitPlan',
               'the history policy evaluates dialer.uid() as an initPlan');
SELECT matches(tests.plan_of($$UPDATE call_queue SET recipient_number = '+1' $$), 'InitPlan',
               'the queue update policy evaluates dialer.uid() as an initPlan');
SELECT tests.as_owner();

-- Every policy that calls an identity function wraps it in a sub-select.
SELECT is(
    (SELECT array_agg(policyname::text) FROM pg_policies
     WHERE schemaname = 'public'
       AND (regexp_replace(coalesce(qual, '') || ' ' || coalesce(with_check, ''),
                           '\(\s*SELECT\s+(dialer|auth)\.(uid|is_admin)\(\)\s+AS\s+\w+\)', '', 'g')
            ~ '(dialer|auth)\.(uid|is_admin)\(')),
    NULL, 'no policy calls dialer.uid() or dialer.is_admin() once per row');

-- Every INSERT, UPDATE and ALL policy has a WITH CHECK.
SELECT is(
    (SELECT array_agg(policyname::text) FROM pg_policies
     WHERE schemaname = 'public' AND cmd IN ('INSERT', 'UPDATE', 'ALL') AND with_check IS NULL),
    NULL, 'every INSERT and UPDATE policy has a WITH CHECK');

-- Every policy names its roles.
SELECT is(
    (SELECT array_agg(policyname::text) FROM pg_policies
     WHERE schemaname = 'public' AND roles && ARRAY['public'::name]),
    NULL, 'no policy applies to PUBLIC');

SELECT * FROM finish();
ROLLBACK;
