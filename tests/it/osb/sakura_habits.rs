//! The broker against SAKURA Cloud's habits that SAKURA's own clients defend against, each
//! switched on in the simulator with windows long enough that every request meets them: 404s
//! after a create, power calls and settings updates accepted and ignored after a boot, an
//! engine that starts after the appliance is up, settings replaced wholesale, creates answered
//! 5xx, and an appliance that carries an instance's name but belongs to another.

use std::time::Duration;

use axum::http::{Method, StatusCode};
use osb_sacloud::sacloud::simulator::{Faults, RouteFaults, SimulatorConfig, Timings};
use serde_json::{Value, json};

use crate::support::*;

/// Every habit on, with windows much longer than a poll.
fn awkward() -> Timings {
    Timings {
        migrating: Duration::from_millis(150),
        boot: Duration::from_millis(150),
        cleaning: Duration::from_millis(60),
        not_found_after_create: Duration::from_millis(400),
        ignore_power_after_boot: Duration::from_millis(400),
        ignore_updates_after_boot: Duration::from_millis(400),
        engine_start: Duration::from_millis(200),
    }
}

fn config(timings: Timings) -> SimulatorConfig {
    let mut cfg = simulator_config();
    cfg.timings = timings;
    cfg
}

async fn harness(timings: Timings) -> Harness {
    Harness::start_custom(config(timings), |_| {}).await
}

fn last_op_path(id: &str) -> String {
    format!("/v2/service_instances/{id}/last_operation")
}

/// Poll until the operation ends, failing the test if any poll saw `failed` on the way.
async fn poll_to_end(h: &Harness, id: &str) -> Value {
    let last = h.poll(id).await;
    assert_ne!(last["state"], "failed", "{last}");
    last
}

#[tokio::test]
async fn a_provision_rides_out_the_404_window_and_ends_only_once_the_engine_runs() {
    let h = harness(awkward()).await;
    let id = new_id("habit-404");
    h.provision(&id, MARIADB, MARIADB_10G).await;
    let mut saw_not_visible = false;
    loop {
        let (status, _, body) = h.call(Method::GET, &last_op_path(&id), None).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let description = body["description"].as_str().unwrap_or_default();
        saw_not_visible |= description.contains("does not show it yet");
        match body["state"].as_str() {
            Some("in progress") => tokio::time::sleep(Duration::from_millis(20)).await,
            Some("succeeded") => break,
            _ => panic!("provision ended {body}"),
        }
    }
    assert!(saw_not_visible, "the 404 window was met");
    // Ready means the engine runs: a bind right away works.
    let summary = h.sim.appliances().pop().expect("one appliance");
    let client = osb_sacloud::sacloud::Client::new(sim_client_config(&h)).unwrap();
    let status = client.status("is1a", summary.id).await.expect("status");
    assert!(status.db_running, "{status:?}");
    assert!(
        h.sim.count("configs applied") + h.sim.count("updates ignored") >= 1,
        "config was applied after boot: {:?}",
        h.sim.counters()
    );
    let (status, _, body) = h
        .call(
            Method::PUT,
            &format!("/v2/service_instances/{id}/service_bindings/b1?accepts_incomplete=true"),
            Some(bind_body(MARIADB, MARIADB_10G)),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

fn sim_client_config(h: &Harness) -> osb_sacloud::sacloud::ClientConfig {
    let mut cfg = osb_sacloud::sacloud::ClientConfig::new(
        h.sim.root_url(),
        osb_sacloud::secret::Secret::new(TOKEN),
        osb_sacloud::secret::Secret::new(TOKEN_SECRET),
    );
    cfg.rate_limit_per_sec = 0.0;
    cfg
}

#[tokio::test]
async fn a_delete_right_after_the_put_leaves_no_appliance() {
    let h = harness(awkward()).await;
    let id = new_id("habit-orphan");
    h.provision(&id, MARIADB, MARIADB_10G).await;
    // Cloud Foundry's orphan mitigation: DELETE while the appliance still answers 404.
    let (status, body) = h.deprovision(&id, MARIADB, MARIADB_10G).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let last = poll_to_end(&h, &id).await;
    assert_eq!(last["state"], "succeeded", "{last}");
    assert!(h.sim.appliances().is_empty(), "{:?}", h.sim.appliances());
    assert_eq!(h.sim.count(osb_sacloud::sacloud::simulator::CREATED), 1);
    assert_eq!(h.sim.count(osb_sacloud::sacloud::simulator::DELETED), 1);
}

#[tokio::test]
async fn an_ignored_shutdown_is_sent_again_and_the_deprovision_ends() {
    let mut t = awkward();
    t.not_found_after_create = Duration::ZERO;
    t.engine_start = Duration::ZERO;
    t.ignore_power_after_boot = Duration::from_millis(300);
    let h = harness(t).await;
    let id = new_id("habit-power");
    h.ready_instance(&id, MARIADB, MARIADB_10G).await;
    let (status, body) = h.deprovision(&id, MARIADB, MARIADB_10G).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let last = poll_to_end(&h, &id).await;
    assert_eq!(last["state"], "succeeded", "{last}");
    assert!(
        h.sim.count("power calls ignored") >= 1,
        "{:?}",
        h.sim.counters()
    );
    assert!(
        h.sim.count("DELETE /appliance/{id}/power") >= 2,
        "{:?}",
        h.sim.counters()
    );
    assert!(h.sim.appliances().is_empty());
}

#[tokio::test]
async fn a_patch_right_after_provisioning_ends_with_the_appliance_holding_it() {
    let mut t = awkward();
    t.not_found_after_create = Duration::ZERO;
    t.engine_start = Duration::ZERO;
    t.ignore_updates_after_boot = Duration::from_millis(500);
    let h = harness(t).await;
    let id = new_id("habit-update");
    h.ready_instance(&id, MARIADB, MARIADB_10G).await;
    let (status, _, body) = h
        .call(
            Method::PATCH,
            &format!("/v2/service_instances/{id}?accepts_incomplete=true"),
            Some(json!({"service_id": MARIADB, "parameters": {"port": 3307, "allowNetworks": ["10.0.0.0/8"]}})),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let last = poll_to_end(&h, &id).await;
    assert_eq!(last["state"], "succeeded", "{last}");
    assert!(
        h.sim.count("updates ignored") >= 1,
        "{:?}",
        h.sim.counters()
    );
    let summary = h.sim.appliances().pop().expect("appliance");
    let client = osb_sacloud::sacloud::Client::new(sim_client_config(&h)).unwrap();
    let db = client.read("is1a", summary.id).await.expect("read");
    assert_eq!(db.settings.port, Some(3307));
    assert_eq!(db.settings.source_networks, vec!["10.0.0.0/8".to_owned()]);
    // The update sent back the whole settings object it read, hash included.
    let put = h
        .sim
        .requests()
        .into_iter()
        .rfind(|r| r.route == "PUT /appliance/{id}")
        .expect("a settings update");
    let sent: Value = serde_json::from_str(&put.body).unwrap();
    let common = &sent["Appliance"]["Settings"]["DBConf"]["Common"];
    assert!(
        common.get("WebUI").is_some(),
        "members it did not change go back: {sent}"
    );
    assert!(sent["Appliance"]["SettingsHash"].is_string(), "{sent}");
    // What GET instance shows matches what the appliance holds.
    let (_, _, got) = h
        .call(Method::GET, &format!("/v2/service_instances/{id}"), None)
        .await;
    assert_eq!(got["parameters"]["port"], 3307, "{got}");
}

#[tokio::test]
async fn a_create_answered_503_is_retried_a_bounded_number_of_times_then_fails() {
    let mut cfg = config(awkward());
    let mut faults = Faults::default();
    faults.routes.insert(
        "POST /appliance".into(),
        RouteFaults {
            rate_503: 1.0,
            ..RouteFaults::default()
        },
    );
    cfg.faults = faults;
    let h = Harness::start_custom(cfg, |env| {
        env.insert("OSB_CREATE_ATTEMPTS".into(), "3".into());
    })
    .await;
    let id = new_id("habit-503");
    h.provision(&id, MARIADB, MARIADB_10G).await;
    let last = h.poll(&id).await;
    assert_eq!(last["state"], "failed", "{last}");
    let description = last["description"].as_str().unwrap();
    assert!(
        description.contains("3 attempts") && description.contains("503"),
        "{description}"
    );
    assert_eq!(h.sim.count("POST /appliance"), 3);
    assert_eq!(h.sim.count(osb_sacloud::sacloud::simulator::CREATED), 0);
    // Deprovisioning the failed instance finds nothing and ends.
    let (status, _) = h.deprovision(&id, MARIADB, MARIADB_10G).await;
    assert!(status == StatusCode::OK || status == StatusCode::ACCEPTED);
}

#[tokio::test]
async fn an_appliance_of_another_instance_is_never_adopted_nor_deleted() {
    let h = harness(fast_timings()).await;
    // Someone's appliance already carries the name this instance id maps to.
    let client = osb_sacloud::sacloud::Client::new(sim_client_config(&h)).unwrap();
    let mut request = crate::support::sacloud::create_request("osb-victim");
    request.description = "osb-sacloud service instance someone-else".into();
    let theirs = client.create("is1a", &request).await.expect("create");
    let (status, _, body) = h
        .call(
            Method::PUT,
            "/v2/service_instances/victim?accepts_incomplete=true",
            Some(provision_body(MARIADB, MARIADB_10G)),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let last = h.poll("victim").await;
    assert_eq!(last["state"], "failed", "{last}");
    assert!(
        last["description"]
            .as_str()
            .unwrap()
            .contains("does not belong"),
        "{last}"
    );
    let (status, _) = h.deprovision("victim", MARIADB, MARIADB_10G).await;
    assert!(status.is_success(), "{status}");
    h.poll("victim").await;
    assert!(
        h.sim.appliances().iter().any(|a| a.id == theirs.id),
        "the other instance's appliance is untouched"
    );
    assert_eq!(h.sim.count(osb_sacloud::sacloud::simulator::DELETED), 0);
}

#[tokio::test]
async fn a_crafted_instance_id_cannot_reach_another_instances_appliance() {
    use sha2::Digest;
    let h = harness(fast_timings()).await;
    h.ready_instance("tenant-a.db", MARIADB, MARIADB_10G).await;
    let hex: String = sha2::Sha256::digest(b"tenant-a.db")
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let crafted = format!("h{}", &hex[..40]);
    let mut body = provision_body(MARIADB, MARIADB_10G);
    body["parameters"]["ipaddress"] = json!("192.168.0.12");
    let (status, _, answer) = h
        .call(
            Method::PUT,
            &format!("/v2/service_instances/{crafted}?accepts_incomplete=true"),
            Some(body),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    let last = h.poll(&crafted).await;
    assert_eq!(last["state"], "succeeded", "{last}");
    assert_eq!(
        h.sim.appliances().len(),
        2,
        "each instance has its own appliance"
    );
    let bind = |id: String| {
        let h = &h;
        async move {
            let (status, _, body) = h
                .call(
                    Method::PUT,
                    &format!(
                        "/v2/service_instances/{id}/service_bindings/b?accepts_incomplete=true"
                    ),
                    Some(bind_body(MARIADB, MARIADB_10G)),
                )
                .await;
            assert_eq!(status, StatusCode::CREATED, "{body}");
            body["credentials"]["password"].as_str().unwrap().to_owned()
        }
    };
    assert_ne!(
        bind("tenant-a.db".into()).await,
        bind(crafted.clone()).await
    );
    let (status, _) = h.deprovision(&crafted, MARIADB, MARIADB_10G).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(h.poll(&crafted).await["state"], "succeeded");
    assert_eq!(
        h.sim.appliances().len(),
        1,
        "tenant-a.db's appliance is still there"
    );
}

#[tokio::test]
async fn database_versions_are_the_ones_sakura_offers() {
    let h = harness(fast_timings()).await;
    for (service, plan, version, ok) in [
        (MARIADB, MARIADB_10G, "10.11", true),
        (POSTGRES, POSTGRES_10G, "13", true),
        (POSTGRES, POSTGRES_10G, "15", false),
        (MARIADB, MARIADB_10G, "11.4", false),
    ] {
        let mut body = provision_body(service, plan);
        body["parameters"]["databaseVersion"] = json!(version);
        let id = new_id("habit-version");
        let (status, _, answer) = h
            .call(
                Method::PUT,
                &format!("/v2/service_instances/{id}?accepts_incomplete=true"),
                Some(body),
            )
            .await;
        if ok {
            assert_eq!(status, StatusCode::ACCEPTED, "{version}: {answer}");
        } else {
            assert_eq!(status, StatusCode::BAD_REQUEST, "{version}: {answer}");
            assert!(
                answer["description"]
                    .as_str()
                    .unwrap()
                    .contains("databaseVersion"),
                "{answer}"
            );
        }
    }
}
