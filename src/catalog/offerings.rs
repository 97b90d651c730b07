//! The services and plans this broker offers, as data, and the `/v2/catalog` body for each API
//! version.
//!
//! Service, plan and SAKURA plan ids are those of the 2018 broker (sacloud/open-service-broker-sacloud):
//! platforms that registered it keep working. Never change them.
//!
//! Which catalog field appears from which API minor (a platform validating against an older
//! schema must not see newer fields; the OSB API specification's release notes list when each
//! field arrived):
//!
//! | object  | field                                                        | from |
//! |---------|--------------------------------------------------------------|------|
//! | service | name, id, description, tags, requires, bindable, metadata, plan_updateable, plans | 2.13 (all older) |
//! | service | instances_retrievable, bindings_retrievable                  | 2.14 |
//! | service | allow_context_updates                                        | 2.16 |
//! | plan    | id, name, description, metadata, free, bindable              | 2.13 (older) |
//! | plan    | schemas                                                      | 2.13 |
//! | plan    | plan_updateable, maximum_polling_duration                    | 2.15 |
//! | plan    | binding_rotatable                                            | 2.17 |
//!
//! `maintenance_info` (2.15) is deliberately never sent: once a plan has it, every provision and
//! update must be checked for `MaintenanceInfoConflict`, and we have no maintenance to offer.

use serde_json::{Map, Value, json};

use super::version::ApiVersion;
use crate::engine::Engine;

/// The longest a platform should poll one operation: the 60-minute provision deadline plus margin
/// for the poll that notices it and reports `failed`.
pub const MAXIMUM_POLLING_DURATION_SECS: u64 = 4200;

/// A service offering (one per database engine).
pub(crate) struct ServiceSpec {
    pub id: &'static str,
    pub name: &'static str,
    pub engine: Engine,
    pub description: &'static str,
    pub tags: [&'static str; 2],
    pub display_name: &'static str,
    pub long_description: &'static str,
}

/// A plan size, offered by both services under a different plan id each.
pub(crate) struct PlanSpec {
    pub name: &'static str,
    pub mariadb_id: &'static str,
    pub postgres_id: &'static str,
    pub sakura_plan_id: u64,
    pub disk: &'static str,
}

pub(crate) const SERVICES: [ServiceSpec; 2] = [
    ServiceSpec {
        id: "c4f353f3-8a59-437d-b4af-6a6f856248db",
        name: "sacloud-mariadb",
        engine: Engine::MariaDb,
        description: "SAKURA Cloud Database appliance(MariaDB)",
        tags: ["database", "mariadb"],
        display_name: "MariaDB on SAKURA Cloud",
        long_description: "A MariaDB database appliance managed by SAKURA Cloud, attached to a private switch \
                           in your SAKURA Cloud project. Bindings hand out the admin account (shared) or a \
                           user of their own (dedicated).",
    },
    ServiceSpec {
        id: "cc17eabf-0178-4eea-966e-2f5fb2aa62a9",
        name: "sacloud-postgres",
        engine: Engine::Postgres,
        description: "SAKURA Cloud Database appliance(PostgreSQL)",
        tags: ["database", "postgres"],
        display_name: "PostgreSQL on SAKURA Cloud",
        long_description: "A PostgreSQL database appliance managed by SAKURA Cloud, attached to a private \
                           switch in your SAKURA Cloud project. Bindings hand out the admin account (shared) \
                           or a user of their own (dedicated).",
    },
];

pub(crate) const PLANS: [PlanSpec; 6] = [
    PlanSpec {
        name: "db-10g",
        mariadb_id: "7320351e-4664-4df5-938c-c0bfe8551609",
        postgres_id: "590eb4a9-6efb-4f14-ac03-b66fe49adb2e",
        sakura_plan_id: 10,
        disk: "10GB",
    },
    PlanSpec {
        name: "db-30g",
        mariadb_id: "d4591cca-6361-4957-bfad-3f5e84ef2215",
        postgres_id: "feb02498-4cdb-404a-8606-4e56ec019d39",
        sakura_plan_id: 30,
        disk: "30GB",
    },
    PlanSpec {
        name: "db-90g",
        mariadb_id: "66907d28-6440-41ca-9f7f-ab9c4a0d171b",
        postgres_id: "bfff8edd-fb74-4e63-85e7-04f143db0a5f",
        sakura_plan_id: 90,
        disk: "90GB",
    },
    PlanSpec {
        name: "db-240g",
        mariadb_id: "b3321210-e5f0-4224-99cf-34abc4435ed3",
        postgres_id: "8ebb52e3-7b6a-47b6-87b3-cfe9af9b78bf",
        sakura_plan_id: 240,
        disk: "240GB",
    },
    PlanSpec {
        name: "db-500g",
        mariadb_id: "92a30279-e938-4e20-8e4e-50a0231e719e",
        postgres_id: "64d02933-b8c4-45fc-afda-7e7045af5b3f",
        sakura_plan_id: 500,
        disk: "500GB",
    },
    PlanSpec {
        name: "db-1t",
        mariadb_id: "8705f035-805b-4009-9158-1dd48aebcb41",
        postgres_id: "f4bf204d-a73f-4b41-b8e8-1417c47c18dc",
        sakura_plan_id: 1000,
        disk: "1TB",
    },
];

impl PlanSpec {
    /// This size's plan id within `service`.
    pub fn id_for(&self, service: &ServiceSpec) -> &'static str {
        match service.engine {
            Engine::MariaDb => self.mariadb_id,
            Engine::Postgres => self.postgres_id,
        }
    }

    /// The 2018 description (`DB 10GB`), kept so platforms show what they showed before.
    fn description(&self) -> String {
        format!("DB {}", self.disk)
    }
}

/// A plan of one service, as the broker layers see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    /// OSB plan id (a fixed UUID).
    pub id: String,
    /// OSB plan name, e.g. `db-10g`.
    pub name: String,
    /// OSB id of the service this plan belongs to.
    pub service_id: String,
    /// OSB name of that service, e.g. `sacloud-mariadb`.
    pub service_name: String,
    /// The database engine the appliance runs.
    pub engine: Engine,
    /// SAKURA Cloud database plan id (`Remark.Plan.ID`): 10, 30, 90, 240, 500 or 1000.
    pub sakura_plan_id: u64,
}

/// Every plan of every service, in catalog order.
pub(crate) fn all_plans() -> Vec<Plan> {
    SERVICES
        .iter()
        .flat_map(|service| {
            PLANS.iter().map(move |size| Plan {
                id: size.id_for(service).to_owned(),
                name: size.name.to_owned(),
                service_id: service.id.to_owned(),
                service_name: service.name.to_owned(),
                engine: service.engine,
                sakura_plan_id: size.sakura_plan_id,
            })
        })
        .collect()
}

/// The `/v2/catalog` document as seen by a platform speaking `version`. `schemas` is the plan
/// `schemas` object, the same for every plan.
pub(crate) fn catalog_document(version: ApiVersion, schemas: &Value) -> Value {
    let services: Vec<Value> = SERVICES
        .iter()
        .map(|service| service_object(service, version, schemas))
        .collect();
    json!({ "services": services })
}

fn service_object(service: &ServiceSpec, version: ApiVersion, schemas: &Value) -> Value {
    let plans: Vec<Value> = PLANS
        .iter()
        .map(|size| plan_object(service, size, version, schemas))
        .collect();
    let mut object = Map::new();
    object.insert("name".into(), json!(service.name));
    object.insert("id".into(), json!(service.id));
    object.insert("description".into(), json!(service.description));
    object.insert("tags".into(), json!(service.tags));
    object.insert("requires".into(), json!([]));
    object.insert("bindable".into(), json!(true));
    // SAKURA Cloud has no plan change for database appliances.
    object.insert("plan_updateable".into(), json!(false));
    object.insert(
        "metadata".into(),
        json!({
            "displayName": service.display_name,
            "longDescription": service.long_description,
            "providerDisplayName": "SAKURA Cloud",
        }),
    );
    if version.at_least(14) {
        object.insert("instances_retrievable".into(), json!(true));
        object.insert("bindings_retrievable".into(), json!(true));
    }
    if version.at_least(16) {
        // Nothing in the context changes what we built, so a context-only update has nothing to do.
        object.insert("allow_context_updates".into(), json!(false));
    }
    object.insert("plans".into(), Value::Array(plans));
    Value::Object(object)
}

fn plan_object(
    service: &ServiceSpec,
    size: &PlanSpec,
    version: ApiVersion,
    schemas: &Value,
) -> Value {
    let mut object = Map::new();
    object.insert("id".into(), json!(size.id_for(service)));
    object.insert("name".into(), json!(size.name));
    object.insert("description".into(), json!(size.description()));
    object.insert(
        "metadata".into(),
        json!({
            "displayName": format!("{} {}", service.display_name, size.disk),
            "bullets": [
                format!("{} database disk", size.disk),
                "Reachable only on the private switch you choose (switchID)",
                "Allow-list of client networks (allowNetworks)",
            ],
        }),
    );
    object.insert("free".into(), json!(false));
    object.insert("bindable".into(), json!(true));
    object.insert("schemas".into(), schemas.clone());
    if version.at_least(15) {
        object.insert("plan_updateable".into(), json!(false));
        object.insert(
            "maximum_polling_duration".into(),
            json!(MAXIMUM_POLLING_DURATION_SECS),
        );
    }
    if version.at_least(17) {
        // A rotation makes a binding like its predecessor with fresh credentials.
        object.insert("binding_rotatable".into(), json!(true));
    }
    Value::Object(object)
}
