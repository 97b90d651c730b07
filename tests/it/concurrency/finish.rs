//! The final deprovision write (instance and bindings tombstoned in one atomic write) loses
//! when a binding changes between the read and the write. The poll that lost retries with the
//! bindings as they are now and finishes: no claim is left to run out its lease.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use async_trait::async_trait;
use axum::http::{Method, StatusCode};
use osb_sacloud::app;
use osb_sacloud::sacloud::simulator::Simulator;
use osb_sacloud::store::memory::MemoryStore;
use osb_sacloud::store::{Cond, Item, Key, Result, Store, WriteOp};
use serde_json::Value;

use crate::support::dedicated::{MARIADB_KIND, bind, binding_path};
use crate::support::*;

/// A memory store in which a binding of the instance changes just before each of the first
/// `races` writes that would tombstone the instance, as if an unbind's write landed first.
struct RacingStore {
    inner: MemoryStore,
    races: AtomicU32,
    raced: AtomicU32,
}

impl RacingStore {
    async fn touch_a_binding(&self, pk: &str) -> Result<()> {
        let items = self.inner.query(pk).await?;
        let binding = items
            .into_iter()
            .find(|i| i.key.sk.starts_with("binding#"))
            .expect("the instance has a binding");
        let cond = Cond::Version(binding.version);
        let item = Item {
            version: binding.version + 1,
            ..binding
        };
        self.inner.write(vec![WriteOp::Put { item, cond }]).await
    }
}

#[async_trait]
impl Store for RacingStore {
    async fn get(&self, key: &Key) -> Result<Option<Item>> {
        self.inner.get(key).await
    }

    async fn query(&self, pk: &str) -> Result<Vec<Item>> {
        self.inner.query(pk).await
    }

    async fn write(&self, ops: Vec<WriteOp>) -> Result<()> {
        let tombstones_instance = ops.iter().find_map(|op| match op {
            WriteOp::Put { item, .. }
                if item.key.sk == "meta" && item.data.contains(r#""state":"gone""#) =>
            {
                Some(item.key.pk.clone())
            }
            _ => None,
        });
        if let Some(pk) = tombstones_instance
            && self
                .races
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok()
        {
            self.touch_a_binding(&pk).await?;
            self.raced.fetch_add(1, Ordering::SeqCst);
        }
        self.inner.write(ops).await
    }

    async fn count_up(&self, key: &Key, limit: u64, expires_at: i64) -> Result<bool> {
        self.inner.count_up(key, limit, expires_at).await
    }

    fn kind(&self) -> &'static str {
        "memory"
    }
}

async fn harness(races: u32) -> (Harness, Arc<RacingStore>) {
    let sim = Simulator::start(simulator_config(), SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .expect("simulator starts");
    let racing = Arc::new(RacingStore {
        inner: MemoryStore::new(),
        races: AtomicU32::new(races),
        raced: AtomicU32::new(0),
    });
    let store: Arc<dyn Store> = racing.clone();
    let app = app::build_with_store(&config_from(&broker_env(&sim)), store.clone())
        .await
        .expect("broker builds");
    (Harness { app, sim, store }, racing)
}

/// Deprovision `id` (bound once) and poll; returns the state of the first poll answered after
/// the race happened, and the final state.
async fn deprovision_through_races(
    h: &Harness,
    racing: &RacingStore,
    id: &str,
) -> (String, String) {
    let (status, body) = h.deprovision(id, MARIADB, MARIADB_10G).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let path = format!("/v2/service_instances/{id}/last_operation");
    let mut first_after_race = None;
    for _ in 0..400 {
        let (status, _, body) = h.call(Method::GET, &path, None).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let state = body["state"].as_str().expect("state").to_owned();
        if first_after_race.is_none() && racing.raced.load(Ordering::SeqCst) > 0 {
            first_after_race = Some(state.clone());
        }
        if state != "in progress" {
            return (first_after_race.expect("the race happened"), state);
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("deprovision of {id} never finished");
}

async fn bound_instance(h: &Harness, id: &str) -> String {
    h.ready_instance(id, MARIADB, MARIADB_10G).await;
    let binding = format!("{id}-b");
    let (status, body) = bind(h, id, &binding, MARIADB_KIND, Value::Null).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    binding
}

#[tokio::test]
async fn a_binding_moving_under_the_final_write_does_not_delay_the_deprovision() {
    let (h, racing) = harness(1).await;
    let id = new_id("finish");
    let binding = bound_instance(&h, &id).await;

    let (after_race, last) = deprovision_through_races(&h, &racing, &id).await;
    assert_eq!(racing.raced.load(Ordering::SeqCst), 1);
    assert_eq!(
        after_race, "succeeded",
        "the poll that lost the race finishes the deprovision itself"
    );
    assert_eq!(last, "succeeded");
    let (status, _, body) = h
        .call(Method::GET, &binding_path(&id, &binding), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "binding tombstoned: {body}");
    let (status, _) = h.deprovision(&id, MARIADB, MARIADB_10G).await;
    assert_eq!(status, StatusCode::GONE);
}

#[tokio::test]
async fn bindings_that_keep_moving_give_the_claim_back_to_the_next_poll() {
    // More races than one poll retries: that poll gives up without holding anything, and a
    // later one finishes as soon as the bindings are still.
    let (h, racing) = harness(5).await;
    let id = new_id("finish-busy");
    bound_instance(&h, &id).await;

    let (_, last) = deprovision_through_races(&h, &racing, &id).await;
    assert_eq!(last, "succeeded");
    assert_eq!(racing.raced.load(Ordering::SeqCst), 5);
    let (status, _) = h.deprovision(&id, MARIADB, MARIADB_10G).await;
    assert_eq!(status, StatusCode::GONE);
}
