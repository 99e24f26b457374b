//! What the extension installed, as a normalized listing, and how the live
//! database drifted from it.
//!
//! `dialer.schema_listing()` describes, one row per object or property, every
//! object of the extension and everything attached to its tables: columns with
//! types and defaults, constraints, indexes, policies, triggers, rules,
//! privileges, functions with their full definitions, membership and
//! `pg_extension_config_dump` registrations. The same listing serves three
//! purposes:
//! - `CREATE EXTENSION` records it as the baseline of the installed version
//!   (`dialer.schema_baseline`);
//! - `ALTER EXTENSION ... UPDATE` replaces the baseline rows of exactly the
//!   objects the update script changed (so drift that happened before the
//!   update stays reported);
//! - `dialer.schema_drift()` compares the live listing with the baseline, and
//!   the upgrade test compares an upgraded database with a fresh install.

use pgrx::prelude::*;

/// The listing. Runs with `search_path = pg_catalog`, so every name outside
/// `pg_catalog` is printed schema-qualified, the same way in every session.
const LISTING: &str = r#"
WITH ext AS (
    SELECT oid, extname, extversion, extrelocatable, extnamespace, extconfig, extcondition
    FROM pg_extension WHERE extname = 'pg_dialer'
), members AS (
    SELECT d.classid, d.objid
    FROM pg_depend d JOIN ext ON d.refobjid = ext.oid
    WHERE d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e'
), rels AS (
    SELECT c.oid, c.relkind, c.relowner, c.relacl, c.relrowsecurity, c.relforcerowsecurity,
           c.reloptions, c.relpersistence, c.relreplident, format('%I.%I', n.nspname, c.relname) AS name
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.oid IN (SELECT objid FROM members WHERE classid = 'pg_class'::regclass)
), procs AS (
    SELECT p.oid, p.prokind, p.proowner, p.proacl, p.oid::regprocedure::text AS name
    FROM pg_proc p
    WHERE p.oid IN (SELECT objid FROM members WHERE classid = 'pg_proc'::regclass)
), schemas AS (
    SELECT s.oid, s.nspowner, s.nspacl, quote_ident(s.nspname) AS name
    FROM pg_namespace s
    WHERE s.oid IN (SELECT objid FROM members WHERE classid = 'pg_namespace'::regclass)
       OR s.oid = (SELECT extnamespace FROM ext)
), grants AS (
    SELECT 'table ' || r.name AS object, r.relacl AS acl,
           acldefault(CASE WHEN r.relkind = 'S' THEN 's' ELSE 'r' END::"char", r.relowner) AS dflt
    FROM rels r
    UNION ALL
    SELECT 'column ' || r.name || '.' || quote_ident(a.attname), a.attacl, NULL
    FROM rels r JOIN pg_attribute a ON a.attrelid = r.oid
    WHERE a.attnum > 0 AND NOT a.attisdropped AND a.attacl IS NOT NULL
    UNION ALL
    SELECT 'function ' || p.name, p.proacl, acldefault('f', p.proowner) FROM procs p
    UNION ALL
    SELECT 'schema ' || s.name, s.nspacl, acldefault('n', s.nspowner) FROM schemas s
)
-- The version is left out: ALTER EXTENSION sets it after its script ran.
SELECT 'extension' AS kind, e.extname::text AS object,
       format('schema %s, relocatable %s', e.extnamespace::regnamespace, e.extrelocatable)
           AS definition
FROM ext e
UNION ALL
SELECT 'member', pg_describe_object(m.classid, m.objid, 0), '' FROM members m
UNION ALL
SELECT 'config dump', c.tbl::regclass::text, coalesce(e.extcondition[c.i], '')
FROM ext e, unnest(e.extconfig) WITH ORDINALITY AS c(tbl, i)
UNION ALL
SELECT 'relation', r.name,
       format('kind %s, owner %s, row level security %s, forced %s, persistence %s, replica identity %s, '
              'options %s, inherits %s, inherited by %s',
              r.relkind, pg_get_userbyid(r.relowner), r.relrowsecurity, r.relforcerowsecurity,
              r.relpersistence, r.relreplident, coalesce(r.reloptions::text, 'none'),
              coalesce((SELECT string_agg(i.inhparent::regclass::text, ', ' ORDER BY i.inhseqno)
                        FROM pg_inherits i WHERE i.inhrelid = r.oid), 'none'),
              coalesce((SELECT string_agg(i.inhrelid::regclass::text, ', ' ORDER BY 1)
                        FROM pg_inherits i WHERE i.inhparent = r.oid), 'none'))
FROM rels r
UNION ALL
SELECT 'view', r.name, pg_get_viewdef(r.oid) FROM rels r WHERE r.relkind IN ('v', 'm')
UNION ALL
SELECT 'column', r.name || '.' || quote_ident(a.attname),
       format_type(a.atttypid, a.atttypmod)
       || CASE WHEN a.attcollation <> t.typcollation THEN ' collate ' || a.attcollation::regcollation::text ELSE '' END
       || CASE WHEN a.attnotnull THEN ' not null' ELSE '' END
       || coalesce(' default ' || pg_get_expr(d.adbin, d.adrelid), '')
       || CASE WHEN a.attidentity <> '' THEN ' identity ' || a.attidentity::text ELSE '' END
       || CASE WHEN a.attgenerated <> '' THEN ' generated ' || a.attgenerated::text ELSE '' END
FROM rels r
JOIN pg_attribute a ON a.attrelid = r.oid AND a.attnum > 0 AND NOT a.attisdropped
JOIN pg_type t ON t.oid = a.atttypid
LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
UNION ALL
SELECT 'constraint', r.name || '.' || quote_ident(c.conname),
       pg_get_constraintdef(c.oid) || CASE WHEN c.convalidated THEN '' ELSE ' (not validated)' END
FROM rels r JOIN pg_constraint c ON c.conrelid = r.oid
UNION ALL
SELECT 'index', i.indexrelid::regclass::text,
       pg_get_indexdef(i.indexrelid) || CASE WHEN i.indisvalid THEN '' ELSE ' (invalid)' END
FROM rels r JOIN pg_index i ON i.indrelid = r.oid
UNION ALL
SELECT 'policy', r.name || '.' || quote_ident(p.polname),
       format('%s for %s to %s using (%s) with check (%s)',
              CASE WHEN p.polpermissive THEN 'permissive' ELSE 'restrictive' END,
              CASE p.polcmd WHEN 'r' THEN 'select' WHEN 'a' THEN 'insert' WHEN 'w' THEN 'update'
                            WHEN 'd' THEN 'delete' ELSE 'all' END,
              (SELECT string_agg(CASE WHEN rl = 0 THEN 'public' ELSE quote_ident(pg_get_userbyid(rl)) END,
                                 ', ' ORDER BY 1)
               FROM unnest(p.polroles) AS rl),
              pg_get_expr(p.polqual, p.polrelid), pg_get_expr(p.polwithcheck, p.polrelid))
FROM rels r JOIN pg_policy p ON p.polrelid = r.oid
UNION ALL
SELECT 'trigger', r.name || '.' || quote_ident(t.tgname),
       pg_get_triggerdef(t.oid) || ' (enabled ' || t.tgenabled::text || ')'
FROM rels r JOIN pg_trigger t ON t.tgrelid = r.oid AND NOT t.tgisinternal
UNION ALL
SELECT 'rule', r.name || '.' || quote_ident(w.rulename),
       pg_get_ruledef(w.oid) || ' (enabled ' || w.ev_enabled::text || ')'
FROM rels r JOIN pg_rewrite w ON w.ev_class = r.oid AND w.rulename <> '_RETURN'
UNION ALL
SELECT 'function', p.name,
       CASE WHEN p.prokind = 'a' THEN 'aggregate' ELSE pg_get_functiondef(p.oid) END
       || 'owner ' || pg_get_userbyid(p.proowner)
FROM procs p
UNION ALL
SELECT 'schema', s.name, 'owner ' || pg_get_userbyid(s.nspowner) FROM schemas s
UNION ALL
SELECT 'privilege', g.object || ' to ' || x.grantee, x.privileges
FROM grants g, LATERAL (
    SELECT CASE WHEN a.grantee = 0 THEN 'public' ELSE quote_ident(pg_get_userbyid(a.grantee)) END AS grantee,
           string_agg(a.privilege_type || CASE WHEN a.is_grantable THEN ' with grant option' ELSE '' END,
                      ', ' ORDER BY a.privilege_type) AS privileges
    FROM aclexplode(coalesce(g.acl, g.dflt)) a
    GROUP BY a.grantee
) x
"#;

#[pg_schema]
mod dialer {
    use super::LISTING;
    use crate::errors::spi;
    use pgrx::prelude::*;

    /// Every object of the extension and what is attached to its tables, one
    /// row per object or property, with a definition that changes whenever
    /// the object does.
    #[pg_extern(stable)]
    #[search_path(pg_catalog)]
    fn schema_listing() -> TableIterator<
        'static,
        (
            name!(kind, String),
            name!(object, String),
            name!(definition, String),
        ),
    > {
        let rows = spi(Spi::connect(|client| {
            client
                .select(&format!("{LISTING} ORDER BY 1, 2"), None, &[])?
                .map(|row| {
                    Ok((
                        row.get::<String>(1)?.unwrap_or_default(),
                        row.get::<String>(2)?.unwrap_or_default(),
                        row.get::<String>(3)?.unwrap_or_default(),
                    ))
                })
                .collect::<Result<Vec<_>, pgrx::spi::SpiError>>()
        }));
        TableIterator::new(rows)
    }

    /// Where the live database no longer matches what the installed version
    /// of pg_dialer created (or adopted): `missing` objects, `extra` ones and
    /// `changed` definitions, one row each. Empty after `CREATE EXTENSION` and
    /// after `ALTER EXTENSION pg_dialer UPDATE`. For the extension's owner, a
    /// superuser and admins.
    #[pg_extern(stable)]
    #[search_path(pg_catalog)]
    #[allow(clippy::type_complexity)]
    fn schema_drift() -> TableIterator<
        'static,
        (
            name!(kind, String),
            name!(object, String),
            name!(difference, String),
            name!(expected, Option<String>),
            name!(actual, Option<String>),
        ),
    > {
        super::require_owner_or_admin("schema_drift");
        let rows = spi(Spi::connect(|client| {
            client
                .select(
                    "SELECT kind, object,
                            CASE WHEN l.definition IS NULL THEN 'missing'
                                 WHEN b.definition IS NULL THEN 'extra'
                                 ELSE 'changed' END,
                            b.definition, l.definition
                     FROM (SELECT kind, object, definition FROM dialer.schema_baseline
                           WHERE snapshot = 'installed') b
                     FULL JOIN dialer.schema_listing() l USING (kind, object)
                     WHERE b.definition IS DISTINCT FROM l.definition
                     ORDER BY 1, 2",
                    None,
                    &[],
                )?
                .map(|row| {
                    Ok((
                        row.get::<String>(1)?.unwrap_or_default(),
                        row.get::<String>(2)?.unwrap_or_default(),
                        row.get::<String>(3)?.unwrap_or_default(),
                        row.get::<String>(4)?,
                        row.get::<String>(5)?,
                    ))
                })
                .collect::<Result<Vec<_>, pgrx::spi::SpiError>>()
        }));
        TableIterator::new(rows)
    }

    /// Records the live listing as the baseline of what is installed; the last
    /// step of `CREATE EXTENSION`.
    #[pg_extern(volatile)]
    #[search_path(pg_catalog)]
    fn record_schema_baseline() {
        super::require_extension_script("record_schema_baseline");
        spi(Spi::run(
            "DELETE FROM dialer.schema_baseline;
             INSERT INTO dialer.schema_baseline (snapshot, kind, object, definition)
             SELECT 'installed', kind, object, definition FROM dialer.schema_listing()",
        ));
    }

    /// The first step of an update script: remembers the listing before the
    /// update changes anything. A database that has no baseline yet (one
    /// created by 0.1.0) takes this listing as its baseline.
    #[pg_extern(volatile)]
    #[search_path(pg_catalog)]
    fn schema_update_begin() {
        super::require_extension_script("schema_update_begin");
        spi(Spi::run(
            "DELETE FROM dialer.schema_baseline WHERE snapshot = 'before update';
             INSERT INTO dialer.schema_baseline (snapshot, kind, object, definition)
             SELECT 'before update', kind, object, definition FROM dialer.schema_listing();
             INSERT INTO dialer.schema_baseline (snapshot, kind, object, definition)
             SELECT 'installed', kind, object, definition FROM dialer.schema_baseline
             WHERE snapshot = 'before update'
               AND NOT EXISTS (SELECT FROM dialer.schema_baseline WHERE snapshot = 'installed')",
        ));
    }

    /// The last step of an update script: the objects whose listing the update
    /// changed take their new definitions into the baseline; every other
    /// object keeps its baseline, so drift from before the update still shows.
    #[pg_extern(volatile)]
    #[search_path(pg_catalog)]
    fn schema_update_end() {
        super::require_extension_script("schema_update_end");
        // The objects whose listing differs from the one before the update.
        let touched = "SELECT kind, object
             FROM (SELECT kind, object, definition FROM dialer.schema_baseline
                   WHERE snapshot = 'before update') b
             FULL JOIN dialer.schema_listing() l USING (kind, object)
             WHERE b.definition IS DISTINCT FROM l.definition";
        spi(Spi::run(&format!(
            "DELETE FROM dialer.schema_baseline b USING ({touched}) t
             WHERE b.snapshot = 'installed' AND (b.kind, b.object) = (t.kind, t.object);
             INSERT INTO dialer.schema_baseline (snapshot, kind, object, definition)
             SELECT 'installed', l.kind, l.object, l.definition
             FROM dialer.schema_listing() l JOIN ({touched}) t USING (kind, object);
             DELETE FROM dialer.schema_baseline WHERE snapshot = 'before update'"
        )));
    }
}

/// Refuses callers other than members of the extension owner's role (the
/// owner, a superuser) and admins (by claims), with 42501.
fn require_owner_or_admin(function: &str) {
    let owner = crate::errors::spi(Spi::get_one::<bool>(
        "SELECT pg_catalog.pg_has_role(e.extowner, 'MEMBER')
         FROM pg_catalog.pg_extension e WHERE e.extname = 'pg_dialer'",
    ));
    if !(owner == Some(true) || crate::identity::current_identity().is_admin) {
        crate::errors::raise(pg_dialer_core::error::DialerError::forbidden(format!(
            "dialer.{function}() is for the extension's owner and admins"
        )));
    }
}

/// Refuses to run outside pg_dialer's own `CREATE EXTENSION` / `ALTER
/// EXTENSION` (another extension's script will not do), with 55000.
pub fn require_extension_script(function: &str) {
    // SAFETY: reads backend globals set while an extension script runs.
    let (creating, current) = unsafe {
        (
            pgrx::pg_sys::creating_extension,
            pgrx::pg_sys::CurrentExtensionObject,
        )
    };
    let ours = creating
        && crate::errors::spi(Spi::get_one_with_args::<bool>(
            "SELECT EXISTS (SELECT FROM pg_catalog.pg_extension WHERE oid = $1 AND extname = 'pg_dialer')",
            &[current.into()],
        )) == Some(true);
    if !ours {
        pgrx::pg_sys::panic::ErrorReport::new(
            PgSqlErrorCode::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
            format!(
                "dialer.{function}() runs only inside the extension's install and update scripts"
            ),
            "pg_dialer::schema",
        )
        .report(PgLogLevel::ERROR);
    }
}
