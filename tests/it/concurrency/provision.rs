//! Three broker processes on one DynamoDB table (moto) and one simulator: racing provisions and
//! deprovisions of one instance, and crowds of pollers, never make SAKURA Cloud do a side effect
//! twice, and never answer a platform 409 for identical requests or 5xx.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use http::{Method, StatusCode};
use osb_sacloud::sacloud::simulator::{CREATED, DELETED, RouteFaults, Timings};
use serde_json::{Value, json};

use crate::support::procs::{Cluster, Reply, all_at_once};
use crate::support::*;

const BROKERS: usize = 3;

/// MariaDB plans: 10, 30, 90, 240 and 500 GB.
const MARIADB_PLANS: [&str; 5] = [
    MARIADB_10G,
    "d4591cca-6361-4957-bfad-3f5e84ef2215",
    "66907d28-6440-41ca-9f7f-ab9c4a0d171b",
    "b3321210-e5f0-4224-99cf-34abc4435ed3",
    "92a30279-e938-4e20-8e4e-50a0231e719e",
];

fn put_path(id: &str) -> String {
    format!("/v2/service_instances/{id}?accepts_incomplete=true")
}

fn delete_path(id: &str) -> String {
    format!(
        "/v2/service_instances/{id}?accepts_incomplete=true&service_id={MARIADB}&plan_id={MARIADB_10G}"
    )
}

/// The single operation token of the 202s; every other answer must be in `allowed`
/// (`(status, OSB error code)`, `None` for a success body).
fn one_token(replies: &[Reply], allowed: &[(u16, Option<&str>)]) -> String {
    let mut tokens = BTreeSet::new();
    for r in replies {
        if r.status == StatusCode::ACCEPTED {
            let token = r.body["operation"].as_str().expect("202 carries a token");
            tokens.insert(token.to_owned());
            continue;
        }
        let code = r.body["error"].as_str();
        assert!(
            allowed
                .iter()
                .any(|(s, c)| *s == r.status.as_u16() && *c == code),
            "unexpected answer {}: {}",
            r.status,
            r.body
        );
    }
    assert_eq!(tokens.len(), 1, "202s name one operation: {tokens:?}");
    tokens.into_iter().next().expect("one token")
}

#[cfg_attr(
    not(feature = "services"),
    ignore = "needs moto, the DynamoDB emulator: run scripts/test.sh"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_identical_provisions_over_three_brokers_create_one_appliance() {
    let c = Cluster::start("identicalprovisions", BROKERS, |_| {}).await;
    let id = new_id("same");
    let replies = all_at_once(20, |i| {
        let (c, path) = (c.clone(), put_path(&id));
        async move {
            let body = provision_body(MARIADB, MARIADB_10G);
            c.call_on(i, Method::PUT, &path, Some(body)).await
        }
    })
    .await;
    one_token(&replies, &[(200, None), (422, Some("ConcurrencyError"))]);
    assert_eq!(c.sim.count("POST /appliance"), 1, "one create call");
    assert_eq!(c.sim.count(CREATED), 1, "one appliance");

    let last = c.poll(&id).await;
    assert_eq!(last["state"], "succeeded", "{last}");
    // Once ready, every broker answers the same PUT 200 and creates nothing.
    for i in 0..BROKERS {
        let body = provision_body(MARIADB, MARIADB_10G);
        let r = c.call_on(i, Method::PUT, &put_path(&id), Some(body)).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    }
    assert_eq!(c.sim.count(CREATED), 1);
    assert_eq!(c.sim.appliances().len(), 1);
}

#[cfg_attr(
    not(feature = "services"),
    ignore = "needs moto, the DynamoDB emulator: run scripts/test.sh"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_different_provisions_of_one_id_accept_one_and_refuse_the_rest() {
    let c = Cluster::start("differentprovisions", BROKERS, |_| {}).await;
    let id = new_id("differ");
    let replies = all_at_once(10, |i| {
        let (c, path) = (c.clone(), put_path(&id));
        async move {
            // Ten distinct requests: five plans, each with two addresses.
            let mut body = provision_body(MARIADB, MARIADB_PLANS[i % 5]);
            body["parameters"]["ipaddress"] = json!(format!("192.168.0.{}", 11 + i / 5));
            let r = c.call_on(i, Method::PUT, &path, Some(body.clone())).await;
            (r, body)
        }
    })
    .await;
    let accepted: Vec<&(Reply, Value)> = replies
        .iter()
        .filter(|(r, _)| r.status == StatusCode::ACCEPTED)
        .collect();
    assert_eq!(accepted.len(), 1, "exactly one provision accepted");
    for (r, _) in &replies {
        assert!(
            r.status == StatusCode::ACCEPTED
                || (r.status == StatusCode::CONFLICT && r.body["error"] == "Conflict"),
            "unexpected answer {}: {}",
            r.status,
            r.body
        );
    }
    assert_eq!(c.sim.count(CREATED), 1, "one appliance");

    // The instance is the accepted request's, down to its plan and parameters.
    let winner = &accepted[0].1;
    assert_eq!(c.poll(&id).await["state"], "succeeded");
    let got = c
        .call(Method::GET, &format!("/v2/service_instances/{id}"), None)
        .await;
    assert_eq!(got.status, StatusCode::OK, "{}", got.body);
    assert_eq!(got.body["plan_id"], winner["plan_id"]);
    assert_eq!(got.body["parameters"], winner["parameters"]);
    let created = c.sim.last_create().expect("a create call").json();
    let ip = created
        .as_ref()
        .map(|v| v["Appliance"]["Remark"]["Servers"][0]["IPAddress"].clone());
    assert_eq!(ip, Some(winner["parameters"]["ipaddress"].clone()));
}

/// Send `requests(i)` for `i` in `0..senders` and, at the same moment, poll `last_operation` of
/// `id` from `pollers` tasks spread over the brokers, until sender 0 has seen the operation end
/// with `want`. Returns the senders' answers and how many polls were sent.
async fn with_crowd<F>(
    c: &Arc<Cluster>,
    id: &str,
    senders: usize,
    pollers: usize,
    request: F,
    want: &'static str,
) -> (Vec<Reply>, usize)
where
    F: Fn(usize) -> (Method, String, Option<Value>),
{
    let done = Arc::new(AtomicBool::new(false));
    let polls = Arc::new(AtomicUsize::new(0));
    let poll_path = format!("/v2/service_instances/{id}/last_operation");
    let out = all_at_once(senders + pollers, |i| {
        let (c, done, polls, poll_path) =
            (c.clone(), done.clone(), polls.clone(), poll_path.clone());
        let sent = (i < senders).then(|| request(i));
        async move {
            let Some((method, path, body)) = sent else {
                // A poller: until the operation has ended; 404 only before the PUT lands.
                for round in 0.. {
                    if done.load(Ordering::SeqCst) {
                        return None;
                    }
                    let r = c.call_on(i + round, Method::GET, &poll_path, None).await;
                    polls.fetch_add(1, Ordering::SeqCst);
                    assert!(
                        matches!(r.status.as_u16(), 200 | 404),
                        "poll: {} {}",
                        r.status,
                        r.body
                    );
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                unreachable!()
            };
            let reply = c.call_on(i, method, &path, body).await;
            if i == 0 {
                for _ in 0..2000 {
                    let r = c.call_on(i, Method::GET, &poll_path, None).await;
                    polls.fetch_add(1, Ordering::SeqCst);
                    assert_eq!(r.status, StatusCode::OK, "poll: {}", r.body);
                    if r.body["state"] != "in progress" {
                        assert_eq!(r.body["state"], want, "{}", r.body);
                        done.store(true, Ordering::SeqCst);
                        return Some(reply);
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                done.store(true, Ordering::SeqCst);
                panic!("the operation never finished");
            }
            Some(reply)
        }
    })
    .await;
    let replies = out.into_iter().flatten().collect();
    (replies, polls.load(Ordering::SeqCst))
}

#[cfg_attr(
    not(feature = "services"),
    ignore = "needs moto, the DynamoDB emulator: run scripts/test.sh"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crowds_of_pollers_run_each_side_effect_once() {
    let mut sim = simulator_config();
    // Long enough that every step is polled many times by the crowd, and slow side effects, so
    // the crowd polls while each is in flight under its claim.
    sim.timings = Timings {
        migrating: Duration::from_millis(400),
        boot: Duration::from_millis(400),
        cleaning: Duration::from_millis(400),
        ..fast_timings()
    };
    let slow = RouteFaults {
        latency_ms: 300,
        ..RouteFaults::default()
    };
    for route in [
        "POST /appliance",
        "DELETE /appliance/{id}/power",
        "DELETE /appliance/{id}",
    ] {
        sim.faults.routes.insert(route.to_owned(), slow.clone());
    }
    let c = Cluster::start_custom("crowdpolls", BROKERS, sim, |_| {}).await;
    let id = new_id("crowd");

    let put = |_| {
        let body = provision_body(MARIADB, MARIADB_10G);
        (Method::PUT, put_path(&id), Some(body))
    };
    let (replies, polls_up) = with_crowd(&c, &id, 1, 20, put, "succeeded").await;
    assert_eq!(
        replies[0].status,
        StatusCode::ACCEPTED,
        "{}",
        replies[0].body
    );
    assert_eq!(c.sim.count("POST /appliance"), 1, "one create call");
    assert_eq!(c.sim.count(CREATED), 1);

    // Twenty identical DELETEs at once, among the crowd.
    let delete = |_| (Method::DELETE, delete_path(&id), None);
    let (replies, polls_down) = with_crowd(&c, &id, 20, 20, delete, "succeeded").await;
    one_token(&replies, &[]);

    let counters = c.sim.counters();
    let calls = |route: &str| counters.get(route).copied().unwrap_or(0);
    assert_eq!(
        calls("DELETE /appliance/{id}/power"),
        1,
        "one shutdown call: {counters:?}"
    );
    assert_eq!(
        calls("DELETE /appliance/{id}"),
        1,
        "one delete call: {counters:?}"
    );
    assert_eq!(calls(DELETED), 1);
    assert!(c.sim.appliances().is_empty());
    assert_eq!(calls("PUT /appliance/{id}/power"), 0, "nothing booted");

    // What the polls cost, as each broker logged it: a poll that wrote nothing read once.
    let polls: Vec<_> = c
        .request_costs()
        .into_iter()
        .filter(|r| r.method == "GET" && r.path.ends_with("/last_operation"))
        .collect();
    assert_eq!(
        polls.len(),
        polls_up + polls_down,
        "every poll logged its cost"
    );
    let idle = polls.iter().filter(|p| p.writes == 0).count();
    for p in &polls {
        if p.writes == 0 {
            assert_eq!((p.reads, p.queries), (1, 0), "an idle poll: {p:?}");
        }
        assert!(p.reads <= 2 && p.writes <= 2 && p.queries <= 1, "{p:?}");
        // A write that lost its race costs one re-read, and then the poll stops.
        if p.reads == 2 {
            assert_eq!(p.writes, 1, "{p:?}");
        }
    }
    // Claimed side effects run by polls: the configuration applied after boot and the delete,
    // plus the create or the shutdown when a poll claimed it before the request that started
    // the operation did. Each costs one read, the claim and the result.
    let claims: Vec<_> = polls.iter().filter(|p| p.writes == 2).collect();
    assert!((2..=4).contains(&claims.len()), "{claims:?}");
    for p in claims {
        assert_eq!((p.reads, p.queries), (1, 0), "{p:?}");
    }
    let mut histogram = std::collections::BTreeMap::new();
    for p in &polls {
        *histogram.entry((p.reads, p.queries, p.writes)).or_insert(0) += 1;
    }
    println!(
        "{} polls, {idle} idle; (reads, queries, writes) -> polls: {histogram:?}",
        polls.len()
    );
}

#[cfg_attr(
    not(feature = "services"),
    ignore = "needs moto, the DynamoDB emulator: run scripts/test.sh"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_identical_updates_over_three_brokers_apply_once() {
    let c = Cluster::start("identicalupdates", BROKERS, |_| {}).await;
    let id = new_id("patch");
    let reply = c
        .call(
            Method::PUT,
            &put_path(&id),
            Some(provision_body(MARIADB, MARIADB_10G)),
        )
        .await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.body);
    assert_eq!(c.poll(&id).await["state"], "succeeded");
    let writes_before = c.sim.count("PUT /appliance/{id}");

    let update = json!({"service_id": MARIADB, "parameters": {"backupTime": "03:30"}});
    let replies = all_at_once(20, |i| {
        let (c, path, body) = (c.clone(), put_path(&id), update.clone());
        async move { c.call_on(i, Method::PATCH, &path, Some(body)).await }
    })
    .await;
    // Every PATCH is answered 202 with the one operation, whichever broker wrote it first.
    let token = one_token(&replies, &[]);
    assert!(token.starts_with("update-"), "{token}");

    let last = c.poll(&id).await;
    assert_eq!(last["state"], "succeeded", "{last}");
    assert_eq!(
        c.sim.count("PUT /appliance/{id}") - writes_before,
        1,
        "the settings are written once"
    );
}
