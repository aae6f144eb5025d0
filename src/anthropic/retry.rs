//! When to try a failed Messages API call again, and how long to wait first.
//!
//! Exponential backoff with full jitter (delay uniform in `[0, min(max, initial * 2^n))`) spreads the
//! retries of many agents hitting the same rate limit; a server hint (`retry-after-ms`, then
//! `retry-after` in seconds or as an HTTP date) replaces the computed delay because the API knows when
//! the limit resets. Nothing ever sleeps past the policy's total budget.

use std::time::{Duration, SystemTime};

use reqwest::header::HeaderMap;

/// How often and how long to retry retryable failures (see [`super::ApiError::is_retryable`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in total, the first one included.
    pub max_attempts: u32,
    /// Backoff cap for the first retry; doubles for each further one.
    pub initial_backoff: Duration,
    /// Longest single wait, server hints included.
    pub max_backoff: Duration,
    /// Time from the first attempt after which no further attempt starts.
    pub total_budget: Duration,
}

impl Default for RetryPolicy {
    /// 6 attempts, 1 s initial backoff, 60 s longest wait, 5 min budget: rides out a rate-limit
    /// window or a short overload without stalling an investigation for long.
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 6,
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(60),
            total_budget: Duration::from_secs(5 * 60),
        }
    }
}

/// What to do after a retryable failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RetryDecision {
    /// Sleep this long, then try again.
    RetryAfter(Duration),
    /// Stop: attempts or budget used up.
    GiveUp,
}

impl RetryPolicy {
    /// The upper bound of the jittered backoff after `failed_attempts` failures (1 for the first).
    pub fn backoff_ceiling(&self, failed_attempts: u32) -> Duration {
        let doublings = failed_attempts.saturating_sub(1).min(31);
        self.initial_backoff
            .checked_mul(1u32 << doublings)
            .unwrap_or(self.max_backoff)
            .min(self.max_backoff)
    }

    /// Decides after `attempts_made` attempts, `elapsed` since the first began. `server_hint` is the
    /// delay the response asked for; `jitter` is uniform in `[0, 1)`.
    pub(crate) fn decide(
        &self,
        attempts_made: u32,
        elapsed: Duration,
        server_hint: Option<Duration>,
        jitter: f64,
    ) -> RetryDecision {
        if attempts_made >= self.max_attempts {
            return RetryDecision::GiveUp;
        }
        let remaining = self.total_budget.saturating_sub(elapsed);
        if remaining.is_zero() {
            return RetryDecision::GiveUp;
        }
        let delay = match server_hint {
            Some(hint) => hint.min(self.max_backoff),
            None => self
                .backoff_ceiling(attempts_made)
                .mul_f64(jitter.clamp(0.0, 1.0)),
        };
        RetryDecision::RetryAfter(delay.min(remaining))
    }
}

/// The wait a response asks for: `retry-after-ms` (milliseconds, what Anthropic's SDKs read first),
/// else `retry-after` as seconds or as an HTTP date relative to `now`.
pub(crate) fn server_retry_hint(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .map(str::trim)
    };
    if let Some(millis) = header("retry-after-ms").and_then(non_negative_number) {
        return Some(Duration::from_secs_f64(millis / 1000.0));
    }
    let retry_after = header("retry-after")?;
    if let Some(seconds) = non_negative_number(retry_after) {
        return Some(Duration::from_secs_f64(seconds));
    }
    let at = jiff::fmt::rfc2822::parse(retry_after).ok()?.timestamp();
    let now = jiff::Timestamp::try_from(now).ok()?;
    let wait = now.duration_until(at);
    // A date in the past means "now".
    Some(Duration::try_from(wait).unwrap_or(Duration::ZERO))
}

/// A finite, non-negative number small enough for a `Duration` (a day at most is plenty).
fn non_negative_number(text: &str) -> Option<f64> {
    let number: f64 = text.parse().ok()?;
    (number.is_finite() && (0.0..=86_400_000.0).contains(&number)).then_some(number)
}

/// The `x-should-retry` header, by which the API overrides the status-based retry decision.
pub(crate) fn server_retry_override(headers: &HeaderMap) -> Option<bool> {
    match headers.get("x-should-retry")?.to_str().ok()?.trim() {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use reqwest::header::HeaderValue;

    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 4,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(500),
            total_budget: Duration::from_secs(2),
        }
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let policy = policy();
        let ceilings: Vec<u128> = (1..=5)
            .map(|n| policy.backoff_ceiling(n).as_millis())
            .collect();
        assert_eq!(ceilings, vec![100, 200, 400, 500, 500]);
        assert_eq!(policy.backoff_ceiling(u32::MAX), policy.max_backoff);
    }

    #[test]
    fn jitter_scales_the_ceiling() {
        let policy = policy();
        assert_eq!(
            policy.decide(2, Duration::ZERO, None, 0.5),
            RetryDecision::RetryAfter(Duration::from_millis(100))
        );
        assert_eq!(
            policy.decide(2, Duration::ZERO, None, 0.0),
            RetryDecision::RetryAfter(Duration::ZERO)
        );
    }

    #[test]
    fn server_hint_overrides_but_is_capped_by_max_backoff_and_budget() {
        let policy = policy();
        let hint = |ms| Some(Duration::from_millis(ms));
        assert_eq!(
            policy.decide(1, Duration::ZERO, hint(300), 0.0),
            RetryDecision::RetryAfter(Duration::from_millis(300))
        );
        assert_eq!(
            policy.decide(1, Duration::ZERO, hint(30_000), 0.0),
            RetryDecision::RetryAfter(Duration::from_millis(500))
        );
        assert_eq!(
            policy.decide(1, Duration::from_millis(1_800), hint(400), 0.0),
            RetryDecision::RetryAfter(Duration::from_millis(200))
        );
    }

    #[test]
    fn gives_up_when_attempts_or_budget_are_spent() {
        let policy = policy();
        assert_eq!(
            policy.decide(4, Duration::ZERO, None, 0.5),
            RetryDecision::GiveUp
        );
        assert_eq!(
            policy.decide(1, Duration::from_secs(2), None, 0.5),
            RetryDecision::GiveUp
        );
    }

    #[test]
    fn reads_retry_after_in_all_its_forms() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_777); // Sun, 06 Nov 1994 08:49:37 GMT
        assert_eq!(
            server_retry_hint(&headers(&[("retry-after", "2")]), now),
            Some(Duration::from_secs(2))
        );
        assert_eq!(
            server_retry_hint(&headers(&[("retry-after", "1.5")]), now),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(
            server_retry_hint(
                &headers(&[("retry-after", "Sun, 06 Nov 1994 08:49:47 GMT")]),
                now
            ),
            Some(Duration::from_secs(10))
        );
        assert_eq!(
            server_retry_hint(
                &headers(&[("retry-after", "Sun, 06 Nov 1994 08:00:00 GMT")]),
                now
            ),
            Some(Duration::ZERO)
        );
        assert_eq!(
            server_retry_hint(
                &headers(&[("retry-after", "3"), ("retry-after-ms", "250")]),
                now
            ),
            Some(Duration::from_millis(250))
        );
        assert_eq!(
            server_retry_hint(&headers(&[("retry-after", "soon")]), now),
            None
        );
        assert_eq!(
            server_retry_hint(&headers(&[("retry-after", "-1")]), now),
            None
        );
        assert_eq!(server_retry_hint(&headers(&[]), now), None);
    }

    #[test]
    fn reads_x_should_retry() {
        assert_eq!(
            server_retry_override(&headers(&[("x-should-retry", "true")])),
            Some(true)
        );
        assert_eq!(
            server_retry_override(&headers(&[("x-should-retry", "false")])),
            Some(false)
        );
        assert_eq!(
            server_retry_override(&headers(&[("x-should-retry", "maybe")])),
            None
        );
        assert_eq!(server_retry_override(&headers(&[])), None);
    }
}
