//! The broker's domain: provision, update, deprovision, bind, unbind and `last_operation` as a
//! poll-driven state machine over stored records (`docs/ARCHITECTURE.md`).
//!
//! Layout: one file per OSB request group (`provision`, `update`, `deprovision`, `bind`), the
//! state machine's decisions as pure functions in `machine/`, what a poll observed typed in
//! `observe`, and the one place that performs side effects in `run`.
//!
//! Every method here can run in any process at any time, concurrently with others for the same
//! instance: each state change is a conditional write, each SAKURA side effect is claimed first,
//! and a loser of a race re-reads instead of overwriting. No HTTP types live here.

mod bind;
mod compat;
mod deprovision;
mod leases;
mod legacy;
pub mod machine;
pub mod observe;
pub mod owner;
mod provision;
pub mod records;
mod repo;
mod rotate;
mod run;
mod update;

use std::sync::Arc;
use std::time::Duration;

pub use bind::{BindOutcome, BindRequest, BindingView, UnbindRequest};
pub use compat::binding_metadata;
pub use deprovision::{DeprovisionOutcome, DeprovisionRequest};
pub use leases::{Lease, lease_key, pool_partition};
pub use legacy::AdoptOutcome;
pub use provision::{InstanceView, ProvisionOutcome, ProvisionRequest};
pub use records::{OpState, Operation};
pub use rotate::RotateRequest;
pub use update::{UpdateOutcome, UpdateRequest};

use crate::binder::Mode;
use crate::binder::crypto::Keyring;
use crate::catalog::Catalog;
use crate::sacloud;
use crate::store::Store;
use repo::Repo;

/// What the broker tells the API layer went wrong; each maps to one OSB status and error code.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// 400: the request is malformed or names unknown things.
    #[error("{0}")]
    BadRequest(String),
    /// 404: no such instance or binding (or not yet usable).
    #[error("{0}")]
    NotFound(String),
    /// 410: it is gone (or never existed) and a DELETE has nothing to do.
    #[error("{0}")]
    Gone(String),
    /// 409: the id exists with different attributes.
    #[error("{0}")]
    Conflict(String),
    /// 422 AsyncRequired.
    #[error(
        "this service plan requires client support for asynchronous service operations; send accepts_incomplete=true"
    )]
    AsyncRequired,
    /// 422 ConcurrencyError: another operation on this instance is running.
    #[error("{0}")]
    Concurrency(String),
    /// 422 without a code: a valid request the broker cannot carry out (e.g. a plan change).
    #[error("{0}")]
    Unprocessable(String),
    /// 502: SAKURA Cloud or the database could not be reached or refused, for a synchronous step.
    /// The description is what the platform reads, the cause's words included; the cause
    /// itself rides along as the source.
    #[error("{description}")]
    Upstream {
        description: String,
        #[source]
        cause: Option<Cause>,
    },
    /// 503: a transient race or outage the same request will get past when sent again
    /// (never a 4xx, which platforms such as Korifi take as final).
    #[error("{0}")]
    Retry(String),
    /// 500: the broker's own machinery failed (store I/O, corrupt record). The platform gets a
    /// generic sentence; the log gets what failed (`context`) and the chain of its causes.
    #[error("{context}")]
    Internal {
        context: String,
        #[source]
        cause: Option<Cause>,
    },
}

/// What an [`Error`] was caused by, kept whole (type and source chain) rather than as words.
pub type Cause = Box<dyn std::error::Error + Send + Sync>;

impl Error {
    /// 502, with nothing underneath (SAKURA Cloud answered, but not what a bind needs).
    pub(crate) fn upstream(description: impl Into<String>) -> Error {
        Error::Upstream {
            description: description.into(),
            cause: None,
        }
    }

    /// 502 caused by `cause`, whose words `description` already carries for the platform.
    pub(crate) fn upstream_from(description: impl Into<String>, cause: impl Into<Cause>) -> Error {
        Error::Upstream {
            description: description.into(),
            cause: Some(cause.into()),
        }
    }

    /// 500 where no other error lies underneath (a record that breaks an invariant).
    pub(crate) fn internal(context: impl Into<String>) -> Error {
        Error::Internal {
            context: context.into(),
            cause: None,
        }
    }

    /// 500: `context` failed because of `cause`.
    pub(crate) fn internal_from(context: impl Into<String>, cause: impl Into<Cause>) -> Error {
        Error::Internal {
            context: context.into(),
            cause: Some(cause.into()),
        }
    }
}

impl From<crate::store::Error> for Error {
    fn from(e: crate::store::Error) -> Self {
        Error::internal_from("state store", e)
    }
}

/// Timings and policies of the state machine, from config.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Seconds a provision may take before it ends `failed`.
    pub provision_timeout: i64,
    pub update_timeout: i64,
    pub deprovision_timeout: i64,
    /// Seconds after which a claimed side effect counts as abandoned and may be taken over.
    pub claim_lease: i64,
    /// Seconds a tombstone lives after a deprovision or unbind.
    pub tombstone_ttl: i64,
    /// Seconds a poll of a finished deprovision answers `succeeded`; 410 Gone after that.
    pub gone_succeeded_secs: i64,
    /// The credential lifetime promised to 2.17 platforms (`expires_at`), if the operator set one.
    pub binding_lifetime: Option<i64>,
    /// The `Retry-After` the API sends on polls, in seconds.
    pub retry_after: u64,
    /// The binding mode when a bind does not ask for one.
    pub default_binding_mode: Mode,
    /// After a create, reads by id may answer 404 for a while: within this period from when the
    /// broker learnt the appliance id, a 404 means "not visible yet".
    pub not_visible_grace: Duration,
    /// A shutdown or delete that the appliance shows no effect of is sent again after this.
    pub power_resend: Duration,
    /// Settings the appliance does not hold are applied again after this.
    pub reapply_after: Duration,
    /// A create that got no clear answer is retried (after a find by name) after this.
    pub create_retry_after: Duration,
    /// Polls of an in-progress instance ask SAKURA Cloud at most once per this interval (across
    /// all processes); the others answer from the record. Zero: every poll asks.
    pub check_interval: Duration,
    /// The longest a request waits for the state machine's step before it answers from the
    /// record (the step carries on).
    pub answer_within: Duration,
    /// Creates tried before a provision ends `failed`.
    pub create_attempts: u32,
    /// Connect to databases on loopback addresses only (fake mode: simulated appliances at
    /// other addresses do not exist, and nothing may be sent off this machine for them).
    pub loopback_databases_only: bool,
    /// TLS to the databases (`OSB_DATABASE_TLS`), and what bindings' `sslRequired` says.
    pub database_tls: crate::binder::TlsMode,
    /// The operator's network pools (`OSB_NETWORKS`; fake mode's own); `None`: users name the
    /// network in every provision, as before pools existed.
    pub networks: Option<std::sync::Arc<crate::networks::Networks>>,
    /// Adopt appliances the 2018 broker made when a request names an unknown instance
    /// (`OSB_ADOPT_LEGACY`).
    pub adopt_legacy: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            provision_timeout: 60 * 60,
            update_timeout: 30 * 60,
            deprovision_timeout: 30 * 60,
            claim_lease: 60,
            tombstone_ttl: 24 * 60 * 60,
            gone_succeeded_secs: 5 * 60,
            binding_lifetime: None,
            retry_after: 10,
            // SAKURA's own wait helper tolerates 30 404s five seconds apart.
            not_visible_grace: Duration::from_secs(300),
            // SAKURA's power helper re-sends a shutdown every 20 s while the appliance is up.
            power_resend: Duration::from_secs(20),
            reapply_after: Duration::from_secs(20),
            create_retry_after: Duration::from_secs(20),
            create_attempts: 5,
            check_interval: Duration::from_secs(10),
            answer_within: Duration::from_millis(800),
            default_binding_mode: Mode::Dedicated,
            loopback_databases_only: false,
            database_tls: crate::binder::TlsMode::Disable,
            networks: None,
            adopt_legacy: false,
        }
    }
}

/// The answer to a `last_operation` poll.
#[derive(Debug, Clone, PartialEq)]
pub struct LastOperation {
    pub state: OpState,
    pub description: String,
    /// After a failure, whether the instance can still be used (OSB `instance_usable`): yes
    /// after an update, no after a deprovision; `None` when there is nothing to say.
    pub instance_usable: Option<bool>,
    /// After a failed update, whether the same update may be sent again (`update_repeatable`).
    pub update_repeatable: Option<bool>,
}

impl LastOperation {
    /// The answer for an operation of `kind` in `state`.
    fn new(state: OpState, description: String, kind: records::OpKind) -> LastOperation {
        use records::OpKind;
        let (instance_usable, update_repeatable) = match kind {
            _ if state != OpState::Failed => (None, None),
            OpKind::Update => (Some(true), Some(true)),
            OpKind::Deprovision => (Some(false), None),
            OpKind::Provision => (None, None),
        };
        LastOperation {
            state,
            description,
            instance_usable,
            update_repeatable,
        }
    }
}

/// The broker: one per process, shared by all requests.
pub struct Broker {
    repo: Repo,
    sakura: sacloud::Client,
    catalog: Arc<Catalog>,
    keyring: Option<Keyring>,
    settings: Settings,
}

impl Broker {
    pub fn new(
        store: Arc<dyn Store>,
        sakura: sacloud::Client,
        catalog: Arc<Catalog>,
        keyring: Option<Keyring>,
        settings: Settings,
    ) -> Self {
        Broker {
            repo: Repo::new(store),
            sakura,
            catalog,
            keyring,
            settings,
        }
    }

    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// `GET /v2/service_instances/{instance_id}/last_operation`: advance the current operation by
    /// at most one step and report it. The `operation` token is not needed: the instance's
    /// current or latest operation is reported whatever token the platform sends.
    pub async fn last_operation(
        self: &Arc<Self>,
        instance_id: &str,
    ) -> Result<LastOperation, Error> {
        let found = match self.repo.instance_with_expiry(instance_id).await? {
            Some(found) => Some(found),
            None => self.adopt_missing(instance_id).await?.map(|r| (r, None)),
        };
        let Some((mut record, expires_at)) = found else {
            return Err(Error::NotFound(format!(
                "service instance {instance_id} does not exist"
            )));
        };
        if let Some(gone) = self.gone_after_window(&record, expires_at) {
            return Err(gone);
        }
        self.step_bounded(&mut record).await?;
        let op = &record.operation;
        let description = match op.state {
            OpState::InProgress => format!("{} ({})", op.description, elapsed(op.started_at)),
            _ => op.description.clone(),
        };
        Ok(LastOperation::new(op.state, description, op.kind))
    }
}

/// What one OSB request cost the store, by kind of call.
pub type StoreCalls = crate::store::counting::Counts;

/// Run `request` (the handling of one OSB request), counting the store calls it makes, those of
/// steps it hands to a task of their own included, for the API layer to log.
pub async fn counting_store_calls<F: std::future::Future>(
    request: F,
) -> (F::Output, StoreCalls, std::time::Duration) {
    use crate::store::counting::{Counters, REQUEST_COUNTERS};
    let counters = Arc::new(Counters::default());
    let output = REQUEST_COUNTERS.scope(counters.clone(), request).await;
    (output, counters.snapshot(), counters.waited())
}

/// A random operation token or password-safe string of `len` alphanumeric characters.
pub(crate) fn random_alnum(len: usize) -> String {
    use rand::Rng;
    use rand::distr::Alphanumeric;
    rand::rng()
        .sample_iter(&Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}

/// A new operation token naming its kind, e.g. `provision-9f2c…`.
pub(crate) fn new_token(kind: records::OpKind) -> String {
    let word = match kind {
        records::OpKind::Provision => "provision",
        records::OpKind::Update => "update",
        records::OpKind::Deprovision => "deprovision",
    };
    format!("{word}-{}", random_alnum(20).to_lowercase())
}

/// "2m10s" since `since` (Unix seconds).
pub(crate) fn elapsed(since: i64) -> String {
    human_duration(crate::store::now_unix() - since)
}

/// A duration for people: "45s", "2m10s", "1h5m".
pub(crate) fn human_duration(secs: i64) -> String {
    let secs = secs.max(0);
    if secs >= 3600 {
        format!("{}h{}m", secs / 3600, (secs % 3600) / 60)
    } else if secs >= 60 {
        format!("{}m{}s", secs / 60, secs % 60)
    } else {
        format!("{secs}s")
    }
}

/// A random broker password for fake mode (printed once at start).
pub fn random_password() -> String {
    random_alnum(24)
}

#[cfg(test)]
mod tests {
    use super::records::OpKind;
    use super::*;

    #[test]
    fn a_failure_says_whether_the_instance_is_usable_and_the_update_repeatable() {
        let answer = |state, kind| {
            let last = LastOperation::new(state, "seen".into(), kind);
            (last.instance_usable, last.update_repeatable)
        };
        let failed = OpState::Failed;
        assert_eq!(answer(failed, OpKind::Update), (Some(true), Some(true)));
        assert_eq!(answer(failed, OpKind::Deprovision), (Some(false), None));
        assert_eq!(answer(failed, OpKind::Provision), (None, None));
        for state in [OpState::InProgress, OpState::Succeeded] {
            for kind in [OpKind::Provision, OpKind::Update, OpKind::Deprovision] {
                assert_eq!(answer(state, kind), (None, None), "{state:?} {kind:?}");
            }
        }
    }
}
