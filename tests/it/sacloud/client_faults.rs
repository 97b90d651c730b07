//! The SAKURA Cloud client when things go wrong: retries of 423/503 bursts and dropped
//! connections (and what is never retried), ambiguous creates, bad credentials, timeouts,
//! unreachable servers and the shared rate limit.

use std::time::Duration;

use osb_sacloud::sacloud::simulator::{Faults, RouteFaults};
use osb_sacloud::sacloud::{Client, Error};
use osb_sacloud::secret::Secret;

use crate::support::sacloud::*;

#[tokio::test]
async fn retries_503_and_423_bursts_on_every_call_but_create() {
    let sim = start_sim(fast_timings()).await;
    let client = client_for(&sim);
    let id = client
        .create(ZONE, &create_request("osb-retry"))
        .await
        .unwrap()
        .id;
    wait_read(&client, id).await;

    sim.set_faults(route_faults(
        "GET /appliance/{id}",
        RouteFaults {
            next_503: 2,
            next_423: 1,
            ..Default::default()
        },
    ));
    let (calls, reads) = (client.calls(), sim.count("GET /appliance/{id}"));
    client.read(ZONE, id).await.unwrap();
    assert_eq!(sim.count("GET /appliance/{id}") - reads, 4);
    assert_eq!(client.calls() - calls, 4);

    wait_settled(&sim, &client, id).await;
    sim.set_faults(route_faults(
        "DELETE /appliance/{id}/power",
        RouteFaults {
            next_423: 2,
            ..Default::default()
        },
    ));
    client.shutdown(ZONE, id, true).await.unwrap();
    assert_eq!(sim.count("DELETE /appliance/{id}/power"), 3);

    sim.set_faults(route_faults(
        "POST /appliance",
        RouteFaults {
            next_503: 3,
            ..Default::default()
        },
    ));
    let err = client
        .create(ZONE, &create_request("osb-retry-2"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Api { status: 503, .. }) && err.is_transient(),
        "{err}"
    );
    assert_eq!(
        sim.count("POST /appliance"),
        2,
        "one create above, one here: never retried"
    );
    assert_eq!(sim.appliances().len(), 1);
}

#[tokio::test]
async fn gives_up_after_max_retries() {
    let sim = start_sim(fast_timings()).await;
    let mut cfg = client_config(&sim);
    cfg.max_retries = 2;
    let client = Client::new(cfg).unwrap();
    sim.set_faults(route_faults(
        "GET /appliance",
        RouteFaults {
            next_503: 10,
            ..Default::default()
        },
    ));
    let err = client.find_by_exact_name(ZONE, "x").await.unwrap_err();
    assert!(
        matches!(err, Error::Api { status: 503, ref code, .. } if code == "service_unavailable")
    );
    assert_eq!(sim.count("GET /appliance"), 3);
}

#[tokio::test]
async fn dropped_connections_are_retried_for_reads_only() {
    let sim = start_sim(fast_timings()).await;
    let client = client_for(&sim);
    let id = client
        .create(ZONE, &create_request("osb-drop"))
        .await
        .unwrap()
        .id;
    wait_read(&client, id).await;

    sim.set_faults(route_faults(
        "GET /appliance/{id}",
        RouteFaults {
            next_drop: 2,
            ..Default::default()
        },
    ));
    let reads = sim.count("GET /appliance/{id}");
    client.read(ZONE, id).await.unwrap();
    assert_eq!(sim.count("GET /appliance/{id}") - reads, 3);

    wait_settled(&sim, &client, id).await;
    sim.set_faults(route_faults(
        "DELETE /appliance/{id}/power",
        RouteFaults {
            next_drop: 1,
            ..Default::default()
        },
    ));
    let err = client.shutdown(ZONE, id, true).await.unwrap_err();
    assert!(
        matches!(err, Error::Transport(_)) && err.is_transient(),
        "{err}"
    );
    assert_eq!(sim.count("DELETE /appliance/{id}/power"), 1);
    // The dropped shutdown was not applied; the next one is.
    client.shutdown(ZONE, id, true).await.unwrap();
}

#[tokio::test]
async fn an_ambiguous_create_is_found_by_name() {
    let sim = start_sim(fast_timings()).await;
    let client = client_for(&sim);
    sim.set_faults(Faults {
        ambiguous_creates: 1,
        ..Faults::default()
    });

    let err = client
        .create(ZONE, &create_request("osb-ambiguous"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Api { status: 500, .. }), "{err}");
    assert_eq!(sim.count("POST /appliance"), 1);

    let found = client
        .find_by_exact_name(ZONE, "osb-ambiguous")
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].id, sim.appliances()[0].id);
    assert!(found[0].tags.contains(&"@osb-sacloud".to_string()));
}

#[tokio::test]
async fn bad_credentials_are_an_api_401_and_not_retried() {
    let sim = start_sim(fast_timings()).await;
    let mut cfg = client_config(&sim);
    cfg.access_token_secret = Secret::new("wrong-secret");
    let client = Client::new(cfg.clone()).unwrap();
    let err = client.find_by_exact_name(ZONE, "x").await.unwrap_err();
    assert!(
        matches!(err, Error::Api { status: 401, ref code, .. } if code == "unauthorized"),
        "{err}"
    );
    assert!(!err.is_transient());
    assert_eq!(sim.count("GET /appliance"), 1);
    assert!(!err.to_string().contains("wrong-secret"));
    let debug = format!("{cfg:?} {client:?}");
    assert!(
        !debug.contains("wrong-secret") && !debug.contains(TOKEN),
        "{debug}"
    );
}

#[tokio::test]
async fn unreachable_api_is_a_transport_error() {
    let sim = start_sim(fast_timings()).await;
    let mut cfg = client_config(&sim);
    cfg.max_retries = 1;
    sim.shutdown().await;
    let client = Client::new(cfg).unwrap();
    let err = client.read(ZONE, 1).await.unwrap_err();
    assert!(
        matches!(err, Error::Transport(_)) && err.is_transient(),
        "{err}"
    );
    assert_eq!(client.calls(), 2, "reads retry connection failures");
    assert!(client.delete(ZONE, 1).await.is_err());
    assert_eq!(client.calls(), 3, "writes do not");
}

#[tokio::test]
async fn clones_share_the_call_counter_and_bad_root_urls_are_refused() {
    let sim = start_sim(fast_timings()).await;
    let client = client_for(&sim);
    let clone = client.clone();
    clone.find_by_exact_name(ZONE, "a").await.unwrap();
    client.find_by_exact_name(ZONE, "b").await.unwrap();
    assert_eq!((client.calls(), clone.calls()), (2, 2));

    let mut cfg = client_config(&sim);
    cfg.root_url = "not a url".into();
    assert!(Client::new(cfg).is_err());
}

#[tokio::test]
async fn every_call_has_a_timeout() {
    let sim = start_sim(fast_timings()).await;
    let mut cfg = client_config(&sim);
    cfg.timeout = Duration::from_millis(50);
    cfg.max_retries = 1;
    let client = Client::new(cfg).unwrap();
    sim.set_faults(route_faults(
        "*",
        RouteFaults {
            latency_ms: 400,
            ..Default::default()
        },
    ));
    let err = client.read(ZONE, 1).await.unwrap_err();
    assert!(
        matches!(&err, Error::Transport(m) if m.contains("timed out")),
        "{err}"
    );
    assert_eq!(client.calls(), 2, "a read that timed out is retried");
}

#[tokio::test]
async fn clones_share_one_rate_limit() {
    let sim = start_sim(fast_timings()).await;
    let mut cfg = client_config(&sim);
    cfg.rate_limit_per_sec = 20.0;
    let client = Client::new(cfg).unwrap();
    let clone = client.clone();
    let started = std::time::Instant::now();
    let one = async {
        for _ in 0..3 {
            client.find_by_exact_name(ZONE, "a").await.unwrap();
        }
    };
    let other = async {
        for _ in 0..3 {
            clone.find_by_exact_name(ZONE, "b").await.unwrap();
        }
    };
    tokio::join!(one, other);
    // Six calls at 20/s: the last may not start before five intervals of 50 ms have passed.
    assert!(
        started.elapsed() >= Duration::from_millis(250),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(client.calls(), 6);
}
