//! How fast the client calls the API: a client-side rate limit shared by every clone of a
//! client, and the backoff between retries.

use std::sync::Mutex;
use std::time::Duration;

use rand::Rng;
use tokio::time::Instant;

/// Spaces requests at least `1 / rate` apart (a token bucket of depth one, as SAKURA's Go
/// client does). Requests reserve their slot in order, so concurrent callers queue fairly.
#[derive(Debug)]
pub(crate) struct RateLimiter {
    interval: Option<Duration>,
    next: Mutex<Option<Instant>>,
}

impl RateLimiter {
    /// `per_sec` requests per second; zero, negative or non-finite means no limit.
    pub(crate) fn new(per_sec: f64) -> RateLimiter {
        let interval =
            (per_sec.is_finite() && per_sec > 0.0).then(|| Duration::from_secs_f64(1.0 / per_sec));
        RateLimiter {
            interval,
            next: Mutex::new(None),
        }
    }

    /// Wait for this request's turn.
    pub(crate) async fn acquire(&self) {
        if let Some(slot) = self.reserve(Instant::now()) {
            tokio::time::sleep_until(slot).await;
        }
    }

    /// Reserve the next free slot at or after `now`; `None` when unlimited.
    fn reserve(&self, now: Instant) -> Option<Instant> {
        let interval = self.interval?;
        // The guarded value is a plain Instant, so a poisoned lock still holds a valid one.
        let mut next = self.next.lock().unwrap_or_else(|e| e.into_inner());
        let slot = next.map_or(now, |n| n.max(now));
        *next = Some(slot + interval);
        Some(slot)
    }
}

/// The wait before retry number `attempt` (0 = first retry): `base * 2^attempt`, capped at
/// `base * 64`, with jitter so that many clients do not retry in lockstep.
pub(crate) fn backoff(base: Duration, attempt: u32) -> Duration {
    let full = base.saturating_mul(1u32 << attempt.min(6));
    // "Equal jitter": at least half of the full wait, so backoff still grows.
    let half = full / 2;
    let jitter_nanos = u64::try_from(half.as_nanos()).unwrap_or(u64::MAX);
    let jitter = if jitter_nanos == 0 {
        0
    } else {
        rand::rng().random_range(0..=jitter_nanos)
    };
    half + Duration::from_nanos(jitter)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_spaced_by_the_interval() {
        let limiter = RateLimiter::new(4.0);
        let now = Instant::now();
        let slots: Vec<_> = (0..3).map(|_| limiter.reserve(now).unwrap()).collect();
        assert_eq!(slots[0], now);
        assert_eq!(slots[1] - slots[0], Duration::from_millis(250));
        assert_eq!(slots[2] - slots[1], Duration::from_millis(250));
        // Once the queue has drained, a request goes at once.
        let later = now + Duration::from_secs(10);
        assert_eq!(limiter.reserve(later), Some(later));
    }

    #[test]
    fn no_limit_when_the_rate_is_not_positive() {
        for rate in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            assert_eq!(RateLimiter::new(rate).reserve(Instant::now()), None);
        }
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let base = Duration::from_millis(100);
        for attempt in 0..10 {
            let full = base * (1 << attempt.min(6));
            let d = backoff(base, attempt);
            assert!(d >= full / 2 && d <= full, "attempt {attempt}: {d:?}");
        }
        assert_eq!(backoff(Duration::ZERO, 3), Duration::ZERO);
    }
}
