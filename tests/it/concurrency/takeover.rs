//! A deprovision that takes over a provision whose create call is still in flight, sent to
//! another broker process while a crowd polls: the appliance the create makes is found and
//! deleted, never left behind.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use http::{Method, StatusCode};
use osb_sacloud::sacloud::simulator::{CREATED, DELETED, RouteFaults, Timings};
use osb_sacloud::store::Key;

use crate::support::procs::{Cluster, all_at_once};
use crate::support::*;

#[cfg_attr(
    not(feature = "services"),
    ignore = "needs moto, the DynamoDB emulator: run scripts/test.sh"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deprovision_racing_an_inflight_create_leaves_no_appliance() {
    let mut sim = simulator_config();
    sim.timings = Timings {
        migrating: Duration::from_millis(200),
        boot: Duration::from_millis(200),
        cleaning: Duration::from_millis(200),
        ..fast_timings()
    };
    // The create call takes long enough for the DELETE to land while it is in flight.
    sim.faults.routes.insert(
        "POST /appliance".into(),
        RouteFaults {
            latency_ms: 600,
            ..RouteFaults::default()
        },
    );
    let c = Cluster::start_custom("takeover", 3, sim, |_| {}).await;
    let id = new_id("takeover");
    let done = Arc::new(AtomicBool::new(false));

    let replies = all_at_once(12, |i| {
        let (c, id, done) = (c.clone(), id.clone(), done.clone());
        async move {
            match i {
                0 => {
                    let path = format!("/v2/service_instances/{id}?accepts_incomplete=true");
                    let body = provision_body(MARIADB, MARIADB_10G);
                    vec![("provision", c.call_on(0, Method::PUT, &path, Some(body)).await)]
                }
                1 => {
                    // Once the create is claimed (and so in flight), deprovision elsewhere.
                    let deadline = Instant::now() + Duration::from_secs(10);
                    loop {
                        let claimed = c
                            .raw_item(&Key::instance(&id))
                            .await
                            .is_some_and(|(r, _, _)| !r["create_claimed_at"].is_null());
                        if claimed {
                            break;
                        }
                        assert!(Instant::now() < deadline, "the create was never claimed");
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                    let path = format!(
                        "/v2/service_instances/{id}?accepts_incomplete=true&service_id={MARIADB}&plan_id={MARIADB_10G}"
                    );
                    let r = c.call_on(1, Method::DELETE, &path, None).await;
                    let mut out = vec![("deprovision", r)];
                    let last = format!("/v2/service_instances/{id}/last_operation");
                    for round in 0..2000 {
                        let r = c.call_on(round, Method::GET, &last, None).await;
                        let finished = r.body["state"] != "in progress";
                        out.push(("poll", r));
                        if finished {
                            break;
                        }
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                    done.store(true, Ordering::SeqCst);
                    out
                }
                _ => {
                    let last = format!("/v2/service_instances/{id}/last_operation");
                    let mut out = Vec::new();
                    for round in 0.. {
                        if done.load(Ordering::SeqCst) {
                            break;
                        }
                        out.push(("crowd", c.call_on(i + round, Method::GET, &last, None).await));
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                    out
                }
            }
        }
    })
    .await;
    for (what, r) in replies.iter().flatten() {
        let ok = match *what {
            "provision" | "deprovision" => r.status == StatusCode::ACCEPTED,
            "poll" => r.status == StatusCode::OK,
            // Before the PUT has recorded the instance there is nothing to report.
            _ => matches!(r.status.as_u16(), 200 | 404),
        };
        assert!(ok, "{what}: unexpected answer {}: {}", r.status, r.body);
    }
    let (_, last) = replies[1].last().expect("the deprovision was polled");
    assert_eq!(last.body["state"], "succeeded", "{}", last.body);

    let (record, _, _) = c.raw_item(&Key::instance(&id)).await.expect("tombstone");
    assert_eq!(record["state"], "gone", "{record}");
    assert_eq!(c.sim.count("POST /appliance"), 1, "one create call");
    assert_eq!(c.sim.count(CREATED), 1);
    assert_eq!(c.sim.count(DELETED), 1, "the appliance was deleted");
    assert!(c.sim.appliances().is_empty(), "no appliance left behind");
}
