//! The simulator's find filters, fault injection and `/_simulator/` control API, through a
//! plain HTTP client.

use std::time::{Duration, Instant};

use http::Method;
use osb_sacloud::sacloud::simulator::{Faults, RouteFaults, Simulator, Timings};
use serde_json::{Value, json};

use crate::support::sacloud::*;

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
    assert_eq!(
        counters,
        json!({"POST /appliance": 1, "GET /appliance": 1, "appliances created": 1})
    );
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
async fn timings_are_read_and_changed_at_run_time() {
    let sim = start_sim(fast_timings()).await;
    let raw = Raw::new(&sim);
    let (status, t) = raw.control(Method::GET, "/timings", None).await;
    assert_eq!(status, 200);
    assert_eq!(
        t,
        json!({"migrating_ms": 80, "boot_ms": 80, "cleaning_ms": 50,
            "not_found_after_create_ms": 120, "ignore_power_after_boot_ms": 100,
            "ignore_updates_after_boot_ms": 100, "engine_start_ms": 80})
    );

    let patch = json!({"not_found_after_create_ms": 0, "engine_start_ms": 5});
    assert_eq!(
        raw.control(Method::PUT, "/timings", Some(patch)).await.0,
        204
    );
    let (_, now) = raw.control(Method::GET, "/timings", None).await;
    assert_eq!(now["not_found_after_create_ms"], 0);
    assert_eq!(now["engine_start_ms"], 5);
    assert_eq!(now["boot_ms"], 80, "what the patch does not name is kept");
    assert_eq!(sim.timings().engine_start, Duration::from_millis(5));

    for bad in [
        json!({"nope_ms": 1}),
        json!({"boot_ms": "fast"}),
        json!({"boot_ms": -1}),
        json!([]),
    ] {
        let (status, body) = raw
            .control(Method::PUT, "/timings", Some(bad.clone()))
            .await;
        assert_eq!(status, 400, "{bad}: {body}");
        assert!(body["error"].is_string(), "{body}");
    }
    assert_eq!(raw.control(Method::GET, "/timings", None).await.1, now);

    // The 404 window is off now: a new appliance answers at once.
    let id = create(&raw, "osb-timed", &[]).await["ID"].as_u64().unwrap();
    let (status, _) = raw
        .call(Method::GET, &format!("/appliance/{id}"), None)
        .await;
    assert_eq!(status, 200);

    // The in-process setter is the same thing; a reset goes back to the configured timings.
    sim.set_timings(Timings {
        boot: Duration::from_millis(7),
        ..sim.timings()
    });
    assert_eq!(
        raw.control(Method::GET, "/timings", None).await.1["boot_ms"],
        7
    );
    sim.reset().await;
    assert_eq!(sim.timings(), fast_timings());
    assert_eq!(raw.control(Method::GET, "/timings", None).await.1, t);
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
