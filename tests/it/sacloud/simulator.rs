//! The simulator on the wire, through a plain HTTP client: the shapes and quirks of its
//! answers, ids as strings or numbers, the error JSON, and validation of creates and updates.

use std::time::Duration;

use http::Method;
use osb_sacloud::sacloud::simulator::{
    CONFIGS_APPLIED, HIDDEN_AFTER_CREATE, POWER_IGNORED, Timings, UPDATES_IGNORED,
};
use serde_json::{Value, json};

use crate::support::sacloud::*;

#[tokio::test]
async fn a_new_appliance_is_migrating_without_instance_and_has_the_real_quirks() {
    let sim = start_sim(fast_timings()).await;
    let raw = Raw::new(&sim);
    let a = create(&raw, "osb-quirks", &[]).await;
    assert_eq!(a["Availability"], "migrating");
    assert!(a.get("Instance").is_none(), "{a}");
    assert!(a["ID"].is_u64());
    let common = &a["Settings"]["DBConf"]["Common"];
    assert_eq!(common["ServicePort"], "5432");
    assert_eq!(common["SourceNetwork"], "");
    assert_eq!(common["WebUI"], false);
    assert_eq!(a["Settings"]["DBConf"]["Backup"], json!([]));
    assert_eq!((&a["Icon"], &a["Switch"]), (&Value::Null, &Value::Null));
    assert_eq!(a["Remark"]["Servers"][0]["IPAddress"], "192.168.0.11");
    assert_eq!(a["Remark"]["Zone"]["ID"], 29001);
    assert_eq!(
        a["Remark"]["DBConf"]["Common"]["DatabaseVersion"], "13",
        "PostgreSQL's default is the version SAKURA documents"
    );
    assert_eq!(a["Interfaces"][0]["IPAddress"], "192.168.0.11");
}

#[tokio::test]
async fn ids_are_strings_unless_the_bigint_header_is_sent() {
    let sim = start_sim(fast_timings()).await;
    let raw = Raw::new(&sim);
    let id = create(&raw, "osb-ids", &[]).await["ID"].as_u64().unwrap();
    raw.wait_visible(id).await;
    let url = format!("{}/appliance/{id}", raw.api);
    let (_, body) = raw.send(Method::GET, &url, None, true, false).await;
    let a = &body["Appliance"];
    assert_eq!(a["ID"], id.to_string());
    assert_eq!(a["Remark"]["Switch"]["ID"], "112233445566");
    assert_eq!(a["Remark"]["Plan"]["ID"], "10");
    let (_, body) = raw.send(Method::GET, &url, None, true, true).await;
    assert_eq!(body["Appliance"]["ID"], id);
    assert_eq!(
        body["Appliance"]["Remark"]["Switch"]["ID"],
        112_233_445_566u64
    );
}

#[tokio::test]
async fn errors_carry_the_real_error_json() {
    let sim = start_sim(fast_timings()).await;
    let raw = Raw::new(&sim);
    let (status, body) = raw.call(Method::GET, "/appliance/123456789012", None).await;
    assert_eq!(status, 404);
    assert_error(&body, "404 Not Found", "not_found");

    let url = format!("{}/appliance?{{}}", raw.api);
    let (status, body) = raw.send(Method::GET, &url, None, false, true).await;
    assert_eq!(status, 401);
    assert_error(&body, "401 Unauthorized", "unauthorized");

    let url = format!("{}/xx9z/api/cloud/1.1/appliance", sim.root_url());
    let (status, body) = raw.send(Method::GET, &url, None, true, true).await;
    assert_eq!(status, 404);
    assert_error(&body, "404 Not Found", "not_found");
    let (status, _) = raw
        .send(
            Method::GET,
            &format!("http://{}/nowhere", sim.addr()),
            None,
            true,
            true,
        )
        .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn create_bodies_are_validated_like_the_real_api() {
    let sim = start_sim(fast_timings()).await;
    let raw = Raw::new(&sim);
    type Edit = fn(&mut Value);
    // (what is wrong, a word the error message must name, the edit)
    let cases: &[(&str, &str, Edit)] = &[
        ("Switch.ID as a number", "Switch.ID", |a| {
            a["Remark"]["Switch"]["ID"] = json!(112233445566u64)
        }),
        ("plan only at the top", "Remark.Plan.ID", |a| {
            a["Remark"].as_object_mut().unwrap().remove("Plan");
            a["Plan"] = json!({"ID": 10});
        }),
        ("unknown plan", "plan", |a| {
            a["Remark"]["Plan"]["ID"] = json!(11)
        }),
        ("lower-case engine", "DatabaseName", |a| {
            a["Remark"]["DBConf"]["Common"]["DatabaseName"] = json!("mariadb")
        }),
        ("bad IP", "IPAddress", |a| {
            a["Remark"]["Servers"][0]["IPAddress"] = json!("192.168.0.300")
        }),
        ("route outside the subnet", "DefaultRoute", |a| {
            a["Remark"]["Network"]["DefaultRoute"] = json!("10.0.0.1")
        }),
        ("short user", "DefaultUser", |a| {
            a["Settings"]["DBConf"]["Common"]["DefaultUser"] = json!("ab")
        }),
        ("privileged port", "ServicePort", |a| {
            a["Settings"]["DBConf"]["Common"]["ServicePort"] = json!(80)
        }),
        ("bad network", "SourceNetwork", |a| {
            a["Settings"]["DBConf"]["Common"]["SourceNetwork"] = json!(["10.0.0.0/33"])
        }),
        ("bad rotation", "Rotate", |a| {
            a["Settings"]["DBConf"]["Backup"] = json!({"Rotate": 9, "Time": "01:00"})
        }),
        ("bad backup day", "DayOfWeek", |a| {
            a["Settings"]["DBConf"]["Backup"] =
                json!({"Rotate": 1, "Time": "01:00", "DayOfWeek": ["monday"]})
        }),
        ("no name", "Name", |a| a["Name"] = json!("")),
        ("other class", "Class", |a| a["Class"] = json!("vpcrouter")),
        ("no settings", "Settings.DBConf", |a| {
            a.as_object_mut().unwrap().remove("Settings");
        }),
    ];
    for (what, word, edit) in cases {
        let mut body = create_body("osb-bad", &[]);
        edit(&mut body["Appliance"]);
        let (status, answer) = raw.call(Method::POST, "/appliance", Some(body)).await;
        assert_eq!(status, 400, "{what}: {answer}");
        assert_error(&answer, "400 Bad Request", "bad_request");
        let message = answer["error_msg"].as_str().unwrap();
        assert!(message.contains(word), "{what}: {message}");
    }
    let url = format!("{}/appliance", raw.api);
    let resp = raw
        .http
        .post(&url)
        .basic_auth(TOKEN, Some(SECRET))
        .body("{nope")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    assert!(sim.appliances().is_empty(), "nothing was created");
    assert_eq!(sim.count("POST /appliance"), cases.len() as u64 + 1);
}

#[tokio::test]
async fn updates_check_the_settings_hash_and_the_user() {
    // Visible while still migrating, and no window in which updates are ignored.
    let sim = start_sim(Timings {
        migrating: Duration::from_millis(1500),
        ignore_updates_after_boot: Duration::ZERO,
        ..fast_timings()
    })
    .await;
    let raw = Raw::new(&sim);
    let a = create(&raw, "osb-hash", &[]).await;
    let id = a["ID"].as_u64().unwrap();
    let hash = a["SettingsHash"].as_str().unwrap().to_owned();
    let path = format!("/appliance/{id}");
    raw.wait_visible(id).await;

    let (status, body) = raw
        .call(
            Method::PUT,
            &path,
            Some(json!({"Appliance": {"Tags": ["x"]}})),
        )
        .await;
    assert_eq!(status, 409, "updates wait for the migration: {body}");
    assert_eq!(body["error_code"], "still_creating");
    wait_for("available", || async {
        let (_, b) = raw.call(Method::GET, &path, None).await;
        (b["Appliance"]["Availability"] == "available").then_some(())
    })
    .await;

    let settings = |user: &str, port: u16| json!({"DBConf": {"Common": {"DefaultUser": user, "UserPassword": "pw-pw-pw", "ServicePort": port}}});
    let (status, body) = raw
        .call(Method::PUT, &path, Some(json!({"Appliance": {"Settings": settings("admin1", 15432), "SettingsHash": hash, "Tags": ["x"]}})))
        .await;
    assert_eq!(status, 200, "{body}");
    let new_hash = body["Appliance"]["SettingsHash"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(new_hash, hash);
    let common = &body["Appliance"]["Settings"]["DBConf"]["Common"];
    assert_eq!(common["ServicePort"], "15432");
    assert_eq!(common["UserPassword"], "pw-pw-pw");
    assert_eq!(body["Appliance"]["Tags"], json!(["x"]));

    let (status, body) = raw
        .call(
            Method::PUT,
            &path,
            Some(
                json!({"Appliance": {"Settings": settings("admin1", 15433), "SettingsHash": hash}}),
            ),
        )
        .await;
    assert_eq!(status, 409);
    assert_error(&body, "409 Conflict", "conflict");
    let (status, _) = raw
        .call(Method::PUT, &path, Some(json!({"Appliance": {"Settings": settings("admin2", 15432), "SettingsHash": new_hash}})))
        .await;
    assert_eq!(status, 400, "the default user cannot change");
    // The user and the password cannot be cleared: left out, they are refused.
    for (left_out, settings) in [
        (
            "UserPassword",
            json!({"DBConf": {"Common": {"DefaultUser": "admin1"}}}),
        ),
        (
            "DefaultUser",
            json!({"DBConf": {"Common": {"UserPassword": "pw-pw-pw"}}}),
        ),
        (
            "Settings.DBConf",
            json!({"MonitoringSuite": {"Enabled": true}}),
        ),
    ] {
        let (status, body) = raw
            .call(
                Method::PUT,
                &path,
                Some(json!({"Appliance": {"Settings": settings}})),
            )
            .await;
        assert_eq!(status, 400, "{left_out}: {body}");
        assert!(
            body["error_msg"].as_str().unwrap().contains(left_out),
            "{body}"
        );
    }
    // SettingsHash is optional: without one the update is not checked.
    let (status, body) = raw
        .call(
            Method::PUT,
            &path,
            Some(json!({"Appliance": {"Settings": settings("admin1", 15434)}})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["Appliance"]["Settings"]["DBConf"]["Common"]["ServicePort"],
        "15434"
    );
}

/// A create body with members the simulator does not interpret.
fn rich_create_body(name: &str) -> Value {
    let mut body = create_body(name, &[]);
    body["Appliance"]["Settings"] = json!({
        "DBConf": {
            "Common": {"DefaultUser": "admin1", "UserPassword": "pw-pw-pw", "ServicePort": 15432,
                "SourceNetwork": ["10.0.0.0/8"], "WebUI": true, "ReplicaUser": "replica1",
                "ReplicaPassword": "rp-rp-rp"},
            "Backup": {"Rotate": 2, "Time": "02:00", "DayOfWeek": ["sun"],
                "Connect": "nfs://192.168.0.31/export"},
            "Replication": {"Model": "Master-Slave"}
        },
        "MonitoringSuite": {"Enabled": true}
    });
    body
}

/// `Settings` of the appliance at `path`, as a read answers them.
async fn settings_of(raw: &Raw, path: &str) -> Value {
    raw.call(Method::GET, path, None).await.1["Appliance"]["Settings"].clone()
}

#[tokio::test]
async fn an_update_replaces_the_settings_and_clears_what_it_leaves_out() {
    let sim = start_sim(plain_timings()).await;
    let raw = Raw::new(&sim);
    let (status, body) = raw
        .call(
            Method::POST,
            "/appliance",
            Some(rich_create_body("osb-replace")),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    let id = body["Appliance"]["ID"].as_u64().unwrap();
    let path = format!("/appliance/{id}");
    wait_for("available", || async {
        let (_, b) = raw.call(Method::GET, &path, None).await;
        (b["Appliance"]["Availability"] == "available").then_some(())
    })
    .await;
    // As created: every member as sent, the interpreted ones in the API's own shapes.
    let sent = settings_of(&raw, &path).await;
    let common = &sent["DBConf"]["Common"];
    assert_eq!(common["WebUI"], true);
    assert_eq!(common["ReplicaUser"], "replica1");
    assert_eq!(common["ServicePort"], "15432");
    assert_eq!(common["SourceNetwork"], json!(["10.0.0.0/8"]));
    assert_eq!(
        sent["DBConf"]["Backup"]["Connect"],
        "nfs://192.168.0.31/export"
    );
    assert_eq!(sent["DBConf"]["Replication"]["Model"], "Master-Slave");
    assert_eq!(sent["MonitoringSuite"]["Enabled"], true);

    // A client that sends only what it knows: everything else is gone or back to its default.
    let bare = json!({"DBConf": {"Common": {"DefaultUser": "admin1", "UserPassword": "pw-pw-pw"}}});
    let (status, body) = raw
        .call(
            Method::PUT,
            &path,
            Some(json!({"Appliance": {"Settings": bare}})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let now = settings_of(&raw, &path).await;
    let common = &now["DBConf"]["Common"];
    assert_eq!(common["ServicePort"], "5432", "the engine's default port");
    assert_eq!(common["SourceNetwork"], "", "allow all");
    assert_eq!(now["DBConf"]["Backup"], json!([]), "backups off");
    for gone in ["WebUI", "ReplicaUser", "ReplicaPassword"] {
        assert!(common.get(gone).is_none(), "{gone} survived: {now}");
    }
    assert!(now["DBConf"].get("Replication").is_none(), "{now}");
    assert!(now.get("MonitoringSuite").is_none(), "{now}");

    // What is sent back survives.
    let (status, body) = raw
        .call(
            Method::PUT,
            &path,
            Some(json!({"Appliance": {"Settings": sent}})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let again = settings_of(&raw, &path).await;
    assert_eq!(again["DBConf"]["Common"]["WebUI"], true);
    assert_eq!(again["DBConf"]["Common"]["ServicePort"], "15432");
    assert_eq!(again["DBConf"]["Replication"]["Model"], "Master-Slave");
    assert_eq!(again["DBConf"]["Backup"]["Rotate"], 2);
    assert_eq!(again["MonitoringSuite"]["Enabled"], true);
}

#[tokio::test]
async fn only_versions_sakura_names_are_offered() {
    let sim = start_sim(fast_timings()).await;
    let raw = Raw::new(&sim);
    let version = |engine: &str, version: Option<&str>| {
        let mut body = create_body("osb-version", &[]);
        let common = &mut body["Appliance"]["Remark"]["DBConf"]["Common"];
        common["DatabaseName"] = json!(engine);
        if let Some(v) = version {
            common["DatabaseVersion"] = json!(v);
        }
        body
    };
    for (engine, asked, got) in [
        ("postgres", None, "13"),
        ("postgres", Some("13"), "13"),
        ("postgres", Some("11"), "11"),
        ("MariaDB", None, "10.11"),
        ("MariaDB", Some("10.11"), "10.11"),
        ("MariaDB", Some("10.4"), "10.4"),
        ("MariaDB", Some("10.3"), "10.3"),
    ] {
        let (status, body) = raw
            .call(Method::POST, "/appliance", Some(version(engine, asked)))
            .await;
        assert_eq!(status, 202, "{engine} {asked:?}: {body}");
        let common = &body["Appliance"]["Remark"]["DBConf"]["Common"];
        assert_eq!(common["DatabaseVersion"], got, "{engine} {asked:?}");
    }
    for (engine, asked) in [
        ("postgres", "15"),
        ("postgres", "10.11"),
        ("MariaDB", "13"),
        ("MariaDB", "8.0"),
        ("MariaDB", ""),
    ] {
        let (status, body) = raw
            .call(
                Method::POST,
                "/appliance",
                Some(version(engine, Some(asked))),
            )
            .await;
        assert_eq!(status, 400, "{engine} {asked:?}: {body}");
        assert_error(&body, "400 Bad Request", "bad_request");
        assert!(
            body["error_msg"]
                .as_str()
                .unwrap()
                .contains("DatabaseVersion"),
            "{body}"
        );
    }
    assert_eq!(sim.appliances().len(), 7);
}

/// Wait until the appliance reads `Instance.Status == status` over the raw client.
async fn raw_wait_instance(raw: &Raw, id: u64, status: &str) {
    let path = format!("/appliance/{id}");
    wait_for(&format!("instance {status}"), || async {
        let (_, b) = raw.call(Method::GET, &path, None).await;
        (b["Appliance"]["Instance"]["Status"] == status).then_some(())
    })
    .await
}

fn with_timings(t: Timings, edit: impl FnOnce(&mut Timings)) -> Timings {
    let mut t = t;
    edit(&mut t);
    t
}

#[tokio::test]
async fn just_after_the_create_calls_by_id_answer_404_though_the_find_lists_it() {
    let sim = start_sim(with_timings(fast_timings(), |t| {
        t.not_found_after_create = Duration::from_secs(60)
    }))
    .await;
    let raw = Raw::new(&sim);
    let id = create(&raw, "osb-hidden", &[]).await["ID"]
        .as_u64()
        .unwrap();
    let (_, found) = raw.find(r#"{"Filter":{"Name":["osb-hidden"]}}"#).await;
    assert_eq!(found["Total"], 1, "the find lists it: {found}");
    assert_eq!(found["Appliances"][0]["ID"], id);
    let by_id = [
        (Method::GET, format!("/appliance/{id}"), None),
        (Method::GET, format!("/appliance/{id}/status"), None),
        (Method::PUT, format!("/appliance/{id}/power"), None),
        (
            Method::DELETE,
            format!("/appliance/{id}/power"),
            Some(json!({"Force": true})),
        ),
        (Method::PUT, format!("/appliance/{id}/config"), None),
        (
            Method::PUT,
            format!("/appliance/{id}"),
            Some(json!({"Appliance": {"Tags": ["x"]}})),
        ),
        (Method::DELETE, format!("/appliance/{id}"), None),
    ];
    for (method, path, body) in &by_id {
        let (status, answer) = raw.call(method.clone(), path, body.clone()).await;
        assert_eq!(status, 404, "{method} {path}: {answer}");
        assert_error(&answer, "404 Not Found", "not_found");
    }
    assert_eq!(sim.count(HIDDEN_AFTER_CREATE), by_id.len() as u64);
    assert_eq!(sim.appliances().len(), 1, "nothing was deleted");

    // Turned off at run time: the same appliance answers at once.
    sim.set_timings(with_timings(sim.timings(), |t| {
        t.not_found_after_create = Duration::ZERO
    }));
    let (status, body) = raw.call(Method::GET, &by_id[0].1, None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["Appliance"]["ID"], id);
}

#[tokio::test]
async fn without_the_404_window_a_new_appliance_answers_at_once() {
    let sim = start_sim(plain_timings()).await;
    let raw = Raw::new(&sim);
    let id = create(&raw, "osb-seen", &[]).await["ID"].as_u64().unwrap();
    let (status, body) = raw
        .call(Method::GET, &format!("/appliance/{id}"), None)
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["Appliance"]["Availability"], "migrating");
    assert_eq!(sim.count(HIDDEN_AFTER_CREATE), 0);
}

#[tokio::test]
async fn power_calls_just_after_the_boot_are_answered_and_ignored() {
    let sim = start_sim(with_timings(plain_timings(), |t| {
        t.ignore_power_after_boot = Duration::from_secs(60)
    }))
    .await;
    let raw = Raw::new(&sim);
    let id = create(&raw, "osb-fresh", &[]).await["ID"].as_u64().unwrap();
    raw_wait_instance(&raw, id, "up").await;
    let power = format!("/appliance/{id}/power");
    // A boot of an up appliance would be a 409, and the shutdown would shut it down.
    let (status, body) = raw.call(Method::PUT, &power, None).await;
    assert_eq!((status, &body["is_ok"]), (200, &json!(true)), "{body}");
    let (status, body) = raw
        .call(Method::DELETE, &power, Some(json!({"Force": true})))
        .await;
    assert_eq!((status, &body["is_ok"]), (200, &json!(true)), "{body}");
    let (_, body) = raw
        .call(Method::GET, &format!("/appliance/{id}"), None)
        .await;
    assert_eq!(
        body["Appliance"]["Instance"]["Status"], "up",
        "nothing changed"
    );
    assert_eq!(sim.count(POWER_IGNORED), 2);

    sim.set_timings(with_timings(sim.timings(), |t| {
        t.ignore_power_after_boot = Duration::ZERO
    }));
    let (status, body) = raw.call(Method::PUT, &power, None).await;
    assert_eq!(status, 409, "{body}");
    let (status, body) = raw
        .call(Method::DELETE, &power, Some(json!({"Force": true})))
        .await;
    assert_eq!(status, 200, "{body}");
    let (_, body) = raw
        .call(Method::GET, &format!("/appliance/{id}"), None)
        .await;
    assert_ne!(body["Appliance"]["Instance"]["Status"], "up", "{body}");
    assert_eq!(sim.count(POWER_IGNORED), 2);
}

#[tokio::test]
async fn updates_just_after_the_boot_are_answered_and_ignored() {
    let sim = start_sim(with_timings(plain_timings(), |t| {
        t.ignore_updates_after_boot = Duration::from_secs(60)
    }))
    .await;
    let raw = Raw::new(&sim);
    let id = create(&raw, "osb-eager", &[]).await["ID"].as_u64().unwrap();
    raw_wait_instance(&raw, id, "up").await;
    let path = format!("/appliance/{id}");
    let (_, before) = raw.call(Method::GET, &path, None).await;
    let hash = before["Appliance"]["SettingsHash"].clone();
    let update = json!({"Appliance": {"Tags": ["x"], "SettingsHash": hash, "Settings": {"DBConf": {"Common": {"DefaultUser": "admin1", "UserPassword": "pw-pw-pw", "ServicePort": 15432}}}}});

    let (status, body) = raw.call(Method::PUT, &path, Some(update.clone())).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["Appliance"], before["Appliance"],
        "the answer echoes the appliance as it is"
    );
    let (status, _) = raw.call(Method::PUT, &format!("{path}/config"), None).await;
    assert_eq!(status, 200);
    let (_, after) = raw.call(Method::GET, &path, None).await;
    assert_eq!(after["Appliance"], before["Appliance"], "nothing changed");
    assert_eq!(sim.count(UPDATES_IGNORED), 2);
    assert_eq!(sim.count(CONFIGS_APPLIED), 0);

    sim.set_timings(with_timings(sim.timings(), |t| {
        t.ignore_updates_after_boot = Duration::ZERO
    }));
    let (status, body) = raw.call(Method::PUT, &path, Some(update)).await;
    assert_eq!(status, 200, "{body}");
    let settings = &body["Appliance"]["Settings"]["DBConf"]["Common"];
    assert_eq!(settings["ServicePort"], "15432");
    assert_ne!(body["Appliance"]["SettingsHash"], hash);
    assert!(sim.appliances()[0].config_pending);
    let (status, _) = raw.call(Method::PUT, &format!("{path}/config"), None).await;
    assert_eq!(status, 200);
    assert!(!sim.appliances()[0].config_pending);
    assert_eq!(sim.count(UPDATES_IGNORED), 2);
    assert_eq!(sim.count(CONFIGS_APPLIED), 1);
}

#[tokio::test]
async fn the_engine_runs_a_while_after_up_and_restarts_on_an_applied_config() {
    let sim = start_sim(with_timings(plain_timings(), |t| {
        t.engine_start = Duration::from_secs(60)
    }))
    .await;
    let raw = Raw::new(&sim);
    let id = create(&raw, "osb-engine", &[]).await["ID"]
        .as_u64()
        .unwrap();
    raw_wait_instance(&raw, id, "up").await;
    let status_path = format!("/appliance/{id}/status");
    let engine = |body: &Value| {
        let r = &body["Appliance"]["SettingsResponse"];
        (
            r["Status"].as_str().unwrap_or_default().to_owned(),
            r["DBConf"]["postgres"]["status"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        )
    };
    let (_, body) = raw.call(Method::GET, &status_path, None).await;
    assert_eq!(engine(&body), ("up".into(), "stopped".into()), "{body}");
    assert!(!sim.appliances()[0].engine_running);

    // Off: the engine runs as soon as the appliance is up.
    sim.set_timings(with_timings(sim.timings(), |t| {
        t.engine_start = Duration::ZERO
    }));
    let (_, body) = raw.call(Method::GET, &status_path, None).await;
    assert_eq!(engine(&body), ("up".into(), "running".into()), "{body}");

    // An applied config restarts it: stopped again for engine_start.
    sim.set_timings(with_timings(sim.timings(), |t| {
        t.engine_start = Duration::from_millis(1000)
    }));
    wait_for("the engine running", || async {
        let (_, body) = raw.call(Method::GET, &status_path, None).await;
        (engine(&body).1 == "running").then_some(())
    })
    .await;
    let (status, _) = raw
        .call(Method::PUT, &format!("/appliance/{id}/config"), None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(sim.count(CONFIGS_APPLIED), 1);
    let (_, body) = raw.call(Method::GET, &status_path, None).await;
    assert_eq!(engine(&body), ("up".into(), "stopped".into()), "{body}");
    wait_for("the engine running again", || async {
        let (_, body) = raw.call(Method::GET, &status_path, None).await;
        (engine(&body).1 == "running").then_some(())
    })
    .await;
}
