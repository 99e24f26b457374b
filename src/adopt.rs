//! Adopting a hand-built schema: `CREATE EXTENSION pg_dialer` on a database
//! whose eleven tables were created by hand (from the same design) brings
//! those tables, with every row and their ids, under the extension.
//!
//! It runs inside `CREATE EXTENSION`, only when the DBA asked for it with
//! `SET pg_dialer.adopt_existing_tables = on`, in two steps:
//! 1. `dialer.adopt_prepare()`, before the tables are created, moves the
//!    hand-built tables aside into the schema `dialer_adopting`;
//! 2. the install script creates its own tables (the reference), then
//!    `dialer.adopt_tables()` reads their definitions, drops them (they are
//!    empty), moves the hand-built tables back and makes them match: missing
//!    columns, defaults, NOT NULLs, types, constraints and indexes are added or
//!    converted, hand-made policies are dropped, and each table becomes a
//!    member of the extension. The rest of the install script then gives the
//!    adopted tables the extension's triggers, row level security, policies,
//!    grants and `pg_extension_config_dump` registration, as for new tables.
//!
//! Anything that would lose data or break a constraint (a value that does not
//! convert, or changes when converted; duplicates under a UNIQUE; NULLs in a
//! NOT NULL column; rows failing a CHECK or a foreign key) refuses the whole
//! `CREATE EXTENSION`, naming the table, the column or constraint and the
//! reason; nothing is changed then. Columns, indexes, constraints and triggers
//! of the team's own are kept. Every step is written to `dialer.adoption_log`.

use pgrx::prelude::*;

/// The spec's tables, in an order where every table comes after those it
/// refers to. A pg_test checks it against the tables the extension creates.
pub const SPEC_TABLES: [&str; 11] = [
    "subscription_plans",
    "user_profiles",
    "user_subscriptions",
    "user_call_usage",
    "call_service_providers",
    "provider_phone_numbers",
    "user_phone_numbers",
    "voice_options",
    "call_templates",
    "call_queue",
    "user_call_history",
];

/// Where hand-built tables wait while the install script creates its own.
const ASIDE: &str = "dialer_adopting";

#[pg_schema]
mod dialer {
    use pgrx::prelude::*;

    /// Step 1 of adoption, run by the install script before it creates the
    /// tables: moves hand-built tables aside, or refuses when adoption was not
    /// asked for.
    #[pg_extern(volatile)]
    #[search_path(pg_catalog)]
    fn adopt_prepare() {
        crate::schema::require_extension_script("adopt_prepare");
        super::prepare();
    }

    /// Step 2 of adoption, run by the install script after it created its own
    /// tables: replaces them with the hand-built ones, made to match.
    #[pg_extern(volatile)]
    #[search_path(pg_catalog)]
    fn adopt_tables() {
        crate::schema::require_extension_script("adopt_tables");
        super::adopt();
    }
}

use crate::errors::spi;
use pgrx::pg_sys::panic::{CaughtError, ErrorReport};
use pgrx::spi::SpiError;

fn prepare() {
    let found = spec_tables_found();
    if found.is_empty() {
        return;
    }
    refuse_unadoptable(&found);
    step(
        "",
        "create the schema for tables being adopted",
        &format!("CREATE SCHEMA {ASIDE}"),
    );
    for (name, _, _) in &found {
        step(
            name,
            "move it aside",
            &format!("ALTER TABLE public.{} SET SCHEMA {ASIDE}", ident(name)),
        );
        log(
            name,
            "found",
            &format!("public.{name}"),
            "hand-built table, adopted with its rows",
        );
    }
}

/// The tables of the spec's names in schema public, in the spec's order:
/// name, relkind, and the extension they belong to, if any.
fn spec_tables_found() -> Vec<(String, Option<String>, Option<String>)> {
    spi(Spi::connect(|client| {
        client
            .select(
                "SELECT c.relname::text, c.relkind::text,
                        (SELECT e.extname::text FROM pg_catalog.pg_depend d
                         JOIN pg_catalog.pg_extension e ON e.oid = d.refobjid
                         WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass
                           AND d.objid = c.oid AND d.deptype = 'e')
                 FROM pg_catalog.pg_class c
                 WHERE c.relnamespace = 'public'::pg_catalog.regnamespace
                   AND c.relname = ANY ($1)
                 ORDER BY pg_catalog.array_position($1, c.relname::text)",
                None,
                &[SPEC_TABLES.to_vec().into()],
            )?
            .map(|r| {
                Ok((
                    r.get::<String>(1)?.unwrap_or_default(),
                    r.get::<String>(2)?,
                    r.get::<String>(3)?,
                ))
            })
            .collect::<Result<Vec<_>, SpiError>>()
    }))
}

/// Refuses to adopt what was found unless adopting is on, and only plain
/// tables of no extension whose code can be trusted (`refuse_untrusted`).
fn refuse_unadoptable(found: &[(String, Option<String>, Option<String>)]) {
    let names = found
        .iter()
        .map(|(n, _, _)| format!("public.{n}"))
        .collect::<Vec<_>>()
        .join(", ");
    if !crate::settings::ADOPT_EXISTING_TABLES.get() {
        refuse(
            PgSqlErrorCode::ERRCODE_DUPLICATE_TABLE,
            format!("tables of pg_dialer exist already and are not part of the extension: {names}"),
            None,
            Some(
                "To bring them under pg_dialer, keeping every row: SET pg_dialer.adopt_existing_tables = on; \
                 then CREATE EXTENSION pg_dialer CASCADE (see \"Adopting a hand-built schema\" in the README)."
                    .into(),
            ),
        );
    }
    for (name, kind, extension) in found {
        if let Some(extension) = extension {
            refuse(
                PgSqlErrorCode::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
                format!("cannot adopt public.{name}: it belongs to extension {extension}"),
                None,
                None,
            );
        }
        if kind.as_deref() != Some("r") {
            refuse(
                PgSqlErrorCode::ERRCODE_WRONG_OBJECT_TYPE,
                format!(
                    "cannot adopt public.{name}: it is not a plain table (relkind {})",
                    kind.as_deref().unwrap_or("?")
                ),
                None,
                None,
            );
        }
    }
    for (name, _, _) in found {
        refuse_untrusted(name);
    }
}

/// Refuses a hand-built table that could not be trusted as the extension's:
/// one that is unlogged, inherits or is inherited from, has rules, or carries
/// code (triggers, defaults, constraints, indexes, column types) that a role
/// other than a superuser owns. The extension writes these tables with its
/// owner's privileges (canceling a call), and the superuser's jobs write them:
/// such code would run with those privileges, and its owner could change it at
/// any time.
fn refuse_untrusted(table: &str) {
    let relation = format!("public.{}", ident(table));
    let problems = spi(Spi::connect(|client| {
        client
            .select(UNTRUSTED, None, &[relation.as_str().into()])?
            .map(|r| r.get::<String>(1).map(Option::unwrap_or_default))
            .collect::<Result<Vec<_>, SpiError>>()
    }));
    if !problems.is_empty() {
        refuse(
            PgSqlErrorCode::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
            format!("cannot adopt public.{table}: {}", problems.join("; ")),
            None,
            Some(
                "pg_dialer's own functions write its tables with raised privileges, so code on them must be \
                 trusted: drop what is named (pg_dialer keeps updated_at itself), or let a superuser own it."
                    .into(),
            ),
        );
    }
}

/// What makes a table ($1) untrusted, one line each.
const UNTRUSTED: &str = "
    SELECT 'it is unlogged or temporary' FROM pg_catalog.pg_class c
    WHERE c.oid = $1::pg_catalog.regclass AND c.relpersistence <> 'p'
    UNION ALL
    SELECT 'it inherits from or is inherited by ' || pg_catalog.string_agg(o::pg_catalog.regclass::text, ', ')
    FROM (SELECT inhparent AS o FROM pg_catalog.pg_inherits WHERE inhrelid = $1::pg_catalog.regclass
          UNION ALL
          SELECT inhrelid FROM pg_catalog.pg_inherits WHERE inhparent = $1::pg_catalog.regclass) x
    HAVING pg_catalog.count(*) > 0
    UNION ALL
    SELECT 'it has rule ' || pg_catalog.quote_ident(r.rulename) FROM pg_catalog.pg_rewrite r
    WHERE r.ev_class = $1::pg_catalog.regclass AND r.rulename <> '_RETURN'
    UNION ALL
    SELECT pg_catalog.format('its %s calls %s, owned by %s, which is not a superuser',
                             pg_catalog.pg_describe_object(d.classid, d.objid, d.objsubid),
                             p.oid::pg_catalog.regprocedure, pg_catalog.pg_get_userbyid(p.proowner))
    FROM pg_catalog.pg_depend d
    JOIN pg_catalog.pg_proc p ON d.refclassid = 'pg_catalog.pg_proc'::pg_catalog.regclass AND d.refobjid = p.oid
    JOIN pg_catalog.pg_roles o ON o.oid = p.proowner AND NOT o.rolsuper
    WHERE (d.classid = 'pg_catalog.pg_trigger'::pg_catalog.regclass
           AND d.objid IN (SELECT oid FROM pg_catalog.pg_trigger
                           WHERE tgrelid = $1::pg_catalog.regclass AND NOT tgisinternal))
       OR (d.classid = 'pg_catalog.pg_attrdef'::pg_catalog.regclass
           AND d.objid IN (SELECT oid FROM pg_catalog.pg_attrdef WHERE adrelid = $1::pg_catalog.regclass))
       OR (d.classid = 'pg_catalog.pg_constraint'::pg_catalog.regclass
           AND d.objid IN (SELECT oid FROM pg_catalog.pg_constraint WHERE conrelid = $1::pg_catalog.regclass))
       OR (d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass
           AND d.objid IN (SELECT indexrelid FROM pg_catalog.pg_index WHERE indrelid = $1::pg_catalog.regclass))
    UNION ALL
    SELECT pg_catalog.format('its column %s is of type %s, owned by %s, which is not a superuser',
                             pg_catalog.quote_ident(a.attname), pg_catalog.format_type(a.atttypid, a.atttypmod),
                             pg_catalog.pg_get_userbyid(coalesce(e.typowner, t.typowner)))
    FROM pg_catalog.pg_attribute a
    JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
    LEFT JOIN pg_catalog.pg_type e ON e.oid = t.typelem AND t.typcategory = 'A'
    JOIN pg_catalog.pg_roles o ON o.oid = coalesce(e.typowner, t.typowner) AND NOT o.rolsuper
    WHERE a.attrelid = $1::pg_catalog.regclass AND a.attnum > 0 AND NOT a.attisdropped
      AND coalesce(e.typtype, t.typtype) <> 'e'";

/// A column of the extension's own table.
struct Column {
    name: String,
    ty: String,
    not_null: bool,
    default: Option<String>,
}

/// A constraint or index: its name and definition.
struct Definition {
    table: String,
    name: String,
    kind: String,
    definition: String,
}

/// What the install script created for one table.
struct Reference {
    table: String,
    columns: Vec<Column>,
    constraints: Vec<Definition>,
    indexes: Vec<Definition>,
}

fn adopt() {
    let tables = tables_set_aside();
    if tables.is_empty() {
        return;
    }
    let references: Vec<Reference> = tables.iter().map(|t| reference(t)).collect();
    // Foreign keys of the extension's other tables that point at a table
    // being replaced: dropped with it, added again at the end.
    let inbound = inbound_foreign_keys(&tables);

    let list = swap_in(&tables);
    for reference in &references {
        take_ownership(&reference.table);
        drop_policies(&reference.table);
        conform_columns(reference);
    }
    for reference in &references {
        conform_constraints(
            &reference.table,
            reference.constraints.iter().filter(|c| c.kind != "f"),
        );
        conform_indexes(reference);
    }
    for reference in &references {
        conform_constraints(
            &reference.table,
            reference.constraints.iter().filter(|c| c.kind == "f"),
        );
    }
    for fk in &inbound {
        conform_constraints(&fk.table, std::iter::once(fk));
    }
    for table in &tables {
        log_kept(table, &references);
        log(
            table,
            "adopted",
            &format!("public.{table}"),
            "now a member of extension pg_dialer",
        );
    }
    adopt_auth();
    // INFO: CREATE EXTENSION holds client_min_messages at WARNING while it runs.
    pgrx::info!(
        "pg_dialer adopted {} hand-built table(s): {list}; see dialer.adoption_log for every step",
        tables.len()
    );
}

/// The hand-built tables that `prepare` set aside, in the spec's order.
fn tables_set_aside() -> Vec<String> {
    spi(Spi::connect(|client| {
        client
            .select(
                "SELECT c.relname::text FROM pg_catalog.pg_class c
                 WHERE c.relnamespace = (SELECT oid FROM pg_catalog.pg_namespace WHERE nspname = $1)
                   AND c.relkind = 'r'
                 ORDER BY pg_catalog.array_position($2, c.relname::text)",
                None,
                &[ASIDE.into(), SPEC_TABLES.to_vec().into()],
            )?
            .map(|r| r.get::<String>(1).map(Option::unwrap_or_default))
            .collect::<Result<Vec<_>, SpiError>>()
    }))
}

/// The hand-built tables take the place of the extension's new, empty ones.
/// Returns their list, for messages.
fn swap_in(tables: &[String]) -> String {
    let list = tables
        .iter()
        .map(|t| format!("public.{}", ident(t)))
        .collect::<Vec<_>>()
        .join(", ");
    step(
        "",
        "drop the extension's empty tables",
        &format!("DROP TABLE {list} CASCADE"),
    );
    for table in tables {
        step(
            table,
            "move it back",
            &format!("ALTER TABLE {ASIDE}.{} SET SCHEMA public", ident(table)),
        );
    }
    step(
        "",
        "drop the schema for tables being adopted",
        &format!("DROP SCHEMA {ASIDE}"),
    );
    list
}

/// On plain PostgreSQL, where the team made `auth` by hand, the extension
/// takes it over as the stand-in it would have created (sql/bootstrap.sql):
/// its tables refer to `auth.users`, so `pg_restore` must find `auth.users`
/// when it runs `CREATE EXTENSION`, which only the extension's own objects
/// guarantee. The stand-in's columns are added where missing. On Supabase
/// (`auth` or `auth.users` owned by a `supabase_*` role) `auth` is Supabase's
/// and stays so.
fn adopt_auth() {
    let plain = spi(Spi::get_one::<bool>(
        "SELECT EXISTS (SELECT FROM pg_catalog.pg_namespace WHERE nspname = 'auth')
                AND NOT EXISTS (SELECT FROM pg_catalog.pg_namespace n
                                WHERE n.nspname = 'auth' AND pg_catalog.pg_get_userbyid(n.nspowner) LIKE 'supabase\\_%')
                AND NOT EXISTS (SELECT FROM pg_catalog.pg_class c
                                WHERE c.oid = pg_catalog.to_regclass('auth.users')
                                  AND pg_catalog.pg_get_userbyid(c.relowner) LIKE 'supabase\\_%')",
    ));
    if plain != Some(true) {
        return;
    }
    let candidates = spi(Spi::connect(|client| {
        client
            .select(
                "SELECT o.kind, o.name FROM (VALUES
                     ('SCHEMA', 'auth', 'pg_catalog.pg_namespace'::pg_catalog.regclass,
                      (SELECT oid FROM pg_catalog.pg_namespace WHERE nspname = 'auth')),
                     ('TABLE', 'auth.users', 'pg_catalog.pg_class'::pg_catalog.regclass,
                      pg_catalog.to_regclass('auth.users')::pg_catalog.oid),
                     ('FUNCTION', 'auth.uid()', 'pg_catalog.pg_proc'::pg_catalog.regclass,
                      pg_catalog.to_regprocedure('auth.uid()')::pg_catalog.oid),
                     ('FUNCTION', 'auth.jwt()', 'pg_catalog.pg_proc'::pg_catalog.regclass,
                      pg_catalog.to_regprocedure('auth.jwt()')::pg_catalog.oid)
                 ) AS o(kind, name, class, id)
                 WHERE o.id IS NOT NULL
                   AND NOT EXISTS (SELECT FROM pg_catalog.pg_depend d
                                   WHERE d.classid = o.class AND d.objid = o.id AND d.deptype = 'e')",
                None,
                &[],
            )?
            .map(|r| Ok((r.get::<String>(1)?.unwrap_or_default(), r.get::<String>(2)?.unwrap_or_default())))
            .collect::<Result<Vec<_>, SpiError>>()
    }));
    for (kind, name) in candidates {
        step(
            "",
            &format!("make {name} a member of pg_dialer"),
            &format!("ALTER EXTENSION pg_dialer ADD {kind} {name}"),
        );
        if name == "auth.users" {
            conform_auth_users();
        }
        log(
            "",
            "adopted",
            &name,
            "plain PostgreSQL: the hand-made auth stand-in now belongs to pg_dialer",
        );
    }
}

/// The hand-made `auth.users`, adopted: the stand-in's columns where
/// missing, its grants and pg_dump registration; its other columns are
/// kept and logged.
fn conform_auth_users() {
    step(
        "",
        "give auth.users the columns of the stand-in",
        "ALTER TABLE auth.users
             ADD COLUMN IF NOT EXISTS email TEXT,
             ADD COLUMN IF NOT EXISTS raw_app_meta_data JSONB DEFAULT '{}'::jsonb,
             ADD COLUMN IF NOT EXISTS raw_user_meta_data JSONB DEFAULT '{}'::jsonb,
             ADD COLUMN IF NOT EXISTS created_at TIMESTAMPTZ DEFAULT CURRENT_TIMESTAMP",
    );
    step(
        "",
        "let service_role use auth.users as with the stand-in",
        "GRANT SELECT, INSERT, UPDATE, DELETE ON auth.users TO service_role",
    );
    step(
        "",
        "register auth.users for pg_dump",
        "SELECT pg_catalog.pg_extension_config_dump('auth.users', '')",
    );
    let extra = spi(Spi::connect(|client| {
        client
            .select(
                "SELECT a.attname::text FROM pg_catalog.pg_attribute a
                 WHERE a.attrelid = 'auth.users'::pg_catalog.regclass AND a.attnum > 0 AND NOT a.attisdropped
                   AND a.attname NOT IN ('id', 'email', 'raw_app_meta_data', 'raw_user_meta_data', 'created_at')
                 ORDER BY a.attnum",
                None,
                &[],
            )?
            .map(|r| r.get::<String>(1).map(Option::unwrap_or_default))
            .collect::<Result<Vec<_>, SpiError>>()
    }));
    for column in extra {
        log(
            "",
            "kept column",
            &format!("auth.users.{column}"),
            "not part of the stand-in, and not recreated by pg_dump (see the README)",
        );
    }
}

/// A table's ($1) columns: name, type, NOT NULL, default.
const COLUMNS: &str = "
    SELECT a.attname::text, pg_catalog.format_type(a.atttypid, a.atttypmod), a.attnotnull,
           pg_catalog.pg_get_expr(d.adbin, d.adrelid)
    FROM pg_catalog.pg_attribute a
    LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
    WHERE a.attrelid = $1::pg_catalog.regclass AND a.attnum > 0 AND NOT a.attisdropped
    ORDER BY a.attnum";

/// A table's ($1) constraints: name, kind, definition; the primary key first.
const CONSTRAINTS: &str = "
    SELECT conname::text, contype::text, pg_catalog.pg_get_constraintdef(oid)
    FROM pg_catalog.pg_constraint WHERE conrelid = $1::pg_catalog.regclass
    ORDER BY contype <> 'p', conname";

/// A table's ($1) indexes that back no constraint: name, 'i', definition.
const INDEXES: &str = "
    SELECT c.relname::text, 'i', pg_catalog.pg_get_indexdef(i.indexrelid)
    FROM pg_catalog.pg_index i JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid
    WHERE i.indrelid = $1::pg_catalog.regclass
      AND NOT EXISTS (SELECT FROM pg_catalog.pg_constraint k WHERE k.conindid = i.indexrelid
                                                               AND k.conrelid = i.indrelid)
    ORDER BY 1";

/// The columns of `relation` (schema-qualified).
fn columns(relation: &str) -> Vec<Column> {
    spi(Spi::connect(|client| {
        client
            .select(COLUMNS, None, &[relation.into()])?
            .map(|r| {
                Ok(Column {
                    name: r.get::<String>(1)?.unwrap_or_default(),
                    ty: r.get::<String>(2)?.unwrap_or_default(),
                    not_null: r.get::<bool>(3)?.unwrap_or(false),
                    default: r.get::<String>(4)?,
                })
            })
            .collect::<Result<Vec<_>, SpiError>>()
    }))
}

/// The definitions of the extension's own (new, empty) table.
fn reference(table: &str) -> Reference {
    let relation = format!("public.{}", ident(table));
    let mut reference = Reference {
        table: table.to_owned(),
        columns: columns(&relation),
        constraints: existing_definitions(CONSTRAINTS, &relation),
        indexes: existing_definitions(INDEXES, &relation),
    };
    for d in reference
        .constraints
        .iter_mut()
        .chain(reference.indexes.iter_mut())
    {
        d.table = table.to_owned();
    }
    reference
}

fn inbound_foreign_keys(tables: &[String]) -> Vec<Definition> {
    spi(Spi::connect(|client| {
        client
            .select(
                "SELECT c.relname::text, k.conname::text, pg_catalog.pg_get_constraintdef(k.oid)
                 FROM pg_catalog.pg_constraint k
                 JOIN pg_catalog.pg_class c ON c.oid = k.conrelid
                 JOIN pg_catalog.pg_class r ON r.oid = k.confrelid
                 WHERE k.contype = 'f'
                   AND c.relnamespace = 'public'::pg_catalog.regnamespace AND NOT c.relname = ANY ($1)
                   AND r.relnamespace = 'public'::pg_catalog.regnamespace AND r.relname = ANY ($1)
                   AND EXISTS (SELECT FROM pg_catalog.pg_depend d
                               WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass
                                 AND d.objid = c.oid AND d.deptype = 'e'
                                 AND d.refobjid = (SELECT oid FROM pg_catalog.pg_extension
                                                   WHERE extname = 'pg_dialer'))",
                None,
                &[tables.to_vec().into()],
            )?
            .map(|r| {
                Ok(Definition {
                    table: r.get::<String>(1)?.unwrap_or_default(),
                    name: r.get::<String>(2)?.unwrap_or_default(),
                    kind: "f".to_owned(),
                    definition: r.get::<String>(3)?.unwrap_or_default(),
                })
            })
            .collect::<Result<Vec<_>, SpiError>>()
    }))
}

fn take_ownership(table: &str) {
    let relation = format!("public.{}", ident(table));
    step(
        table,
        "make it a member of pg_dialer",
        &format!("ALTER EXTENSION pg_dialer ADD TABLE {relation}"),
    );
    let owner = spi(Spi::get_one_with_args::<String>(
        "SELECT (SELECT pg_catalog.pg_get_userbyid(relowner)::text FROM pg_catalog.pg_class
                 WHERE oid = $1::pg_catalog.regclass
                   AND relowner <> (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = CURRENT_USER))",
        &[relation.as_str().into()],
    ));
    // Every grant of the hand-built table goes: the install script grants
    // exactly what pg_dialer's policies need (a role that could read every
    // table would read the providers' credentials).
    let grants = spi(Spi::connect(|client| {
        client
            .select(
                "SELECT DISTINCT CASE WHEN a.grantee = 0 THEN 'PUBLIC'
                                      ELSE pg_catalog.quote_ident(pg_catalog.pg_get_userbyid(a.grantee)) END,
                                 x.col
                 FROM pg_catalog.pg_class c,
                      LATERAL (SELECT NULL::text AS col, c.relacl AS acl
                               UNION ALL
                               SELECT pg_catalog.quote_ident(t.attname::text), t.attacl FROM pg_catalog.pg_attribute t
                               WHERE t.attrelid = c.oid AND t.attnum > 0 AND NOT t.attisdropped
                                 AND t.attacl IS NOT NULL) x,
                      LATERAL pg_catalog.aclexplode(x.acl) a
                 WHERE c.oid = $1::pg_catalog.regclass AND a.grantee <> c.relowner
                 ORDER BY 1, 2",
                None,
                &[relation.as_str().into()],
            )?
            .map(|r| Ok((r.get::<String>(1)?.unwrap_or_default(), r.get::<String>(2)?)))
            .collect::<Result<Vec<_>, SpiError>>()
    }));
    for (grantee, column) in grants {
        let target = column
            .as_ref()
            .map(|c| format!("({c}) "))
            .unwrap_or_default();
        step(
            table,
            &format!("revoke the privileges of {grantee}"),
            &format!("REVOKE ALL {target}ON {relation} FROM {grantee}"),
        );
        let on = column
            .map(|c| format!("column {c}"))
            .unwrap_or_else(|| "the table".into());
        log(
            table,
            "revoked privileges",
            &grantee,
            &format!("on {on}; pg_dialer grants its own"),
        );
    }
    if let Some(owner) = owner {
        step(
            table,
            "change its owner",
            &format!("ALTER TABLE {relation} OWNER TO CURRENT_USER"),
        );
        log(table, "changed owner", &relation, &format!("was {owner}"));
    }
    step(
        table,
        "row level security as the extension sets it",
        &format!("ALTER TABLE {relation} NO FORCE ROW LEVEL SECURITY"),
    );
}

/// Hand-made policies go: the install script creates the extension's.
fn drop_policies(table: &str) {
    let relation = format!("public.{}", ident(table));
    let policies = spi(Spi::connect(|client| {
        client
            .select(
                "SELECT policyname::text,
                        pg_catalog.format('%s for %s to %s using (%s) with check (%s)',
                                          permissive, cmd, roles, qual, with_check)
                 FROM pg_catalog.pg_policies WHERE schemaname = 'public' AND tablename = $1",
                None,
                &[table.into()],
            )?
            .map(|r| {
                Ok((
                    r.get::<String>(1)?.unwrap_or_default(),
                    r.get::<String>(2)?.unwrap_or_default(),
                ))
            })
            .collect::<Result<Vec<_>, SpiError>>()
    }));
    for (name, definition) in policies {
        step(
            table,
            &format!("drop policy {name}"),
            &format!("DROP POLICY {} ON {relation}", ident(&name)),
        );
        log(table, "dropped policy", &name, &definition);
    }
}

fn conform_columns(reference: &Reference) {
    let table = &reference.table;
    let relation = format!("public.{}", ident(table));
    // The hand-built table's columns, read once; each step below changes only
    // the column it is about.
    let mut current: std::collections::HashMap<String, Column> = columns(&relation)
        .into_iter()
        .map(|c| (c.name.clone(), c))
        .collect();
    for column in &reference.columns {
        match current.remove(&column.name) {
            None => add_column(table, &relation, column),
            Some(existing) => {
                conform_type(table, &relation, column, &existing);
                conform_default(table, &relation, column, &existing);
                conform_not_null(table, &relation, column, &existing);
            }
        }
    }
}

/// Adds a column of the reference that the hand-built table lacks.
fn add_column(table: &str, relation: &str, column: &Column) {
    let default_sql = column
        .default
        .as_deref()
        .map(|d| format!(" DEFAULT {d}"))
        .unwrap_or_default();
    let not_null_sql = if column.not_null { " NOT NULL" } else { "" };
    step(
        table,
        &format!("add the missing column {}", column.name),
        &format!(
            "ALTER TABLE {relation} ADD COLUMN {} {}{default_sql}{not_null_sql}",
            ident(&column.name),
            column.ty
        ),
    );
    log(
        table,
        "added column",
        &column.name,
        &format!("{}{default_sql}{not_null_sql}", column.ty),
    );
}

/// Converts a hand-built column to the reference's type (its default goes
/// first: it may not convert), refusing conversions that lose values.
fn conform_type(table: &str, relation: &str, column: &Column, existing: &Column) {
    let ty = &existing.ty;
    if *ty == column.ty {
        return;
    }
    let col = ident(&column.name);
    if existing.default.is_some() {
        step(
            table,
            &format!("drop the default of {}", column.name),
            &format!("ALTER TABLE {relation} ALTER COLUMN {col} DROP DEFAULT"),
        );
    }
    check_conversion(table, &column.name, ty, &column.ty);
    step(
        table,
        &format!("convert column {} from {ty} to {}", column.name, column.ty),
        &format!(
            "ALTER TABLE {relation} ALTER COLUMN {col} TYPE {} USING {col}::{}",
            column.ty, column.ty
        ),
    );
    log(
        table,
        "converted column",
        &column.name,
        &format!("from {ty} to {}", column.ty),
    );
}

/// Gives a hand-built column the reference's default (again after a type
/// conversion, which dropped it).
fn conform_default(table: &str, relation: &str, column: &Column, existing: &Column) {
    let (ty, default) = (&existing.ty, &existing.default);
    if *ty == column.ty && *default == column.default {
        return;
    }
    let col = ident(&column.name);
    match &column.default {
        Some(d) => step(
            table,
            &format!("set the default of {}", column.name),
            &format!("ALTER TABLE {relation} ALTER COLUMN {col} SET DEFAULT {d}"),
        ),
        None if default.is_some() && *ty == column.ty => step(
            table,
            &format!("drop the default of {}", column.name),
            &format!("ALTER TABLE {relation} ALTER COLUMN {col} DROP DEFAULT"),
        ),
        None => {}
    }
    if *default != column.default {
        log(
            table,
            "set default",
            &column.name,
            &format!(
                "{} (was {})",
                column.default.as_deref().unwrap_or("none"),
                default.as_deref().unwrap_or("none")
            ),
        );
    }
}

/// Makes a hand-built column NOT NULL, or nullable, as the reference's is.
fn conform_not_null(table: &str, relation: &str, column: &Column, existing: &Column) {
    if existing.not_null == column.not_null {
        return;
    }
    let (action, sql) = if column.not_null {
        ("set not null", "SET NOT NULL")
    } else {
        ("dropped not null", "DROP NOT NULL")
    };
    step(
        table,
        &format!("{action} on {}", column.name),
        &format!(
            "ALTER TABLE {relation} ALTER COLUMN {} {sql}",
            ident(&column.name)
        ),
    );
    log(table, action, &column.name, "");
}

/// Refuses a type conversion that fails or changes a value. Conversions that
/// only normalize the spelling (json to jsonb, text to uuid) are checked for
/// failure only.
fn check_conversion(table: &str, column: &str, from: &str, to: &str) {
    let relation = format!("public.{}", ident(table));
    let col = ident(column);
    if to == "timestamp with time zone" && (from.starts_with("timestamp") || from == "date") {
        refuse(
            PgSqlErrorCode::ERRCODE_DATATYPE_MISMATCH,
            format!(
                "cannot adopt public.{table}: column {column} is {from} and pg_dialer needs {to}: \
                 the instants its values mean depend on a time zone only you know"
            ),
            None,
            Some(format!(
                "Convert it first: ALTER TABLE public.{table} ALTER COLUMN {column} TYPE timestamptz \
                 USING {column} AT TIME ZONE 'UTC' (or the zone the values were written in)."
            )),
        );
    }
    // json to jsonb normalizes as jsonb does (white space, key order, and of
    // duplicate keys the last); text to uuid normalizes the spelling.
    let normalizing = (from == "json" && to == "jsonb")
        || (to == "uuid" && (from == "text" || from.starts_with("character")));
    let sql = if normalizing {
        format!("SELECT NULL::text FROM {relation} WHERE {col}::{to} IS NULL AND {col} IS NOT NULL LIMIT 1")
    } else {
        format!(
            "SELECT {col}::text FROM {relation}
             WHERE {col} IS NOT NULL AND ({col}::{to})::{from}::text IS DISTINCT FROM {col}::text LIMIT 1"
        )
    };
    let changed = guarded(
        table,
        &format!("convert column {column} from {from} to {to}"),
        || {
            Spi::connect(|client| {
                client
                    .select(&sql, None, &[])?
                    .next()
                    .map(|r| r.get::<String>(1))
                    .transpose()
            })
        },
    );
    if let Some(value) = changed {
        refuse(
            PgSqlErrorCode::ERRCODE_DATATYPE_MISMATCH,
            format!(
                "cannot adopt public.{table}: column {column} is {from}, pg_dialer needs {to}, and converting would change values such as {}",
                value.map(|v| format!("'{v}'")).unwrap_or_else(|| "NULL".into())
            ),
            None,
            Some("Convert or correct the column's values by hand first.".into()),
        );
    }
}

/// Makes the table's constraints of the reference exist under their names.
fn conform_constraints<'a>(table: &str, wanted: impl Iterator<Item = &'a Definition>) {
    let relation = format!("public.{}", ident(table));
    for c in wanted {
        let existing = existing_definitions(CONSTRAINTS, &relation);
        if existing
            .iter()
            .any(|e| e.name == c.name && e.definition == c.definition)
        {
            continue;
        }
        if let Some(same) = existing.iter().find(|e| e.definition == c.definition) {
            if let Some(taken) = existing.iter().find(|e| e.name == c.name) {
                drop_constraint(
                    table,
                    taken,
                    "its name is pg_dialer's and its definition differs",
                );
            }
            step(
                table,
                &format!("rename constraint {} to {}", same.name, c.name),
                &format!(
                    "ALTER TABLE {relation} RENAME CONSTRAINT {} TO {}",
                    ident(&same.name),
                    ident(&c.name)
                ),
            );
            log(
                table,
                "renamed constraint",
                &c.name,
                &format!("was {}", same.name),
            );
            continue;
        }
        for other in existing
            .iter()
            .filter(|e| e.name == c.name || (c.kind == "p" && e.kind == "p"))
        {
            drop_constraint(table, other, &format!("pg_dialer's is {}", c.definition));
        }
        step(
            table,
            &format!("add constraint {} {}", c.name, c.definition),
            &format!(
                "ALTER TABLE {relation} ADD CONSTRAINT {} {}",
                ident(&c.name),
                c.definition
            ),
        );
        log(table, "added constraint", &c.name, &c.definition);
    }
}

fn drop_constraint(table: &str, c: &Definition, why: &str) {
    let relation = format!("public.{}", ident(table));
    step(
        table,
        &format!("drop constraint {} ({why})", c.name),
        &format!("ALTER TABLE {relation} DROP CONSTRAINT {}", ident(&c.name)),
    );
    log(
        table,
        "replaced constraint",
        &c.name,
        &format!("{} ({why})", c.definition),
    );
}

/// Makes the reference's indexes exist under their names; an index of the
/// same definition is renamed rather than built twice.
fn conform_indexes(reference: &Reference) {
    let table = &reference.table;
    let relation = format!("public.{}", ident(table));
    for index in &reference.indexes {
        let existing = existing_definitions(INDEXES, &relation);
        let shape = unnamed_index(&index.definition);
        if existing
            .iter()
            .any(|e| e.name == index.name && unnamed_index(&e.definition) == shape)
        {
            continue;
        }
        let taken = existing.iter().find(|e| e.name == index.name);
        if let Some(taken) = taken {
            step(
                table,
                &format!("drop index {}", taken.name),
                &format!("DROP INDEX public.{}", ident(&taken.name)),
            );
            log(table, "replaced index", &taken.name, &taken.definition);
        }
        if let Some(same) = existing
            .iter()
            .find(|e| e.name != index.name && unnamed_index(&e.definition) == shape)
        {
            step(
                table,
                &format!("rename index {} to {}", same.name, index.name),
                &format!(
                    "ALTER INDEX public.{} RENAME TO {}",
                    ident(&same.name),
                    ident(&index.name)
                ),
            );
            log(
                table,
                "renamed index",
                &index.name,
                &format!("was {}", same.name),
            );
            continue;
        }
        step(
            table,
            &format!("create index {}", index.name),
            &index.definition,
        );
        log(table, "created index", &index.name, &index.definition);
    }
}

/// An index definition without its name, to compare shapes.
fn unnamed_index(definition: &str) -> String {
    match (definition.find(" INDEX "), definition.find(" ON ")) {
        (Some(start), Some(end)) if start < end => {
            format!("{}{}", &definition[..start + 7], &definition[end + 1..])
        }
        _ => definition.to_owned(),
    }
}

fn existing_definitions(sql: &str, relation: &str) -> Vec<Definition> {
    spi(Spi::connect(|client| {
        client
            .select(sql, None, &[relation.into()])?
            .map(|r| {
                Ok(Definition {
                    table: String::new(),
                    name: r.get::<String>(1)?.unwrap_or_default(),
                    kind: r.get::<String>(2)?.unwrap_or_default(),
                    definition: r.get::<String>(3)?.unwrap_or_default(),
                })
            })
            .collect::<Result<Vec<_>, SpiError>>()
    }))
}

/// Logs what the team's table has beyond pg_dialer's, which stays.
fn log_kept(table: &str, references: &[Reference]) {
    let Some(reference) = references.iter().find(|r| r.table == table) else {
        return;
    };
    let relation = format!("public.{}", ident(table));
    let extras = spi(Spi::connect(|client| {
        client
            .select(
                "SELECT 'kept column', a.attname::text,
                        pg_catalog.format_type(a.atttypid, a.atttypmod)
                        || ': not part of pg_dialer, and not recreated by pg_dump (see the README)'
                 FROM pg_catalog.pg_attribute a
                 WHERE a.attrelid = $1::pg_catalog.regclass AND a.attnum > 0 AND NOT a.attisdropped
                   AND NOT a.attname = ANY ($2)
                 UNION ALL
                 SELECT 'kept constraint', conname::text, pg_catalog.pg_get_constraintdef(oid)
                 FROM pg_catalog.pg_constraint WHERE conrelid = $1::pg_catalog.regclass AND NOT conname = ANY ($3)
                 UNION ALL
                 SELECT 'kept index', c.relname::text, pg_catalog.pg_get_indexdef(c.oid)
                 FROM pg_catalog.pg_index i JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid
                 WHERE i.indrelid = $1::pg_catalog.regclass AND NOT c.relname = ANY ($4)
                   AND NOT EXISTS (SELECT FROM pg_catalog.pg_constraint k WHERE k.conindid = i.indexrelid
                                                                            AND k.conrelid = i.indrelid)
                 UNION ALL
                 SELECT 'kept trigger', tgname::text, pg_catalog.pg_get_triggerdef(oid)
                 FROM pg_catalog.pg_trigger WHERE tgrelid = $1::pg_catalog.regclass AND NOT tgisinternal",
                None,
                &[
                    relation.as_str().into(),
                    reference.columns.iter().map(|c| c.name.clone()).collect::<Vec<_>>().into(),
                    reference.constraints.iter().map(|c| c.name.clone()).collect::<Vec<_>>().into(),
                    reference.indexes.iter().map(|c| c.name.clone()).collect::<Vec<_>>().into(),
                ],
            )?
            .map(|r| {
                Ok((
                    r.get::<String>(1)?.unwrap_or_default(),
                    r.get::<String>(2)?.unwrap_or_default(),
                    r.get::<String>(3)?.unwrap_or_default(),
                ))
            })
            .collect::<Result<Vec<_>, SpiError>>()
    }));
    for (action, object, detail) in extras {
        log(table, &action, &object, &detail);
    }
}

fn log(table: &str, action: &str, object: &str, detail: &str) {
    spi(Spi::run_with_args(
        "INSERT INTO dialer.adoption_log (table_name, action, object, detail) VALUES ($1, $2, $3, $4)",
        &[
            (!table.is_empty()).then_some(table).into(),
            action.into(),
            object.into(),
            detail.into(),
        ],
    ));
}

/// Runs one DDL statement of the adoption; if it fails, refuses with the
/// failure's SQLSTATE and a message naming the table and the step.
fn step(table: &str, what: &str, sql: &str) {
    guarded(table, what, || Spi::run(sql));
}

/// Runs `f`; a PostgreSQL error in it becomes a refusal naming table and step.
fn guarded<T>(
    table: &str,
    what: &str,
    f: impl FnOnce() -> Result<T, SpiError> + std::panic::UnwindSafe,
) -> T {
    let outcome = PgTryBuilder::new(|| Ok(f()))
        .catch_others(|err| match err {
            CaughtError::PostgresError(report)
            | CaughtError::ErrorReport(report)
            | CaughtError::RustPanic {
                ereport: report, ..
            } => Err((
                report.sql_error_code(),
                report.message().to_owned(),
                report.detail().map(str::to_owned),
            )),
        })
        .execute();
    match outcome {
        Ok(result) => spi(result),
        Err((code, message, detail)) => {
            let subject = if table.is_empty() {
                String::new()
            } else {
                format!(" public.{table}")
            };
            refuse(
                code,
                format!("cannot adopt{subject}: {what}: {message}"),
                detail,
                None,
            )
        }
    }
}

fn refuse(
    code: PgSqlErrorCode,
    message: String,
    detail: Option<String>,
    hint: Option<String>,
) -> ! {
    let mut report = ErrorReport::new(code, message, "pg_dialer::adopt");
    if let Some(detail) = detail {
        report = report.set_detail(detail);
    }
    if let Some(hint) = hint {
        report = report.set_hint(hint);
    }
    report.report(PgLogLevel::ERROR);
    unreachable!("an ERROR report does not return")
}

/// A SQL identifier, always quoted (column names such as `interval` are
/// keywords).
fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

#[cfg(any(test, feature = "pg_test"))]
#[pg_schema]
mod tests {
    use pgrx::prelude::*;

    /// Tables of pg_dialer beyond the spec's: created by the install script
    /// whether or not it adopts the spec's tables (never adopted
    /// themselves); adopted tables may refer to them.
    const ADDED_TABLES: [&str; 1] = ["campaigns"];

    /// SPEC_TABLES and ADDED_TABLES name exactly the tables the install
    /// script creates in public, each spec table after the spec tables it
    /// refers to (an added table exists before any is adopted).
    #[pg_test]
    fn spec_tables_are_the_installed_tables_in_reference_order() {
        let installed = Spi::get_one::<Vec<String>>(
            "SELECT array_agg(c.relname::text ORDER BY c.relname) FROM pg_class c
             JOIN pg_depend d ON d.objid = c.oid AND d.deptype = 'e'
             JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'pg_dialer'
             WHERE c.relnamespace = 'public'::regnamespace AND c.relkind = 'r'",
        )
        .unwrap()
        .unwrap();
        let mut listed: Vec<String> = super::SPEC_TABLES
            .iter()
            .chain(ADDED_TABLES.iter())
            .map(|t| t.to_string())
            .collect();
        listed.sort();
        assert_eq!(installed, listed);
        for (i, table) in super::SPEC_TABLES.iter().enumerate() {
            let referenced = Spi::get_one_with_args::<Vec<String>>(
                "SELECT coalesce(array_agg(DISTINCT r.relname::text), '{}') FROM pg_constraint k
                 JOIN pg_class r ON r.oid = k.confrelid
                 WHERE k.contype = 'f' AND k.conrelid = ('public.' || $1)::regclass
                   AND r.relnamespace = 'public'::regnamespace AND r.oid <> k.conrelid",
                &[(*table).into()],
            )
            .unwrap()
            .unwrap();
            for r in referenced {
                if ADDED_TABLES.contains(&r.as_str()) {
                    continue;
                }
                let pos = super::SPEC_TABLES.iter().position(|t| *t == r).unwrap();
                assert!(
                    pos < i,
                    "{table} refers to {r}, which SPEC_TABLES lists later"
                );
            }
        }
    }
}
