//! Request bodies and the find query, shaped exactly as the API wants them.
//! Structs rather than `json!` so the field order on the wire is the documented one.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Serialize;

use super::model::{ALLOW_ALL, Backup, CreateDatabase, DatabaseSettings, SettingsDoc};

/// `{"Appliance":{..}}` of `POST /appliance`.
#[derive(Serialize)]
pub(crate) struct CreateEnvelope<'a> {
    #[serde(rename = "Appliance")]
    appliance: CreateAppliance<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct CreateAppliance<'a> {
    class: &'static str,
    name: &'a str,
    description: &'a str,
    tags: &'a [String],
    // The real API reads the plan from Remark.Plan.ID only; a top-level Plan is not sent.
    remark: Remark<'a>,
    settings: Settings<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Remark<'a> {
    plan: IdNumber,
    switch: IdString<'a>,
    servers: [Server<'a>; 1],
    network: Network<'a>,
    #[serde(rename = "DBConf")]
    db_conf: RemarkDbConf<'a>,
}

#[derive(Serialize)]
struct IdNumber {
    #[serde(rename = "ID")]
    id: u64,
}

/// `Remark.Switch.ID` must be a string on the real API.
#[derive(Serialize)]
struct IdString<'a> {
    #[serde(rename = "ID")]
    id: &'a str,
}

#[derive(Serialize)]
struct Server<'a> {
    #[serde(rename = "IPAddress")]
    ip_address: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Network<'a> {
    network_mask_len: u8,
    default_route: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct RemarkDbConf<'a> {
    common: RemarkCommon<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct RemarkCommon<'a> {
    database_name: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    database_version: Option<&'a str>,
    default_user: &'a str,
    user_password: &'a str,
}

#[derive(Serialize)]
struct Settings<'a> {
    #[serde(rename = "DBConf")]
    db_conf: DbConf<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct DbConf<'a> {
    common: Common<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    backup: Option<BackupBody<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Common<'a> {
    service_port: u16,
    source_network: Vec<&'a str>,
    default_user: &'a str,
    user_password: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct BackupBody<'a> {
    rotate: u8,
    time: &'a str,
    day_of_week: &'a [String],
}

impl<'a> CreateEnvelope<'a> {
    pub(crate) fn new(req: &'a CreateDatabase) -> Self {
        let s = &req.settings;
        // A create always names the port, so what we asked for is what we read back.
        let port = s.port.unwrap_or(req.engine.default_port());
        CreateEnvelope {
            appliance: CreateAppliance {
                class: "database",
                name: &req.name,
                description: &req.description,
                tags: &req.tags,
                remark: Remark {
                    plan: IdNumber { id: req.plan_id },
                    switch: IdString { id: &req.switch_id },
                    servers: [Server {
                        ip_address: &req.ip_address,
                    }],
                    network: Network {
                        network_mask_len: req.network_mask_len,
                        default_route: &req.default_route,
                    },
                    db_conf: RemarkDbConf {
                        common: RemarkCommon {
                            database_name: req.engine.wire_name(),
                            database_version: req.database_version.as_deref(),
                            default_user: &s.default_user,
                            user_password: s.user_password.expose(),
                        },
                    },
                },
                settings: Settings {
                    db_conf: DbConf::new(s, port),
                },
            },
        }
    }
}

impl<'a> DbConf<'a> {
    fn new(s: &'a DatabaseSettings, port: u16) -> Self {
        DbConf {
            common: Common {
                service_port: port,
                source_network: source_networks(&s.source_networks),
                default_user: &s.default_user,
                user_password: s.user_password.expose(),
            },
            backup: s.backup.as_ref().map(BackupBody::new),
        }
    }
}

impl<'a> BackupBody<'a> {
    fn new(b: &'a Backup) -> Self {
        BackupBody {
            rotate: b.rotate,
            time: &b.time,
            day_of_week: &b.day_of_week,
        }
    }
}

/// An empty allow-list goes out as `["0.0.0.0/0"]`, as SAKURA's own client sends it.
fn source_networks(list: &[String]) -> Vec<&str> {
    if list.is_empty() {
        vec![ALLOW_ALL]
    } else {
        list.iter().map(String::as_str).collect()
    }
}

/// `{"Appliance":{"Settings":{..},"SettingsHash":".."}}` of `PUT /appliance/{id}`. The settings
/// go whole (the API replaces them); `SettingsHash` is optional, and left out when not given.
#[derive(Serialize)]
pub(crate) struct UpdateEnvelope<'a> {
    #[serde(rename = "Appliance")]
    appliance: UpdateAppliance<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct UpdateAppliance<'a> {
    settings: &'a SettingsDoc,
    #[serde(skip_serializing_if = "Option::is_none")]
    settings_hash: Option<&'a str>,
}

impl<'a> UpdateEnvelope<'a> {
    pub(crate) fn new(settings: &'a SettingsDoc, settings_hash: Option<&'a str>) -> Self {
        UpdateEnvelope {
            appliance: UpdateAppliance {
                settings,
                settings_hash,
            },
        }
    }
}

/// `{"Appliance":{"Description":..,"Tags":[..]}}` of `PUT /appliance/{id}`: the labels alone,
/// `Settings` left out (the API then keeps them as they are).
#[derive(Serialize)]
pub(crate) struct LabelsEnvelope<'a> {
    #[serde(rename = "Appliance")]
    pub appliance: Labels<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct Labels<'a> {
    pub description: &'a str,
    pub tags: &'a [String],
}

/// `{"Force":true}` of `DELETE /appliance/{id}/power`; `Force` is left out when false.
#[derive(Serialize)]
pub(crate) struct ShutdownBody {
    #[serde(rename = "Force", skip_serializing_if = "std::ops::Not::not")]
    pub force: bool,
}

/// The find condition that goes raw after `?` (no `q=`).
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct FindQuery {
    pub count: u64,
    pub from: u64,
    pub filter: ExactNameFilter,
}

/// `Class` plus an exact-match `Name` (a one-element array means exact match).
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct ExactNameFilter {
    pub class: String,
    pub name: [String; 1],
}

impl FindQuery {
    /// The query for one page of appliances of class `database` named exactly `name`.
    pub(crate) fn exact_name(name: &str, from: u64, count: u64) -> FindQuery {
        FindQuery {
            count,
            from,
            filter: ExactNameFilter {
                class: path_escape("database"),
                name: [path_escape(name)],
            },
        }
    }

    /// The JSON text to put after `?`.
    pub(crate) fn to_query_string(&self) -> String {
        // Serialising plain structs of strings and numbers cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// What Go's `url.PathEscape` leaves alone: letters, digits and `-_.~$&+:=@`.
const PATH_SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b'$')
    .remove(b'&')
    .remove(b'+')
    .remove(b':')
    .remove(b'=')
    .remove(b'@');

/// Escape a filter value (or a path segment) as SAKURA's Go client does with `url.PathEscape`:
/// the server decodes the query once, so `a b` must travel as `a%20b` inside the JSON.
pub(crate) fn path_escape(s: &str) -> String {
    utf8_percent_encode(s, PATH_SEGMENT).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_like_go_path_escape() {
        assert_eq!(path_escape("test example"), "test%20example");
        assert_eq!(path_escape("a/b;c,d?e%f\"g"), "a%2Fb%3Bc%2Cd%3Fe%25f%22g");
        assert_eq!(path_escape("osb-1_2.3~$&+:=@"), "osb-1_2.3~$&+:=@");
        assert_eq!(path_escape("é"), "%C3%A9");
    }

    #[test]
    fn find_query_is_the_documented_json() {
        let q = FindQuery::exact_name("osb 1", 0, 100).to_query_string();
        assert_eq!(
            q,
            r#"{"Count":100,"From":0,"Filter":{"Class":"database","Name":["osb%201"]}}"#
        );
    }

    #[test]
    fn shutdown_body_leaves_out_force_when_false() {
        let body = |force| serde_json::to_string(&ShutdownBody { force }).unwrap();
        assert_eq!(body(true), r#"{"Force":true}"#);
        assert_eq!(body(false), "{}");
    }
}
