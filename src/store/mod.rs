//! Persistence for instance and binding records.
//!
//! The store is a tiny versioned key-value model that every backend can implement with the same
//! guarantees: items live under `(pk, sk)`, every item carries a `version`, and every write is
//! conditional (absent, or at an expected version). A batch of writes is atomic: all conditions
//! hold and all writes happen, or nothing changes and [`Error::Conflict`] is returned. A loser of
//! a race therefore re-reads; it never overwrites.
//!
//! Items whose `expires_at` lies in the past are tombstones that have run out: reads treat them as
//! absent and [`Cond::Absent`] accepts them, so expiry does not depend on a backend's TTL sweeper.

pub mod counting;
pub mod dynamodb;
pub mod file;
pub mod memory;

use async_trait::async_trait;

/// The key of one item: `pk = instance#<id>`, `sk = meta` or `binding#<id>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key {
    pub pk: String,
    pub sk: String,
}

impl Key {
    pub fn instance(instance_id: &str) -> Self {
        Key {
            pk: format!("instance#{instance_id}"),
            sk: "meta".into(),
        }
    }

    pub fn binding(instance_id: &str, binding_id: &str) -> Self {
        Key {
            pk: format!("instance#{instance_id}"),
            sk: format!("binding#{binding_id}"),
        }
    }

    /// The partition holding an instance and all its bindings.
    pub fn instance_partition(instance_id: &str) -> String {
        format!("instance#{instance_id}")
    }
}

/// One stored item: an opaque JSON document plus the fields the store itself understands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    pub key: Key,
    /// Optimistic-locking counter; the first write of a key stores version 1.
    pub version: u64,
    /// Unix seconds after which the item counts as absent (tombstones only).
    pub expires_at: Option<i64>,
    /// The record, serialised as JSON by the layer above.
    pub data: String,
}

/// The condition a write needs to hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cond {
    /// The key is absent, or holds an expired tombstone.
    Absent,
    /// The key holds a live item at exactly this version.
    Version(u64),
}

/// One write of an atomic batch.
#[derive(Debug, Clone)]
pub enum WriteOp {
    /// Store `item` (its `version` is the new version) if `cond` holds.
    Put { item: Item, cond: Cond },
    /// Remove the key if `cond` holds.
    Delete { key: Key, cond: Cond },
    /// Change nothing, but fail the batch unless `cond` holds.
    Check { key: Key, cond: Cond },
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A condition did not hold: someone else wrote first. Re-read and decide again.
    #[error("conditional write lost a race")]
    Conflict,
    /// The backend failed (I/O, network, throttling beyond retries, corrupt data).
    #[error("store backend failed: {0}")]
    Backend(String),
}

pub type Result<T> = std::result::Result<T, Error>;

/// The one persistence interface; memory, the embedded file store and DynamoDB implement it.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// A strongly consistent read of one live item.
    async fn get(&self, key: &Key) -> Result<Option<Item>>;

    /// All live items of a partition, ordered by `sk`.
    async fn query(&self, pk: &str) -> Result<Vec<Item>>;

    /// Apply all writes atomically, or none and return [`Error::Conflict`].
    /// A batch names each key at most once.
    async fn write(&self, ops: Vec<WriteOp>) -> Result<()>;

    /// Count one use of an allowance shared by every process on this store: add 1 to the counter
    /// at `key` unless it has reached `limit` already. True when counted. The counter is
    /// forgotten after `expires_at` (Unix seconds). Not versioned, not readable through `get`.
    /// The embedded file store and the memory store count in this process only.
    async fn count_up(&self, key: &Key, limit: u64, expires_at: i64) -> Result<bool>;

    /// A short name for logs ("memory", "file", "dynamodb").
    fn kind(&self) -> &'static str;

    /// Open the connection the next call will use, with one cheap read whose answer is not
    /// looked at (a Lambda does this during its cold start). Nothing to open for a store in
    /// this process.
    async fn warm_up(&self) -> Result<()> {
        Ok(())
    }
}

/// Counters of [`Store::count_up`] kept in the process, for the backends without a shared one.
#[derive(Debug, Default)]
pub struct LocalCounters {
    counters: std::sync::Mutex<std::collections::HashMap<Key, (u64, i64)>>,
}

impl LocalCounters {
    pub fn count_up(&self, key: &Key, limit: u64, expires_at: i64) -> Result<bool> {
        let now = now_unix();
        let mut map = self
            .counters
            .lock()
            .map_err(|_| Error::Backend("counters poisoned".into()))?;
        map.retain(|_, (_, expires)| *expires > now);
        let entry = map.entry(key.clone()).or_insert((0, expires_at));
        if entry.0 >= limit {
            return Ok(false);
        }
        entry.0 += 1;
        Ok(true)
    }
}

/// Current time in Unix seconds, the clock all expiry decisions use.
pub fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Current time in Unix milliseconds (claims, check intervals, the SAKURA budget's slots).
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Whether an item is an expired tombstone at `now`.
pub fn is_expired(expires_at: Option<i64>, now: i64) -> bool {
    matches!(expires_at, Some(t) if t <= now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_instance_and_its_bindings_share_one_partition() {
        let instance = Key::instance("i-1");
        let binding = Key::binding("i-1", "b-1");
        assert_eq!(instance.pk, Key::instance_partition("i-1"));
        assert_eq!(binding.pk, Key::instance_partition("i-1"));
        assert_eq!(instance.sk, "meta");
        assert_eq!(binding.sk, "binding#b-1");
        assert_ne!(Key::instance("i-1").pk, Key::instance("i-10").pk);
    }

    #[test]
    fn a_tombstone_expires_at_its_second_not_before() {
        assert!(!is_expired(None, i64::MAX));
        assert!(!is_expired(Some(100), 99));
        assert!(is_expired(Some(100), 100));
        assert!(is_expired(Some(100), 101));
    }

    #[test]
    fn local_counters_stop_at_the_limit_and_forget_expired_slots() {
        let counters = LocalCounters::default();
        let later = now_unix() + 60;
        let slot = Key {
            pk: "budget".into(),
            sk: "slot#1".into(),
        };
        let other = Key {
            pk: "budget".into(),
            sk: "slot#2".into(),
        };
        let taken: Vec<bool> = (0..4)
            .map(|_| counters.count_up(&slot, 3, later).unwrap())
            .collect();
        assert_eq!(taken, [true, true, true, false]);
        assert!(
            counters.count_up(&other, 3, later).unwrap(),
            "slots count apart"
        );
        // A raised limit (an effect may use the reserve) counts on from the same total.
        assert!(counters.count_up(&slot, 4, later).unwrap());
        assert!(!counters.count_up(&slot, 4, later).unwrap());

        let past = Key {
            pk: "budget".into(),
            sk: "slot#0".into(),
        };
        assert!(counters.count_up(&past, 1, now_unix() - 1).unwrap());
        assert!(
            counters.count_up(&past, 1, now_unix() - 1).unwrap(),
            "an expired counter starts again from zero"
        );
    }
}
