//! Tests of the catalog through its public API: the served documents and parameter validation.

mod document;
mod provision;
mod update_bind;

use super::{ApiVersion, Catalog, Plan};

fn catalog() -> Catalog {
    Catalog::new(vec!["tk1a".into(), "is1b".into()], "is1a".into())
}

fn v(minor: u16) -> ApiVersion {
    ApiVersion { major: 2, minor }
}

fn plan<'a>(catalog: &'a Catalog, service: &str, plan: &str) -> &'a Plan {
    catalog
        .plans()
        .iter()
        .find(|p| p.service_name == service && p.name == plan)
        .expect("plan exists")
}
