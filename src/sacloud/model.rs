//! The database appliance as the rest of the crate sees it: what a read returns, what a create
//! and a settings update send, and the status answer. Parsing of the wire shapes lives in
//! [`super::naked`]; this module only picks and maps fields.

use std::fmt;

use serde_json::{Map, Value, json};

use super::error::Error;
use super::naked::{NakedDatabase, NakedDbConf, StatusEnvelope, settings_view};
pub use crate::engine::Engine;
use crate::secret::Secret;

/// How SAKURA Cloud names each engine (`Remark.DBConf.Common.DatabaseName`). The type is the
/// domain's ([`crate::engine`]); its wire names are this client's business.
impl Engine {
    /// The name SAKURA Cloud uses on the wire: `MariaDB` or `postgres` (case matters).
    pub fn wire_name(self) -> &'static str {
        match self {
            Engine::MariaDb => "MariaDB",
            Engine::Postgres => "postgres",
        }
    }

    /// Reads `Remark.DBConf.Common.DatabaseName`; tolerates case differences (`mariadb`).
    pub fn from_wire(name: &str) -> Option<Engine> {
        if name.eq_ignore_ascii_case("MariaDB") {
            Some(Engine::MariaDb)
        } else if name.eq_ignore_ascii_case("postgres") || name.eq_ignore_ascii_case("PostgreSQL") {
            Some(Engine::Postgres)
        } else {
            None
        }
    }
}

/// A database appliance as read from the API. `Debug` shows the password as `***`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Database {
    pub id: u64,
    pub name: String,
    pub description: String,
    pub tags: Vec<String>,
    /// `Availability`: `migrating`, `available`, `failed`, ...
    pub availability: String,
    /// `Instance.Status`: `up`, `down`, `cleaning`; `None` while there is no `Instance` yet.
    pub instance_status: Option<String>,
    /// `Remark.DBConf.Common.DatabaseName`; `None` when missing or unknown.
    pub engine: Option<Engine>,
    pub database_version: Option<String>,
    /// `Remark.Plan.ID`, else the top-level `Plan.ID`.
    pub plan_id: Option<u64>,
    /// `Remark.Switch.ID`, else the first interface's switch, else the top-level `Switch.ID`.
    pub switch_id: Option<u64>,
    /// `Remark.Servers[0].IPAddress`, else `Interfaces[0].IPAddress`.
    pub ip_address: Option<String>,
    pub network_mask_len: Option<u8>,
    pub default_route: Option<String>,
    /// `Settings.DBConf`, the members the broker reads.
    pub settings: DatabaseSettings,
    /// `Settings` whole, for an update to send back (see [`SettingsDoc::with_change`]).
    pub settings_doc: SettingsDoc,
    pub settings_hash: Option<String>,
}

/// `Settings` of an appliance as read, kept whole so that an update sends back what it does not change. `Debug` hides it (it holds passwords).
///
/// A settings update replaces `Settings` wholesale: a member left out is cleared (no `Backup`
/// turns backups off, no `ServicePort` means the engine's default port, no `SourceNetwork`
/// allows everyone), and members this crate does not model (`WebUI`, `ReplicaUser`,
/// `Replication`, `Interfaces`, `MonitoringSuite`...) would be lost. So an update starts from
/// the document read and changes only what it means to.
#[derive(Clone, PartialEq, Eq, Default, serde::Serialize)]
#[serde(transparent)]
pub struct SettingsDoc(Value);

/// What an update changes in [`SettingsDoc`]; `None` leaves a field as read.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SettingsChange {
    /// `Settings.DBConf.Common.ServicePort`.
    pub port: Option<u16>,
    /// `Settings.DBConf.Common.SourceNetwork`; empty = allow all (sent as `["0.0.0.0/0"]`, as SAKURA's client does).
    pub source_networks: Option<Vec<String>>,
    /// Replaces `Rotate`, `Time` and `DayOfWeek` of `Settings.DBConf.Backup`; other members (such as `Connect`) stay as read.
    pub backup: Option<Backup>,
    /// `Settings.DBConf.Common.UserPassword`.
    pub user_password: Option<Secret>,
}

impl fmt::Debug for SettingsDoc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SettingsDoc(***)")
    }
}

impl From<Value> for SettingsDoc {
    fn from(value: Value) -> Self {
        SettingsDoc(value)
    }
}

impl SettingsDoc {
    /// The document as JSON, passwords included.
    pub fn as_json(&self) -> &Value {
        &self.0
    }

    /// The document to send in an update: as read, with `change` applied. Members the API
    /// sends in more than one shape go back in the one SAKURA's own client sends: `ServicePort`
    /// as a number (`"5432"` becomes `5432`, `""` is left out), `SourceNetwork` as a list
    /// (`""` or `[]` becomes `["0.0.0.0/0"]`), and a `Backup` of `[]` (backups off) is left out.
    pub fn with_change(&self, change: &SettingsChange) -> SettingsDoc {
        let mut doc = match &self.0 {
            Value::Object(m) => m.clone(),
            _ => Map::new(),
        };
        let db_conf = object_member(&mut doc, "DBConf");
        if db_conf.get("Backup").is_some_and(|b| !b.is_object()) {
            db_conf.remove("Backup");
        }
        if let Some(b) = &change.backup {
            let backup = object_member(db_conf, "Backup");
            backup.insert("Rotate".into(), json!(b.rotate));
            backup.insert("Time".into(), json!(b.time));
            backup.insert("DayOfWeek".into(), json!(b.day_of_week));
        }
        let common = object_member(db_conf, "Common");
        match common.get("ServicePort") {
            Some(Value::String(s)) => match s.trim().parse::<u16>() {
                Ok(port) => {
                    common.insert("ServicePort".into(), json!(port));
                }
                Err(_) if s.trim().is_empty() => {
                    common.remove("ServicePort");
                }
                Err(_) => {}
            },
            Some(Value::Null) => {
                common.remove("ServicePort");
            }
            _ => {}
        }
        if let Some(port) = change.port {
            common.insert("ServicePort".into(), json!(port));
        }
        let networks = match &change.source_networks {
            Some(list) => Some(list.clone()),
            None => match common.get("SourceNetwork") {
                None => None,
                Some(Value::Array(items)) if !items.is_empty() => None,
                Some(Value::String(s)) if !s.trim().is_empty() => Some(vec![s.trim().to_owned()]),
                // `""`, `[]`, `null`: allow all.
                Some(_) => Some(Vec::new()),
            },
        };
        if let Some(list) = networks {
            let list = if list.is_empty() {
                vec![ALLOW_ALL.to_owned()]
            } else {
                list
            };
            common.insert("SourceNetwork".into(), json!(list));
        }
        if let Some(password) = &change.user_password {
            common.insert("UserPassword".into(), json!(password.expose()));
        }
        SettingsDoc(Value::Object(doc))
    }
}

/// The object member `key` of `map`, made an empty object if it is missing or not an object.
fn object_member<'a>(map: &'a mut Map<String, Value>, key: &str) -> &'a mut Map<String, Value> {
    let slot = map
        .entry(key)
        .and_modify(|v| {
            if !v.is_object() {
                *v = Value::Object(Map::new());
            }
        })
        .or_insert_with(|| Value::Object(Map::new()));
    match slot {
        Value::Object(m) => m,
        _ => unreachable!("just made an object"),
    }
}

/// `Settings.DBConf`: what a create sends and a settings update replaces.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DatabaseSettings {
    pub default_user: String,
    pub user_password: Secret,
    /// `ServicePort`; `None` = the engine's default.
    pub port: Option<u16>,
    /// `SourceNetwork`, the CIDRs allowed to connect; empty = allow all.
    pub source_networks: Vec<String>,
    /// `Backup`; `None` = no scheduled backups.
    pub backup: Option<Backup>,
}

/// The days of the week as `Backup.DayOfWeek` names them, Sunday first.
pub const EVERY_DAY: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

/// `Settings.DBConf.Backup`: keep `rotate` (1-8) backups taken at `time` (`HH:mm`) on
/// `day_of_week` (some of [`EVERY_DAY`]).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Backup {
    pub rotate: u8,
    pub time: String,
    pub day_of_week: Vec<String>,
}

/// What `POST /appliance` needs to create a database appliance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateDatabase {
    pub name: String,
    pub description: String,
    pub tags: Vec<String>,
    /// SAKURA plan id (10, 30, 90, 240, 500, 1000), sent as `Remark.Plan.ID`.
    pub plan_id: u64,
    /// The private switch, sent as a string (the API wants `Remark.Switch.ID` as a string).
    pub switch_id: String,
    pub ip_address: String,
    pub network_mask_len: u8,
    pub default_route: String,
    pub engine: Engine,
    /// `None` lets SAKURA pick its default version.
    pub database_version: Option<String>,
    pub settings: DatabaseSettings,
}

/// `GET /appliance/{id}/status`: whether the appliance agent and the database are up.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DatabaseStatus {
    /// `SettingsResponse.Status`, `up` once the appliance serves.
    pub status: Option<String>,
    /// `SettingsResponse.DBConf.MariaDB.status` (or `.postgres.status`) is `running`: the
    /// database really serves (SAKURA's own client waits for this, not for `status`).
    pub db_running: bool,
    /// That engine entry's `status` as sent (`running`, `stopped`...), whichever of `MariaDB`
    /// and `postgres` is present.
    pub engine_status: Option<String>,
}

impl TryFrom<NakedDatabase> for Database {
    type Error = Error;

    fn try_from(n: NakedDatabase) -> Result<Database, Error> {
        let id =
            n.id.ok_or_else(|| Error::Parse("appliance without an ID".into()))?;
        let remark = n.remark.unwrap_or_default();
        let remark_common = remark.db_conf.and_then(|c| c.common).unwrap_or_default();
        let first_if = n
            .interfaces
            .into_iter()
            .next()
            .flatten()
            .unwrap_or_default();
        let if_switch = first_if.switch.unwrap_or_default();
        // A private switch reports the user's subnet; the shared segment reports `Subnet`.
        let if_subnet = if_switch
            .user_subnet
            .or(if_switch.subnet)
            .unwrap_or_default();
        let network = remark.network.unwrap_or_default();
        Ok(Database {
            id,
            name: n.name,
            description: n.description,
            tags: n.tags,
            availability: n.availability,
            instance_status: n.instance.and_then(|i| i.status),
            engine: remark_common
                .database_name
                .as_deref()
                .and_then(Engine::from_wire),
            database_version: remark_common.database_version,
            plan_id: remark.plan.and_then(|p| p.id).or(n.plan.and_then(|p| p.id)),
            switch_id: remark
                .switch
                .and_then(|s| s.id)
                .or(if_switch.id)
                .or(n.switch.and_then(|s| s.id)),
            ip_address: remark
                .servers
                .into_iter()
                .next()
                .flatten()
                .and_then(|s| s.ip_address)
                .or(first_if.ip_address),
            network_mask_len: network.network_mask_len.or(if_subnet.network_mask_len),
            default_route: network.default_route.or(if_subnet.default_route),
            settings: settings_view(&n.settings.0)
                .map_err(|e| Error::Parse(format!("Settings: {e}")))?
                .and_then(|s| s.db_conf)
                .map(settings_from_naked)
                .unwrap_or_default(),
            settings_doc: SettingsDoc(match n.settings.0 {
                v @ Value::Object(_) => v,
                _ => Value::Null,
            }),
            settings_hash: n.settings_hash,
        })
    }
}

fn settings_from_naked(conf: NakedDbConf) -> DatabaseSettings {
    let common = conf.common.unwrap_or_default();
    DatabaseSettings {
        default_user: common.default_user,
        user_password: Secret::new(common.user_password),
        port: common.service_port,
        source_networks: read_source_networks(common.source_network),
        backup: conf.backup.map(|b| Backup {
            rotate: b.rotate.unwrap_or(0),
            time: b.time,
            day_of_week: b.day_of_week,
        }),
    }
}

/// `""` and `["0.0.0.0/0"]` both mean "allow all", which we model as an empty list.
fn read_source_networks(list: Vec<String>) -> Vec<String> {
    if list.len() == 1 && list[0] == ALLOW_ALL {
        Vec::new()
    } else {
        list
    }
}

/// The CIDR SAKURA's own client sends for "allow all" (an empty `SourceNetwork`).
pub(crate) const ALLOW_ALL: &str = "0.0.0.0/0";

impl DatabaseStatus {
    pub(crate) fn from_naked(env: StatusEnvelope) -> DatabaseStatus {
        let resp = env
            .appliance
            .and_then(|a| a.settings_response)
            .unwrap_or_default();
        let engine_status = [Engine::MariaDb, Engine::Postgres]
            .into_iter()
            .find_map(|engine| {
                let entry = resp.db_conf.as_ref()?.get(engine.wire_name())?;
                Some(
                    entry
                        .get("status")
                        .and_then(Value::as_str)
                        .unwrap_or_default(),
                )
            })
            .filter(|s| !s.is_empty())
            .map(str::to_owned);
        DatabaseStatus {
            db_running: engine_status.as_deref() == Some("running"),
            engine_status,
            status: resp.status,
        }
    }
}
