//! A dedicated bind overtaken by a deprovision, in a forced order: the bind has recorded the
//! binding and made the database user when its last write is held back; meanwhile another broker
//! process deprovisions the instance. The bind must not bring the binding back to life.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::{Method, StatusCode};
use osb_sacloud::sacloud::Engine;
use osb_sacloud::store::Key;
use serde_json::json;

use crate::support::binder::{mariadb_url, unique_name, user_exists};
use crate::support::dedicated::{MARIADB_KIND, binding_path};
use crate::support::gate::Gate;
use crate::support::moto;
use crate::support::procs::Cluster;
use crate::support::*;

/// Poll through broker `i` until the operation ends; returns its state.
async fn finish_on(c: &Cluster, i: usize, id: &str) -> String {
    let path = format!("/v2/service_instances/{id}/last_operation");
    for _ in 0..500 {
        let r = c.call_on(i, Method::GET, &path, None).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        if r.body["state"] != "in progress" {
            return r.body["state"].as_str().unwrap_or("").to_owned();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("operation on {id} never finished");
}

/// The stored state of a binding record, if there is one.
async fn binding_state(c: &Cluster, id: &str, binding: &str) -> Option<String> {
    let (data, _, _) = c.raw_item(&Key::binding(id, binding)).await?;
    data["state"].as_str().map(str::to_owned)
}

fn addr_of(url: &str) -> SocketAddr {
    url.trim_start_matches("http://")
        .parse()
        .expect("a loopback address")
}

#[cfg_attr(
    not(feature = "services"),
    ignore = "needs moto and MariaDB on 127.0.0.1:3306: run scripts/test.sh"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dedicated_bind_overtaken_by_a_deprovision_does_not_bring_its_binding_back() {
    // Broker 0 reaches DynamoDB through one gate; the appliance's database is behind another.
    let dynamo_gate = Gate::start(addr_of(moto::endpoint()), true).await;
    let server = SocketAddr::from(([127, 0, 0, 1], MARIADB_KIND.server_port()));
    let db_gate = Gate::start(server, false).await;
    let mut sim = simulator_config();
    sim.mariadb_url = Some(mariadb_url());
    let dynamo_url = dynamo_gate.url();
    let c = Cluster::start_each(
        "bindovertaken",
        2,
        sim,
        |env| {
            env.insert("OSB_BINDING_MODE".into(), "dedicated".into());
        },
        move |i, env| {
            if i == 0 {
                env.insert("DYNAMODB_ENDPOINT".into(), dynamo_url.clone());
            }
        },
    )
    .await;
    let outcome = {
        let c = c.clone();
        let (dynamo_gate, db_gate) = (Arc::new(dynamo_gate), Arc::new(db_gate));
        tokio::spawn(async move { overtaken(&c, &dynamo_gate, &db_gate).await }).await
    };
    // Drop what the appliance left on the shared server, pass or fail.
    c.sim.reset().await;
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

async fn overtaken(c: &Arc<Cluster>, dynamo_gate: &Gate, db_gate: &Gate) {
    let id = new_id("overtaken");
    let mut body = provision_body(MARIADB, MARIADB_10G);
    body["parameters"] = json!({
        "switchID": "112233445566", "ipaddress": "127.0.0.1", "maskLen": 8,
        "defaultRoute": "127.0.0.254", "port": db_gate.port(), "username": unique_name(),
    });
    let put = format!("/v2/service_instances/{id}?accepts_incomplete=true");
    let r = c.call_on(1, Method::PUT, &put, Some(body)).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    assert_eq!(finish_on(c, 1, &id).await, "succeeded");

    // Broker 0 binds: it records the binding, then waits at the database gate.
    let binding = format!("bd-{}", unique_name());
    let bind = {
        let (c, path) = (c.clone(), binding_path(&id, &binding));
        tokio::spawn(async move {
            let body = bind_body(MARIADB, MARIADB_10G);
            c.call_on(0, Method::PUT, &path, Some(body)).await
        })
    };
    // It has recorded the binding and is connecting to the database when the gate holds the
    // server's greeting. Let it make the user, and hold its next store call (marking the
    // binding bound).
    db_gate.wait_for_held(Duration::from_secs(10)).await;
    assert_eq!(
        binding_state(c, &id, &binding).await.as_deref(),
        Some("creating")
    );
    dynamo_gate.shut();
    db_gate.open();
    dynamo_gate.wait_for_held(Duration::from_secs(10)).await;

    // Meanwhile broker 1 deprovisions the instance, which tombstones the binding.
    let delete = format!(
        "/v2/service_instances/{id}?accepts_incomplete=true&service_id={MARIADB}&plan_id={MARIADB_10G}"
    );
    let r = c.call_on(1, Method::DELETE, &delete, None).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    assert_eq!(finish_on(c, 1, &id).await, "succeeded");
    assert_eq!(
        binding_state(c, &id, &binding).await.as_deref(),
        Some("gone")
    );

    // The bind goes on, and loses its last write.
    dynamo_gate.open();
    let r = bind.await.expect("bind task");
    assert!(
        r.status == StatusCode::UNPROCESSABLE_ENTITY && r.body["error"] == "ConcurrencyError",
        "a bind overtaken by the deprovision: {} {}",
        r.status,
        r.body
    );
    assert_eq!(
        binding_state(c, &id, &binding).await.as_deref(),
        Some("gone"),
        "the binding stays gone with its instance"
    );
    let r = c
        .call(Method::GET, &binding_path(&id, &binding), None)
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
    let user = osb_sacloud::binder::generate_username(&binding);
    assert!(
        !user_exists(Engine::MariaDb, &user).await,
        "the binding's database user is gone too"
    );
}
