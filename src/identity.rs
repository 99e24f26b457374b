//! Who is calling: the glue between PostgREST's `request.jwt.claims` setting
//! and the pure claims parser of `pg_dialer_core`.
//!
//! Policies call `dialer.uid()` and `dialer.is_admin()` rather than
//! `auth.uid()`: these functions belong to the extension, so a `pg_restore`
//! recreates them with `CREATE EXTENSION` before any policy needs them.

use pg_dialer_core::claims::{parse_identity, Identity};
use pgrx::pg_sys::panic::ErrorReport;
use pgrx::prelude::*;
use std::ffi::CStr;

thread_local! {
    /// The identity parsed from the claims setting last read, by its exact
    /// text: a request sets the claims once, and a call asks who it is
    /// several times. Parsing is a pure function of the text, so the same
    /// text always means the same identity.
    static LAST_IDENTITY: std::cell::RefCell<Option<(Option<Vec<u8>>, Identity)>> =
        const { std::cell::RefCell::new(None) };
}

/// The identity of the current request. An untrustworthy claims setting is an
/// authorization error (42501), never an anonymous request.
pub fn current_identity() -> Identity {
    // SAFETY: GetConfigOption with missing_ok=true returns NULL or a pointer to
    // a NUL-terminated string owned by the GUC machinery, valid until the
    // setting changes; the bytes are compared or copied at once.
    let claims: Option<&[u8]> = unsafe {
        let value = pg_sys::GetConfigOption(c"request.jwt.claims".as_ptr(), true, false);
        (!value.is_null()).then(|| CStr::from_ptr(value).to_bytes())
    };
    let known = LAST_IDENTITY.with(|last| {
        last.borrow()
            .as_ref()
            .filter(|(text, _)| text.as_deref() == claims)
            .map(|(_, identity)| *identity)
    });
    if let Some(identity) = known {
        return identity;
    }
    let text = claims.map(String::from_utf8_lossy);
    let identity = parse_identity(text.as_deref()).unwrap_or_else(|err| {
        ErrorReport::new(
            PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE,
            err.to_string(),
            "pg_dialer::identity",
        )
        .report(PgLogLevel::ERROR);
        unreachable!("an ERROR report does not return")
    });
    LAST_IDENTITY.with(|last| *last.borrow_mut() = Some((claims.map(<[u8]>::to_vec), identity)));
    identity
}

/// Whether the caller may act for any user: an admin by claims, or a role
/// that bypasses row level security (service_role, a superuser).
///
/// The role is the one the session set (`SET ROLE`, as PostgREST does), also
/// inside a SECURITY DEFINER function, where `current_user` is the owner.
pub fn caller_is_privileged() -> bool {
    current_identity().is_admin || {
        let role = outer_role();
        // SAFETY: plain catalog lookups of a valid role oid.
        unsafe { pg_sys::superuser_arg(role) || pg_sys::has_bypassrls_privilege(role) }
    }
}

/// Refuses callers that are not the dialing worker (service_role, an admin):
/// the one check of every worker function.
pub fn require_worker(function: &str) {
    if !caller_is_privileged() {
        crate::errors::raise(pg_dialer_core::error::DialerError::forbidden(format!(
            "{function}() is for the dialing worker: call it as service_role or as an admin"
        )));
    }
}

/// The user a request that may name one (`target`) acts for: the caller, or
/// anyone for an admin or service_role (core/src/claims.rs, `acting_for`);
/// 42501 otherwise, naming the user. `action` says what the caller does.
pub fn acting_for(target: Option<pgrx::Uuid>, action: &str) -> pgrx::Uuid {
    let me = current_identity().user_id;
    let target = target.map(|id| uuid::Uuid::from_bytes(*id.as_bytes()));
    // the privilege is looked up only when it matters
    let privileged = target.is_some_and(|t| Some(t) != me) && caller_is_privileged();
    let user = pg_dialer_core::claims::acting_for(me, privileged, target, action)
        .unwrap_or_else(|err| crate::errors::raise(err));
    pgrx::Uuid::from_bytes(*user.as_bytes())
}

/// Whether the caller's role is a superuser (a DBA loading data or restoring
/// a dump), by the same role as `caller_is_privileged`.
pub fn caller_is_superuser() -> bool {
    // SAFETY: plain catalog lookup of a valid role oid.
    unsafe { pg_sys::superuser_arg(outer_role()) }
}

/// Runs `f` with the privileges of the extension's owner (as a SECURITY
/// DEFINER function would, for just these statements; SET ROLE is refused
/// meanwhile) and `search_path = pg_catalog, pg_temp`, and the caller's
/// again afterwards, also when `f` fails.
pub fn as_extension_owner<T>(f: impl FnOnce() -> T) -> T {
    let owner = extension_owner();
    let mut user = pg_sys::InvalidOid;
    let mut context: i32 = 0;
    // SAFETY: reads and sets the backend's current user and security context,
    // as fmgr_security_definer() does; restored below whatever happens.
    unsafe {
        pg_sys::GetUserIdAndSecContext(&mut user, &mut context);
        pg_sys::SetUserIdAndSecContext(
            owner,
            context | pg_sys::SECURITY_LOCAL_USERID_CHANGE as i32,
        );
    }
    // The owner's statements find names in pg_catalog, then pg_temp, and
    // nowhere else, whatever the caller's search_path: a function, operator
    // or (temporary) type of the caller's must never run with the owner's
    // privileges. Set as a SECURITY DEFINER function's SET clause is, at a
    // GUC nest level of its own; an error unwinds it with the
    // (sub)transaction, as it does for such a function.
    // SAFETY: a setting of this backend, restored below.
    let nest = unsafe {
        let nest = pg_sys::NewGUCNestLevel();
        pg_sys::set_config_option(
            c"search_path".as_ptr(),
            c"pg_catalog, pg_temp".as_ptr(),
            pg_sys::GucContext::PGC_USERSET,
            pg_sys::GucSource::PGC_S_SESSION,
            pg_sys::GucAction::GUC_ACTION_SAVE,
            true,
            0,
            false,
        );
        nest
    };
    let result = PgTryBuilder::new(std::panic::AssertUnwindSafe(f))
        .finally(|| {
            // SAFETY: restores the values read above.
            unsafe { pg_sys::SetUserIdAndSecContext(user, context) }
        })
        .execute();
    // SAFETY: pops the nest level pushed above, restoring search_path
    unsafe { pg_sys::AtEOXact_GUC(true, nest) };
    result
}

thread_local! {
    /// The extension's owner, and the local transaction that read it.
    static OWNER: std::cell::Cell<Option<(u32, pg_sys::Oid)>> = const { std::cell::Cell::new(None) };
}

/// The extension's owner, read once per transaction: a call queues, locks
/// and settles under it several times. Read from `pg_extension` by its name
/// index, as PostgreSQL's own `get_extension_oid()` does, without SPI: a
/// query would start an executor (about a twentieth of an enqueue's time).
fn extension_owner() -> pg_sys::Oid {
    let xact = local_transaction_id();
    if let Some((seen, owner)) = OWNER.get() {
        if seen == xact {
            return owner;
        }
    }
    // SAFETY: an index scan of a catalog under AccessShareLock, as
    // get_extension_oid() in extension.c does; the tuple is read before the
    // scan ends.
    let owner = unsafe {
        let rel = pg_sys::table_open(pg_sys::ExtensionRelationId, pg_sys::AccessShareLock as _);
        let mut key: pg_sys::ScanKeyData = std::mem::zeroed();
        pg_sys::ScanKeyInit(
            &mut key,
            pg_sys::Anum_pg_extension_extname as _,
            pg_sys::BTEqualStrategyNumber as _,
            pg_sys::regproc::from(pg_sys::F_NAMEEQ),
            pg_sys::Datum::from(c"pg_dialer".as_ptr()),
        );
        let scan = pg_sys::systable_beginscan(
            rel,
            pg_sys::Oid::from(pg_sys::ExtensionNameIndexId),
            true,
            std::ptr::null_mut(),
            1,
            &mut key,
        );
        let tuple = pg_sys::systable_getnext(scan);
        let owner = pg_sys::heap_tuple_get_struct::<pg_sys::FormData_pg_extension>(tuple)
            .as_ref()
            .map(|extension| extension.extowner);
        pg_sys::systable_endscan(scan);
        pg_sys::table_close(rel, pg_sys::AccessShareLock as _);
        owner
    }
    .expect("pg_dialer is installed");
    OWNER.set(Some((xact, owner)));
    owner
}

/// The backend's local transaction id: different for every transaction of
/// the session.
fn local_transaction_id() -> u32 {
    // SAFETY: MyProc is set for every backend that runs SQL.
    unsafe {
        #[cfg(feature = "pg17")]
        {
            (*pg_sys::MyProc).vxid.lxid
        }
        #[cfg(not(feature = "pg17"))]
        {
            (*pg_sys::MyProc).lxid
        }
    }
}

fn outer_role() -> pg_sys::Oid {
    // SAFETY: reads a backend global that is always set inside a transaction.
    unsafe { pg_sys::GetOuterUserId() }
}

#[pg_schema]
pub mod dialer {
    use pgrx::prelude::*;

    /// The current user: the `sub` claim of `request.jwt.claims`, or NULL.
    #[pg_extern(stable, strict, parallel_safe)]
    pub fn uid() -> Option<pgrx::Uuid> {
        super::current_identity()
            .user_id
            .map(|id| pgrx::Uuid::from_bytes(*id.as_bytes()))
    }

    /// Whether the request's claims carry `app_metadata.role = 'admin'`.
    #[pg_extern(stable, strict, parallel_safe)]
    pub fn is_admin() -> bool {
        super::current_identity().is_admin
    }

    /// An admin, or a role that bypasses RLS: who may act for any user.
    #[pg_extern(stable, strict, parallel_safe)]
    pub fn is_privileged() -> bool {
        super::caller_is_privileged()
    }
}

#[cfg(any(test, feature = "pg_test"))]
#[pg_schema]
mod tests {
    use pgrx::prelude::*;

    const ALICE: &str = "6f1c2a9e-3b7d-4c1e-9a52-0d8e4f7b3a11";

    fn set_claims(claims: &str) {
        Spi::run_with_args(
            "SELECT set_config('request.jwt.claims', $1, true)",
            &[claims.into()],
        )
        .unwrap();
    }

    #[pg_test]
    fn the_owners_statements_find_names_in_pg_catalog_and_pg_temp_only() {
        Spi::run("SET LOCAL search_path = public, dialer").unwrap();
        let inside = crate::identity::as_extension_owner(|| {
            Spi::get_one::<String>("SHOW search_path").unwrap()
        });
        assert_eq!(inside.as_deref(), Some("pg_catalog, pg_temp"));
        assert_eq!(
            Spi::get_one::<String>("SHOW search_path")
                .unwrap()
                .as_deref(),
            Some("public, dialer"),
            "the caller's search_path again afterwards"
        );
    }

    #[pg_test]
    fn uid_reads_sub_from_claims() {
        set_claims(&format!(r#"{{"sub":"{ALICE}","role":"authenticated"}}"#));
        let uid = Spi::get_one::<String>("SELECT dialer.uid()::text").unwrap();
        assert_eq!(uid.as_deref(), Some(ALICE));
        assert_eq!(
            Spi::get_one::<bool>("SELECT dialer.is_admin()").unwrap(),
            Some(false)
        );
    }

    #[pg_test]
    fn no_claims_means_no_user() {
        set_claims("");
        assert_eq!(
            Spi::get_one::<pgrx::Uuid>("SELECT dialer.uid()").unwrap(),
            None
        );
    }

    #[pg_test]
    fn admin_from_app_metadata() {
        set_claims(&format!(
            r#"{{"sub":"{ALICE}","app_metadata":{{"role":"admin"}}}}"#
        ));
        assert_eq!(
            Spi::get_one::<bool>("SELECT dialer.is_admin()").unwrap(),
            Some(true)
        );
    }

    #[pg_test]
    fn auth_uid_agrees_with_dialer_uid() {
        set_claims(&format!(r#"{{"sub":"{ALICE}"}}"#));
        assert_eq!(
            Spi::get_one::<bool>("SELECT auth.uid() = dialer.uid()").unwrap(),
            Some(true)
        );
    }

    #[pg_test(error = "request.jwt.claims: sub \"nobody\" is not a uuid")]
    fn malformed_sub_is_refused() {
        set_claims(r#"{"sub":"nobody"}"#);
        Spi::get_one::<pgrx::Uuid>("SELECT dialer.uid()").unwrap();
    }
}
