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

/// One step of an operation (DESIGN.md "Operation steps").
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
}

/// An instance record (`pk = instance#<id>`, `sk = meta`).
#[derive(Debug, Clone, Serialize, Deserialize)]
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
    /// When a process last claimed the create call; a deprovision waits out a fresh claim so an
    /// in-flight create cannot leave an orphan behind.
    #[serde(default)]
    pub create_claimed_at: Option<i64>,
    pub operation: Operation,
    pub created_at: i64,
    /// Store version this record was read at (not serialised).
    #[serde(skip)]
    pub version: u64,
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
    pub mode: Mode,
    pub state: BindingState,
    /// Dedicated only: the database user made for this binding.
    pub username: Option<String>,
    /// Dedicated only: the user's password, sealed with the broker's keyring (never plaintext).
    pub sealed_password: Option<String>,
    /// Dedicated only: where the user logs in, so GET binding needs no SAKURA call.
    #[serde(default)]
    pub endpoint: Option<Endpoint>,
    pub created_at: i64,
    #[serde(skip)]
    pub version: u64,
}

/// Where a database accepts logins.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
    pub database: String,
}
