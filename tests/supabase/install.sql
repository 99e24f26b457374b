-- pg_dialer on a Supabase-like database (see prepare.sql): it uses the auth
-- schema and roles that are there, replaces none of them, takes back the
-- default privileges Supabase hands out, and leaves auth alone when dropped.
BEGIN;
SELECT * FROM no_plan();

SELECT is((SELECT extnamespace::regnamespace::text FROM pg_extension WHERE extname = 'uuid-ossp'), 'extensions',
          'uuid-ossp stayed in schema extensions');
SELECT is((SELECT extnamespace::regnamespace::text FROM pg_extension WHERE extname = 'pg_dialer'), 'extensions',
          'pg_dialer is registered in schema extensions, like Supabase''s extensions');
SELECT is((SELECT pronamespace::regnamespace::text FROM pg_proc WHERE proname = 'enqueue_call'), 'public',
          'its API is in public, for PostgREST');

-- The existing auth objects are the ones used, not copies.
SELECT is((SELECT array_agg(what ORDER BY what) FROM public.before_install b
           WHERE b.oid = CASE b.what WHEN 'auth.users' THEN 'auth.users'::regclass::oid
                                     WHEN 'auth.uid()' THEN 'auth.uid()'::regprocedure::oid
                                     WHEN 'auth.jwt()' THEN 'auth.jwt()'::regprocedure::oid
                                     WHEN 'auth' THEN 'auth'::regnamespace::oid END),
          ARRAY['auth', 'auth.jwt()', 'auth.uid()', 'auth.users'],
          'auth, auth.users, auth.uid() and auth.jwt() are the ones that were there');
SELECT is((SELECT count(*) FROM pg_depend d JOIN pg_extension e ON e.oid = d.refobjid
           WHERE e.extname = 'pg_dialer' AND d.deptype = 'e'
             AND ((d.classid = 'pg_class'::regclass AND d.objid = 'auth.users'::regclass)
               OR (d.classid = 'pg_namespace'::regclass AND d.objid = 'auth'::regnamespace)
               OR (d.classid = 'pg_proc'::regclass AND d.objid IN ('auth.uid()'::regprocedure, 'auth.jwt()'::regprocedure)))),
          0::bigint, 'none of the auth objects became part of pg_dialer');
SELECT is((SELECT pg_get_userbyid(relowner)::text FROM pg_class WHERE oid = 'auth.users'::regclass),
          'supabase_auth_admin', 'auth.users still belongs to supabase_auth_admin');
SELECT is((SELECT array_agg(DISTINCT c.confrelid::regclass::text) FROM pg_constraint c
           JOIN pg_class t ON t.oid = c.conrelid
           WHERE c.contype = 'f' AND t.relnamespace = 'public'::regnamespace
             AND c.confrelid::regclass::text LIKE 'auth.%'),
          ARRAY['auth.users'], 'foreign keys to users point at the existing auth.users');
SELECT set_eq($$SELECT rolname, rolsuper, rolinherit, rolcreaterole, rolcanlogin, rolbypassrls FROM pg_roles
                WHERE rolname IN ('anon', 'authenticated', 'service_role', 'authenticator')$$,
              'SELECT * FROM public.roles_before', 'the existing roles are unchanged');

-- uuid_generate_v4() from schema extensions works as the default.
SELECT matches((SELECT pg_get_expr(adbin, adrelid) FROM pg_attrdef
                WHERE adrelid = 'subscription_plans'::regclass AND adnum = 1),
               'uuid_generate_v4\(\)', 'ids default to uuid_generate_v4()');
-- Even without extensions on the search_path (pgTAP lives there too, so the
-- insert runs bare: an error stops the script and fails the test).
SET LOCAL search_path = public;
INSERT INTO subscription_plans (name, price, "interval") VALUES ('Hosted', 10, 'monthly');
SET LOCAL search_path = public, extensions;
SELECT isnt((SELECT id FROM subscription_plans WHERE name = 'Hosted'), NULL,
            'a row gets its uuid without schema extensions on the search_path');

-- Supabase's default privileges are taken back.
SELECT is(
    (SELECT array_agg(c.relname::text ORDER BY c.relname) FROM pg_class c
     WHERE c.relnamespace = 'public'::regnamespace AND c.relkind = 'r' AND c.relname NOT IN ('before_install', 'roles_before')
       AND has_table_privilege('anon', c.oid, 'SELECT, INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER')),
    ARRAY['call_templates'], 'anon keeps a privilege on call_templates only');
SELECT ok(NOT has_table_privilege('authenticated', 'user_call_history', 'TRUNCATE'),
          'authenticated cannot TRUNCATE');
SELECT ok(NOT has_column_privilege('authenticated', 'call_service_providers', 'api_credentials', 'SELECT'),
          'authenticated cannot read api_credentials');

-- Identity works with Supabase's own auth.uid() alongside.
INSERT INTO user_profiles (id, first_name) VALUES ('5ba5e000-0000-4000-8000-000000000001', 'First');
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', '{"sub":"5ba5e000-0000-4000-8000-000000000001","role":"authenticated"}', true);
SELECT is((SELECT first_name FROM user_profiles), 'First', 'a Supabase user reads their profile through RLS');
SELECT is(auth.uid(), dialer.uid(), 'auth.uid() and dialer.uid() agree');
RESET ROLE;

-- The drift report is empty on a Supabase install, and auth is not in it.
SELECT is_empty('SELECT * FROM dialer.schema_drift()', 'no schema drift after CREATE EXTENSION on Supabase');
SELECT is_empty($$SELECT * FROM dialer.schema_listing() WHERE object ~ '\mauth\.'$$,
                'the schema listing leaves Supabase''s auth alone');

-- DROP EXTENSION leaves auth and its rows alone.
DROP EXTENSION pg_dialer;
SELECT hasnt_table('public', 'call_queue', 'the tables of pg_dialer are gone');
SELECT has_table('auth', 'users', 'auth.users is still there');
SELECT is((SELECT email::text FROM auth.users), 'first@supabase.example', 'with its rows');
SELECT has_function('auth', 'uid', 'auth.uid() is still there');
SELECT has_function('auth', 'jwt', 'auth.jwt() is still there');
SELECT has_function('auth', 'role', 'auth.role() is still there');
SELECT ok((SELECT count(*) = 3 FROM pg_roles WHERE rolname IN ('anon', 'authenticated', 'service_role')),
          'the roles are still there');
SELECT is((SELECT count(*) FROM pg_extension WHERE extname = 'uuid-ossp'), 1::bigint, 'uuid-ossp is still there');

SELECT * FROM finish();
ROLLBACK;
