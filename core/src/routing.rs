//! Which provider and which of its numbers a call goes out on.
//!
//! * Providers are tried in priority order: the lowest `priority` value first
//!   (1 before 2), ties broken by name. The SQL that loads them sorts them so.
//! * A provider is skipped while its in-progress calls have reached its
//!   `concurrency_limit` (NULL: no limit), and when it has no active number.
//! * Among a provider's active numbers the best is the one in the recipient's
//!   country, then in the recipient's area code (local presence), then the
//!   least recently used, so traffic spreads over the numbers.
//! * A call that must use one provider (its caller number, template, voice or
//!   its own `provider_id` says so) only goes to that one.
//! * A call may go out on a caller number of its user's own
//!   (`user_phone_numbers`) only while that number is the user's and active
//!   ([`check_caller_number`]).

use crate::error::DialerError;
use crate::phone::PhoneNumber;

/// The one rule for a user's own caller number on a call, whether it is
/// queued (`enqueue_call`), routed (`pick_provider_number`) or claimed: the
/// number must be the call's user's, and active. A number that is not the
/// user's is not found (PT404: another tenant's number is not confirmed to
/// exist); an inactive one is invalid (22023). `whose` says whose numbers,
/// as the caller knows them ("your", "the user's").
pub fn check_caller_number(
    number_id: &str,
    owned: bool,
    active: bool,
    whose: &str,
) -> Result<(), DialerError> {
    if !owned {
        return Err(DialerError::not_found(format!(
            "caller_number_id {number_id} is not one of {whose} phone numbers"
        )));
    }
    if !active {
        return Err(DialerError::invalid(format!(
            "caller number {number_id} is not active"
        )));
    }
    Ok(())
}

/// One of a provider's active numbers.
#[derive(Debug, Clone, PartialEq)]
pub struct NumberCandidate<N> {
    pub id: N,
    pub country_code: String,
    pub area_code: String,
    /// When the number last placed a call, in microseconds; `None`: never.
    pub last_used: Option<i64>,
}

/// The index of the best number for `recipient`, or `None` when there is none.
/// Of equally good numbers, the first wins.
pub fn best_number<N>(candidates: &[NumberCandidate<N>], recipient: &PhoneNumber) -> Option<usize> {
    let score = |c: &NumberCandidate<N>| {
        let country = c.country_code == recipient.country_code;
        let area = recipient.in_area(&c.country_code, &c.area_code);
        // Never used beats used; older use beats newer.
        let staleness = c.last_used.map_or(i64::MAX, i64::saturating_neg);
        (country, area, staleness)
    };
    let mut best: Option<(usize, (bool, bool, i64))> = None;
    for (i, c) in candidates.iter().enumerate() {
        let s = score(c);
        if best.is_none_or(|(_, b)| s > b) {
            best = Some((i, s));
        }
    }
    best.map(|(i, _)| i)
}

/// The area codes a recipient may lie in: the first one to five digits of its
/// national number. A provider number is local when its area code is one of
/// them (and its country is the recipient's).
pub fn area_prefixes(recipient: &PhoneNumber) -> Vec<String> {
    let digits = &recipient.national;
    (1..=digits.len().min(5))
        .map(|n| digits[..n].to_owned())
        .collect()
}

/// Where routing gets a provider's numbers, and where it records their use.
pub trait NumberSource<P, N> {
    /// Candidate numbers of `provider` for `recipient`: any set that holds the
    /// best one (all active numbers, or the least recently used of each tier).
    fn candidates(&mut self, provider: &P, recipient: &PhoneNumber) -> &[NumberCandidate<N>];
    /// `number` of `provider` was just given a call.
    fn record_use(&mut self, provider: &P, number: &N);
}

/// A provider as routing sees it.
#[derive(Debug, Clone)]
pub struct Provider<P> {
    pub id: P,
    pub concurrency_limit: Option<i32>,
    pub in_progress: i64,
}

impl<P> Provider<P> {
    pub fn has_capacity(&self) -> bool {
        self.concurrency_limit
            .is_none_or(|limit| self.in_progress < i64::from(limit))
    }
}

/// Where a call goes.
#[derive(Debug, Clone, PartialEq)]
pub struct Route<P, N> {
    pub provider: P,
    /// The provider number used; `None` when the call uses the caller's own number.
    pub number: Option<N>,
}

/// Routes a batch of calls, counting each routed call against its provider's
/// limit.
#[derive(Debug)]
pub struct Router<P> {
    providers: Vec<Provider<P>>,
}

impl<P: Clone + PartialEq> Router<P> {
    /// `providers` in priority order.
    pub fn new(providers: Vec<Provider<P>>) -> Self {
        Router { providers }
    }

    /// Whether any provider can take another call.
    pub fn has_capacity(&self) -> bool {
        self.providers.iter().any(Provider::has_capacity)
    }

    /// How many more calls all providers together can take; `None` when one
    /// has no limit.
    pub fn free_capacity(&self) -> Option<i64> {
        self.providers.iter().try_fold(0i64, |free, p| {
            p.concurrency_limit
                .map(|limit| free.saturating_add((i64::from(limit) - p.in_progress).max(0)))
        })
    }

    /// The providers that can take another call.
    pub fn with_capacity(&self) -> Vec<P> {
        self.providers
            .iter()
            .filter(|p| p.has_capacity())
            .map(|p| p.id.clone())
            .collect()
    }

    /// Routes a call that uses the caller's own number at `provider`.
    pub fn route_caller_number<N>(&mut self, provider: &P) -> Option<Route<P, N>> {
        let p = self.providers.iter_mut().find(|p| &p.id == provider)?;
        if !p.has_capacity() {
            return None;
        }
        p.in_progress += 1;
        Some(Route {
            provider: p.id.clone(),
            number: None,
        })
    }

    /// Routes a call to the best number of the first provider with room (only
    /// `only`, when given), and records the number's use with `numbers`.
    pub fn route<N: Clone>(
        &mut self,
        recipient: &PhoneNumber,
        only: Option<&P>,
        numbers: &mut impl NumberSource<P, N>,
    ) -> Option<Route<P, N>> {
        for p in &mut self.providers {
            if only.is_some_and(|only| only != &p.id) || !p.has_capacity() {
                continue;
            }
            let candidates = numbers.candidates(&p.id, recipient);
            let Some(best) = best_number(candidates, recipient) else {
                continue;
            };
            let number = candidates[best].id.clone();
            numbers.record_use(&p.id, &number);
            p.in_progress += 1;
            return Some(Route {
                provider: p.id.clone(),
                number: Some(number),
            });
        }
        None
    }
}

/// A provider's numbers held in memory for a batch, each use marked as the
/// most recent: a batch of calls spreads over the numbers without asking the
/// database again.
#[derive(Debug)]
pub struct LoadedNumbers<P, N, F> {
    load: F,
    loaded: Vec<(P, Vec<NumberCandidate<N>>)>,
    clock: i64,
}

impl<P: Clone + PartialEq, N: PartialEq, F: FnMut(&P) -> Vec<NumberCandidate<N>>>
    LoadedNumbers<P, N, F>
{
    /// `load` fetches a provider's active numbers the first time they are
    /// needed; `now` (microseconds) is no earlier than any recorded use.
    pub fn new(load: F, now: i64) -> Self {
        LoadedNumbers {
            load,
            loaded: Vec::new(),
            clock: now,
        }
    }
}

impl<P: Clone + PartialEq, N: PartialEq, F: FnMut(&P) -> Vec<NumberCandidate<N>>> NumberSource<P, N>
    for LoadedNumbers<P, N, F>
{
    fn candidates(&mut self, provider: &P, _recipient: &PhoneNumber) -> &[NumberCandidate<N>] {
        let index = match self.loaded.iter().position(|(p, _)| p == provider) {
            Some(index) => index,
            None => {
                let numbers = (self.load)(provider);
                self.loaded.push((provider.clone(), numbers));
                self.loaded.len() - 1
            }
        };
        &self.loaded[index].1
    }

    fn record_use(&mut self, provider: &P, number: &N) {
        self.clock += 1;
        if let Some((_, numbers)) = self.loaded.iter_mut().find(|(p, _)| p == provider) {
            if let Some(n) = numbers.iter_mut().find(|n| &n.id == number) {
                n.last_used = Some(self.clock);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;
    use crate::phone::parse_e164;

    #[test]
    fn a_caller_number_must_be_the_users_and_active() {
        assert!(check_caller_number("n1", true, true, "your").is_ok());
        let other = check_caller_number("n1", false, true, "your").unwrap_err();
        assert_eq!(other.kind, ErrorKind::NotFound);
        assert_eq!(
            other.message,
            "caller_number_id n1 is not one of your phone numbers"
        );
        // another tenant's inactive number: not found, not "inactive"
        let other_inactive = check_caller_number("n1", false, false, "the user's").unwrap_err();
        assert_eq!(other_inactive.kind, ErrorKind::NotFound);
        assert_eq!(
            other_inactive.message,
            "caller_number_id n1 is not one of the user's phone numbers"
        );
        let inactive = check_caller_number("n1", true, false, "your").unwrap_err();
        assert_eq!(inactive.kind, ErrorKind::InvalidInput);
        assert_eq!(inactive.message, "caller number n1 is not active");
    }

    #[test]
    fn free_capacity_is_the_room_left_in_all_limits() {
        let p = |id, limit, in_progress| Provider {
            id,
            concurrency_limit: limit,
            in_progress,
        };
        let router = Router::new(vec![
            p(1, Some(50), 48),
            p(2, Some(30), 30),
            p(3, Some(20), 25),
        ]);
        // a provider over its limit (lowered meanwhile) adds no room
        assert_eq!(router.free_capacity(), Some(2));
        let unlimited = Router::new(vec![p(1, Some(5), 0), p(2, None, 100)]);
        assert_eq!(unlimited.free_capacity(), None);
        assert_eq!(Router::<u32>::new(Vec::new()).free_capacity(), Some(0));
    }

    fn num(id: u32, country: &str, area: &str, last_used: Option<i64>) -> NumberCandidate<u32> {
        NumberCandidate {
            id,
            country_code: country.into(),
            area_code: area.into(),
            last_used,
        }
    }

    fn sf() -> PhoneNumber {
        parse_e164("r", "+14155550123").unwrap()
    }

    #[test]
    fn country_beats_area_beats_recency() {
        let numbers = vec![
            num(1, "44", "20", None),
            num(2, "1", "212", None),
            num(3, "1", "415", Some(500)),
            num(4, "1", "415", Some(100)),
        ];
        assert_eq!(
            best_number(&numbers, &sf()),
            Some(3),
            "same area, least recently used"
        );
        assert_eq!(
            best_number(&numbers[..3], &sf()),
            Some(2),
            "same area even if used"
        );
        assert_eq!(
            best_number(&numbers[..2], &sf()),
            Some(1),
            "same country over none"
        );
        assert_eq!(
            best_number(&numbers[..1], &sf()),
            Some(0),
            "any number over no number"
        );
        assert_eq!(best_number::<u32>(&[], &sf()), None);
    }

    #[test]
    fn never_used_beats_used_and_ties_keep_order() {
        let numbers = vec![
            num(1, "1", "212", Some(5)),
            num(2, "1", "646", None),
            num(3, "1", "718", None),
        ];
        assert_eq!(best_number(&numbers, &sf()), Some(1));
    }

    fn provider(id: &'static str, limit: Option<i32>, in_progress: i64) -> Provider<&'static str> {
        Provider {
            id,
            concurrency_limit: limit,
            in_progress,
        }
    }

    fn numbers_of(p: &&str) -> Vec<NumberCandidate<u32>> {
        match *p {
            "vapi" => vec![
                num(10, "1", "212", None),
                num(11, "1", "415", None),
                num(12, "1", "415", None),
            ],
            "retell" => vec![num(20, "1", "415", None)],
            _ => vec![],
        }
    }

    type Load = fn(&&'static str) -> Vec<NumberCandidate<u32>>;

    fn loaded() -> LoadedNumbers<&'static str, u32, Load> {
        LoadedNumbers::new(numbers_of as Load, 1_000)
    }

    #[test]
    fn area_prefixes_are_the_leading_digits() {
        assert_eq!(
            area_prefixes(&sf()),
            vec!["4", "41", "415", "4155", "41555"]
        );
        let uk = parse_e164("r", "+442079460173").unwrap();
        assert!(area_prefixes(&uk).contains(&"20".to_owned()));
    }

    #[test]
    fn priority_order_then_capacity() {
        let mut r = Router::new(vec![
            provider("vapi", Some(2), 0),
            provider("retell", Some(1), 0),
        ]);
        let mut numbers = loaded();
        let routes: Vec<_> = (0..4).map(|_| r.route(&sf(), None, &mut numbers)).collect();
        assert_eq!(
            routes[0],
            Some(Route {
                provider: "vapi",
                number: Some(11)
            })
        );
        assert_eq!(
            routes[1],
            Some(Route {
                provider: "vapi",
                number: Some(12)
            }),
            "spreads over local numbers"
        );
        assert_eq!(
            routes[2],
            Some(Route {
                provider: "retell",
                number: Some(20)
            }),
            "vapi is full"
        );
        assert_eq!(routes[3], None, "everyone is full");
        assert!(!r.has_capacity());
    }

    #[test]
    fn local_numbers_rotate() {
        let mut r = Router::new(vec![provider("vapi", None, 0)]);
        let mut numbers = loaded();
        let used: Vec<_> = (0..4)
            .map(|_| r.route(&sf(), None, &mut numbers).unwrap().number.unwrap())
            .collect();
        assert_eq!(used, vec![11, 12, 11, 12]);
    }

    #[test]
    fn existing_load_counts_and_null_limit_is_unlimited() {
        let mut r = Router::new(vec![
            provider("vapi", Some(5), 5),
            provider("retell", None, 1_000),
        ]);
        assert_eq!(
            r.route(&sf(), None, &mut loaded()).unwrap().provider,
            "retell"
        );
    }

    #[test]
    fn providers_without_numbers_are_skipped() {
        let mut r = Router::new(vec![
            provider("bland", None, 0),
            provider("retell", None, 0),
        ]);
        assert_eq!(
            r.route(&sf(), None, &mut loaded()).unwrap().provider,
            "retell"
        );
    }

    #[test]
    fn a_pinned_call_waits_for_its_provider() {
        let mut r = Router::new(vec![
            provider("vapi", Some(1), 1),
            provider("retell", None, 0),
        ]);
        assert_eq!(r.route(&sf(), Some(&"vapi"), &mut loaded()), None);
        assert_eq!(
            r.route(&sf(), Some(&"retell"), &mut loaded())
                .unwrap()
                .provider,
            "retell"
        );
    }

    #[test]
    fn caller_numbers_count_against_the_provider() {
        let mut r = Router::new(vec![provider("vapi", Some(1), 0)]);
        assert_eq!(
            r.route_caller_number::<u32>(&"vapi"),
            Some(Route {
                provider: "vapi",
                number: None
            })
        );
        assert_eq!(r.route_caller_number::<u32>(&"vapi"), None);
        assert_eq!(r.route_caller_number::<u32>(&"unknown"), None);
    }

    #[test]
    fn numbers_load_once_per_provider_and_only_when_needed() {
        let mut loads = Vec::new();
        let mut numbers = LoadedNumbers::new(
            |p: &&'static str| {
                loads.push(*p);
                numbers_of(p)
            },
            0,
        );
        let mut r = Router::new(vec![
            provider("vapi", Some(1), 1),
            provider("retell", None, 0),
        ]);
        for _ in 0..3 {
            r.route(&sf(), None, &mut numbers);
        }
        drop(numbers);
        assert_eq!(
            loads,
            vec!["retell"],
            "vapi is full: its numbers are never loaded"
        );
    }
}
