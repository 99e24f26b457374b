-- Roles and identity that the data model builds on.
--
-- On Supabase the roles anon, authenticated and service_role, the auth schema,
-- auth.users, auth.uid() and auth.jwt() exist already: they are used as they
-- are and never replaced. On plain PostgreSQL whatever is missing is created
-- here, so that the same SQL and the same tests run on both. Objects created
-- here belong to the extension: DROP EXTENSION removes them again, and
-- pg_restore recreates them with CREATE EXTENSION.

-- The extension is registered in schema extensions, where Supabase keeps
-- its extensions (its linter warns of one in public); its helpers are in
-- dialer, the data model and the API in public. CREATE EXTENSION puts
-- extensions first on the search_path: public goes first for the rest of this
-- script, so that what is not qualified lands in public, as in 0.1.0.
SELECT pg_catalog.set_config('search_path', 'public, ' || pg_catalog.current_setting('search_path'), true);

DO $bootstrap$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'anon') THEN
        CREATE ROLE anon NOLOGIN NOINHERIT;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'authenticated') THEN
        CREATE ROLE authenticated NOLOGIN NOINHERIT;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'service_role') THEN
        CREATE ROLE service_role NOLOGIN NOINHERIT BYPASSRLS;
    END IF;

    IF to_regnamespace('auth') IS NULL THEN
        CREATE SCHEMA auth;
        GRANT USAGE ON SCHEMA auth TO anon, authenticated, service_role;
    END IF;

    IF to_regclass('auth.users') IS NULL THEN
        -- The few columns of Supabase's auth.users that pg_dialer relies on.
        CREATE TABLE auth.users (
            id                 UUID PRIMARY KEY DEFAULT gen_random_uuid(),
            email              TEXT,
            raw_app_meta_data  JSONB DEFAULT '{}'::jsonb,
            raw_user_meta_data JSONB DEFAULT '{}'::jsonb,
            created_at         TIMESTAMPTZ DEFAULT CURRENT_TIMESTAMP
        );
        REVOKE ALL ON auth.users FROM PUBLIC;
        GRANT SELECT, INSERT, UPDATE, DELETE ON auth.users TO service_role;
        -- Its rows are data the extension cannot recreate: pg_dump keeps them.
        PERFORM pg_catalog.pg_extension_config_dump('auth.users', '');
    END IF;

    IF to_regprocedure('auth.jwt()') IS NULL THEN
        CREATE FUNCTION auth.jwt() RETURNS jsonb
            LANGUAGE sql STABLE PARALLEL SAFE
            SET search_path = ''
        AS $fn$
            SELECT coalesce(nullif(pg_catalog.current_setting('request.jwt.claims', true), ''), '{}')::jsonb
        $fn$;
    END IF;

    IF to_regprocedure('auth.uid()') IS NULL THEN
        CREATE FUNCTION auth.uid() RETURNS uuid
            LANGUAGE sql STABLE PARALLEL SAFE
            SET search_path = ''
        AS $fn$
            SELECT nullif(nullif(pg_catalog.current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub', '')::uuid
        $fn$;
    END IF;
END
$bootstrap$;
