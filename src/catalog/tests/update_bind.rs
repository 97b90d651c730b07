//! Update and bind parameter validation.

use serde_json::{Value, json};

use super::{catalog, plan};
use crate::binder::Mode;
use crate::catalog::{BindParams, Catalog, ParamError, UpdateParams};

fn update(params: Option<&Value>) -> Result<UpdateParams, ParamError> {
    let catalog = catalog();
    let plan = plan(&catalog, "sacloud-postgres", "db-1t").clone();
    catalog.validate_update(&plan, params)
}

#[test]
fn update_parameters() {
    assert_eq!(update(None), Ok(UpdateParams::default()));
    assert_eq!(update(Some(&Value::Null)), Ok(UpdateParams::default()));
    assert_eq!(update(Some(&json!({}))), Ok(UpdateParams::default()));
    let changed = update(Some(&json!({
        "allowNetworks": ["10.1.2.3/16"], "port": 5433, "backupTime": "04:00",
        "backupRotate": 2, "rotateAdminPassword": true,
    })))
    .expect("valid");
    assert_eq!(
        changed.allow_networks,
        Some(vec!["10.1.0.0/16".parse().expect("net")])
    );
    assert_eq!(changed.port, Some(5433));
    assert!(changed.rotate_admin_password);
    let round = serde_json::to_value(&changed).expect("serialises");
    assert_eq!(round["rotateAdminPassword"], true);
    assert_eq!(
        update(Some(&round)),
        Ok(changed.clone()),
        "canonical form is valid input"
    );
    assert_eq!(
        serde_json::from_value::<UpdateParams>(round).expect("deserialises"),
        changed
    );

    let create_only = update(Some(&json!({"switchID": "112233445566"}))).expect_err("create only");
    assert_eq!(create_only.field, "switchID");
    assert!(
        create_only.message.contains("cannot be changed"),
        "{create_only}"
    );
    for (params, field) in [
        (json!({"rotateAdminPassword": "yes"}), "rotateAdminPassword"),
        (json!({"port": 80}), "port"),
        (
            json!({"allowNetworks": ["1.2.3.4", "x"]}),
            "allowNetworks[1]",
        ),
        (json!({"backupTime": "25:00"}), "backupTime"),
        (json!({"bogus": 1}), "bogus"),
    ] {
        assert_eq!(
            update(Some(&params)).expect_err("rejected").field,
            field,
            "{params}"
        );
    }
}

fn bind(catalog: &Catalog, params: Option<&Value>) -> Result<BindParams, ParamError> {
    let plan = plan(catalog, "sacloud-mariadb", "db-90g").clone();
    catalog.validate_bind(&plan, params)
}

#[test]
fn bind_parameters() {
    let catalog = catalog();
    assert_eq!(bind(&catalog, None), Ok(BindParams::default()));
    assert_eq!(
        bind(&catalog, Some(&Value::Null)),
        Ok(BindParams::default())
    );
    for mode in ["shared", "dedicated"] {
        let params = bind(&catalog, Some(&json!({ "mode": mode }))).expect("valid mode");
        assert_eq!(params.mode.map(Mode::as_str), Some(mode));
    }
    assert_eq!(
        bind(&catalog, Some(&json!({"mode": "exclusive"})))
            .expect_err("bad")
            .field,
        "mode"
    );
    assert_eq!(
        bind(&catalog, Some(&json!({"role": "ro"})))
            .expect_err("unknown")
            .field,
        "role"
    );
    assert_eq!(
        bind(&catalog, Some(&json!([])))
            .expect_err("not object")
            .field,
        "parameters"
    );
}

/// Stored operations carry an update's networks as CIDR strings, as the user writes them.
#[test]
fn update_networks_are_stored_as_cidr_strings() {
    let params = UpdateParams {
        allow_networks: Some(vec!["10.0.0.0/8".parse().expect("cidr")]),
        ..UpdateParams::default()
    };
    let value = serde_json::to_value(&params).expect("serialises");
    assert_eq!(value, json!({"allowNetworks": ["10.0.0.0/8"]}));
    assert_eq!(
        serde_json::from_value::<UpdateParams>(value).expect("deserialises"),
        params
    );
    assert!(
        serde_json::from_value::<UpdateParams>(json!({"allowNetworks": ["10.0.0.0/33"]})).is_err()
    );
}
