//! One SAKURA Cloud request budget for every process that shares a store.
//!
//! SAKURA Cloud limits requests per API key, not per process: on Lambda every concurrent
//! instance would otherwise add its own `SAKURACLOUD_RATE_LIMIT`. So the budget lives in the
//! store, as one counter per time slot (one second, or longer for rates below one per second):
//! every SAKURA request first counts itself in the current slot's counter with a conditional
//! increment ([`crate::store::Store::count_up`]), and goes out only if the slot's limit was not
//! reached. On DynamoDB that is one `UpdateItem` per SAKURA request (two when the slot is full
//! and the request waits for the next one), plus one per process and slot for the first request
//! turned away: after that the process knows the slot is used up and refuses without asking.
//! The embedded file store keeps the counters in the process, which owns the file alone.
//!
//! Why slot counters rather than a token bucket item or leases: a bucket needs a read and a
//! conditional write per request (two calls, and retries under contention), a lease needs a
//! write to take and one to give back; a counter is one unconditional-looking, conditionally
//! guarded write that never retries. Its price is the slot edge: two slots' worth may go out
//! within one rolling second, never more than the limit within one slot of the clock.
//!
//! Reads never take the whole slot: a reserve is kept for side effects (create, shutdown,
//! delete, settings), so however hard platforms poll, a deprovision is never starved.
//! A request never waits long: when the slot is full a side effect waits for the next slot only
//! if that starts within `max_wait`, a read not at all; a refused request's caller answers from
//! its records.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use async_trait::async_trait;

use crate::store::{Key, Store};

/// What a SAKURA request is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Priority {
    /// A read (`GET`): may use the slot up to the reserve.
    Read = 0,
    /// A side effect (`POST`, `PUT`, `DELETE`): may use the whole slot.
    Effect = 1,
}

/// Decides whether one SAKURA request may go out now.
#[async_trait]
pub trait Gate: Send + Sync + std::fmt::Debug {
    /// True when the request may be sent; false when the budget is used up for now.
    async fn admit(&self, priority: Priority) -> bool;

    /// False when `admit` is known to refuse `priority` for now, without asking anyone.
    fn may_admit(&self, _priority: Priority) -> bool {
        true
    }
}

/// The budget of a deployment, counted in its store.
pub struct SharedBudget {
    store: Arc<dyn Store>,
    /// Slot length in milliseconds.
    slot_ms: i64,
    /// Requests per slot.
    limit: u64,
    /// Of `limit`, how many only side effects may use.
    reserve: u64,
    max_wait: Duration,
    /// The last slot this process found used up, for reads and for effects. Counts only grow
    /// within a slot, so until it ends a request of that kind is refused without a store call:
    /// a storm of polls turned away costs the table nothing.
    full: [AtomicI64; 2],
}

impl std::fmt::Debug for SharedBudget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedBudget")
            .field("store", &self.store.kind())
            .field("slot_ms", &self.slot_ms)
            .field("limit", &self.limit)
            .field("reserve", &self.reserve)
            .finish()
    }
}

impl SharedBudget {
    /// `per_sec` requests per second over the whole deployment; `None` when unlimited (zero,
    /// negative or not finite).
    pub fn new(store: Arc<dyn Store>, per_sec: f64, max_wait: Duration) -> Option<SharedBudget> {
        if !(per_sec.is_finite() && per_sec > 0.0) {
            return None;
        }
        let (slot_ms, limit) = if per_sec >= 1.0 {
            (1000, per_sec.floor() as u64)
        } else {
            ((1000.0 / per_sec).ceil() as i64, 1)
        };
        // A fifth of the slot, at least one request, for side effects (none when the slot holds
        // one request: then reads and effects take turns).
        let reserve = if limit >= 2 { (limit / 5).max(1) } else { 0 };
        Some(SharedBudget {
            store,
            slot_ms,
            limit,
            reserve,
            max_wait,
            full: [AtomicI64::new(i64::MIN), AtomicI64::new(i64::MIN)],
        })
    }

    /// Whether this process already saw `slot` used up for `priority` (an effect's limit is a
    /// read's too).
    fn known_full(&self, slot: i64, priority: Priority) -> bool {
        let full = |p: Priority| self.full[p as usize].load(Ordering::Relaxed) == slot;
        full(Priority::Effect) || (priority == Priority::Read && full(Priority::Read))
    }

    fn limit_for(&self, priority: Priority) -> u64 {
        match priority {
            Priority::Effect => self.limit,
            Priority::Read => self.limit - self.reserve,
        }
    }

    /// Count the request in the slot holding `now_ms`.
    async fn take(&self, now_ms: i64, priority: Priority) -> bool {
        let slot = now_ms.div_euclid(self.slot_ms);
        if self.known_full(slot, priority) {
            return false;
        }
        let key = Key {
            pk: "budget".into(),
            sk: format!("slot#{}#{slot}", self.slot_ms),
        };
        let expires = (slot + 1) * self.slot_ms / 1000 + 120;
        match self
            .store
            .count_up(&key, self.limit_for(priority), expires)
            .await
        {
            Ok(true) => true,
            Ok(false) => {
                self.full[priority as usize].fetch_max(slot, Ordering::Relaxed);
                false
            }
            Err(e) => {
                tracing::warn!(error = %e, "the SAKURA Cloud budget could not be counted; holding the request back");
                false
            }
        }
    }
}

#[async_trait]
impl Gate for SharedBudget {
    async fn admit(&self, priority: Priority) -> bool {
        // A few rounds at most: each costs a store call, and a request must not wait long.
        for _ in 0..4 {
            let now = crate::store::now_ms();
            let slot_end = (now.div_euclid(self.slot_ms) + 1) * self.slot_ms;
            // Counted in the slot it was asked in, but the store may have been slow: a request
            // that would reach SAKURA in the next slot is not sent on this count (the count
            // stays: erring on the side of fewer requests).
            if self.take(now, priority).await && crate::store::now_ms() < slot_end - SEND_MARGIN_MS
            {
                return true;
            }
            // Only a side effect waits for the next slot: a read is a poll's, which answers from
            // its record at once and leaves the read to a later poll.
            let wait = slot_end - crate::store::now_ms();
            if priority == Priority::Read || wait > self.max_wait.as_millis() as i64 {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(wait.max(0) as u64)).await;
        }
        false
    }

    fn may_admit(&self, priority: Priority) -> bool {
        !self.known_full(crate::store::now_ms().div_euclid(self.slot_ms), priority)
    }
}

/// How long before its slot ends a request must have been counted to be sent in it: the time
/// it may take to reach SAKURA Cloud.
const SEND_MARGIN_MS: i64 = 50;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::memory::MemoryStore;

    fn budget(per_sec: f64) -> SharedBudget {
        SharedBudget::new(Arc::new(MemoryStore::new()), per_sec, Duration::ZERO).unwrap()
    }

    /// A slot start well in the future, so no counter has expired when it is read.
    fn future_ms() -> i64 {
        (crate::store::now_unix() + 1000) / 2 * 2 * 1000
    }

    #[tokio::test]
    async fn reads_leave_a_reserve_that_effects_may_use() {
        let b = budget(5.0);
        let t = future_ms();
        let mut admitted = 0;
        for _ in 0..6 {
            admitted += u32::from(b.take(t, Priority::Read).await);
        }
        assert_eq!(admitted, 4, "one of five is kept for side effects");
        assert!(b.take(t + 10, Priority::Effect).await);
        assert!(
            !b.take(t + 20, Priority::Effect).await,
            "the slot is used up"
        );
        assert!(
            b.take(t + 1000, Priority::Read).await,
            "a new second, a new slot"
        );
    }

    #[tokio::test]
    async fn slow_rates_get_longer_slots() {
        let b = budget(0.5);
        assert_eq!((b.slot_ms, b.limit, b.reserve), (2000, 1, 0));
        let t = future_ms();
        assert!(b.take(t, Priority::Read).await);
        assert!(!b.take(t + 1999, Priority::Effect).await);
        assert!(b.take(t + 2000, Priority::Effect).await);
    }

    #[test]
    fn no_budget_when_unlimited() {
        for rate in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            assert!(
                SharedBudget::new(Arc::new(MemoryStore::new()), rate, Duration::ZERO).is_none()
            );
        }
    }

    #[tokio::test]
    async fn a_full_slot_waits_for_the_next_only_within_max_wait() {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let patient = SharedBudget::new(store.clone(), 1.0, Duration::from_millis(1500)).unwrap();
        let hasty = SharedBudget::new(store, 1.0, Duration::ZERO).unwrap();
        let now = crate::store::now_ms();
        assert!(patient.take(now, Priority::Effect).await);
        if crate::store::now_ms() / 1000 != now / 1000 {
            return; // The second turned between the two lines: nothing to compare.
        }
        assert!(!hasty.admit(Priority::Effect).await, "refused at once");
        assert!(
            !patient.admit(Priority::Read).await,
            "a read never waits for the next slot"
        );
        let started = std::time::Instant::now();
        assert!(
            patient.admit(Priority::Effect).await,
            "admitted in the next slot"
        );
        assert!(started.elapsed() <= Duration::from_millis(1100));
    }

    #[tokio::test]
    async fn a_used_up_slot_is_known_without_asking_the_store_again() {
        let counting = Arc::new(crate::store::counting::CountingStore::new(Arc::new(
            MemoryStore::new(),
        )));
        let calls = counting.totals();
        let b = SharedBudget::new(counting, 5.0, Duration::ZERO).unwrap();
        let budget_calls = || calls.snapshot().budget;
        let t = future_ms();
        let reads: Vec<bool> = takes(&b, t, Priority::Read, 10).await;
        assert_eq!(reads.iter().filter(|r| **r).count(), 4);
        assert_eq!(
            budget_calls(),
            5,
            "four counted, one turned away, five refused here"
        );

        // Reads being used up says nothing of effects: the reserve is asked for.
        assert!(b.take(t + 1, Priority::Effect).await);
        assert!(!b.take(t + 2, Priority::Effect).await);
        assert_eq!(budget_calls(), 7);
        assert!(!b.take(t + 3, Priority::Effect).await);
        assert!(!b.take(t + 4, Priority::Read).await);
        assert_eq!(budget_calls(), 7, "a full slot is full for both kinds");
        let slot = t.div_euclid(1000);
        assert!(b.known_full(slot, Priority::Effect));
        assert!(
            !b.known_full(slot + 1, Priority::Read),
            "only until the slot ends"
        );

        // The next slot is asked for again.
        assert!(b.take(t + 1000, Priority::Read).await);
        assert_eq!(budget_calls(), 8);
    }

    /// `count` takes of `priority` in the slot holding `t`, one after the other.
    async fn takes(b: &SharedBudget, t: i64, priority: Priority, count: usize) -> Vec<bool> {
        let mut out = Vec::with_capacity(count);
        for i in 0..count {
            out.push(b.take(t + i as i64, priority).await);
        }
        out
    }
}
