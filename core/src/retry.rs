//! What happens after a failed attempt: exponential backoff with jitter, up
//! to a maximum number of attempts.
//!
//! The delay before attempt `n + 1` (after `n` failed attempts) is
//! `min(max_delay, base_delay * 2^(n-1))`, of which the second half is random
//! ("equal jitter"): never less than half the step, so retries still back
//! off, and spread out so that calls that failed together do not retry
//! together.

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    pub base_delay_secs: f64,
    pub max_delay_secs: f64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 3,
            base_delay_secs: 60.0,
            max_delay_secs: 3600.0,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum AfterFailure {
    /// Queue the call again, due after this many seconds.
    RetryAfter(f64),
    /// End the call as failed.
    GiveUp,
}

impl RetryPolicy {
    /// `attempts_made` counts the attempt that just failed; `jitter` is a
    /// random number in [0, 1).
    pub fn after_failure(&self, attempts_made: u32, retryable: bool, jitter: f64) -> AfterFailure {
        if !retryable || attempts_made >= self.max_attempts {
            return AfterFailure::GiveUp;
        }
        let step = self.step(attempts_made);
        AfterFailure::RetryAfter(step / 2.0 + step / 2.0 * jitter.clamp(0.0, 1.0))
    }

    fn step(&self, attempts_made: u32) -> f64 {
        let exponent = attempts_made.saturating_sub(1).min(62) as i32;
        (self.base_delay_secs * 2f64.powi(exponent)).min(self.max_delay_secs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: RetryPolicy = RetryPolicy {
        max_attempts: 4,
        base_delay_secs: 60.0,
        max_delay_secs: 300.0,
    };

    fn delay(outcome: AfterFailure) -> f64 {
        match outcome {
            AfterFailure::RetryAfter(d) => d,
            AfterFailure::GiveUp => panic!("gave up"),
        }
    }

    #[test]
    fn delays_double_within_their_jitter_band() {
        assert_eq!(delay(P.after_failure(1, true, 0.0)), 30.0);
        assert_eq!(delay(P.after_failure(1, true, 0.999_999)).round(), 60.0);
        assert_eq!(delay(P.after_failure(2, true, 0.0)), 60.0);
        assert_eq!(delay(P.after_failure(3, true, 0.5)), 180.0);
    }

    #[test]
    fn delays_are_capped() {
        let long = RetryPolicy {
            max_attempts: u32::MAX,
            ..P
        };
        assert_eq!(delay(long.after_failure(50, true, 1.0)), 300.0);
        assert_eq!(delay(long.after_failure(u32::MAX - 1, true, 0.0)), 150.0);
    }

    #[test]
    fn jitter_spreads_retries() {
        let a = delay(P.after_failure(2, true, 0.1));
        let b = delay(P.after_failure(2, true, 0.9));
        assert!(b - a > 40.0, "{a} {b}");
    }

    #[test]
    fn gives_up_after_the_last_attempt_or_when_not_retryable() {
        assert!(matches!(
            P.after_failure(3, true, 0.5),
            AfterFailure::RetryAfter(_)
        ));
        assert_eq!(P.after_failure(4, true, 0.5), AfterFailure::GiveUp);
        assert_eq!(P.after_failure(9, true, 0.5), AfterFailure::GiveUp);
        assert_eq!(P.after_failure(1, false, 0.5), AfterFailure::GiveUp);
    }

    #[test]
    fn the_default_policy_is_three_attempts() {
        let d = RetryPolicy::default();
        assert!(matches!(
            d.after_failure(2, true, 0.0),
            AfterFailure::RetryAfter(_)
        ));
        assert_eq!(d.after_failure(3, true, 0.0), AfterFailure::GiveUp);
    }
}
