//! Phone numbers, parsed and normalized to E.164 with libphonenumber's rules
//! (the `phonenumber` crate), never with a hand-written pattern.

use crate::error::{quoted, DialerError};
use phonenumber::Mode;

/// A valid number in E.164 form, with the parts routing needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhoneNumber {
    /// `+14155550100`
    pub e164: String,
    /// The country calling code without `+`: `1`, `44`.
    pub country_code: String,
    /// The national significant number: `4155550100`.
    pub national: String,
}

impl PhoneNumber {
    /// Whether the number lies in the given area code of the given country:
    /// its national number starts with the area code.
    pub fn in_area(&self, country_code: &str, area_code: &str) -> bool {
        !area_code.is_empty()
            && self.country_code == country_code
            && self.national.starts_with(area_code)
    }
}

/// Parses an international number (`+1 (415) 555-0100`, `+44 20 7946 0173`,
/// `tel:+1-415-555-0100`). `field` names the argument in error messages.
pub fn parse_e164(field: &str, input: &str) -> Result<PhoneNumber, DialerError> {
    let trimmed = input.trim();
    if trimmed.is_empty() {
        return Err(DialerError::invalid(format!("{field} is empty")));
    }
    let number = phonenumber::parse(None, trimmed).map_err(|err| {
        let hint = "Write the number with its country code, e.g. +14155550100.";
        match err {
            phonenumber::ParseError::InvalidCountryCode => DialerError::invalid(format!(
                "{field} {} has no valid country code",
                quoted(trimmed)
            ))
            .with_hint(hint),
            _ => DialerError::invalid(format!("{field} {} is not a phone number", quoted(trimmed)))
                .with_hint(hint),
        }
    })?;
    if !number.is_valid() {
        return Err(DialerError::invalid(format!(
            "{field} {} is not a valid number in country +{}",
            quoted(trimmed),
            number.code().value()
        )));
    }
    Ok(PhoneNumber {
        e164: number.format().mode(Mode::E164).to_string(),
        country_code: number.code().value().to_string(),
        national: number.national().to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_are_normalized_to_e164() {
        for input in [
            "+1 (415) 555-0100",
            "+14155550100",
            "  +1 415 555 0100 ",
            "+1.415.555.0100",
            "tel:+1-415-555-0100",
        ] {
            let n = parse_e164("recipient_number", input).unwrap();
            assert_eq!(n.e164, "+14155550100", "{input}");
            assert_eq!(n.country_code, "1");
            assert_eq!(n.national, "4155550100");
        }
    }

    #[test]
    fn other_countries() {
        let uk = parse_e164("r", "+44 20 7946 0173").unwrap();
        assert_eq!(uk.e164, "+442079460173");
        assert_eq!(uk.country_code, "44");
        assert_eq!(uk.national, "2079460173");
        let de = parse_e164("r", "+49 30 901820").unwrap();
        assert_eq!(de.e164, "+4930901820");
    }

    #[test]
    fn no_country_code_is_refused() {
        let err = parse_e164("recipient_number", "(415) 555-0100").unwrap_err();
        assert_eq!(err.kind.sqlstate(), "22023");
        assert!(err.message.contains("recipient_number"), "{}", err.message);
        assert!(err.message.contains("(415) 555-0100"), "{}", err.message);
    }

    #[test]
    fn garbage_is_refused_with_the_value() {
        for input in ["", "   ", "hello", "+", "++1", "+1 415", "+999 123456"] {
            let err = parse_e164("recipient_number", input).unwrap_err();
            assert_eq!(err.kind.sqlstate(), "22023", "{input}");
        }
        let err = parse_e164("recipient_number", "call me maybe").unwrap_err();
        assert!(err.message.contains("\"call me maybe\""), "{}", err.message);
    }

    #[test]
    fn invalid_for_its_country_is_refused() {
        // Too short and too long for the North American plan.
        assert!(parse_e164("r", "+1 415 555 010").is_err());
        assert!(parse_e164("r", "+1 415 555 01000").is_err());
    }

    #[test]
    fn area_membership() {
        let n = parse_e164("r", "+14155550100").unwrap();
        assert!(n.in_area("1", "415"));
        assert!(!n.in_area("1", "212"));
        assert!(!n.in_area("44", "415"));
        assert!(!n.in_area("1", ""));
    }
}
