//! Appliances as the real API writes them, awkward parts included: `ServicePort` as a string,
//! `SourceNetwork` as `""` when empty, `Backup` as `[]` when off, `Icon`/`Switch` null, no
//! `Instance` while migrating, and ids as strings unless the caller sent
//! `X-Sakura-Bigint-As-Int: 1`. `Settings` members the simulator does not interpret come back
//! as they were last sent.

use serde_json::{Map, Value, json};

use super::state::{Appliance, Phase, SimSettings};
use crate::sacloud::Engine;

/// Zone names and the ids that appear as `Remark.Zone.ID`.
pub(crate) const ZONES: &[(&str, u64)] = &[
    ("tk1a", 21001),
    ("tk1b", 21002),
    ("is1a", 31001),
    ("is1b", 31002),
    ("is1c", 31003),
    ("tk1v", 29001),
];

/// The versions a create may ask for, newest first: those SAKURA's own tools and documents
/// name (MariaDB 10.11 is the newest the API offers; PostgreSQL 13 is what its Terraform
/// provider documents). The simulator invents none.
pub(crate) fn versions(engine: Engine) -> &'static [&'static str] {
    match engine {
        Engine::MariaDb => &["10.11", "10.4", "10.3"],
        Engine::Postgres => &["13", "11"],
    }
}

/// The version an appliance gets when the create names none: the newest of [`versions`].
pub(crate) fn default_version(engine: Engine) -> &'static str {
    versions(engine)[0]
}

/// One appliance, as in the `Appliance` member of a read.
pub(crate) fn appliance(a: &Appliance, phase: Phase) -> Value {
    let spec = &a.spec;
    let s = &spec.settings;
    let zone_id = ZONES
        .iter()
        .find(|(name, _)| *name == a.zone)
        .map_or(0, |(_, id)| *id);
    let switch_id = spec
        .switch_id
        .parse::<u64>()
        .map_or_else(|_| json!(spec.switch_id), |n| json!(n));
    let revision = format!("{}.0", spec.version);
    let title = match spec.engine {
        Engine::MariaDb => format!("MariaDB {revision}"),
        Engine::Postgres => format!("PostgreSQL {revision}"),
    };
    let mut v = json!({
        "ID": a.id,
        "Class": "database",
        "Name": spec.name,
        "Description": spec.description,
        "Plan": {"ID": spec.plan_id},
        "Settings": settings(s),
        "SettingsHash": a.settings_hash,
        "Remark": {
            "Zone": {"ID": zone_id},
            "Network": {"NetworkMaskLen": spec.mask_len, "DefaultRoute": spec.default_route.to_string()},
            "Servers": [{"IPAddress": spec.ip.to_string()}],
            "DBConf": {"Common": {
                "DatabaseTitle": title,
                "DatabaseName": spec.engine.wire_name(),
                "DatabaseVersion": spec.version,
                "DatabaseRevision": revision,
            }},
            "Switch": {"ID": switch_id},
            "Plan": {"ID": spec.plan_id},
        },
        "Availability": phase.availability(),
        "ServiceClass": format!("cloud/appliance/database/{}", spec.plan_id),
        "Icon": null,
        "Switch": null,
        "Interfaces": [{
            "IPAddress": spec.ip.to_string(),
            "UserIPAddress": null,
            "HostName": null,
            "Switch": {
                "ID": switch_id,
                "Scope": "user",
                "Subnet": null,
                "UserSubnet": {"DefaultRoute": spec.default_route.to_string(), "NetworkMaskLen": spec.mask_len},
            },
        }],
        "Tags": spec.tags,
    });
    if let Some(status) = phase.instance_status() {
        v["Instance"] = json!({"Status": status});
    }
    v
}

/// `Settings`: as last sent, with the members the simulator interprets written the way the API
/// writes them.
fn settings(s: &SimSettings) -> Value {
    let mut settings = match &s.sent {
        Value::Object(m) => m.clone(),
        _ => Map::new(),
    };
    let db_conf = object_member(&mut settings, "DBConf");
    match &s.backup {
        None => {
            db_conf.insert("Backup".into(), json!([]));
        }
        Some(b) => {
            let backup = object_member(db_conf, "Backup");
            backup.insert("Rotate".into(), json!(b.rotate));
            backup.insert("Time".into(), json!(b.time));
            backup.insert("DayOfWeek".into(), json!(b.day_of_week));
        }
    }
    let common = object_member(db_conf, "Common");
    let source_network = if s.source_networks.is_empty() {
        json!("")
    } else {
        json!(s.source_networks)
    };
    common.insert("DefaultUser".into(), json!(s.default_user));
    common.insert("UserPassword".into(), json!(s.password));
    common.insert("ServicePort".into(), json!(s.port.to_string()));
    common.insert("SourceNetwork".into(), source_network);
    Value::Object(settings)
}

/// The object member `key` of `map`, made an empty object if it is missing or not an object.
fn object_member<'a>(map: &'a mut Map<String, Value>, key: &str) -> &'a mut Map<String, Value> {
    let slot = map.entry(key).or_insert_with(|| json!({}));
    if !slot.is_object() {
        *slot = json!({});
    }
    match slot {
        Value::Object(m) => m,
        _ => unreachable!("just made an object"),
    }
}

/// The answer of `GET /appliance/{id}/status`: `Status` follows the appliance, the engine entry
/// follows the engine.
pub(crate) fn status(a: &Appliance, phase: Phase, engine_running: bool) -> Value {
    let up = phase == Phase::Up;
    let state = if up { "up" } else { "down" };
    let mut db_conf = json!({
        "version": {"lastmodified": "", "commithash": "", "status": state, "tag": "1.1", "expire": ""},
        "log": [{"name": "systemctl", "data": "", "size": "0"}],
        "backup": {"history": []},
    });
    let engine = if up && engine_running {
        "running"
    } else {
        "stopped"
    };
    db_conf[a.spec.engine.wire_name()] = json!({ "status": engine });
    json!({"is_ok": true, "Success": true, "Appliance": {"SettingsResponse": {
        "Status": state, "is_fatal": false, "DBConf": db_conf,
    }}})
}

/// Turn every numeric `ID` member into a string, as the API does for callers that did not ask
/// for big integers as numbers.
pub(crate) fn ids_as_strings(v: &mut Value) {
    match v {
        Value::Object(map) => {
            for (key, member) in map.iter_mut() {
                if key == "ID" && member.is_number() {
                    *member = Value::String(member.to_string());
                } else {
                    ids_as_strings(member);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(ids_as_strings),
        _ => {}
    }
}
