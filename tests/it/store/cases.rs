//! The store contract as generic cases, each taking an empty `Arc<dyn Store>`;
//! `store_suite` runs every case against every backend.

use std::sync::Arc;

use osb_sacloud::store::counting::{Counters, CountingStore, Counts, REQUEST_COUNTERS};
use osb_sacloud::store::{Cond, Error, Item, Key, Store, WriteOp, now_unix};

fn key(sk: &str) -> Key {
    Key {
        pk: "instance#i-1".into(),
        sk: sk.into(),
    }
}

/// An item at `version` holding `data`, without expiry.
pub fn item(key: &Key, version: u64, data: &str) -> Item {
    Item {
        key: key.clone(),
        version,
        expires_at: None,
        data: data.into(),
    }
}

/// A put of `item` under `cond`.
pub fn put(item: &Item, cond: Cond) -> WriteOp {
    WriteOp::Put {
        item: item.clone(),
        cond,
    }
}

async fn write1(store: &Arc<dyn Store>, op: WriteOp) -> Result<(), Error> {
    store.write(vec![op]).await
}

fn assert_conflict(result: Result<(), Error>) {
    assert!(
        matches!(result, Err(Error::Conflict)),
        "expected a conflict, got {result:?}"
    );
}

pub async fn create_if_absent(store: Arc<dyn Store>) {
    let k = key("meta");
    assert_eq!(store.get(&k).await.unwrap(), None);
    let v1 = item(&k, 1, r#"{"state":"new"}"#);
    write1(&store, put(&v1, Cond::Absent)).await.unwrap();
    assert_eq!(store.get(&k).await.unwrap(), Some(v1));
}

pub async fn second_create_conflicts(store: Arc<dyn Store>) {
    let k = key("meta");
    let first = item(&k, 1, "first");
    write1(&store, put(&first, Cond::Absent)).await.unwrap();
    assert_conflict(write1(&store, put(&item(&k, 1, "second"), Cond::Absent)).await);
    assert_eq!(store.get(&k).await.unwrap(), Some(first));
}

pub async fn update_at_version(store: Arc<dyn Store>) {
    let k = key("meta");
    write1(&store, put(&item(&k, 1, "a"), Cond::Absent))
        .await
        .unwrap();
    let v2 = item(&k, 2, "b");
    write1(&store, put(&v2, Cond::Version(1))).await.unwrap();
    assert_eq!(store.get(&k).await.unwrap(), Some(v2));
}

pub async fn stale_version_conflicts(store: Arc<dyn Store>) {
    let k = key("meta");
    write1(&store, put(&item(&k, 1, "a"), Cond::Absent))
        .await
        .unwrap();
    write1(&store, put(&item(&k, 2, "b"), Cond::Version(1)))
        .await
        .unwrap();
    assert_conflict(write1(&store, put(&item(&k, 2, "stale"), Cond::Version(1))).await);
    assert_conflict(write1(&store, put(&item(&k, 4, "future"), Cond::Version(3))).await);
    // A version condition on a key that was never written fails too.
    let other = key("binding#none");
    assert_conflict(write1(&store, put(&item(&other, 2, "x"), Cond::Version(1))).await);
    assert_eq!(store.get(&k).await.unwrap(), Some(item(&k, 2, "b")));
    assert_eq!(store.get(&other).await.unwrap(), None);
}

pub async fn delete_is_conditioned(store: Arc<dyn Store>) {
    let k = key("meta");
    write1(&store, put(&item(&k, 1, "a"), Cond::Absent))
        .await
        .unwrap();
    write1(&store, put(&item(&k, 2, "b"), Cond::Version(1)))
        .await
        .unwrap();
    let delete = |cond| WriteOp::Delete {
        key: k.clone(),
        cond,
    };
    assert_conflict(write1(&store, delete(Cond::Version(1))).await);
    assert_conflict(write1(&store, delete(Cond::Absent)).await);
    assert!(store.get(&k).await.unwrap().is_some());
    write1(&store, delete(Cond::Version(2))).await.unwrap();
    assert_eq!(store.get(&k).await.unwrap(), None);
    // Gone now: a versioned delete conflicts, deleting "if absent" is a no-op.
    assert_conflict(write1(&store, delete(Cond::Version(2))).await);
    write1(&store, delete(Cond::Absent)).await.unwrap();
}

pub async fn check_op(store: Arc<dyn Store>) {
    let k = key("meta");
    let check = |cond| WriteOp::Check {
        key: k.clone(),
        cond,
    };
    write1(&store, check(Cond::Absent)).await.unwrap();
    assert_conflict(write1(&store, check(Cond::Version(1))).await);
    write1(&store, put(&item(&k, 1, "a"), Cond::Absent))
        .await
        .unwrap();
    write1(&store, check(Cond::Version(1))).await.unwrap();
    assert_conflict(write1(&store, check(Cond::Version(2))).await);
    assert_conflict(write1(&store, check(Cond::Absent)).await);
    assert_eq!(store.get(&k).await.unwrap(), Some(item(&k, 1, "a")));
}

pub async fn atomic_batch(store: Arc<dyn Store>) {
    let meta = key("meta");
    let bind = key("binding#b1");
    write1(&store, put(&item(&meta, 1, "m1"), Cond::Absent))
        .await
        .unwrap();

    // Each batch has one failing condition (stale put, stale check, existing create).
    let failing = [
        vec![
            put(&item(&bind, 1, "b1"), Cond::Absent),
            put(&item(&meta, 3, "m3"), Cond::Version(2)),
        ],
        vec![
            put(&item(&bind, 1, "b1"), Cond::Absent),
            WriteOp::Check {
                key: meta.clone(),
                cond: Cond::Version(7),
            },
        ],
        vec![
            WriteOp::Delete {
                key: meta.clone(),
                cond: Cond::Version(1),
            },
            put(&item(&bind, 1, "b1"), Cond::Version(1)),
        ],
    ];
    for batch in failing {
        assert_conflict(store.write(batch).await);
        assert_eq!(
            store.get(&bind).await.unwrap(),
            None,
            "nothing of a failed batch lands"
        );
        assert_eq!(store.get(&meta).await.unwrap(), Some(item(&meta, 1, "m1")));
    }

    store
        .write(vec![
            put(&item(&bind, 1, "b1"), Cond::Absent),
            put(&item(&meta, 2, "m2"), Cond::Version(1)),
        ])
        .await
        .unwrap();
    assert_eq!(store.get(&bind).await.unwrap(), Some(item(&bind, 1, "b1")));
    assert_eq!(store.get(&meta).await.unwrap(), Some(item(&meta, 2, "m2")));

    store
        .write(vec![
            WriteOp::Delete {
                key: bind.clone(),
                cond: Cond::Version(1),
            },
            WriteOp::Check {
                key: meta.clone(),
                cond: Cond::Version(2),
            },
        ])
        .await
        .unwrap();
    assert_eq!(store.get(&bind).await.unwrap(), None);
    assert_eq!(store.get(&meta).await.unwrap(), Some(item(&meta, 2, "m2")));
}

pub async fn query_returns_partition_in_sk_order(store: Arc<dyn Store>) {
    assert_eq!(store.query("instance#i-1").await.unwrap(), vec![]);
    let expired = Item {
        expires_at: Some(now_unix() - 10),
        ..item(&key("binding#0-expired"), 1, "gone")
    };
    let neighbour = item(&Key::instance("i-10"), 1, "other partition");
    let wanted = [
        item(&key("binding#a"), 1, "a"),
        item(&key("binding#b"), 3, "b"),
        item(&key("meta"), 2, "m"),
    ];
    for it in [&wanted[2], &expired, &neighbour, &wanted[1], &wanted[0]] {
        write1(&store, put(it, Cond::Absent)).await.unwrap();
    }
    assert_eq!(store.query("instance#i-1").await.unwrap(), wanted.to_vec());
    assert_eq!(store.query("instance#i-10").await.unwrap(), vec![neighbour]);
    assert_eq!(store.query("instance#i").await.unwrap(), vec![]);
}

pub async fn expired_tombstone_reads_as_absent(store: Arc<dyn Store>) {
    let now = now_unix();
    let k = key("meta");
    let tomb = |version, expires_at| Item {
        expires_at: Some(expires_at),
        ..item(&k, version, "tombstone")
    };
    // A tombstone still in its lifetime is an item like any other.
    write1(&store, put(&tomb(1, now + 3600), Cond::Absent))
        .await
        .unwrap();
    assert_eq!(store.get(&k).await.unwrap(), Some(tomb(1, now + 3600)));
    assert_conflict(write1(&store, put(&item(&k, 1, "new"), Cond::Absent)).await);

    write1(&store, put(&tomb(2, now - 1), Cond::Version(1)))
        .await
        .unwrap();
    assert_eq!(store.get(&k).await.unwrap(), None);
    assert_eq!(store.query(&k.pk).await.unwrap(), vec![]);
    // Expired: no version matches it, Absent accepts it.
    assert_conflict(write1(&store, put(&item(&k, 3, "x"), Cond::Version(2))).await);
    let check = WriteOp::Check {
        key: k.clone(),
        cond: Cond::Absent,
    };
    write1(&store, check).await.unwrap();
    let fresh = item(&k, 1, "recreated");
    write1(&store, put(&fresh, Cond::Absent)).await.unwrap();
    assert_eq!(store.get(&k).await.unwrap(), Some(fresh));
}

pub async fn racing_creates_have_one_winner(store: Arc<dyn Store>) {
    let k = key("meta");
    let tasks: Vec<_> = (0..20)
        .map(|n| {
            let store = store.clone();
            let k = k.clone();
            tokio::spawn(async move {
                let res = store
                    .write(vec![put(&item(&k, 1, &format!("task {n}")), Cond::Absent)])
                    .await;
                (n, res)
            })
        })
        .collect();
    let mut winners = Vec::new();
    for task in tasks {
        match task.await.unwrap() {
            (n, Ok(())) => winners.push(n),
            (_, Err(Error::Conflict)) => {}
            (_, Err(e)) => panic!("a lost race must be a conflict, got {e:?}"),
        }
    }
    assert_eq!(winners.len(), 1, "winners: {winners:?}");
    let stored = store.get(&k).await.unwrap().unwrap();
    assert_eq!(stored.data, format!("task {}", winners[0]));
}

pub async fn racing_increments_lose_nothing(store: Arc<dyn Store>) {
    const TASKS: u64 = 20;
    const EACH: u64 = 3;
    let k = key("counter");
    write1(&store, put(&item(&k, 1, "0"), Cond::Absent))
        .await
        .unwrap();
    let tasks: Vec<_> = (0..TASKS)
        .map(|_| {
            let store = store.clone();
            let k = k.clone();
            tokio::spawn(async move {
                for _ in 0..EACH {
                    increment(&store, &k).await;
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let end = store.get(&k).await.unwrap().unwrap();
    assert_eq!(end.data, (TASKS * EACH).to_string());
    assert_eq!(end.version, 1 + TASKS * EACH);
}

/// `count_up` admits exactly `limit` uses of a counter however many tasks race for it, keeps
/// counters apart, and forgets an expired one.
pub async fn count_up_admits_exactly_the_limit(store: Arc<dyn Store>) {
    const LIMIT: u64 = 7;
    let k = Key {
        pk: "budget".into(),
        sk: format!("second#{}", osb_sacloud::store::now_unix()),
    };
    let expires = osb_sacloud::store::now_unix() + 60;
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let (store, k) = (store.clone(), k.clone());
            tokio::spawn(async move { store.count_up(&k, LIMIT, expires).await.unwrap() })
        })
        .collect();
    let mut admitted = 0;
    for task in tasks {
        admitted += u64::from(task.await.unwrap());
    }
    assert_eq!(admitted, LIMIT);
    let other = Key {
        pk: "budget".into(),
        sk: "second#other".into(),
    };
    assert!(store.count_up(&other, 1, expires).await.unwrap());
    assert!(!store.count_up(&other, 1, expires).await.unwrap());
    // A higher limit on the same counter admits the difference (effects' reserve).
    assert!(store.count_up(&k, LIMIT + 1, expires).await.unwrap());
    assert!(!store.count_up(&k, LIMIT + 1, expires).await.unwrap());
}

/// Read, add one, write at the version read; on a conflict re-read and try again.
async fn increment(store: &Arc<dyn Store>, k: &Key) {
    for _ in 0..10_000 {
        let cur = store.get(k).await.unwrap().unwrap();
        let n: u64 = cur.data.parse().unwrap();
        let next = item(k, cur.version + 1, &(n + 1).to_string());
        match write1(store, put(&next, Cond::Version(cur.version))).await {
            Ok(()) => return,
            Err(Error::Conflict) => continue,
            Err(e) => panic!("increment failed: {e:?}"),
        }
    }
    panic!("increment never won a race");
}

pub async fn counting_wrapper_counts(store: Arc<dyn Store>) {
    let kind = store.kind();
    let counting = Arc::new(CountingStore::new(store));
    let totals = counting.totals();
    let request = Arc::new(Counters::default());
    let k = key("meta");
    REQUEST_COUNTERS
        .scope(request.clone(), async {
            counting.get(&k).await.unwrap();
            let counts = Counts {
                reads: 1,
                queries: 0,
                writes: 0,
                budget: 0,
            };
            assert_eq!(totals.snapshot(), counts);
            let batch = vec![
                put(&item(&k, 1, "m"), Cond::Absent),
                put(&item(&key("binding#b"), 1, "b"), Cond::Absent),
            ];
            counting.write(batch).await.unwrap();
            assert_eq!(
                totals.snapshot(),
                Counts {
                    reads: 1,
                    queries: 0,
                    writes: 1,
                    budget: 0,
                }
            );
        })
        .await;
    // Outside the request's scope only the totals move.
    assert_eq!(counting.query(&k.pk).await.unwrap().len(), 2);
    assert_conflict(
        counting
            .write(vec![put(&item(&k, 1, "again"), Cond::Absent)])
            .await,
    );
    assert_eq!(
        totals.snapshot(),
        Counts {
            reads: 1,
            queries: 1,
            writes: 2,
            budget: 0,
        }
    );
    assert_eq!(
        request.snapshot(),
        Counts {
            reads: 1,
            queries: 0,
            writes: 1,
            budget: 0,
        }
    );
    assert_eq!(counting.kind(), kind);
}
