//! `PUT /v2/service_instances/{instance_id}` and `GET /v2/service_instances/{instance_id}`.

use serde_json::Value;

use std::sync::Arc;

use super::leases::{self, Placement};
use super::records::{InstanceRecord, InstanceState, OpKind, OpState, Operation, Step};
use super::{Broker, Error, random_alnum};
use crate::catalog::{Plan, ProvisionParams};
use crate::networks::PlatformContext;
use crate::store::now_unix;

/// A provision request as the platform sent it (body already parsed).
#[derive(Debug, Clone)]
pub struct ProvisionRequest {
    pub instance_id: String,
    pub service_id: String,
    pub plan_id: String,
    pub parameters: Option<Value>,
    pub context: Option<Value>,
    /// The profile's top-level `organization_guid` and `space_guid`, which stand for the
    /// context when a platform sends none.
    pub organization_guid: Option<String>,
    pub space_guid: Option<String>,
    pub accepts_incomplete: bool,
}

/// How a provision request ended.
#[derive(Debug, Clone, PartialEq)]
pub enum ProvisionOutcome {
    /// 202: a new provision started.
    Started { operation: String },
    /// 202: the identical provision is already running.
    InProgress { operation: String },
    /// 200: the identical instance already exists and is ready.
    Exists,
}

/// What `GET /v2/service_instances/{instance_id}` returns.
#[derive(Debug, Clone, PartialEq)]
pub struct InstanceView {
    pub service_id: String,
    pub plan_id: String,
    pub parameters: Value,
    /// Where the database is: the network (when from a pool), switch, address, mask, gateway
    /// and zone it was given.
    pub network: Value,
}

/// The appliance name that carries the instance id (so a lost create can be found again):
/// `osb-<id>` for short plain ids, else `osb-sha256:<40 hex digits of sha256(id)>`. The two forms
/// cannot meet: a plain id has no `:`. The name only finds an appliance; whether it belongs to
/// the instance is decided by its description ([`super::machine::owns`]).
pub(crate) fn appliance_name(instance_id: &str) -> String {
    const MAX: usize = 64;
    let name = format!("osb-{instance_id}");
    if name.len() <= MAX
        && !instance_id.is_empty()
        && instance_id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        name
    } else {
        use sha2::Digest;
        let digest = sha2::Sha256::digest(instance_id.as_bytes());
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        format!("osb-sha256:{}", &hex[..40])
    }
}

/// Whether a re-sent PUT asks for the same instance as the stored one.
fn same_request(record: &InstanceRecord, req: &ProvisionRequest, parameters: &Value) -> bool {
    record.service_id == req.service_id
        && record.plan_id == req.plan_id
        && record.parameters == *parameters
}

impl Broker {
    /// `PUT /v2/service_instances/{instance_id}`: record the instance, then run the first step
    /// (look the appliance up, create it) before answering 202.
    pub async fn provision(
        self: &Arc<Self>,
        req: ProvisionRequest,
    ) -> Result<ProvisionOutcome, Error> {
        let plan = self
            .catalog
            .plan(&req.service_id, &req.plan_id)
            .map_err(|e| Error::BadRequest(e.to_string()))?;
        let requested = self
            .catalog
            .validate_provision_request(plan, req.parameters.as_ref())
            .map_err(|e| Error::BadRequest(e.to_string()))?;
        let placement = match &self.settings.networks {
            None => Placement::Unpooled(
                requested
                    .complete()
                    .map_err(|e| Error::BadRequest(e.to_string()))?,
            ),
            Some(networks) => {
                let ctx = PlatformContext::from_request(
                    req.context.as_ref(),
                    req.organization_guid.as_deref(),
                    req.space_guid.as_deref(),
                );
                leases::place(&requested, networks, &ctx)?
            }
        };
        let parameters = normalise(req.parameters.clone());
        if !req.accepts_incomplete {
            return Err(Error::AsyncRequired);
        }
        loop {
            let existing = self.repo.instance(&req.instance_id).await?;
            let version = match existing {
                Some(record) if record.state != InstanceState::Gone => {
                    return self.provision_again(&record, &req, &parameters);
                }
                Some(tombstone) => tombstone.version,
                None => 0,
            };
            let written = match &placement {
                Placement::Unpooled(params) => {
                    let mut record =
                        self.new_instance(&req, plan, params.clone(), parameters.clone());
                    record.version = version;
                    self.repo
                        .save_instance(&mut record, None)
                        .await?
                        .then_some(record)
                }
                Placement::Pooled { network, address } => {
                    // The network members are settled when the address is leased.
                    let params = requested.settle(
                        network.switch_id.clone(),
                        std::net::Ipv4Addr::UNSPECIFIED,
                        network.cidr.prefix_len(),
                        network.gateway,
                        None,
                    );
                    let mut record = self.new_instance(&req, plan, params, parameters.clone());
                    record.version = version;
                    self.create_with_lease(&mut record, &requested, network, *address)
                        .await?
                        .then_some(record)
                }
            };
            if let Some(mut record) = written {
                let operation = record.operation.token.clone();
                tracing::info!(instance_id = %req.instance_id, %operation, "provision started");
                self.step_bounded(&mut record).await?;
                return Ok(ProvisionOutcome::Started { operation });
            }
            // Another request created the record first: decide again from what it wrote.
        }
    }

    fn provision_again(
        &self,
        record: &InstanceRecord,
        req: &ProvisionRequest,
        parameters: &Value,
    ) -> Result<ProvisionOutcome, Error> {
        let id = &req.instance_id;
        if !same_request(record, req, parameters) {
            return Err(Error::Conflict(format!(
                "service instance {id} already exists with a different service, plan or parameters"
            )));
        }
        let op = &record.operation;
        match (record.state, op.kind, op.state) {
            (InstanceState::Provisioning, OpKind::Provision, OpState::InProgress) => {
                Ok(ProvisionOutcome::InProgress {
                    operation: op.token.clone(),
                })
            }
            (InstanceState::Ready | InstanceState::Updating, _, _) => Ok(ProvisionOutcome::Exists),
            (InstanceState::Deprovisioning, _, _) => Err(Error::Concurrency(format!(
                "service instance {id} is being deprovisioned; provision it again once that has finished"
            ))),
            _ => Err(Error::Conflict(format!(
                "service instance {id} exists but its provisioning failed ({}); deprovision it, then provision again",
                op.description
            ))),
        }
    }

    fn new_instance(
        &self,
        req: &ProvisionRequest,
        plan: &Plan,
        params: ProvisionParams,
        parameters: Value,
    ) -> InstanceRecord {
        let now = now_unix();
        let zone = params
            .zone
            .clone()
            .unwrap_or_else(|| self.catalog.default_zone().to_owned());
        let appliance_name = appliance_name(&req.instance_id);
        InstanceRecord {
            instance_id: req.instance_id.clone(),
            service_id: plan.service_id.clone(),
            plan_id: plan.id.clone(),
            parameters,
            params,
            context: req.context.clone().unwrap_or(Value::Null),
            state: InstanceState::Provisioning,
            zone,
            appliance_name: appliance_name.clone(),
            appliance_id: None,
            appliance_since_ms: None,
            create_claimed_at: None,
            operation: Operation::start(
                OpKind::Provision,
                Step::Create,
                self.settings.provision_timeout,
                format!("creating appliance {appliance_name}"),
            ),
            created_at: now,
            lease: None,
            may_have_appliance: false,
            legacy: false,
            version: 0,
        }
    }

    /// `GET /v2/service_instances/{instance_id}`.
    pub async fn get_instance(&self, instance_id: &str) -> Result<InstanceView, Error> {
        let record = self.instance_or_adopt(instance_id).await?;
        match record {
            Some(r) if matches!(r.state, InstanceState::Ready) => Ok(InstanceView {
                network: network_view(&r),
                service_id: r.service_id,
                plan_id: r.plan_id,
                parameters: r.parameters,
            }),
            Some(r) if r.state == InstanceState::Updating => Err(Error::Concurrency(format!(
                "service instance {instance_id} is being updated; retrieve it once the update has finished"
            ))),
            Some(r) if r.state == InstanceState::Provisioning => Err(Error::NotFound(format!(
                "service instance {instance_id} is still being provisioned"
            ))),
            _ => Err(Error::NotFound(format!(
                "service instance {instance_id} does not exist"
            ))),
        }
    }
}

/// Where an instance's database is, for GET instance: what the pool gave or the user named.
fn network_view(r: &InstanceRecord) -> Value {
    let p = &r.params;
    let mut view = serde_json::json!({
        "switchID": p.switch_id,
        "ipaddress": p.ip_address.to_string(),
        "maskLen": p.mask_len,
        "defaultRoute": p.default_route.to_string(),
        "zone": r.zone,
    });
    if let Some(lease) = &r.lease {
        view["network"] = Value::String(lease.network.clone());
    }
    view
}

/// Parameters as compared and stored: an absent or null object is an empty object.
pub(crate) fn normalise(parameters: Option<Value>) -> Value {
    match parameters {
        None | Some(Value::Null) => Value::Object(Default::default()),
        Some(v) => v,
    }
}

/// A generated admin user name: 3–20 letters and digits, starting with a letter.
pub(crate) fn generated_admin_user() -> String {
    format!("osb{}", random_alnum(12).to_lowercase())
}
