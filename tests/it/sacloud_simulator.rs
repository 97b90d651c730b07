//! The simulator on the wire, through a plain HTTP client: the shapes and quirks of its
//! answers, ids as strings or numbers, the error JSON, and validation of creates and updates.

use http::Method;
use serde_json::{Value, json};

use crate::support_sacloud::*;

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
    let sim = start_sim(fast_timings()).await;
    let raw = Raw::new(&sim);
    let a = create(&raw, "osb-hash", &[]).await;
    let id = a["ID"].as_u64().unwrap();
    let hash = a["SettingsHash"].as_str().unwrap().to_owned();
    let path = format!("/appliance/{id}");

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

    let settings = |user: &str, port: u16| json!({"DBConf": {"Common": {"DefaultUser": user, "ServicePort": port}}});
    let (status, body) = raw
        .call(Method::PUT, &path, Some(json!({"Appliance": {"Settings": settings("admin1", 15432), "SettingsHash": hash, "Tags": ["x"]}})))
        .await;
    assert_eq!(status, 200, "{body}");
    let new_hash = body["Appliance"]["SettingsHash"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(new_hash, hash);
    assert_eq!(
        body["Appliance"]["Settings"]["DBConf"]["Common"]["ServicePort"],
        "15432"
    );
    assert_eq!(
        body["Appliance"]["Settings"]["DBConf"]["Common"]["UserPassword"], "pw-pw-pw",
        "kept"
    );
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
