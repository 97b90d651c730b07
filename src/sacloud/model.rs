//! The database appliance as the rest of the crate sees it: what a read returns, what a create
//! and a settings update send, and the status answer. Parsing of the wire shapes lives in
//! [`super::naked`]; this module only picks and maps fields.

use super::error::Error;
use super::naked::{NakedDatabase, NakedDbConf, StatusEnvelope};
use crate::secret::Secret;

/// The database engine of an appliance (`Remark.DBConf.Common.DatabaseName`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Engine {
    #[serde(rename = "MariaDB")]
    MariaDb,
    #[serde(rename = "postgres")]
    Postgres,
}

impl Engine {
    /// The name SAKURA Cloud uses on the wire: `MariaDB` or `postgres` (case matters).
    pub fn wire_name(self) -> &'static str {
        match self {
            Engine::MariaDb => "MariaDB",
            Engine::Postgres => "postgres",
        }
    }

    /// The port the engine listens on unless told otherwise.
    pub fn default_port(self) -> u16 {
        match self {
            Engine::MariaDb => 3306,
            Engine::Postgres => 5432,
        }
    }
}

impl Engine {
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
    /// `Settings.DBConf`.
    pub settings: DatabaseSettings,
    pub settings_hash: Option<String>,
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

/// `Settings.DBConf.Backup`: keep `rotate` (1-8) backups taken at `time` (`HH:mm`) on
/// `day_of_week` (`sun`..`sat`).
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
    /// `SettingsResponse.DBConf.MariaDB.status` (or `.postgres.status`) is `running`.
    pub db_running: bool,
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
            settings: n
                .settings
                .and_then(|s| s.db_conf)
                .map(settings_from_naked)
                .unwrap_or_default(),
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
        let running = |engine: &str| {
            resp.db_conf
                .as_ref()
                .and_then(|c| c.get(engine))
                .and_then(|e| e.get("status"))
                .and_then(|s| s.as_str())
                == Some("running")
        };
        DatabaseStatus {
            db_running: running(Engine::MariaDb.wire_name())
                || running(Engine::Postgres.wire_name()),
            status: resp.status,
        }
    }
}
