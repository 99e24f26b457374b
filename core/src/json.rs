//! JSON that callers send (a webhook body, a call's variables, a template's
//! parameters), read from its text with limits: bad or oversized input is the
//! caller's error (22023, naming the field), never a crash.

use crate::error::DialerError;
use serde_json::Value;

/// The largest webhook body read: a long call's transcript and messages fit
/// many times over.
pub const MAX_PAYLOAD_BYTES: usize = 4 * 1024 * 1024;
/// The largest value of one field of a row (a call's variables, a template's
/// parameters).
pub const MAX_FIELD_BYTES: usize = 256 * 1024;
/// How deep JSON may nest: serde_json's own limit.
pub const MAX_DEPTH: usize = 128;

/// Parses `text` as JSON; `field` names it in errors.
pub fn parse(field: &str, text: &str, max_bytes: usize) -> Result<Value, DialerError> {
    if text.len() > max_bytes {
        return Err(DialerError::invalid(format!(
            "{field} is {} bytes of JSON; at most {max_bytes} are accepted",
            text.len()
        )));
    }
    serde_json::from_str(text).map_err(|err| {
        let reason = err.to_string();
        if reason.contains("recursion limit") {
            DialerError::invalid(format!("{field} nests deeper than {MAX_DEPTH} levels"))
        } else if reason.contains("number out of range") {
            DialerError::invalid(format!(
                "{field} holds a number beyond the range of a double precision float"
            ))
        } else {
            DialerError::invalid(format!("{field} is not valid JSON: {reason}"))
        }
    })
}

/// A JSON field of a row, read as text (NULL is `None`), with the caps of a
/// field: a value a DBA wrote beyond them is an error naming the field.
pub fn parse_field(field: &str, text: Option<&str>) -> Result<Option<Value>, DialerError> {
    text.map(|t| parse(field, t, MAX_FIELD_BYTES)).transpose()
}

/// The size of `value` as JSON text, to hold a field to `max_bytes`.
pub fn check_size(field: &str, value: &Value, max_bytes: usize) -> Result<(), DialerError> {
    let size = serde_json::to_string(value)
        .map(|s| s.len())
        .unwrap_or(usize::MAX);
    if size > max_bytes {
        return Err(DialerError::invalid(format!(
            "{field} is {size} bytes of JSON; at most {max_bytes} are accepted"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_json_parses() {
        assert_eq!(
            parse("payload", r#"{"a": [1, 2.5, "x"]}"#, 100).unwrap(),
            serde_json::json!({"a": [1, 2.5, "x"]})
        );
    }

    #[test]
    fn deep_nesting_is_the_callers_error() {
        let deep = format!("{}{}", "[".repeat(300), "]".repeat(300));
        let err = parse("custom_variables", &deep, 1 << 20).unwrap_err();
        assert_eq!(err.kind.sqlstate(), "22023");
        assert_eq!(err.message, "custom_variables nests deeper than 128 levels");
        assert!(parse(
            "x",
            &format!("{}{}", "[".repeat(100), "]".repeat(100)),
            1 << 20
        )
        .is_ok());
    }

    #[test]
    fn numbers_beyond_f64_are_the_callers_error() {
        let err = parse("payload", r#"{"duration": 1e400}"#, 100).unwrap_err();
        assert_eq!(err.kind.sqlstate(), "22023");
        assert!(
            err.message.starts_with("payload holds a number beyond"),
            "{}",
            err.message
        );
        let huge = format!("[{}]", "9".repeat(500));
        assert!(parse("payload", &huge, 1000).is_err());
    }

    #[test]
    fn size_is_capped() {
        let err = parse("payload", &format!("\"{}\"", "x".repeat(200)), 100).unwrap_err();
        assert_eq!(
            err.message,
            "payload is 202 bytes of JSON; at most 100 are accepted"
        );
        let value = serde_json::json!({"k": "x".repeat(50)});
        assert!(check_size("custom_variables", &value, 100).is_ok());
        assert!(check_size("custom_variables", &value, 20).is_err());
    }

    #[test]
    fn malformed_json_names_the_field() {
        let err = parse("payload", "{nope", 100).unwrap_err();
        assert!(
            err.message.starts_with("payload is not valid JSON"),
            "{}",
            err.message
        );
    }
}
