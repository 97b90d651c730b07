//! Binding rotation (OSB 2.17): a `PUT` of a new binding whose body names a
//! `predecessor_binding_id` makes a binding like the predecessor (same plan, parameters, bind
//! resource and mode) with fresh credentials. In dedicated mode that is a new database user, and
//! both logins work until the predecessor is unbound; in shared mode it is the admin account.

use super::bind::{BindOutcome, BindRequest};
use super::records::BindingState;
use super::{Broker, Error};

/// A rotation request as the platform sent it. `service_id` and `plan_id` are optional: a 2.17
/// platform may send only the predecessor (Crossplane's provider-osb does).
#[derive(Debug, Clone)]
pub struct RotateRequest {
    pub instance_id: String,
    pub binding_id: String,
    pub predecessor_binding_id: String,
    pub service_id: Option<String>,
    pub plan_id: Option<String>,
}

impl Broker {
    /// `PUT .../service_bindings/{binding_id}` with `predecessor_binding_id`.
    pub async fn rotate_binding(&self, req: RotateRequest) -> Result<BindOutcome, Error> {
        let id = &req.instance_id;
        // A re-sent rotation whose binding exists already is answered like an identical PUT,
        // even once the predecessor has been unbound.
        let source = match self.repo.binding(id, &req.binding_id).await? {
            Some(b) if b.state != BindingState::Gone => b,
            _ => self
                .repo
                .binding(id, &req.predecessor_binding_id)
                .await?
                .filter(|b| b.state == BindingState::Bound)
                .ok_or_else(|| {
                    Error::BadRequest(format!(
                        "predecessor_binding_id {:?} is not a binding of service instance {id}; rotate an existing binding of this instance",
                        req.predecessor_binding_id
                    ))
                })?,
        };
        let differs =
            |sent: &Option<String>, have: &str| sent.as_deref().is_some_and(|s| s != have);
        if differs(&req.service_id, &source.service_id) || differs(&req.plan_id, &source.plan_id) {
            return Err(Error::BadRequest(format!(
                "service_id and plan_id must be those of the predecessor binding {} (service {}, plan {}), or absent",
                req.predecessor_binding_id, source.service_id, source.plan_id
            )));
        }
        let bind_resource = Some(source.bind_resource.clone()).filter(|r| !r.is_null());
        self.bind(BindRequest {
            instance_id: req.instance_id.clone(),
            binding_id: req.binding_id.clone(),
            service_id: source.service_id.clone(),
            plan_id: source.plan_id.clone(),
            parameters: Some(source.parameters.clone()),
            bind_resource,
            mode: Some(source.credential.mode()),
        })
        .await
    }
}
