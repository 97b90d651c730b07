//! A provisioning storm at small scale over three broker processes on one DynamoDB table
//! (moto): hard polling, a SAKURA budget for the whole deployment, and polls that coalesce.
//! Asserted by counts, not times: SAKURA never above the budget in any second (plus one for the
//! edge between processes' clocks), at most one read per instance per check interval however
//! hard the platform polls, and every lifecycle ends right with one create and one delete.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use axum::http::{Method, StatusCode};
use osb_sacloud::sacloud::simulator::{CREATED, DELETED};
use osb_sacloud::store::counting::Counts;

use crate::support::procs::{Cluster, all_at_once};
use crate::support::*;

const BROKERS: usize = 3;
const INSTANCES: usize = 6;
const BUDGET: u64 = 8;
const POLLERS_PER_INSTANCE: usize = 3;

/// Poll every instance from several clients every 50 ms until each operation has ended;
/// returns how many polls were made.
async fn storm(c: &Arc<Cluster>, ids: &[String], want: &str) -> usize {
    let polls = Arc::new(AtomicUsize::new(0));
    let tasks = ids
        .iter()
        .flat_map(|id| (0..POLLERS_PER_INSTANCE).map(move |p| (id.clone(), p)));
    let done: Vec<Arc<AtomicBool>> = ids
        .iter()
        .map(|_| Arc::new(AtomicBool::new(false)))
        .collect();
    let handles: Vec<_> = tasks
        .map(|(id, p)| {
            let (c, polls) = (c.clone(), polls.clone());
            let flag = done[ids.iter().position(|i| *i == id).unwrap()].clone();
            let want = want.to_owned();
            tokio::spawn(async move {
                let path = format!("/v2/service_instances/{id}/last_operation");
                for round in 0..2400 {
                    if flag.load(Ordering::SeqCst) {
                        return;
                    }
                    let r = c.call_on(p + round, Method::GET, &path, None).await;
                    polls.fetch_add(1, Ordering::SeqCst);
                    assert_eq!(r.status, StatusCode::OK, "{id}: {}", r.body);
                    if r.body["state"] != "in progress" {
                        assert_eq!(r.body["state"], want.as_str(), "{id}: {}", r.body);
                        flag.store(true, Ordering::SeqCst);
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                panic!("{id} never finished");
            })
        })
        .collect();
    for h in handles {
        h.await.expect("poller");
    }
    polls.load(Ordering::SeqCst)
}

#[cfg_attr(
    not(feature = "services"),
    ignore = "needs moto, the DynamoDB emulator: run scripts/test.sh"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_storm_over_three_brokers_keeps_one_budget_and_coalesces_polls() {
    let c = Cluster::start_custom("storm", BROKERS, simulator_config(), |env| {
        env.insert("SAKURACLOUD_RATE_LIMIT".into(), BUDGET.to_string());
        env.insert("OSB_CHECK_INTERVAL_SECS".into(), "1".into());
        env.insert("OSB_ANSWER_WITHIN_SECS".into(), "0.5".into());
    })
    .await;
    let ids: Vec<String> = (0..INSTANCES).map(|_| new_id("storm")).collect();
    let replies = all_at_once(INSTANCES, |i| {
        let (c, id) = (c.clone(), ids[i].clone());
        async move {
            let path = format!("/v2/service_instances/{id}?accepts_incomplete=true");
            c.call_on(
                i,
                Method::PUT,
                &path,
                Some(provision_body(MARIADB, MARIADB_10G)),
            )
            .await
        }
    })
    .await;
    for r in &replies {
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    }
    let started = std::time::Instant::now();
    let polls_up = storm(&c, &ids, "succeeded").await;
    let reads = c.sim.count("GET /appliance/{id}");
    let secs = started.elapsed().as_secs() + 1;
    // However hard the platform polls, SAKURA sees at most one read per instance per second
    // (plus the reads inside the steps that make a call: apply reads before it writes).
    assert!(
        reads <= (INSTANCES as u64) * (secs + 3),
        "{reads} reads of {INSTANCES} instances in {secs} s"
    );
    assert!(
        (polls_up as u64) > 3 * reads,
        "most polls answer from the record: {polls_up} polls, {reads} reads"
    );

    all_at_once(INSTANCES, |i| {
        let (c, id) = (c.clone(), ids[i].clone());
        async move {
            let path = format!(
                "/v2/service_instances/{id}?accepts_incomplete=true&service_id={MARIADB}&plan_id={MARIADB_10G}"
            );
            let r = c.call_on(i, Method::DELETE, &path, None).await;
            assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
        }
    })
    .await;
    storm(&c, &ids, "succeeded").await;

    assert_eq!(
        c.sim.count(CREATED),
        INSTANCES as u64,
        "one create per instance"
    );
    assert_eq!(
        c.sim.count(DELETED),
        INSTANCES as u64,
        "one delete per instance"
    );
    assert!(c.sim.appliances().is_empty());
    let busiest = c.sim.per_second().into_values().max().unwrap_or(0);
    assert!(
        busiest <= BUDGET + 1,
        "SAKURA saw {busiest} calls in one second, over the budget of {BUDGET}: {:?}",
        c.sim.per_second()
    );
    println!(
        "storm: {INSTANCES} instances, {polls_up} polls while provisioning, {reads} reads, busiest second {busiest} calls"
    );
}

#[tokio::test]
async fn a_poll_answers_from_the_record_while_sakura_is_slow() {
    let mut cfg = simulator_config();
    cfg.faults.routes.insert(
        "GET /appliance/{id}".into(),
        osb_sacloud::sacloud::simulator::RouteFaults {
            latency_ms: 3000,
            ..Default::default()
        },
    );
    let h = Harness::start_custom(cfg, |env| {
        env.insert("OSB_ANSWER_WITHIN_SECS".into(), "0.2".into());
    })
    .await;
    let id = new_id("slow");
    h.provision(&id, MARIADB, MARIADB_10G).await;
    let started = std::time::Instant::now();
    let (status, _, body) = h.last_operation(&id).await;
    let waited = started.elapsed();
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["state"], "in progress", "{body}");
    assert_eq!(h.sim.count("GET /appliance/{id}"), 1, "the read was sent");
    assert!(
        waited < Duration::from_millis(2500),
        "answered before SAKURA did (the read takes 3 s): {waited:?}"
    );
}

/// A side effect the budget holds back costs nothing on the next polls of the same slot: no
/// claim written only to be released again, no SAKURA call, no budget count.
#[tokio::test]
async fn an_effect_the_budget_holds_back_is_not_claimed_again_in_its_slot() {
    // Two requests a second, one of them kept for side effects.
    let h = Harness::start_with(|env| {
        env.insert("SAKURACLOUD_RATE_LIMIT".into(), "2".into());
    })
    .await;
    for attempt in 0..5 {
        let started = early_in_a_second().await;
        let first = new_id("budget-a");
        h.provision(&first, MARIADB, MARIADB_10G).await; // its find and create use up the slot
        let held = new_id("budget-b");
        h.provision(&held, MARIADB, MARIADB_10G).await; // its claimed find is refused
        let sent = h.sim.counters().values().sum::<u64>();
        let Some((status, body, before, after)) = poll_in_second(&h, &held, started).await else {
            println!("attempt {attempt}: the second turned; again");
            continue;
        };
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["state"], "in progress", "{body}");
        assert!(
            body["description"]
                .as_str()
                .is_some_and(|d| d.contains("waiting for the SAKURA Cloud request budget")),
            "{body}"
        );
        assert_eq!(
            (after.writes - before.writes, after.budget - before.budget),
            (0, 0),
            "no claim and no budget count for a step that cannot go out"
        );
        assert_eq!(after.reads - before.reads, 1, "one read of the record");
        assert_eq!(h.sim.counters().values().sum::<u64>(), sent, "nothing sent");
        return;
    }
    panic!("no attempt fitted in one second");
}

/// One poll of `id` and the store calls around it, unless the second `started` ended meanwhile.
async fn poll_in_second(
    h: &Harness,
    id: &str,
    started: i64,
) -> Option<(StatusCode, serde_json::Value, Counts, Counts)> {
    let before = h.app.store_calls.snapshot();
    let (status, _, body) = h.last_operation(id).await;
    let after = h.app.store_calls.snapshot();
    (osb_sacloud::store::now_ms() / 1000 == started).then_some((status, body, before, after))
}

/// Wait until the current second is at most 200 ms old, so that what follows fits in its slot.
async fn early_in_a_second() -> i64 {
    while osb_sacloud::store::now_ms() % 1000 > 200 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    osb_sacloud::store::now_ms() / 1000
}

/// A poll whose check is due while the budget is known to be used up writes nothing: no
/// `checking` mark for a read that would not go out, so the first poll of the next slot checks.
#[tokio::test]
async fn a_due_check_the_budget_holds_back_writes_nothing() {
    let h = Harness::start_with(|env| {
        env.insert("SAKURACLOUD_RATE_LIMIT".into(), "2".into());
        env.insert("OSB_CHECK_INTERVAL_SECS".into(), "1".into());
    })
    .await;
    for attempt in 0..5 {
        early_in_a_second().await;
        let waiting = new_id("budget-c");
        h.provision(&waiting, MARIADB, MARIADB_10G).await; // created: its checks come later
        // Two seconds on, its check is due; fill that second's slot first.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let started = early_in_a_second().await;
        h.provision(&new_id("budget-a"), MARIADB, MARIADB_10G).await;
        h.provision(&new_id("budget-b"), MARIADB, MARIADB_10G).await;
        let Some((status, body, before, after)) = poll_in_second(&h, &waiting, started).await
        else {
            println!("attempt {attempt}: the second turned; again");
            continue;
        };
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["state"], "in progress", "{body}");
        assert_eq!(
            (
                after.reads - before.reads,
                after.writes - before.writes,
                after.budget - before.budget
            ),
            (1, 0, 0),
            "one read of the record, nothing else"
        );
        return;
    }
    panic!("no attempt fitted in one second");
}

/// Many creates starting at once under a small budget all go out: a create's find by name
/// starts within the reads' share, so the slot always has room for some creates' second call.
/// Were the finds allowed the whole slot, concurrent creates would spend every slot on finds
/// whose creates are then held back, and none would ever be sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn creates_starting_at_once_under_a_small_budget_all_go_out() {
    let h = Arc::new(
        Harness::start_with(|env| {
            env.insert("SAKURACLOUD_RATE_LIMIT".into(), "5".into());
            env.insert("OSB_CHECK_INTERVAL_SECS".into(), "1".into());
        })
        .await,
    );
    let ids: Vec<String> = (0..12).map(|_| new_id("crowd")).collect();
    let puts = ids.iter().map(|id| {
        let (h, id) = (h.clone(), id.clone());
        tokio::spawn(async move { h.provision(&id, MARIADB, MARIADB_10G).await })
    });
    for put in puts.collect::<Vec<_>>() {
        put.await.expect("provision");
    }
    for round in 0..300 {
        if h.sim.count(CREATED) == ids.len() as u64 {
            break;
        }
        // Every instance polled at once, as platforms do, first one then another.
        let (later, first) = ids.split_at(round % ids.len());
        let polls = first.iter().chain(later).map(|id| {
            let (h, path) = (
                h.clone(),
                format!("/v2/service_instances/{id}/last_operation"),
            );
            tokio::spawn(async move { h.call(Method::GET, &path, None).await })
        });
        for poll in polls.collect::<Vec<_>>() {
            let (status, _, body) = poll.await.expect("poll");
            assert_eq!(status, StatusCode::OK, "{body}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        h.sim.count(CREATED),
        ids.len() as u64,
        "{:?}",
        h.sim.counters()
    );
}
