//! The simulator on the wire, through a plain HTTP client: the shapes and quirks of its answers,
//! validation, filters, faults and the `/_simulator/` control API.

use std::time::{Duration, Instant};

use osb_sacloud::sacloud::simulator::{Faults, RouteFaults, Simulator};
use reqwest::Method;
use serde_json::{Value, json};

use crate::support_sacloud::*;

/// A bare HTTP client for one simulator.
struct Raw {
    http: reqwest::Client,
    api: String,
    control: String,
}

impl Raw {
    fn new(sim: &Simulator) -> Raw {
        Raw {
            http: reqwest::Client::new(),
            api: format!("{}/{ZONE}/api/cloud/1.1", sim.root_url()),
            control: format!("http://{}/_simulator", sim.addr()),
        }
    }

    /// A SAKURA API call with auth and `X-Sakura-Bigint-As-Int: 1`.
    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        self.send(method, &format!("{}{path}", self.api), body, true, true)
            .await
    }

    async fn send(
        &self,
        method: Method,
        url: &str,
        body: Option<Value>,
        auth: bool,
        bigint: bool,
    ) -> (u16, Value) {
        let mut req = self.http.request(method, url);
        if auth {
            req = req.basic_auth(TOKEN, Some(SECRET));
        }
        if bigint {
            req = req.header("X-Sakura-Bigint-As-Int", "1");
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await.expect("answer");
        let status = resp.status().as_u16();
        let text = resp.text().await.expect("body");
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn find(&self, query: &str) -> (u16, Value) {
        self.call(Method::GET, &format!("/appliance?{query}"), None)
            .await
    }

    async fn control(&self, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        self.send(
            method,
            &format!("{}{path}", self.control),
            body,
            false,
            false,
        )
        .await
    }
}

fn create_body(name: &str, tags: &[&str]) -> Value {
    json!({"Appliance": {
        "Class": "database", "Name": name, "Description": "", "Tags": tags,
        "Remark": {
            "Plan": {"ID": "10"}, "Switch": {"ID": "112233445566"},
            "Servers": [{"IPAddress": "192.168.0.11"}],
            "Network": {"NetworkMaskLen": 24, "DefaultRoute": "192.168.0.1"},
            "DBConf": {"Common": {"DatabaseName": "postgres", "DefaultUser": "admin1", "UserPassword": "pw-pw-pw"}}},
        "Settings": {"DBConf": {"Common": {"ServicePort": "5432", "SourceNetwork": "",
            "DefaultUser": "admin1", "UserPassword": "pw-pw-pw"}}}}})
}

async fn create(raw: &Raw, name: &str, tags: &[&str]) -> Value {
    let (status, body) = raw
        .call(Method::POST, "/appliance", Some(create_body(name, tags)))
        .await;
    assert_eq!(status, 202, "{body}");
    body["Appliance"].clone()
}

fn assert_error(body: &Value, status: &str, code: &str) {
    assert_eq!(body["is_fatal"], true, "{body}");
    assert_eq!(body["status"], status, "{body}");
    assert_eq!(body["error_code"], code, "{body}");
    assert!(
        body["error_msg"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    let serial = body["serial"].as_str().unwrap_or_default();
    assert!(
        serial.len() == 32 && serial.bytes().all(|b| b.is_ascii_hexdigit()),
        "{body}"
    );
}

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
    assert_eq!(a["Remark"]["DBConf"]["Common"]["DatabaseVersion"], "15");
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
async fn find_filters_pages_and_keeps_zones_apart() {
    let sim = start_sim(fast_timings()).await;
    let raw = Raw::new(&sim);
    create(&raw, "osb alpha", &["a", "b"]).await;
    create(&raw, "osb beta", &["a"]).await;
    create(&raw, "other", &["b"]).await;
    let names = |body: &Value| {
        let mut n: Vec<String> = body["Appliances"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["Name"].as_str().unwrap().to_owned())
            .collect();
        n.sort();
        n
    };
    let cases: &[(&str, &[&str])] = &[
        (r#"{"Filter":{"Name":"osb"}}"#, &["osb alpha", "osb beta"]),
        (r#"{"Filter":{"Name":"ALPHA%20osb"}}"#, &["osb alpha"]),
        (
            r#"{"Filter":{"Name":["osb%20beta","other","osb"]}}"#,
            &["osb beta", "other"],
        ),
        (r#"{"Filter":{"Tags.Name":["a","b"]}}"#, &["osb alpha"]),
        (
            r#"{"Filter":{"Tags.Name":[["b"],["a"]]}}"#,
            &["osb alpha", "osb beta", "other"],
        ),
        (
            r#"{"Filter":{"Class":"database","Name":["other"]}}"#,
            &["other"],
        ),
        (r#"{"Filter":{"Class":"vpcrouter"}}"#, &[]),
        ("", &["osb alpha", "osb beta", "other"]),
    ];
    for (query, want) in cases {
        let (status, body) = raw.find(query).await;
        assert_eq!(status, 200, "{query}: {body}");
        assert_eq!(names(&body), *want, "{query}");
        assert_eq!(body["Total"], want.len(), "{query}");
    }

    let (_, page) = raw.find(r#"{"Count":2,"From":1}"#).await;
    assert_eq!(
        (
            page["Total"].as_u64(),
            page["Count"].as_u64(),
            page["From"].as_u64()
        ),
        (Some(3), Some(2), Some(1))
    );
    assert_eq!(page["Appliances"].as_array().unwrap().len(), 2);

    let (status, body) = raw.find("q={}").await;
    assert_eq!(status, 400);
    assert_error(&body, "400 Bad Request", "bad_request");

    let url = format!("{}/is1b/api/cloud/1.1/appliance", sim.root_url());
    let (_, body) = raw.send(Method::GET, &url, None, true, true).await;
    assert_eq!(body["Total"], 0);
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
async fn control_api_steers_and_reports_without_auth_or_faults() {
    let sim = start_sim(fast_timings()).await;
    let raw = Raw::new(&sim);
    let id = create(&raw, "osb-ctl", &["t"]).await["ID"]
        .as_u64()
        .unwrap();

    let faults =
        json!({"routes": {"*": {"next_503": 5}}, "ambiguous_creates": 0, "failed_creates": 0});
    assert_eq!(
        raw.control(Method::PUT, "/faults", Some(faults.clone()))
            .await
            .0,
        204
    );
    let (status, body) = raw.find("{}").await;
    assert_eq!(status, 503);
    assert_error(&body, "503 Service Unavailable", "service_unavailable");
    let (status, counters) = raw.control(Method::GET, "/counters", None).await;
    assert_eq!(status, 200, "control calls are never faulted");
    assert_eq!(counters, json!({"POST /appliance": 1, "GET /appliance": 1}));
    let (_, now) = raw.control(Method::GET, "/faults", None).await;
    assert_eq!(now["routes"]["*"]["next_503"], 4);
    assert_eq!(
        raw.control(
            Method::PUT,
            "/faults",
            Some(json!({"routes": {"*": {"rate": 1}}}))
        )
        .await
        .0,
        400
    );
    assert_eq!(
        raw.control(Method::PUT, "/faults", Some(json!({}))).await.0,
        204
    );

    assert_eq!(
        raw.control(Method::POST, &format!("/appliances/{id}/fail"), None)
            .await
            .0,
        204
    );
    assert_eq!(
        raw.control(Method::POST, "/appliances/1/fail", None)
            .await
            .0,
        404
    );
    let (_, list) = raw.control(Method::GET, "/appliances", None).await;
    assert_eq!(list[0]["id"], id);
    assert_eq!(list[0]["name"], "osb-ctl");
    assert_eq!(list[0]["zone"], ZONE);
    assert_eq!(list[0]["availability"], "failed");
    assert_eq!(list[0]["tags"], json!(["t"]));

    assert_eq!(raw.control(Method::POST, "/reset", None).await.0, 204);
    assert_eq!(
        raw.control(Method::GET, "/appliances", None).await.1,
        json!([])
    );
    assert_eq!(
        raw.control(Method::GET, "/counters", None).await.1,
        json!({})
    );
    let (status, _) = raw
        .call(Method::GET, &format!("/appliance/{id}"), None)
        .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn a_dropped_connection_gets_no_answer_at_all() {
    let sim = start_sim(fast_timings()).await;
    let raw = Raw::new(&sim);
    sim.set_faults(Faults {
        routes: [(
            "GET /appliance".to_string(),
            RouteFaults {
                next_drop: 1,
                ..Default::default()
            },
        )]
        .into(),
        ..Faults::default()
    });
    let url = format!("{}/appliance", raw.api);
    let err = raw
        .http
        .get(&url)
        .basic_auth(TOKEN, Some(SECRET))
        .send()
        .await
        .unwrap_err();
    assert!(err.status().is_none() && !err.is_timeout(), "{err:?}");
    assert_eq!(raw.find("{}").await.0, 200, "the next call is answered");
    assert_eq!(sim.count("GET /appliance"), 2);
}

#[tokio::test]
async fn latency_is_added_before_answering() {
    let sim = start_sim(fast_timings()).await;
    let raw = Raw::new(&sim);
    sim.set_faults(Faults {
        routes: [(
            "*".to_string(),
            RouteFaults {
                latency_ms: 150,
                ..Default::default()
            },
        )]
        .into(),
        ..Faults::default()
    });
    let started = Instant::now();
    assert_eq!(raw.find("{}").await.0, 200);
    assert!(started.elapsed() >= Duration::from_millis(150));
}

#[tokio::test]
async fn configured_faults_apply_from_the_start_and_after_a_reset() {
    let mut cfg = sim_config(fast_timings());
    cfg.faults.routes.insert(
        "GET /appliance".into(),
        RouteFaults {
            next_423: 1,
            ..Default::default()
        },
    );
    let sim = Simulator::start(cfg, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let raw = Raw::new(&sim);
    let (status, body) = raw.find("{}").await;
    assert_eq!(status, 423);
    assert_error(&body, "423 Locked", "locked");
    assert_eq!(raw.find("{}").await.0, 200);
    sim.reset().await;
    assert_eq!(raw.find("{}").await.0, 423);
}

#[tokio::test]
async fn the_same_seed_gives_the_same_ids() {
    let mut ids = Vec::new();
    for _ in 0..2 {
        let sim = start_sim(fast_timings()).await;
        let raw = Raw::new(&sim);
        ids.push(create(&raw, "osb-seed", &[]).await["ID"].as_u64().unwrap());
        sim.shutdown().await;
    }
    assert_eq!(ids[0], ids[1]);
    assert!(
        (100_000_000_000..1_000_000_000_000).contains(&ids[0]),
        "12 digits"
    );
}

#[tokio::test]
async fn shutdown_stops_serving() {
    let sim = start_sim(fast_timings()).await;
    let addr = sim.addr();
    sim.shutdown().await;
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}
