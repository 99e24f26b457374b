//! Campaigns: a user pauses, resumes and cancels a whole campaign at once
//! (`pause_campaign()`, `resume_campaign()`, `cancel_campaign()`, SQL shells
//! in sql/campaigns.sql); calls join one through `enqueue_call()` and
//! `enqueue_calls()` (src/checks.rs checks the campaign is the user's and
//! not canceled). Claims leave a paused campaign's calls queued.

use crate::errors::{outcome, spi};
use crate::identity::{as_extension_owner, caller_is_privileged, current_identity};
use crate::plans;
use pg_dialer_core::error::{DialerError, ErrorKind};
use pgrx::datum::TryFromDatumError;
use pgrx::prelude::*;
use pgrx::spi::SpiClient;
use pgrx::AllocatedByRust;
use std::cell::Cell;

thread_local! {
    /// Set while `cancel_campaign()` writes `canceled_at`.
    static CANCELING: Cell<bool> = const { Cell::new(false) };
}

/// A row of `public.campaigns`.
type CampaignRow = pgrx::composite_type!('static, "public.campaigns");

/// The campaign's owner and whether it is canceled, if the caller may act
/// on it (their own; any for an admin or service_role).
const FIND: &str = "
    SELECT c.user_id::text, c.canceled_at IS NOT NULL FROM public.campaigns c
    WHERE c.id = $1 AND (c.user_id = $2 OR $3)
    FOR NO KEY UPDATE";

const PAUSE: &str = "
    UPDATE public.campaigns c SET paused = $2 WHERE c.id = $1 RETURNING c";

/// Canceled, with every call of it still queued.
const CANCEL: &str = "
    WITH calls AS (
        UPDATE public.call_queue q SET status = 'canceled'
        WHERE q.campaign_id = $1 AND q.status = 'queued')
    UPDATE public.campaigns c SET canceled_at = coalesce(c.canceled_at, now())
    WHERE c.id = $1 RETURNING c";

#[pg_schema]
mod dialer {
    use super::*;

    /// The work of `pause_campaign()` (`pause`), `resume_campaign()`
    /// (`resume`) and `cancel_campaign()` (`cancel`): PT404 for a campaign
    /// that is not there or not the caller's, PT409 to resume a canceled
    /// one. Canceling takes the user's lock first, so that a call being
    /// added meanwhile is either refused or canceled with the others.
    #[pg_extern(volatile, parallel_unsafe, requires = ["tables"])]
    #[search_path(pg_catalog, pg_temp)]
    // pgrx reads the SQL columns from the spelled-out type
    #[allow(clippy::type_complexity)]
    fn campaign_action(
        campaign_id: Option<pgrx::Uuid>,
        action: &str,
    ) -> TableIterator<
        'static,
        (
            name!(
                campaign,
                Option<pgrx::composite_type!('static, "public.campaigns")>
            ),
            name!(error_code, Option<String>),
            name!(error_message, Option<String>),
            name!(error_detail, Option<String>),
            name!(error_hint, Option<String>),
        ),
    > {
        outcome(spi(Spi::connect_mut(|client| {
            super::act(client, campaign_id, action)
        })))
    }

    /// Trigger `validate_campaign` of `campaigns`: its window is a window
    /// (as `validate_call_window`), and `canceled_at` changes only through
    /// `cancel_campaign()` (which cancels the campaign's calls with it) or
    /// by an admin.
    #[pg_trigger]
    fn validate_campaign<'a>(
        trigger: &'a PgTrigger<'a>,
    ) -> Result<Option<PgHeapTuple<'a, AllocatedByRust>>, TryFromDatumError> {
        let mut row = crate::guards::new_row(trigger);
        crate::window::normalize_window(&mut row)?;
        // What it names is checked when it names it: a template made
        // private later must not keep its user from pausing or canceling.
        let named = |column: &str| -> Result<bool, TryFromDatumError> {
            let now: Option<pgrx::Uuid> = row.get_by_name(column)?;
            Ok(match trigger.old() {
                None => now.is_some(),
                Some(old) => old.get_by_name::<pgrx::Uuid>(column)? != now,
            })
        };
        let renamed = named("template_id")? || named("caller_number_id")? || named("user_id")?;
        if renamed && !crate::identity::caller_is_superuser() {
            if let Err(err) = check_references(&row) {
                crate::errors::raise(err);
            }
        }
        if let Some(old) = trigger.old() {
            let before: Option<TimestampWithTimeZone> = old.get_by_name("canceled_at")?;
            let after: Option<TimestampWithTimeZone> = row.get_by_name("canceled_at")?;
            let micros = |at: Option<TimestampWithTimeZone>| at.map(crate::checks::as_micros);
            if micros(before) != micros(after)
                && !CANCELING.with(Cell::get)
                && !caller_is_privileged()
            {
                crate::errors::raise(
                    DialerError::forbidden("campaigns.canceled_at can only be changed by an admin")
                        .with_hint("Cancel a campaign with cancel_campaign(), which cancels its queued calls too."),
                );
            }
        }
        Ok(Some(row))
    }

    /// Minutes billed for a call of `seconds` (core/src/billing.rs), for
    /// the view `campaign_progress`.
    #[pg_extern(immutable, strict, parallel_safe)]
    fn billed_minutes(seconds: i32) -> i64 {
        pg_dialer_core::billing::billed_minutes(i64::from(seconds))
    }
}

/// What a campaign names is its user's to use: a template of theirs or a
/// public one, a caller number of theirs; the same error whether another's
/// or none, so that ids of other tenants' rows cannot be probed.
fn check_references(row: &PgHeapTuple<'_, AllocatedByRust>) -> Result<(), DialerError> {
    let id = |column: &str| row.get_by_name::<pgrx::Uuid>(column).ok().flatten();
    let (user, template, number) = (id("user_id"), id("template_id"), id("caller_number_id"));
    if template.is_none() && number.is_none() {
        return Ok(());
    }
    let (template_ok, number_ok) = as_extension_owner(|| {
        crate::errors::spi(Spi::connect(|client| {
            plans::first(
                client,
                REFERENCES,
                &[user.into(), template.into(), number.into()],
                |r| {
                    Ok((
                        r.get::<bool>(1)?.unwrap_or(false),
                        r.get::<bool>(2)?.unwrap_or(false),
                    ))
                },
            )
        }))
    })
    .unwrap_or_default();
    if let (Some(template), false) = (template, template_ok) {
        return Err(DialerError::invalid(format!(
            "the campaign's template_id {template} is not a template of its user's or a public one"
        )));
    }
    if let (Some(number), false) = (number, number_ok) {
        return Err(DialerError::invalid(format!(
            "the campaign's caller_number_id {number} is not a caller number of its user's"
        )));
    }
    Ok(())
}

/// Whether the template is the user's or public, and the caller number the
/// user's.
const REFERENCES: &str = "
    SELECT $2::uuid IS NULL OR EXISTS (SELECT FROM public.call_templates t
                                     WHERE t.id = $2 AND (t.created_by = $1 OR coalesce(t.is_public, false))),
           $3::uuid IS NULL OR EXISTS (SELECT FROM public.user_phone_numbers n WHERE n.id = $3 AND n.user_id = $1)";

fn act(
    client: &SpiClient<'_>,
    campaign_id: Option<pgrx::Uuid>,
    action: &str,
) -> Result<Result<CampaignRow, DialerError>, pgrx::spi::SpiError> {
    let Some(id) = campaign_id else {
        return Ok(Err(DialerError::not_found("campaign <NULL> not found")));
    };
    let me = current_identity()
        .user_id
        .map(|id| pgrx::Uuid::from_bytes(*id.as_bytes()));
    let found = as_extension_owner(|| {
        plans::first(
            client,
            FIND,
            &[id.into(), me.into(), caller_is_privileged().into()],
            |r| Ok((r.get::<String>(1)?, r.get::<bool>(2)?.unwrap_or(false))),
        )
    })?;
    let Some((Some(owner), canceled)) = found else {
        return Ok(Err(DialerError::not_found(format!(
            "campaign {id} not found"
        ))));
    };
    let (sql, args) = match action {
        "resume" if canceled => {
            return Ok(Err(DialerError::new(
                ErrorKind::Conflict,
                format!("campaign {id} is canceled; it cannot be resumed"),
            )))
        }
        "pause" => (PAUSE, vec![id.into(), true.into()]),
        "resume" => (PAUSE, vec![id.into(), false.into()]),
        "cancel" => {
            crate::locks::lock_user(&owner);
            struct Done;
            impl Drop for Done {
                fn drop(&mut self) {
                    CANCELING.with(|c| c.set(false));
                }
            }
            let _done = Done;
            CANCELING.with(|c| c.set(true));
            let row = as_extension_owner(|| {
                plans::first(client, CANCEL, &[id.into()], |r| r.get::<CampaignRow>(1))
            })?;
            return Ok(row.flatten().ok_or_else(|| gone(id)));
        }
        other => {
            return Ok(Err(DialerError::invalid(format!(
                "a campaign is paused, resumed or canceled, not {}",
                pg_dialer_core::error::quoted(other)
            ))))
        }
    };
    let row = as_extension_owner(|| plans::first(client, sql, &args, |r| r.get::<CampaignRow>(1)))?;
    Ok(row.flatten().ok_or_else(|| gone(id)))
}

/// The campaign found above was deleted before its lock was taken.
fn gone(id: pgrx::Uuid) -> DialerError {
    DialerError::not_found(format!("campaign {id} not found"))
}
