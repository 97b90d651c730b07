//! The SAKURA Cloud client against the simulator on loopback: request shapes as the server saw
//! them, the whole appliance lifecycle, conflicts and settings updates.

use std::time::Duration;

use osb_sacloud::sacloud::simulator::{Faults, POWER_IGNORED, Timings};
use osb_sacloud::sacloud::{DatabaseSettings, Engine, Error, SettingsChange, SettingsDoc};
use osb_sacloud::secret::Secret;
use serde_json::json;

use crate::support::sacloud::*;

#[tokio::test]
async fn create_sends_the_documented_body_and_headers() {
    let sim = start_sim(fast_timings()).await;
    let client = client_for(&sim);
    let db = client
        .create(ZONE, &create_request("osb-shape"))
        .await
        .unwrap();

    let sent = sim.last_create().expect("a create was recorded");
    let body = sent.json().expect("JSON body");
    let a = &body["Appliance"];
    assert_eq!(a["Class"], "database");
    assert_eq!(
        a["Remark"]["Switch"]["ID"], "112233445566",
        "Switch.ID is a string"
    );
    assert_eq!(a["Remark"]["Plan"]["ID"], 10);
    assert!(a.get("Plan").is_none(), "no top-level Plan");
    assert_eq!(a["Remark"]["Servers"][0]["IPAddress"], "192.168.0.11");
    assert_eq!(a["Remark"]["Network"]["NetworkMaskLen"], 24);
    assert_eq!(a["Remark"]["DBConf"]["Common"]["DatabaseName"], "MariaDB");
    assert!(
        a["Remark"]["DBConf"]["Common"]
            .get("DatabaseVersion")
            .is_none()
    );
    let common = &a["Settings"]["DBConf"]["Common"];
    assert_eq!(common["ServicePort"], 3306);
    assert_eq!(common["SourceNetwork"][0], "192.168.0.0/24");
    assert_eq!(common["UserPassword"], "first-Pa55word");
    assert_eq!(a["Settings"]["DBConf"]["Backup"]["Rotate"], 3);

    assert_eq!(sent.header("x-sakura-bigint-as-int"), Some("1"));
    assert_eq!(
        sent.header("user-agent"),
        Some(concat!("osb-sacloud/", env!("CARGO_PKG_VERSION")))
    );
    assert_eq!(sent.header("content-type"), Some("application/json"));
    assert!(sent.basic_auth_ok);
    assert!(!format!("{sent:?}").contains("first-Pa55word"));

    assert_eq!(db.name, "osb-shape");
    assert_eq!(db.availability, "migrating");
    assert_eq!(db.instance_status, None);
    assert_eq!(db.engine, Some(Engine::MariaDb));
    assert_eq!(db.switch_id, Some(112_233_445_566));
    assert_eq!(db.ip_address.as_deref(), Some("192.168.0.11"));
    assert_eq!(db.network_mask_len, Some(24));
    assert_eq!(db.default_route.as_deref(), Some("192.168.0.1"));
    assert_eq!(db.settings.port, Some(3306));
    assert_eq!(db.settings.user_password.expose(), "first-Pa55word");
    assert!(!format!("{db:?}").contains("first-Pa55word"));
}

#[tokio::test]
async fn full_lifecycle_from_create_to_404() {
    // Cleaning lasts long enough that the read right after the shutdown sees it.
    let sim = start_sim(Timings {
        cleaning: Duration::from_millis(500),
        ..fast_timings()
    })
    .await;
    let client = client_for(&sim);

    assert!(
        client
            .find_by_exact_name(ZONE, "osb-life")
            .await
            .unwrap()
            .is_empty()
    );
    let id = client
        .create(ZONE, &create_request("osb-life"))
        .await
        .unwrap()
        .id;
    // Calls by id answer 404 for a moment after the create: wait_read waits that out.
    wait_for("available", || async {
        let db = wait_read(&client, id).await;
        (db.availability == "available").then_some(())
    })
    .await;
    wait_instance(&client, id, "up").await;
    let status = client.status(ZONE, id).await.unwrap();
    assert_eq!(status.status.as_deref(), Some("up"));
    // Up is not ready: the engine runs a little later, and a fresh appliance ignores power
    // calls for a while. wait_settled waits for both.
    wait_settled(&sim, &client, id).await;
    let status = client.status(ZONE, id).await.unwrap();
    assert!(status.db_running);
    assert_eq!(status.engine_status.as_deref(), Some("running"));

    client.shutdown(ZONE, id, true).await.unwrap();
    let db = client.read(ZONE, id).await.unwrap();
    assert_eq!(db.instance_status.as_deref(), Some("cleaning"));
    wait_instance(&client, id, "down").await;
    let status = client.status(ZONE, id).await.unwrap();
    assert_eq!(status.status.as_deref(), Some("down"));
    assert!(!status.db_running);
    assert_eq!(status.engine_status.as_deref(), Some("stopped"));

    client.delete(ZONE, id).await.unwrap();
    let err = client.read(ZONE, id).await.unwrap_err();
    assert!(err.is_not_found(), "{err}");
    assert!(
        matches!(&err, Error::Api { code, serial, .. } if code == "not_found" && !serial.is_empty())
    );
    assert!(client.delete(ZONE, id).await.unwrap_err().is_not_found());

    let counters = sim.counters();
    assert_eq!(counters["GET /appliance"], 1);
    assert_eq!(counters["POST /appliance"], 1);
    assert_eq!(counters["DELETE /appliance/{id}/power"], 1);
    assert_eq!(counters["DELETE /appliance/{id}"], 2);
    assert_eq!(
        (
            counters["appliances created"],
            counters["appliances deleted"]
        ),
        (1, 1)
    );
    let http_calls: u64 = counters
        .iter()
        .filter(|(k, _)| k.contains(' '))
        .filter(|(k, _)| k.contains('/'))
        .map(|(_, v)| v)
        .sum();
    assert_eq!(http_calls, client.calls());
}

#[tokio::test]
async fn power_calls_while_migrating_are_still_creating() {
    let sim = start_sim(Timings {
        migrating: Duration::from_secs(30),
        ..fast_timings()
    })
    .await;
    let client = client_for(&sim);
    let id = client
        .create(ZONE, &create_request("osb-young"))
        .await
        .unwrap()
        .id;
    assert_eq!(wait_read(&client, id).await.availability, "migrating");

    for err in [
        client.shutdown(ZONE, id, true).await.unwrap_err(),
        client.boot(ZONE, id).await.unwrap_err(),
        client.delete(ZONE, id).await.unwrap_err(),
        client.status(ZONE, id).await.unwrap_err(),
        client.apply_config(ZONE, id).await.unwrap_err(),
    ] {
        assert!(
            err.is_still_creating() && err.is_conflict() && !err.is_transient(),
            "{err}"
        );
    }
    // A 409 is an answer, not a reason to retry.
    assert_eq!(sim.count("DELETE /appliance/{id}/power"), 1);
}

#[tokio::test]
async fn power_conflicts_and_delete_only_when_down() {
    let sim = start_sim(fast_timings()).await;
    let client = client_for(&sim);
    let id = client
        .create(ZONE, &create_request("osb-power"))
        .await
        .unwrap()
        .id;
    wait_settled(&sim, &client, id).await;

    let err = client.delete(ZONE, id).await.unwrap_err();
    assert!(err.is_conflict() && !err.is_still_creating(), "{err}");
    assert!(client.boot(ZONE, id).await.unwrap_err().is_conflict());

    client.shutdown(ZONE, id, false).await.unwrap();
    wait_instance(&client, id, "down").await;
    assert!(
        client
            .shutdown(ZONE, id, true)
            .await
            .unwrap_err()
            .is_conflict()
    );

    client.boot(ZONE, id).await.unwrap();
    wait_instance(&client, id, "up").await;
    assert_eq!(sim.appliances()[0].instance_status.as_deref(), Some("up"));
    assert_eq!(sim.count(POWER_IGNORED), 0, "no call was made in a window");
}

#[tokio::test]
async fn settings_update_needs_the_current_hash() {
    let sim = start_sim(fast_timings()).await;
    let client = client_for(&sim);
    let id = client
        .create(ZONE, &create_request("osb-upd"))
        .await
        .unwrap()
        .id;
    wait_settled(&sim, &client, id).await;

    let before = client.read(ZONE, id).await.unwrap();
    let old_hash = before.settings_hash.clone().expect("hash");
    let change = SettingsChange {
        user_password: Some(Secret::new("second-Pa55word")),
        port: Some(13306),
        source_networks: Some(vec![]),
        backup: None,
    };
    let after = client
        .update_settings(
            ZONE,
            id,
            &before.settings_doc.with_change(&change),
            Some(&old_hash),
        )
        .await
        .unwrap();
    let new_hash = after.settings_hash.clone().expect("hash");
    assert_ne!(new_hash, old_hash);
    let want = DatabaseSettings {
        user_password: Secret::new("second-Pa55word"),
        port: Some(13306),
        source_networks: vec![],
        ..before.settings.clone()
    };
    assert_eq!(after.settings, want, "read back what was sent");
    assert!(sim.appliances()[0].config_pending);

    let err = client
        .update_settings(ZONE, id, &before.settings_doc, Some(&old_hash))
        .await
        .unwrap_err();
    assert!(err.is_conflict() && !err.is_still_creating(), "{err}");
    assert_eq!(
        client.read(ZONE, id).await.unwrap().settings,
        want,
        "a refused update changes nothing"
    );

    client.apply_config(ZONE, id).await.unwrap();
    assert!(!sim.appliances()[0].config_pending);
    let sent = sim
        .requests()
        .into_iter()
        .find(|r| r.route == "PUT /appliance/{id}")
        .unwrap();
    let body = sent.json().unwrap();
    assert_eq!(body["Appliance"]["SettingsHash"], old_hash.as_str());
    let common = &body["Appliance"]["Settings"]["DBConf"]["Common"];
    assert_eq!(common["SourceNetwork"], serde_json::json!(["0.0.0.0/0"]));
    assert_eq!(common["ServicePort"], 13306);
    assert_eq!(common["WebUI"], false, "sent back as read");

    // Without a hash the update is not checked against one, and none is sent.
    let unchecked = after.settings_doc.with_change(&SettingsChange {
        port: Some(13307),
        ..SettingsChange::default()
    });
    let last = client
        .update_settings(ZONE, id, &unchecked, None)
        .await
        .unwrap();
    assert_eq!(last.settings.port, Some(13307));
    let sent = sim.requests().pop().unwrap();
    assert!(
        sent.json().unwrap()["Appliance"]
            .get("SettingsHash")
            .is_none()
    );
}

#[tokio::test]
async fn an_update_built_from_the_read_keeps_what_the_broker_does_not_model() {
    let sim = start_sim(plain_timings()).await;
    let client = client_for(&sim);
    let id = client
        .create(ZONE, &create_request("osb-keep"))
        .await
        .unwrap()
        .id;
    wait_settled(&sim, &client, id).await;
    // Someone turned the web UI on and set a replica user, e.g. in the control panel.
    let db = client.read(ZONE, id).await.unwrap();
    let mut doc = db.settings_doc.as_json().clone();
    doc["DBConf"]["Common"]["WebUI"] = json!("192.168.0.11");
    doc["DBConf"]["Common"]["ReplicaUser"] = json!("replica1");
    let db = client
        .update_settings(ZONE, id, &SettingsDoc::from(doc), None)
        .await
        .unwrap();

    // An update made from the read keeps them, and the backup it did not change.
    let kept = client
        .update_settings(
            ZONE,
            id,
            &db.settings_doc.with_change(&SettingsChange {
                port: Some(13306),
                ..SettingsChange::default()
            }),
            db.settings_hash.as_deref(),
        )
        .await
        .unwrap();
    let common = &kept.settings_doc.as_json()["DBConf"]["Common"];
    assert_eq!(common["WebUI"], "192.168.0.11");
    assert_eq!(common["ReplicaUser"], "replica1");
    assert_eq!(kept.settings.port, Some(13306));
    assert_eq!(kept.settings.backup, db.settings.backup);
    assert!(kept.settings.backup.is_some());

    // One made from the typed view only loses them, and the backup, and the port.
    let s = &kept.settings;
    let careless = SettingsDoc::from(json!({"DBConf": {"Common": {
        "DefaultUser": s.default_user, "UserPassword": s.user_password.expose()}}}));
    let lost = client
        .update_settings(ZONE, id, &careless, kept.settings_hash.as_deref())
        .await
        .unwrap();
    let common = &lost.settings_doc.as_json()["DBConf"]["Common"];
    assert!(common.get("WebUI").is_none(), "{:?}", common.get("WebUI"));
    assert!(common.get("ReplicaUser").is_none());
    assert_eq!(lost.settings.backup, None);
    assert_eq!(lost.settings.port, Some(3306));
    assert!(lost.settings.source_networks.is_empty(), "allows all");
}

#[tokio::test]
async fn find_matches_the_exact_name_only() {
    let sim = start_sim(fast_timings()).await;
    let client = client_for(&sim);
    for name in ["osb-1", "osb-10", "my osb-1", "my db"] {
        client.create(ZONE, &create_request(name)).await.unwrap();
    }
    let names =
        |v: Vec<osb_sacloud::sacloud::Database>| v.into_iter().map(|d| d.name).collect::<Vec<_>>();
    assert_eq!(
        names(client.find_by_exact_name(ZONE, "osb-1").await.unwrap()),
        ["osb-1"]
    );
    assert_eq!(
        names(client.find_by_exact_name(ZONE, "my db").await.unwrap()),
        ["my db"]
    );
    assert!(
        client
            .find_by_exact_name(ZONE, "osb")
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        client
            .find_by_exact_name("is1a", "osb-1")
            .await
            .unwrap()
            .is_empty(),
        "zones are separate"
    );

    let sent = sim
        .requests()
        .into_iter()
        .filter(|r| r.route == "GET /appliance")
        .nth(1)
        .unwrap();
    let query = sent.query.expect("query");
    assert!(query.starts_with('{'), "raw JSON after '?', no q=: {query}");
    assert!(
        query.contains("my%20db"),
        "the space is path-escaped inside the JSON: {query}"
    );
    let decoded = percent_encoding::percent_decode_str(&query)
        .decode_utf8()
        .unwrap();
    let v: serde_json::Value = serde_json::from_str(&decoded).unwrap();
    assert_eq!(
        v["Filter"],
        serde_json::json!({"Class": "database", "Name": ["my db"]})
    );
}

#[tokio::test]
async fn find_sends_the_condition_raw_after_the_question_mark() {
    let sim = start_sim(fast_timings()).await;
    let client = client_for(&sim);
    assert!(
        client
            .find_by_exact_name("is1a", "osb-x")
            .await
            .unwrap()
            .is_empty()
    );
    let sent = sim.requests().pop().expect("a find was recorded");
    assert_eq!(sent.route, "GET /appliance");
    assert_eq!(sent.path, "/cloud/zone/is1a/api/cloud/1.1/appliance");
    // SAKURA's Go client puts the JSON after `?` as it is. The `http` crate under hyper (client
    // and server alike) refuses a raw `"` in a query, so the quotes travel as `%22`; braces,
    // colons, commas and brackets go raw. The API decodes the query once, which gives it
    // exactly the Go client's bytes.
    let query = sent.query.expect("a query");
    assert_eq!(
        query,
        r#"{%22Count%22:100,%22From%22:0,%22Filter%22:{%22Class%22:%22database%22,%22Name%22:[%22osb-x%22]}}"#
    );
    let decoded = percent_encoding::percent_decode_str(&query)
        .decode_utf8()
        .unwrap();
    assert_eq!(
        decoded,
        r#"{"Count":100,"From":0,"Filter":{"Class":"database","Name":["osb-x"]}}"#
    );
}

#[tokio::test]
async fn a_raw_quote_in_the_query_is_refused_by_the_http_stack() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // Why the client cannot send the Go client's raw `"`: hyper's `http` crate refuses it in a
    // query, in a URI the client builds and in a request line a server reads.
    assert!(r#"http://127.0.0.1/a?{"Count":1}"#.parse::<http::Uri>().is_err());
    assert!(r#"http://127.0.0.1/a?{%22Count%22:1}"#.parse::<http::Uri>().is_ok());
    let sim = start_sim(fast_timings()).await;
    let mut conn = tokio::net::TcpStream::connect(sim.addr()).await.unwrap();
    let line = r#"GET /cloud/zone/is1a/api/cloud/1.1/appliance?{"Count":1} HTTP/1.1"#;
    conn.write_all(format!("{line}\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut answer = String::new();
    conn.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 400 "), "{answer}");
    assert_eq!(
        sim.count("GET /appliance"),
        0,
        "refused before the API sees it"
    );
}

#[tokio::test]
async fn a_failed_appliance_can_be_deleted_without_shutdown() {
    let sim = start_sim(fast_timings()).await;
    let client = client_for(&sim);
    sim.set_faults(Faults {
        failed_creates: 1,
        ..Faults::default()
    });
    let id = client
        .create(ZONE, &create_request("osb-failing"))
        .await
        .unwrap()
        .id;
    wait_for("failed", || async {
        (wait_read(&client, id).await.availability == "failed").then_some(())
    })
    .await;
    client.delete(ZONE, id).await.unwrap();
    assert!(client.read(ZONE, id).await.unwrap_err().is_not_found());
}

/// A gate that admits everything and notes each request's priority.
#[derive(Debug, Default)]
struct Recorder(std::sync::Mutex<Vec<osb_sacloud::budget::Priority>>);

#[async_trait::async_trait]
impl osb_sacloud::budget::Gate for Recorder {
    async fn admit(&self, priority: osb_sacloud::budget::Priority) -> bool {
        self.0.lock().unwrap().push(priority);
        true
    }
}

#[tokio::test]
async fn the_reads_of_a_side_effect_count_as_the_effect() {
    use osb_sacloud::budget::Priority::{Effect, Read};
    let sim = start_sim(fast_timings()).await;
    let gate = std::sync::Arc::new(Recorder::default());
    let mut cfg = client_config(&sim);
    cfg.gate = Some(gate.clone());
    let client = osb_sacloud::sacloud::Client::new(cfg).unwrap();

    client.find_by_exact_name(ZONE, "osb-none").await.unwrap();
    let effects = client.for_effects();
    effects.find_by_exact_name(ZONE, "osb-none").await.unwrap();
    let db = effects
        .create(ZONE, &create_request("osb-gated"))
        .await
        .unwrap();
    client.read(ZONE, db.id).await.ok();
    assert_eq!(
        *gate.0.lock().unwrap(),
        [Read, Effect, Effect, Read],
        "a plain read is a read; the find before a create is part of the create"
    );
}
