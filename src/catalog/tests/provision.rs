//! Provision parameter validation: every rule with a failing case (naming the field) and a
//! passing case.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use serde_json::{Value, json};

use super::{catalog, plan};
use crate::catalog::{ParamError, ProvisionParams};

fn base() -> Value {
    json!({"switchID": "112233445566", "ipaddress": "192.168.0.11", "maskLen": 24, "defaultRoute": "192.168.0.1"})
}

/// `base()` with `changes` merged in (a `null` change removes the key).
fn with(changes: Value) -> Value {
    let mut params = base();
    for (key, value) in changes.as_object().expect("object") {
        if value.is_null() {
            params.as_object_mut().expect("object").remove(key);
        } else {
            params[key] = value.clone();
        }
    }
    params
}

fn provision(params: &Value) -> Result<ProvisionParams, ParamError> {
    provision_on("sacloud-mariadb", params)
}

fn provision_on(service: &str, params: &Value) -> Result<ProvisionParams, ParamError> {
    let catalog = catalog();
    let plan = plan(&catalog, service, "db-10g").clone();
    catalog.validate_provision(&plan, Some(params))
}

#[track_caller]
fn rejects(params: Value, field: &str) -> ParamError {
    let error = provision(&params).expect_err(&format!("{params} should be rejected"));
    assert_eq!(error.field, field, "{params}: {error}");
    assert!(!error.message.is_empty());
    error
}

#[test]
fn the_minimal_parameters_pass_and_switch_id_may_be_a_string_or_a_number() {
    let from_string = provision(&base()).expect("valid");
    assert_eq!(from_string.switch_id, "112233445566");
    assert_eq!(from_string.ip_address, Ipv4Addr::new(192, 168, 0, 11));
    assert_eq!(from_string.mask_len, 24);
    assert_eq!(from_string.default_route, Ipv4Addr::new(192, 168, 0, 1));
    assert_eq!(from_string.allow_networks, Vec::<Ipv4Net>::new());
    assert_eq!(from_string.zone, None);
    let from_number = provision(&with(json!({"switchID": 112233445566_u64}))).expect("valid");
    assert_eq!(from_number, from_string);
}

#[test]
fn switch_id_must_be_twelve_digits() {
    for bad in [
        json!("12345"),
        json!(12345),
        json!("11223344556a"),
        json!(true),
        json!(1_000_000_000_000_u64),
        json!("1122334455667"),
        json!(-112233445566_i64),
        json!(112233445566.5),
    ] {
        rejects(with(json!({ "switchID": bad })), "switchID");
    }
}

#[test]
fn missing_or_null_parameters_name_switch_id() {
    let catalog = catalog();
    let plan = plan(&catalog, "sacloud-postgres", "db-30g").clone();
    for params in [None, Some(&Value::Null)] {
        let error = catalog
            .validate_provision(&plan, params)
            .expect_err("required");
        assert_eq!(error.field, "switchID");
        assert_eq!(
            error.to_string(),
            "parameter `switchID`: is required (provisioning needs switchID, ipaddress, maskLen and defaultRoute)"
        );
    }
    rejects(json!({}), "switchID");
}

#[test]
fn each_required_field_is_named_when_missing() {
    for field in ["switchID", "ipaddress", "maskLen", "defaultRoute"] {
        let error = rejects(with(json!({ field: null })), field);
        assert!(error.message.contains("required"), "{error}");
    }
}

#[test]
fn parameters_must_be_an_object() {
    for bad in [json!("x"), json!([1]), json!(3)] {
        rejects(bad, "parameters");
    }
}

#[test]
fn addresses_must_be_ipv4() {
    for bad in ["192.168.0.256", "not-an-ip", "192.168.0", "::1", ""] {
        rejects(with(json!({ "ipaddress": bad })), "ipaddress");
        rejects(with(json!({ "defaultRoute": bad })), "defaultRoute");
    }
    rejects(with(json!({"ipaddress": 3232235531_u64})), "ipaddress");
}

#[test]
fn mask_len_must_be_between_8_and_29() {
    for bad in [json!(7), json!(30), json!("24"), json!(-1)] {
        let error = rejects(with(json!({ "maskLen": bad })), "maskLen");
        assert_eq!(
            error.to_string(),
            "parameter `maskLen`: must be an integer between 8 and 29"
        );
    }
    let eight = with(json!({"maskLen": 8, "ipaddress": "10.200.0.5", "defaultRoute": "10.0.0.1"}));
    assert_eq!(provision(&eight).expect("valid").mask_len, 8);
    let twenty_nine =
        with(json!({"maskLen": 29, "ipaddress": "192.168.0.6", "defaultRoute": "192.168.0.1"}));
    assert_eq!(provision(&twenty_nine).expect("valid").mask_len, 29);
}

#[test]
fn the_address_must_be_a_host_of_the_gateways_subnet() {
    let outside = rejects(with(json!({"ipaddress": "192.168.1.11"})), "ipaddress");
    assert!(outside.message.contains("192.168.0.0/24"), "{outside}");
    rejects(with(json!({"ipaddress": "192.168.0.0"})), "ipaddress");
    rejects(with(json!({"ipaddress": "192.168.0.255"})), "ipaddress");
    rejects(with(json!({"ipaddress": "192.168.0.1"})), "ipaddress");
    rejects(with(json!({"defaultRoute": "192.168.0.0"})), "defaultRoute");
    rejects(
        with(json!({"defaultRoute": "192.168.0.255"})),
        "defaultRoute",
    );
    // A /29 holds hosts .1 to .6 only.
    rejects(
        with(json!({"maskLen": 29, "ipaddress": "192.168.0.7"})),
        "ipaddress",
    );
    rejects(
        with(json!({"maskLen": 29, "ipaddress": "192.168.0.8"})),
        "ipaddress",
    );
    let gateway_last = with(json!({"ipaddress": "192.168.0.1", "defaultRoute": "192.168.0.254"}));
    provision(&gateway_last).expect("gateway may be any host");
}

#[test]
fn username_has_a_format_and_reserved_names() {
    for bad in [
        "ab",
        "1abc",
        "a-b-c",
        "user_name",
        "abcdefghijklmnopqrstu",
        "ユーザー",
    ] {
        rejects(with(json!({ "username": bad })), "username");
    }
    for reserved in ["root", "ROOT", "admin", "replica", "mysql"] {
        let error = rejects(with(json!({ "username": reserved })), "username");
        assert!(error.message.contains("reserved"), "{error}");
    }
    let postgres = with(json!({"username": "postgres"}));
    let error = provision_on("sacloud-postgres", &postgres).expect_err("reserved on PostgreSQL");
    assert_eq!(error.field, "username");
    for good in ["app", "appUser01", "abcdefghijklmnopqrst"] {
        let params = provision(&with(json!({ "username": good }))).expect("valid username");
        assert_eq!(params.username.as_deref(), Some(good));
    }
}

#[test]
fn port_must_be_between_1024_and_65535() {
    for bad in [json!(1023), json!(65536), json!(0), json!("3306")] {
        rejects(with(json!({ "port": bad })), "port");
    }
    for good in [1024_u16, 3306, 65535] {
        assert_eq!(
            provision(&with(json!({ "port": good })))
                .expect("valid")
                .port,
            Some(good)
        );
    }
}

#[test]
fn allow_networks_name_the_bad_element() {
    rejects(
        with(json!({"allowNetworks": "10.0.0.0/8"})),
        "allowNetworks",
    );
    rejects(
        with(json!({"allowNetworks": ["10.0.0.0/8", "bad"]})),
        "allowNetworks[1]",
    );
    rejects(
        with(json!({"allowNetworks": ["10.0.0.0/33"]})),
        "allowNetworks[0]",
    );
    rejects(
        with(json!({"allowNetworks": ["300.0.0.0/8"]})),
        "allowNetworks[0]",
    );
    rejects(
        with(json!({"allowNetworks": ["10.0.0.0/8", 5]})),
        "allowNetworks[1]",
    );
}

#[test]
fn allow_networks_are_normalised_and_deduplicated() {
    let params = with(
        json!({"allowNetworks": ["192.168.0.5/24", "10.0.0.1", "192.168.0.0/24", "0.0.0.0/0"]}),
    );
    let nets: Vec<String> = provision(&params)
        .expect("valid")
        .allow_networks
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(nets, ["192.168.0.0/24", "10.0.0.1/32", "0.0.0.0/0"]);
}

#[test]
fn backup_time_is_hh_mm_on_a_quarter_hour() {
    for bad in ["24:00", "12:07", "1:00", "12:60", "noon", "12:00:00"] {
        rejects(with(json!({ "backupTime": bad })), "backupTime");
    }
    for good in ["00:00", "03:15", "12:30", "23:45"] {
        let params = provision(&with(json!({ "backupTime": good }))).expect("valid time");
        assert_eq!(params.backup_time.as_deref(), Some(good));
    }
}

#[test]
fn backup_rotate_is_between_1_and_8() {
    for bad in [0, 9] {
        rejects(with(json!({ "backupRotate": bad })), "backupRotate");
    }
    assert_eq!(
        provision(&with(json!({"backupRotate": 8})))
            .expect("valid")
            .backup_rotate,
        Some(8)
    );
}

#[test]
fn database_version_and_zone() {
    rejects(
        with(json!({"databaseVersion": "latest"})),
        "databaseVersion",
    );
    rejects(with(json!({"databaseVersion": 10})), "databaseVersion");
    let error = rejects(with(json!({"zone": "xx1a"})), "zone");
    assert!(
        error.message.contains("tk1a") && error.message.contains("is1a"),
        "{error}"
    );
    let params =
        provision(&with(json!({"databaseVersion": "10.11", "zone": "is1b"}))).expect("valid");
    assert_eq!(params.database_version.as_deref(), Some("10.11"));
    assert_eq!(params.zone.as_deref(), Some("is1b"));
}

#[test]
fn an_unknown_property_is_named_even_next_to_other_errors() {
    let error = rejects(with(json!({"swichID": "112233445566"})), "swichID");
    assert!(
        error.message.contains("switchID"),
        "lists the accepted names: {error}"
    );
    rejects(with(json!({"maskLen": 99, "passwd": "x"})), "passwd");
    let long = "k".repeat(500);
    assert!(
        rejects(with(json!({ long: 1 })), &format!("{}...", "k".repeat(64)))
            .to_string()
            .len()
            < 600
    );
}

#[test]
fn canonical_parameters_round_trip_through_serde_and_validation() {
    let params = provision(&with(json!({
        "switchID": 112233445566_u64, "username": "app", "port": 3307,
        "allowNetworks": ["192.168.0.9/24"], "backupTime": "01:30", "backupRotate": 3,
        "databaseVersion": "10.11", "zone": "tk1a",
    })))
    .expect("valid");
    let value = serde_json::to_value(&params).expect("serialises");
    assert_eq!(value["switchID"], "112233445566");
    assert_eq!(value["allowNetworks"], json!(["192.168.0.0/24"]));
    assert_eq!(
        provision(&value).expect("canonical form is valid input"),
        params
    );
    assert_eq!(
        serde_json::from_value::<ProvisionParams>(value).expect("deserialises"),
        params
    );
    let minimal = serde_json::to_value(provision(&base()).expect("valid")).expect("serialises");
    assert_eq!(minimal, base());
}

mod properties {
    use proptest::prelude::*;
    use serde_json::json;

    use super::provision;

    proptest! {
        /// A provision is accepted exactly when the address is a host of the gateway's subnet
        /// other than the gateway, and the gateway itself is a host address.
        #[test]
        fn accepted_addresses_are_usable_hosts(
            gateway in any::<u32>(), host in any::<u32>(), mask in 6_u8..32, foreign in any::<bool>(),
        ) {
            // Half the cases put the address inside the gateway's subnet (small subnets hit the
            // network, broadcast and gateway addresses often), half pick any address.
            let netmask = u32::MAX.checked_shl(32 - u32::from(mask)).unwrap_or(0);
            let ip = if foreign { host } else { (gateway & netmask) | (host & !netmask) };
            let ip = std::net::Ipv4Addr::from(ip);
            let gateway = std::net::Ipv4Addr::from(gateway);
            let params = json!({"switchID": "112233445566", "ipaddress": ip.to_string(),
                                "maskLen": mask, "defaultRoute": gateway.to_string()});
            let subnet = ipnet::Ipv4Net::new(gateway, mask).expect("mask below 33").trunc();
            let edge = |a| a == subnet.network() || a == subnet.broadcast();
            let usable = (8..=29).contains(&mask)
                && subnet.contains(&ip)
                && ip != gateway
                && !edge(ip)
                && !edge(gateway);
            let result = provision(&params);
            prop_assert_eq!(result.is_ok(), usable, "{} {:?}", params, result);
            if let Ok(p) = result {
                prop_assert_eq!(p.ip_address, ip);
            }
        }
    }
}
