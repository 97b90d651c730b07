//! The one place where the state machine meets the world: observe SAKURA Cloud, let
//! [`super::machine`] decide, then perform: claim a step (a conditional write), make the SAKURA
//! call, commit the outcome. A poll runs at most one step; an idle poll writes nothing.

use std::sync::Arc;

use super::machine::{self, CreateDecision, Ctx, Effect, Transition, settings};
use super::observe::{Appliance, Engine, Observation, Seen};
use super::records::{BindingRecord, BindingState, InstanceRecord};
use super::{Broker, Error, random_alnum};
use crate::budget::Priority;
use crate::sacloud::{Backup, CreateDatabase, DatabaseSettings};
use crate::secret::Secret;
use crate::store::{WriteOp, now_ms, now_unix};

/// The most bindings marked gone in one atomic write (DynamoDB takes at most 100 items).
const MAX_BINDINGS_IN_BATCH: usize = 90;
/// Attempts at the final deprovision write before the claim is given back to the next poll.
const FINISH_ATTEMPTS: usize = 3;

impl Broker {
    fn ctx(&self, record: &InstanceRecord) -> Ctx<'_> {
        let default_port = self
            .catalog
            .plan(&record.service_id, &record.plan_id)
            .map(|p| p.engine.default_port())
            .unwrap_or(0);
        Ctx {
            now: now_unix(),
            now_ms: now_ms(),
            settings: &self.settings,
            default_port,
        }
    }

    /// [`Self::step`] on a task of its own, waited for at most `answer_within`: a request never
    /// waits long for SAKURA Cloud. Past the bound the request answers from `record` as read,
    /// while the step carries on (its claim keeps other processes from repeating it).
    pub(super) async fn step_bounded(
        self: &Arc<Self>,
        record: &mut InstanceRecord,
    ) -> Result<(), Error> {
        let me = self.clone();
        let mut working = record.clone();
        let task = tokio::spawn(crate::store::counting::for_this_request(async move {
            let result = me.step(&mut working).await;
            (result, working)
        }));
        match tokio::time::timeout(self.settings.answer_within, task).await {
            Ok(Ok((result, stepped))) => {
                *record = stepped;
                result
            }
            Ok(Err(e)) => Err(Error::internal_from(
                "a step of the state machine failed",
                e,
            )),
            Err(_) => {
                tracing::debug!(instance_id = %record.instance_id, "answering before the step finished");
                Ok(())
            }
        }
    }

    /// Run at most one step of `record`'s operation; `record` ends as stored (re-read if another
    /// process won a race), its description saying what the poll saw.
    pub(super) async fn step(&self, record: &mut InstanceRecord) -> Result<(), Error> {
        if let Some(t) = machine::preflight(record, &self.ctx(record)) {
            return self.perform(record, t).await;
        }
        if !machine::needs_read(record) {
            let t = machine::decide(record, None, &self.ctx(record));
            return self.perform(record, t).await;
        }
        let coalesce = !self.settings.check_interval.is_zero();
        if coalesce {
            if machine::checked_recently(record, &self.ctx(record)) {
                return Ok(());
            }
            // The budget is known to be used up for reads until its slot ends: the read would
            // not go out, so nothing is written; the first poll of the next slot checks.
            if !self.sakura.may_send(Priority::Read) {
                return Ok(());
            }
            // Only the poll that wins this write asks SAKURA; the others answer as stored.
            if !self.commit(record, record.checking(now_ms())).await? {
                return Ok(());
            }
        }
        let obs = self.observe(record).await;
        match machine::decide(record, Some(&obs), &self.ctx(record)) {
            // Keep what was seen for the polls that answer from the record.
            Transition::Note(what) if coalesce && what != record.operation.description => {
                let mut next = record.clone();
                next.operation.description = what.clone();
                if !self.commit(record, next).await? {
                    record.operation.description = what;
                }
                Ok(())
            }
            t => self.perform(record, t).await,
        }
    }

    async fn perform(&self, record: &mut InstanceRecord, t: Transition) -> Result<(), Error> {
        match t {
            Transition::Note(what) => {
                record.operation.description = what;
                Ok(())
            }
            Transition::Write(next) => self.commit(record, *next).await.map(|_| ()),
            Transition::Gone(what) => self.finish_gone(record, what).await,
            Transition::Effect(Effect::FindForDeprovision, _) => {
                self.find_for_deprovision(record).await
            }
            Transition::Effect(effect, what) if !self.sakura.may_send(first_call(effect)) => {
                // The budget is used up for this slot: a claim would only be released again.
                // The next poll takes the step.
                record.operation.description =
                    format!("{what} (waiting for the SAKURA Cloud request budget)");
                Ok(())
            }
            Transition::Effect(effect, what) => {
                let mut claimed = record.claimed(now_unix(), what);
                claimed.operation.step = effect.step();
                if !self.commit(record, claimed).await? {
                    return Ok(());
                }
                match effect {
                    Effect::Create => self.create(record).await,
                    Effect::Shutdown => self.shutdown(record).await,
                    Effect::Delete => self.delete(record).await,
                    Effect::Apply => self.apply(record).await,
                    Effect::FindForDeprovision => Ok(()),
                }
            }
        }
    }

    /// Whether this process's claim on `record` is still fresh enough to make the SAKURA call.
    /// A process frozen after it claimed (a Lambda instance between invocations) must not make
    /// the call once another may have taken the step over: half the lease is the margin.
    fn claim_still_ours(&self, record: &InstanceRecord) -> bool {
        record
            .operation
            .claimed_at
            .is_some_and(|at| now_unix() - at < (self.settings.claim_lease / 2).max(1))
    }

    /// Store `next` in place of `record`. On a lost race, re-read `record` and return false.
    pub(super) async fn commit(
        &self,
        record: &mut InstanceRecord,
        mut next: InstanceRecord,
    ) -> Result<bool, Error> {
        next.version = record.version;
        if self.repo.save_instance(&mut next, None).await? {
            log_transition(record, &next);
            *record = next;
            return Ok(true);
        }
        if let Some(fresh) = self.repo.instance(&record.instance_id).await? {
            *record = fresh;
        }
        Ok(false)
    }

    /// Read the appliance (and the engine status where the step wants it), and turn a 404 into
    /// "not visible yet" or "gone" with the confirmations SAKURA's habits call for.
    async fn observe(&self, record: &InstanceRecord) -> Observation {
        let Some(id) = record.appliance_id else {
            return Observation::only(Seen::Unreachable("no appliance id".into()));
        };
        let zone = &record.zone;
        let seen = match self.sakura.read(zone, id).await {
            Ok(db) => Seen::Appliance(Box::new(Appliance::from_read(db))),
            Err(e) if e.is_not_found() => self.confirm_gone(record, id).await,
            Err(e) => Seen::Unreachable(e.to_string()),
        };
        let engine = match &seen {
            Seen::Appliance(a)
                if machine::needs_engine(record)
                    && a.availability == super::observe::Availability::Available
                    && a.power == super::observe::Power::Up =>
            {
                Some(match self.sakura.status(zone, id).await {
                    Ok(s) => Ok(Engine::from_status(&s)),
                    Err(e) => Err(e.to_string()),
                })
            }
            _ => None,
        };
        Observation { seen, engine }
    }

    /// A read by id answered 404. Right after a create that means nothing; after the grace
    /// period (or once the broker's own delete was accepted) a find by the exact name decides.
    async fn confirm_gone(&self, record: &InstanceRecord, id: u64) -> Seen {
        let ctx = self.ctx(record);
        let deleting = record.operation.step == super::records::Step::WaitGone;
        if !deleting && ctx.within_grace(record) {
            return Seen::NotVisible;
        }
        match self
            .sakura
            .find_by_exact_name(&record.zone, &record.appliance_name)
            .await
        {
            Ok(found) if found.iter().any(|d| d.id == id) => Seen::NotVisible,
            Ok(_) => Seen::Gone,
            Err(e) => Seen::Unreachable(format!("confirming that appliance {id} is gone: {e}")),
        }
    }

    /// `create` (claimed): find by exact name, adopt this instance's appliance, else create it.
    async fn create(&self, record: &mut InstanceRecord) -> Result<(), Error> {
        let name = record.appliance_name.clone();
        let found = match self.sakura.find_by_exact_name(&record.zone, &name).await {
            Ok(found) => found,
            Err(e) => {
                let why = format!("looking up appliance {name} failed ({e}); will retry");
                return self.commit(record, record.released(why)).await.map(|_| ());
            }
        };
        if found.len() > 1 {
            tracing::error!(instance_id = %record.instance_id, count = found.len(), "several appliances carry this instance's name");
        }
        let ctx = self.ctx(record);
        let next = match machine::decide_create(record, &found, &ctx) {
            CreateDecision::Write(next) => *next,
            CreateDecision::Wait(why) => record.released(why),
            CreateDecision::Post if !self.claim_still_ours(record) => return Ok(()),
            CreateDecision::Post => {
                let request = self.create_request(record)?;
                let result = self.sakura.create(&record.zone, &request).await;
                machine::after_create(record, result, &self.ctx(record))
            }
        };
        if !self.commit(record, next.clone()).await?
            && let Some(id) = next.appliance_id
        {
            // Lost a race (a DELETE took over): still record what exists, so the deprovision
            // deletes it at once instead of waiting out the create claim.
            self.record_appliance_id(record, id).await?;
        }
        Ok(())
    }

    fn create_request(&self, record: &InstanceRecord) -> Result<CreateDatabase, Error> {
        let plan = self
            .catalog
            .plan(&record.service_id, &record.plan_id)
            .map_err(|e| {
                Error::internal_from("stored instance names a plan the catalog lacks", e)
            })?;
        let p = &record.params;
        let backup = p.backup_time.clone().map(|time| Backup {
            rotate: p.backup_rotate.unwrap_or(settings::DEFAULT_ROTATE),
            time,
            day_of_week: settings::EVERY_DAY.map(String::from).to_vec(),
        });
        Ok(CreateDatabase {
            name: record.appliance_name.clone(),
            description: super::owner::description(record),
            tags: super::owner::tags(record),
            plan_id: plan.sakura_plan_id,
            switch_id: p.switch_id.clone(),
            ip_address: p.ip_address.to_string(),
            network_mask_len: p.mask_len,
            default_route: p.default_route.to_string(),
            engine: plan.engine,
            database_version: p.database_version.clone(),
            settings: DatabaseSettings {
                default_user: p
                    .username
                    .clone()
                    .unwrap_or_else(super::provision::generated_admin_user),
                user_password: Secret::new(random_alnum(24)),
                port: Some(p.port.unwrap_or(plan.engine.default_port())),
                source_networks: p.allow_networks.iter().map(|n| n.to_string()).collect(),
                backup,
            },
        })
    }

    /// Note an appliance id on whatever the record now is, unless it already has one.
    async fn record_appliance_id(&self, record: &mut InstanceRecord, id: u64) -> Result<(), Error> {
        for _ in 0..5 {
            if record.appliance_id.is_some() || record.state == super::records::InstanceState::Gone
            {
                return Ok(());
            }
            let mut next = record.clone();
            next.appliance_id = Some(id);
            next.appliance_since_ms = Some(now_ms());
            next.create_claimed_at = None;
            if self.commit(record, next).await? {
                return Ok(());
            }
        }
        Ok(())
    }

    /// `shutdown` / `wait_down` (claimed): send the shutdown (again).
    async fn shutdown(&self, record: &mut InstanceRecord) -> Result<(), Error> {
        let Some(id) = record.appliance_id else {
            return Ok(());
        };
        if !self.claim_still_ours(record) {
            return Ok(());
        }
        let result = self.sakura.shutdown(&record.zone, id, true).await;
        let next = machine::after_shutdown(record, id, result, &self.ctx(record));
        self.commit(record, next).await.map(|_| ())
    }

    /// `delete` (claimed): `DELETE /appliance/{id}`.
    async fn delete(&self, record: &mut InstanceRecord) -> Result<(), Error> {
        let Some(id) = record.appliance_id else {
            return Ok(());
        };
        if !self.claim_still_ours(record) {
            return Ok(());
        }
        let result = self.sakura.delete(&record.zone, id).await;
        let next = machine::after_delete(record, id, result, &self.ctx(record));
        self.commit(record, next).await.map(|_| ())
    }

    /// `apply` (claimed): read the whole settings, send back what differs from what the
    /// instance wants (all other members as read: SAKURA replaces the settings wholesale), then
    /// `PUT /config` so the running appliance takes them.
    async fn apply(&self, record: &mut InstanceRecord) -> Result<(), Error> {
        let Some(id) = record.appliance_id else {
            return Ok(());
        };
        let result = self.send_settings(record, id).await;
        let next = machine::after_apply(record, id, result, &self.ctx(record));
        self.commit(record, next).await.map(|_| ())
    }

    async fn send_settings(
        &self,
        record: &InstanceRecord,
        id: u64,
    ) -> Result<Option<String>, String> {
        let zone = &record.zone;
        let db = self
            .sakura
            .read(zone, id)
            .await
            .map_err(|e| format!("reading appliance {id} failed ({e}); will retry"))?;
        if !self.claim_still_ours(record) {
            return Err(format!(
                "the claim on appliance {id} ran out before its settings were sent; will retry"
            ));
        }
        let wanted = settings::wanted(record, self.ctx(record).default_port);
        let wants_rotation = record
            .operation
            .update
            .as_ref()
            .is_some_and(|u| u.rotate_admin_password);
        // A new password once, and again only while the appliance does not hold the last one.
        let rotate = wants_rotation
            && (wanted.password_sha256.is_none()
                || settings::differences(&wanted, &db).contains(&"UserPassword"));
        let password = rotate.then(|| Secret::new(random_alnum(24)));
        let hash = password.as_ref().map(|p| settings::sha256_hex(p.expose()));
        let change = settings::change(&wanted, &db, password);
        if !settings::is_empty(&change) {
            let doc = db.settings_doc.with_change(&change);
            self.sakura
                .update_settings(zone, id, &doc, db.settings_hash.as_deref())
                .await
                .map_err(|e| {
                    if e.is_conflict() {
                        format!("the settings of appliance {id} changed meanwhile; re-reading them and applying again")
                    } else {
                        format!("updating the settings of appliance {id} failed ({e}); will retry")
                    }
                })?;
        }
        self.sakura.apply_config(zone, id).await.map_err(|e| {
            format!("applying the configuration of appliance {id} failed ({e}); will retry")
        })?;
        Ok(hash)
    }

    /// No appliance id recorded for a deprovision: look it up by name, after any in-flight
    /// create has settled.
    async fn find_for_deprovision(&self, record: &mut InstanceRecord) -> Result<(), Error> {
        if let Some(claimed) = record.create_claimed_at
            && now_unix() - claimed < self.settings.claim_lease
        {
            record.operation.description =
                "waiting for an in-flight create request to settle".into();
            return Ok(());
        }
        let name = record.appliance_name.clone();
        match self.sakura.find_by_exact_name(&record.zone, &name).await {
            Ok(found) => {
                let t = machine::after_find_for_deprovision(record, &found, &self.ctx(record));
                Box::pin(self.perform(record, t)).await
            }
            Err(e) => {
                record.operation.description =
                    format!("looking up appliance {name} failed ({e}); will retry");
                Ok(())
            }
        }
    }

    /// Deprovision finished: tombstone the instance and its bindings in one atomic write.
    ///
    /// The write fails when a binding changed since it was read (an unbind finishing). The
    /// instance is then as it was, still claimed by this step: read the bindings again and retry
    /// at once rather than leave the claim to run out its lease. Should bindings keep moving,
    /// the claim is given back and the next poll finishes.
    pub(super) async fn finish_gone(
        &self,
        record: &mut InstanceRecord,
        what: String,
    ) -> Result<(), Error> {
        for _ in 0..FINISH_ATTEMPTS {
            if self.try_finish_gone(record, &what).await? {
                return Ok(());
            }
            match self.repo.instance(&record.instance_id).await? {
                // Only a binding moved: try again with the bindings as they are now.
                Some(fresh) if fresh.version == record.version => {}
                Some(fresh) => {
                    *record = fresh;
                    return Ok(());
                }
                None => return Ok(()),
            }
        }
        let why = "bindings changed while the deprovision was being recorded; will retry".into();
        self.commit(record, record.released(why)).await.map(|_| ())
    }

    /// One attempt of [`Self::finish_gone`]: true when written, false when a write lost a race
    /// (the batches written before it stay: tombstoning a binding twice changes nothing).
    async fn try_finish_gone(
        &self,
        record: &mut InstanceRecord,
        what: &str,
    ) -> Result<bool, Error> {
        let expires = now_unix() + self.settings.tombstone_ttl;
        let mut next = record.gone(what.to_owned());
        next.version = record.version;
        let mut live: Vec<_> = self
            .repo
            .bindings(&record.instance_id)
            .await?
            .into_iter()
            .filter(|b| b.state != BindingState::Gone)
            .collect();
        // More bindings than one atomic write holds: tombstone the surplus first, batch by batch,
        // each batch only while the instance is still as read. The instance is tombstoned last,
        // so no binding outlives it.
        while live.len() > MAX_BINDINGS_IN_BATCH {
            let mut ops = vec![self.repo.check_instance_op(record)];
            for binding in live.drain(..MAX_BINDINGS_IN_BATCH) {
                ops.push(self.tombstone_binding_op(binding, expires)?);
            }
            if !self.repo.commit(ops).await? {
                return Ok(false);
            }
        }
        let mut ops = vec![self.repo.put_instance_op(&next, Some(expires))?];
        // The appliance is gone: its pool address is free again, in the same write.
        ops.extend(self.release_op(record).await?);
        for binding in live {
            ops.push(self.tombstone_binding_op(binding, expires)?);
        }
        if !self.repo.commit(ops).await? {
            return Ok(false);
        }
        next.version += 1;
        *record = next;
        tracing::info!(instance_id = %record.instance_id, "deprovision finished");
        Ok(true)
    }

    /// The write that tombstones `binding` (its password dropped) until `expires`.
    fn tombstone_binding_op(
        &self,
        mut binding: BindingRecord,
        expires: i64,
    ) -> Result<WriteOp, Error> {
        binding.state = BindingState::Gone;
        binding.credential.forget_password();
        self.repo.put_binding_op(&binding, Some(expires))
    }
}

/// The budget share of an effect's first SAKURA call. An effect that starts with a read (a
/// create's find by name, the settings read before they are sent back) starts within the reads'
/// share; its later calls, and a shutdown or delete, may use the whole slot. So an effect under
/// way is finished before new ones start, and many effects starting at once cannot use up every
/// slot on first calls whose second calls then never go out.
fn first_call(effect: Effect) -> Priority {
    match effect {
        Effect::Create | Effect::Apply | Effect::FindForDeprovision => Priority::Read,
        Effect::Shutdown | Effect::Delete => Priority::Effect,
    }
}

/// Log what changed: a new step at debug, an operation's end at info (or warn when failed).
fn log_transition(before: &InstanceRecord, after: &InstanceRecord) {
    use super::records::OpState;
    let (b, a) = (&before.operation, &after.operation);
    if a.state == OpState::Failed && b.state != OpState::Failed {
        tracing::warn!(instance_id = %after.instance_id, kind = ?a.kind, "operation failed: {}", a.description);
    } else if a.state == OpState::Succeeded && b.state != OpState::Succeeded {
        tracing::info!(instance_id = %after.instance_id, kind = ?a.kind, "operation succeeded");
    } else if a.step != b.step {
        tracing::debug!(instance_id = %after.instance_id, from = ?b.step, to = ?a.step, "step");
    } else if a.claimed_at.is_none() && b.claimed_at.is_some() && a.progress == b.progress {
        tracing::warn!(instance_id = %after.instance_id, step = ?a.step, "{}", a.description);
    }
}
