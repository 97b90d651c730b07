//! The state machine under SAKURA Cloud's faults and under crashes: ambiguous creates, 503/423
//! bursts, failed appliances, deadlines, settings-hash conflicts, and a broker killed mid-step.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::http::{Method, StatusCode};
use osb_sacloud::sacloud::simulator::{CREATED, DELETED, Faults, RouteFaults, Timings};
use serde_json::json;

use crate::support::*;

fn faults_everywhere(rate_503: f64, ambiguous_creates: u32) -> Faults {
    let mut routes = BTreeMap::new();
    routes.insert(
        "*".to_owned(),
        RouteFaults {
            rate_503,
            ..RouteFaults::default()
        },
    );
    Faults {
        routes,
        ambiguous_creates,
        ..Faults::default()
    }
}

#[tokio::test]
async fn an_ambiguous_create_is_adopted_not_repeated() {
    let mut cfg = simulator_config();
    cfg.faults = Faults {
        ambiguous_creates: 1,
        ..Faults::default()
    };
    let h = Harness::start_custom(cfg, |_| {}).await;
    let id = new_id("ambiguous");
    h.provision(&id, MARIADB, MARIADB_10G).await;
    let last = h.poll(&id).await;
    assert_eq!(last["state"], "succeeded", "{last}");
    assert_eq!(h.sim.count("POST /appliance"), 1, "one create call");
    assert_eq!(h.sim.count(CREATED), 1, "one appliance");
    assert_eq!(h.sim.appliances().len(), 1);
}

#[tokio::test]
async fn bursts_of_503_and_423_are_ridden_out_without_5xx() {
    let mut cfg = simulator_config();
    let mut routes = BTreeMap::new();
    routes.insert(
        "GET /appliance/{id}".to_owned(),
        RouteFaults {
            next_503: 12,
            next_423: 6,
            ..RouteFaults::default()
        },
    );
    routes.insert(
        "DELETE /appliance/{id}/power".to_owned(),
        RouteFaults {
            next_503: 8,
            ..RouteFaults::default()
        },
    );
    cfg.faults = Faults {
        routes,
        ..Faults::default()
    };
    let h = Harness::start_custom(cfg, |env| {
        env.insert("SAKURACLOUD_RETRY_MAX".into(), "2".into());
    })
    .await;
    let id = new_id("burst");
    h.provision(&id, POSTGRES, POSTGRES_10G).await;
    let mut saw_fault_note = false;
    for _ in 0..400 {
        let (status, _, body) = h
            .call(
                Method::GET,
                &format!("/v2/service_instances/{id}/last_operation"),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "a poll never answers 5xx: {body}");
        let description = body["description"].as_str().unwrap_or_default();
        saw_fault_note |= description.contains("did not answer");
        if body["state"] != "in progress" {
            assert_eq!(body["state"], "succeeded", "{body}");
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        saw_fault_note,
        "polls said what was happening during the burst"
    );
    let (status, _) = h.deprovision(&id, POSTGRES, POSTGRES_10G).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(h.poll(&id).await["state"], "succeeded");
    assert_eq!((h.sim.count(CREATED), h.sim.count(DELETED)), (1, 1));
}

#[tokio::test]
async fn a_failed_appliance_fails_the_provision_and_can_still_be_deprovisioned() {
    let mut cfg = simulator_config();
    cfg.faults = Faults {
        failed_creates: 1,
        ..Faults::default()
    };
    let h = Harness::start_custom(cfg, |_| {}).await;
    let id = new_id("failed");
    h.provision(&id, MARIADB, MARIADB_10G).await;
    let last = h.poll(&id).await;
    assert_eq!(last["state"], "failed", "{last}");
    let description = last["description"].as_str().unwrap();
    assert!(
        description.contains("failed") && description.contains("deprovision"),
        "{description}"
    );
    let (status, _, body) = h
        .call(
            Method::PUT,
            &format!("/v2/service_instances/{id}/service_bindings/b"),
            Some(bind_body(MARIADB, MARIADB_10G)),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (status, body) = h.deprovision(&id, MARIADB, MARIADB_10G).await;
    assert!(
        status == StatusCode::ACCEPTED || status == StatusCode::OK,
        "{status} {body}"
    );
    assert_eq!(h.poll(&id).await["state"], "succeeded");
    assert!(
        h.sim.appliances().is_empty(),
        "the failed appliance was removed"
    );
}

#[tokio::test]
async fn an_operation_past_its_deadline_ends_failed_with_a_description() {
    let mut cfg = simulator_config();
    cfg.timings = Timings {
        migrating: Duration::from_secs(600),
        ..fast_timings()
    };
    let h = Harness::start_custom(cfg, |env| {
        env.insert("OSB_PROVISION_TIMEOUT_SECS".into(), "1".into());
    })
    .await;
    let id = new_id("deadline");
    h.provision(&id, MARIADB, MARIADB_10G).await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let (status, _, last) = h
        .call(
            Method::GET,
            &format!("/v2/service_instances/{id}/last_operation"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(last["state"], "failed", "{last}");
    let description = last["description"].as_str().unwrap();
    assert!(
        description.contains("did not finish") && description.contains("become available"),
        "{description}"
    );
    let (status, _) = h.deprovision(&id, MARIADB, MARIADB_10G).await;
    assert_eq!(
        status,
        StatusCode::ACCEPTED,
        "a failed instance can be deprovisioned"
    );
}

/// A broker dies after claiming the create (the request is cut off mid-flight); a fresh broker
/// on the same store takes the claim over once the lease has passed and converges on exactly
/// one appliance.
#[tokio::test]
async fn a_broker_killed_mid_create_is_taken_over_by_a_fresh_one() {
    let mut cfg = simulator_config();
    let mut routes = BTreeMap::new();
    routes.insert(
        "POST /appliance".to_owned(),
        RouteFaults {
            latency_ms: 300,
            ..RouteFaults::default()
        },
    );
    cfg.faults = Faults {
        routes,
        ..Faults::default()
    };
    let lease = |env: &mut std::collections::HashMap<String, String>| {
        env.insert("OSB_CLAIM_LEASE_SECS".into(), "1".into());
    };
    let mut h = Harness::start_custom(cfg, lease).await;
    let id = new_id("killed");
    // The broker to kill runs on a runtime of its own, so that killing it ends every task it
    // started (a step runs on a task of its own), as a process exit would.
    let mut env = broker_env(&h.sim);
    lease(&mut env);
    let (store, path) = (
        h.store.clone(),
        format!("/v2/service_instances/{id}?accepts_incomplete=true"),
    );
    let doomed = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            let app = osb_sacloud::app::build_with_store(&config_from(&env), store)
                .await
                .expect("broker builds");
            let req = axum::http::Request::builder()
                .method(Method::PUT)
                .uri(path)
                .header("X-Broker-API-Version", "2.17")
                .header("Authorization", basic(USER, PASSWORD));
            let put = send(
                &app.router,
                with_body(req, Some(provision_body(MARIADB, MARIADB_10G))),
            );
            // Killed between "create claimed" and "appliance id recorded".
            let _ = tokio::time::timeout(Duration::from_millis(100), put).await;
        });
        rt.shutdown_background();
    });
    tokio::task::spawn_blocking(move || doomed.join().expect("the doomed broker"))
        .await
        .expect("join");
    h.restart_broker(lease).await;
    let (status, _, body) = h
        .call(
            Method::GET,
            &format!("/v2/service_instances/{id}/last_operation"),
            None,
        )
        .await;
    assert_eq!(
        (status, body["state"].as_str()),
        (StatusCode::OK, Some("in progress")),
        "{body}"
    );
    let last = h.poll(&id).await;
    assert_eq!(last["state"], "succeeded", "{last}");
    assert_eq!(
        h.sim.count(CREATED),
        1,
        "exactly one appliance: {:?}",
        h.sim.counters()
    );
    h.restart_broker(lease).await;
    let (status, _) = h.deprovision(&id, MARIADB, MARIADB_10G).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(h.poll(&id).await["state"], "succeeded");
    assert!(h.sim.appliances().is_empty());
}

/// Every poll may land on a different broker process (a fresh one per request here).
#[tokio::test]
async fn each_step_can_run_on_a_different_broker() {
    let mut h = Harness::start().await;
    let id = new_id("hop");
    h.provision(&id, POSTGRES, POSTGRES_10G).await;
    for _ in 0..200 {
        h.restart_broker(|_| {}).await;
        let (_, _, body) = h
            .call(
                Method::GET,
                &format!("/v2/service_instances/{id}/last_operation"),
                None,
            )
            .await;
        if body["state"] != "in progress" {
            assert_eq!(body["state"], "succeeded");
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    h.restart_broker(|_| {}).await;
    let (status, _, _) = h
        .call(Method::GET, &format!("/v2/service_instances/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::OK);
}

/// Someone changes the appliance's settings between the broker's read and its write: SAKURA
/// answers 409 for the stale SettingsHash, and the next poll re-reads and applies again.
#[tokio::test]
async fn a_settings_hash_conflict_is_reread_and_retried() {
    let h = Harness::start().await;
    let id = new_id("hash");
    h.ready_instance(&id, MARIADB, MARIADB_10G).await;
    let mut routes = BTreeMap::new();
    routes.insert(
        "PUT /appliance/{id}".to_owned(),
        RouteFaults {
            latency_ms: 300,
            ..RouteFaults::default()
        },
    );
    h.sim.set_faults(Faults {
        routes,
        ..Faults::default()
    });
    let router = h.app.router.clone();
    let path = format!("/v2/service_instances/{id}?accepts_incomplete=true");
    let patch = tokio::spawn(async move {
        let req = axum::http::Request::builder()
            .method(Method::PATCH)
            .uri(path)
            .header("X-Broker-API-Version", "2.17")
            .header("Authorization", basic(USER, PASSWORD));
        send(
            &router,
            with_body(
                req,
                Some(json!({"service_id": MARIADB, "parameters": {"port": 3307}})),
            ),
        )
        .await
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    h.sim.set_faults(Faults::default());
    // A concurrent change made with the real client, straight to the simulator.
    let appliance = h.sim.appliances()[0].id;
    let db = h.app.sakura.read("is1a", appliance).await.unwrap();
    let settings = db
        .settings_doc
        .with_change(&osb_sacloud::sacloud::SettingsChange {
            backup: Some(osb_sacloud::sacloud::Backup {
                rotate: 3,
                time: "01:00".into(),
                day_of_week: vec!["sun".into()],
            }),
            ..Default::default()
        });
    h.app
        .sakura
        .update_settings("is1a", appliance, &settings, db.settings_hash.as_deref())
        .await
        .unwrap();
    let (status, _, body) = patch.await.unwrap();
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let last = h.poll(&id).await;
    assert_eq!(last["state"], "succeeded", "{last}");
    assert!(
        h.sim.count("PUT /appliance/{id}") >= 3,
        "the stale write was retried: {:?}",
        h.sim.counters()
    );
    let db = h.app.sakura.read("is1a", appliance).await.unwrap();
    assert_eq!(db.settings.port, Some(3307));
    assert_eq!(
        db.settings.backup.map(|b| b.rotate),
        Some(3),
        "the other change was kept"
    );
}

/// The bar: 20% 503 on every route and one ambiguous create; 20 instances provisioned
/// and deprovisioned through the API all succeed with exactly 20 creates and 20 deletes, and no
/// answer is ever a 5xx.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_instances_under_twenty_percent_503_and_an_ambiguous_create() {
    let mut cfg = simulator_config();
    cfg.faults = faults_everywhere(0.2, 1);
    cfg.seed = 20;
    let h = Harness::start_custom(cfg, |_| {}).await;
    let ids: Vec<String> = (0..20).map(|i| new_id(&format!("twenty{i}"))).collect();
    let mut non_5xx = 0;
    for id in &ids {
        let (status, _, body) = h
            .call(
                Method::PUT,
                &format!("/v2/service_instances/{id}?accepts_incomplete=true"),
                Some(provision_body(MARIADB, MARIADB_10G)),
            )
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        non_5xx += 1;
    }
    for id in &ids {
        assert_eq!(h.poll(id).await["state"], "succeeded", "{id}");
    }
    for id in &ids {
        let (status, body) = h.deprovision(id, MARIADB, MARIADB_10G).await;
        assert!(
            status == StatusCode::ACCEPTED || status == StatusCode::OK,
            "{status} {body}"
        );
        non_5xx += 1;
    }
    for id in &ids {
        assert_eq!(h.poll(id).await["state"], "succeeded", "{id}");
    }
    let counters = h.sim.counters();
    eprintln!("SAKURA calls for 20 lifecycles under faults: {counters:?}");
    assert_eq!(h.sim.count(CREATED), 20, "{counters:?}");
    assert_eq!(h.sim.count(DELETED), 20, "{counters:?}");
    assert!(h.sim.appliances().is_empty());
    assert_eq!(non_5xx, 40);
}
