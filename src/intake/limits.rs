//! How much one sender may ask of the intake (issue 9 §5–§7), checked in the handler before any
//! Incident is made: a body must arrive within [`IntakeLimits::body_read_timeout`], one notification
//! may carry at most [`IntakeLimits::max_alerts_per_request`] alerts, and one sender (peer address)
//! at most [`IntakeLimits::alerts_per_minute`] alerts a minute ([`SenderRate`], a token bucket per
//! sender). Alerts' labels and annotations are bounded in [`super::mapping`]. A refusal is a fast
//! 4xx: 408, 413 or 429 with `Retry-After`; Alertmanager's `max_alerts` receiver setting keeps its
//! notifications under the per-request cap.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The intake's bounds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IntakeLimits {
    /// Time from the request head to the last body byte.
    pub body_read_timeout: Duration,
    /// Alerts in one notification; more is refused with 413.
    pub max_alerts_per_request: usize,
    /// Alerts one sender may post per minute (burst: one minute's worth); more is refused with 429.
    pub alerts_per_minute: u32,
}

impl Default for IntakeLimits {
    fn default() -> Self {
        Self {
            body_read_timeout: Duration::from_secs(10),
            // Alertmanager groups alerts by labels; a group of 200 is already an outage report.
            max_alerts_per_request: 200,
            // 50 a second: an Alertmanager storm during a real outage (thousands of alerts over
            // a few minutes) passes, a sender looping on the endpoint does not.
            alerts_per_minute: 3000,
        }
    }
}

/// Senders tracked at most; beyond it, buckets that are full again are forgotten first, then all.
const MAX_TRACKED_SENDERS: usize = 4096;

/// A token bucket of alerts per sender.
#[derive(Debug)]
pub struct SenderRate {
    per_minute: u32,
    buckets: Mutex<HashMap<Option<IpAddr>, Bucket>>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

impl SenderRate {
    pub fn new(per_minute: u32) -> Self {
        Self {
            per_minute,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes `alerts` tokens from `sender`'s bucket at `now`; `Err(wait)` says how long until they
    /// would be there (and takes none).
    pub fn take(
        &self,
        sender: Option<IpAddr>,
        alerts: usize,
        now: Instant,
    ) -> Result<(), Duration> {
        let capacity = f64::from(self.per_minute.max(1));
        let per_second = capacity / 60.0;
        let wanted = alerts as f64;
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if buckets.len() >= MAX_TRACKED_SENDERS && !buckets.contains_key(&sender) {
            buckets.retain(|_, b| {
                b.tokens + now.saturating_duration_since(b.updated).as_secs_f64() * per_second
                    < capacity
            });
            if buckets.len() >= MAX_TRACKED_SENDERS {
                buckets.clear();
            }
        }
        let bucket = buckets.entry(sender).or_insert(Bucket {
            tokens: capacity,
            updated: now,
        });
        let refilled = bucket.tokens
            + now.saturating_duration_since(bucket.updated).as_secs_f64() * per_second;
        bucket.tokens = refilled.min(capacity);
        bucket.updated = now;
        if wanted <= bucket.tokens {
            bucket.tokens -= wanted;
            Ok(())
        } else {
            let missing = wanted.min(capacity) - bucket.tokens;
            Err(Duration::from_secs_f64((missing / per_second).max(1.0)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sender_gets_a_minute_of_burst_then_the_refill_rate() {
        let rate = SenderRate::new(60);
        let start = Instant::now();
        let a = Some(IpAddr::from([10, 0, 0, 1]));
        let b = Some(IpAddr::from([10, 0, 0, 2]));
        assert!(rate.take(a, 60, start).is_ok());
        let wait = rate.take(a, 10, start).unwrap_err();
        assert_eq!(wait, Duration::from_secs(10));
        // Another sender has its own bucket.
        assert!(rate.take(b, 60, start).is_ok());
        // Ten seconds later ten alerts fit again.
        assert!(rate.take(a, 10, start + Duration::from_secs(10)).is_ok());
        // A request larger than the bucket waits for a full bucket, not forever.
        assert_eq!(
            rate.take(a, 1000, start + Duration::from_secs(10))
                .unwrap_err(),
            Duration::from_secs(60)
        );
    }

    #[test]
    fn the_sender_table_stays_bounded() {
        let rate = SenderRate::new(60);
        let now = Instant::now();
        for i in 0..(MAX_TRACKED_SENDERS as u32 + 10) {
            let ip = IpAddr::from(i.to_be_bytes());
            assert!(rate.take(Some(ip), 1, now).is_ok());
        }
        assert!(rate.buckets.lock().unwrap().len() <= MAX_TRACKED_SENDERS);
    }
}
