-- pg_dialer 0.1.0 -> 0.2.0. Run by ALTER EXTENSION pg_dialer UPDATE; never
-- edit it once 0.2.0 is released. tests/upgrade.sh proves that a database
-- updated with it describes exactly as a fresh CREATE EXTENSION of 0.2.0.
\echo Use "ALTER EXTENSION pg_dialer UPDATE TO '0.2.0'" to load this file. \quit

---------------------------------------------------------------------------
-- The schema listing and its baseline come first: schema_update_begin()
-- records what 0.1.0 installed before anything below changes it.
---------------------------------------------------------------------------
CREATE FUNCTION dialer."schema_listing"() RETURNS TABLE (
	"kind" TEXT,
	"object" TEXT,
	"definition" TEXT
)
STRICT STABLE
SET search_path TO pg_catalog
LANGUAGE c
AS 'MODULE_PATHNAME', 'schema_listing_wrapper';

CREATE FUNCTION dialer."schema_update_begin"() RETURNS void
STRICT VOLATILE
SET search_path TO pg_catalog
LANGUAGE c
AS 'MODULE_PATHNAME', 'schema_update_begin_wrapper';

CREATE FUNCTION dialer."schema_update_end"() RETURNS void
STRICT VOLATILE
SET search_path TO pg_catalog
LANGUAGE c
AS 'MODULE_PATHNAME', 'schema_update_end_wrapper';

CREATE TABLE dialer.schema_baseline (
    snapshot   TEXT NOT NULL CHECK (snapshot IN ('installed', 'before update')),
    kind       TEXT NOT NULL,
    object     TEXT NOT NULL,
    definition TEXT NOT NULL,
    PRIMARY KEY (snapshot, kind, object)
);
ALTER TABLE dialer.schema_baseline ENABLE ROW LEVEL SECURITY;
REVOKE ALL ON dialer.schema_baseline FROM PUBLIC;
GRANT SELECT ON dialer.schema_baseline TO authenticated;
CREATE POLICY "Admin can read the schema baseline" ON dialer.schema_baseline
    FOR SELECT TO authenticated USING ((SELECT dialer.is_admin()));

SELECT dialer.schema_update_begin();

---------------------------------------------------------------------------
-- Schema tooling: drift report, adoption of hand-built tables, version.
---------------------------------------------------------------------------
CREATE FUNCTION dialer."schema_drift"() RETURNS TABLE (
	"kind" TEXT,
	"object" TEXT,
	"difference" TEXT,
	"expected" TEXT,
	"actual" TEXT
)
STRICT STABLE
SET search_path TO pg_catalog
LANGUAGE c
AS 'MODULE_PATHNAME', 'schema_drift_wrapper';

CREATE FUNCTION dialer."record_schema_baseline"() RETURNS void
STRICT VOLATILE
SET search_path TO pg_catalog
LANGUAGE c
AS 'MODULE_PATHNAME', 'record_schema_baseline_wrapper';

CREATE FUNCTION dialer."version"() RETURNS TABLE (
	"extension_version" TEXT,
	"library_version" TEXT,
	"commit" TEXT,
	"pgrx_version" TEXT,
	"postgres_version" TEXT,
	"postgres_major" INT
)
STRICT STABLE
LANGUAGE c
AS 'MODULE_PATHNAME', 'version_wrapper';

CREATE FUNCTION dialer."adopt_tables"() RETURNS void
STRICT VOLATILE
SET search_path TO pg_catalog
LANGUAGE c
AS 'MODULE_PATHNAME', 'adopt_tables_wrapper';

CREATE FUNCTION dialer."adopt_prepare"() RETURNS void
STRICT VOLATILE
SET search_path TO pg_catalog
LANGUAGE c
AS 'MODULE_PATHNAME', 'adopt_prepare_wrapper';

CREATE TABLE dialer.adoption_log (
    logged_at  TIMESTAMPTZ NOT NULL DEFAULT pg_catalog.clock_timestamp(),
    table_name TEXT,
    action     TEXT NOT NULL,
    object     TEXT NOT NULL,
    detail     TEXT NOT NULL
);
REVOKE ALL ON dialer.adoption_log FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('dialer.adoption_log', '');

REVOKE ALL ON FUNCTION
    dialer.record_schema_baseline(), dialer.schema_update_begin(), dialer.schema_update_end(),
    dialer.adopt_prepare(), dialer.adopt_tables(),
    dialer.schema_listing(), dialer.schema_drift(), dialer.version()
FROM PUBLIC;
GRANT EXECUTE ON FUNCTION dialer.schema_listing(), dialer.schema_drift() TO authenticated;
GRANT EXECUTE ON FUNCTION dialer.version() TO authenticated, service_role;

---------------------------------------------------------------------------
-- Last: the baseline takes what this update changed.
---------------------------------------------------------------------------
SELECT dialer.schema_update_end();
