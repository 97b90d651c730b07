//! The 2018 broker's instances after a platform switches its broker URL to osb-sacloud: an
//! appliance named exactly the instance id and tagged `@open-service-broker-sacloud`, with no
//! record, is adopted with `OSB_ADOPT_LEGACY=1` (and by `osb-sacloud adopt`), and left alone
//! without it.

use std::process::{Command, Stdio};
use std::sync::Arc;

use axum::http::{Method, StatusCode};
use osb_sacloud::sacloud::Database;
use osb_sacloud::store::Key;
use osb_sacloud::store::file::FileStore;
use serde_json::Value;

use crate::support::*;

const LEGACY_TAG: &str = "@open-service-broker-sacloud";

/// An appliance as the 2018 broker made it: named by the raw instance id, its one tag, no
/// description; then wait until it runs.
async fn legacy_appliance(h: &Harness, instance_id: &str, tags: &[&str]) -> Database {
    let mut req = crate::support::sacloud::create_request(instance_id);
    req.description = String::new();
    req.tags = tags.iter().map(|t| t.to_string()).collect();
    req.plan_id = 30;
    req.settings.default_user = "legacyuser".into();
    let created = h.app.sakura.create("is1a", &req).await.expect("created");
    // Long up, as the 2018 broker's appliances are: past the windows of a fresh appliance.
    let sakura = &h.app.sakura;
    crate::support::sacloud::wait_for("the appliance running", || async {
        let db = sakura.read("is1a", created.id).await.ok()?;
        let status = sakura.status("is1a", created.id).await.ok()?;
        (db.instance_status.as_deref() == Some("up") && status.db_running).then_some(())
    })
    .await;
    let t = h.sim.timings();
    tokio::time::sleep(t.ignore_power_after_boot.max(t.ignore_updates_after_boot)).await;
    sakura.read("is1a", created.id).await.expect("readable")
}

fn adopting() -> impl FnOnce(&mut std::collections::HashMap<String, String>) {
    |env| {
        env.insert("OSB_ADOPT_LEGACY".into(), "1".into());
    }
}

/// The MariaDB 30 GB plan: the plan of the appliance above.
const MARIADB_30G: &str = "d4591cca-6361-4957-bfad-3f5e84ef2215";

async fn last_operation(h: &Harness, id: &str) -> (StatusCode, Value) {
    let (status, _, body) = h
        .call(
            Method::GET,
            &format!("/v2/service_instances/{id}/last_operation"),
            None,
        )
        .await;
    (status, body)
}

#[tokio::test]
async fn a_2018_appliance_is_adopted_and_lives_out_its_life_with_the_setting() {
    let h = Harness::start_with(adopting()).await;
    let id = uuid_like("legacy");
    let db = legacy_appliance(&h, &id, &[LEGACY_TAG, "team=blue"]).await;

    // The platform polls the instance the 2018 broker made: adopted, succeeded.
    let (status, last) = last_operation(&h, &id).await;
    assert_eq!(status, StatusCode::OK, "{last}");
    assert_eq!(last["state"], "succeeded", "{last}");
    let item = h
        .store
        .get(&Key::instance(&id))
        .await
        .unwrap()
        .expect("record written");
    let record: Value = serde_json::from_str(&item.data).unwrap();
    assert_eq!(record["legacy"], true);
    assert_eq!(record["appliance_id"], db.id);
    assert_eq!(
        record["appliance_name"],
        id.as_str(),
        "the 2018 name is kept"
    );
    assert_eq!(record["service_id"], MARIADB);
    assert_eq!(record["plan_id"], MARIADB_30G);
    assert_eq!(record["params"]["ipaddress"], "192.168.0.11");
    assert_eq!(record["params"]["username"], "legacyuser");

    // Tags and description added, the appliance's own tags kept.
    let labelled = h.app.sakura.read("is1a", db.id).await.unwrap();
    assert_eq!(labelled.name, id, "not renamed");
    for tag in ["@osb-sacloud", LEGACY_TAG, "team=blue"] {
        assert!(
            labelled.tags.iter().any(|t| t == tag),
            "{tag}: {:?}",
            labelled.tags
        );
    }
    assert_eq!(
        labelled.description.lines().next(),
        Some(format!("osb-sacloud service instance {id}").as_str())
    );

    // Bind and unbind through the adopted record; a binding the 2018 broker made unbinds too.
    let binding = format!("/v2/service_instances/{id}/service_bindings/b1");
    let (status, _, bound) = h
        .call(Method::PUT, &binding, Some(bind_body(MARIADB, MARIADB_30G)))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{bound}");
    assert_eq!(bound["credentials"]["host"], "192.168.0.11", "{bound}");
    assert_eq!(bound["credentials"]["username"], "legacyuser", "{bound}");
    for b in ["b1", "made-by-2018"] {
        let (status, _, body) = h
            .call(
                Method::DELETE,
                &format!("/v2/service_instances/{id}/service_bindings/{b}?service_id={MARIADB}&plan_id={MARIADB_30G}"),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{b}: {body}");
    }

    // Deprovision deletes the appliance.
    let (status, body) = h.deprovision(&id, MARIADB, MARIADB_30G).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let last = h.poll(&id).await;
    assert_eq!(last["state"], "succeeded", "{last}");
    assert!(h.sim.appliances().is_empty(), "appliance deleted");
    // The tombstone is a record: the id is never adopted again.
    let (status, _) = last_operation(&h, &id).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn a_deprovision_is_the_first_request_for_a_2018_instance() {
    let h = Harness::start_with(adopting()).await;
    let id = uuid_like("legacy-delete");
    legacy_appliance(&h, &id, &[LEGACY_TAG]).await;
    let (status, body) = h.deprovision(&id, MARIADB, MARIADB_30G).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(h.poll(&id).await["state"], "succeeded");
    assert!(h.sim.appliances().is_empty());
}

#[tokio::test]
async fn without_the_setting_or_the_2018_tag_nothing_is_adopted() {
    // Without OSB_ADOPT_LEGACY: unknown, as before, and the appliance untouched.
    let h = Harness::start().await;
    let id = uuid_like("not-adopted");
    let db = legacy_appliance(&h, &id, &[LEGACY_TAG]).await;
    let (status, _) = last_operation(&h, &id).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = h.deprovision(&id, MARIADB, MARIADB_30G).await;
    assert_eq!(status, StatusCode::GONE);
    let after = h.app.sakura.read("is1a", db.id).await.unwrap();
    assert_eq!(after.tags, [LEGACY_TAG]);
    assert!(after.description.is_empty());
    assert!(h.store.get(&Key::instance(&id)).await.unwrap().is_none());

    // With it, an appliance of that name without the 2018 tag is not the 2018 broker's.
    let h = Harness::start_with(adopting()).await;
    let id = uuid_like("untagged");
    legacy_appliance(&h, &id, &["someone-else"]).await;
    let (status, _) = last_operation(&h, &id).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = h.deprovision(&id, MARIADB, MARIADB_30G).await;
    assert_eq!(status, StatusCode::GONE);
    assert_eq!(h.sim.appliances().len(), 1, "left alone");
}

#[tokio::test]
async fn the_adopt_command_adopts_one_appliance_by_hand() {
    let h = Harness::start().await;
    let id = uuid_like("by-hand");
    let db = legacy_appliance(&h, &id, &[LEGACY_TAG]).await;
    let dir = tempfile::tempdir().unwrap();
    // The simulator runs on this test's runtime: the command is waited for off it.
    let run = |instance: &str| {
        let mut env = broker_env(&h.sim);
        env.insert("OSB_DATA_DIR".into(), dir.path().display().to_string());
        let instance = instance.to_owned();
        tokio::task::spawn_blocking(move || {
            Command::new(env!("CARGO_BIN_EXE_osb-sacloud"))
                .args(["adopt", &instance, "--zone", "is1a"])
                .env_clear()
                .envs(&env)
                .stdin(Stdio::null())
                .output()
                .expect("runs")
        })
    };
    let out = run(&id).await.unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: Value = serde_json::from_slice(&out.stdout).expect("JSON summary");
    assert_eq!(summary["outcome"], "adopted", "{summary}");
    assert_eq!(summary["appliance_id"], db.id);
    // Again: already known, nothing changed.
    let again: Value = serde_json::from_slice(&run(&id).await.unwrap().stdout).unwrap();
    assert_eq!(again["outcome"], "already known", "{again}");
    // No such appliance: a failure that says so.
    let out = run("no-such-instance").await.unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no appliance named"));

    // A broker on that store (without OSB_ADOPT_LEGACY) serves the instance.
    let store = Arc::new(FileStore::open(&dir.path().join("osb-sacloud.redb")).unwrap());
    let env = broker_env(&h.sim);
    let app = osb_sacloud::app::build_with_store(&config_from(&env), store)
        .await
        .unwrap();
    let req = with_body(
        axum::http::Request::builder()
            .method(Method::GET)
            .uri(format!("/v2/service_instances/{id}/last_operation"))
            .header("X-Broker-API-Version", "2.17")
            .header("Authorization", basic(USER, PASSWORD)),
        None,
    );
    let (status, _, last) = send(&app.router, req).await;
    assert_eq!(status, StatusCode::OK, "{last}");
    assert_eq!(last["state"], "succeeded");
    let labelled = h.app.sakura.read("is1a", db.id).await.unwrap();
    assert!(
        labelled.tags.iter().any(|t| t == "@osb-sacloud"),
        "{:?}",
        labelled.tags
    );
}

/// A GUID-shaped id, as platforms send, unique to the test run.
fn uuid_like(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let tag = prefix
        .bytes()
        .fold(0u16, |h, b| h.wrapping_mul(31).wrapping_add(u16::from(b)));
    format!(
        "{:08x}-{tag:04x}-4000-8000-{:012x}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}
