//! `DELETE /v2/service_instances/{instance_id}`: start a deprovision (its steps are in
//! `machine/deprovision.rs`). Works on ready, half-created and failed instances alike.

use std::sync::Arc;

use super::records::{InstanceRecord, InstanceState, OpKind, OpState, Operation, Step};
use super::{Broker, Error};
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
    pub async fn deprovision(
        self: &Arc<Self>,
        req: DeprovisionRequest,
    ) -> Result<DeprovisionOutcome, Error> {
        let id = &req.instance_id;
        loop {
            let Some(mut record) = self.instance_or_adopt(id).await? else {
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
            let next = record.starting(
                InstanceState::Deprovisioning,
                Operation::start(
                    OpKind::Deprovision,
                    Step::Shutdown,
                    self.settings.deprovision_timeout,
                    "shutting the appliance down".into(),
                ),
            );
            if !self.commit(&mut record, next).await? {
                continue;
            }
            let operation = record.operation.token.clone();
            tracing::info!(instance_id = %id, %operation, "deprovision started");
            self.step_bounded(&mut record).await?;
            if record.state == InstanceState::Gone {
                // The first step found nothing to delete: done synchronously.
                return Ok(DeprovisionOutcome::Done);
            }
            return Ok(DeprovisionOutcome::InProgress { operation });
        }
    }

    /// Whether a synchronous deprovision can finish at once: no appliance was recorded, no create
    /// may be in flight, and no appliance of this instance carries its name.
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
            Ok(found) => Ok(!found
                .iter()
                .any(|d| super::machine::owns(d, &record.instance_id))),
            Err(_) => Ok(false),
        }
    }
}
