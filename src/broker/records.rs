//! The records the broker keeps: one per service instance, one per binding. They are stored as
//! JSON documents in the versioned [`Store`](crate::store::Store); the store's `version` and
//! `expires_at` travel beside them, not inside.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::binder::Mode;
use crate::catalog::{ProvisionParams, UpdateParams};

/// Where an instance is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InstanceState {
    Provisioning,
    Ready,
    Updating,
    Deprovisioning,
    Failed,
    Gone,
}

/// The kind of an asynchronous instance operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OpKind {
    Provision,
    Update,
    Deprovision,
}

/// One step of an operation; `docs/ARCHITECTURE.md` lists what each does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    Create,
    WaitAvailable,
    WaitUp,
    Shutdown,
    WaitDown,
    Delete,
    WaitGone,
    Apply,
    WaitApplied,
    Done,
}

/// The OSB `last_operation` states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OpState {
    InProgress,
    Succeeded,
    Failed,
}

impl OpState {
    /// The OSB wire word.
    pub fn as_osb(self) -> &'static str {
        match self {
            OpState::InProgress => "in progress",
            OpState::Succeeded => "succeeded",
            OpState::Failed => "failed",
        }
    }
}

/// The current (or, once finished, the latest) operation of an instance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Operation {
    pub token: String,
    pub kind: OpKind,
    pub step: Step,
    pub state: OpState,
    pub started_at: i64,
    pub deadline: i64,
    /// Set while a process performs the step's side effect; older than the lease = abandoned.
    pub claimed_at: Option<i64>,
    /// What was last seen, for people: "waiting for appliance 1122 to boot".
    pub description: String,
    /// The raw parameters of an update, to recognise a re-sent identical PATCH.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<Value>,
    /// The settings an update applies, merged into the instance when it succeeds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update: Option<UpdateParams>,
    /// When a poll last claimed the right to ask SAKURA Cloud about this operation (Unix ms);
    /// polls inside the check interval answer from the record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checked_at_ms: Option<i64>,
    /// What the current step has done so far (re-sent calls, attempts).
    #[serde(default, skip_serializing_if = "Progress::is_empty")]
    pub progress: Progress,
}

impl Operation {
    /// A new operation of `kind` starting at `first` now, ending `failed` after `timeout` seconds.
    pub fn start(kind: OpKind, first: Step, timeout: i64, description: String) -> Operation {
        let now = crate::store::now_unix();
        Operation {
            token: super::new_token(kind),
            kind,
            step: first,
            state: OpState::InProgress,
            started_at: now,
            deadline: now + timeout,
            claimed_at: None,
            description,
            request: None,
            update: None,
            checked_at_ms: None,
            progress: Progress::default(),
        }
    }
}

/// What the current step has sent to SAKURA Cloud, so that a later poll (in any process) knows
/// when to send it again and when to give up. Reset whenever the step changes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    /// When the step's call (create, shutdown, delete, settings) was last accepted, in Unix ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sent_at_ms: Option<i64>,
    /// How many times the step's call was made.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub attempts: u32,
    /// What SAKURA Cloud last answered to a call that did not succeed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// Whether the last create got no clear answer (it may have created the appliance).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub ambiguous: bool,
    /// SHA-256 (hex) of the admin password an update sent, to see that the appliance took it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_sha256: Option<String>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl Progress {
    pub fn is_empty(&self) -> bool {
        *self == Progress::default()
    }
}

/// An instance record (`pk = instance#<id>`, `sk = meta`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstanceRecord {
    pub instance_id: String,
    pub service_id: String,
    pub plan_id: String,
    /// The parameters exactly as the platform sent them (validated), for idempotency checks and GET.
    pub parameters: Value,
    pub params: ProvisionParams,
    #[serde(default)]
    pub context: Value,
    pub state: InstanceState,
    pub zone: String,
    pub appliance_name: String,
    pub appliance_id: Option<u64>,
    /// When the broker learnt the appliance id (create answer or adoption), in Unix ms. Reads by
    /// id may answer 404 for a while after a create; until a grace period from here has passed,
    /// a 404 means "not visible yet", never "gone". `None` (records of older versions): long ago.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub appliance_since_ms: Option<i64>,
    /// When a process last claimed the create call; a deprovision waits out a fresh claim so an
    /// in-flight create cannot leave an orphan behind.
    #[serde(default)]
    pub create_claimed_at: Option<i64>,
    pub operation: Operation,
    pub created_at: i64,
    /// The pool address this instance holds (`broker/leases.rs`), released with its tombstone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease: Option<LeaseRef>,
    /// A create request was sent whose outcome is not known to have made nothing: the
    /// instance's address may be in use even though no appliance id was recorded.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub may_have_appliance: bool,
    /// Adopted from the 2018 broker (its appliance is named by the raw instance id, and the
    /// bindings that broker handed out were never recorded).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub legacy: bool,
    /// Store version this record was read at (not serialised).
    #[serde(skip)]
    pub version: u64,
}

/// Which pool address an instance holds: the lease item's key and the network's name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseRef {
    pub network: String,
    #[serde(rename = "switchID")]
    pub switch_id: String,
    pub address: std::net::Ipv4Addr,
}

/// Where a binding is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BindingState {
    /// Recorded, database user not yet confirmed (dedicated only).
    Creating,
    Bound,
    /// Unbind started; the user may still exist.
    Deleting,
    Gone,
}

/// A binding record (`pk = instance#<id>`, `sk = binding#<id>`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BindingRecord {
    pub instance_id: String,
    pub binding_id: String,
    pub service_id: String,
    pub plan_id: String,
    pub parameters: Value,
    #[serde(default)]
    pub bind_resource: Value,
    /// The binding's mode and what it keeps (stored as the members `mode`, `username`,
    /// `sealed_password` and `endpoint`).
    #[serde(flatten)]
    pub credential: Credential,
    pub state: BindingState,
    pub created_at: i64,
    #[serde(skip)]
    pub version: u64,
}

/// What a binding hands out, and what the broker keeps to hand it out again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "StoredCredential", into = "StoredCredential")]
pub enum Credential {
    /// The appliance's admin account, read from SAKURA Cloud whenever it is asked for: nothing
    /// is kept.
    Shared,
    /// A database user of the binding's own.
    Dedicated {
        /// The user made for this binding.
        username: String,
        /// Its password, sealed with the broker's keyring (never plaintext); dropped from a
        /// tombstone.
        sealed_password: Option<String>,
        /// Where the user logs in, so GET binding needs no SAKURA call; known once the user is
        /// made (a bound binding always has it).
        endpoint: Option<Endpoint>,
    },
}

impl Credential {
    pub fn mode(&self) -> Mode {
        match self {
            Credential::Shared => Mode::Shared,
            Credential::Dedicated { .. } => Mode::Dedicated,
        }
    }

    /// The dedicated user's name.
    pub fn username(&self) -> Option<&str> {
        match self {
            Credential::Shared => None,
            Credential::Dedicated { username, .. } => Some(username),
        }
    }

    /// Drop the sealed password (a tombstone keeps no secret, sealed or not).
    pub fn forget_password(&mut self) {
        if let Credential::Dedicated {
            sealed_password, ..
        } = self
        {
            *sealed_password = None;
        }
    }
}

/// A [`Credential`] as binding records store it: flat members beside the others, as records
/// written before the type existed have them, and as every broker version reads them.
#[derive(Serialize, Deserialize)]
struct StoredCredential {
    mode: Mode,
    username: Option<String>,
    sealed_password: Option<String>,
    #[serde(default)]
    endpoint: Option<Endpoint>,
}

impl TryFrom<StoredCredential> for Credential {
    type Error = String;

    fn try_from(stored: StoredCredential) -> Result<Self, Self::Error> {
        match (stored.mode, stored.username) {
            (Mode::Shared, _) => Ok(Credential::Shared),
            (Mode::Dedicated, Some(username)) => Ok(Credential::Dedicated {
                username,
                sealed_password: stored.sealed_password,
                endpoint: stored.endpoint,
            }),
            (Mode::Dedicated, None) => Err("a dedicated binding record without a user name".into()),
        }
    }
}

impl From<Credential> for StoredCredential {
    fn from(credential: Credential) -> Self {
        match credential {
            Credential::Shared => StoredCredential {
                mode: Mode::Shared,
                username: None,
                sealed_password: None,
                endpoint: None,
            },
            Credential::Dedicated {
                username,
                sealed_password,
                endpoint,
            } => StoredCredential {
                mode: Mode::Dedicated,
                username: Some(username),
                sealed_password,
                endpoint,
            },
        }
    }
}

/// Where a database accepts logins.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
    pub database: String,
}

/// The transitions of an instance record. Each returns the record as it should be stored next;
/// [`crate::broker::Broker`] writes it conditionally on the version it was read at.
impl InstanceRecord {
    /// Move to `step` (no claim), with a description; the step's progress starts over.
    pub fn advanced(&self, step: Step, what: String) -> InstanceRecord {
        let mut next = self.clone();
        next.operation.step = step;
        next.operation.claimed_at = None;
        next.operation.description = what;
        next.operation.progress = Progress::default();
        next
    }

    /// Claim the current step at `now` (Unix seconds) before its side effect.
    pub fn claimed(&self, now: i64, what: String) -> InstanceRecord {
        let mut next = self.clone();
        next.operation.claimed_at = Some(now);
        next.operation.description = what;
        if next.operation.step == Step::Create {
            next.create_claimed_at = Some(now);
            // From here the create may be sent: until an answer says otherwise, an appliance
            // may exist for this instance.
            next.may_have_appliance = true;
        }
        next
    }

    /// This poll asks SAKURA Cloud; others inside the check interval answer from the record.
    pub fn checking(&self, now_ms: i64) -> InstanceRecord {
        let mut next = self.clone();
        next.operation.checked_at_ms = Some(now_ms);
        next
    }

    /// Give the claim back (the side effect failed or was not needed); the next poll may try.
    pub fn released(&self, what: String) -> InstanceRecord {
        let mut next = self.clone();
        next.operation.claimed_at = None;
        next.create_claimed_at = None;
        next.operation.description = what;
        next
    }

    /// The step's call was made: stay in the step, claim released, progress as given.
    pub fn sent(&self, progress: Progress, what: String) -> InstanceRecord {
        let mut next = self.released(what);
        next.operation.progress = progress;
        next
    }

    /// The appliance `id` is this instance's, learnt at `now_ms`; move to `step`.
    pub fn with_appliance(&self, id: u64, now_ms: i64, step: Step, what: String) -> InstanceRecord {
        let mut next = self.advanced(step, what);
        next.appliance_id = Some(id);
        next.appliance_since_ms = Some(now_ms);
        next.create_claimed_at = None;
        next
    }

    /// The operation ended well; the instance is ready (provision, update).
    pub fn succeeded(&self, what: String) -> InstanceRecord {
        let mut next = self.advanced(Step::Done, what);
        next.state = InstanceState::Ready;
        next.operation.state = OpState::Succeeded;
        next.create_claimed_at = None;
        next
    }

    /// Provision or update done: the settings an update applied become the instance's own.
    pub fn settled(&self, what: String) -> InstanceRecord {
        let mut next = self.succeeded(what);
        if let Some(update) = next.operation.update.take() {
            super::update::merge_into_params(&mut next, &update);
        }
        next.operation.progress = Progress::default();
        next
    }

    /// The operation ended `failed`. An update leaves the instance usable; a provision or
    /// deprovision leaves it failed (and deletable).
    pub fn failed(&self, why: String) -> InstanceRecord {
        let mut next = self.advanced(Step::Done, why);
        next.operation.state = OpState::Failed;
        next.create_claimed_at = None;
        next.state = match next.operation.kind {
            OpKind::Update => InstanceState::Ready,
            OpKind::Provision | OpKind::Deprovision => InstanceState::Failed,
        };
        next
    }

    /// Deprovisioned: a tombstone.
    pub fn gone(&self, what: String) -> InstanceRecord {
        let mut next = self.advanced(Step::Done, what);
        next.state = InstanceState::Gone;
        next.operation.state = OpState::Succeeded;
        next
    }

    /// A new operation replaces the current one.
    pub fn starting(&self, state: InstanceState, operation: Operation) -> InstanceRecord {
        let mut next = self.clone();
        next.state = state;
        next.operation = operation;
        next
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// Binding records as brokers wrote them before [`Credential`] existed: flat members, nulls
    /// for what a mode does not keep, no `endpoint` at all in the oldest.
    fn old_record(mode: &str, state: &str, extra: Value) -> Value {
        let mut record = json!({
            "instance_id": "i-1", "binding_id": "b-1", "service_id": "s", "plan_id": "p",
            "parameters": {}, "bind_resource": {"app_guid": "app"},
            "mode": mode, "state": state, "username": null, "sealed_password": null,
            "created_at": 1_700_000_000,
        });
        for (k, v) in extra.as_object().expect("object") {
            record[k] = v.clone();
        }
        record
    }

    fn read(record: Value) -> Result<BindingRecord, serde_json::Error> {
        serde_json::from_str(&record.to_string())
    }

    #[test]
    fn old_records_read_as_typed_credentials() {
        let shared = read(old_record("shared", "bound", json!({"endpoint": null}))).unwrap();
        assert_eq!(shared.credential, Credential::Shared);
        assert_eq!(shared.state, BindingState::Bound);

        let endpoint = json!({"host": "192.168.0.11", "port": 3306, "database": "osbdb"});
        let bound = read(old_record(
            "dedicated",
            "bound",
            json!({"username": "u1", "sealed_password": "v2:k:sealed", "endpoint": endpoint}),
        ))
        .unwrap();
        assert_eq!(
            bound.credential,
            Credential::Dedicated {
                username: "u1".into(),
                sealed_password: Some("v2:k:sealed".into()),
                endpoint: Some(Endpoint {
                    host: "192.168.0.11".into(),
                    port: 3306,
                    database: "osbdb".into(),
                }),
            }
        );

        // Recorded before its user was made: no endpoint member yet.
        let creating = read(old_record(
            "dedicated",
            "creating",
            json!({"username": "u2", "sealed_password": "v1:sealed"}),
        ))
        .unwrap();
        assert_eq!(
            creating.credential,
            Credential::Dedicated {
                username: "u2".into(),
                sealed_password: Some("v1:sealed".into()),
                endpoint: None,
            }
        );

        let tombstone = read(old_record("dedicated", "gone", json!({"username": "u3"}))).unwrap();
        assert_eq!(tombstone.credential.username(), Some("u3"));
        assert_eq!(tombstone.state, BindingState::Gone);

        let error = read(old_record("dedicated", "bound", json!({}))).unwrap_err();
        assert!(error.to_string().contains("without a user name"), "{error}");
    }

    /// New records keep the flat members, so a broker of the previous version reads them too.
    #[test]
    fn records_are_written_with_the_flat_members() {
        let mut record = read(old_record(
            "dedicated",
            "bound",
            json!({"username": "u1", "sealed_password": "sealed", "endpoint": null}),
        ))
        .unwrap();
        let written = serde_json::to_value(&record).unwrap();
        assert_eq!(written["mode"], "dedicated");
        assert_eq!(written["username"], "u1");
        assert_eq!(written["sealed_password"], "sealed");
        assert_eq!(written["endpoint"], Value::Null);
        assert!(written.get("credential").is_none(), "{written}");

        record.credential.forget_password();
        let written = serde_json::to_value(&record).unwrap();
        assert_eq!(written["sealed_password"], Value::Null);
        assert_eq!(written["username"], "u1");

        record.credential = Credential::Shared;
        let written = serde_json::to_value(&record).unwrap();
        assert_eq!(
            (
                &written["mode"],
                &written["username"],
                &written["sealed_password"]
            ),
            (&json!("shared"), &Value::Null, &Value::Null)
        );
        assert_eq!(read(written).unwrap().credential, Credential::Shared);
    }
}
