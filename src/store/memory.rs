//! An in-process store for tests: a `BTreeMap` behind a mutex, with the same conditional
//! semantics as the durable backends.

use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;

use super::{Cond, Error, Item, Key, LocalCounters, Result, Store, WriteOp, is_expired, now_unix};

#[derive(Default)]
pub struct MemoryStore {
    items: Mutex<BTreeMap<Key, Item>>,
    counters: LocalCounters,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }
}

/// Whether `cond` holds for the item currently stored (if any) at `now`.
pub(crate) fn cond_holds(current: Option<&Item>, cond: Cond, now: i64) -> bool {
    let live = current.filter(|i| !is_expired(i.expires_at, now));
    match cond {
        Cond::Absent => live.is_none(),
        Cond::Version(v) => live.is_some_and(|i| i.version == v),
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn get(&self, key: &Key) -> Result<Option<Item>> {
        let items = self
            .items
            .lock()
            .map_err(|_| Error::Backend("memory store poisoned".into()))?;
        let now = now_unix();
        Ok(items
            .get(key)
            .filter(|i| !is_expired(i.expires_at, now))
            .cloned())
    }

    async fn query(&self, pk: &str) -> Result<Vec<Item>> {
        let items = self
            .items
            .lock()
            .map_err(|_| Error::Backend("memory store poisoned".into()))?;
        let now = now_unix();
        Ok(items
            .values()
            .filter(|i| i.key.pk == pk && !is_expired(i.expires_at, now))
            .cloned()
            .collect())
    }

    async fn write(&self, ops: Vec<WriteOp>) -> Result<()> {
        let mut items = self
            .items
            .lock()
            .map_err(|_| Error::Backend("memory store poisoned".into()))?;
        let now = now_unix();
        for op in &ops {
            let (key, cond) = match op {
                WriteOp::Put { item, cond } => (&item.key, *cond),
                WriteOp::Delete { key, cond } | WriteOp::Check { key, cond } => (key, *cond),
            };
            if !cond_holds(items.get(key), cond, now) {
                return Err(Error::Conflict);
            }
        }
        for op in ops {
            match op {
                WriteOp::Put { item, .. } => {
                    items.insert(item.key.clone(), item);
                }
                WriteOp::Delete { key, .. } => {
                    items.remove(&key);
                }
                WriteOp::Check { .. } => {}
            }
        }
        Ok(())
    }

    async fn count_up(&self, key: &Key, limit: u64, expires_at: i64) -> Result<bool> {
        self.counters.count_up(key, limit, expires_at)
    }

    fn kind(&self) -> &'static str {
        "memory"
    }
}
