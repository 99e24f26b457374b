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
//! Taking the lock writes the row (an update, or an upsert the first time).
//! At READ COMMITTED that is a
//! lock and nothing more. At REPEATABLE READ and SERIALIZABLE, a transaction
//! whose snapshot predates the previous holder's commit cannot see what that
//! holder queued, and PostgreSQL refuses its write of the same row with a
//! serialization failure (40001): the quota holds at every isolation level,
//! and the client retries.

use pgrx::prelude::*;

/// The key of the billing rollover's lock: no user has the nil UUID as id,
/// and `dialer.lock_user()` gives it to privileged callers only.
pub const ROLLOVER_KEY: &str = "00000000-0000-0000-0000-000000000000";

#[pg_schema]
mod dialer {
    use crate::errors::{raise, spi};
    use crate::identity::{caller_is_privileged, current_identity};
    use pg_dialer_core::error::DialerError;
    use pgrx::prelude::*;

    /// Takes the lock of `user_id` until the transaction ends: one's own, or
    /// anyone's (and the rollover's) for an admin or service_role.
    #[pg_extern(volatile, strict, parallel_unsafe)]
    #[search_path(pg_catalog)]
    fn lock_user(user_id: pgrx::Uuid) {
        let own = current_identity().user_id.map(|id| *id.as_bytes()) == Some(*user_id.as_bytes())
            && user_id.to_string() != super::ROLLOVER_KEY;
        if !own && !caller_is_privileged() {
            raise(DialerError::forbidden(format!(
                "you can only take your own lock, not that of {user_id}"
            )));
        }
        crate::identity::as_extension_owner(|| {
            spi(Spi::connect(|client| {
                // The user's row is there after their first lock: an UPDATE,
                // cheaper than the upsert that creates it.
                let updated = crate::plans::query(
                    client,
                    "UPDATE dialer.user_locks SET locked_at = pg_catalog.now() WHERE user_id = $1 RETURNING 1",
                    &[user_id.into()],
                )?
                .len();
                if updated == 0 {
                    crate::plans::query(
                        client,
                        "INSERT INTO dialer.user_locks AS l (user_id) VALUES ($1)
                         ON CONFLICT (user_id) DO UPDATE SET locked_at = pg_catalog.now()",
                        &[user_id.into()],
                    )?;
                }
                Ok::<_, pgrx::spi::SpiError>(())
            }))
        });
    }
}
