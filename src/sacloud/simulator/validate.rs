//! Checks of create and update bodies, as strict as the real API is known to be: the plan only
//! in `Remark.Plan.ID`, `Remark.Switch.ID` as a string, `DatabaseName` exactly `MariaDB` or
//! `postgres`, a version that is offered, addresses that parse, ports 1024-65535, users of 3-20
//! characters. A body that fails answers 400 with the API's error JSON.
//!
//! `Settings` are taken whole: an update replaces them, so what it leaves out is cleared (no
//! `Backup` turns backups off, no `ServicePort` means the engine's default port, no
//! `SourceNetwork` allows all), except `DefaultUser` and `UserPassword`, which are required.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use serde_json::Value;

use super::error::ApiError;
use super::render::{default_version, versions};
use super::state::{NewAppliance, SimBackup, SimSettings};
use crate::sacloud::{EVERY_DAY, Engine};

const PLANS: &[u64] = &[10, 30, 90, 240, 500, 1000];

/// A validated `PUT /appliance/{id}` body.
pub(crate) struct Update<'a> {
    pub name: Option<String>,
    pub description: Option<String>,
    pub tags: Option<Vec<String>>,
    /// `Settings`, checked against the current ones by [`update_settings`].
    pub settings: Option<&'a Value>,
    pub settings_hash: Option<String>,
}

/// Check a `POST /appliance` body.
pub(crate) fn create(body: &Value) -> Result<NewAppliance, ApiError> {
    let a = body
        .get("Appliance")
        .filter(|a| a.is_object())
        .ok_or_else(|| bad("Appliance is required"))?;
    if str_at(a, "/Class") != Some("database") {
        return Err(bad("Class must be \"database\""));
    }
    let (name, description, tags) = names(a, true)?;
    let plan_id = id_at(a, "/Remark/Plan/ID")
        .ok_or_else(|| bad("Remark.Plan.ID is required (a top-level Plan is not read)"))?;
    if !PLANS.contains(&plan_id) {
        return Err(bad(format!(
            "Remark.Plan.ID {plan_id} is not a database plan"
        )));
    }
    let switch_id = match a.pointer("/Remark/Switch/ID") {
        Some(Value::String(s)) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => {
            s.clone()
        }
        Some(Value::Number(_)) => return Err(bad("Remark.Switch.ID must be a string")),
        _ => return Err(bad("Remark.Switch.ID is required")),
    };
    let ip = ipv4_at(a, "/Remark/Servers/0/IPAddress")?;
    let mask_len = id_at(a, "/Remark/Network/NetworkMaskLen")
        .and_then(|n| u8::try_from(n).ok())
        .filter(|n| (8..=29).contains(n))
        .ok_or_else(|| bad("Remark.Network.NetworkMaskLen must be 8-29"))?;
    let default_route = ipv4_at(a, "/Remark/Network/DefaultRoute")?;
    let subnet = Ipv4Net::new(ip, mask_len).map_err(|e| bad(e.to_string()))?;
    if !subnet.contains(&default_route) || default_route == ip {
        return Err(bad(
            "Remark.Network.DefaultRoute must be another address in the server's subnet",
        ));
    }
    let engine = match str_at(a, "/Remark/DBConf/Common/DatabaseName") {
        Some("MariaDB") => Engine::MariaDb,
        Some("postgres") => Engine::Postgres,
        _ => {
            return Err(bad(
                "Remark.DBConf.Common.DatabaseName must be \"MariaDB\" or \"postgres\"",
            ));
        }
    };
    let offered = versions(engine);
    let version = match a.pointer("/Remark/DBConf/Common/DatabaseVersion") {
        None | Some(Value::Null) => default_version(engine).to_owned(),
        Some(Value::String(v)) if offered.contains(&v.as_str()) => v.clone(),
        Some(Value::String(v)) => {
            return Err(bad(format!(
                "Remark.DBConf.Common.DatabaseVersion {v:?} is not offered for {}; one of {}",
                engine.wire_name(),
                offered.join(", ")
            )));
        }
        Some(_) => return Err(bad("Remark.DBConf.Common.DatabaseVersion must be a string")),
    };
    let remark_common = a.pointer("/Remark/DBConf/Common");
    let sent = a
        .get("Settings")
        .filter(|s| !s.is_null())
        .ok_or_else(|| bad("Settings.DBConf is required"))?;
    let mut settings = settings(sent, engine, remark_common)?;
    // The API shows the web UI as off unless the create turned it on.
    if let Some(common) = settings
        .sent
        .pointer_mut("/DBConf/Common")
        .and_then(Value::as_object_mut)
    {
        common.entry("WebUI").or_insert(Value::Bool(false));
    }
    Ok(NewAppliance {
        name,
        description,
        tags,
        plan_id,
        switch_id,
        ip,
        mask_len,
        default_route,
        engine,
        version,
        settings,
    })
}

/// Check a `PUT /appliance/{id}` body (its settings are checked later, against the current ones).
pub(crate) fn update(body: &Value) -> Result<Update<'_>, ApiError> {
    let a = body
        .get("Appliance")
        .filter(|a| a.is_object())
        .ok_or_else(|| bad("Appliance is required"))?;
    let (name, description, tags) = names(a, false)?;
    let settings_hash = match a.get("SettingsHash") {
        None | Some(Value::Null) => None,
        Some(Value::String(h)) => Some(h.clone()),
        Some(_) => return Err(bad("SettingsHash must be a string")),
    };
    Ok(Update {
        name: Some(name).filter(|n| !n.is_empty()),
        description: a.get("Description").map(|_| description),
        tags: a.get("Tags").map(|_| tags),
        settings: a.get("Settings").filter(|s| !s.is_null()),
        settings_hash,
    })
}

/// Check the `Settings` of an update against the current ones: they replace them whole, and
/// the user may not change.
pub(crate) fn update_settings(
    sent: &Value,
    engine: Engine,
    current: &SimSettings,
) -> Result<SimSettings, ApiError> {
    let settings = settings(sent, engine, None)?;
    if settings.default_user != current.default_user {
        return Err(bad("DefaultUser cannot be changed"));
    }
    Ok(settings)
}

/// Check `Settings` as sent and keep them whole. On create, `DefaultUser` and `UserPassword` may
/// come from `Remark.DBConf.Common` instead.
fn settings(
    sent: &Value,
    engine: Engine,
    remark_common: Option<&Value>,
) -> Result<SimSettings, ApiError> {
    if !sent.is_object() {
        return Err(bad("Settings must be an object"));
    }
    let conf = sent
        .get("DBConf")
        .filter(|c| c.is_object())
        .ok_or_else(|| bad("Settings.DBConf is required"))?;
    let common = conf
        .get("Common")
        .filter(|c| c.is_object())
        .ok_or_else(|| bad("Settings.DBConf.Common is required"))?;
    let text = |key: &str| {
        common
            .get(key)
            .and_then(Value::as_str)
            .or_else(|| remark_common?.get(key)?.as_str())
            .map(str::to_owned)
    };
    let default_user =
        text("DefaultUser").ok_or_else(|| bad("Settings.DBConf.Common.DefaultUser is required"))?;
    let user_ok = (3..=20).contains(&default_user.len())
        && default_user
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if !user_ok {
        return Err(bad(
            "DefaultUser must be 3-20 letters, digits or underscores",
        ));
    }
    let password = text("UserPassword")
        .filter(|p| !p.is_empty())
        .ok_or_else(|| bad("Settings.DBConf.Common.UserPassword is required"))?;
    let port = match common.get("ServicePort") {
        None | Some(Value::Null) => engine.default_port(),
        Some(Value::String(s)) if s.is_empty() => engine.default_port(),
        Some(v) => id_of(v)
            .and_then(|n| u16::try_from(n).ok())
            .filter(|p| *p >= 1024)
            .ok_or_else(|| bad("ServicePort must be 1024-65535"))?,
    };
    Ok(SimSettings {
        default_user,
        password,
        port,
        source_networks: source_networks(common.get("SourceNetwork"))?,
        backup: backup(conf.get("Backup"))?,
        sent: sent.clone(),
    })
}

fn source_networks(v: Option<&Value>) -> Result<Vec<String>, ApiError> {
    let items = match v {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::String(s)) if s.is_empty() => return Ok(Vec::new()),
        Some(Value::Array(items)) => items,
        Some(_) => return Err(bad("SourceNetwork must be a list")),
    };
    items
        .iter()
        .map(|item| {
            let s = item.as_str().unwrap_or_default();
            let ok = s.parse::<Ipv4Net>().is_ok() || s.parse::<Ipv4Addr>().is_ok();
            ok.then(|| s.to_owned())
                .ok_or_else(|| bad(format!("SourceNetwork {item} is not an IPv4 network")))
        })
        .collect()
}

fn backup(v: Option<&Value>) -> Result<Option<SimBackup>, ApiError> {
    let b = match v {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Array(a)) if a.is_empty() => return Ok(None),
        Some(b @ Value::Object(_)) => b,
        Some(_) => return Err(bad("Backup must be an object")),
    };
    let rotate = b
        .get("Rotate")
        .and_then(id_of)
        .and_then(|r| u8::try_from(r).ok())
        .filter(|r| (1..=8).contains(r))
        .ok_or_else(|| bad("Backup.Rotate must be 1-8"))?;
    let time = b.get("Time").and_then(Value::as_str).unwrap_or_default();
    if !is_hh_mm(time) {
        return Err(bad("Backup.Time must be HH:mm"));
    }
    let day_of_week = match b.get("DayOfWeek") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(days)) => days
            .iter()
            .map(|d| match d.as_str() {
                Some(d) if EVERY_DAY.contains(&d) => Ok(d.to_owned()),
                _ => Err(bad(format!("Backup.DayOfWeek {d} is not one of sun..sat"))),
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(bad("Backup.DayOfWeek must be a list")),
    };
    Ok(Some(SimBackup {
        rotate,
        time: time.to_owned(),
        day_of_week,
    }))
}

/// `Name`, `Description` and `Tags`; the name is required on create.
fn names(a: &Value, create: bool) -> Result<(String, String, Vec<String>), ApiError> {
    let name = str_at(a, "/Name").unwrap_or_default().to_owned();
    if (create || a.get("Name").is_some()) && !(1..=64).contains(&name.chars().count()) {
        return Err(bad("Name must be 1-64 characters"));
    }
    let description = str_at(a, "/Description").unwrap_or_default().to_owned();
    if description.chars().count() > 512 {
        return Err(bad("Description must be at most 512 characters"));
    }
    let tags = match a.get("Tags") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(tags)) => tags
            .iter()
            .map(|t| {
                t.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| bad("Tags must be strings"))
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(bad("Tags must be a list")),
    };
    Ok((name, description, tags))
}

fn is_hh_mm(t: &str) -> bool {
    let Some((h, m)) = t.split_once(':') else {
        return false;
    };
    let num = |s: &str, max: u32| s.len() == 2 && s.parse::<u32>().is_ok_and(|n| n <= max);
    num(h, 23) && num(m, 59)
}

fn ipv4_at(a: &Value, path: &str) -> Result<Ipv4Addr, ApiError> {
    str_at(a, path)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad(format!("{} must be an IPv4 address", dotted(path))))
}

fn str_at<'a>(a: &'a Value, path: &str) -> Option<&'a str> {
    a.pointer(path).and_then(Value::as_str)
}

fn id_at(a: &Value, path: &str) -> Option<u64> {
    a.pointer(path).and_then(id_of)
}

/// An id or number sent as a number or a decimal string.
pub(crate) fn id_of(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

fn dotted(path: &str) -> String {
    path.trim_start_matches('/').replace('/', ".")
}

fn bad(message: impl Into<String>) -> ApiError {
    ApiError::bad_request(message)
}
