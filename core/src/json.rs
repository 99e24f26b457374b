//! JSON that callers send (a webhook body, a call's variables, a template's
//! parameters), read from its text with limits: bad or oversized input is the
//! caller's error (22023, naming the field), never a crash.

use crate::error::DialerError;
use serde::de::{Deserializer, IgnoredAny, SeqAccess, Visitor};
use serde_json::value::RawValue;
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
    serde_json::from_str(text).map_err(|err| parse_error(field, &err))
}

fn parse_error(field: &str, err: &serde_json::Error) -> DialerError {
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
}

/// A JSON array read from `text` (at most `max_bytes`), its first
/// `max_items` elements kept as their text, not parsed (each is read on
/// its own, within its own limits), and the number of elements in all.
/// Not an array: `None`.
pub fn parse_list<'t>(
    field: &str,
    text: &'t str,
    max_bytes: usize,
    max_items: usize,
) -> Result<Option<(Vec<&'t RawValue>, usize)>, DialerError> {
    if text.len() > max_bytes {
        return Err(DialerError::invalid(format!(
            "{field} is {} bytes of JSON; at most {max_bytes} are accepted",
            text.len()
        )));
    }
    if !text.trim_start().starts_with('[') {
        return Ok(None);
    }
    let mut reader = serde_json::Deserializer::from_str(text);
    let list = reader
        .deserialize_seq(Bounded(max_items))
        .and_then(|list| reader.end().map(|()| list))
        .map_err(|err| parse_error(field, &err))?;
    Ok(Some(list))
}

/// Keeps the first elements of a list, and counts the others.
struct Bounded(usize);

impl<'de> Visitor<'de> for Bounded {
    type Value = (Vec<&'de RawValue>, usize);

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a list")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut kept = Vec::new();
        while kept.len() < self.0 {
            match seq.next_element::<&'de RawValue>()? {
                Some(item) => kept.push(item),
                None => {
                    let count = kept.len();
                    return Ok((kept, count));
                }
            }
        }
        let mut count = kept.len();
        while seq.next_element::<IgnoredAny>()?.is_some() {
            count += 1;
        }
        Ok((kept, count))
    }
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
    fn lists_keep_their_elements_as_text_up_to_a_bound() {
        let (items, count) = parse_list("calls", r#"[{"a": 1}, [2, 3], "x"]"#, 100, 10)
            .unwrap()
            .unwrap();
        assert_eq!(count, 3);
        let texts: Vec<&str> = items.iter().map(|i| i.get()).collect();
        assert_eq!(texts, [r#"{"a": 1}"#, "[2, 3]", r#""x""#]);
        let long = format!("[{}0]", "0,".repeat(20_000));
        let (items, count) = parse_list("calls", &long, 1 << 20, 5).unwrap().unwrap();
        assert_eq!((items.len(), count), (5, 20_001));
        assert!(parse_list("calls", r#"{"a": 1}"#, 100, 10)
            .unwrap()
            .is_none());
        assert!(parse_list("calls", "[1, 2", 100, 10).is_err());
        assert!(parse_list("calls", "[1] 2", 100, 10).is_err());
        // an element is kept as its text: its own reading holds it to the
        // depth limit
        let deep = format!("[{}{}]", "[".repeat(300), "]".repeat(300));
        let (items, _) = parse_list("calls", &deep, 1 << 20, 10).unwrap().unwrap();
        assert!(parse("call", items[0].get(), 1 << 20).is_err());
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
