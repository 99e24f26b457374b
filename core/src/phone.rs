//! Phone numbers, parsed and normalized to E.164 with libphonenumber's rules
//! (the `phonenumber` crate), never with a hand-written pattern.

use crate::error::{quoted, DialerError};
use phonenumber::{Mode, Type};

/// A valid number in E.164 form, with the parts routing needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhoneNumber {
    /// `+14155550100`
    pub e164: String,
    /// The country calling code without `+`: `1`, `44`.
    pub country_code: String,
    /// The national significant number: `4155550100`.
    pub national: String,
    /// Set when calling the number costs the caller extra (see [`COSTLY`]).
    kind: Option<&'static str>,
}

/// The kinds of numbers that cost the caller extra, by the names the
/// `allowed_number_types` plan feature and setting use, as libphonenumber's
/// own data classifies numbers: premium rate (`+1 900`, `+44 909`,
/// `+44 845`, `+979`), shared cost (`+808`), personal numbers (`+44 70`), and
/// the international networks (the non-geographic codes `+870`, `+878`,
/// `+881`, `+882`, `+883`, `+888`: satellite and global services, costly to
/// reach; the international freephone `+800` is not among them).
pub const COSTLY: [&str; 4] = [
    "premium_rate",
    "shared_cost",
    "personal_number",
    "international_network",
];

/// The costly kind of a valid number of type `number_type`, by
/// libphonenumber's data: its premium-rate, shared-cost and personal-number
/// patterns, and the non-geographic codes (region "001").
fn costly_kind(number_type: Type, country_code: u16) -> Option<&'static str> {
    match number_type {
        Type::PremiumRate => return Some("premium_rate"),
        Type::SharedCost => return Some("shared_cost"),
        Type::PersonalNumber => return Some("personal_number"),
        Type::TollFree => return None,
        _ => {}
    }
    let non_geographic = phonenumber::metadata::DATABASE
        .by_code(&country_code)
        .is_some_and(|regions| !regions.is_empty() && regions.iter().all(|m| m.id() == "001"));
    non_geographic.then_some("international_network")
}

impl PhoneNumber {
    /// Set when calling the number costs the caller extra (see [`COSTLY`]).
    pub fn costly(&self) -> Option<&'static str> {
        self.kind
    }

    /// Refuses a number that costs the caller extra unless its kind is among
    /// `allowed` (the plan's and the setting's `allowed_number_types`).
    pub fn check_cost(&self, field: &str, allowed: &[String]) -> Result<(), DialerError> {
        match self.costly() {
            Some(kind) if !allowed.iter().any(|a| a == kind) => Err(DialerError::invalid(format!(
                "{field} {} is {}, which costs the caller extra",
                self.e164,
                match kind {
                    "premium_rate" => "a premium-rate number",
                    "shared_cost" => "a shared-cost number",
                    "personal_number" => "a personal number",
                    _ => "a number of an international network",
                }
            ))
            .with_hint(format!(
                "Calls to {kind} numbers need \"{kind}\" in the plan's features.allowed_number_types \
                 or in the setting pg_dialer.allowed_number_types."
            ))),
            _ => Ok(()),
        }
    }

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
    // The number's type, from the patterns of its region: Unknown is what
    // libphonenumber's is_valid() refuses. Read once, as each reading runs
    // the patterns again.
    let number_type = number.number_type(&phonenumber::metadata::DATABASE);
    if number_type == Type::Unknown {
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
        kind: costly_kind(number_type, number.code().value()),
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
    fn numbers_that_cost_extra_are_known_by_the_library() {
        for (input, kind) in [
            ("+1 900 555 0100", Some("premium_rate")),
            ("+44 909 876 5432", Some("premium_rate")),
            ("+979 1 2345 6789", Some("premium_rate")),
            ("+44 845 464 0000", Some("premium_rate")),
            ("+808 1234 5678", Some("shared_cost")),
            ("+44 70 1234 5678", Some("personal_number")),
            ("+882 16 1234 5678", Some("international_network")),
            ("+883 510 012 3456", Some("international_network")),
            ("+870 773 111 632", Some("international_network")),
            ("+14155550100", None),
            ("+442079460173", None),
            ("+1 800 555 0100", None),
            ("+800 1234 5678", None),
            ("+44 7911 123456", None),
        ] {
            let n = parse_e164("recipient_number", input).unwrap();
            assert_eq!(n.costly(), kind, "{input}");
        }
    }

    #[test]
    fn costly_numbers_are_refused_unless_allowed() {
        let n = parse_e164("recipient_number", "+1 900 555 0100").unwrap();
        let err = n.check_cost("recipient_number", &[]).unwrap_err();
        assert_eq!(err.kind.sqlstate(), "22023");
        assert!(err.message.contains("+19005550100"), "{}", err.message);
        assert!(err.message.contains("premium-rate"), "{}", err.message);
        assert!(n.check_cost("r", &["shared_cost".into()]).is_err());
        assert!(n.check_cost("r", &["premium_rate".into()]).is_ok());
        let ok = parse_e164("r", "+14155550100").unwrap();
        assert!(ok.check_cost("r", &[]).is_ok());
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
