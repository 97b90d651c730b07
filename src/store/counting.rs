//! Counts store calls, in total and per OSB request, so tests and benchmarks can assert what a
//! request costs (one consistent read per idle poll, one read plus one write per transition),
//! and times them, so a benchmark can tell the store's share of an answer from the broker's.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::{Item, Key, Result, Store, WriteOp};

/// Calls made, by kind.
#[derive(Debug, Default)]
pub struct Counters {
    pub reads: AtomicU64,
    pub queries: AtomicU64,
    pub writes: AtomicU64,
    /// Uses of the shared SAKURA Cloud budget ([`Store::count_up`]).
    pub budget: AtomicU64,
    /// Time spent waiting for the store in all of the above, in microseconds.
    pub waited_us: AtomicU64,
}

/// A plain copy of [`Counters`] at one moment.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Counts {
    pub reads: u64,
    pub queries: u64,
    pub writes: u64,
    pub budget: u64,
}

impl Counts {
    pub fn total(&self) -> u64 {
        self.reads + self.queries + self.writes
    }
}

impl Counters {
    pub fn snapshot(&self) -> Counts {
        Counts {
            reads: self.reads.load(Ordering::Relaxed),
            queries: self.queries.load(Ordering::Relaxed),
            writes: self.writes.load(Ordering::Relaxed),
            budget: self.budget.load(Ordering::Relaxed),
        }
    }

    /// Time spent waiting for the store so far (calls that overlap count each).
    pub fn waited(&self) -> Duration {
        Duration::from_micros(self.waited_us.load(Ordering::Relaxed))
    }
}

tokio::task_local! {
    /// The counters of the OSB request this task is serving, if the API layer set them.
    pub static REQUEST_COUNTERS: Arc<Counters>;
}

/// `fut`, counting its store calls for the OSB request this task serves (if any): for work the
/// request hands to a task of its own.
pub fn for_this_request<F: std::future::Future>(
    fut: F,
) -> impl std::future::Future<Output = F::Output> {
    let counters = REQUEST_COUNTERS.try_with(Arc::clone).ok();
    async move {
        match counters {
            Some(c) => REQUEST_COUNTERS.scope(c, fut).await,
            None => fut.await,
        }
    }
}

fn bump(pick: impl Fn(&Counters) -> &AtomicU64, total: &Counters) {
    pick(total).fetch_add(1, Ordering::Relaxed);
    let _ = REQUEST_COUNTERS.try_with(|c| pick(c).fetch_add(1, Ordering::Relaxed));
}

/// Count one call picked by `pick` and add the time `call` takes to the waited time.
async fn timed<T>(
    pick: impl Fn(&Counters) -> &AtomicU64,
    total: &Counters,
    call: impl std::future::Future<Output = T>,
) -> T {
    bump(pick, total);
    let started = Instant::now();
    let out = call.await;
    let us = started.elapsed().as_micros().min(u128::from(u64::MAX)) as u64;
    total.waited_us.fetch_add(us, Ordering::Relaxed);
    let _ = REQUEST_COUNTERS.try_with(|c| c.waited_us.fetch_add(us, Ordering::Relaxed));
    out
}

/// Wraps any store and counts every call made through it.
pub struct CountingStore {
    inner: Arc<dyn Store>,
    total: Arc<Counters>,
}

impl CountingStore {
    pub fn new(inner: Arc<dyn Store>) -> Self {
        CountingStore {
            inner,
            total: Arc::default(),
        }
    }

    /// Counters over the life of the process.
    pub fn totals(&self) -> Arc<Counters> {
        self.total.clone()
    }
}

#[async_trait]
impl Store for CountingStore {
    async fn get(&self, key: &Key) -> Result<Option<Item>> {
        timed(|c| &c.reads, &self.total, self.inner.get(key)).await
    }

    async fn query(&self, pk: &str) -> Result<Vec<Item>> {
        timed(|c| &c.queries, &self.total, self.inner.query(pk)).await
    }

    async fn write(&self, ops: Vec<WriteOp>) -> Result<()> {
        timed(|c| &c.writes, &self.total, self.inner.write(ops)).await
    }

    async fn count_up(&self, key: &Key, limit: u64, expires_at: i64) -> Result<bool> {
        timed(
            |c| &c.budget,
            &self.total,
            self.inner.count_up(key, limit, expires_at),
        )
        .await
    }

    fn kind(&self) -> &'static str {
        self.inner.kind()
    }

    async fn warm_up(&self) -> Result<()> {
        timed(|c| &c.reads, &self.total, self.inner.warm_up()).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Cond;
    use crate::store::memory::MemoryStore;

    fn item(id: &str) -> Item {
        Item {
            key: Key::instance(id),
            version: 1,
            expires_at: None,
            data: "{}".into(),
        }
    }

    #[tokio::test]
    async fn every_call_is_counted_by_kind_in_total_and_for_its_request() {
        let store = CountingStore::new(Arc::new(MemoryStore::new()));
        let request = Arc::new(Counters::default());
        REQUEST_COUNTERS
            .scope(request.clone(), async {
                store
                    .write(vec![WriteOp::Put {
                        item: item("i-1"),
                        cond: Cond::Absent,
                    }])
                    .await
                    .unwrap();
                store.get(&Key::instance("i-1")).await.unwrap();
                store.get(&Key::instance("i-2")).await.unwrap();
                store.query("instance#i-1").await.unwrap();
                let budget = Key {
                    pk: "budget".into(),
                    sk: "slot".into(),
                };
                store
                    .count_up(&budget, 1, crate::store::now_unix() + 60)
                    .await
                    .unwrap();
            })
            .await;
        let want = Counts {
            reads: 2,
            queries: 1,
            writes: 1,
            budget: 1,
        };
        assert_eq!(request.snapshot(), want);
        assert_eq!(store.totals().snapshot(), want);
        assert_eq!(want.total(), 4, "budget uses are not store reads or writes");

        // Outside any request only the process totals move.
        store.get(&Key::instance("i-1")).await.unwrap();
        assert_eq!(request.snapshot().reads, 2);
        assert_eq!(store.totals().snapshot().reads, 3);
    }

    #[tokio::test]
    async fn work_handed_to_a_task_counts_for_the_request_that_spawned_it() {
        let store = Arc::new(CountingStore::new(Arc::new(MemoryStore::new())));
        let request = Arc::new(Counters::default());
        let s = store.clone();
        REQUEST_COUNTERS
            .scope(request.clone(), async move {
                let counted = tokio::spawn(for_this_request(async move {
                    s.get(&Key::instance("i-1")).await.unwrap();
                }));
                counted.await.unwrap();
            })
            .await;
        assert_eq!(request.snapshot().reads, 1);

        // Without the wrapper a spawned task is outside the request.
        let s = store.clone();
        REQUEST_COUNTERS
            .scope(request.clone(), async move {
                tokio::spawn(async move { s.get(&Key::instance("i-1")).await.unwrap() })
                    .await
                    .unwrap();
            })
            .await;
        assert_eq!(request.snapshot().reads, 1);
        assert_eq!(store.totals().snapshot().reads, 2);
    }
}
