//! Provision steps: `create` (look up, else create), `wait_available`, `wait_up`.

use super::provision::generated_admin_user;
use super::records::{InstanceRecord, InstanceState, OpState, Step};
use super::{Broker, Error, random_alnum};
use crate::sacloud::{self, Backup, CreateDatabase, Database, DatabaseSettings};
use crate::secret::Secret;

/// Whether SAKURA Cloud answered a create with a definite "no" (nothing was created).
fn definitely_refused(e: &sacloud::Error) -> bool {
    matches!(e, sacloud::Error::Api { status, .. } if (400..500).contains(status) && !matches!(status, 408 | 409 | 423 | 429))
}

impl Broker {
    fn create_request(&self, record: &InstanceRecord) -> Result<CreateDatabase, Error> {
        let plan = self
            .catalog
            .plan(&record.service_id, &record.plan_id)
            .map_err(|e| {
                Error::Internal(format!(
                    "stored instance names a plan the catalog lacks: {e}"
                ))
            })?;
        let p = &record.params;
        let backup = p.backup_time.clone().map(|time| Backup {
            rotate: p.backup_rotate.unwrap_or(8),
            time,
            day_of_week: ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]
                .map(String::from)
                .to_vec(),
        });
        Ok(CreateDatabase {
            name: record.appliance_name.clone(),
            description: format!("osb-sacloud service instance {}", record.instance_id),
            tags: vec!["@osb-sacloud".to_owned()],
            plan_id: plan.sakura_plan_id,
            switch_id: p.switch_id.clone(),
            ip_address: p.ip_address.to_string(),
            network_mask_len: p.mask_len,
            default_route: p.default_route.to_string(),
            engine: plan.engine,
            database_version: p.database_version.clone(),
            settings: DatabaseSettings {
                default_user: p.username.clone().unwrap_or_else(generated_admin_user),
                user_password: Secret::new(random_alnum(24)),
                port: Some(p.port.unwrap_or(plan.engine.default_port())),
                source_networks: p.allow_networks.iter().map(|n| n.to_string()).collect(),
                backup,
            },
        })
    }

    /// `create`: find the appliance by its exact name (healing a lost answer or a crash after
    /// the call), else create it; record its id.
    pub(super) async fn step_create(&self, record: &mut InstanceRecord) -> Result<(), Error> {
        let name = record.appliance_name.clone();
        if !self
            .claim(record, Step::Create, format!("creating appliance {name}"))
            .await?
        {
            return Ok(());
        }
        let found = match self.sakura.find_by_exact_name(&record.zone, &name).await {
            Ok(found) => found,
            Err(e) => {
                return self
                    .release(
                        record,
                        format!("looking up appliance {name} failed ({e}); will retry"),
                    )
                    .await;
            }
        };
        if found.len() > 1 {
            tracing::error!(instance_id = %record.instance_id, count = found.len(), "several appliances carry this instance's name; adopting the oldest");
        }
        let db = match found.into_iter().min_by_key(|d| d.id) {
            Some(db) => {
                tracing::info!(instance_id = %record.instance_id, appliance_id = db.id, "adopting existing appliance");
                db
            }
            None => {
                let request = self.create_request(record)?;
                match self.sakura.create(&record.zone, &request).await {
                    Ok(db) => db,
                    Err(e) if definitely_refused(&e) => {
                        let why = format!(
                            "SAKURA Cloud refused to create the appliance: {e}. Check the instance parameters (switchID, ipaddress, maskLen, defaultRoute, zone), deprovision this instance and provision again"
                        );
                        return self.fail_op(record, why).await;
                    }
                    Err(e) => {
                        let why = format!(
                            "the create request for appliance {name} got no clear answer ({e}); the next poll looks the appliance up by name before creating it"
                        );
                        return self.release(record, why).await;
                    }
                }
            }
        };
        let mut next = record.clone();
        next.appliance_id = Some(db.id);
        next.create_claimed_at = None;
        next.operation.step = Step::WaitAvailable;
        next.operation.claimed_at = None;
        next.operation.description = format!("waiting for appliance {} to become available", db.id);
        if !self.commit(record, next, None).await? {
            // Lost a race (a DELETE took over): still record what exists, so the deprovision
            // deletes it at once instead of waiting out the create claim.
            self.record_appliance_id(record, db.id).await?;
        }
        Ok(())
    }

    /// Note an appliance id on whatever the record now is, unless it already has one.
    async fn record_appliance_id(&self, record: &mut InstanceRecord, id: u64) -> Result<(), Error> {
        for _ in 0..5 {
            if record.appliance_id.is_some() || record.state == InstanceState::Gone {
                return Ok(());
            }
            let mut next = record.clone();
            next.appliance_id = Some(id);
            next.create_claimed_at = None;
            if self.commit(record, next, None).await? {
                return Ok(());
            }
        }
        Ok(())
    }

    /// The appliance this provision created, read now; `None` when the poll has nothing more to
    /// do: no appliance id yet (back to `create`), a read that failed (the next poll retries), or
    /// an appliance that vanished (the operation fails).
    async fn created_appliance(
        &self,
        record: &mut InstanceRecord,
    ) -> Result<Option<Database>, Error> {
        let Some(id) = record.appliance_id else {
            self.advance_to(
                record,
                Step::Create,
                "looking the appliance up again".into(),
            )
            .await?;
            return Ok(None);
        };
        match self.read_appliance(record, id).await? {
            None => Ok(None),
            Some(Err(_)) => {
                self.fail_op(record, disappeared(id)).await?;
                Ok(None)
            }
            Some(Ok(db)) => Ok(Some(db)),
        }
    }

    /// `wait_available`: `migrating` until `available` (or `failed`).
    pub(super) async fn step_wait_available(
        &self,
        record: &mut InstanceRecord,
    ) -> Result<(), Error> {
        let Some(db) = self.created_appliance(record).await? else {
            return Ok(());
        };
        let id = db.id;
        match db.availability.as_str() {
            "available" => {
                if db.instance_status.as_deref() == Some("up") {
                    return self.finish_if_running(record, &db).await;
                }
                self.advance_to(
                    record,
                    Step::WaitUp,
                    format!("waiting for appliance {id} to boot"),
                )
                .await
            }
            "failed" => self.fail_op(record, failed_appliance(id)).await,
            other => {
                Self::note(
                    record,
                    format!(
                        "waiting for appliance {id} to become available (Availability: {other})"
                    ),
                );
                Ok(())
            }
        }
    }

    /// `wait_up`: `Instance.Status` `up` and the database running -> ready.
    pub(super) async fn step_wait_up(&self, record: &mut InstanceRecord) -> Result<(), Error> {
        let Some(db) = self.created_appliance(record).await? else {
            return Ok(());
        };
        let id = db.id;
        if db.availability == "failed" {
            return self.fail_op(record, failed_appliance(id)).await;
        }
        if db.instance_status.as_deref() == Some("up") {
            return self.finish_if_running(record, &db).await;
        }
        let status = db.instance_status.as_deref().unwrap_or("unknown");
        Self::note(
            record,
            format!("waiting for appliance {id} to boot (Instance.Status: {status})"),
        );
        Ok(())
    }

    async fn finish_if_running(
        &self,
        record: &mut InstanceRecord,
        db: &Database,
    ) -> Result<(), Error> {
        let id = db.id;
        match self.sakura.status(&record.zone, id).await {
            Ok(s) if s.db_running || s.status.as_deref() == Some("up") => {
                let mut next = record.clone();
                next.state = InstanceState::Ready;
                next.operation.state = OpState::Succeeded;
                next.operation.step = Step::Done;
                next.operation.claimed_at = None;
                next.operation.description =
                    format!("appliance {id} is up and its database is running");
                let committed = self.commit(record, next, None).await?;
                if committed {
                    tracing::info!(instance_id = %record.instance_id, appliance_id = id, "provision finished");
                }
                Ok(())
            }
            Ok(_) => {
                Self::note(
                    record,
                    format!("appliance {id} is up; waiting for its database to start"),
                );
                Ok(())
            }
            Err(e) => {
                Self::note(
                    record,
                    format!("appliance {id} is up; its database status could not be read ({e})"),
                );
                Ok(())
            }
        }
    }
}

fn disappeared(id: u64) -> String {
    format!(
        "appliance {id} disappeared from SAKURA Cloud while it was being provisioned (someone deleted it?); deprovision this instance and provision again"
    )
}

fn failed_appliance(id: u64) -> String {
    format!(
        "SAKURA Cloud reports appliance {id} as failed (Availability: failed); deprovision this instance to remove it, then provision again"
    )
}
