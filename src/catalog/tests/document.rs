//! The `/v2/catalog` bodies: fixed ids, version gating, schemas.

use std::collections::BTreeSet;

use serde_json::Value;

use super::{catalog, v};
use crate::catalog::{ApiVersion, CatalogError};
use crate::engine::Engine;

fn body(minor: u16) -> Value {
    serde_json::from_slice(&catalog().json(v(minor))).expect("catalog body is JSON")
}

fn keys(object: &Value) -> BTreeSet<String> {
    object
        .as_object()
        .expect("object")
        .keys()
        .cloned()
        .collect()
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

const SERVICE_213: &[&str] = &[
    "name",
    "id",
    "description",
    "tags",
    "requires",
    "bindable",
    "metadata",
    "plan_updateable",
    "plans",
];
const PLAN_213: &[&str] = &[
    "id",
    "name",
    "description",
    "metadata",
    "free",
    "bindable",
    "schemas",
];

/// Service and plan keys expected at a minor, per the table in offerings.rs.
fn expected(minor: u16) -> (BTreeSet<String>, BTreeSet<String>) {
    let mut service = set(SERVICE_213);
    let mut plan = set(PLAN_213);
    if minor >= 14 {
        service.extend(set(&["instances_retrievable", "bindings_retrievable"]));
    }
    if minor >= 15 {
        plan.extend(set(&["plan_updateable", "maximum_polling_duration"]));
    }
    if minor >= 16 {
        service.insert("allow_context_updates".into());
    }
    if minor >= 17 {
        plan.insert("binding_rotatable".into());
    }
    (service, plan)
}

#[test]
fn each_minor_gets_exactly_its_fields() {
    for minor in 13..=17 {
        let doc = body(minor);
        assert_eq!(keys(&doc), set(&["services"]));
        let (service_keys, plan_keys) = expected(minor);
        let services = doc["services"].as_array().expect("services");
        assert_eq!(services.len(), 2);
        for service in services {
            assert_eq!(keys(service), service_keys, "2.{minor} service");
            let plans = service["plans"].as_array().expect("plans");
            assert_eq!(plans.len(), 6);
            for plan in plans {
                assert_eq!(keys(plan), plan_keys, "2.{minor} plan");
            }
        }
    }
}

#[test]
fn a_2_13_platform_sees_no_newer_field_anywhere() {
    let text = String::from_utf8(catalog().json(v(13)).to_vec()).expect("utf-8");
    for newer in [
        "instances_retrievable",
        "bindings_retrievable",
        "maximum_polling_duration",
        "maintenance_info",
        "binding_rotatable",
        "allow_context_updates",
    ] {
        assert!(!text.contains(newer), "2.13 body mentions {newer}");
    }
}

#[test]
fn newer_fields_have_their_values_and_maintenance_info_is_never_sent() {
    let doc = body(17);
    let service = &doc["services"][0];
    assert_eq!(service["instances_retrievable"], true);
    assert_eq!(service["bindings_retrievable"], true);
    assert_eq!(service["allow_context_updates"], false);
    assert_eq!(service["plan_updateable"], false);
    let plan = &service["plans"][0];
    assert_eq!(plan["maximum_polling_duration"], 4200);
    assert_eq!(plan["plan_updateable"], false);
    assert_eq!(plan["binding_rotatable"], true);
    assert_eq!(plan["free"], false);
    assert_eq!(plan["bindable"], true);
    assert!(plan.get("maintenance_info").is_none());
}

#[test]
fn newer_and_unsupported_versions_map_to_the_nearest_body() {
    let catalog = catalog();
    assert_eq!(catalog.json(v(18)), catalog.json(v(17)));
    assert_eq!(catalog.json(v(40)), catalog.json(v(17)));
    assert_eq!(catalog.json(v(12)), catalog.json(v(13)));
    let three = ApiVersion {
        major: 3,
        minor: 20,
    };
    assert_eq!(catalog.json(three), catalog.json(v(13)));
    assert_ne!(catalog.json(v(13)), catalog.json(v(14)));
}

/// The ids of the 2018 broker (sacloud/open-service-broker-sacloud), which registered platforms
/// still hold: (plan name, MariaDB id, PostgreSQL id, SAKURA plan id).
const PLAN_IDS: [(&str, &str, &str, u64); 6] = [
    (
        "db-10g",
        "7320351e-4664-4df5-938c-c0bfe8551609",
        "590eb4a9-6efb-4f14-ac03-b66fe49adb2e",
        10,
    ),
    (
        "db-30g",
        "d4591cca-6361-4957-bfad-3f5e84ef2215",
        "feb02498-4cdb-404a-8606-4e56ec019d39",
        30,
    ),
    (
        "db-90g",
        "66907d28-6440-41ca-9f7f-ab9c4a0d171b",
        "bfff8edd-fb74-4e63-85e7-04f143db0a5f",
        90,
    ),
    (
        "db-240g",
        "b3321210-e5f0-4224-99cf-34abc4435ed3",
        "8ebb52e3-7b6a-47b6-87b3-cfe9af9b78bf",
        240,
    ),
    (
        "db-500g",
        "92a30279-e938-4e20-8e4e-50a0231e719e",
        "64d02933-b8c4-45fc-afda-7e7045af5b3f",
        500,
    ),
    (
        "db-1t",
        "8705f035-805b-4009-9158-1dd48aebcb41",
        "f4bf204d-a73f-4b41-b8e8-1417c47c18dc",
        1000,
    ),
];
const MARIADB: &str = "c4f353f3-8a59-437d-b4af-6a6f856248db";
const POSTGRES: &str = "cc17eabf-0178-4eea-966e-2f5fb2aa62a9";

#[test]
fn services_keep_their_2018_ids_names_tags_and_descriptions() {
    let doc = body(13);
    let mariadb = &doc["services"][0];
    assert_eq!(mariadb["id"], MARIADB);
    assert_eq!(mariadb["name"], "sacloud-mariadb");
    assert_eq!(mariadb["tags"], serde_json::json!(["database", "mariadb"]));
    assert_eq!(
        mariadb["description"],
        "SAKURA Cloud Database appliance(MariaDB)"
    );
    let postgres = &doc["services"][1];
    assert_eq!(postgres["id"], POSTGRES);
    assert_eq!(postgres["name"], "sacloud-postgres");
    assert_eq!(
        postgres["tags"],
        serde_json::json!(["database", "postgres"])
    );
    assert_eq!(
        postgres["description"],
        "SAKURA Cloud Database appliance(PostgreSQL)"
    );
    for service in [mariadb, postgres] {
        assert_eq!(service["bindable"], true);
        assert_eq!(service["requires"], serde_json::json!([]));
        assert_eq!(service["metadata"]["providerDisplayName"], "SAKURA Cloud");
        assert!(service["metadata"]["displayName"].is_string());
        assert!(service["metadata"]["longDescription"].is_string());
    }
}

#[test]
fn plans_keep_their_2018_ids_and_sakura_plan_ids() {
    let doc = body(13);
    let catalog = catalog();
    for (i, (name, mariadb_id, postgres_id, sakura)) in PLAN_IDS.iter().enumerate() {
        for (s, service_id, plan_id, engine) in [
            (0, MARIADB, mariadb_id, Engine::MariaDb),
            (1, POSTGRES, postgres_id, Engine::Postgres),
        ] {
            let listed = &doc["services"][s]["plans"][i];
            assert_eq!(listed["id"], *plan_id);
            assert_eq!(listed["name"], *name);
            assert!(
                listed["description"]
                    .as_str()
                    .is_some_and(|d| d.starts_with("DB "))
            );
            assert!(listed["metadata"]["displayName"].is_string());
            assert!(listed["metadata"]["bullets"].is_array());
            assert!(listed["metadata"].get("costs").is_none());
            let plan = catalog.plan(service_id, plan_id).expect("plan found");
            assert_eq!(plan.sakura_plan_id, *sakura);
            assert_eq!(plan.engine, engine);
            assert_eq!(plan.name, *name);
        }
    }
    assert_eq!(doc["services"][0]["plans"][0]["description"], "DB 10GB");
}

#[test]
fn plan_lookup_names_what_is_wrong() {
    let catalog = catalog();
    let unknown_service = catalog
        .plan("nope", PLAN_IDS[0].1)
        .expect_err("unknown service");
    assert_eq!(unknown_service, CatalogError::UnknownService("nope".into()));
    assert!(unknown_service.to_string().contains("`nope`"));

    let unknown_plan = catalog
        .plan(MARIADB, "missing-plan")
        .expect_err("unknown plan");
    assert_eq!(
        unknown_plan,
        CatalogError::UnknownPlan("missing-plan".into())
    );
    assert!(unknown_plan.to_string().contains("`missing-plan`"));

    let crossed = catalog
        .plan(MARIADB, PLAN_IDS[0].2)
        .expect_err("postgres plan under mariadb");
    assert!(matches!(crossed, CatalogError::PlanNotInService { .. }));
    let text = crossed.to_string();
    assert!(
        text.contains(PLAN_IDS[0].2) && text.contains(MARIADB) && text.contains("sacloud-postgres"),
        "{text}"
    );

    let long = "x".repeat(5000);
    assert!(
        catalog
            .plan(&long, "p")
            .expect_err("long id")
            .to_string()
            .len()
            < 200
    );
}

#[test]
fn every_schema_declares_draft_04_compiles_and_stays_small() {
    let doc = body(17);
    let mut count = 0;
    for service in doc["services"].as_array().expect("services") {
        for plan in service["plans"].as_array().expect("plans") {
            let schemas = &plan["schemas"];
            for schema in [
                &schemas["service_instance"]["create"]["parameters"],
                &schemas["service_instance"]["update"]["parameters"],
                &schemas["service_binding"]["create"]["parameters"],
            ] {
                assert_eq!(schema["$schema"], "http://json-schema.org/draft-04/schema#");
                assert_eq!(schema["additionalProperties"], false);
                assert!(jsonschema::draft4::meta::is_valid(schema), "{schema}");
                jsonschema::draft4::new(schema).expect("schema compiles");
                assert!(serde_json::to_vec(schema).expect("bytes").len() < 64 * 1024);
                for (name, property) in schema["properties"].as_object().expect("properties") {
                    assert!(
                        property["description"].is_string(),
                        "{name} has no description"
                    );
                }
                count += 1;
            }
        }
    }
    assert_eq!(count, 36);
}

#[test]
fn the_zone_enum_lists_configured_zones_and_the_default_once() {
    let doc = body(13);
    let create =
        &doc["services"][0]["plans"][0]["schemas"]["service_instance"]["create"]["parameters"];
    assert_eq!(
        create["properties"]["zone"]["enum"],
        serde_json::json!(["tk1a", "is1b", "is1a"])
    );
    assert_eq!(
        create["required"],
        serde_json::json!(["switchID", "ipaddress", "maskLen", "defaultRoute"])
    );
    let only_default = crate::catalog::Catalog::new(vec!["is1a".into()], "is1a".into());
    assert_eq!(only_default.default_zone(), "is1a");
    let doc: Value = serde_json::from_slice(&only_default.json(v(13))).expect("json");
    let zone = &doc["services"][1]["plans"][5]["schemas"]["service_instance"]["create"]["parameters"]
        ["properties"]["zone"];
    assert_eq!(zone["enum"], serde_json::json!(["is1a"]));
}

#[test]
fn the_catalog_can_be_shared_across_threads() {
    fn shared<T: Send + Sync + 'static>() {}
    shared::<crate::catalog::Catalog>();
}

/// The bodies are built with the schemas spliced in after serialisation: each must be exactly
/// what serialising the whole document gives.
#[test]
fn spliced_bodies_equal_the_whole_documents_serialised() {
    let catalog = catalog();
    let zones = ["tk1a", "is1b", "is1a"].map(String::from);
    let schemas = crate::catalog::schema::Schemas::new(&zones).catalog_object();
    for minor in 13..=17 {
        let whole = crate::catalog::offerings::catalog_document(v(minor), &schemas);
        assert_eq!(
            catalog.json(v(minor)).as_ref(),
            serde_json::to_vec(&whole).expect("serialises").as_slice(),
            "2.{minor}"
        );
    }
}
