//! The checks a JSON Schema cannot express (addresses that fit the subnet, reserved user names,
//! quarter-hour backup times, network normalisation) and the typed reads of schema-checked values.
//!
//! Everything here runs after the plan's schema accepted the object, so a type mismatch would be
//! a schema bug; it is still reported as a [`ParamError`], never a panic.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use serde_json::{Map, Value};

use super::param_error::ParamError;
use super::properties::rule;
use crate::engine::Engine;

/// The database's address must be a host of the subnet that `defaultRoute`/`maskLen` describe,
/// other than the gateway itself; otherwise SAKURA Cloud accepts the create and the appliance
/// never becomes reachable.
pub(crate) fn check_addresses(
    ip: Ipv4Addr,
    gateway: Ipv4Addr,
    mask_len: u8,
) -> Result<(), ParamError> {
    let subnet = Ipv4Net::new(gateway, mask_len)
        .map_err(|_| ParamError::new("maskLen", rule::MASK_LEN))?
        .trunc();
    let role = |addr: Ipv4Addr| {
        if addr == subnet.network() {
            Some("network")
        } else if addr == subnet.broadcast() {
            Some("broadcast")
        } else {
            None
        }
    };
    if let Some(role) = role(gateway) {
        return Err(ParamError::new(
            "defaultRoute",
            format!("{gateway} is the {role} address of {subnet}; give the gateway's host address"),
        ));
    }
    if !subnet.contains(&ip) {
        return Err(ParamError::new(
            "ipaddress",
            format!(
                "{ip} is outside {subnet}, the subnet given by defaultRoute {gateway} and maskLen {mask_len}"
            ),
        ));
    }
    if let Some(role) = role(ip) {
        return Err(ParamError::new(
            "ipaddress",
            format!("{ip} is the {role} address of {subnet}; choose a host address"),
        ));
    }
    if ip == gateway {
        return Err(ParamError::new(
            "ipaddress",
            format!("{ip} is the gateway (defaultRoute); the database needs an address of its own"),
        ));
    }
    Ok(())
}

/// Names the appliance or the engine keep for themselves (SAKURA's replication user is
/// `replica`); creating a default user with one of them fails late, inside SAKURA Cloud.
pub(crate) fn check_username(name: &str, engine: Engine) -> Result<(), ParamError> {
    const ANY: &[&str] = &[
        "root",
        "admin",
        "administrator",
        "replica",
        "public",
        "none",
        "sys",
        "system",
    ];
    const MARIADB: &[&str] = &["mysql", "mariadb"];
    const POSTGRES: &[&str] = &["postgres", "pgsql", "template0", "template1"];
    let engine_names = match engine {
        Engine::MariaDb => MARIADB,
        Engine::Postgres => POSTGRES,
    };
    let lower = name.to_ascii_lowercase();
    if ANY.iter().chain(engine_names).any(|r| *r == lower) {
        return Err(ParamError::new(
            "username",
            format!("`{name}` is reserved on this database; choose another name"),
        ));
    }
    Ok(())
}

/// The switch id as 12 digits, from a string or a number.
pub(crate) fn switch_id(value: Option<&Value>) -> Result<String, ParamError> {
    let id = match value {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Number(n)) => n.as_u64().map(|n| n.to_string()),
        _ => None,
    };
    id.filter(|s| s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit()))
        .ok_or_else(|| ParamError::new("switchID", rule::SWITCH_ID))
}

pub(crate) fn ipv4(
    obj: &Map<String, Value>,
    name: &str,
    rule: &str,
) -> Result<Ipv4Addr, ParamError> {
    obj.get(name)
        .and_then(Value::as_str)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| ParamError::new(name, rule))
}

/// An optional non-negative integer that must fit `T`.
pub(crate) fn integer<T: TryFrom<u64>>(
    obj: &Map<String, Value>,
    name: &str,
    rule: &str,
) -> Result<Option<T>, ParamError> {
    match obj.get(name) {
        None => Ok(None),
        Some(v) => v
            .as_u64()
            .and_then(|n| T::try_from(n).ok())
            .map(Some)
            .ok_or_else(|| ParamError::new(name, rule)),
    }
}

pub(crate) fn string(
    obj: &Map<String, Value>,
    name: &str,
    rule: &str,
) -> Result<Option<String>, ParamError> {
    match obj.get(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(ParamError::new(name, rule)),
    }
}

pub(crate) fn backup_time(obj: &Map<String, Value>) -> Result<Option<String>, ParamError> {
    let Some(text) = string(obj, "backupTime", rule::BACKUP_TIME)? else {
        return Ok(None);
    };
    let valid = text.split_once(':').is_some_and(|(h, m)| {
        h.len() == 2
            && m.len() == 2
            && h.parse::<u8>().is_ok_and(|h| h < 24)
            && m.parse::<u8>().is_ok_and(|m| m % 15 == 0 && m < 60)
    });
    if valid {
        Ok(Some(text))
    } else {
        Err(ParamError::new("backupTime", rule::BACKUP_TIME))
    }
}

/// `allowNetworks`, each parsed (a bare address is a /32), host bits cleared, duplicates dropped.
pub(crate) fn networks(obj: &Map<String, Value>) -> Result<Option<Vec<Ipv4Net>>, ParamError> {
    let Some(value) = obj.get("allowNetworks") else {
        return Ok(None);
    };
    let items = value
        .as_array()
        .ok_or_else(|| ParamError::new("allowNetworks", rule::ALLOW_NETWORKS))?;
    let mut out: Vec<Ipv4Net> = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let net = item
            .as_str()
            .and_then(parse_network)
            .ok_or_else(|| ParamError::new(format!("allowNetworks[{i}]"), rule::CIDR_ITEM))?;
        if !out.contains(&net) {
            out.push(net);
        }
    }
    Ok(Some(out))
}

fn parse_network(text: &str) -> Option<Ipv4Net> {
    if text.contains('/') {
        text.parse::<Ipv4Net>().ok().map(|n| n.trunc())
    } else {
        text.parse::<Ipv4Addr>().ok().map(Ipv4Net::from)
    }
}
