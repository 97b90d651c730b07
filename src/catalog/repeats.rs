//! Updates from platforms that always send the whole parameter set (Crossplane's provider-osb
//! re-sends every key of its spec on each PATCH): the create-only keys come along unchanged and
//! must not fail the update, and an update that asks for what the instance already has changes
//! nothing.
//!
//! Values are compared canonically, the way provisioning reads them: `switchID` as a number or a
//! string, addresses as parsed addresses, networks as normalised sets, an absent port as the
//! engine's default.

use std::net::Ipv4Addr;

use serde_json::{Map, Value};

use super::checks::{ipv4, switch_id};
use super::param_error::ParamError;
use super::params::{ProvisionParams, UpdateParams};
use super::properties::rule;
use crate::engine::Engine;

/// The keys only provisioning accepts.
pub const CREATE_ONLY: [&str; 7] = [
    "switchID",
    "ipaddress",
    "maskLen",
    "defaultRoute",
    "username",
    "databaseVersion",
    "zone",
];

/// Why a create-only key in an update cannot be let through.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CreateOnlyError {
    /// The value is not even a valid value for that key (400).
    #[error("{0}")]
    Invalid(ParamError),
    /// A valid value that differs from the instance's (an unsupported change: 422).
    #[error("{0}")]
    Changed(ParamError),
}

/// The instance's create-time settings, as the update compares them.
#[derive(Clone, Debug)]
pub struct CreatedWith<'a> {
    pub params: &'a ProvisionParams,
    /// The zone the instance lives in (the default zone when provisioning named none).
    pub zone: &'a str,
}

/// `params` without the create-only keys whose value equals the instance's. A create-only key
/// with another value is refused, naming the key; anything else is left for the update schema.
pub fn strip_repeated_create_only(
    params: Option<&Value>,
    created: &CreatedWith<'_>,
) -> Result<Option<Value>, CreateOnlyError> {
    let Some(Value::Object(map)) = params else {
        return Ok(params.cloned());
    };
    let mut rest = Map::with_capacity(map.len());
    for (key, value) in map {
        if !CREATE_ONLY.contains(&key.as_str()) {
            rest.insert(key.clone(), value.clone());
            continue;
        }
        let (same, current) = same_as_created(key, value, map, created)?;
        if !same {
            return Err(CreateOnlyError::Changed(ParamError::new(
                key.as_str(),
                format!(
                    "cannot be changed after the instance is created (it is {current}); send the value the instance was provisioned with, or leave the key out, or provision a new instance"
                ),
            )));
        }
    }
    Ok(Some(Value::Object(rest)))
}

/// Whether `value` for the create-only `key` is the instance's value, and that value for people.
fn same_as_created(
    key: &str,
    value: &Value,
    all: &Map<String, Value>,
    created: &CreatedWith<'_>,
) -> Result<(bool, String), CreateOnlyError> {
    let p = created.params;
    let invalid = |rule: &str| CreateOnlyError::Invalid(ParamError::new(key, rule));
    let shown = |v: Option<&str>| v.map_or_else(|| "not set".to_owned(), |v| format!("{v:?}"));
    Ok(match key {
        "switchID" => {
            let id = switch_id(Some(value)).map_err(CreateOnlyError::Invalid)?;
            (id == p.switch_id, format!("{:?}", p.switch_id))
        }
        "ipaddress" | "defaultRoute" => {
            let addr: Ipv4Addr = ipv4(all, key, rule_for(key)).map_err(CreateOnlyError::Invalid)?;
            let current = if key == "ipaddress" {
                p.ip_address
            } else {
                p.default_route
            };
            (addr == current, current.to_string())
        }
        "maskLen" => {
            let n = value.as_u64().ok_or_else(|| invalid(rule::MASK_LEN))?;
            (n == u64::from(p.mask_len), p.mask_len.to_string())
        }
        "username" => {
            let name = value.as_str().ok_or_else(|| invalid(rule::USERNAME))?;
            (
                p.username.as_deref() == Some(name),
                shown(p.username.as_deref()),
            )
        }
        "databaseVersion" => {
            let version = value
                .as_str()
                .ok_or_else(|| invalid(rule::DATABASE_VERSION))?;
            (
                p.database_version.as_deref() == Some(version),
                shown(p.database_version.as_deref()),
            )
        }
        _ => {
            let zone = value
                .as_str()
                .ok_or_else(|| invalid("must be a zone name"))?;
            (zone == created.zone, format!("{:?}", created.zone))
        }
    })
}

fn rule_for(key: &str) -> &'static str {
    if key == "ipaddress" {
        rule::IP_ADDRESS
    } else {
        rule::DEFAULT_ROUTE
    }
}

/// Whether applying `update` to an instance created with `current` would change nothing.
pub fn changes_nothing(update: &UpdateParams, current: &ProvisionParams, engine: Engine) -> bool {
    if update.rotate_admin_password {
        return false;
    }
    let networks_same = update.allow_networks.as_ref().is_none_or(|nets| {
        nets.len() == current.allow_networks.len()
            && nets.iter().all(|n| current.allow_networks.contains(n))
    });
    let port_same = update
        .port
        .is_none_or(|port| port == current.port.unwrap_or(engine.default_port()));
    let time_same = update
        .backup_time
        .as_ref()
        .is_none_or(|t| current.backup_time.as_ref() == Some(t));
    let rotate_same = update
        .backup_rotate
        .is_none_or(|r| current.backup_rotate == Some(r));
    networks_same && port_same && time_same && rotate_same
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn created() -> ProvisionParams {
        super::super::params::provision(
            json!({
                "switchID": "112233445566", "ipaddress": "192.168.0.11", "maskLen": 24,
                "defaultRoute": "192.168.0.1", "backupRotate": 3, "allowNetworks": ["10.0.0.7"],
            })
            .as_object()
            .expect("object"),
            Engine::MariaDb,
        )
        .and_then(|r| r.complete())
        .expect("valid")
    }

    fn strip(params: Value) -> Result<Option<Value>, CreateOnlyError> {
        let p = created();
        strip_repeated_create_only(
            Some(&params),
            &CreatedWith {
                params: &p,
                zone: "is1a",
            },
        )
    }

    #[test]
    fn repeated_create_only_keys_are_dropped_in_any_canonical_form() {
        let whole = json!({
            "backupRotate": 3, "switchID": 112233445566_u64, "ipaddress": "192.168.0.11",
            "maskLen": 24, "defaultRoute": "192.168.0.1", "zone": "is1a",
        });
        assert_eq!(strip(whole), Ok(Some(json!({"backupRotate": 3}))));
        assert_eq!(
            strip(json!({"switchID": "112233445566"})),
            Ok(Some(json!({})))
        );
        assert_eq!(strip(Value::Null), Ok(Some(Value::Null)));
    }

    #[test]
    fn a_real_change_of_a_create_only_key_names_the_key() {
        for (params, field) in [
            (json!({"defaultRoute": "192.168.0.254"}), "defaultRoute"),
            (json!({"switchID": 112233445567_u64}), "switchID"),
            (json!({"maskLen": 16}), "maskLen"),
            (json!({"zone": "tk1a"}), "zone"),
            (json!({"username": "someone"}), "username"),
            (json!({"databaseVersion": "10.11"}), "databaseVersion"),
        ] {
            match strip(params.clone()) {
                Err(CreateOnlyError::Changed(e)) => {
                    assert_eq!(e.field, field, "{params}");
                    assert!(e.message.contains("cannot be changed"), "{e}");
                }
                other => panic!("{params}: {other:?}"),
            }
        }
    }

    #[test]
    fn an_invalid_create_only_value_is_a_bad_request() {
        for params in [
            json!({"switchID": "abc"}),
            json!({"ipaddress": "300.1.1.1"}),
            json!({"maskLen": "24"}),
        ] {
            assert!(
                matches!(strip(params.clone()), Err(CreateOnlyError::Invalid(_))),
                "{params}"
            );
        }
    }

    #[test]
    fn updates_that_ask_for_the_current_settings_change_nothing() {
        let p = created();
        let same = UpdateParams {
            allow_networks: Some(vec!["10.0.0.7/32".parse().expect("net")]),
            port: Some(3306),
            backup_rotate: Some(3),
            ..UpdateParams::default()
        };
        assert!(changes_nothing(&same, &p, Engine::MariaDb));
        assert!(changes_nothing(
            &UpdateParams::default(),
            &p,
            Engine::MariaDb
        ));
        for changed in [
            UpdateParams {
                port: Some(3307),
                ..UpdateParams::default()
            },
            UpdateParams {
                backup_rotate: Some(4),
                ..UpdateParams::default()
            },
            UpdateParams {
                backup_time: Some("03:30".into()),
                ..UpdateParams::default()
            },
            UpdateParams {
                allow_networks: Some(vec![]),
                ..UpdateParams::default()
            },
            UpdateParams {
                rotate_admin_password: true,
                ..UpdateParams::default()
            },
        ] {
            assert!(
                !changes_nothing(&changed, &p, Engine::MariaDb),
                "{changed:?}"
            );
        }
        assert!(!changes_nothing(
            &UpdateParams {
                port: Some(3306),
                ..UpdateParams::default()
            },
            &p,
            Engine::Postgres
        ));
    }
}
