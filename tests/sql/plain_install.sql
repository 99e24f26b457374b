-- On plain PostgreSQL pg_dialer brings what Supabase would have provided: the
-- roles, and an auth schema with auth.users, auth.uid() and auth.jwt() that
-- belong to the extension (so DROP EXTENSION removes them and pg_restore
-- recreates them) and whose rows pg_dump keeps.
BEGIN;
SELECT * FROM no_plan();

SELECT has_role('anon', 'role anon exists');
SELECT has_role('authenticated', 'role authenticated exists');
SELECT has_role('service_role', 'role service_role exists');
SELECT ok((SELECT rolbypassrls FROM pg_roles WHERE rolname = 'service_role'), 'service_role bypasses RLS');
SELECT ok((SELECT NOT rolbypassrls AND NOT rolcanlogin FROM pg_roles WHERE rolname = 'authenticated'),
          'authenticated neither bypasses RLS nor logs in');

SELECT has_table('auth', 'users', 'auth.users exists');
SELECT col_is_pk('auth', 'users', 'id', 'auth.users has id as primary key');
SELECT has_column('auth', 'users', 'email', 'auth.users has email');
SELECT has_function('auth', 'uid', 'auth.uid() exists');
SELECT has_function('auth', 'jwt', 'auth.jwt() exists');
SELECT is((SELECT array_agg(member ORDER BY member) FROM (
               SELECT pg_describe_object(d.classid, d.objid, 0) AS member FROM pg_depend d
               JOIN pg_extension e ON e.oid = d.refobjid
               WHERE e.extname = 'pg_dialer' AND d.deptype = 'e') m
           -- (PostgreSQL 17 also lists the table's row types as members)
           WHERE member ~ '\mauth\M' AND member NOT LIKE 'type %'),
          ARRAY['function auth.jwt()', 'function auth.uid()', 'schema auth', 'table auth.users'],
          'the auth stand-in belongs to pg_dialer');
SELECT ok((SELECT 'auth.users'::regclass = ANY (extconfig) FROM pg_extension WHERE extname = 'pg_dialer'),
          'pg_dump keeps the rows of auth.users');
SELECT is((SELECT count(*) FROM pg_extension e, unnest(e.extconfig) c WHERE e.extname = 'pg_dialer'), 14::bigint,
          'pg_dump keeps the rows of the eleven tables, campaigns, auth.users and dialer.adoption_log');
SELECT ok(NOT has_table_privilege('authenticated', 'auth.users', 'SELECT'), 'users cannot read auth.users');

SELECT set_config('request.jwt.claims', '{"sub":"a11ce000-0000-4000-8000-000000000001"}', true);
SELECT is(auth.uid(), 'a11ce000-0000-4000-8000-000000000001'::uuid, 'auth.uid() reads sub');
SELECT is(auth.jwt() ->> 'sub', 'a11ce000-0000-4000-8000-000000000001', 'auth.jwt() returns the claims');
SELECT set_config('request.jwt.claims', '', true);
SELECT is(auth.uid(), NULL, 'auth.uid() is NULL without claims');
SELECT is(dialer.uid(), NULL, 'dialer.uid() is NULL without claims');
SELECT set_config('request.jwt.claims', '{"sub":"not-a-uuid"}', true);
SELECT throws_ok('SELECT dialer.uid()', '42501', 'request.jwt.claims: sub "not-a-uuid" is not a uuid',
                 'a malformed sub is refused, not taken for anon');
SELECT set_config('request.jwt.claims', '', true);

DROP EXTENSION pg_dialer;
SELECT hasnt_schema('auth', 'DROP EXTENSION removes the auth stand-in');
SELECT hasnt_schema('dialer', 'and the dialer schema');
SELECT has_role('authenticated', 'roles stay: other databases of the cluster may use them');

SELECT * FROM finish();
ROLLBACK;
