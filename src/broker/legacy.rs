//! A way in for the instances of the 2018 broker (open-service-broker-sacloud), which kept no
//! state: it named each appliance after the raw instance id and tagged it
//! `@open-service-broker-sacloud`. Its catalog ids are this broker's, so a platform can point
//! the registered broker at osb-sacloud; the instances it made are then adopted on first use
//! (`OSB_ADOPT_LEGACY=1`), or one by one with `osb-sacloud adopt`.
//!
//! Only an appliance whose name is exactly the instance id and that carries the 2018 tag is
//! adopted, and only for an id the broker has no record of (a tombstone counts as a record: an
//! instance this broker deprovisioned is never brought back). Adoption writes the record (a
//! conditional put, so two processes adopting at once agree), with the parameters read back from
//! the appliance, then adds the owner description and tags to the appliance.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use serde_json::Value;

use super::owner::{self, LEGACY_MARKER, MARKER, MAX_TAGS};
use super::records::{InstanceRecord, InstanceState, OpKind, OpState, Operation, Step};
use super::{Broker, Error};
use crate::catalog::ProvisionParams;
use crate::sacloud::Database;
use crate::store::now_unix;

/// What an adoption found.
#[derive(Debug, Clone, PartialEq)]
pub enum AdoptOutcome {
    /// The appliance was adopted now.
    Adopted(Box<InstanceRecord>),
    /// The broker already has a record of the instance (nothing was changed).
    Known(Box<InstanceRecord>),
    /// No appliance of the 2018 broker carries this name.
    NotFound,
}

/// SAKURA's longest appliance name: a longer id cannot name a 2018 appliance.
const MAX_NAME: usize = 64;

impl Broker {
    /// The instance's record; without one, and with `OSB_ADOPT_LEGACY`, the 2018 broker's
    /// appliance of that id adopted (looked up in the broker's default zone).
    pub(super) async fn instance_or_adopt(
        &self,
        instance_id: &str,
    ) -> Result<Option<InstanceRecord>, Error> {
        if let Some(record) = self.repo.instance(instance_id).await? {
            return Ok(Some(record));
        }
        self.adopt_missing(instance_id).await
    }

    /// An instance just read as absent: with `OSB_ADOPT_LEGACY`, the 2018 broker's appliance of
    /// that id adopted; without it, nothing (and no further store read).
    pub(super) async fn adopt_missing(
        &self,
        instance_id: &str,
    ) -> Result<Option<InstanceRecord>, Error> {
        if !self.settings.adopt_legacy {
            return Ok(None);
        }
        let zone = self.catalog.default_zone().to_owned();
        Ok(match self.adopt_legacy(&zone, instance_id).await? {
            AdoptOutcome::Adopted(r) | AdoptOutcome::Known(r) => Some(*r),
            AdoptOutcome::NotFound => None,
        })
    }

    /// Adopt the 2018 broker's appliance for `instance_id` in `zone`, if there is one and the
    /// broker has no record of the instance.
    pub async fn adopt_legacy(&self, zone: &str, instance_id: &str) -> Result<AdoptOutcome, Error> {
        if let Some(record) = self.repo.instance(instance_id).await? {
            return Ok(AdoptOutcome::Known(Box::new(record)));
        }
        if instance_id.is_empty() || instance_id.chars().count() > MAX_NAME {
            return Ok(AdoptOutcome::NotFound);
        }
        let found = self
            .sakura
            .find_by_exact_name(zone, instance_id)
            .await
            .map_err(|e| {
                Error::Retry(format!(
                    "looking for an appliance of the 2018 broker named {instance_id} failed ({e}); retry"
                ))
            })?;
        let legacy: Vec<&Database> = found
            .iter()
            .filter(|d| d.tags.iter().any(|t| t == LEGACY_MARKER))
            .collect();
        let db = match legacy.as_slice() {
            [] => return Ok(AdoptOutcome::NotFound),
            [one] => *one,
            many => {
                return Err(Error::Unprocessable(format!(
                    "{} appliances named {instance_id} in zone {zone} carry the 2018 broker's tag ({}); none was adopted. Remove or rename the extra ones in the control panel",
                    many.len(),
                    many.iter()
                        .map(|d| d.id.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
        };
        let mut record = self.adopted_record(zone, instance_id, db)?;
        let lease = self.adoption_lease(&mut record).await?;
        let mut ops = vec![self.repo.put_instance_op(&record, None)?];
        ops.extend(lease);
        if !self.repo.commit(ops).await? {
            // Another request adopted (or recorded) it first.
            return match self.repo.instance(instance_id).await? {
                Some(r) => Ok(AdoptOutcome::Known(Box::new(r))),
                None => Err(Error::Retry(format!(
                    "service instance {instance_id} changed while it was being adopted; retry"
                ))),
            };
        }
        record.version = 1;
        tracing::info!(
            instance_id,
            appliance_id = db.id,
            zone,
            "adopted an appliance of the 2018 broker"
        );
        self.label_adopted(&record, db).await;
        Ok(AdoptOutcome::Adopted(Box::new(record)))
    }

    /// The record of an adopted appliance: ready, its parameters as the appliance has them.
    fn adopted_record(
        &self,
        zone: &str,
        instance_id: &str,
        db: &Database,
    ) -> Result<InstanceRecord, Error> {
        let unreadable = |what: &str| {
            Error::Unprocessable(format!(
                "appliance {} named {instance_id} cannot be adopted: its {what} cannot be read",
                db.id
            ))
        };
        let engine = db.engine.ok_or_else(|| unreadable("engine"))?;
        let sakura_plan = db.plan_id.ok_or_else(|| unreadable("plan"))?;
        let plan = self
            .catalog
            .plans()
            .iter()
            .find(|p| p.engine == engine && p.sakura_plan_id == sakura_plan)
            .ok_or_else(|| unreadable("plan (no plan of the catalog matches it)"))?;
        let ip: Ipv4Addr = db
            .ip_address
            .as_deref()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| unreadable("address"))?;
        let gateway: Ipv4Addr = db
            .default_route
            .as_deref()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| unreadable("gateway"))?;
        let s = &db.settings;
        let params = ProvisionParams {
            switch_id: db
                .switch_id
                .map(|id| id.to_string())
                .ok_or_else(|| unreadable("switch"))?,
            ip_address: ip,
            mask_len: db
                .network_mask_len
                .ok_or_else(|| unreadable("network mask"))?,
            default_route: gateway,
            username: Some(s.default_user.clone()).filter(|u| !u.is_empty()),
            port: s.port,
            allow_networks: s
                .source_networks
                .iter()
                .filter_map(|n| {
                    n.parse::<Ipv4Net>()
                        .ok()
                        .or_else(|| n.parse::<Ipv4Addr>().ok().map(Ipv4Net::from))
                })
                .map(|n| n.trunc())
                .collect(),
            backup_time: s.backup.as_ref().map(|b| b.time.clone()),
            backup_rotate: s.backup.as_ref().map(|b| b.rotate),
            database_version: db.database_version.clone(),
            zone: Some(zone.to_owned()),
        };
        let now = now_unix();
        let mut operation = Operation::start(
            OpKind::Provision,
            Step::Done,
            0,
            format!(
                "adopted appliance {}, made by the 2018 open-service-broker-sacloud",
                db.id
            ),
        );
        operation.state = OpState::Succeeded;
        Ok(InstanceRecord {
            instance_id: instance_id.to_owned(),
            service_id: plan.service_id.clone(),
            plan_id: plan.id.clone(),
            parameters: Value::Object(Default::default()),
            params,
            context: Value::Null,
            state: InstanceState::Ready,
            zone: zone.to_owned(),
            // The 2018 broker's name: reads and finds use it from now on.
            appliance_name: db.name.clone(),
            appliance_id: Some(db.id),
            // Long known: a 404 is confirmed by a find at once, no grace period.
            appliance_since_ms: None,
            create_claimed_at: None,
            operation,
            created_at: now,
            lease: None,
            may_have_appliance: true,
            legacy: true,
            version: 0,
        })
    }

    /// Put the owner description and tags on an adopted appliance, keeping its other tags.
    /// Best effort: the record is what makes the instance usable.
    async fn label_adopted(&self, record: &InstanceRecord, db: &Database) {
        let ours = owner::tags(record);
        let mut tags = vec![MARKER.to_owned()];
        for t in db.tags.iter().chain(ours.iter()) {
            if !tags.contains(t) {
                tags.push(t.clone());
            }
        }
        tags.truncate(MAX_TAGS);
        let description = owner::description(record);
        if let Err(e) = self
            .sakura
            .update_labels(&record.zone, db.id, &description, &tags)
            .await
        {
            tracing::warn!(instance_id = %record.instance_id, appliance_id = db.id, error = %e, "the adopted appliance's tags and description could not be set");
        }
    }
}
