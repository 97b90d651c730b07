//! Provision and update: `create`, `wait_available`, `wait_up`, `apply`, `wait_applied`.

use super::settings::{differences, wanted};
use super::{Ctx, Effect, Transition, not_visible, unreachable};
use crate::broker::observe::{Availability, Engine, Observation, Power, Seen};
use crate::broker::records::{InstanceRecord, OpKind, Progress, Step};
use crate::sacloud::{self, Database};

pub(super) fn decide(record: &InstanceRecord, obs: Option<&Observation>, ctx: &Ctx) -> Transition {
    let step = record.operation.step;
    match step {
        Step::Create => Transition::Effect(
            Effect::Create,
            format!("creating appliance {}", record.appliance_name),
        ),
        Step::Apply => match record.appliance_id {
            Some(id) => Transition::Effect(
                Effect::Apply,
                format!("applying the settings of appliance {id}"),
            ),
            None => {
                Transition::write(record.failed("the instance has no appliance to update".into()))
            }
        },
        Step::WaitAvailable | Step::WaitUp | Step::WaitApplied => {
            match (record.appliance_id, obs) {
                (Some(id), Some(obs)) => wait(record, id, obs, ctx),
                _ => Transition::write(
                    record.advanced(Step::Create, "looking the appliance up again".into()),
                ),
            }
        }
        // Steps of a deprovision never stand in a provision or update record.
        other => Transition::Note(format!("nothing to do in step {other:?}")),
    }
}

/// The waiting steps: one read (and the engine status once the appliance is up).
fn wait(record: &InstanceRecord, id: u64, obs: &Observation, ctx: &Ctx) -> Transition {
    let step = record.operation.step;
    let a = match &obs.seen {
        Seen::Unreachable(e) => return Transition::Note(unreachable(id, e)),
        Seen::NotVisible => return Transition::Note(not_visible(id)),
        Seen::Gone => return Transition::write(record.failed(disappeared(record, id))),
        Seen::Appliance(a) => a,
    };
    match (&a.availability, &a.power) {
        (Availability::Failed, _) => Transition::write(record.failed(failed_appliance(record, id))),
        (Availability::Migrating | Availability::Other(_), _) => {
            let word = a.db.availability.as_str();
            Transition::Note(format!(
                "waiting for appliance {id} to become available (Availability: {word})"
            ))
        }
        (Availability::Available, Power::Up) => match step {
            Step::WaitApplied => converge(record, id, a, obs.engine.as_ref(), ctx),
            _ => match obs.engine.as_ref() {
                Some(Ok(Engine::Running)) => Transition::write(record.advanced(
                    Step::Apply,
                    format!("appliance {id} is up and its database is running; applying its configuration"),
                )),
                Some(Ok(Engine::NotRunning(word))) => Transition::Note(format!(
                    "appliance {id} is up; waiting for its database to start (status: {word})"
                )),
                Some(Err(e)) => Transition::Note(format!(
                    "appliance {id} is up; its database status could not be read ({e}); will retry"
                )),
                None => Transition::Note(format!("appliance {id} is up")),
            },
        },
        (Availability::Available, power) => {
            let what = format!("waiting for appliance {id} to boot (Instance.Status: {})", power.word());
            if step == Step::WaitAvailable {
                Transition::write(record.advanced(Step::WaitUp, what))
            } else {
                Transition::Note(what)
            }
        }
    }
}

/// `wait_applied`: the appliance must hold every wanted setting and run its engine. Settings it
/// does not hold are applied again once the re-apply interval has passed since the last try.
fn converge(
    record: &InstanceRecord,
    id: u64,
    a: &crate::broker::observe::Appliance,
    engine: Option<&Result<Engine, String>>,
    ctx: &Ctx,
) -> Transition {
    let missing = differences(&wanted(record, ctx.default_port), &a.db);
    if !missing.is_empty() {
        let progress = &record.operation.progress;
        let list = missing.join(", ");
        if ctx.passed(progress.sent_at_ms, ctx.settings.reapply_after) {
            let mut next = record.advanced(
                Step::Apply,
                format!(
                    "appliance {id} does not hold its settings yet ({list}); applying them again"
                ),
            );
            next.operation.progress.attempts = progress.attempts;
            return Transition::write(next);
        }
        return Transition::Note(format!(
            "waiting for appliance {id} to take its settings ({list} not yet held)"
        ));
    }
    match engine {
        Some(Ok(Engine::Running)) => {
            let what = match record.operation.kind {
                OpKind::Update => format!("appliance {id} runs with the new settings"),
                _ => format!("appliance {id} is up and its database is running"),
            };
            Transition::write(record.settled(what))
        }
        Some(Ok(Engine::NotRunning(word))) => Transition::Note(format!(
            "appliance {id} holds its settings; waiting for its database to run (status: {word})"
        )),
        Some(Err(e)) => Transition::Note(format!(
            "appliance {id} holds its settings; its database status could not be read ({e}); will retry"
        )),
        None => Transition::Note(format!("appliance {id} holds its settings")),
    }
}

/// What the `create` step does once it has looked the appliance up by its exact name.
#[derive(Debug, Clone, PartialEq)]
pub enum CreateDecision {
    /// Store this (adopted, or the operation ended).
    Write(Box<InstanceRecord>),
    /// Give the claim back and wait (a retry is not due yet).
    Wait(String),
    /// Nothing carries the name: send `POST /appliance`.
    Post,
}

/// Decide from the appliances a find by exact name returned. Only an appliance whose
/// description names this very instance is adopted: a name can be chosen by whoever picks the
/// instance id, the owner mark cannot.
pub fn decide_create(record: &InstanceRecord, found: &[Database], ctx: &Ctx) -> CreateDecision {
    let owned = found
        .iter()
        .filter(|d| owns(d, &record.instance_id))
        .min_by_key(|d| d.id);
    if let Some(db) = owned {
        return CreateDecision::Write(Box::new(record.with_appliance(
            db.id,
            ctx.now_ms,
            Step::WaitAvailable,
            format!("waiting for appliance {} to become available", db.id),
        )));
    }
    // The find by name shows no appliance of this instance: whatever was sent before made none.
    let record = &InstanceRecord {
        may_have_appliance: false,
        ..record.clone()
    };
    if let Some(other) = found.first() {
        return CreateDecision::Write(Box::new(record.failed(format!(
            "an appliance named {} (id {}) already exists in zone {} and does not belong to this service instance; it was left alone. Provision with another instance id",
            record.appliance_name, other.id, record.zone
        ))));
    }
    let progress = &record.operation.progress;
    if progress.attempts >= ctx.settings.create_attempts {
        let last = progress.last_error.as_deref().unwrap_or("no answer");
        return CreateDecision::Write(Box::new(record.failed(format!(
            "SAKURA Cloud did not create appliance {} after {} attempts (last answer: {last}); deprovision this instance, then provision again",
            record.appliance_name, progress.attempts
        ))));
    }
    if progress.attempts > 0 && !ctx.passed(progress.sent_at_ms, ctx.settings.create_retry_after) {
        return CreateDecision::Wait(format!(
            "the last create request for appliance {} got no clear answer and no appliance carries its name yet; trying again shortly",
            record.appliance_name
        ));
    }
    CreateDecision::Post
}

/// After `POST /appliance`: record the new appliance; end `failed` on a definite refusal;
/// otherwise count the attempt (the appliance may exist: the next poll looks it up first).
pub fn after_create(
    record: &InstanceRecord,
    result: Result<Database, sacloud::Error>,
    ctx: &Ctx,
) -> InstanceRecord {
    match result {
        Ok(db) => record.with_appliance(
            db.id,
            ctx.now_ms,
            Step::WaitAvailable,
            format!("waiting for appliance {} to become available", db.id),
        ),
        // Never sent: not an attempt, nothing can exist.
        Err(e) if e.is_throttled() => {
            let mut next = record.released(format!(
                "waiting for the SAKURA Cloud request budget to create appliance {}",
                record.appliance_name
            ));
            next.may_have_appliance = record.operation.progress.attempts > 0;
            next
        }
        Err(e) if definitely_refused(&e) => {
            let mut next = record.failed(format!(
                "SAKURA Cloud refused to create the appliance: {e}. Check the instance parameters (switchID, ipaddress, maskLen, defaultRoute, zone, databaseVersion), deprovision this instance and provision again"
            ));
            // A find by name showed nothing before this create, and the create made nothing.
            next.may_have_appliance = false;
            next
        }
        Err(e) => {
            let progress = Progress {
                sent_at_ms: Some(ctx.now_ms),
                attempts: record.operation.progress.attempts + 1,
                last_error: Some(e.to_string()),
                ambiguous: true,
                password_sha256: None,
            };
            let mut next = record.sent(
                progress,
                format!(
                    "the create request for appliance {} got no clear answer ({e}); the next poll looks the appliance up by name before creating it",
                    record.appliance_name
                ),
            );
            // The appliance may exist although the answer said otherwise: a deprovision must
            // wait out the claim lease before it may conclude that nothing was created.
            next.create_claimed_at = record.create_claimed_at;
            next
        }
    }
}

/// After the `apply` effect: `Ok(password hash)` when the settings (and config) were sent.
pub fn after_apply(
    record: &InstanceRecord,
    id: u64,
    result: Result<Option<String>, String>,
    ctx: &Ctx,
) -> InstanceRecord {
    match result {
        Ok(password_sha256) => {
            let attempts = record.operation.progress.attempts + 1;
            let mut next = record.advanced(
                Step::WaitApplied,
                format!("waiting for appliance {id} to run with its settings"),
            );
            next.operation.progress = Progress {
                sent_at_ms: Some(ctx.now_ms),
                attempts,
                password_sha256: password_sha256
                    .or_else(|| record.operation.progress.password_sha256.clone()),
                ..Progress::default()
            };
            next
        }
        Err(why) => record.released(why),
    }
}

/// Whether the appliance carries this instance's owner mark: its description's first line
/// names the id, and it carries the broker's marker tag.
pub fn owns(db: &Database, instance_id: &str) -> bool {
    db.description.lines().next() == Some(owner_description(instance_id).as_str())
        && db.tags.iter().any(|t| t == crate::broker::owner::MARKER)
}

/// The first line of the description every appliance the broker manages carries.
pub fn owner_description(instance_id: &str) -> String {
    crate::broker::owner::owner_line(instance_id)
}

/// Whether SAKURA Cloud answered a create with a definite "no" (nothing was created).
fn definitely_refused(e: &sacloud::Error) -> bool {
    matches!(e, sacloud::Error::Api { status, .. } if (400..500).contains(status) && !matches!(status, 408 | 409 | 423 | 429))
}

fn disappeared(record: &InstanceRecord, id: u64) -> String {
    match record.operation.kind {
        OpKind::Update => format!("appliance {id} disappeared during the update"),
        _ => format!(
            "appliance {id} no longer exists in SAKURA Cloud (neither a read by id nor a find by name shows it; someone deleted it?); deprovision this instance and provision again"
        ),
    }
}

fn failed_appliance(record: &InstanceRecord, id: u64) -> String {
    match record.operation.kind {
        OpKind::Update => format!(
            "SAKURA Cloud reports appliance {id} as failed while applying the new settings; check it in the SAKURA Cloud control panel, or deprovision the instance"
        ),
        _ => format!(
            "SAKURA Cloud reports appliance {id} as failed (Availability: failed); deprovision this instance to remove it, then provision again"
        ),
    }
}
