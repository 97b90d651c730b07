//! Every step against every kind of observation, without SAKURA Cloud or a store: each test
//! builds a record and what a poll saw, and checks the decision.

use std::time::Duration;

use serde_json::json;

use super::*;
use crate::broker::observe::{Appliance, Engine, Observation, Seen};
use crate::broker::records::{InstanceState, Progress};
use crate::sacloud::{self, Backup, Database, DatabaseSettings};
use crate::secret::Secret;

const NOW: i64 = 1_800_000_000;
const NOW_MS: i64 = NOW * 1000;
const ID: u64 = 112233445566;

fn settings() -> Settings {
    Settings {
        not_visible_grace: Duration::from_secs(300),
        power_resend: Duration::from_secs(20),
        reapply_after: Duration::from_secs(20),
        create_retry_after: Duration::from_secs(20),
        create_attempts: 3,
        ..Settings::default()
    }
}

fn ctx(s: &Settings) -> Ctx<'_> {
    Ctx {
        now: NOW,
        now_ms: NOW_MS,
        settings: s,
        default_port: 3306,
    }
}

/// An instance record in `kind`/`step`, with an appliance learnt `since_s` seconds ago.
fn record(kind: &str, step: &str, since_s: Option<i64>) -> InstanceRecord {
    let mut r: InstanceRecord = serde_json::from_value(json!({
        "instance_id": "i-1",
        "service_id": "svc",
        "plan_id": "plan",
        "parameters": {"switchID": "112233445566"},
        "params": {"switchID": "112233445566", "ipaddress": "192.168.0.11", "maskLen": 24,
                   "defaultRoute": "192.168.0.1", "port": 3306},
        "state": if kind == "deprovision" { "deprovisioning" } else { "provisioning" },
        "zone": "is1a",
        "appliance_name": "osb-i-1",
        "appliance_id": since_s.map(|_| ID),
        "operation": {"token": "t", "kind": kind, "step": step, "state": "in_progress",
                      "started_at": NOW - 100, "deadline": NOW + 3600, "claimed_at": null,
                      "description": "d"},
        "created_at": NOW - 100,
    }))
    .expect("record");
    r.appliance_since_ms = since_s.map(|s| NOW_MS - s * 1000);
    r
}

fn db(availability: &str, status: Option<&str>) -> Database {
    Database {
        id: ID,
        name: "osb-i-1".into(),
        description: "osb-sacloud service instance i-1".into(),
        tags: vec!["@osb-sacloud".into()],
        availability: availability.into(),
        instance_status: status.map(str::to_owned),
        engine: Some(sacloud::Engine::MariaDb),
        database_version: Some("10.11".into()),
        plan_id: Some(10),
        switch_id: Some(ID),
        ip_address: Some("192.168.0.11".into()),
        network_mask_len: Some(24),
        default_route: Some("192.168.0.1".into()),
        settings: DatabaseSettings {
            default_user: "admin".into(),
            user_password: Secret::new("pw"),
            port: Some(3306),
            source_networks: vec![],
            backup: None,
        },
        settings_doc: Default::default(),
        settings_hash: Some("h".into()),
    }
}

fn seen(d: Database) -> Seen {
    Seen::Appliance(Box::new(Appliance::from_read(d)))
}

fn obs(seen: Seen, engine: Option<Engine>) -> Observation {
    Observation {
        seen,
        engine: engine.map(Ok),
    }
}

fn up_running() -> Observation {
    obs(seen(db("available", Some("up"))), Some(Engine::Running))
}

/// The record a transition writes; panics on anything else.
fn written(t: Transition) -> InstanceRecord {
    match t {
        Transition::Write(r) => *r,
        other => panic!("expected a write, got {other:?}"),
    }
}

fn is_note(t: &Transition) -> bool {
    matches!(t, Transition::Note(_))
}

fn api_error(status: u16, code: &str) -> sacloud::Error {
    sacloud::Error::Api {
        status,
        code: code.into(),
        message: "m".into(),
        serial: "s".into(),
    }
}

// --- preflight ---------------------------------------------------------------------------

#[test]
fn a_poll_past_the_deadline_fails_the_operation() {
    let s = settings();
    let mut r = record("provision", "wait_up", Some(10));
    r.operation.deadline = NOW - 1;
    let next = written(preflight(&r, &ctx(&s)).unwrap());
    assert_eq!(next.operation.state, OpState::Failed);
    assert!(
        next.operation
            .description
            .starts_with("provision did not finish within")
    );
}

#[test]
fn a_fresh_claim_of_another_process_is_waited_for_and_a_stale_one_taken_over() {
    let s = settings();
    let mut r = record("deprovision", "shutdown", Some(10));
    r.operation.claimed_at = Some(NOW - 5);
    assert!(is_note(&preflight(&r, &ctx(&s)).unwrap()));
    r.operation.claimed_at = Some(NOW - s.claim_lease - 1);
    assert!(preflight(&r, &ctx(&s)).is_none());
}

// --- provision: create --------------------------------------------------------------------

#[test]
fn create_adopts_only_an_appliance_that_names_this_instance() {
    let s = settings();
    let r = record("provision", "create", None);
    match decide_create(&r, &[db("migrating", None)], &ctx(&s)) {
        CreateDecision::Write(next) => {
            assert_eq!(next.appliance_id, Some(ID));
            assert_eq!(next.appliance_since_ms, Some(NOW_MS));
            assert_eq!(next.operation.step, Step::WaitAvailable);
        }
        other => panic!("{other:?}"),
    }
    let mut foreign = db("available", Some("up"));
    foreign.description = "osb-sacloud service instance tenant-a.db".into();
    match decide_create(&r, &[foreign], &ctx(&s)) {
        CreateDecision::Write(next) => {
            assert_eq!(next.operation.state, OpState::Failed);
            assert_eq!(next.appliance_id, None, "never adopted");
            assert!(next.operation.description.contains("does not belong"));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn create_wants_the_marker_tag_too_and_a_find_clears_the_unknown_create() {
    let s = settings();
    let mut r = record("provision", "create", None);
    r.may_have_appliance = true;
    // The owner line without the broker's tag: someone copied the description.
    let mut untagged = db("available", Some("up"));
    untagged.tags = vec!["env=dev".into()];
    match decide_create(&r, &[untagged], &ctx(&s)) {
        CreateDecision::Write(next) => {
            assert_eq!(next.operation.state, OpState::Failed);
            assert_eq!(next.appliance_id, None, "never adopted");
            assert!(!next.may_have_appliance, "the find showed none of ours");
        }
        other => panic!("{other:?}"),
    }
    // A definite refusal made nothing; an unclear answer may have.
    let refused = sacloud::Error::Api {
        status: 400,
        code: "bad_request".into(),
        message: "no".into(),
        serial: String::new(),
    };
    assert!(!after_create(&r, Err(refused), &ctx(&s)).may_have_appliance);
    let unclear = sacloud::Error::Api {
        status: 503,
        code: "unavailable".into(),
        message: "busy".into(),
        serial: String::new(),
    };
    assert!(after_create(&r, Err(unclear), &ctx(&s)).may_have_appliance);
}

#[test]
fn create_posts_when_nothing_carries_the_name() {
    let s = settings();
    let r = record("provision", "create", None);
    assert_eq!(decide_create(&r, &[], &ctx(&s)), CreateDecision::Post);
}

#[test]
fn an_unclear_create_is_retried_after_the_interval_and_a_bounded_number_of_times() {
    let s = settings();
    let r = record("provision", "create", None);
    let next = after_create(&r, Err(api_error(503, "service_unavailable")), &ctx(&s));
    assert_eq!(next.operation.progress.attempts, 1);
    assert!(next.operation.progress.ambiguous);
    assert_eq!(next.operation.claimed_at, None);
    assert_eq!(next.operation.state, OpState::InProgress);
    // The next poll, too soon: no second POST.
    assert!(matches!(
        decide_create(&next, &[], &ctx(&s)),
        CreateDecision::Wait(_)
    ));
    // After the interval: POST again.
    let mut later = next.clone();
    later.operation.progress.sent_at_ms = Some(NOW_MS - 21_000);
    assert_eq!(decide_create(&later, &[], &ctx(&s)), CreateDecision::Post);
    // After the last allowed attempt: failed, saying what SAKURA answered.
    later.operation.progress.attempts = 3;
    match decide_create(&later, &[], &ctx(&s)) {
        CreateDecision::Write(done) => {
            assert_eq!(done.operation.state, OpState::Failed);
            assert!(
                done.operation.description.contains("503"),
                "{}",
                done.operation.description
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_409_to_a_create_is_not_final_but_a_400_is() {
    let s = settings();
    let r = record("provision", "create", None);
    let next = after_create(&r, Err(api_error(409, "conflict")), &ctx(&s));
    assert_eq!(next.operation.state, OpState::InProgress);
    let next = after_create(&r, Err(api_error(400, "bad_request")), &ctx(&s));
    assert_eq!(next.operation.state, OpState::Failed);
}

#[test]
fn a_create_held_back_by_the_budget_is_not_an_attempt() {
    let s = settings();
    let mut r = record("provision", "create", None);
    r.create_claimed_at = Some(NOW);
    let next = after_create(&r, Err(sacloud::Error::Throttled), &ctx(&s));
    assert_eq!(next.operation.progress.attempts, 0);
    assert_eq!(
        next.create_claimed_at, None,
        "nothing was sent, nothing to wait out"
    );
    assert_eq!(decide_create(&next, &[], &ctx(&s)), CreateDecision::Post);
}

#[test]
fn a_create_answer_records_the_appliance_and_when_it_was_learnt() {
    let s = settings();
    let r = record("provision", "create", None);
    let next = after_create(&r, Ok(db("migrating", None)), &ctx(&s));
    assert_eq!(next.appliance_id, Some(ID));
    assert_eq!(next.appliance_since_ms, Some(NOW_MS));
    assert_eq!(next.operation.step, Step::WaitAvailable);
}

// --- provision: waiting -------------------------------------------------------------------

#[test]
fn a_404_right_after_create_is_not_visible_yet_never_disappeared() {
    let s = settings();
    for step in ["wait_available", "wait_up", "wait_applied"] {
        let r = record("provision", step, Some(1));
        let t = decide(&r, Some(&obs(Seen::NotVisible, None)), &ctx(&s));
        match t {
            Transition::Note(what) => assert!(what.contains("does not show it yet"), "{what}"),
            other => panic!("{step}: {other:?}"),
        }
    }
}

#[test]
fn a_confirmed_disappearance_fails_the_provision() {
    let s = settings();
    let r = record("provision", "wait_up", Some(1000));
    let next = written(decide(&r, Some(&obs(Seen::Gone, None)), &ctx(&s)));
    assert_eq!(next.operation.state, OpState::Failed);
    assert_eq!(next.state, InstanceState::Failed);
}

#[test]
fn unreachable_and_migrating_are_notes() {
    let s = settings();
    let r = record("provision", "wait_available", Some(1));
    let t = decide(
        &r,
        Some(&obs(Seen::Unreachable("503".into()), None)),
        &ctx(&s),
    );
    assert!(is_note(&t));
    let t = decide(&r, Some(&obs(seen(db("migrating", None)), None)), &ctx(&s));
    assert!(is_note(&t));
}

#[test]
fn available_but_down_moves_to_wait_up_once() {
    let s = settings();
    let r = record("provision", "wait_available", Some(1));
    let o = obs(seen(db("available", Some("down"))), None);
    assert_eq!(
        written(decide(&r, Some(&o), &ctx(&s))).operation.step,
        Step::WaitUp
    );
    let r = record("provision", "wait_up", Some(1));
    assert!(is_note(&decide(&r, Some(&o), &ctx(&s))));
}

#[test]
fn up_is_not_ready_until_the_engine_runs() {
    let s = settings();
    let r = record("provision", "wait_up", Some(1));
    let stopped = obs(
        seen(db("available", Some("up"))),
        Some(Engine::NotRunning("stopped".into())),
    );
    match decide(&r, Some(&stopped), &ctx(&s)) {
        Transition::Note(what) => assert!(what.contains("waiting for its database to start")),
        other => panic!("{other:?}"),
    }
    let next = written(decide(&r, Some(&up_running()), &ctx(&s)));
    assert_eq!(
        next.operation.step,
        Step::Apply,
        "config is applied after boot"
    );
    assert_eq!(next.operation.state, OpState::InProgress);
}

#[test]
fn a_failed_appliance_fails_the_provision() {
    let s = settings();
    let r = record("provision", "wait_available", Some(1));
    let next = written(decide(
        &r,
        Some(&obs(seen(db("failed", None)), None)),
        &ctx(&s),
    ));
    assert_eq!(next.operation.state, OpState::Failed);
}

// --- apply and wait_applied ---------------------------------------------------------------

#[test]
fn apply_is_an_effect_and_its_outcome_waits_for_the_settings() {
    let s = settings();
    let r = record("provision", "apply", Some(1));
    assert!(matches!(
        decide(&r, None, &ctx(&s)),
        Transition::Effect(Effect::Apply, _)
    ));
    let next = after_apply(&r, ID, Ok(None), &ctx(&s));
    assert_eq!(next.operation.step, Step::WaitApplied);
    assert_eq!(next.operation.progress.sent_at_ms, Some(NOW_MS));
    assert_eq!(next.operation.progress.attempts, 1);
    let next = after_apply(&r, ID, Err("read failed".into()), &ctx(&s));
    assert_eq!(next.operation.step, Step::Apply);
    assert_eq!(next.operation.claimed_at, None);
}

fn waiting_applied(kind: &str, sent_s_ago: i64) -> InstanceRecord {
    let mut r = record(kind, "wait_applied", Some(100));
    r.operation.progress = Progress {
        sent_at_ms: Some(NOW_MS - sent_s_ago * 1000),
        attempts: 1,
        ..Progress::default()
    };
    r
}

#[test]
fn settings_held_and_engine_running_succeed() {
    let s = settings();
    let r = waiting_applied("provision", 1);
    let next = written(decide(&r, Some(&up_running()), &ctx(&s)));
    assert_eq!(next.operation.state, OpState::Succeeded);
    assert_eq!(next.state, InstanceState::Ready);
}

#[test]
fn an_ignored_update_is_applied_again_after_the_interval() {
    let s = settings();
    let mut r = waiting_applied("update", 1);
    r.operation.update = Some(crate::catalog::UpdateParams {
        port: Some(3307),
        ..Default::default()
    });
    r.operation.request = Some(json!({"port": 3307}));
    // The appliance still has port 3306: too soon to re-apply, a note.
    match decide(&r, Some(&up_running()), &ctx(&s)) {
        Transition::Note(what) => assert!(what.contains("ServicePort"), "{what}"),
        other => panic!("{other:?}"),
    }
    // After the interval: back to apply, the attempt count kept.
    let mut r = r.clone();
    r.operation.progress.sent_at_ms = Some(NOW_MS - 21_000);
    let next = written(decide(&r, Some(&up_running()), &ctx(&s)));
    assert_eq!(next.operation.step, Step::Apply);
    assert_eq!(next.operation.progress.attempts, 1);
    // Once the appliance holds it: succeeded, and the instance's parameters say so.
    let mut held = db("available", Some("up"));
    held.settings.port = Some(3307);
    let o = obs(seen(held), Some(Engine::Running));
    let next = written(decide(&r, Some(&o), &ctx(&s)));
    assert_eq!(next.operation.state, OpState::Succeeded);
    assert_eq!(next.params.port, Some(3307));
    assert_eq!(next.parameters["port"], 3307);
}

#[test]
fn held_settings_wait_for_the_engine_after_config() {
    let s = settings();
    let r = waiting_applied("provision", 1);
    let o = obs(
        seen(db("available", Some("up"))),
        Some(Engine::NotRunning("stopped".into())),
    );
    assert!(is_note(&decide(&r, Some(&o), &ctx(&s))));
}

#[test]
fn a_rotated_password_must_be_held() {
    let s = settings();
    let mut r = waiting_applied("update", 30);
    r.operation.progress.password_sha256 = Some(settings::sha256_hex("new-password"));
    let next = written(decide(&r, Some(&up_running()), &ctx(&s)));
    assert_eq!(next.operation.step, Step::Apply, "old password still there");
    let mut held = db("available", Some("up"));
    held.settings.user_password = Secret::new("new-password");
    let next = written(decide(
        &r,
        Some(&obs(seen(held), Some(Engine::Running))),
        &ctx(&s),
    ));
    assert_eq!(next.operation.state, OpState::Succeeded);
}

// --- deprovision --------------------------------------------------------------------------

#[test]
fn a_deprovision_never_records_gone_from_a_404_within_the_grace_period() {
    let s = settings();
    for step in ["shutdown", "wait_down"] {
        let r = record("deprovision", step, Some(1));
        let t = decide(&r, Some(&obs(Seen::NotVisible, None)), &ctx(&s));
        assert!(is_note(&t), "{step}: {t:?}");
    }
    let r = record("deprovision", "shutdown", Some(1000));
    let t = decide(&r, Some(&obs(Seen::Gone, None)), &ctx(&s));
    assert!(matches!(t, Transition::Gone(_)));
}

#[test]
fn the_grace_period_runs_from_when_the_appliance_was_learnt() {
    let s = settings();
    let c = ctx(&s);
    assert!(c.within_grace(&record("deprovision", "shutdown", Some(299))));
    assert!(!c.within_grace(&record("deprovision", "shutdown", Some(301))));
    let mut old = record("deprovision", "shutdown", Some(1));
    old.appliance_since_ms = None;
    assert!(
        !c.within_grace(&old),
        "records of older versions learnt it long ago"
    );
}

#[test]
fn shutdown_waits_for_a_migrating_appliance_and_powers_off_an_up_one() {
    let s = settings();
    let r = record("deprovision", "shutdown", Some(1));
    assert!(is_note(&decide(
        &r,
        Some(&obs(seen(db("migrating", None)), None)),
        &ctx(&s)
    )));
    let t = decide(
        &r,
        Some(&obs(seen(db("available", Some("up"))), None)),
        &ctx(&s),
    );
    assert!(matches!(t, Transition::Effect(Effect::Shutdown, _)));
    let t = decide(
        &r,
        Some(&obs(seen(db("available", Some("down"))), None)),
        &ctx(&s),
    );
    assert!(matches!(t, Transition::Effect(Effect::Delete, _)));
    let t = decide(
        &r,
        Some(&obs(seen(db("available", Some("cleaning"))), None)),
        &ctx(&s),
    );
    assert!(is_note(&t));
    let t = decide(&r, Some(&obs(seen(db("failed", None)), None)), &ctx(&s));
    assert!(matches!(t, Transition::Effect(Effect::Delete, _)));
}

#[test]
fn an_ignored_shutdown_is_sent_again_every_interval() {
    let s = settings();
    let r = record("deprovision", "shutdown", Some(1));
    let next = after_shutdown(&r, ID, Ok(()), &ctx(&s));
    assert_eq!(next.operation.step, Step::WaitDown);
    assert_eq!(next.operation.progress.attempts, 1);
    let up = obs(seen(db("available", Some("up"))), None);
    // Still up, too soon to re-send.
    let mut waiting = next.clone();
    waiting.operation.progress.sent_at_ms = Some(NOW_MS - 5_000);
    assert!(is_note(&decide(&waiting, Some(&up), &ctx(&s))));
    // Still up after the interval: send it again.
    waiting.operation.progress.sent_at_ms = Some(NOW_MS - 20_000);
    match decide(&waiting, Some(&up), &ctx(&s)) {
        Transition::Effect(Effect::Shutdown, what) => assert!(what.contains("again"), "{what}"),
        other => panic!("{other:?}"),
    }
    // A 409 to the re-send is SAKURA having one already: accepted.
    let again = after_shutdown(&waiting, ID, Err(api_error(409, "conflict")), &ctx(&s));
    assert_eq!(again.operation.step, Step::WaitDown);
    assert_eq!(again.operation.progress.attempts, 2);
    assert_eq!(again.operation.progress.sent_at_ms, Some(NOW_MS));
}

#[test]
fn shutdown_outcomes() {
    let s = settings();
    let r = record("deprovision", "shutdown", Some(1));
    let n = after_shutdown(&r, ID, Err(api_error(409, "still_creating")), &ctx(&s));
    assert_eq!(
        (n.operation.step, n.operation.claimed_at),
        (Step::Shutdown, None)
    );
    let n = after_shutdown(&r, ID, Err(api_error(503, "x")), &ctx(&s));
    assert_eq!(
        (n.operation.step, n.operation.claimed_at),
        (Step::Shutdown, None)
    );
}

#[test]
fn delete_outcomes_and_a_404_is_confirmed_not_trusted() {
    let s = settings();
    let r = record("deprovision", "delete", Some(100));
    assert!(matches!(
        decide(&r, None, &ctx(&s)),
        Transition::Effect(Effect::Delete, _)
    ));
    assert_eq!(
        after_delete(&r, ID, Ok(()), &ctx(&s)).operation.step,
        Step::WaitGone
    );
    let n = after_delete(&r, ID, Err(api_error(404, "not_found")), &ctx(&s));
    assert_eq!(n.operation.step, Step::WaitGone);
    assert_eq!(n.state, InstanceState::Deprovisioning);
    let n = after_delete(&r, ID, Err(api_error(409, "conflict")), &ctx(&s));
    assert_eq!(n.operation.step, Step::Shutdown);
}

#[test]
fn wait_gone_ends_only_on_confirmation_and_re_sends_an_ignored_delete() {
    let s = settings();
    let mut r = record("deprovision", "wait_gone", Some(100));
    r.operation.progress.sent_at_ms = Some(NOW_MS - 1_000);
    assert!(is_note(&decide(
        &r,
        Some(&obs(Seen::NotVisible, None)),
        &ctx(&s)
    )));
    assert!(matches!(
        decide(&r, Some(&obs(Seen::Gone, None)), &ctx(&s)),
        Transition::Gone(_)
    ));
    let down = obs(seen(db("available", Some("down"))), None);
    assert!(is_note(&decide(&r, Some(&down), &ctx(&s))));
    r.operation.progress.sent_at_ms = Some(NOW_MS - 20_000);
    assert!(matches!(
        decide(&r, Some(&down), &ctx(&s)),
        Transition::Effect(Effect::Delete, _)
    ));
}

#[test]
fn without_an_appliance_id_a_deprovision_finds_by_name_and_never_touches_a_foreign_one() {
    let s = settings();
    let r = record("deprovision", "shutdown", None);
    assert!(matches!(
        decide(&r, None, &ctx(&s)),
        Transition::Effect(Effect::FindForDeprovision, _)
    ));
    let mine = db("available", Some("up"));
    let next = written(after_find_for_deprovision(&r, &[mine], &ctx(&s)));
    assert_eq!(next.appliance_id, Some(ID));
    assert_eq!(next.appliance_since_ms, Some(NOW_MS));
    let mut foreign = db("available", Some("up"));
    foreign.description = "someone else's".into();
    assert!(matches!(
        after_find_for_deprovision(&r, &[foreign], &ctx(&s)),
        Transition::Gone(_)
    ));
}

// --- settings -----------------------------------------------------------------------------

#[test]
fn differences_and_the_change_that_closes_them() {
    let mut r = record("update", "wait_applied", Some(1));
    r.operation.update = Some(crate::catalog::UpdateParams {
        port: Some(3307),
        allow_networks: Some(vec!["10.0.0.0/8".parse().unwrap()]),
        backup_time: Some("01:00".into()),
        ..Default::default()
    });
    let w = settings::wanted(&r, 3306);
    let d = db("available", Some("up"));
    assert_eq!(
        settings::differences(&w, &d),
        vec!["ServicePort", "SourceNetwork", "Backup"]
    );
    let change = settings::change(&w, &d, None);
    assert_eq!(change.port, Some(3307));
    assert_eq!(change.source_networks, Some(vec!["10.0.0.0/8".to_owned()]));
    let backup = change.backup.expect("backup");
    assert_eq!((backup.time.as_str(), backup.rotate), ("01:00", 8));
    assert_eq!(backup.day_of_week.len(), 7);
    let mut held = d.clone();
    held.settings.port = Some(3307);
    held.settings.source_networks = vec!["10.0.0.0/8".into()];
    held.settings.backup = Some(Backup {
        rotate: 8,
        time: "01:00".into(),
        day_of_week: vec!["sun".into()],
    });
    assert!(settings::differences(&w, &held).is_empty());
    assert!(settings::is_empty(&settings::change(&w, &held, None)));
}

#[test]
fn loose_shapes_of_held_settings_still_match() {
    let r = record("provision", "wait_applied", Some(1));
    let w = settings::wanted(&r, 3306);
    let mut d = db("available", Some("up"));
    // No port reported: the engine's default, which is what was asked for.
    d.settings.port = None;
    d.settings.source_networks = vec!["".into()];
    assert!(
        settings::differences(&w, &d).is_empty(),
        "{:?}",
        settings::differences(&w, &d)
    );
}

#[test]
fn allow_all_is_empty_or_the_whole_range() {
    let r = record("provision", "wait_applied", Some(1));
    let w = settings::wanted(&r, 3306);
    let mut d = db("available", Some("up"));
    d.settings.source_networks = vec!["0.0.0.0/0".into()];
    assert!(settings::differences(&w, &d).is_empty());
    d.settings.source_networks = vec!["192.168.0.0/24".into()];
    assert_eq!(settings::differences(&w, &d), vec!["SourceNetwork"]);
}
