//! The store contract, written once (`cases`) and run against every backend: memory, the
//! redb file store and DynamoDB (moto).

use std::sync::Arc;

use osb_sacloud::store::file::FileStore;
use osb_sacloud::store::memory::MemoryStore;
use osb_sacloud::store::{Store, dynamodb::DynamoStore};

/// A fresh, empty store and whatever must live as long as it (a temp dir).
pub struct Fixture {
    pub store: Arc<dyn Store>,
    _dir: Option<tempfile::TempDir>,
}

pub async fn memory(_test: &str) -> Fixture {
    Fixture {
        store: Arc::new(MemoryStore::new()),
        _dir: None,
    }
}

pub async fn file(_test: &str) -> Fixture {
    let dir = tempfile::tempdir().expect("temp dir");
    // A nested path also proves that open creates the parent directories.
    let store =
        FileStore::open(&dir.path().join("data/osb-sacloud.redb")).expect("open file store");
    Fixture {
        store: Arc::new(store),
        _dir: Some(dir),
    }
}

pub async fn dynamodb(test: &str) -> Fixture {
    let (store, _log): (DynamoStore, _) = crate::support::moto::store(test).await;
    Fixture {
        store: Arc::new(store),
        _dir: None,
    }
}

/// Runs every case of [`crate::store::cases`] against one backend, each case as its own test
/// carrying the attributes given in brackets after the backend's name.
macro_rules! suite {
    ($backend:ident) => {
        suite!($backend, []);
    };
    ($backend:ident, $attrs:tt) => {
        mod $backend {
            suite!(@cases $backend; $attrs;
                create_if_absent, second_create_conflicts, update_at_version,
                stale_version_conflicts, delete_is_conditioned, check_op, atomic_batch,
                query_returns_partition_in_sk_order, expired_tombstone_reads_as_absent,
                racing_creates_have_one_winner, racing_increments_lose_nothing,
                counting_wrapper_counts, count_up_admits_exactly_the_limit);
        }
    };
    (@cases $backend:ident; $attrs:tt; $($case:ident),* $(,)?) => {
        $(suite!(@case $backend; $attrs; $case);)*
    };
    (@case $backend:ident; [$(#[$attr:meta])*]; $case:ident) => {
        $(#[$attr])*
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn $case() {
            let fixture = super::$backend(concat!(stringify!($backend), stringify!($case))).await;
            crate::store::cases::$case(fixture.store.clone()).await;
        }
    };
}

suite!(memory);
suite!(file);
suite!(
    dynamodb,
    [#[cfg_attr(
        not(feature = "services"),
        ignore = "needs moto, the DynamoDB emulator: run scripts/test.sh"
    )]]
);
