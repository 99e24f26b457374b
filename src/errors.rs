//! Raising the core's errors in PostgreSQL.
//!
//! pgrx raises from Rust only with the SQLSTATEs PostgreSQL knows, so errors
//! whose SQLSTATE is one of pg_dialer's own (`PT402`, `PT404`, `PT409`) travel
//! back to SQL as a value, `{"error": {...}}`, and `dialer.raise_error()`
//! raises them there. Errors with a standard SQLSTATE are raised directly.

use pg_dialer_core::error::{DialerError, ErrorKind};
use pgrx::pg_sys::panic::ErrorReport;
use pgrx::prelude::*;
use serde_json::{json, Value};

/// `{"ok": value}` or `{"error": {"code", "message", "detail", "hint"}}`.
pub fn to_result_json(result: Result<Value, DialerError>) -> pgrx::JsonB {
    pgrx::JsonB(match result {
        Ok(value) => json!({ "ok": value }),
        Err(err) => json!({ "error": err.to_json() }),
    })
}

/// Raises an error of a standard SQLSTATE (invalid input, forbidden).
pub fn raise(err: DialerError) -> ! {
    let code = match err.kind {
        ErrorKind::InvalidInput => PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
        ErrorKind::Forbidden => PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE,
        // Callers return these through to_result_json; reaching here is a bug
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
