//! The state machine, as pure functions: given an instance record, what one poll observed and
//! the time, say what happens next. Nothing here does I/O; [`super::run`] performs what these
//! decide. Every step of provision, update and deprovision is in this folder:
//!
//! | operation | steps |
//! |---|---|
//! | provision | `create` → `wait_available` → `wait_up` (booted and engine running) → `apply` (config) → `wait_applied` (settings held, engine running) |
//! | update | `apply` → `wait_applied` |
//! | deprovision | `shutdown` → `wait_down` → `delete` → `wait_gone` |
//!
//! SAKURA Cloud's habits that shape these steps: reads by id may answer 404 for a while after a
//! create; power calls and settings updates right after a boot may be accepted and ignored (so
//! they are re-sent until the appliance shows their effect); an appliance is ready only when its
//! database engine runs; a settings update replaces the whole settings object.

mod deprovision;
mod provision;
pub mod settings;

#[cfg(test)]
mod tests;

use std::time::Duration;

use super::Settings;
use super::observe::Observation;
use super::records::{InstanceRecord, OpKind, OpState, Step};

pub use deprovision::{after_delete, after_find_for_deprovision, after_shutdown};
pub use provision::{
    CreateDecision, after_apply, after_create, decide_create, owner_description, owns,
};

/// The time and policies one decision is made with.
#[derive(Debug, Clone)]
pub struct Ctx<'a> {
    /// Unix seconds.
    pub now: i64,
    /// Unix milliseconds (the same instant).
    pub now_ms: i64,
    pub settings: &'a Settings,
    /// The port the instance's engine listens on unless told otherwise.
    pub default_port: u16,
}

impl Ctx<'_> {
    /// Whether `at_ms` lies at least `span` in the past.
    pub fn passed(&self, at_ms: Option<i64>, span: Duration) -> bool {
        at_ms.is_none_or(|at| self.now_ms - at >= span.as_millis() as i64)
    }

    /// Whether the appliance was learnt so recently that a 404 may only mean "not visible yet".
    pub fn within_grace(&self, record: &InstanceRecord) -> bool {
        !self.passed(record.appliance_since_ms, self.settings.not_visible_grace)
    }
}

/// A side effect on SAKURA Cloud. The step is claimed (a conditional write) before it is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// Find the appliance by its exact name; adopt it if it is this instance's, else create it.
    Create,
    /// No appliance id recorded for a deprovision: find it by name (no claim: only reads).
    FindForDeprovision,
    /// `DELETE /appliance/{id}/power` (force).
    Shutdown,
    /// `DELETE /appliance/{id}`.
    Delete,
    /// Read the settings, `PUT /appliance/{id}` what differs, then `PUT /appliance/{id}/config`.
    Apply,
}

impl Effect {
    /// The step the record is in while the effect is claimed.
    pub fn step(self) -> Step {
        match self {
            Effect::Create => Step::Create,
            Effect::FindForDeprovision | Effect::Shutdown => Step::Shutdown,
            Effect::Delete => Step::Delete,
            Effect::Apply => Step::Apply,
        }
    }
}

/// What a poll does next.
#[derive(Debug, Clone, PartialEq)]
pub enum Transition {
    /// Nothing to store: tell the poller this (an idle poll costs one store read).
    Note(String),
    /// Store this record in place of the one read.
    Write(Box<InstanceRecord>),
    /// Perform a side effect; when the step stays, the step is re-sent (power, delete, apply).
    Effect(Effect, String),
    /// The deprovision is done: tombstone the instance and its bindings.
    Gone(String),
}

impl Transition {
    pub fn write(record: InstanceRecord) -> Transition {
        Transition::Write(Box::new(record))
    }
}

/// What a poll does before it looks at SAKURA Cloud: nothing for a finished operation, `failed`
/// past the deadline, and wait while another process holds the step's claim.
pub fn preflight(record: &InstanceRecord, ctx: &Ctx) -> Option<Transition> {
    let op = &record.operation;
    if op.state != OpState::InProgress || op.step == Step::Done {
        return Some(Transition::Note(op.description.clone()));
    }
    if ctx.now > op.deadline {
        return Some(Transition::write(record.failed(deadline_passed(record))));
    }
    if let Some(claimed) = op.claimed_at
        && ctx.now - claimed < ctx.settings.claim_lease
    {
        // Another request is performing this step's side effect right now.
        return Some(Transition::Note(op.description.clone()));
    }
    None
}

/// Whether the step needs a read of the appliance before deciding.
pub fn needs_read(record: &InstanceRecord) -> bool {
    record.appliance_id.is_some()
        && matches!(
            record.operation.step,
            Step::WaitAvailable
                | Step::WaitUp
                | Step::WaitApplied
                | Step::Shutdown
                | Step::WaitDown
                | Step::WaitGone
        )
}

/// Whether a poll inside the check interval should answer from the record: another poll (in any
/// process) asked SAKURA Cloud about this operation moments ago.
pub fn checked_recently(record: &InstanceRecord, ctx: &Ctx) -> bool {
    let interval = ctx.settings.check_interval;
    !interval.is_zero() && !ctx.passed(record.operation.checked_at_ms, interval)
}

/// Whether the step wants the engine status once the appliance is up.
pub fn needs_engine(record: &InstanceRecord) -> bool {
    matches!(
        record.operation.step,
        Step::WaitAvailable | Step::WaitUp | Step::WaitApplied
    )
}

/// Decide the poll's transition from what it observed (`None` when [`needs_read`] is false).
pub fn decide(record: &InstanceRecord, obs: Option<&Observation>, ctx: &Ctx) -> Transition {
    match record.operation.kind {
        OpKind::Provision | OpKind::Update => provision::decide(record, obs, ctx),
        OpKind::Deprovision => deprovision::decide(record, obs, ctx),
    }
}

fn deadline_passed(record: &InstanceRecord) -> String {
    let op = &record.operation;
    let limit = super::human_duration(op.deadline - op.started_at);
    let (kind, advice) = match op.kind {
        OpKind::Provision => (
            "provision",
            "The appliance may still exist in SAKURA Cloud; deprovision this instance to remove it, then provision again.",
        ),
        OpKind::Update => (
            "update",
            "The instance is still usable; send the update again to retry.",
        ),
        OpKind::Deprovision => (
            "deprovision",
            "Send the deprovision again to retry; check the appliance in the SAKURA Cloud control panel.",
        ),
    };
    format!(
        "{kind} did not finish within {limit}; last seen: {}. {advice}",
        op.description
    )
}

/// "appliance 1122 was created moments ago and is not visible in the API yet".
fn not_visible(id: u64) -> String {
    format!("appliance {id} was created moments ago and SAKURA Cloud does not show it yet; waiting")
}

fn unreachable(id: u64, e: &str) -> String {
    format!("SAKURA Cloud did not answer for appliance {id} ({e}); will retry")
}
