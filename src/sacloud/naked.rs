//! The appliance JSON as the API sends it ("naked", as SAKURA's own Go client calls it), parsed
//! tolerantly field by field with [`super::lenient`]. Only what the broker needs is modelled;
//! everything else is ignored. [`super::model`] turns these into the public types.

use serde::Deserialize;
use serde_json::Value;

use super::lenient;

/// One appliance (`Appliance` in read/create/update answers, an item of `Appliances` in find).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct NakedDatabase {
    #[serde(rename = "ID", deserialize_with = "lenient::opt_u64")]
    pub id: Option<u64>,
    #[serde(rename = "Class", deserialize_with = "lenient::string")]
    pub class: String,
    #[serde(rename = "Name", deserialize_with = "lenient::string")]
    pub name: String,
    #[serde(rename = "Description", deserialize_with = "lenient::string")]
    pub description: String,
    #[serde(rename = "Tags", deserialize_with = "lenient::strings")]
    pub tags: Vec<String>,
    #[serde(rename = "Availability", deserialize_with = "lenient::string")]
    pub availability: String,
    /// Absent (or null) right after create, while the appliance is `migrating`.
    #[serde(rename = "Instance", deserialize_with = "lenient::opt_object")]
    pub instance: Option<NakedInstance>,
    #[serde(rename = "Plan", deserialize_with = "lenient::opt_object")]
    pub plan: Option<NakedId>,
    #[serde(rename = "Switch", deserialize_with = "lenient::opt_object")]
    pub switch: Option<NakedId>,
    #[serde(rename = "Remark", deserialize_with = "lenient::opt_object")]
    pub remark: Option<NakedRemark>,
    /// Kept as sent: [`settings_view`] reads the members the broker needs, and the whole
    /// object goes back in a settings update.
    #[serde(rename = "Settings")]
    pub settings: RawSettings,
    #[serde(rename = "SettingsHash", deserialize_with = "lenient::opt_string")]
    pub settings_hash: Option<String>,
    #[serde(
        rename = "Interfaces",
        deserialize_with = "lenient::list_of_opt_objects"
    )]
    pub interfaces: Vec<Option<NakedInterface>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct NakedInstance {
    #[serde(rename = "Status", deserialize_with = "lenient::opt_string")]
    pub status: Option<String>,
}

/// Any `{"ID": ..}` reference (plan, switch); other members are ignored.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct NakedId {
    #[serde(rename = "ID", deserialize_with = "lenient::opt_u64")]
    pub id: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct NakedRemark {
    #[serde(rename = "DBConf", deserialize_with = "lenient::opt_object")]
    pub db_conf: Option<NakedRemarkDbConf>,
    #[serde(rename = "Plan", deserialize_with = "lenient::opt_object")]
    pub plan: Option<NakedId>,
    /// `{"ID":..}` on a private switch, `{"Scope":"shared"}` on the shared segment.
    #[serde(rename = "Switch", deserialize_with = "lenient::opt_object")]
    pub switch: Option<NakedId>,
    /// `[{"IPAddress":..}]`, or `[[]]` / `[""]` when there is none.
    #[serde(rename = "Servers", deserialize_with = "lenient::list_of_opt_objects")]
    pub servers: Vec<Option<NakedServer>>,
    /// An object, or `[]` when there is none.
    #[serde(rename = "Network", deserialize_with = "lenient::opt_object")]
    pub network: Option<NakedSubnet>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct NakedRemarkDbConf {
    #[serde(rename = "Common", deserialize_with = "lenient::opt_object")]
    pub common: Option<NakedRemarkCommon>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct NakedRemarkCommon {
    #[serde(rename = "DatabaseName", deserialize_with = "lenient::opt_string")]
    pub database_name: Option<String>,
    #[serde(rename = "DatabaseVersion", deserialize_with = "lenient::opt_string")]
    pub database_version: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct NakedServer {
    #[serde(rename = "IPAddress", deserialize_with = "lenient::opt_string")]
    pub ip_address: Option<String>,
}

/// `Remark.Network` and the interface switch's `Subnet` / `UserSubnet`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct NakedSubnet {
    #[serde(rename = "NetworkMaskLen", deserialize_with = "lenient::opt_u8")]
    pub network_mask_len: Option<u8>,
    #[serde(rename = "DefaultRoute", deserialize_with = "lenient::opt_string")]
    pub default_route: Option<String>,
}

/// `Settings` as sent. `Debug` hides it: it holds passwords.
#[derive(Default, Deserialize)]
#[serde(transparent)]
pub(crate) struct RawSettings(pub Value);

impl std::fmt::Debug for RawSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

/// The modelled members of `Settings`; anything but an object (`[]`, `""`, `null`) reads as
/// `None`, and an object that does not fit is an error.
pub(crate) fn settings_view(settings: &Value) -> Result<Option<NakedSettings>, serde_json::Error> {
    match settings {
        Value::Object(_) => NakedSettings::deserialize(settings).map(Some),
        _ => Ok(None),
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct NakedSettings {
    #[serde(rename = "DBConf", deserialize_with = "lenient::opt_object")]
    pub db_conf: Option<NakedDbConf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct NakedDbConf {
    #[serde(rename = "Common", deserialize_with = "lenient::opt_object")]
    pub common: Option<NakedCommon>,
    /// An object, or `[]` when backups are off.
    #[serde(rename = "Backup", deserialize_with = "lenient::opt_object")]
    pub backup: Option<NakedBackup>,
}

/// `Settings.DBConf.Common`. `WebUI` (a bool or a string) and `AdminPassword` are not read.
#[derive(Default, Deserialize)]
#[serde(default)]
pub(crate) struct NakedCommon {
    #[serde(rename = "DefaultUser", deserialize_with = "lenient::string")]
    pub default_user: String,
    #[serde(rename = "UserPassword", deserialize_with = "lenient::string")]
    pub user_password: String,
    /// A number, or a string such as `"5432"`.
    #[serde(rename = "ServicePort", deserialize_with = "lenient::opt_port")]
    pub service_port: Option<u16>,
    /// `""` or a list of CIDRs.
    #[serde(rename = "SourceNetwork", deserialize_with = "lenient::strings")]
    pub source_network: Vec<String>,
}

impl std::fmt::Debug for NakedCommon {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NakedCommon")
            .field("default_user", &self.default_user)
            .field("user_password", &"***")
            .field("service_port", &self.service_port)
            .field("source_network", &self.source_network)
            .finish()
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct NakedBackup {
    #[serde(rename = "Rotate", deserialize_with = "lenient::opt_u8")]
    pub rotate: Option<u8>,
    #[serde(rename = "Time", deserialize_with = "lenient::string")]
    pub time: String,
    #[serde(rename = "DayOfWeek", deserialize_with = "lenient::strings")]
    pub day_of_week: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct NakedInterface {
    #[serde(rename = "IPAddress", deserialize_with = "lenient::opt_string")]
    pub ip_address: Option<String>,
    #[serde(rename = "Switch", deserialize_with = "lenient::opt_object")]
    pub switch: Option<NakedInterfaceSwitch>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct NakedInterfaceSwitch {
    #[serde(rename = "ID", deserialize_with = "lenient::opt_u64")]
    pub id: Option<u64>,
    #[serde(rename = "Subnet", deserialize_with = "lenient::opt_object")]
    pub subnet: Option<NakedSubnet>,
    #[serde(rename = "UserSubnet", deserialize_with = "lenient::opt_object")]
    pub user_subnet: Option<NakedSubnet>,
}

/// `{"Appliance":{..}}`, the envelope of read, create and update answers.
#[derive(Debug, Deserialize)]
pub(crate) struct ApplianceEnvelope {
    #[serde(rename = "Appliance")]
    pub appliance: NakedDatabase,
}

/// The answer of `GET /appliance?{..}`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct FindEnvelope {
    #[serde(rename = "Total", deserialize_with = "lenient::opt_u64")]
    pub total: Option<u64>,
    #[serde(rename = "Appliances")]
    pub appliances: Option<Vec<NakedDatabase>>,
}

/// The answer of `GET /appliance/{id}/status`: `Appliance.SettingsResponse`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct StatusEnvelope {
    #[serde(rename = "Appliance", deserialize_with = "lenient::opt_object")]
    pub appliance: Option<StatusAppliance>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct StatusAppliance {
    #[serde(rename = "SettingsResponse", deserialize_with = "lenient::opt_object")]
    pub settings_response: Option<SettingsResponse>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct SettingsResponse {
    #[serde(rename = "Status", deserialize_with = "lenient::opt_string")]
    pub status: Option<String>,
    /// `{"MariaDB":{"status":"running"}, "version":{..}, "log":[..], ..}`; only the engine
    /// entries are read, the rest varies too much to model.
    #[serde(rename = "DBConf")]
    pub db_conf: Option<Value>,
}
