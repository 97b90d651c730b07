//! `PATCH /v2/service_instances/{instance_id}`: start an update of the settings SAKURA Cloud can
//! change in place (allowed networks, port, backup, admin password). Its steps (`apply`,
//! `wait_applied`) are the provision's last two, in `machine/provision.rs`.

use serde_json::Value;

use std::sync::Arc;

use super::records::{InstanceRecord, InstanceState, OpKind, OpState, Operation, Step};
use super::{Broker, Error};
use crate::catalog::UpdateParams;

#[derive(Debug, Clone)]
pub struct UpdateRequest {
    pub instance_id: String,
    pub service_id: String,
    pub plan_id: Option<String>,
    pub parameters: Option<Value>,
    pub accepts_incomplete: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum UpdateOutcome {
    /// 202: the update started, or the identical update is still running.
    InProgress { operation: String },
    /// 200: nothing to change.
    Unchanged,
}

impl Broker {
    /// `PATCH /v2/service_instances/{instance_id}`.
    pub async fn update(self: &Arc<Self>, req: UpdateRequest) -> Result<UpdateOutcome, Error> {
        let id = &req.instance_id;
        let Some(mut record) = self
            .instance_or_adopt(id)
            .await?
            .filter(|r| r.state != InstanceState::Gone)
        else {
            return Err(Error::NotFound(format!(
                "service instance {id} does not exist"
            )));
        };
        if record.service_id != req.service_id {
            return Err(Error::BadRequest(format!(
                "service_id {} does not match service instance {id} (it has service {})",
                req.service_id, record.service_id
            )));
        }
        if let Some(plan_id) = req.plan_id.as_deref()
            && plan_id != record.plan_id
        {
            self.catalog
                .plan(&req.service_id, plan_id)
                .map_err(|e| Error::BadRequest(e.to_string()))?;
            return Err(Error::Unprocessable(
                "plan changes are not supported: SAKURA Cloud cannot resize a database appliance in place; provision a new instance with the new plan".into(),
            ));
        }
        let plan = self
            .catalog
            .plan(&record.service_id, &record.plan_id)
            .map_err(|e| {
                Error::internal_from("the stored instance names a plan the catalog lacks", e)
            })?;
        let parameters = self.update_parameters(&record, req.parameters.as_ref())?;
        let update = self
            .catalog
            .validate_update(plan, parameters.as_ref())
            .map_err(|e| Error::BadRequest(e.to_string()))?;
        let op = &record.operation;
        if op.kind == OpKind::Update
            && op.state == OpState::InProgress
            && op.request == req.parameters
        {
            return Ok(UpdateOutcome::InProgress {
                operation: op.token.clone(),
            });
        }
        if op.state == OpState::InProgress {
            return Err(Error::Concurrency(format!(
                "service instance {id} has an operation in progress; update it once that has finished"
            )));
        }
        if record.state != InstanceState::Ready {
            return Err(Error::Unprocessable(format!(
                "service instance {id} is not ready ({:?}); only a ready instance can be updated",
                record.state
            )));
        }
        if self.update_changes_nothing(&record, &update)? {
            self.keep_sent_parameters(&record, req.parameters.as_ref())
                .await?;
            return Ok(UpdateOutcome::Unchanged);
        }
        if !req.accepts_incomplete {
            return Err(Error::AsyncRequired);
        }
        let mut operation = Operation::start(
            OpKind::Update,
            Step::Apply,
            self.settings.update_timeout,
            "applying the new settings".into(),
        );
        operation.request = req.parameters.clone();
        operation.update = Some(update);
        let next = record.starting(InstanceState::Updating, operation);
        if !self.commit(&mut record, next).await? {
            // `record` is re-read: an identical PATCH that won the race is this one's answer.
            let op = &record.operation;
            if op.kind == OpKind::Update
                && op.state == OpState::InProgress
                && op.request == req.parameters
            {
                return Ok(UpdateOutcome::InProgress {
                    operation: op.token.clone(),
                });
            }
            return Err(Error::Concurrency(format!(
                "service instance {id} changed meanwhile; send the update again"
            )));
        }
        let operation = record.operation.token.clone();
        tracing::info!(instance_id = %id, %operation, "update started");
        self.step_bounded(&mut record).await?;
        Ok(UpdateOutcome::InProgress { operation })
    }
}

/// Record the applied settings in the instance's parameters (what GET instance shows).
pub(super) fn merge_into_params(record: &mut InstanceRecord, update: &UpdateParams) {
    let p = &mut record.params;
    if let Some(networks) = &update.allow_networks {
        p.allow_networks = networks.clone();
    }
    p.port = update.port.or(p.port);
    p.backup_time = update.backup_time.clone().or(p.backup_time.take());
    p.backup_rotate = update.backup_rotate.or(p.backup_rotate);
    super::compat::merge_raw_update(&mut record.parameters, record.operation.request.as_ref());
}
