//! Calling windows: the local times of day and the weekdays at which a call
//! may be placed, in the recipient's time zone. By default every call has
//! the window 08:00-21:00, every day (the hours the US TCPA allows
//! telemarketing calls at the called party's location); `{"always": true}`
//! turns it off.
//!
//! A window is JSON:
//! `{"hours": [["09:00", "12:00"], ["13:00", "18:00"]], "days": ["mon", "tue", "wed", "thu", "fri"], "time_zone": "America/Denver"}`.
//! Every key may be left out: `hours` defaults to 08:00-21:00, `days` to
//! every day, `time_zone` to the recipient's zones by libphonenumber's data
//! ([`PhoneNumber::time_zones`]). Where a number may be in several zones,
//! the window must be open in all of them. Local times follow the zone's
//! rules (the IANA database of `chrono_tz`), daylight-saving changes
//! included: a window opening at a local time that a change skips opens at
//! the first local time after it.

use crate::error::{quoted, DialerError};
use crate::phone::PhoneNumber;
use chrono::{DateTime, Datelike, Duration, LocalResult, NaiveDate, TimeZone, Timelike, Utc};
pub use chrono_tz::Tz;
use serde_json::{json, Value};

/// The weekdays, as a window names them, Monday first.
pub const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
/// The most time ranges one window has.
pub const MAX_RANGES: usize = 8;
/// How far ahead the next opening is looked for: two weeks cover every
/// weekly pattern, and a daylight-saving change on the way.
pub const HORIZON_DAYS: i64 = 15;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Window {
    /// No window: the call may be placed at any time.
    Always,
    Hours(Hours),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hours {
    /// Local times as minutes after midnight, `[start, end)`, sorted, not
    /// overlapping.
    ranges: Vec<(u16, u16)>,
    /// The weekdays: bit 0 is Monday.
    days: u8,
    /// The zone the caller named, else the recipient's.
    time_zone: Option<Tz>,
}

impl Default for Window {
    /// 08:00-21:00 every day, in the recipient's time zone.
    fn default() -> Self {
        Window::Hours(Hours {
            ranges: vec![(8 * 60, 21 * 60)],
            days: 0x7f,
            time_zone: None,
        })
    }
}

fn example() -> &'static str {
    "A window is {\"hours\": [[\"08:00\", \"21:00\"]], \"days\": [\"mon\", \"tue\", \"wed\", \"thu\", \"fri\"], \
     \"time_zone\": \"America/New_York\"} (each key optional), or {\"always\": true} for none."
}

impl Window {
    /// Reads a window; `field` names it in errors.
    pub fn parse(field: &str, value: &Value) -> Result<Window, DialerError> {
        let invalid = |message: String| DialerError::invalid(message).with_hint(example());
        let Value::Object(keys) = value else {
            return Err(invalid(format!("{field} must be a JSON object")));
        };
        if let Some(always) = keys.get("always") {
            if always != &Value::Bool(true) || keys.len() > 1 {
                return Err(invalid(format!(
                    "{field} turns the window off with {{\"always\": true}} and nothing else"
                )));
            }
            return Ok(Window::Always);
        }
        if let Some(key) = keys
            .keys()
            .find(|k| !["hours", "days", "time_zone"].contains(&k.as_str()))
        {
            return Err(invalid(format!(
                "{field} has an unknown key {}; it takes hours, days and time_zone",
                quoted(key)
            )));
        }
        let ranges = match keys.get("hours") {
            None => vec![(8 * 60, 21 * 60)],
            Some(hours) => parse_hours(field, hours).map_err(invalid)?,
        };
        let days = match keys.get("days") {
            None => 0x7f,
            Some(days) => parse_days(field, days).map_err(invalid)?,
        };
        let time_zone = match keys.get("time_zone") {
            None => None,
            Some(Value::String(name)) => Some(name.parse::<Tz>().map_err(|_| {
                invalid(format!(
                    "{field}.time_zone {} is not a time zone of the IANA database",
                    quoted(name)
                ))
            })?),
            Some(_) => {
                return Err(invalid(format!(
                    "{field}.time_zone must be a zone name such as \"Europe/London\""
                )))
            }
        };
        Ok(Window::Hours(Hours {
            ranges,
            days,
            time_zone,
        }))
    }

    /// The window as JSON, every key written out.
    pub fn to_json(&self) -> Value {
        match self {
            Window::Always => json!({"always": true}),
            Window::Hours(h) => {
                let mut value = json!({
                    "hours": h.ranges.iter().map(|&(s, e)| json!([clock(s), clock(e)])).collect::<Vec<_>>(),
                    "days": DAYS.iter().enumerate().filter(|(i, _)| h.days & (1 << i) != 0)
                        .map(|(_, d)| *d).collect::<Vec<_>>(),
                });
                if let Some(tz) = h.time_zone {
                    value["time_zone"] = json!(tz.name());
                }
                value
            }
        }
    }

    /// The window in words, for messages: `08:00-21:00 every day`.
    pub fn describe(&self) -> String {
        match self {
            Window::Always => "always".into(),
            Window::Hours(h) => {
                let hours: Vec<String> = h
                    .ranges
                    .iter()
                    .map(|&(s, e)| format!("{}-{}", clock(s), clock(e)))
                    .collect();
                let days = if h.days == 0x7f {
                    "every day".to_owned()
                } else {
                    let names: Vec<&str> = (0..7)
                        .filter(|i| h.days & (1 << i) != 0)
                        .map(|i| DAYS[i])
                        .collect();
                    format!("on {}", names.join(", "))
                };
                let zone = h
                    .time_zone
                    .map(|tz| format!(" in {}", tz.name()))
                    .unwrap_or_default();
                format!("{} {days}{zone}", hours.join(", "))
            }
        }
    }

    /// The zones the window is kept in for a call to `recipient`: the one
    /// the window names, else the recipient's (none for `Always`).
    pub fn zones(&self, recipient: &PhoneNumber) -> Result<Vec<Tz>, DialerError> {
        let Window::Hours(h) = self else {
            return Ok(Vec::new());
        };
        if let Some(tz) = h.time_zone {
            return Ok(vec![tz]);
        }
        let zones: Vec<Tz> = recipient
            .time_zones()
            .iter()
            .filter_map(|name| name.parse().ok())
            .collect();
        if zones.is_empty() {
            return Err(DialerError::invalid(format!(
                "the time zone of recipient_number {} is not known, so its calling window cannot be kept",
                recipient.e164
            ))
            .with_hint("Name the recipient's zone in call_window.time_zone, or turn the window off with {\"always\": true}."));
        }
        Ok(zones)
    }

    /// Whether the window is open at `at` in every one of `zones`.
    pub fn is_open(&self, zones: &[Tz], at: DateTime<Utc>) -> bool {
        match self {
            Window::Always => true,
            Window::Hours(h) => zones.iter().all(|tz| h.open_in(tz, at)),
        }
    }

    /// The first time at or after `at` when the window is open in every one
    /// of `zones`: `at` itself when it is open then; `None` when it does not
    /// open within [`HORIZON_DAYS`] (ranges that never meet in the zones).
    pub fn next_opening(&self, zones: &[Tz], at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let Window::Hours(h) = self else {
            return Some(at);
        };
        if self.is_open(zones, at) {
            return Some(at);
        }
        // Where the window opens in all zones, it opens in one of them: the
        // candidates are the openings of each zone's ranges.
        // (a time too near the end of the calendar has no opening after it)
        let horizon = at.checked_add_signed(Duration::days(HORIZON_DAYS))?;
        let mut openings: Vec<DateTime<Utc>> = Vec::new();
        for tz in zones {
            let first = at.with_timezone(tz).date_naive().pred_opt()?;
            for day in first.iter_days().take(HORIZON_DAYS as usize + 2) {
                if h.days & (1 << day.weekday().num_days_from_monday()) == 0 {
                    continue;
                }
                openings.extend(
                    h.ranges
                        .iter()
                        .filter_map(|&(start, _)| local_instant(tz, day, start))
                        .filter(|t| *t > at && *t <= horizon),
                );
            }
        }
        openings.sort();
        openings.dedup();
        openings.into_iter().find(|t| self.is_open(zones, *t))
    }
}

impl Hours {
    fn open_in(&self, tz: &Tz, at: DateTime<Utc>) -> bool {
        let local = at.with_timezone(tz);
        if self.days & (1 << local.weekday().num_days_from_monday()) == 0 {
            return false;
        }
        let second = local.num_seconds_from_midnight();
        self.ranges
            .iter()
            .any(|&(start, end)| u32::from(start) * 60 <= second && second < u32::from(end) * 60)
    }
}

/// The instant a local time of day happens on `day` in `tz`: the earlier
/// one where a change back repeats it, the first minute after the gap where
/// a change forward skips it.
fn local_instant(tz: &Tz, day: NaiveDate, minute: u16) -> Option<DateTime<Utc>> {
    let midnight = day.and_hms_opt(0, 0, 0)?;
    (0..=180).find_map(|late| {
        let local = midnight.checked_add_signed(Duration::minutes(i64::from(minute) + late))?;
        match tz.from_local_datetime(&local) {
            LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => Some(t.with_timezone(&Utc)),
            LocalResult::None => None,
        }
    })
}

/// `HH:MM` of minutes after midnight.
fn clock(minutes: u16) -> String {
    format!("{:02}:{:02}", minutes / 60, minutes % 60)
}

/// `HH:MM`, 00:00 to 24:00.
fn parse_clock(text: &str) -> Option<u16> {
    let (h, m) = text.split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
    (m < 60 && (h < 24 || (h == 24 && m == 0))).then_some(h * 60 + m)
}

fn parse_hours(field: &str, hours: &Value) -> Result<Vec<(u16, u16)>, String> {
    let Some(list) = hours
        .as_array()
        .filter(|l| (1..=MAX_RANGES).contains(&l.len()))
    else {
        return Err(format!(
            "{field}.hours must be a list of 1 to {MAX_RANGES} ranges [\"HH:MM\", \"HH:MM\"]"
        ));
    };
    let mut ranges = Vec::with_capacity(list.len());
    for (i, range) in list.iter().enumerate() {
        let pair = range.as_array().filter(|p| p.len() == 2);
        let times = pair.and_then(|p| {
            let start = parse_clock(p[0].as_str()?)?;
            let end = parse_clock(p[1].as_str()?)?;
            Some((start, end))
        });
        match times {
            Some((start, end)) if start < end => ranges.push((start, end)),
            Some(_) => {
                return Err(format!(
                    "{field}.hours[{i}] ends before it starts: {range}; a range across midnight is written as two"
                ))
            }
            None => {
                return Err(format!(
                    "{field}.hours[{i}] must be [\"HH:MM\", \"HH:MM\"] (00:00 to 24:00), not {range}"
                ))
            }
        }
    }
    ranges.sort_unstable();
    let mut merged: Vec<(u16, u16)> = Vec::with_capacity(ranges.len());
    for (start, end) in ranges {
        match merged.last_mut() {
            Some(last) if start <= last.1 => last.1 = last.1.max(end),
            _ => merged.push((start, end)),
        }
    }
    Ok(merged)
}

fn parse_days(field: &str, days: &Value) -> Result<u8, String> {
    let message = || format!("{field}.days must be a list of weekdays, such as [\"mon\", \"tue\"]");
    let list = days
        .as_array()
        .filter(|l| !l.is_empty())
        .ok_or_else(message)?;
    let mut bits = 0u8;
    for day in list {
        let name = day.as_str().ok_or_else(message)?.to_ascii_lowercase();
        let Some(i) = DAYS.iter().position(|d| *d == name) else {
            return Err(format!(
                "{field}.days holds {day}, which is not one of mon, tue, wed, thu, fri, sat, sun"
            ));
        };
        bits |= 1 << i;
    }
    Ok(bits)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::phone::parse_e164;

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    fn window(value: Value) -> Window {
        Window::parse("call_window", &value).unwrap()
    }

    fn opening(w: &Window, number: &str, at: &str) -> Option<DateTime<Utc>> {
        let zones = w.zones(&parse_e164("r", number).unwrap()).unwrap();
        w.next_opening(&zones, utc(at))
    }

    const NEW_YORK: &str = "+1 212 555 0100";
    const LONDON: &str = "+44 20 7946 0173";

    #[test]
    fn default_is_eight_to_nine_every_day_in_the_recipients_zone() {
        let w = Window::default();
        assert_eq!(
            w.to_json(),
            json!({"hours": [["08:00", "21:00"]], "days": DAYS})
        );
        assert_eq!(w.describe(), "08:00-21:00 every day");
        // 07:00 in New York (EST): opens at 08:00 local.
        assert_eq!(
            opening(&w, NEW_YORK, "2026-11-27T12:00:00Z"),
            Some(utc("2026-11-27T13:00:00Z"))
        );
        // Open: the same instant.
        assert_eq!(
            opening(&w, NEW_YORK, "2026-11-27T15:30:00Z"),
            Some(utc("2026-11-27T15:30:00Z"))
        );
        // 23:00 local: the next morning's opening.
        assert_eq!(
            opening(&w, NEW_YORK, "2026-11-28T04:00:00Z"),
            Some(utc("2026-11-28T13:00:00Z"))
        );
        // 21:00 sharp is closed.
        assert_eq!(
            opening(&w, NEW_YORK, "2026-11-28T02:00:00Z"),
            Some(utc("2026-11-28T13:00:00Z"))
        );
    }

    #[test]
    fn five_cities_at_one_instant_each_in_its_own_window() {
        let w = Window::default();
        let at = "2026-07-01T15:00:00Z";
        for (number, expected) in [
            // 05:00 HST: opens 08:00 HST
            ("+1 808 555 0100", "2026-07-01T18:00:00Z"),
            // 09:00 MDT: open
            ("+1 303 555 0100", at),
            // 11:00 EDT: open
            (NEW_YORK, at),
            // 16:00 BST: open
            (LONDON, at),
            // 01:00 AEST on July 2: opens 08:00 AEST
            ("+61 2 9374 4000", "2026-07-01T22:00:00Z"),
        ] {
            assert_eq!(opening(&w, number, at), Some(utc(expected)), "{number}");
        }
    }

    #[test]
    fn daylight_saving_changes_of_the_us_and_the_eu_differ() {
        let w = Window::default();
        // The US moves on March 8, 2026, the EU on March 29.
        for (number, at, expected) in [
            (NEW_YORK, "2026-03-06T05:00:00Z", "2026-03-06T13:00:00Z"),
            (NEW_YORK, "2026-03-10T05:00:00Z", "2026-03-10T12:00:00Z"),
            (LONDON, "2026-03-10T05:00:00Z", "2026-03-10T08:00:00Z"),
            (LONDON, "2026-03-27T05:00:00Z", "2026-03-27T08:00:00Z"),
            (LONDON, "2026-03-30T05:00:00Z", "2026-03-30T07:00:00Z"),
            // Back: the EU on October 25, the US on November 1.
            (LONDON, "2026-10-26T05:00:00Z", "2026-10-26T08:00:00Z"),
            (NEW_YORK, "2026-10-27T05:00:00Z", "2026-10-27T12:00:00Z"),
            (NEW_YORK, "2026-11-02T05:00:00Z", "2026-11-02T13:00:00Z"),
        ] {
            assert_eq!(
                opening(&w, number, at),
                Some(utc(expected)),
                "{number} {at}"
            );
        }
        // Closing follows the change too: 20:30 local is open on both sides.
        let zones = w.zones(&parse_e164("r", NEW_YORK).unwrap()).unwrap();
        assert!(w.is_open(&zones, utc("2026-03-07T01:30:00Z")));
        assert!(w.is_open(&zones, utc("2026-03-09T00:30:00Z")));
        assert!(!w.is_open(&zones, utc("2026-03-09T01:30:00Z")));
    }

    #[test]
    fn an_opening_that_a_change_skips_is_the_first_time_after_it() {
        // 02:30 does not happen in New York on March 8, 2026.
        let w = window(json!({"hours": [["02:30", "04:00"]]}));
        assert_eq!(
            opening(&w, NEW_YORK, "2026-03-08T05:00:00Z"),
            Some(utc("2026-03-08T07:00:00Z"))
        );
    }

    #[test]
    fn weekends_are_skipped() {
        let w = window(json!({"days": ["mon", "tue", "wed", "thu", "fri"]}));
        // Friday November 27, 2026, 22:00 in New York: Monday 08:00.
        assert_eq!(
            opening(&w, NEW_YORK, "2026-11-28T03:00:00Z"),
            Some(utc("2026-11-30T13:00:00Z"))
        );
        // Saturday noon: Monday too.
        assert_eq!(
            opening(&w, NEW_YORK, "2026-11-28T17:00:00Z"),
            Some(utc("2026-11-30T13:00:00Z"))
        );
        assert_eq!(w.describe(), "08:00-21:00 on mon, tue, wed, thu, fri");
    }

    #[test]
    fn several_ranges_a_day() {
        let w = window(json!({"hours": [["13:00", "17:00"], ["09:00", "12:00"]]}));
        assert_eq!(
            w.to_json()["hours"],
            json!([["09:00", "12:00"], ["13:00", "17:00"]])
        );
        // 12:30 in New York: 13:00.
        assert_eq!(
            opening(&w, NEW_YORK, "2026-11-27T17:30:00Z"),
            Some(utc("2026-11-27T18:00:00Z"))
        );
        let merged = window(json!({"hours": [["09:00", "12:00"], ["11:00", "24:00"]]}));
        assert_eq!(merged.to_json()["hours"], json!([["09:00", "24:00"]]));
    }

    #[test]
    fn a_number_in_several_zones_waits_until_all_are_open() {
        let w = Window::default();
        // An Australian mobile may be anywhere from Cocos (UTC+6:30) to Lord
        // Howe (UTC+10:30 in July): 08:00 on Cocos is 01:30 UTC.
        let mobile = "+61 412 345 678";
        assert_eq!(
            opening(&w, mobile, "2026-07-01T00:00:00Z"),
            Some(utc("2026-07-01T01:30:00Z"))
        );
        // A US toll-free number: every zone of +1, Guam to Bermuda.
        let toll_free = parse_e164("r", "+1 800 555 0100").unwrap();
        let zones = w.zones(&toll_free).unwrap();
        let open = w.next_opening(&zones, utc("2026-07-01T00:00:00Z")).unwrap();
        for tz in &zones {
            let local = open.with_timezone(tz).time();
            assert!(local.hour() >= 8 && local.hour() < 21, "{tz}: {local}");
        }
        // A zone named by the caller replaces the number's.
        let named = window(json!({"time_zone": "Australia/Perth"}));
        assert_eq!(
            opening(&named, mobile, "2026-07-01T00:00:00Z"),
            Some(utc("2026-07-01T00:00:00Z"))
        );
    }

    #[test]
    fn ranges_that_never_meet_have_no_opening() {
        let w = window(json!({"hours": [["08:00", "09:00"]]}));
        let zones: Vec<Tz> = vec![
            "Asia/Tokyo".parse().unwrap(),
            "America/New_York".parse().unwrap(),
        ];
        assert_eq!(w.next_opening(&zones, utc("2026-07-01T00:00:00Z")), None);
    }

    #[test]
    fn the_end_of_the_calendar_has_no_opening() {
        let w = Window::default();
        let zones: Vec<Tz> = vec!["America/New_York".parse().unwrap()];
        // 06:59 in New York, three days before the last time chrono knows
        let last = DateTime::<Utc>::MAX_UTC - Duration::days(3) - Duration::hours(12);
        assert_eq!(w.next_opening(&zones, last), None);
    }

    #[test]
    fn always_is_open_at_any_time() {
        let w = window(json!({"always": true}));
        assert_eq!(w, Window::Always);
        assert_eq!(w.to_json(), json!({"always": true}));
        assert_eq!(
            opening(&w, NEW_YORK, "2026-11-28T04:00:00Z"),
            Some(utc("2026-11-28T04:00:00Z"))
        );
    }

    #[test]
    fn bad_windows_are_refused_naming_what_is_wrong() {
        for (value, words) in [
            (json!("08:00-21:00"), "must be a JSON object"),
            (json!({"always": false}), "always"),
            (json!({"always": true, "days": ["mon"]}), "nothing else"),
            (json!({"from": "08:00"}), "unknown key \"from\""),
            (json!({"hours": []}), "call_window.hours must be a list"),
            (json!({"hours": [["8", "21"]]}), "call_window.hours[0]"),
            (
                json!({"hours": [["08:00", "25:00"]]}),
                "call_window.hours[0]",
            ),
            (
                json!({"hours": [["21:00", "08:00"]]}),
                "ends before it starts",
            ),
            (
                json!({"hours": [["08:00", "08:00"]]}),
                "ends before it starts",
            ),
            (json!({"days": []}), "call_window.days"),
            (json!({"days": ["monday"]}), "\"monday\""),
            (json!({"time_zone": "Mars/Olympus"}), "\"Mars/Olympus\""),
            (json!({"time_zone": 5}), "call_window.time_zone"),
        ] {
            let err = Window::parse("call_window", &value).unwrap_err();
            assert_eq!(err.kind.sqlstate(), "22023");
            assert!(err.message.contains(words), "{value}: {}", err.message);
        }
        let many: Vec<Value> = (0..9)
            .map(|h| json!([clock(h * 60), clock(h * 60 + 30)]))
            .collect();
        assert!(Window::parse("w", &json!({ "hours": many })).is_err());
    }

    #[test]
    fn a_number_without_a_known_zone_needs_one_named() {
        // +800, the international freephone, has no zone in the data.
        let number = parse_e164("r", "+800 1234 5678").unwrap();
        let err = Window::default().zones(&number).unwrap_err();
        assert!(err.message.contains("+80012345678"), "{}", err.message);
        let named = window(json!({"time_zone": "Europe/Paris"}));
        assert_eq!(named.zones(&number).unwrap().len(), 1);
        assert_eq!(Window::Always.zones(&number).unwrap(), Vec::<Tz>::new());
    }
}
