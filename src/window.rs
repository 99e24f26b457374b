//! Calling windows in the database (the rules are core/src/window.rs): a
//! queued call's window as stored, its next opening as PostgreSQL's time,
//! and the trigger that checks the windows of campaigns and user profiles.

use crate::errors::raise;
use crate::queue::jsonb_column;
use chrono::{DateTime, Utc};
use pg_dialer_core::error::DialerError;
use pg_dialer_core::json;
use pg_dialer_core::phone::PhoneNumber;
use pg_dialer_core::window::{Tz, Window, HORIZON_DAYS};
use pgrx::datum::TryFromDatumError;
use pgrx::prelude::*;
use pgrx::{AllocatedByRust, JsonB};

/// 2000-01-01, PostgreSQL's epoch, in microseconds since 1970-01-01.
const POSTGRES_EPOCH: i64 = 946_684_800_000_000;

/// A PostgreSQL time as a UTC time; `None` for ±infinity and times beyond
/// chrono's range.
pub fn to_utc(at: TimestampWithTimeZone) -> Option<DateTime<Utc>> {
    if !at.is_finite() {
        return None;
    }
    let micros = pg_sys::TimestampTz::from(at).checked_add(POSTGRES_EPOCH)?;
    DateTime::from_timestamp_micros(micros)
}

/// A UTC time as PostgreSQL's (near one it came from).
pub fn from_utc(at: DateTime<Utc>) -> TimestampWithTimeZone {
    try_from_utc(at).expect("a time of chrono's range that came from PostgreSQL's")
}

/// A UTC time as PostgreSQL's, if PostgreSQL's range holds it.
pub fn try_from_utc(at: DateTime<Utc>) -> Option<TimestampWithTimeZone> {
    TimestampWithTimeZone::try_from(at.timestamp_micros().checked_sub(POSTGRES_EPOCH)?)
        .ok()
        .filter(|t| t.is_finite())
}

/// An RFC 3339 time with its offset (`2026-12-01T09:00:00-05:00`), as
/// PostgreSQL's; `None` for anything else. Read the same way in every
/// session, whatever its DateStyle or TimeZone.
pub fn parse_rfc3339(text: &str) -> Option<TimestampWithTimeZone> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .and_then(|at| try_from_utc(at.with_timezone(&Utc)))
}

/// The transaction's start, as `now()`.
pub fn transaction_now() -> TimestampWithTimeZone {
    // SAFETY: reads the transaction's start time, as now() does
    TimestampWithTimeZone::try_from(unsafe { pg_sys::GetCurrentTransactionStartTimestamp() })
        .expect("the transaction's start is a valid time")
}

thread_local! {
    /// Windows (in words, with their zones) found never to open from a time on.
    static NEVER_OPENS: std::cell::RefCell<std::collections::HashSet<(String, i64)>> =
        std::cell::RefCell::new(std::collections::HashSet::new());
}

/// The longest window read (a full one is a few hundred bytes).
pub const MAX_WINDOW_BYTES: usize = 16 * 1024;

/// A call's window with the zones it is kept in.
pub struct CallWindow {
    pub window: Window,
    pub zones: Vec<Tz>,
}

impl CallWindow {
    /// The window of a queued call (its `call_window` as stored, NULL for
    /// none) for its recipient; an error names what cannot be read.
    pub fn of_call(stored: Option<&str>, recipient: &PhoneNumber) -> Result<Self, DialerError> {
        let window = match stored {
            None => Window::Always,
            Some(text) => Window::parse(
                "call_window",
                &json::parse("call_window", text, MAX_WINDOW_BYTES)?,
            )?,
        };
        let zones = window.zones(recipient)?;
        Ok(CallWindow { window, zones })
    }

    /// The first time at or after `at` (and not before now) when the call
    /// may be placed: `at` itself when the window is open then; `Err` with
    /// the reason when it does not open within the horizon. A time beyond
    /// chrono's range (or infinity) stays as it is.
    pub fn opening(&self, at: TimestampWithTimeZone) -> Result<TimestampWithTimeZone, DialerError> {
        let Some(from) = to_utc(at) else {
            return Ok(at);
        };
        if self.window.is_open(&self.zones, from) {
            return Ok(at);
        }
        // Finding that a window never opens tries every opening of every
        // zone: known once per window, zones and time (the calls of a batch
        // share theirs, now), not for every call.
        let key = (
            format!("{}|{:?}", self.window.describe(), self.zones),
            from.timestamp_micros(),
        );
        let known_never = NEVER_OPENS.with(|never| never.borrow().contains(&key));
        let opening = if known_never {
            None
        } else {
            self.window.next_opening(&self.zones, from)
        };
        if opening.is_none() && !known_never {
            NEVER_OPENS.with(|never| {
                let mut never = never.borrow_mut();
                if never.len() >= 1024 {
                    never.clear();
                }
                never.insert(key);
            });
        }
        match opening {
            Some(open) if open == from => Ok(at),
            Some(open) => Ok(from_utc(open)),
            None => Err(DialerError::invalid(format!(
                "the call window {} never opens in all of the recipient's time zones ({}) within {HORIZON_DAYS} days",
                self.window.describe(),
                self.zones.iter().map(|z| z.name()).collect::<Vec<_>>().join(", ")
            ))
            .with_hint("Name one zone in call_window.time_zone, or widen the window's hours.")),
        }
    }
}

#[pg_schema]
mod dialer {
    use super::*;

    /// Trigger `validate_call_window` of `user_profiles`: its `call_window`
    /// is a window (22023 naming what is wrong otherwise), stored with every
    /// key written out.
    #[pg_trigger]
    fn validate_call_window<'a>(
        trigger: &'a PgTrigger<'a>,
    ) -> Result<Option<PgHeapTuple<'a, AllocatedByRust>>, TryFromDatumError> {
        let mut row = crate::guards::new_row(trigger);
        normalize_window(&mut row)?;
        Ok(Some(row))
    }
}

/// The row's `call_window`, checked and written out (see
/// `validate_call_window`).
pub fn normalize_window(
    row: &mut PgHeapTuple<'_, AllocatedByRust>,
) -> Result<(), TryFromDatumError> {
    if let Some(value) = jsonb_column(row, "call_window", MAX_WINDOW_BYTES)? {
        let window = Window::parse("call_window", &value).unwrap_or_else(|err| raise(err));
        row.set_by_name("call_window", JsonB(window.to_json()))?;
    }
    Ok(())
}
