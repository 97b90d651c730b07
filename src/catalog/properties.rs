//! The parameters each plan accepts: one JSON Schema fragment per property, with a description
//! for platform UIs and the sentence a user reads when a value breaks it.

use serde_json::{Value, json};

/// One accepted parameter: its schema and the sentence a user reads when a value breaks it.
pub(crate) struct Property {
    pub name: &'static str,
    pub schema: Value,
    pub rule: String,
    /// For arrays: the sentence for a bad element.
    pub item_rule: Option<&'static str>,
}

fn property(name: &'static str, schema: Value, rule: impl Into<String>) -> Property {
    Property {
        name,
        schema,
        rule: rule.into(),
        item_rule: None,
    }
}

/// The sentences shown when a value breaks a property's rule; the semantic checks reuse them.
pub(crate) mod rule {
    pub const SWITCH_ID: &str = "must be the 12-digit id of a SAKURA Cloud switch, as a string or a number, \
                                 such as \"112233445566\"";
    pub const IP_ADDRESS: &str = "must be an IPv4 address such as 192.168.0.11";
    pub const MASK_LEN: &str = "must be an integer between 8 and 29";
    pub const DEFAULT_ROUTE: &str = "must be an IPv4 address such as 192.168.0.1";
    pub const USERNAME: &str = "must be 3 to 20 letters or digits, starting with a letter";
    pub const PORT: &str = "must be an integer between 1024 and 65535";
    pub const ALLOW_NETWORKS: &str =
        "must be an array of IPv4 networks such as [\"192.168.0.0/24\"]";
    pub const CIDR_ITEM: &str =
        "must be an IPv4 network in CIDR form such as 192.168.0.0/24, or a single IPv4 address";
    pub const BACKUP_TIME: &str = "must be a time of day as HH:MM on a quarter hour (minutes 00, 15, 30 or 45), \
                                   such as \"03:30\"";
    pub const BACKUP_ROTATE: &str = "must be an integer between 1 and 8";
    pub const DATABASE_VERSION: &str = "must be a version number such as \"10.11\"";
    pub const BOOLEAN: &str = "must be true or false";
    pub const MODE: &str = "must be \"shared\" or \"dedicated\"";
}

fn allow_networks() -> Property {
    Property {
        item_rule: Some(rule::CIDR_ITEM),
        ..property(
            "allowNetworks",
            json!({
                "description": "Client networks allowed in, as CIDR; a bare address is one host.",
                "type": "array",
                "items": {"type": "string", "pattern": "^[0-9]{1,3}(\\.[0-9]{1,3}){3}(/[0-9]{1,2})?$"},
            }),
            rule::ALLOW_NETWORKS,
        )
    }
}

fn port() -> Property {
    property(
        "port",
        json!({
            "description": "Database port (default 3306 MariaDB, 5432 PostgreSQL).",
            "type": "integer", "minimum": 1024, "maximum": 65535,
        }),
        rule::PORT,
    )
}

fn backup_time() -> Property {
    property(
        "backupTime",
        json!({
            "description": "Daily backup time, HH:MM on a quarter hour.",
            "type": "string", "pattern": "^([01][0-9]|2[0-3]):(00|15|30|45)$",
        }),
        rule::BACKUP_TIME,
    )
}

fn backup_rotate() -> Property {
    property(
        "backupRotate",
        json!({
            "description": "Daily backups kept (1-8).",
            "type": "integer", "minimum": 1, "maximum": 8,
        }),
        rule::BACKUP_ROTATE,
    )
}

pub(crate) fn create_properties(zones: &[String], pools: bool) -> Vec<Property> {
    // With pools, each network parameter says that the operator's network supplies it.
    let pooled = |text: &str, pooled: &str| {
        if pools {
            format!("{text} Optional: {pooled}")
        } else {
            text.to_owned()
        }
    };
    vec![
        property(
            "switchID",
            json!({
                "description": pooled("SAKURA Cloud switch to attach to (12-digit id).", "the operator's network for this space or namespace is used; another switch may be refused."),
                "type": ["string", "integer"],
                "pattern": "^[1-9][0-9]{11}$",
                "minimum": 100_000_000_000_u64, "maximum": 999_999_999_999_u64,
            }),
            rule::SWITCH_ID,
        ),
        property(
            "ipaddress",
            json!({
                "description": pooled("Database IPv4 address on the switch.", "a free address of the network's pool is allocated; one given must be free and inside the pool."),
                "type": "string", "format": "ipv4",
            }),
            rule::IP_ADDRESS,
        ),
        property(
            "maskLen",
            json!({
                "description": pooled("Subnet prefix length (8-29).", "the network's."),
                "type": "integer", "minimum": 8, "maximum": 29,
            }),
            rule::MASK_LEN,
        ),
        property(
            "defaultRoute",
            json!({
                "description": pooled("Gateway IPv4 address.", "the network's."),
                "type": "string", "format": "ipv4",
            }),
            rule::DEFAULT_ROUTE,
        ),
        property(
            "username",
            json!({
                "description": "Default user name (3-20 letters or digits, letter first); random if absent.",
                "type": "string", "minLength": 3, "maxLength": 20, "pattern": "^[A-Za-z][A-Za-z0-9]*$",
            }),
            rule::USERNAME,
        ),
        port(),
        allow_networks(),
        backup_time(),
        backup_rotate(),
        property(
            "databaseVersion",
            json!({
                "description": "Engine version SAKURA Cloud offers: MariaDB 10.11, 10.4 or 10.3; PostgreSQL 13 or 11. The newest if absent.",
                "type": "string", "maxLength": 16, "pattern": "^[0-9]+(\\.[0-9]+){0,2}$",
            }),
            rule::DATABASE_VERSION,
        ),
        property(
            "zone",
            json!({
                "description": if pools { "SAKURA Cloud zone; the network's zone if absent (another zone is refused)." } else { "SAKURA Cloud zone; the broker's default if absent." },
                "type": "string", "enum": zones,
            }),
            format!(
                "must be one of the zones this broker serves: {}",
                zones.join(", ")
            ),
        ),
    ]
}

pub(crate) fn update_properties() -> Vec<Property> {
    vec![
        allow_networks(),
        port(),
        backup_time(),
        backup_rotate(),
        property(
            "rotateAdminPassword",
            json!({
                "description": "true: a new random password for the default user.",
                "type": "boolean",
            }),
            rule::BOOLEAN,
        ),
    ]
}

pub(crate) fn bind_properties() -> Vec<Property> {
    vec![property(
        "mode",
        json!({
            "description": "shared: the default user's login; dedicated: a user of its own.",
            "type": "string", "enum": ["shared", "dedicated"],
        }),
        rule::MODE,
    )]
}
