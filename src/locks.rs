//! The locks that make one user's quota checks and usage settlements (and the
//! billing rollover) run one at a time.
//!
//! They are row locks in `dialer.user_locks`, a table only the extension's
//! owner can touch, taken by `dialer.lock_user()`, which lets a caller lock
//! only their own user unless they are privileged, and writes the lock row
//! with the owner's privileges for that one statement. An
//! advisory lock would not do: any login role can take any advisory lock with
//! `pg_advisory_xact_lock()` and so stall another tenant's work.
//!
//! Taking the lock writes the row (an upsert). At READ COMMITTED that is a
//! lock and nothing more. At REPEATABLE READ and SERIALIZABLE, a transaction
//! whose snapshot predates the previous holder's commit cannot see what that
//! holder queued, and PostgreSQL refuses its write of the same row with a
//! serialization failure (40001): the quota holds at every isolation level,
//! and the client retries.

use pgrx::prelude::*;

/// The key of the billing rollover's lock: no user has the nil UUID as id,
/// and `dialer.lock_user()` gives it to privileged callers only.
pub const ROLLOVER_KEY: &str = "00000000-0000-0000-0000-000000000000";

/// Takes the lock of `user_id` until the transaction ends: one's own, or
/// anyone's (and the rollover's) for an admin or service_role. The one
/// implementation of `dialer.lock_user()`, for Rust callers too.
pub fn lock_user(user_id: &str) {
    let own = crate::identity::current_identity()
        .user_id
        .is_some_and(|id| id.to_string() == user_id)
        && user_id != ROLLOVER_KEY;
    if !own && !crate::identity::caller_is_privileged() {
        crate::errors::raise(pg_dialer_core::error::DialerError::forbidden(format!(
            "you can only take your own lock, not that of {user_id}"
        )));
    }
    crate::identity::as_extension_owner(|| {
        crate::errors::spi(Spi::connect(|client| take(client, user_id)))
    });
}

/// Takes the lock of `user_id` with `client`, under the extension's owner
/// (`as_extension_owner`), for a caller that has checked the user is the
/// caller's own or the caller may act for anyone.
pub fn take(client: &pgrx::spi::SpiClient<'_>, user_id: &str) -> Result<(), pgrx::spi::SpiError> {
    // An upsert: its conflict check always goes through the primary key. An
    // UPDATE first would be planned once per session, and a session that
    // planned it while the table was empty (just installed, or vacuumed so)
    // would scan the whole table for every lock until something made it plan
    // again.
    crate::plans::query(
        client,
        "INSERT INTO dialer.user_locks AS l (user_id) VALUES ($1::uuid)
         ON CONFLICT (user_id) DO UPDATE SET locked_at = pg_catalog.now()",
        &[user_id.into()],
    )
    .map(drop)
}

#[pg_schema]
mod dialer {
    use pgrx::prelude::*;

    /// Takes the lock of `user_id` until the transaction ends (see
    /// [`super::lock_user`]).
    #[pg_extern(volatile, strict, parallel_unsafe)]
    #[search_path(pg_catalog)]
    fn lock_user(user_id: pgrx::Uuid) {
        super::lock_user(&user_id.to_string());
    }
}
