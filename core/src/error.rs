//! The errors a caller can cause, each with a stable SQLSTATE that PostgREST
//! turns into a fitting HTTP status (`PTxyz` becomes status xyz).

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// 22023 invalid_parameter_value: HTTP 400.
    InvalidInput,
    /// 42501 insufficient_privilege: HTTP 403 (401 for anon).
    Forbidden,
    /// PT404: HTTP 404.
    NotFound,
    /// PT402: no subscription, or the plan's quota is used up. HTTP 402.
    PaymentRequired,
    /// PT409: the row is not in a state that allows this. HTTP 409.
    Conflict,
}

impl ErrorKind {
    pub fn sqlstate(self) -> &'static str {
        match self {
            ErrorKind::InvalidInput => "22023",
            ErrorKind::Forbidden => "42501",
            ErrorKind::NotFound => "PT404",
            ErrorKind::PaymentRequired => "PT402",
            ErrorKind::Conflict => "PT409",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DialerError {
    pub kind: ErrorKind,
    pub message: String,
    pub detail: Option<String>,
    pub hint: Option<String>,
}

impl DialerError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        DialerError {
            kind,
            message: message.into(),
            detail: None,
            hint: None,
        }
    }
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidInput, message)
    }
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Forbidden, message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, message)
    }
    pub fn payment_required(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::PaymentRequired, message)
    }
    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

impl fmt::Display for DialerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind.sqlstate(), self.message)
    }
}

impl std::error::Error for DialerError {}

/// Quotes a value a client sent, shortened, for an error message.
pub fn quoted(value: &str) -> String {
    const MAX: usize = 60;
    match value.char_indices().nth(MAX) {
        Some((end, _)) => format!("\"{}...\"", &value[..end]),
        None => format!("\"{value}\""),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_its_sqlstate() {
        assert_eq!(DialerError::invalid("x").kind.sqlstate(), "22023");
        assert_eq!(DialerError::forbidden("x").kind.sqlstate(), "42501");
        assert_eq!(DialerError::not_found("x").kind.sqlstate(), "PT404");
        assert_eq!(DialerError::payment_required("x").kind.sqlstate(), "PT402");
        assert_eq!(
            DialerError::new(ErrorKind::Conflict, "x").kind.sqlstate(),
            "PT409"
        );
    }

    #[test]
    fn quoted_values_are_short() {
        assert_eq!(quoted("abc"), "\"abc\"");
        assert!(quoted(&"9".repeat(1000)).len() < 70);
    }
}
