//! `PATCH /v2/service_instances/{instance_id}` and the update steps `apply` and `wait_applied`:
//! settings SAKURA Cloud can change in place (allowed networks, port, backup, admin password).

use serde_json::Value;

use super::records::{InstanceRecord, InstanceState, OpKind, OpState, Operation, Step};
use super::{Broker, Error, new_token, random_alnum};
use crate::catalog::UpdateParams;
use crate::sacloud::{Backup, DatabaseSettings};
use crate::secret::Secret;
use crate::store::now_unix;

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
    pub async fn update(&self, req: UpdateRequest) -> Result<UpdateOutcome, Error> {
        let id = &req.instance_id;
        let Some(mut record) = self
            .repo
            .instance(id)
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
            .map_err(|e| Error::Internal(e.to_string()))?;
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
        let now = now_unix();
        let mut next = record.clone();
        next.state = InstanceState::Updating;
        next.operation = Operation {
            token: new_token(OpKind::Update),
            kind: OpKind::Update,
            step: Step::Apply,
            state: OpState::InProgress,
            started_at: now,
            deadline: now + self.settings.update_timeout,
            claimed_at: None,
            description: "applying the new settings".into(),
            request: req.parameters.clone(),
            update: Some(update),
        };
        if !self.commit(&mut record, next, None).await? {
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
        self.step(&mut record).await?;
        Ok(UpdateOutcome::InProgress { operation })
    }

    /// `apply`: read the settings and their hash, write the new ones, apply them.
    pub(super) async fn step_apply(&self, record: &mut InstanceRecord) -> Result<(), Error> {
        let Some(id) = record.appliance_id else {
            return self
                .fail_op(record, "the instance has no appliance to update".into())
                .await;
        };
        if !self
            .claim(
                record,
                Step::Apply,
                format!("applying new settings to appliance {id}"),
            )
            .await?
        {
            return Ok(());
        }
        let db = match self.sakura.read(&record.zone, id).await {
            Ok(db) => db,
            Err(e) => {
                return self
                    .release(
                        record,
                        format!("reading appliance {id} failed ({e}); will retry"),
                    )
                    .await;
            }
        };
        let Some(hash) = db.settings_hash.clone() else {
            return self
                .release(
                    record,
                    format!("appliance {id} reported no SettingsHash; will re-read"),
                )
                .await;
        };
        let update = record.operation.update.clone().unwrap_or_default();
        let settings = merged_settings(db.settings, &update);
        if let Err(e) = self
            .sakura
            .update_settings(&record.zone, id, &settings, &hash)
            .await
        {
            let why = if e.is_conflict() {
                format!(
                    "the settings of appliance {id} changed meanwhile; re-reading them and applying again"
                )
            } else {
                format!("updating the settings of appliance {id} failed ({e}); will retry")
            };
            return self.release(record, why).await;
        }
        if let Err(e) = self.sakura.apply_config(&record.zone, id).await {
            return self
                .release(
                    record,
                    format!("applying the settings of appliance {id} failed ({e}); will retry"),
                )
                .await;
        }
        self.advance_to(
            record,
            Step::WaitApplied,
            format!("waiting for appliance {id} to run with the new settings"),
        )
        .await
    }

    /// `wait_applied`: the appliance is up again -> ready, with the new settings recorded.
    pub(super) async fn step_wait_applied(&self, record: &mut InstanceRecord) -> Result<(), Error> {
        let Some(id) = record.appliance_id else {
            return self
                .fail_op(record, "the instance has no appliance to update".into())
                .await;
        };
        let db = match self.read_appliance(record, id).await? {
            None => return Ok(()),
            Some(Err(_)) => {
                return self
                    .fail_op(
                        record,
                        format!("appliance {id} disappeared during the update"),
                    )
                    .await;
            }
            Some(Ok(db)) => db,
        };
        if db.availability == "failed" {
            let why = format!(
                "SAKURA Cloud reports appliance {id} as failed while applying the new settings; check it in the SAKURA Cloud control panel, or deprovision the instance"
            );
            return self.fail_op(record, why).await;
        }
        if db.instance_status.as_deref() != Some("up") {
            Self::note(
                record,
                format!("waiting for appliance {id} to run with the new settings"),
            );
            return Ok(());
        }
        let mut next = record.clone();
        if let Some(update) = next.operation.update.take() {
            merge_into_params(&mut next, &update);
        }
        next.state = InstanceState::Ready;
        next.operation.state = OpState::Succeeded;
        next.operation.step = Step::Done;
        next.operation.claimed_at = None;
        next.operation.description = format!("appliance {id} runs with the new settings");
        self.commit(record, next, None).await.map(|_| ())
    }
}

/// The appliance's current settings with the update laid over them.
fn merged_settings(mut settings: DatabaseSettings, update: &UpdateParams) -> DatabaseSettings {
    if let Some(networks) = &update.allow_networks {
        settings.source_networks = networks.iter().map(|n| n.to_string()).collect();
    }
    if let Some(port) = update.port {
        settings.port = Some(port);
    }
    if update.backup_time.is_some() || update.backup_rotate.is_some() {
        let current = settings.backup.take();
        let days = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]
            .map(String::from)
            .to_vec();
        settings.backup = Some(Backup {
            rotate: update
                .backup_rotate
                .or(current.as_ref().map(|b| b.rotate))
                .unwrap_or(8),
            time: update
                .backup_time
                .clone()
                .or(current.as_ref().map(|b| b.time.clone()))
                .unwrap_or_else(|| "00:00".into()),
            day_of_week: current
                .map(|b| b.day_of_week)
                .filter(|d| !d.is_empty())
                .unwrap_or(days),
        });
    }
    if update.rotate_admin_password {
        settings.user_password = Secret::new(random_alnum(24));
    }
    settings
}

/// Record the applied settings in the instance's parameters (what GET instance shows).
fn merge_into_params(record: &mut InstanceRecord, update: &UpdateParams) {
    let p = &mut record.params;
    if let Some(networks) = &update.allow_networks {
        p.allow_networks = networks.clone();
    }
    p.port = update.port.or(p.port);
    p.backup_time = update.backup_time.clone().or(p.backup_time.take());
    p.backup_rotate = update.backup_rotate.or(p.backup_rotate);
    super::compat::merge_raw_update(&mut record.parameters, record.operation.request.as_ref());
}
