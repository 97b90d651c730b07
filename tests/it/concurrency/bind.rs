//! Bindings raced across three broker processes on one DynamoDB table: identical binds hand out
//! one set of credentials, and unbinds and new binds racing a deprovision leave no binding bound
//! on a gone instance.

use std::sync::Arc;
use std::time::Duration;

use http::{Method, StatusCode};
use osb_sacloud::store::{Key, Store};
use serde_json::{Value, json};

use crate::support::binder::{mariadb_url, unique_name};
use crate::support::dedicated::{MARIADB_KIND, binding_path, session};
use crate::support::procs::{Cluster, all_at_once};
use crate::support::*;

const BROKERS: usize = 3;

fn unbind_path(id: &str, binding: &str) -> String {
    format!(
        "{}?service_id={MARIADB}&plan_id={MARIADB_10G}",
        binding_path(id, binding)
    )
}

async fn ready(c: &Cluster, id: &str, body: Value) {
    let path = format!("/v2/service_instances/{id}?accepts_incomplete=true");
    let r = c.call(Method::PUT, &path, Some(body)).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    let last = c.poll(id).await;
    assert_eq!(last["state"], "succeeded", "{last}");
}

/// The binding items stored for `id` (tombstones included until they expire): `sk` and state.
async fn stored_bindings(c: &Cluster, id: &str) -> Vec<(String, String)> {
    c.store()
        .query(&Key::instance_partition(id))
        .await
        .expect("store query")
        .into_iter()
        .filter(|i| i.key.sk.starts_with("binding#"))
        .map(|i| {
            let data: Value = serde_json::from_str(&i.data).expect("record is JSON");
            let state = data["state"].as_str().unwrap_or("?").to_owned();
            (i.key.sk, state)
        })
        .collect()
}

/// Send `n` identical binds at once; exactly one is 201, the rest 200, all with one set of
/// credentials, which are returned.
async fn identical_binds(c: &Arc<Cluster>, id: &str, binding: &str, body: Value) -> Value {
    let replies = all_at_once(20, |i| {
        let (c, path, body) = (c.clone(), binding_path(id, binding), body.clone());
        async move { c.call_on(i, Method::PUT, &path, Some(body)).await }
    })
    .await;
    let created = replies
        .iter()
        .filter(|r| r.status == StatusCode::CREATED)
        .count();
    for r in &replies {
        assert!(
            matches!(r.status.as_u16(), 200 | 201),
            "unexpected answer {}: {}",
            r.status,
            r.body
        );
        assert_eq!(
            r.body["credentials"], replies[0].body["credentials"],
            "one set of credentials"
        );
    }
    assert_eq!(created, 1, "one bind made the binding");
    let bindings = stored_bindings(c, id).await;
    assert_eq!(bindings.len(), 1, "one binding record: {bindings:?}");
    assert_eq!(bindings[0].1, "bound");
    replies[0].body["credentials"].clone()
}

#[cfg_attr(
    not(feature = "services"),
    ignore = "needs moto, the DynamoDB emulator: run scripts/test.sh"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identical_shared_binds_hand_out_one_set_of_credentials() {
    let c = Cluster::start("identicalbinds", BROKERS, |_| {}).await;
    let id = new_id("bind");
    ready(&c, &id, provision_body(MARIADB, MARIADB_10G)).await;
    let credentials = identical_binds(&c, &id, "b1", bind_body(MARIADB, MARIADB_10G)).await;
    assert!(
        credentials["password"]
            .as_str()
            .is_some_and(|p| !p.is_empty())
    );
}

/// Dedicated binds make a database user: racing processes must agree on one user and one
/// password, and that login must work on the real MariaDB server.
#[cfg_attr(
    not(feature = "services"),
    ignore = "needs moto and MariaDB on 127.0.0.1:3306: run scripts/test.sh"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identical_dedicated_binds_make_one_user_that_logs_in() {
    let mut sim = simulator_config();
    sim.mariadb_url = Some(mariadb_url());
    let c = Cluster::start_custom("dedicatedbinds", BROKERS, sim, |env| {
        env.insert("OSB_BINDING_MODE".into(), "dedicated".into());
    })
    .await;
    let outcome = {
        let c = c.clone();
        tokio::spawn(async move {
            let id = new_id("dedicated");
            let mut body = provision_body(MARIADB, MARIADB_10G);
            body["parameters"] = json!({
                "switchID": "112233445566", "ipaddress": "127.0.0.1", "maskLen": 8,
                "defaultRoute": "127.0.0.254", "port": MARIADB_KIND.server_port(),
                "username": unique_name(),
            });
            ready(&c, &id, body).await;
            let binding = format!("bd-{}", unique_name());
            let credentials =
                identical_binds(&c, &id, &binding, bind_body(MARIADB, MARIADB_10G)).await;
            let mut login = session(&credentials).await;
            assert_eq!(login.write("conc", "one").await.expect("write"), ["one"]);
        })
        .await
    };
    // Drop what the appliances left on the shared server, pass or fail.
    c.sim.reset().await;
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

#[cfg_attr(
    not(feature = "services"),
    ignore = "needs moto, the DynamoDB emulator: run scripts/test.sh"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unbinds_and_binds_racing_a_deprovision_leave_nothing_bound() {
    let c = Cluster::start("unbindvsdeprovision", BROKERS, |_| {}).await;
    let id = new_id("race");
    ready(&c, &id, provision_body(MARIADB, MARIADB_10G)).await;
    let bound: Vec<String> = (0..12).map(|i| format!("old-{i}")).collect();
    for (i, b) in bound.iter().enumerate() {
        let r = c
            .call_on(
                i,
                Method::PUT,
                &binding_path(&id, b),
                Some(bind_body(MARIADB, MARIADB_10G)),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    }

    // Twelve unbinds and twelve new binds, one every 15 ms, while the deprovision runs and a
    // crowd polls it along.
    let delete = format!(
        "/v2/service_instances/{id}?accepts_incomplete=true&service_id={MARIADB}&plan_id={MARIADB_10G}"
    );
    let replies = all_at_once(24 + 1 + 6, |i| {
        let (c, id, delete) = (c.clone(), id.clone(), delete.clone());
        async move {
            let pause = Duration::from_millis(15 * (i as u64 % 12));
            match i {
                0..12 => {
                    tokio::time::sleep(pause).await;
                    let path = unbind_path(&id, &format!("old-{i}"));
                    vec![("unbind", c.call_on(i, Method::DELETE, &path, None).await)]
                }
                12..24 => {
                    tokio::time::sleep(pause).await;
                    let path = binding_path(&id, &format!("new-{i}"));
                    let body = bind_body(MARIADB, MARIADB_10G);
                    vec![("bind", c.call_on(i, Method::PUT, &path, Some(body)).await)]
                }
                24 => vec![(
                    "deprovision",
                    c.call_on(i, Method::DELETE, &delete, None).await,
                )],
                _ => {
                    // Start once the deprovision is under way, then help it along.
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    let path = format!("/v2/service_instances/{id}/last_operation");
                    let mut polls = Vec::new();
                    for round in 0..1000 {
                        let r = c.call_on(i + round, Method::GET, &path, None).await;
                        let done = r.body["state"] != "in progress";
                        polls.push(("poll", r));
                        if done {
                            break;
                        }
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                    polls
                }
            }
        }
    })
    .await;
    for (what, r) in replies.iter().flatten() {
        let ok = match *what {
            "unbind" => matches!(r.status.as_u16(), 200 | 410),
            "bind" => {
                r.status == StatusCode::CREATED
                    || (r.status == StatusCode::UNPROCESSABLE_ENTITY
                        && r.body["error"] == "ConcurrencyError")
                    || r.status == StatusCode::NOT_FOUND
            }
            "deprovision" => r.status == StatusCode::ACCEPTED,
            _ => r.status == StatusCode::OK,
        };
        assert!(ok, "{what}: unexpected answer {}: {}", r.status, r.body);
    }
    let last = c.poll(&id).await;
    assert_eq!(last["state"], "succeeded", "{last}");
    assert!(c.sim.appliances().is_empty(), "the appliance is deleted");

    let (instance, _, expires) = c.raw_item(&Key::instance(&id)).await.expect("tombstone");
    assert_eq!(instance["state"], "gone");
    assert!(expires.is_some(), "the instance tombstone expires");
    let bindings = stored_bindings(&c, &id).await;
    let left: Vec<_> = bindings.iter().filter(|(_, s)| s != "gone").collect();
    assert!(
        left.is_empty(),
        "bindings left on a gone instance: {left:?}"
    );
    for b in &bound {
        let r = c.call(Method::GET, &binding_path(&id, b), None).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{b}: {}", r.body);
    }
}

/// More bindings than one atomic write holds: the deprovision still tombstones every one.
#[cfg_attr(
    not(feature = "services"),
    ignore = "needs moto, the DynamoDB emulator: run scripts/test.sh"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deprovision_tombstones_more_bindings_than_one_transaction_holds() {
    let c = Cluster::start("manybindings", BROKERS, |_| {}).await;
    let id = new_id("many");
    ready(&c, &id, provision_body(MARIADB, MARIADB_10G)).await;
    const N: usize = 120;
    for chunk in (0..N).collect::<Vec<_>>().chunks(12) {
        let replies = all_at_once(chunk.len(), |k| {
            let (c, path) = (c.clone(), binding_path(&id, &format!("b-{}", chunk[k])));
            async move {
                c.call_on(k, Method::PUT, &path, Some(bind_body(MARIADB, MARIADB_10G)))
                    .await
            }
        })
        .await;
        for r in replies {
            assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        }
    }
    let delete = format!(
        "/v2/service_instances/{id}?accepts_incomplete=true&service_id={MARIADB}&plan_id={MARIADB_10G}"
    );
    let r = c.call(Method::DELETE, &delete, None).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    let last = c.poll(&id).await;
    assert_eq!(last["state"], "succeeded", "{last}");
    let bindings = stored_bindings(&c, &id).await;
    assert_eq!(bindings.len(), N);
    let left: Vec<_> = bindings.iter().filter(|(_, s)| s != "gone").collect();
    assert!(
        left.is_empty(),
        "{} of {N} bindings left bound: {left:?}",
        left.len()
    );
}
