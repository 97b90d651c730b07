//! What each OSB request costs in DynamoDB calls, over a whole lifecycle on one broker (no
//! contention): the store layer's counters (`App::store_calls`) and the DynamoDB API operations
//! the SDK actually sent must agree, and each kind of request must cost exactly what the state
//! machine promises (an idle poll: one consistent read; an observed transition: one read and one
//! conditional write; a claimed side effect: one read and two writes, claim then result).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::http::{Method, Request, StatusCode};
use osb_sacloud::app::{self, App};
use osb_sacloud::sacloud::simulator::{Simulator, Timings};
use osb_sacloud::store::counting::Counts;
use osb_sacloud::store::dynamodb::DynamoStore;
use osb_sacloud::store::{Key, Store};
use serde_json::Value;

use crate::support::moto::{self, CallLog};
use crate::support::*;

/// One broker over a counted DynamoDB store, and an uncounted view of the same table.
struct Meter {
    app: App,
    _sim: Simulator,
    log: Arc<CallLog>,
    raw: DynamoStore,
    /// Per request kind: (requests, reads, queries, writes).
    totals: BTreeMap<&'static str, (u64, u64, u64, u64)>,
}

/// What one request cost, and the instance record's version and step around it.
#[derive(Debug)]
struct Cost {
    status: StatusCode,
    body: Value,
    calls: Counts,
    ops: Vec<String>,
    versions: (u64, u64),
}

impl Meter {
    async fn start() -> Meter {
        let mut cfg = simulator_config();
        // Slow enough that polls find nothing to do between transitions, even on a busy machine.
        cfg.timings = Timings {
            migrating: Duration::from_millis(2000),
            boot: Duration::from_millis(250),
            cleaning: Duration::from_millis(3000),
            ..fast_timings()
        };
        let sim = Simulator::start(cfg, SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .expect("simulator starts");
        let (store, log) = moto::store("cost").await;
        let raw = DynamoStore::new(moto::client().0, store.table().to_owned());
        let mut env = broker_env(&sim);
        // The state machine's own store calls; the SAKURA budget's are measured on their own.
        env.insert("SAKURACLOUD_RATE_LIMIT".into(), "0".into());
        let config = config_from(&env);
        let app = app::build_with_store(&config, Arc::new(store))
            .await
            .expect("broker builds");
        Meter {
            app,
            _sim: sim,
            log,
            raw,
            totals: BTreeMap::new(),
        }
    }

    async fn version(&self, id: &str) -> u64 {
        let item = self.raw.get(&Key::instance(id)).await.expect("read");
        item.map_or(0, |i| i.version)
    }

    /// Send one request and measure it, filed under `kind` in the totals.
    async fn call(
        &mut self,
        kind: &'static str,
        id: &str,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Cost {
        let before_version = self.version(id).await;
        self.log.take();
        let before = self.app.store_calls.snapshot();
        let req = Request::builder()
            .method(method)
            .uri(path)
            .header("X-Broker-API-Version", "2.17")
            .header("Authorization", basic(USER, PASSWORD));
        let (status, _, body) = send(&self.app.router, with_body(req, body)).await;
        let after = self.app.store_calls.snapshot();
        let ops = self.log.take();
        let calls = Counts {
            reads: after.reads - before.reads,
            queries: after.queries - before.queries,
            writes: after.writes - before.writes,
            budget: after.budget - before.budget,
        };
        // Every store call is exactly one DynamoDB operation: a read one GetItem, a query one
        // Query page, a write one PutItem (a single op) or TransactWriteItems (a batch).
        let n = |names: &[&str]| ops.iter().filter(|o| names.contains(&o.as_str())).count() as u64;
        assert_eq!(
            ops.len() as u64,
            calls.total(),
            "{kind}: {ops:?} vs {calls:?}"
        );
        assert_eq!(n(&["GetItem"]), calls.reads, "{kind}: {ops:?}");
        assert_eq!(n(&["Query"]), calls.queries, "{kind}: {ops:?}");
        assert_eq!(
            n(&["PutItem", "TransactWriteItems", "DeleteItem"]),
            calls.writes
        );
        let t = self.totals.entry(kind).or_default();
        *t = (
            t.0 + 1,
            t.1 + calls.reads,
            t.2 + calls.queries,
            t.3 + calls.writes,
        );
        let after_version = self.version(id).await;
        Cost {
            status,
            body,
            calls,
            ops,
            versions: (before_version, after_version),
        }
    }

    /// Poll until the operation ends; checks each poll's cost against what it changed.
    /// Returns the polls that claimed a side effect (two writes).
    async fn polls(&mut self, kind: &'static str, id: &str) -> (Vec<Cost>, usize) {
        let path = format!("/v2/service_instances/{id}/last_operation");
        let (mut claimed, mut idle) = (Vec::new(), 0);
        for _ in 0..400 {
            let c = self.call(kind, id, Method::GET, &path, None).await;
            assert_eq!(c.status, StatusCode::OK, "{}", c.body);
            assert_eq!(c.calls.reads, 1, "a poll reads the record once: {c:?}");
            let delta = c.versions.1 - c.versions.0;
            // Alone on the table, every write lands and bumps the version once.
            assert_eq!(c.calls.writes, delta, "{c:?}");
            match (c.calls.writes, c.calls.queries) {
                (0, 0) => idle += 1,
                (1, 0) => {}
                // Deprovision done: the bindings are read to tombstone them with the instance.
                (1, 1) => assert_eq!(c.ops, ["GetItem", "Query", "TransactWriteItems"]),
                (2, 0) => claimed.push(c),
                _ => panic!("unexpected poll cost: {c:?}"),
            }
            if self.last_state_done(id).await {
                return (claimed, idle);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("operation on {id} never finished");
    }

    async fn last_state_done(&self, id: &str) -> bool {
        let item = self.raw.get(&Key::instance(id)).await.expect("read");
        let data: Value = serde_json::from_str(&item.expect("record").data).expect("JSON");
        data["operation"]["state"] != "in_progress"
    }
}

fn expect(c: &Cost, status: StatusCode, reads: u64, queries: u64, writes: u64) {
    assert_eq!(c.status, status, "{}", c.body);
    let want = Counts {
        reads,
        queries,
        writes,
        budget: 0,
    };
    assert_eq!(c.calls, want, "{:?}", c.ops);
}

#[cfg_attr(
    not(feature = "services"),
    ignore = "needs moto, the DynamoDB emulator: run scripts/test.sh"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_request_of_a_lifecycle_costs_what_the_state_machine_promises() {
    let mut m = Meter::start().await;
    let id = new_id("cost");
    let put = format!("/v2/service_instances/{id}?accepts_incomplete=true");
    let binding = |b: &str| format!("/v2/service_instances/{id}/service_bindings/{b}");
    let unbind = |b: &str| format!("{}?service_id={MARIADB}&plan_id={MARIADB_10G}", binding(b));

    // Provision: read (absent), put the record, claim the create, record the appliance id.
    let body = provision_body(MARIADB, MARIADB_10G);
    let c = m
        .call("provision", &id, Method::PUT, &put, Some(body))
        .await;
    expect(&c, StatusCode::ACCEPTED, 1, 0, 3);
    assert_eq!(c.ops, ["GetItem", "PutItem", "PutItem", "PutItem"]);
    let (claimed, idle) = m.polls("poll (provisioning)", &id).await;
    // Applying the configuration once the engine runs is the one claimed step of the polls.
    assert_eq!(claimed.len(), 1, "{claimed:?}");
    assert_eq!(claimed[0].ops, ["GetItem", "PutItem", "PutItem"]);
    assert!(idle > 0, "some polls found nothing to do");

    // A poll of a finished operation: one read.
    let last_op = format!("/v2/service_instances/{id}/last_operation");
    let c = m
        .call("poll (finished)", &id, Method::GET, &last_op, None)
        .await;
    expect(&c, StatusCode::OK, 1, 0, 0);

    // Shared bind: read the instance and the binding, then one transaction (instance
    // unchanged + binding absent -> put).
    let c = m
        .call(
            "bind",
            &id,
            Method::PUT,
            &binding("b1"),
            Some(bind_body(MARIADB, MARIADB_10G)),
        )
        .await;
    expect(&c, StatusCode::CREATED, 2, 0, 1);
    assert_eq!(c.ops, ["GetItem", "GetItem", "TransactWriteItems"]);
    let c = m
        .call(
            "bind (again)",
            &id,
            Method::PUT,
            &binding("b1"),
            Some(bind_body(MARIADB, MARIADB_10G)),
        )
        .await;
    expect(&c, StatusCode::OK, 2, 0, 0);
    let c = m
        .call("get binding", &id, Method::GET, &binding("b1"), None)
        .await;
    expect(&c, StatusCode::OK, 2, 0, 0);
    let c = m
        .call(
            "get instance",
            &id,
            Method::GET,
            &format!("/v2/service_instances/{id}"),
            None,
        )
        .await;
    expect(&c, StatusCode::OK, 1, 0, 0);

    // Unbind: read, tombstone.
    let c = m
        .call("unbind", &id, Method::DELETE, &unbind("b1"), None)
        .await;
    expect(&c, StatusCode::OK, 1, 0, 1);
    assert_eq!(c.ops, ["GetItem", "PutItem"]);
    // One binding left in place, for the deprovision to tombstone.
    let c = m
        .call(
            "bind",
            &id,
            Method::PUT,
            &binding("b2"),
            Some(bind_body(MARIADB, MARIADB_10G)),
        )
        .await;
    expect(&c, StatusCode::CREATED, 2, 0, 1);

    // Deprovision: read, start the operation, claim the shutdown, record it done.
    let delete = format!(
        "/v2/service_instances/{id}?accepts_incomplete=true&service_id={MARIADB}&plan_id={MARIADB_10G}"
    );
    let c = m
        .call("deprovision", &id, Method::DELETE, &delete, None)
        .await;
    expect(&c, StatusCode::ACCEPTED, 1, 0, 3);
    let (claimed, idle) = m.polls("poll (deprovisioning)", &id).await;
    assert_eq!(
        claimed.len(),
        1,
        "the delete is the one claimed step: {claimed:?}"
    );
    assert_eq!(claimed[0].ops, ["GetItem", "PutItem", "PutItem"]);
    assert!(idle > 0, "some polls found nothing to do");
    let c = m
        .call("poll (finished)", &id, Method::GET, &last_op, None)
        .await;
    expect(&c, StatusCode::OK, 1, 0, 0);
    let c = m
        .call("deprovision (gone)", &id, Method::DELETE, &delete, None)
        .await;
    expect(&c, StatusCode::GONE, 1, 0, 0);

    let size = m
        .raw
        .get(&Key::instance(&id))
        .await
        .expect("read")
        .expect("tombstone");
    println!("instance record: {} bytes of JSON", size.data.len());
    println!(
        "{:<24} {:>8} {:>6} {:>8} {:>7}",
        "request", "requests", "reads", "queries", "writes"
    );
    for (kind, (n, r, q, w)) in &m.totals {
        println!("{kind:<24} {n:>8} {r:>6} {q:>8} {w:>7}");
    }
}
