//! Parsing of real and quirky API answers, and the exact shape of the bodies we send.

use serde_json::{Value, json};

use super::model::*;
use super::naked::{NakedDatabase, StatusEnvelope};
use super::request::{CreateEnvelope, UpdateEnvelope};
use crate::secret::Secret;

/// The sanitised 2016 answer kept as a test fixture in libsacloud v1 (`sacloud/database_test.go`,
/// `testDatabaseJSON`), with its two `%s` slots as `@SOURCE_NETWORK@` and `@NETWORK@`.
const FIXTURE_2016: &str = include_str!("testdata/libsacloud_database_2016.json.in");

fn fixture(source_network: &str, network: &str) -> String {
    FIXTURE_2016
        .replace("@SOURCE_NETWORK@", source_network)
        .replace("@NETWORK@", network)
}

fn parse_str(json: &str) -> Database {
    let naked: NakedDatabase = serde_json::from_str(json).expect("naked parse");
    Database::try_from(naked).expect("database")
}

fn parse(v: Value) -> Database {
    parse_str(&v.to_string())
}

/// A current-looking appliance on a private switch, to which each test applies one quirk.
fn base() -> Value {
    json!({
        "ID": 112233445566u64, "Class": "database", "Name": "osb-x", "Description": "",
        "Tags": ["@osb-sacloud"], "Availability": "available", "Instance": {"Status": "up"},
        "Plan": {"ID": 10},
        "Remark": {"Plan": {"ID": 10}, "Switch": {"ID": 223344556677u64},
            "Servers": [{"IPAddress": "192.168.0.11"}],
            "Network": {"NetworkMaskLen": 24, "DefaultRoute": "192.168.0.1"},
            "DBConf": {"Common": {"DatabaseName": "MariaDB", "DatabaseVersion": "10.11"}}},
        "Settings": {"DBConf": {"Common": {"DefaultUser": "admin", "UserPassword": "pw-123",
            "ServicePort": 3306, "SourceNetwork": ["192.168.0.0/24"], "WebUI": false},
            "Backup": {"Rotate": 3, "Time": "01:30", "DayOfWeek": ["mon", "thu"]}}},
        "SettingsHash": "abc", "Icon": null, "Switch": null, "Interfaces": []
    })
}

#[test]
fn parses_the_real_2016_answer() {
    let db = parse_str(&fixture(r#""""#, "[]"));
    assert_eq!(db.id, 999_999_999_999);
    assert_eq!(db.name, "名称未設定 データベース 15690ceb5d8");
    assert_eq!(db.availability, "available");
    assert_eq!(db.instance_status.as_deref(), Some("down"));
    assert_eq!(db.engine, Some(Engine::Postgres));
    assert_eq!(db.database_version.as_deref(), Some("9.4"));
    assert_eq!(db.plan_id, Some(1));
    // Remark.Switch is `{"Scope":"shared"}` and Servers is `[[]]`: the interface answers.
    assert_eq!(db.switch_id, Some(999_999_999_999));
    assert_eq!(db.ip_address.as_deref(), Some("8.8.8.8"));
    assert_eq!(db.network_mask_len, Some(24));
    assert_eq!(db.default_route.as_deref(), Some("8.8.8.1"));
    assert_eq!(db.settings.default_user, "HogeHogeooo");
    assert_eq!(db.settings.user_password.expose(), "HogeHogeooo");
    assert_eq!(db.settings.port, None, "ServicePort is \"\" in this answer");
    assert!(db.settings.source_networks.is_empty());
    let backup = db.settings.backup.as_ref().expect("backup");
    assert_eq!((backup.rotate, backup.time.as_str()), (8, "00:45"));
    assert!(backup.day_of_week.is_empty());
    assert_eq!(
        db.settings_hash.as_deref(),
        Some("589300a0e9c9c8a6c6055ffb27f26155")
    );
    assert!(db.tags.is_empty());
}

#[test]
fn parses_the_2016_variants_with_a_source_network_list_and_a_network_object() {
    let network = r#"{"NetworkMaskLen": 24, "DefaultRoute": "192.168.11.1"}"#;
    let db = parse_str(&fixture(r#"["192.168.11.1","192.168.11.2"]"#, network));
    assert_eq!(
        db.settings.source_networks,
        ["192.168.11.1", "192.168.11.2"]
    );
    assert_eq!(db.network_mask_len, Some(24));
    assert_eq!(db.default_route.as_deref(), Some("192.168.11.1"));
}

#[test]
fn reads_a_current_appliance() {
    let db = parse(base());
    assert_eq!(db.switch_id, Some(223_344_556_677));
    assert_eq!(db.ip_address.as_deref(), Some("192.168.0.11"));
    assert_eq!(db.settings.port, Some(3306));
    assert_eq!(db.settings.source_networks, ["192.168.0.0/24"]);
    assert_eq!(db.settings.backup.unwrap().day_of_week, ["mon", "thu"]);
    assert_eq!(db.engine, Some(Engine::MariaDb));
}

#[test]
fn ids_may_be_strings() {
    let mut v = base();
    v["ID"] = json!("112233445566");
    v["Remark"]["Switch"]["ID"] = json!("223344556677");
    v["Remark"]["Plan"]["ID"] = json!("30");
    let db = parse(v);
    assert_eq!(
        (db.id, db.switch_id, db.plan_id),
        (112_233_445_566, Some(223_344_556_677), Some(30))
    );
}

#[test]
fn a_missing_id_is_a_parse_error() {
    let mut v = base();
    v.as_object_mut().unwrap().remove("ID");
    let naked: NakedDatabase = serde_json::from_value(v).unwrap();
    assert!(matches!(
        Database::try_from(naked),
        Err(super::Error::Parse(_))
    ));
}

#[test]
fn service_port_may_be_a_string_or_a_number() {
    for (port, want) in [
        (json!("5432"), Some(5432)),
        (json!(5432), Some(5432)),
        (json!(""), None),
    ] {
        let mut v = base();
        v["Settings"]["DBConf"]["Common"]["ServicePort"] = port;
        assert_eq!(parse(v).settings.port, want);
    }
}

#[test]
fn source_network_empty_string_or_allow_all_means_allow_all() {
    for sn in [json!(""), json!(["0.0.0.0/0"]), json!([]), json!(null)] {
        let mut v = base();
        v["Settings"]["DBConf"]["Common"]["SourceNetwork"] = sn.clone();
        assert!(parse(v).settings.source_networks.is_empty(), "{sn}");
    }
}

#[test]
fn remark_servers_may_be_placeholders() {
    for servers in [json!([[]]), json!([""]), json!([null])] {
        let mut v = base();
        v["Remark"]["Servers"] = servers;
        v["Interfaces"] = json!([{"IPAddress": "192.168.0.12", "Switch": null}]);
        assert_eq!(parse(v).ip_address.as_deref(), Some("192.168.0.12"));
    }
}

#[test]
fn remark_network_may_be_an_empty_list() {
    let mut v = base();
    v["Remark"]["Network"] = json!([]);
    let db = parse(v);
    assert_eq!((db.network_mask_len, db.default_route), (None, None));
}

#[test]
fn backup_may_be_an_empty_list() {
    let mut v = base();
    v["Settings"]["DBConf"]["Backup"] = json!([]);
    assert_eq!(parse(v).settings.backup, None);
}

#[test]
fn web_ui_may_be_a_bool_or_a_string() {
    for web_ui in [
        json!(true),
        json!(false),
        json!("db.example.jp"),
        json!("8.8.8.8"),
    ] {
        let mut v = base();
        v["Settings"]["DBConf"]["Common"]["WebUI"] = web_ui;
        assert_eq!(parse(v).id, 112_233_445_566);
    }
}

#[test]
fn icon_and_switch_may_be_null_and_instance_absent() {
    let mut v = base();
    v["Remark"]["Switch"] = json!(null);
    v.as_object_mut().unwrap().remove("Instance");
    v["Availability"] = json!("migrating");
    let db = parse(v);
    assert_eq!(db.instance_status, None);
    assert_eq!(db.switch_id, None);
    assert_eq!(db.availability, "migrating");
}

#[test]
fn debug_never_shows_the_password() {
    let db = parse(base());
    let text = format!("{db:?}");
    assert!(!text.contains("pw-123"), "{text}");
    assert!(text.contains("***"));
}

#[test]
fn status_answer_reports_up_and_running() {
    let env =
        |v: Value| DatabaseStatus::from_naked(serde_json::from_value::<StatusEnvelope>(v).unwrap());
    let up = env(
        json!({"is_ok": true, "Appliance": {"SettingsResponse": {"Status": "up", "is_fatal": false,
        "DBConf": {"version": {"status": "up", "tag": 1.1}, "log": [], "MariaDB": {"status": "running"}}}}}),
    );
    assert_eq!(
        up,
        DatabaseStatus {
            status: Some("up".into()),
            db_running: true,
            engine_status: Some("running".into()),
        }
    );
    let pg = env(json!({"Appliance": {"SettingsResponse": {"Status": "up",
        "DBConf": {"version": {"tag": "1.1"}, "postgres": {"status": "running"}}}}}));
    assert!(pg.db_running);
    assert_eq!(pg.engine_status.as_deref(), Some("running"));
    // Up, but the engine has not started yet: not running.
    let starting = env(json!({"Appliance": {"SettingsResponse": {"Status": "up",
        "DBConf": {"version": {"status": "up"}, "MariaDB": {"status": "stopped"}}}}}));
    assert_eq!(
        starting,
        DatabaseStatus {
            status: Some("up".into()),
            db_running: false,
            engine_status: Some("stopped".into()),
        }
    );
    let down = env(json!({"Appliance": {"SettingsResponse": {"Status": "down", "DBConf": []}}}));
    assert_eq!(
        down,
        DatabaseStatus {
            status: Some("down".into()),
            db_running: false,
            engine_status: None,
        }
    );
    assert_eq!(env(json!({"is_ok": true})), DatabaseStatus::default());
}

fn create_request() -> CreateDatabase {
    CreateDatabase {
        name: "osb-1".into(),
        description: "d".into(),
        tags: vec!["@osb-sacloud".into()],
        plan_id: 10,
        switch_id: "112233445566".into(),
        ip_address: "192.168.0.11".into(),
        network_mask_len: 24,
        default_route: "192.168.0.1".into(),
        engine: Engine::MariaDb,
        database_version: Some("10.11".into()),
        settings: DatabaseSettings {
            default_user: "appuser".into(),
            user_password: Secret::new("s3cret"),
            port: None,
            source_networks: vec![],
            backup: Some(Backup {
                rotate: 8,
                time: "00:00".into(),
                day_of_week: vec!["mon".into()],
            }),
        },
    }
}

#[test]
fn create_body_is_the_documented_shape() {
    let body = serde_json::to_value(CreateEnvelope::new(&create_request())).unwrap();
    assert_eq!(
        body,
        json!({"Appliance": {
            "Class": "database", "Name": "osb-1", "Description": "d", "Tags": ["@osb-sacloud"],
            "Remark": {
                "Plan": {"ID": 10}, "Switch": {"ID": "112233445566"},
                "Servers": [{"IPAddress": "192.168.0.11"}],
                "Network": {"NetworkMaskLen": 24, "DefaultRoute": "192.168.0.1"},
                "DBConf": {"Common": {"DatabaseName": "MariaDB", "DatabaseVersion": "10.11",
                    "DefaultUser": "appuser", "UserPassword": "s3cret"}}},
            "Settings": {"DBConf": {
                "Common": {"ServicePort": 3306, "SourceNetwork": ["0.0.0.0/0"],
                    "DefaultUser": "appuser", "UserPassword": "s3cret"},
                "Backup": {"Rotate": 8, "Time": "00:00", "DayOfWeek": ["mon"]}}}}})
    );
}

#[test]
fn create_body_leaves_out_an_unset_version_and_backup() {
    let mut req = create_request();
    req.database_version = None;
    req.settings.backup = None;
    req.engine = Engine::Postgres;
    let body = serde_json::to_value(CreateEnvelope::new(&req)).unwrap();
    let remark_common = &body["Appliance"]["Remark"]["DBConf"]["Common"];
    assert_eq!(remark_common["DatabaseName"], "postgres");
    assert!(remark_common.get("DatabaseVersion").is_none());
    assert!(
        body["Appliance"]["Settings"]["DBConf"]
            .get("Backup")
            .is_none()
    );
    assert_eq!(
        body["Appliance"]["Settings"]["DBConf"]["Common"]["ServicePort"],
        5432
    );
}

#[test]
fn update_body_carries_the_whole_settings_and_an_optional_hash() {
    let doc = parse(base()).settings_doc;
    let body = serde_json::to_value(UpdateEnvelope::new(&doc, Some("h1"))).unwrap();
    assert_eq!(body["Appliance"]["SettingsHash"], "h1");
    assert_eq!(body["Appliance"]["Settings"], base()["Settings"]);
    assert_eq!(body["Appliance"].as_object().unwrap().len(), 2);
    let body = serde_json::to_value(UpdateEnvelope::new(&doc, None)).unwrap();
    assert!(body["Appliance"].get("SettingsHash").is_none(), "{body}");
}

/// A read with members the crate does not model, in the shapes the API mixes up.
fn rich() -> Value {
    let mut v = base();
    v["Settings"] = json!({
        "DBConf": {
            "Common": {"DefaultUser": "admin", "UserPassword": "pw-123", "ServicePort": "3306",
                "SourceNetwork": "", "WebUI": "db.example.jp", "ReplicaUser": "replica",
                "ReplicaPassword": "rp-456"},
            "Backup": {"Rotate": 3, "Time": "01:30", "DayOfWeek": ["mon"], "Connect": "nfs://192.168.0.31/export"},
            "Replication": {"Model": "Master-Slave", "Appliance": {"ID": 123456789012u64}},
            "Interfaces": [{"VirtualIPAddress": "192.168.0.10"}]
        },
        "MonitoringSuite": {"Enabled": true}
    });
    v
}

#[test]
fn the_read_keeps_settings_whole() {
    let db = parse(rich());
    assert_eq!(db.settings_doc.as_json(), &rich()["Settings"]);
    assert_eq!(db.settings.port, Some(3306));
    assert!(db.settings.source_networks.is_empty());
    // Not an object: nothing to keep.
    let mut v = base();
    v["Settings"] = json!([]);
    assert_eq!(parse(v).settings_doc, SettingsDoc::default());
}

#[test]
fn with_change_keeps_what_it_does_not_change() {
    let doc = parse(rich()).settings_doc;
    let same = doc
        .with_change(&SettingsChange::default())
        .as_json()
        .clone();
    let conf = &same["DBConf"];
    assert_eq!(conf["Common"]["WebUI"], "db.example.jp");
    assert_eq!(conf["Common"]["ReplicaUser"], "replica");
    assert_eq!(conf["Common"]["ReplicaPassword"], "rp-456");
    assert_eq!(conf["Common"]["UserPassword"], "pw-123");
    assert_eq!(
        conf["Replication"],
        rich()["Settings"]["DBConf"]["Replication"]
    );
    assert_eq!(
        conf["Interfaces"],
        rich()["Settings"]["DBConf"]["Interfaces"]
    );
    assert_eq!(conf["Backup"], rich()["Settings"]["DBConf"]["Backup"]);
    assert_eq!(same["MonitoringSuite"], json!({"Enabled": true}));
    // The API's loose shapes go back as SAKURA's client sends them.
    assert_eq!(
        conf["Common"]["ServicePort"], 3306,
        "a number, not \"3306\""
    );
    assert_eq!(conf["Common"]["SourceNetwork"], json!(["0.0.0.0/0"]));
}

#[test]
fn with_change_writes_what_it_changes_as_the_api_wants_it() {
    let doc = parse(rich()).settings_doc;
    let changed = doc.with_change(&SettingsChange {
        port: Some(13306),
        source_networks: Some(vec!["10.0.0.0/8".into(), "192.168.1.5".into()]),
        backup: Some(Backup {
            rotate: 8,
            time: "23:45".into(),
            day_of_week: vec!["sun".into(), "sat".into()],
        }),
        user_password: Some(Secret::new("new-pw-789")),
    });
    let conf = &changed.as_json()["DBConf"];
    assert_eq!(conf["Common"]["ServicePort"], json!(13306));
    assert_eq!(
        conf["Common"]["SourceNetwork"],
        json!(["10.0.0.0/8", "192.168.1.5"])
    );
    assert_eq!(conf["Common"]["UserPassword"], "new-pw-789");
    assert_eq!(
        conf["Backup"],
        json!({"Rotate": 8, "Time": "23:45", "DayOfWeek": ["sun", "sat"],
            "Connect": "nfs://192.168.0.31/export"}),
        "Connect is kept"
    );
    assert_eq!(conf["Common"]["WebUI"], "db.example.jp");
    assert_eq!(conf["Replication"]["Model"], "Master-Slave");
    // An empty list allows all, as `["0.0.0.0/0"]`.
    let open = doc.with_change(&SettingsChange {
        source_networks: Some(vec![]),
        ..SettingsChange::default()
    });
    assert_eq!(
        open.as_json()["DBConf"]["Common"]["SourceNetwork"],
        json!(["0.0.0.0/0"])
    );
    // The document read is not touched.
    assert_eq!(doc.as_json(), &rich()["Settings"]);
}

#[test]
fn with_change_fills_in_what_is_missing() {
    // Backups off (`[]`), no port: a new Backup object, and `[]` is not sent back.
    let mut v = base();
    v["Settings"]["DBConf"]["Backup"] = json!([]);
    v["Settings"]["DBConf"]["Common"]["ServicePort"] = json!("");
    let doc = parse(v).settings_doc;
    let same = doc.with_change(&SettingsChange::default());
    assert!(same.as_json()["DBConf"].get("Backup").is_none());
    assert!(
        same.as_json()["DBConf"]["Common"]
            .get("ServicePort")
            .is_none()
    );
    let backup = Backup {
        rotate: 1,
        time: "00:00".into(),
        day_of_week: vec![],
    };
    let on = doc.with_change(&SettingsChange {
        backup: Some(backup),
        port: Some(5432),
        ..SettingsChange::default()
    });
    assert_eq!(
        on.as_json()["DBConf"]["Backup"],
        json!({"Rotate": 1, "Time": "00:00", "DayOfWeek": []})
    );
    assert_eq!(on.as_json()["DBConf"]["Common"]["ServicePort"], 5432);
    // From nothing at all.
    let made = SettingsDoc::default().with_change(&SettingsChange {
        port: Some(5432),
        ..SettingsChange::default()
    });
    assert_eq!(
        made.as_json(),
        &json!({"DBConf": {"Common": {"ServicePort": 5432}}})
    );
}

#[test]
fn settings_doc_debug_never_shows_a_password() {
    let db = parse(rich());
    let changed = db.settings_doc.with_change(&SettingsChange {
        user_password: Some(Secret::new("new-pw-789")),
        ..SettingsChange::default()
    });
    let change = SettingsChange {
        user_password: Some(Secret::new("new-pw-789")),
        ..SettingsChange::default()
    };
    let text = format!("{db:?} {changed:?} {change:?}");
    for secret in ["pw-123", "rp-456", "new-pw-789"] {
        assert!(!text.contains(secret), "{secret} in {text}");
    }
}
