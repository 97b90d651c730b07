//! Deprovision: `shutdown`, `wait_down`, `delete`, `wait_gone`. A shutdown or delete that
//! SAKURA Cloud accepted but ignored is sent again every re-send interval while the appliance
//! shows no effect; a 404 ends nothing by itself.

use super::{Ctx, Effect, Transition, not_visible, unreachable};
use crate::broker::observe::{Availability, Observation, Power, Seen};
use crate::broker::records::{InstanceRecord, Progress, Step};
use crate::sacloud::{self, Database};

pub(super) fn decide(record: &InstanceRecord, obs: Option<&Observation>, ctx: &Ctx) -> Transition {
    let step = record.operation.step;
    let Some(id) = record.appliance_id else {
        return match step {
            Step::Shutdown | Step::WaitDown | Step::Delete => Transition::Effect(
                Effect::FindForDeprovision,
                "looking the appliance up by name".into(),
            ),
            _ => Transition::Gone("appliance deleted".into()),
        };
    };
    if step == Step::Delete {
        return Transition::Effect(Effect::Delete, format!("deleting appliance {id}"));
    }
    let Some(obs) = obs else {
        return Transition::Note(format!("waiting for appliance {id}"));
    };
    let a = match &obs.seen {
        Seen::Unreachable(e) => return Transition::Note(unreachable(id, e)),
        Seen::Gone => return Transition::Gone(format!("appliance {id} deleted")),
        Seen::NotVisible if step == Step::WaitGone => {
            return Transition::Note(format!("waiting for appliance {id} to be deleted"));
        }
        Seen::NotVisible => return Transition::Note(not_visible(id)),
        Seen::Appliance(a) => a,
    };
    if step == Step::WaitGone {
        // Still there after the delete was accepted: send it again once the interval passed.
        if a.power != Power::Up
            && ctx.passed(
                record.operation.progress.sent_at_ms,
                ctx.settings.power_resend,
            )
        {
            return Transition::Effect(
                Effect::Delete,
                format!("deleting appliance {id} again (it is still there)"),
            );
        }
        return Transition::Note(format!("waiting for appliance {id} to be deleted"));
    }
    match (&a.availability, &a.power) {
        (Availability::Migrating | Availability::Other(_), _) => Transition::Note(format!(
            "waiting for appliance {id} to finish creating before shutting it down (Availability: {})",
            a.db.availability
        )),
        (_, Power::Down) | (Availability::Failed, Power::Unknown(_) | Power::Cleaning) => {
            Transition::Effect(Effect::Delete, format!("deleting appliance {id}"))
        }
        (_, Power::Up) => {
            let progress = &record.operation.progress;
            if step == Step::Shutdown || ctx.passed(progress.sent_at_ms, ctx.settings.power_resend)
            {
                let what = if progress.attempts == 0 {
                    format!("shutting appliance {id} down")
                } else {
                    format!(
                        "appliance {id} is still up; sending the shutdown again (attempt {})",
                        progress.attempts + 1
                    )
                };
                Transition::Effect(Effect::Shutdown, what)
            } else {
                Transition::Note(format!(
                    "waiting for appliance {id} to shut down (Instance.Status: up)"
                ))
            }
        }
        (_, power) => Transition::Note(format!(
            "waiting for appliance {id} to shut down (Instance.Status: {})",
            power.word()
        )),
    }
}

/// After `DELETE /appliance/{id}/power`. A 409 to a shutdown means SAKURA already took one
/// (shutting down, or down): the next read decides.
pub fn after_shutdown(
    record: &InstanceRecord,
    id: u64,
    result: Result<(), sacloud::Error>,
    ctx: &Ctx,
) -> InstanceRecord {
    let accepted = |what: String| {
        let mut next = record.advanced(Step::WaitDown, what);
        next.operation.progress = Progress {
            sent_at_ms: Some(ctx.now_ms),
            attempts: record.operation.progress.attempts + 1,
            ..Progress::default()
        };
        next
    };
    match result {
        Ok(()) => accepted(format!("waiting for appliance {id} to shut down")),
        Err(e) if e.is_still_creating() => record.released(format!(
            "appliance {id} is still being created; shutting it down once it can be"
        )),
        Err(e) if e.is_conflict() => accepted(format!(
            "waiting for appliance {id} to shut down (SAKURA Cloud answered {e})"
        )),
        Err(e) => record.released(format!(
            "shutting appliance {id} down failed ({e}); will retry"
        )),
    }
}

/// After `DELETE /appliance/{id}`. A 404 is not proof by itself: `wait_gone` confirms.
pub fn after_delete(
    record: &InstanceRecord,
    id: u64,
    result: Result<(), sacloud::Error>,
    ctx: &Ctx,
) -> InstanceRecord {
    match result {
        Ok(()) => {
            let mut next = record.advanced(
                Step::WaitGone,
                format!("waiting for appliance {id} to be deleted"),
            );
            next.operation.progress = Progress {
                sent_at_ms: Some(ctx.now_ms),
                attempts: record.operation.progress.attempts + 1,
                ..Progress::default()
            };
            next
        }
        Err(e) if e.is_not_found() => record.advanced(
            Step::WaitGone,
            format!("appliance {id} answered 404 to the delete; confirming that it is gone"),
        ),
        Err(e) if e.is_conflict() => record.advanced(
            Step::Shutdown,
            format!("appliance {id} is not down yet ({e}); shutting it down first"),
        ),
        Err(e) => record.released(format!("deleting appliance {id} failed ({e}); will retry")),
    }
}

/// No appliance id was recorded: after a find by exact name, adopt this instance's appliance
/// for deletion, or conclude nothing was created. An appliance of another instance is never
/// touched.
pub fn after_find_for_deprovision(
    record: &InstanceRecord,
    found: &[Database],
    ctx: &Ctx,
) -> Transition {
    let owned = found
        .iter()
        .filter(|d| super::provision::owns(d, &record.instance_id))
        .min_by_key(|d| d.id);
    match owned {
        Some(db) => Transition::write(record.with_appliance(
            db.id,
            ctx.now_ms,
            Step::Shutdown,
            format!("shutting appliance {} down", db.id),
        )),
        None => Transition::Gone("no appliance had been created; nothing to delete".into()),
    }
}
