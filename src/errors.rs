//! Raising the core's errors in PostgreSQL.
//!
//! Errors with PostgreSQL's own SQLSTATEs (22023, 42501) are raised from Rust
//! directly ([`raise`]). pgrx raises from Rust only the SQLSTATEs it knows
//! (its `PgSqlErrorCode` is a closed enum; any other code, also one passing
//! through a Rust frame from SQL beneath it, becomes XX000, HTTP 500), and
//! PostgREST's `PTxyz` codes are not among them. So the rule:
//!
//! **A PT code is never raised beneath a Rust frame.** A Rust function that
//! can fail with one returns it as a value, a row of [`Outcome`]: the result
//! and `error_code`, `error_message`, `error_detail`, `error_hint`. Its SQL
//! shell (sql/queue.sql, sql/billing.sql) only calls it and hands the row to
//! `dialer.raised()`, which raises the error or returns the result. Rust
//! never runs SQL that could raise a PT code (tests/sql/error_boundary.sql).

use pg_dialer_core::error::{DialerError, ErrorKind};
use pgrx::pg_sys::panic::ErrorReport;
use pgrx::prelude::*;

/// A Rust function's answer for its SQL shell: one row of the result (NULL on
/// error) and the error's code, message, detail and hint (NULL without one).
pub type Outcome<T> = TableIterator<
    'static,
    (
        Option<T>,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
    ),
>;

/// The row of an [`Outcome`].
pub fn outcome<T: 'static>(result: Result<T, DialerError>) -> Outcome<T> {
    TableIterator::once(match result {
        Ok(value) => (Some(value), None, None, None, None),
        Err(err) => {
            let (code, message, detail, hint) = error_columns(err);
            (None, code, message, detail, hint)
        }
    })
}

/// The row of an [`Outcome`] whose result may be NULL without an error.
pub fn outcome_or_null<T: 'static>(result: Result<Option<T>, DialerError>) -> Outcome<T> {
    match result {
        Ok(value) => TableIterator::once((value, None, None, None, None)),
        Err(err) => outcome(Err(err)),
    }
}

/// An error as the columns `error_code`, `error_message`, `error_detail`,
/// `error_hint` of an [`Outcome`] (or of a wider row of the same kind).
pub fn error_columns(
    err: DialerError,
) -> (
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
) {
    (
        Some(err.kind.sqlstate().to_string()),
        Some(err.message),
        err.detail,
        err.hint,
    )
}

/// Raises an error of a standard SQLSTATE (invalid input, forbidden).
pub fn raise(err: DialerError) -> ! {
    let code = match err.kind {
        ErrorKind::InvalidInput => PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
        ErrorKind::Forbidden => PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE,
        // Callers return these as an Outcome; reaching here is a bug
        // in pg_dialer, reported as such rather than with a wrong status.
        ErrorKind::NotFound | ErrorKind::PaymentRequired | ErrorKind::Conflict => {
            PgSqlErrorCode::ERRCODE_INTERNAL_ERROR
        }
    };
    let mut report = ErrorReport::new(code, err.message, "pg_dialer");
    if let Some(detail) = err.detail {
        report = report.set_detail(detail);
    }
    if let Some(hint) = err.hint {
        report = report.set_hint(hint);
    }
    report.report(PgLogLevel::ERROR);
    unreachable!("an ERROR report does not return")
}

/// Unwraps an SPI result: a failure there is a bug, not the caller's error.
pub fn spi<T>(result: Result<T, pgrx::spi::SpiError>) -> T {
    result.unwrap_or_else(|err| panic!("pg_dialer: SPI failed: {err}"))
}

#[cfg(any(test, feature = "pg_test"))]
#[pg_schema]
mod tests {
    use pgrx::pg_sys::panic::CaughtError;
    use pgrx::prelude::*;

    /// Why the rule of this module: a PT code raised by SQL that Rust runs
    /// comes back through the Rust frame as XX000, its message kept.
    #[pg_test]
    fn a_pt_code_beneath_a_rust_frame_becomes_xx000() {
        let caught = PgTryBuilder::new(|| {
            Spi::run("SELECT dialer.raised(1, 'PT404', 'call x not found', NULL, NULL)")
                .expect("raises");
            None
        })
        .catch_others(|err| match err {
            CaughtError::PostgresError(report) | CaughtError::ErrorReport(report) => {
                Some((report.sql_error_code(), report.message().to_string()))
            }
            CaughtError::RustPanic { .. } => None,
        })
        .execute();
        assert_eq!(
            caught,
            Some((
                PgSqlErrorCode::ERRCODE_INTERNAL_ERROR,
                "call x not found".to_string()
            ))
        );
    }
}
