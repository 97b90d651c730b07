//! The catalog: the services and plans this broker offers, their parameter schemas, the
//! `/v2/catalog` body per API version, plan lookup (OSB plan -> SAKURA plan id) and parameter
//! validation for provision, update and bind.
//!
//! Everything is built once: the plans and schemas in [`Catalog::new`], each version's body on
//! the first request for it (platforms speak one version; the other bodies are never built), so a
//! request only looks things up.

mod checks;
mod offerings;
mod param_error;
mod params;
mod properties;
mod repeats;
mod schema;
mod version;

#[cfg(test)]
mod tests;

use std::sync::OnceLock;

use bytes::Bytes;
use serde_json::Value;

pub use offerings::{MAXIMUM_POLLING_DURATION_SECS, Plan};
pub use param_error::ParamError;
pub use params::{BindParams, NetworkRequest, ProvisionParams, RequestedParams, UpdateParams};
pub use repeats::{
    CREATE_ONLY, CreateOnlyError, CreatedWith, changes_nothing, strip_repeated_create_only,
};
pub use version::ApiVersion;

use schema::{Schemas, shorten};

/// The oldest and newest API minor with a body of its own.
const FIRST_MINOR: u16 = ApiVersion::MIN.minor;
const LAST_MINOR: u16 = ApiVersion::LATEST.minor;
const BODIES: usize = (LAST_MINOR - FIRST_MINOR + 1) as usize;
const PLANS_PER_BODY: usize = offerings::SERVICES.len() * offerings::PLANS.len();

/// A `service_id`/`plan_id` pair the catalog does not have. Display is a sentence for the platform.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CatalogError {
    #[error(
        "service_id `{0}` is not a service of this broker; fetch /v2/catalog for the services it offers"
    )]
    UnknownService(String),
    #[error(
        "plan_id `{0}` is not a plan of this broker; fetch /v2/catalog for the plans it offers"
    )]
    UnknownPlan(String),
    #[error("plan_id `{plan_id}` belongs to service `{owner}`, not to service_id `{service_id}`")]
    PlanNotInService {
        plan_id: String,
        service_id: String,
        /// Name of the service the plan does belong to.
        owner: String,
    },
}

/// Services, plans and schemas, built once at start-up and shared by every request.
#[derive(Debug)]
pub struct Catalog {
    plans: Vec<Plan>,
    /// The `/v2/catalog` body for 2.13, 2.14, ... 2.17, in that order, each serialised on first use.
    bodies: [OnceLock<Bytes>; BODIES],
    /// The plans' `schemas` object, serialised once for all bodies.
    plan_schemas: Vec<u8>,
    schemas: Schemas,
    default_zone: String,
}

impl Catalog {
    /// Builds the catalog. `zones` are the zones users may pick with the `zone` parameter;
    /// `default_zone` is added to them if missing, so the enum is never empty.
    pub fn new(zones: Vec<String>, default_zone: String) -> Catalog {
        Self::with_pools(zones, default_zone, false)
    }

    /// Like [`Catalog::new`]; with network `pools` the create schema leaves the network
    /// parameters optional.
    pub fn with_pools(zones: Vec<String>, default_zone: String, pools: bool) -> Catalog {
        let mut allowed: Vec<String> = Vec::with_capacity(zones.len() + 1);
        for zone in zones
            .into_iter()
            .chain(std::iter::once(default_zone.clone()))
        {
            if !allowed.contains(&zone) {
                allowed.push(zone);
            }
        }
        let schemas = Schemas::with_pools(&allowed, pools);
        // A Value built from strings and numbers always serialises.
        let plan_schemas =
            serde_json::to_vec(&schemas.catalog_object()).expect("schemas serialise");
        Catalog {
            plans: offerings::all_plans(),
            bodies: Default::default(),
            plan_schemas,
            schemas,
            default_zone,
        }
    }

    /// The `/v2/catalog` body for a platform speaking `version`. Minors after 2.17 get the 2.17
    /// body; versions the broker does not support (the API layer answers those with 412) get 2.13.
    pub fn json(&self, version: ApiVersion) -> Bytes {
        let minor = if version.major == 2 {
            version.minor.clamp(FIRST_MINOR, LAST_MINOR)
        } else {
            FIRST_MINOR
        };
        self.bodies[usize::from(minor - FIRST_MINOR)]
            .get_or_init(|| {
                let version = ApiVersion { major: 2, minor };
                let marker = Value::String(SCHEMAS_MARKER.into());
                let document = offerings::catalog_document(version, &marker);
                let body = serde_json::to_vec(&document).expect("catalog serialises");
                Bytes::from(splice_schemas(&body, &self.plan_schemas))
            })
            .clone()
    }

    /// Looks up a plan by the ids a platform sent.
    pub fn plan(&self, service_id: &str, plan_id: &str) -> Result<&Plan, CatalogError> {
        if !self.plans.iter().any(|p| p.service_id == service_id) {
            return Err(CatalogError::UnknownService(shorten(service_id)));
        }
        match self.plans.iter().find(|p| p.id == plan_id) {
            Some(plan) if plan.service_id == service_id => Ok(plan),
            Some(plan) => Err(CatalogError::PlanNotInService {
                plan_id: shorten(plan_id),
                service_id: shorten(service_id),
                owner: plan.service_name.clone(),
            }),
            None => Err(CatalogError::UnknownPlan(shorten(plan_id))),
        }
    }

    /// Every plan of every service, in catalog order.
    pub fn plans(&self) -> &[Plan] {
        &self.plans
    }

    /// The zone used when a provision does not name one.
    pub fn default_zone(&self) -> &str {
        &self.default_zone
    }

    /// Checks provision parameters against the plan's create schema and the rules it cannot
    /// express, every network setting required (provisioning without pools).
    pub fn validate_provision(
        &self,
        plan: &Plan,
        params: Option<&Value>,
    ) -> Result<ProvisionParams, ParamError> {
        self.validate_provision_request(plan, params)?.complete()
    }

    /// Checks provision parameters as [`Catalog::validate_provision`] does, but leaves the
    /// network members that are missing for the broker to settle from a pool.
    pub fn validate_provision_request(
        &self,
        plan: &Plan,
        params: Option<&Value>,
    ) -> Result<RequestedParams, ParamError> {
        // Absent parameters are checked as `{}`, so the error is the schema's own "required" one.
        let empty = Value::Object(serde_json::Map::new());
        let params = present(params).unwrap_or(&empty);
        self.schemas.create.check(params)?;
        params::provision(object(params)?, plan.engine)
    }

    /// Checks update parameters; absent or `null` parameters change nothing. Every plan shares
    /// the update schema today; the plan is taken so that plans may differ later.
    pub fn validate_update(
        &self,
        _plan: &Plan,
        params: Option<&Value>,
    ) -> Result<UpdateParams, ParamError> {
        let Some(params) = present(params) else {
            return Ok(UpdateParams::default());
        };
        self.schemas.update.check(params)?;
        params::update(object(params)?)
    }

    /// Checks bind parameters; absent or `null` parameters mean the defaults. Every plan shares
    /// the bind schema today; the plan is taken so that plans may differ later.
    pub fn validate_bind(
        &self,
        _plan: &Plan,
        params: Option<&Value>,
    ) -> Result<BindParams, ParamError> {
        let Some(params) = present(params) else {
            return Ok(BindParams::default());
        };
        self.schemas.bind.check(params)?;
        params::bind(object(params)?)
    }
}

/// Stands in for the plan `schemas` object while a body is built; [`splice_schemas`] then puts
/// the schemas, serialised once, in its place. Every plan publishes the same object, and deep
/// copies of it into the twelve plans of five bodies were most of the catalog's start-up time.
/// No text of the catalog contains a NUL, so the marker cannot match anything else.
const SCHEMAS_MARKER: &str = "\u{0}schemas\u{0}";

/// `body` with every serialised [`SCHEMAS_MARKER`] replaced by `schemas`.
fn splice_schemas(body: &[u8], schemas: &[u8]) -> Vec<u8> {
    // Serialising a string cannot fail.
    let marker = serde_json::to_vec(SCHEMAS_MARKER).expect("marker serialises");
    let mut out = Vec::with_capacity(body.len() + schemas.len() * PLANS_PER_BODY);
    let mut rest = body;
    while let Some(at) = rest.windows(marker.len()).position(|w| w == marker) {
        out.extend_from_slice(&rest[..at]);
        out.extend_from_slice(schemas);
        rest = &rest[at + marker.len()..];
    }
    out.extend_from_slice(rest);
    out
}

/// `null` parameters mean the same as none.
fn present(params: Option<&Value>) -> Option<&Value> {
    params.filter(|v| !v.is_null())
}

fn object(params: &Value) -> Result<&serde_json::Map<String, Value>, ParamError> {
    params
        .as_object()
        .ok_or_else(|| ParamError::new("parameters", "must be a JSON object"))
}
