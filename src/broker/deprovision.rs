//! `DELETE /v2/service_instances/{instance_id}` and the deprovision steps: `shutdown`,
//! `wait_down`, `delete`, `wait_gone`. Works on ready, half-created and failed instances alike.

use super::records::{InstanceRecord, InstanceState, OpKind, OpState, Operation, Step};
use super::{Broker, Error, new_token};
use crate::store::now_unix;

#[derive(Debug, Clone)]
pub struct DeprovisionRequest {
    pub instance_id: String,
    pub service_id: String,
    pub plan_id: String,
    pub accepts_incomplete: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum DeprovisionOutcome {
    /// 202: deprovisioning started, or is already running with this token.
    InProgress { operation: String },
    /// 200: nothing existed in SAKURA Cloud; the instance is gone already.
    Done,
}

impl Broker {
    /// `DELETE /v2/service_instances/{instance_id}`: start the deprovision and run its first step.
    /// A running provision is halted: deprovisioning takes over from wherever it got to.
    pub async fn deprovision(&self, req: DeprovisionRequest) -> Result<DeprovisionOutcome, Error> {
        let id = &req.instance_id;
        loop {
            let Some(mut record) = self.repo.instance(id).await? else {
                return Err(Error::Gone(format!("service instance {id} does not exist")));
            };
            if record.state == InstanceState::Gone {
                return Err(Error::Gone(format!(
                    "service instance {id} has already been deprovisioned"
                )));
            }
            if record.service_id != req.service_id || record.plan_id != req.plan_id {
                return Err(Error::BadRequest(format!(
                    "service_id and plan_id do not match service instance {id} (it has service {} and plan {})",
                    record.service_id, record.plan_id
                )));
            }
            let op = &record.operation;
            if op.kind == OpKind::Deprovision && op.state == OpState::InProgress {
                return Ok(DeprovisionOutcome::InProgress {
                    operation: op.token.clone(),
                });
            }
            if op.kind == OpKind::Update && op.state == OpState::InProgress {
                return Err(Error::Concurrency(format!(
                    "service instance {id} is being updated; deprovision it once the update has finished"
                )));
            }
            if !req.accepts_incomplete && !self.nothing_to_delete(&record).await? {
                return Err(Error::AsyncRequired);
            }
            let now = now_unix();
            let mut next = record.clone();
            next.state = InstanceState::Deprovisioning;
            next.operation = Operation {
                token: new_token(OpKind::Deprovision),
                kind: OpKind::Deprovision,
                step: Step::Shutdown,
                state: OpState::InProgress,
                started_at: now,
                deadline: now + self.settings.deprovision_timeout,
                claimed_at: None,
                description: "shutting the appliance down".into(),
                request: None,
                update: None,
            };
            if !self.commit(&mut record, next, None).await? {
                continue;
            }
            let operation = record.operation.token.clone();
            tracing::info!(instance_id = %id, %operation, "deprovision started");
            self.step(&mut record).await?;
            if record.state == InstanceState::Gone {
                // The first step found nothing to delete: done synchronously.
                return Ok(DeprovisionOutcome::Done);
            }
            return Ok(DeprovisionOutcome::InProgress { operation });
        }
    }

    /// `shutdown` / `wait_down`: find the appliance, power it off, wait for `down`, then delete.
    pub(super) async fn step_shutdown(&self, record: &mut InstanceRecord) -> Result<(), Error> {
        let id = match record.appliance_id {
            Some(id) => id,
            None => match self.find_for_deprovision(record).await? {
                Some(id) => id,
                None => return Ok(()),
            },
        };
        let db = match self.read_appliance(record, id).await? {
            None => return Ok(()),
            Some(Err(_)) => {
                return self
                    .finish_gone(record, format!("appliance {id} deleted"))
                    .await;
            }
            Some(Ok(db)) => db,
        };
        if db.availability == "migrating" {
            Self::note(
                record,
                format!("waiting for appliance {id} to finish creating before shutting it down"),
            );
            return Ok(());
        }
        match db.instance_status.as_deref() {
            Some("down") => self.step_delete(record).await,
            // A failed appliance may never have booted: there is nothing to shut down.
            Some("cleaning") | None if db.availability == "failed" => {
                self.step_delete(record).await
            }
            Some("up") if record.operation.step == Step::Shutdown => {
                if !self
                    .claim(
                        record,
                        Step::Shutdown,
                        format!("shutting appliance {id} down"),
                    )
                    .await?
                {
                    return Ok(());
                }
                match self.sakura.shutdown(&record.zone, id, true).await {
                    Ok(()) => self.advance_to(record, Step::WaitDown, format!("waiting for appliance {id} to shut down")).await,
                    Err(e) if e.is_still_creating() => {
                        self.release(record, format!("appliance {id} is still being created; shutting it down once it can be")).await
                    }
                    Err(e) if e.is_conflict() => {
                        self.advance_to(record, Step::WaitDown, format!("waiting for appliance {id} to shut down")).await
                    }
                    Err(e) => self.release(record, format!("shutting appliance {id} down failed ({e}); will retry")).await,
                }
            }
            status => {
                let status = status.unwrap_or("unknown");
                Self::note(
                    record,
                    format!("waiting for appliance {id} to shut down (Instance.Status: {status})"),
                );
                Ok(())
            }
        }
    }

    /// Whether a synchronous deprovision can finish at once: no appliance was recorded, no create
    /// may be in flight, and none carries the instance's name.
    async fn nothing_to_delete(&self, record: &InstanceRecord) -> Result<bool, Error> {
        let create_in_flight = record
            .create_claimed_at
            .is_some_and(|claimed| now_unix() - claimed < self.settings.claim_lease);
        if record.appliance_id.is_some() || create_in_flight {
            return Ok(false);
        }
        match self
            .sakura
            .find_by_exact_name(&record.zone, &record.appliance_name)
            .await
        {
            Ok(found) => Ok(found.is_empty()),
            Err(_) => Ok(false),
        }
    }

    /// No appliance id recorded: look it up by name, after any in-flight create has settled.
    async fn find_for_deprovision(
        &self,
        record: &mut InstanceRecord,
    ) -> Result<Option<u64>, Error> {
        if let Some(claimed) = record.create_claimed_at
            && now_unix() - claimed < self.settings.claim_lease
        {
            Self::note(
                record,
                "waiting for an in-flight create request to settle".into(),
            );
            return Ok(None);
        }
        let name = record.appliance_name.clone();
        match self.sakura.find_by_exact_name(&record.zone, &name).await {
            Ok(found) => match found.into_iter().min_by_key(|d| d.id) {
                Some(db) => {
                    let mut next = record.clone();
                    next.appliance_id = Some(db.id);
                    next.create_claimed_at = None;
                    self.commit(record, next, None).await?;
                    Ok(None)
                }
                None => {
                    self.finish_gone(
                        record,
                        "no appliance had been created; nothing to delete".into(),
                    )
                    .await?;
                    Ok(None)
                }
            },
            Err(e) => {
                Self::note(
                    record,
                    format!("looking up appliance {name} failed ({e}); will retry"),
                );
                Ok(None)
            }
        }
    }

    /// `delete`: claim, `DELETE /appliance/{id}` (404 counts as done), then wait for it to go.
    pub(super) async fn step_delete(&self, record: &mut InstanceRecord) -> Result<(), Error> {
        let Some(id) = record.appliance_id else {
            return self
                .advance_to(record, Step::Shutdown, "looking the appliance up".into())
                .await;
        };
        if !self
            .claim(record, Step::Delete, format!("deleting appliance {id}"))
            .await?
        {
            return Ok(());
        }
        match self.sakura.delete(&record.zone, id).await {
            Ok(()) => {
                self.advance_to(
                    record,
                    Step::WaitGone,
                    format!("waiting for appliance {id} to be deleted"),
                )
                .await
            }
            Err(e) if e.is_not_found() => {
                self.finish_gone(record, format!("appliance {id} deleted"))
                    .await
            }
            Err(e) if e.is_conflict() => {
                let mut next = record.clone();
                next.operation.step = Step::Shutdown;
                next.operation.claimed_at = None;
                next.operation.description =
                    format!("appliance {id} is not down yet ({e}); shutting it down first");
                self.commit(record, next, None).await.map(|_| ())
            }
            Err(e) => {
                self.release(
                    record,
                    format!("deleting appliance {id} failed ({e}); will retry"),
                )
                .await
            }
        }
    }

    /// `wait_gone`: a read answering 404 ends the deprovision.
    pub(super) async fn step_wait_gone(&self, record: &mut InstanceRecord) -> Result<(), Error> {
        let Some(id) = record.appliance_id else {
            return self.finish_gone(record, "appliance deleted".into()).await;
        };
        match self.read_appliance(record, id).await? {
            None => Ok(()),
            Some(Err(_)) => {
                self.finish_gone(record, format!("appliance {id} deleted"))
                    .await
            }
            Some(Ok(_)) => {
                Self::note(record, format!("waiting for appliance {id} to be deleted"));
                Ok(())
            }
        }
    }
}
