//! Korifi, as its broker client sends requests. Follows cloudfoundry/korifi
//! `controllers/controllers/services/osbapi/client.go` (`Provision`, `Deprovision`, `Bind`,
//! `Unbind`, `GetServiceInstanceLastOperation`, `GetServiceBinding`, and `sendRequest`: version
//! 2.17, no originating identity, `accepts_incomplete=true` on every changing request, empty query
//! values left out, the deprovision's `service_id` / `plan_id` in a JSON body, not the query) and
//! `controllers/controllers/services/osbapi/types.go` (no `context`; `parameters` is a Go map, so
//! `null` when the user gave none). 400, 409 and 422 on provision, deprovision and unbind are
//! `UnrecoverableError` there; a reconcile re-sends PUT and DELETE.
//!
//! `sendRequest` sets no Content-Type in the stored source; newer builds send
//! `Content-Type: application/json` on every request. Both are replayed.
//!
//! Also here: transient SAKURA Cloud and store trouble never answers 400, 409 or 422.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use axum::http::{Method, StatusCode};
use osb_sacloud::app;
use osb_sacloud::sacloud::simulator::{Faults, RouteFaults, Simulator};
use osb_sacloud::store::memory::MemoryStore;
use osb_sacloud::store::{self, Item, Key, Store, WriteOp};
use serde_json::{Value, json};

use super::{Platform, not_final};
use crate::support::*;

fn korifi(content_type_always: bool) -> Platform {
    Platform {
        version: "2.17",
        identity: None,
        content_type_always,
        content_type_with_body: content_type_always,
        request_identity: false,
    }
}

fn provision_request(parameters: Value) -> Value {
    json!({
        "service_id": MARIADB, "plan_id": MARIADB_10G,
        "space_guid": "space-guid", "organization_guid": "org-guid",
        "parameters": parameters,
    })
}

fn last_operation(id: &str, operation: &str) -> String {
    format!(
        "/v2/service_instances/{id}/last_operation?operation={operation}&plan_id={MARIADB_10G}&service_id={MARIADB}"
    )
}

#[tokio::test]
async fn korifi_lifecycle_with_and_without_content_type() {
    let h = Harness::start().await;
    for content_type in [true, false] {
        lifecycle(&h, &korifi(content_type)).await;
    }
}

async fn lifecycle(h: &Harness, p: &Platform) {
    let id = new_id("korifi");
    let put = format!("/v2/service_instances/{id}?accepts_incomplete=true");

    // A user who gave no parameters: the required network settings are missing, a final 400.
    let (status, _, answer) = p
        .send(
            h,
            Method::PUT,
            &put,
            Some(provision_request(Value::Null)),
            false,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert!(
        super::stored_instance(h, &id).await.is_none(),
        "nothing recorded"
    );

    let body = provision_request(good_parameters());
    let (status, _, answer) = p
        .send(h, Method::PUT, &put, Some(body.clone()), false)
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    let op = answer["operation"].as_str().expect("operation").to_owned();
    // The next reconcile re-sends the PUT: the same operation while it runs.
    let (status, _, again) = p
        .send(h, Method::PUT, &put, Some(body.clone()), false)
        .await;
    assert!(
        (status == StatusCode::ACCEPTED && again["operation"] == op.as_str())
            || status == StatusCode::OK,
        "{status} {again}"
    );
    let ((status, _, last), _) = p.poll_until_done(h, &last_operation(&id, &op), false).await;
    assert_eq!(
        (status, last["state"].as_str()),
        (StatusCode::OK, Some("succeeded")),
        "{last}"
    );
    let (status, _, _) = p.send(h, Method::PUT, &put, Some(body), false).await;
    assert_eq!(status, StatusCode::OK, "a re-PUT of a ready instance");

    // Bind with `parameters: null` and an empty `app_guid`, as the Go structs marshal them.
    let binding = new_id("kb");
    let bind_path =
        format!("/v2/service_instances/{id}/service_bindings/{binding}?accepts_incomplete=true");
    let bind = json!({
        "service_id": MARIADB, "plan_id": MARIADB_10G, "app_guid": "",
        "bind_resource": {"app_guid": "app-guid"}, "parameters": null,
    });
    let (status, _, answer) = p
        .send(h, Method::PUT, &bind_path, Some(bind.clone()), false)
        .await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    assert_eq!(
        answer["credentials"]["type"], "mysql",
        "servicebinding.io type"
    );
    let (status, _, _) = p.send(h, Method::PUT, &bind_path, Some(bind), false).await;
    assert_eq!(status, StatusCode::OK, "re-PUT of the same binding");
    let get = format!(
        "/v2/service_instances/{id}/service_bindings/{binding}?plan_id={MARIADB_10G}&service_id={MARIADB}"
    );
    let (status, _, got) = p.send(h, Method::GET, &get, None, false).await;
    assert_eq!(status, StatusCode::OK, "{got}");
    assert_eq!(got["credentials"]["provider"], "sakuracloud");

    // Unbind: ids in the query.
    let unbind = format!(
        "/v2/service_instances/{id}/service_bindings/{binding}?accepts_incomplete=true&plan_id={MARIADB_10G}&service_id={MARIADB}"
    );
    let (status, _, answer) = p.send(h, Method::DELETE, &unbind, None, false).await;
    assert_eq!(status, StatusCode::OK, "{answer}");

    // Deprovision: ids in a JSON body only; re-sent on the next reconcile.
    let ids = json!({"service_id": MARIADB, "plan_id": MARIADB_10G});
    let (status, _, answer) = p
        .send(h, Method::DELETE, &put, Some(ids.clone()), false)
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    let op = answer["operation"].as_str().expect("operation").to_owned();
    let (status, _, again) = p
        .send(h, Method::DELETE, &put, Some(ids.clone()), false)
        .await;
    assert!(
        status == StatusCode::ACCEPTED || status == StatusCode::GONE,
        "{status} {again}"
    );
    let ((status, _, last), _) = p.poll_until_done(h, &last_operation(&id, &op), false).await;
    assert!(
        (status == StatusCode::OK && last["state"] == "succeeded") || status == StatusCode::GONE,
        "{status} {last}"
    );
    let (status, _, _) = p.send(h, Method::DELETE, &put, Some(ids), false).await;
    assert_eq!(status, StatusCode::GONE);
}

fn sakura_down(route: &str, times: u32) -> Faults {
    let mut routes = BTreeMap::new();
    routes.insert(
        route.to_owned(),
        RouteFaults {
            next_503: times,
            ..RouteFaults::default()
        },
    );
    Faults {
        routes,
        ..Faults::default()
    }
}

#[tokio::test]
async fn sakura_outages_never_answer_a_final_status() {
    let h = Harness::start_with(|env| {
        env.insert("SAKURACLOUD_RETRY_MAX".into(), "1".into());
    })
    .await;
    let p = korifi(true);

    // Provision while every create answers 503: accepted, the operation retries.
    h.sim.set_faults(sakura_down("POST /appliance", 4));
    let id = new_id("korifi-503");
    let put = format!("/v2/service_instances/{id}?accepts_incomplete=true");
    let (status, _, answer) = p
        .send(
            &h,
            Method::PUT,
            &put,
            Some(provision_request(good_parameters())),
            false,
        )
        .await;
    not_final(status, "provision", &answer);
    let op = answer["operation"].as_str().unwrap_or("").to_owned();
    let ((status, _, last), _) = p
        .poll_until_done(&h, &last_operation(&id, &op), false)
        .await;
    assert_eq!(
        (status, last["state"].as_str()),
        (StatusCode::OK, Some("succeeded")),
        "{last}"
    );

    // Bind while reading the appliance fails: a 5xx, and the retry binds.
    h.sim.set_faults(sakura_down("GET /appliance/{id}", 50));
    let binding = new_id("kb");
    let bind_path = format!("/v2/service_instances/{id}/service_bindings/{binding}");
    let (status, _, answer) = p
        .send(
            &h,
            Method::PUT,
            &bind_path,
            Some(bind_body(MARIADB, MARIADB_10G)),
            false,
        )
        .await;
    not_final(status, "bind", &answer);
    assert!(status.is_server_error(), "{status} {answer}");
    h.sim.set_faults(Faults::default());
    let (status, _, answer) = p
        .send(
            &h,
            Method::PUT,
            &bind_path,
            Some(bind_body(MARIADB, MARIADB_10G)),
            false,
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");

    // Deprovision while SAKURA Cloud answers 503 everywhere: accepted, finished later.
    h.sim.set_faults(sakura_down("*", 6));
    let ids = json!({"service_id": MARIADB, "plan_id": MARIADB_10G});
    let (status, _, answer) = p.send(&h, Method::DELETE, &put, Some(ids), false).await;
    not_final(status, "deprovision", &answer);
    let op = answer["operation"].as_str().unwrap_or("").to_owned();
    h.sim.set_faults(Faults::default());
    let ((status, _, last), _) = p
        .poll_until_done(&h, &last_operation(&id, &op), false)
        .await;
    assert_eq!(
        (status, last["state"].as_str()),
        (StatusCode::OK, Some("succeeded")),
        "{last}"
    );
}

/// A memory store whose reads and writes fail while `down` is set, as DynamoDB throttling
/// beyond its retries or a broken disk would.
struct FlakyStore {
    inner: MemoryStore,
    down: AtomicBool,
}

impl FlakyStore {
    fn check(&self) -> store::Result<()> {
        if self.down.load(Ordering::SeqCst) {
            return Err(store::Error::Backend("injected outage".into()));
        }
        Ok(())
    }
}

#[async_trait]
impl Store for FlakyStore {
    async fn get(&self, key: &Key) -> store::Result<Option<Item>> {
        self.check()?;
        self.inner.get(key).await
    }

    async fn query(&self, pk: &str) -> store::Result<Vec<Item>> {
        self.check()?;
        self.inner.query(pk).await
    }

    async fn write(&self, ops: Vec<WriteOp>) -> store::Result<()> {
        self.check()?;
        self.inner.write(ops).await
    }

    async fn count_up(&self, key: &Key, limit: u64, expires_at: i64) -> store::Result<bool> {
        self.check()?;
        self.inner.count_up(key, limit, expires_at).await
    }

    fn kind(&self) -> &'static str {
        "memory"
    }
}

#[tokio::test]
async fn store_outages_never_answer_a_final_status() {
    let sim = Simulator::start(simulator_config(), SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .expect("simulator starts");
    let flaky = Arc::new(FlakyStore {
        inner: MemoryStore::new(),
        down: AtomicBool::new(false),
    });
    let store: Arc<dyn Store> = flaky.clone();
    let app = app::build_with_store(&config_from(&broker_env(&sim)), store.clone())
        .await
        .expect("broker builds");
    let h = Harness { app, sim, store };
    let p = korifi(true);
    let id = new_id("korifi-store");
    h.ready_instance(&id, MARIADB, MARIADB_10G).await;

    flaky.down.store(true, Ordering::SeqCst);
    let other = new_id("korifi-store-new");
    let binding = new_id("kb");
    let ids = json!({"service_id": MARIADB, "plan_id": MARIADB_10G});
    let attempts = [
        (
            "provision",
            Method::PUT,
            format!("/v2/service_instances/{other}?accepts_incomplete=true"),
            Some(provision_request(good_parameters())),
        ),
        (
            "bind",
            Method::PUT,
            format!(
                "/v2/service_instances/{id}/service_bindings/{binding}?accepts_incomplete=true"
            ),
            Some(bind_body(MARIADB, MARIADB_10G)),
        ),
        (
            "deprovision",
            Method::DELETE,
            format!("/v2/service_instances/{id}?accepts_incomplete=true"),
            Some(ids.clone()),
        ),
        ("poll", Method::GET, last_operation(&id, "x"), None),
    ];
    for (what, method, path, body) in attempts {
        let (status, _, answer) = p.send(&h, method, &path, body, false).await;
        not_final(status, what, &answer);
        assert!(status.is_server_error(), "{what}: {status} {answer}");
        assert_eq!(answer["error"], "InternalError", "{what}: {answer}");
    }
    flaky.down.store(false, Ordering::SeqCst);
    assert!(
        super::stored_instance(&h, &other).await.is_none(),
        "nothing half-made"
    );
    let path = format!("/v2/service_instances/{id}/service_bindings/{binding}");
    let (status, _, answer) = p
        .send(
            &h,
            Method::PUT,
            &path,
            Some(bind_body(MARIADB, MARIADB_10G)),
            false,
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "after the outage: {answer}");
}
