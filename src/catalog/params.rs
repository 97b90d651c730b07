//! Typed, checked parameters for provision, update and bind, built from objects the plan's schema
//! accepted.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::checks::{
    backup_time, check_addresses, check_username, integer, ipv4, networks, string, switch_id,
};
use super::param_error::ParamError;
use super::properties::rule;
use crate::binder::Mode;
use crate::engine::Engine;

/// Checked provision parameters. Serialises with the user-facing names of the create schema, so
/// the serialised form is itself valid input and a stable canonical form for comparisons.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ProvisionParams {
    /// Switch id, always as 12 digits (the user may send a number).
    #[serde(rename = "switchID")]
    pub switch_id: String,
    /// The database's address on the switch: a host of the subnet below, not the gateway.
    #[serde(rename = "ipaddress")]
    pub ip_address: Ipv4Addr,
    /// Subnet prefix length, 8 to 29.
    pub mask_len: u8,
    /// The gateway: a host address of the same subnet.
    pub default_route: Ipv4Addr,
    /// The default user's name (not reserved); `None` means the broker picks one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// 1024 to 65535; `None` means the engine's default port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// Normalised (host bits cleared), without duplicates, in the order given; empty if not given.
    /// Serialised as CIDR strings (`10.0.0.0/8`), through ipnet's serde support.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow_networks: Vec<Ipv4Net>,
    /// `HH:MM` on a quarter hour.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup_time: Option<String>,
    /// Backups kept, 1 to 8.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup_rotate: Option<u8>,
    /// Such as `10.11`; `None` means SAKURA Cloud's default version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database_version: Option<String>,
    /// One of the configured zones; `None` means the broker's default zone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone: Option<String>,
}

/// Checked update parameters; `None` (and `false`) leave a setting as it is.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct UpdateParams {
    /// The new allow-list, normalised like [`ProvisionParams::allow_networks`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_networks: Option<Vec<Ipv4Net>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup_rotate: Option<u8>,
    /// Give the default user a new random password.
    #[serde(default, skip_serializing_if = "is_false")]
    pub rotate_admin_password: bool,
}

/// Checked bind parameters.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
pub struct BindParams {
    /// `"shared"` or `"dedicated"`; `None` means the broker's default mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<Mode>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// The network parameters a provision named, each checked on its own; whichever are missing
/// come from the operator's network pool (or are required, without pools).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NetworkRequest {
    pub switch_id: Option<String>,
    pub ip_address: Option<Ipv4Addr>,
    pub mask_len: Option<u8>,
    pub default_route: Option<Ipv4Addr>,
}

impl NetworkRequest {
    /// Whether the user named any network parameter.
    pub fn is_empty(&self) -> bool {
        *self == NetworkRequest::default()
    }
}

/// Checked provision parameters before the network is settled.
#[derive(Clone, Debug, PartialEq)]
pub struct RequestedParams {
    pub network: NetworkRequest,
    /// The other parameters, with the network members still to be filled in.
    rest: ProvisionParams,
}

impl RequestedParams {
    /// The zone asked for, if any.
    pub fn zone(&self) -> Option<&str> {
        self.rest.zone.as_deref()
    }

    /// The parameters with the network settled.
    pub fn settle(
        &self,
        switch_id: String,
        ip_address: Ipv4Addr,
        mask_len: u8,
        default_route: Ipv4Addr,
        zone: Option<String>,
    ) -> ProvisionParams {
        ProvisionParams {
            switch_id,
            ip_address,
            mask_len,
            default_route,
            zone: zone.or_else(|| self.rest.zone.clone()),
            ..self.rest.clone()
        }
    }

    /// The parameters as given, every network member required: how provisioning works
    /// without pools. Each missing one is named as the schema would name it.
    pub fn complete(&self) -> Result<ProvisionParams, ParamError> {
        let n = &self.network;
        let missing = |name: &str| {
            ParamError::new(
                name,
                format!(
                    "is required ({})",
                    super::schema::ParamSchema::required_sentence_for(
                        "provisioning",
                        super::schema::CREATE_REQUIRED
                    )
                ),
            )
        };
        let switch_id = n.switch_id.clone().ok_or_else(|| missing("switchID"))?;
        let ip = n.ip_address.ok_or_else(|| missing("ipaddress"))?;
        let mask_len = n.mask_len.ok_or_else(|| missing("maskLen"))?;
        let gateway = n.default_route.ok_or_else(|| missing("defaultRoute"))?;
        check_addresses(ip, gateway, mask_len)?;
        Ok(self.settle(switch_id, ip, mask_len, gateway, None))
    }
}

/// Builds provision parameters from an object the create schema accepted; network members
/// may be missing (see [`RequestedParams::complete`]).
pub(crate) fn provision(
    obj: &Map<String, Value>,
    engine: Engine,
) -> Result<RequestedParams, ParamError> {
    let optional_ip = |name: &str, rule: &str| match obj.get(name) {
        None => Ok(None),
        Some(_) => ipv4(obj, name, rule).map(Some),
    };
    let ip_address = optional_ip("ipaddress", rule::IP_ADDRESS)?;
    let default_route = optional_ip("defaultRoute", rule::DEFAULT_ROUTE)?;
    let mask_len = integer(obj, "maskLen", rule::MASK_LEN)?;
    if let Some(mask) = mask_len
        && !(8..=29).contains(&mask)
    {
        return Err(ParamError::new("maskLen", rule::MASK_LEN));
    }
    if let (Some(ip), Some(gateway), Some(mask)) = (ip_address, default_route, mask_len) {
        check_addresses(ip, gateway, mask)?;
    }
    let switch_id = match obj.get("switchID") {
        None => None,
        Some(v) => Some(switch_id(Some(v))?),
    };
    let username = string(obj, "username", rule::USERNAME)?;
    if let Some(name) = &username {
        check_username(name, engine)?;
    }
    Ok(RequestedParams {
        network: NetworkRequest {
            switch_id,
            ip_address,
            mask_len,
            default_route,
        },
        rest: ProvisionParams {
            switch_id: String::new(),
            ip_address: Ipv4Addr::UNSPECIFIED,
            mask_len: 0,
            default_route: Ipv4Addr::UNSPECIFIED,
            username,
            port: integer(obj, "port", rule::PORT)?,
            allow_networks: networks(obj)?.unwrap_or_default(),
            backup_time: backup_time(obj)?,
            backup_rotate: integer(obj, "backupRotate", rule::BACKUP_ROTATE)?,
            database_version: database_version(obj, engine)?,
            zone: string(obj, "zone", "must be a zone name")?,
        },
    })
}

/// The engine versions SAKURA Cloud offers, newest first. SAKURA's own Go client and Terraform
/// provider name MariaDB 10.11 (the API's pick when no version is given), 10.4 and 10.3, and
/// PostgreSQL 13 and 11; nothing names another.
pub fn offered_versions(engine: Engine) -> &'static [&'static str] {
    match engine {
        Engine::MariaDb => &["10.11", "10.4", "10.3"],
        Engine::Postgres => &["13", "11"],
    }
}

fn database_version(
    obj: &Map<String, Value>,
    engine: Engine,
) -> Result<Option<String>, ParamError> {
    let version = string(obj, "databaseVersion", rule::DATABASE_VERSION)?;
    let offered = offered_versions(engine);
    match version {
        Some(v) if !offered.contains(&v.as_str()) => Err(ParamError::new(
            "databaseVersion",
            format!(
                "must be a version SAKURA Cloud offers for {}: {} (leave it out for the newest)",
                engine.wire_name(),
                offered.join(", ")
            ),
        )),
        other => Ok(other),
    }
}

/// Builds update parameters from an object the update schema accepted.
pub(crate) fn update(obj: &Map<String, Value>) -> Result<UpdateParams, ParamError> {
    let rotate_admin_password = match obj.get("rotateAdminPassword") {
        None => false,
        Some(v) => v
            .as_bool()
            .ok_or_else(|| ParamError::new("rotateAdminPassword", rule::BOOLEAN))?,
    };
    Ok(UpdateParams {
        allow_networks: networks(obj)?,
        port: integer(obj, "port", rule::PORT)?,
        backup_time: backup_time(obj)?,
        backup_rotate: integer(obj, "backupRotate", rule::BACKUP_ROTATE)?,
        rotate_admin_password,
    })
}

/// Builds bind parameters from an object the bind schema accepted.
pub(crate) fn bind(obj: &Map<String, Value>) -> Result<BindParams, ParamError> {
    let mode = string(obj, "mode", rule::MODE)?
        .map(|m| {
            m.parse::<Mode>()
                .map_err(|_| ParamError::new("mode", format!("unknown binding mode {m:?}")))
        })
        .transpose()?;
    Ok(BindParams { mode })
}
