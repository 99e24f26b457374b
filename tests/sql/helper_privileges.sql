-- The helpers in schema dialer are not open to PUBLIC: anon (or any other
-- login role) can execute none of them, and the tenant locks live in a table
-- only the owner may touch.
BEGIN;
SELECT * FROM no_plan();

SELECT is_empty($$
    SELECT p.oid::regprocedure::text FROM pg_proc p, aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a
    WHERE p.pronamespace = 'dialer'::regnamespace AND a.grantee = 0$$,
    'no function in schema dialer is executable by PUBLIC');
SELECT is_empty($$
    SELECT p.oid::regprocedure::text FROM pg_proc p
    WHERE p.pronamespace = 'dialer'::regnamespace AND has_function_privilege('anon', p.oid, 'EXECUTE')$$,
    'anon can execute no function in schema dialer');
SELECT is_empty($$
    SELECT p.oid::regprocedure::text FROM pg_proc p
    WHERE p.pronamespace = 'dialer'::regnamespace AND p.proname IN
          ('record_schema_baseline', 'schema_update_begin', 'schema_update_end', 'adopt_prepare', 'adopt_tables',
           'require_pg_cron')
      AND (has_function_privilege('authenticated', p.oid, 'EXECUTE')
           OR has_function_privilege('service_role', p.oid, 'EXECUTE'))$$,
    'the install steps and the pg_cron check are the owner''s alone');
SELECT ok(has_function_privilege('authenticated', 'dialer.lock_user(uuid)', 'EXECUTE')
          AND NOT (SELECT prosecdef FROM pg_proc WHERE oid = 'dialer.lock_user(uuid)'::regprocedure),
          'signed-in users may take their own lock through dialer.lock_user(), which is no SECURITY DEFINER');
SELECT is_empty($$
    SELECT r FROM unnest(ARRAY['anon', 'authenticated', 'service_role']) r,
                  unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'REFERENCES', 'TRIGGER']) p
    WHERE has_table_privilege(r, 'dialer.user_locks', p)$$,
    'no role but the owner may touch dialer.user_locks (so none can hold a tenant''s lock)');

SELECT is_empty($$
    SELECT p.oid::regprocedure::text FROM pg_proc p
    JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e'
    JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'pg_dialer'
    WHERE p.prosecdef AND (has_function_privilege('anon', p.oid, 'EXECUTE')
                           OR has_function_privilege('authenticated', p.oid, 'EXECUTE'))$$,
    'no SECURITY DEFINER function of pg_dialer is executable by anon or authenticated (Supabase lints 0028, 0029)');
SELECT is_empty($$SELECT extname FROM pg_extension WHERE extnamespace = 'public'::regnamespace AND extname = 'pg_dialer'$$,
                'pg_dialer is not registered in schema public (Supabase lint 0014, extension_in_public)');
SELECT is((SELECT extnamespace::regnamespace::text FROM pg_extension WHERE extname = 'pg_dialer'), 'extensions',
          'but in schema extensions, where Supabase keeps extensions');
SELECT is((SELECT count(*) FROM pg_proc WHERE pronamespace = 'extensions'::regnamespace
           AND oid IN (SELECT objid FROM pg_depend WHERE refobjid = (SELECT oid FROM pg_extension WHERE extname = 'pg_dialer'))),
          0::bigint, 'while what it installs stays in public and dialer');

SELECT * FROM finish();
ROLLBACK;
