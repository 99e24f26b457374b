-- What the extension keeps about its own schema (see src/schema.rs and
-- src/adopt.rs).

-- The listing of what the installed version created (snapshot 'installed'),
-- recorded by CREATE EXTENSION and brought forward by each update, which keeps
-- the listing from before it under 'before update' while it runs.
-- dialer.schema_drift() compares the live database with it. Not dumped:
-- pg_restore runs CREATE EXTENSION, which records it anew.
CREATE TABLE dialer.schema_baseline (
    snapshot   TEXT NOT NULL CHECK (snapshot IN ('installed', 'before update')),
    kind       TEXT NOT NULL,
    object     TEXT NOT NULL,
    definition TEXT NOT NULL,
    PRIMARY KEY (snapshot, kind, object)
);
ALTER TABLE dialer.schema_baseline ENABLE ROW LEVEL SECURITY;
REVOKE ALL ON dialer.schema_baseline FROM PUBLIC;
-- Admins (authenticated, by claims) read it through dialer.schema_drift().
GRANT SELECT ON dialer.schema_baseline TO authenticated;
CREATE POLICY "Admin can read the schema baseline" ON dialer.schema_baseline
    FOR SELECT TO authenticated USING ((SELECT dialer.is_admin()));

-- Every step of adopting hand-built tables (CREATE EXTENSION with
-- pg_dialer.adopt_existing_tables = on): what was found, changed and kept.
CREATE TABLE dialer.adoption_log (
    logged_at  TIMESTAMPTZ NOT NULL DEFAULT pg_catalog.clock_timestamp(),
    table_name TEXT,
    action     TEXT NOT NULL,
    object     TEXT NOT NULL,
    detail     TEXT NOT NULL
);
REVOKE ALL ON dialer.adoption_log FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('dialer.adoption_log', '');

-- Functions: the install and update steps run only inside CREATE EXTENSION
-- and ALTER EXTENSION; the drift report is for admins (and the owner).
REVOKE ALL ON FUNCTION
    dialer.record_schema_baseline(), dialer.schema_update_begin(), dialer.schema_update_end(),
    dialer.adopt_prepare(), dialer.adopt_tables(),
    dialer.schema_listing(), dialer.schema_drift(), dialer.version()
FROM PUBLIC;
GRANT EXECUTE ON FUNCTION dialer.schema_listing(), dialer.schema_drift() TO authenticated;
GRANT EXECUTE ON FUNCTION dialer.version() TO authenticated, service_role;
