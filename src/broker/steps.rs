//! The state machine: one poll runs at most one step of an instance's current operation.
//!
//! Each step reads the truth from SAKURA Cloud. A step that only observes writes the record only
//! when the state changes (an idle poll costs one store read). A step with a side effect first
//! wins a conditional write that claims it, then calls SAKURA, then records the result; a claim
//! older than the lease counts as abandoned by a dead process and is taken over.

use super::records::{
    BindingRecord, BindingState, InstanceRecord, InstanceState, OpKind, OpState, Step,
};
use super::{Broker, Error};
use crate::sacloud::{self, Database};
use crate::store::{WriteOp, now_unix};

/// The most bindings marked gone in one atomic write (DynamoDB takes at most 100 items).
const MAX_BINDINGS_IN_BATCH: usize = 90;
/// Attempts at the final deprovision write before the claim is given back to the next poll.
const FINISH_ATTEMPTS: usize = 3;

impl Broker {
    /// Run at most one step of `record`'s operation; `record` ends as stored (re-read if another
    /// process won a race).
    pub(super) async fn step(&self, record: &mut InstanceRecord) -> Result<(), Error> {
        if record.operation.state != OpState::InProgress {
            return Ok(());
        }
        let now = now_unix();
        if now > record.operation.deadline {
            return self.fail_deadline(record).await;
        }
        if let Some(claimed) = record.operation.claimed_at
            && now - claimed < self.settings.claim_lease
        {
            // Another request is performing this step's side effect right now.
            return Ok(());
        }
        match record.operation.step {
            Step::Create => self.step_create(record).await,
            Step::WaitAvailable => self.step_wait_available(record).await,
            Step::WaitUp => self.step_wait_up(record).await,
            Step::Shutdown | Step::WaitDown => self.step_shutdown(record).await,
            Step::Delete => self.step_delete(record).await,
            Step::WaitGone => self.step_wait_gone(record).await,
            Step::Apply => self.step_apply(record).await,
            Step::WaitApplied => self.step_wait_applied(record).await,
            Step::Done => Ok(()),
        }
    }

    /// Store `next` in place of `record`. On a lost race, re-read `record` and return false.
    pub(super) async fn commit(
        &self,
        record: &mut InstanceRecord,
        mut next: InstanceRecord,
        expires_at: Option<i64>,
    ) -> Result<bool, Error> {
        next.version = record.version;
        if self.repo.save_instance(&mut next, expires_at).await? {
            *record = next;
            return Ok(true);
        }
        if let Some(fresh) = self.repo.instance(&record.instance_id).await? {
            *record = fresh;
        }
        Ok(false)
    }

    /// Claim the current step (optionally moving to `step` first) before a side effect.
    pub(super) async fn claim(
        &self,
        record: &mut InstanceRecord,
        step: Step,
        what: String,
    ) -> Result<bool, Error> {
        let mut next = record.clone();
        next.operation.step = step;
        next.operation.claimed_at = Some(now_unix());
        next.operation.description = what;
        if step == Step::Create {
            next.create_claimed_at = next.operation.claimed_at;
        }
        self.commit(record, next, None).await
    }

    /// Give the claim back after a side effect failed, so the next poll tries again at once.
    pub(super) async fn release(
        &self,
        record: &mut InstanceRecord,
        why: String,
    ) -> Result<(), Error> {
        tracing::warn!(instance_id = %record.instance_id, step = ?record.operation.step, "{why}");
        let mut next = record.clone();
        next.operation.claimed_at = None;
        next.create_claimed_at = None;
        next.operation.description = why;
        self.commit(record, next, None).await.map(|_| ())
    }

    /// Move to `step` (no claim), with a description.
    pub(super) async fn advance_to(
        &self,
        record: &mut InstanceRecord,
        step: Step,
        what: String,
    ) -> Result<(), Error> {
        let mut next = record.clone();
        next.operation.step = step;
        next.operation.claimed_at = None;
        next.operation.description = what;
        self.commit(record, next, None).await.map(|_| ())
    }

    /// Tell the poller what is happening without writing anything (an idle poll).
    pub(super) fn note(record: &mut InstanceRecord, what: String) {
        record.operation.description = what;
    }

    /// End the operation `failed`.
    pub(super) async fn fail_op(
        &self,
        record: &mut InstanceRecord,
        why: String,
    ) -> Result<(), Error> {
        tracing::warn!(instance_id = %record.instance_id, kind = ?record.operation.kind, "operation failed: {why}");
        let mut next = record.clone();
        next.operation.state = OpState::Failed;
        next.operation.step = Step::Done;
        next.operation.claimed_at = None;
        next.create_claimed_at = None;
        next.operation.description = why;
        next.state = match next.operation.kind {
            // The appliance is still there and usable; only the new settings may be missing.
            OpKind::Update => InstanceState::Ready,
            OpKind::Provision | OpKind::Deprovision => InstanceState::Failed,
        };
        self.commit(record, next, None).await.map(|_| ())
    }

    async fn fail_deadline(&self, record: &mut InstanceRecord) -> Result<(), Error> {
        let op = &record.operation;
        let limit = super::human_duration(op.deadline - op.started_at);
        let advice = match op.kind {
            OpKind::Provision => {
                "The appliance may still exist in SAKURA Cloud; deprovision this instance to remove it, then provision again."
            }
            OpKind::Update => "The instance is still usable; send the update again to retry.",
            OpKind::Deprovision => {
                "Send the deprovision again to retry; check the appliance in the SAKURA Cloud control panel."
            }
        };
        let why = format!(
            "{:?} did not finish within {limit}; last seen: {}. {advice}",
            op.kind, op.description
        )
        .to_lowercase_first();
        self.fail_op(record, why).await
    }

    /// Read the appliance; a transient failure becomes a note for the poller.
    pub(super) async fn read_appliance(
        &self,
        record: &mut InstanceRecord,
        id: u64,
    ) -> Result<Option<Result<Database, sacloud::Error>>, Error> {
        match self.sakura.read(&record.zone, id).await {
            Ok(db) => Ok(Some(Ok(db))),
            Err(e) if e.is_not_found() => Ok(Some(Err(e))),
            Err(e) => {
                let what =
                    format!("SAKURA Cloud did not answer for appliance {id} ({e}); will retry");
                Self::note(record, what);
                Ok(None)
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
        self.release(
            record,
            "bindings changed while the deprovision was being recorded; will retry".into(),
        )
        .await
    }

    /// One attempt of [`Self::finish_gone`]: true when written, false when a write lost a race
    /// (the batches written before it stay: tombstoning a binding twice changes nothing).
    async fn try_finish_gone(
        &self,
        record: &mut InstanceRecord,
        what: &str,
    ) -> Result<bool, Error> {
        let expires = now_unix() + self.settings.tombstone_ttl;
        let mut next = record.clone();
        next.state = InstanceState::Gone;
        next.operation.state = OpState::Succeeded;
        next.operation.step = Step::Done;
        next.operation.claimed_at = None;
        next.operation.description = what.to_owned();
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
        binding.sealed_password = None;
        self.repo.put_binding_op(&binding, Some(expires))
    }
}

trait LowercaseFirst {
    fn to_lowercase_first(self) -> String;
}

impl LowercaseFirst for String {
    fn to_lowercase_first(self) -> String {
        let mut chars = self.chars();
        match chars.next() {
            Some(first) => first.to_lowercase().chain(chars).collect(),
            None => self,
        }
    }
}
