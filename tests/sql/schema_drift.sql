-- dialer.schema_drift(): empty on a fresh install; reports, one row each,
-- what a dashboard or a hurried DBA changes on the extension's objects; and
-- only the owner and admins may run it.
BEGIN;
\ir ../fixtures/rls.sql
SELECT * FROM no_plan();

CREATE FUNCTION tests.drift() RETURNS SETOF text LANGUAGE sql AS $$
    SELECT difference || ' ' || kind || ' ' || object FROM dialer.schema_drift() ORDER BY 1
$$;

SELECT is_empty('SELECT * FROM dialer.schema_drift()', 'no drift on a fresh install (with rows in the tables)');
SELECT ok((SELECT count(*) > 500 FROM dialer.schema_baseline WHERE snapshot = 'installed'),
          'CREATE EXTENSION recorded what it installed');

-- Each change alone is reported, naming the object, then undone.
SAVEPOINT s;
DROP POLICY "Users can view own call queue" ON call_queue;
SELECT results_eq('SELECT * FROM tests.drift()',
    $$VALUES ('missing policy public.call_queue."Users can view own call queue"')$$, 'a dropped policy');
ROLLBACK TO s;
ALTER POLICY "Users can view own profile" ON user_profiles USING (true);
SELECT results_eq('SELECT * FROM tests.drift()',
    $$VALUES ('changed policy public.user_profiles."Users can view own profile"')$$, 'a policy expression changed');
SELECT matches((SELECT actual FROM dialer.schema_drift()), 'using \(true\)', '... showing the new expression');
ROLLBACK TO s;
CREATE POLICY "Anyone may read" ON call_queue FOR SELECT TO anon USING (true);
SELECT results_eq('SELECT * FROM tests.drift()',
    $$VALUES ('extra policy public.call_queue."Anyone may read"')$$, 'a policy added');
ROLLBACK TO s;
ALTER TABLE call_queue DISABLE ROW LEVEL SECURITY;
SELECT results_eq('SELECT * FROM tests.drift()', $$VALUES ('changed relation public.call_queue')$$,
                  'row level security disabled');
ROLLBACK TO s;
ALTER TABLE user_profiles FORCE ROW LEVEL SECURITY;
SELECT results_eq('SELECT * FROM tests.drift()', $$VALUES ('changed relation public.user_profiles')$$,
                  'row level security forced');
ROLLBACK TO s;
DROP INDEX idx_call_queue_status;
SELECT results_eq('SELECT * FROM tests.drift()', $$VALUES ('missing index public.idx_call_queue_status')$$,
                  'an index dropped');
ROLLBACK TO s;
GRANT DELETE ON subscription_plans TO anon;
SELECT results_eq('SELECT * FROM tests.drift()', $$VALUES ('extra privilege table public.subscription_plans to anon')$$,
                  'a privilege granted to anon');
ROLLBACK TO s;
GRANT SELECT (api_credentials) ON call_service_providers TO authenticated;
SELECT results_eq('SELECT * FROM tests.drift()',
    $$VALUES ('extra privilege column public.call_service_providers.api_credentials to authenticated')$$,
    'a column privilege granted to authenticated');
ROLLBACK TO s;
GRANT TRUNCATE ON call_queue TO authenticated;
SELECT results_eq('SELECT * FROM tests.drift()', $$VALUES ('changed privilege table public.call_queue to authenticated')$$,
                  'a privilege widened for authenticated');
ROLLBACK TO s;
ALTER TABLE call_queue ALTER COLUMN retry_count SET DEFAULT 5;
SELECT results_eq('SELECT * FROM tests.drift()', $$VALUES ('changed column public.call_queue.retry_count')$$,
                  'a column default changed');
ROLLBACK TO s;
ALTER TABLE call_queue ALTER COLUMN recipient_number TYPE varchar(64);
SELECT results_eq('SELECT * FROM tests.drift()', $$VALUES ('changed column public.call_queue.recipient_number')$$,
                  'a column type changed');
ROLLBACK TO s;
ALTER TABLE call_queue DISABLE TRIGGER protect_columns;
SELECT results_eq('SELECT * FROM tests.drift()', $$VALUES ('changed trigger public.call_queue.protect_columns')$$,
                  'a trigger disabled');
ROLLBACK TO s;
CREATE OR REPLACE FUNCTION dialer.set_updated_at() RETURNS trigger LANGUAGE plpgsql SET search_path = ''
    AS $$ BEGIN RETURN NEW; END $$;
SELECT results_eq('SELECT * FROM tests.drift()', $$VALUES ('changed function dialer.set_updated_at()')$$,
                  'a function body replaced');
ROLLBACK TO s;
GRANT EXECUTE ON FUNCTION dialer.adopt_tables() TO anon;
SELECT results_eq('SELECT * FROM tests.drift()', $$VALUES ('extra privilege function dialer.adopt_tables() to anon')$$,
                  'EXECUTE granted to anon');
ROLLBACK TO s;
SELECT is_empty('SELECT * FROM dialer.schema_drift()', 'undone, nothing is reported');

-- Who may run it.
SELECT tests.as_admin();
SELECT is_empty('SELECT * FROM dialer.schema_drift()', 'an admin may run the drift report');
SELECT tests.as_user('a11ce000-0000-4000-8000-000000000001');
SELECT throws_ok('SELECT * FROM dialer.schema_drift()', '42501',
                 'dialer.schema_drift() is for the extension''s owner and admins', 'a user may not');
SELECT is_empty($$SELECT * FROM dialer.schema_baseline$$, 'nor read the baseline');
SELECT tests.as_anon();
SELECT throws_ok('SELECT * FROM dialer.schema_drift()', '42501', 'permission denied for function schema_drift', 'anon may not');
RESET ROLE;

-- The install steps run only inside CREATE EXTENSION / ALTER EXTENSION.
SELECT throws_ok('SELECT dialer.record_schema_baseline()', '55000',
                 'dialer.record_schema_baseline() runs only inside the extension''s install and update scripts',
                 'the baseline is not rewritten by hand');
SELECT throws_ok('SELECT dialer.adopt_tables()', '55000', 'dialer.adopt_tables() runs only inside the extension''s install and update scripts', 'adoption runs only inside CREATE EXTENSION');

SELECT * FROM finish();
ROLLBACK;
