//! Configuration from the environment, read once at start and validated there; secrets are
//! held in [`Secret`] so they cannot be printed.

use std::net::SocketAddr;
use std::path::PathBuf;

use crate::binder::Mode;
use crate::broker::Settings;
use crate::networks::Networks;
use crate::secret::Secret;
use crate::secrets::SecretValues;
use crate::server::Limits;

/// SAKURA Cloud's zones (`iaas-api-go/types/zone.go`).
pub const KNOWN_ZONES: [&str; 6] = ["is1a", "is1b", "is1c", "tk1a", "tk1b", "tk1v"];

/// Where the broker keeps its records.
#[derive(Debug, Clone, PartialEq)]
pub enum StoreChoice {
    /// In memory (tests; lost at exit).
    Memory,
    /// The embedded file store at this path.
    File(PathBuf),
    /// A DynamoDB table, optionally at an emulator's endpoint.
    DynamoDb {
        table: String,
        endpoint: Option<String>,
    },
}

/// Everything the broker needs to start.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub broker_username: String,
    /// `None` only in fake mode, where a random password is generated and printed.
    pub broker_password: Option<Secret>,
    pub fake_mode: bool,
    pub api_root_url: String,
    pub access_token: Secret,
    pub access_token_secret: Secret,
    pub zone: String,
    pub zones: Vec<String>,
    pub rate_limit: f64,
    /// Retries of a SAKURA call answered 423/503 (`SAKURACLOUD_RETRY_MAX`).
    pub retry_max: u32,
    /// First backoff wait in seconds, doubled per retry (`SAKURACLOUD_RETRY_WAIT_MIN`).
    pub retry_wait_min: f64,
    pub store: StoreChoice,
    pub encryption_keys: Option<Secret>,
    pub settings: Settings,
    /// The local server's timeouts and connection cap (`OSB_HEADER_TIMEOUT_SECS`,
    /// `OSB_BODY_TIMEOUT_SECS`, `OSB_IDLE_TIMEOUT_SECS`, `OSB_MAX_CONNECTIONS`).
    pub server: Limits,
    /// On Lambda, open the DynamoDB and SAKURA Cloud connections during the cold start
    /// (`OSB_WARM_UP`, on by default).
    pub warm_up: bool,
}

/// A configuration the broker refuses to start with. Messages name the variable to fix.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A value that does not parse as what the variable holds.
    #[error("configuration: {name}={value:?} is not a valid value")]
    Invalid { name: &'static str, value: String },
    /// A duration that is not a number of seconds.
    #[error("configuration: {name}={value:?} is not a number of seconds")]
    NotSeconds { name: &'static str, value: String },
    /// A timeout outside (0, 86400] seconds.
    #[error(
        "configuration: {name}={value:?} must be a number of seconds above 0 and at most 86400"
    )]
    SecondsOutOfRange { name: &'static str, value: String },
    #[error("configuration: OSB_MAX_CONNECTIONS must be at least 1")]
    NoConnections,
    /// Outside fake mode the broker's own credentials must be set.
    #[error(
        "configuration: set OSB_USERNAME and OSB_PASSWORD (the broker's basic-auth credentials); only fake mode (SAKURACLOUD_FAKE_MODE=1) generates them"
    )]
    NoBrokerCredentials,
    /// Outside fake mode the SAKURA Cloud API key must be set.
    #[error(
        "configuration: set SAKURACLOUD_ACCESS_TOKEN and SAKURACLOUD_ACCESS_TOKEN_SECRET, or SAKURACLOUD_FAKE_MODE=1 to use the built-in simulator"
    )]
    NoSakuraCredentials,
    /// The default zone is not among the zones users may pick.
    #[error(
        "configuration: SAKURACLOUD_ZONE={zone:?} is not one of the zones in OSB_ZONES ({})",
        zones.join(", ")
    )]
    ZoneNotOffered { zone: String, zones: Vec<String> },
    /// The network pools file does not describe usable pools.
    #[error("configuration: OSB_NETWORKS: {0}")]
    Networks(String),
}

fn parse<T: std::str::FromStr>(
    name: &'static str,
    value: Option<String>,
    default: T,
) -> Result<T, ConfigError> {
    match value.filter(|v| !v.trim().is_empty()) {
        None => Ok(default),
        Some(v) => v
            .trim()
            .parse()
            .map_err(|_| ConfigError::Invalid { name, value: v }),
    }
}

/// A duration in (possibly fractional) seconds, such as `20` or `0.2`.
fn seconds(
    name: &'static str,
    value: Option<String>,
    default: std::time::Duration,
) -> Result<std::time::Duration, ConfigError> {
    match value.filter(|v| !v.trim().is_empty()) {
        None => Ok(default),
        Some(v) => v
            .trim()
            .parse::<f64>()
            .ok()
            .and_then(|s| std::time::Duration::try_from_secs_f64(s).ok())
            .ok_or(ConfigError::NotSeconds { name, value: v }),
    }
}

/// A positive number of seconds (fractions allowed), or `default` when unset.
fn positive_seconds(
    name: &'static str,
    value: Option<String>,
    default: std::time::Duration,
) -> Result<std::time::Duration, ConfigError> {
    let secs: f64 = parse(name, value.clone(), default.as_secs_f64())?;
    if !(secs > 0.0 && secs <= 86_400.0) {
        return Err(ConfigError::SecondsOutOfRange {
            name,
            value: value.unwrap_or_default(),
        });
    }
    Ok(std::time::Duration::from_secs_f64(secs))
}

fn server_limits(get: &impl Fn(&str) -> Option<String>) -> Result<Limits, ConfigError> {
    let defaults = Limits::default();
    let max_connections = parse(
        "OSB_MAX_CONNECTIONS",
        get("OSB_MAX_CONNECTIONS"),
        defaults.max_connections,
    )?;
    if max_connections == 0 {
        return Err(ConfigError::NoConnections);
    }
    Ok(Limits {
        header_timeout: positive_seconds(
            "OSB_HEADER_TIMEOUT_SECS",
            get("OSB_HEADER_TIMEOUT_SECS"),
            defaults.header_timeout,
        )?,
        body_timeout: positive_seconds(
            "OSB_BODY_TIMEOUT_SECS",
            get("OSB_BODY_TIMEOUT_SECS"),
            defaults.body_timeout,
        )?,
        idle_timeout: positive_seconds(
            "OSB_IDLE_TIMEOUT_SECS",
            get("OSB_IDLE_TIMEOUT_SECS"),
            defaults.idle_timeout,
        )?,
        max_connections,
    })
}

/// The defaults that differ between running against SAKURA Cloud and fake mode, chosen once
/// from `SAKURACLOUD_FAKE_MODE` (and whether real database servers back the simulator).
#[derive(Debug, Clone, PartialEq)]
struct Defaults {
    /// SAKURA credentials to use when none are configured (the simulator takes any). `None`:
    /// they must be configured, and so must the broker's own (fake mode generates its password
    /// when none is set, see `app`).
    stand_in_credentials: Option<(&'static str, &'static str)>,
    /// `OSB_BINDING_MODE` when unset.
    binding_mode: Mode,
    /// `OSB_RETRY_AFTER_SECS` when unset: the simulator's appliances change within seconds.
    retry_after_secs: u64,
    /// Dial databases on loopback addresses only: simulated appliances at other addresses do
    /// not exist, and nothing may be sent off this machine for them.
    loopback_databases_only: bool,
}

impl Defaults {
    /// Against SAKURA Cloud.
    const SAKURA_CLOUD: Defaults = Defaults {
        stand_in_credentials: None,
        binding_mode: Mode::Dedicated,
        retry_after_secs: 10,
        loopback_databases_only: false,
    };

    /// Fake mode. Without real servers behind the simulator (`backed`) there is no database to
    /// make users in, so bindings default to `shared`.
    fn fake_mode(backed: bool) -> Defaults {
        Defaults {
            stand_in_credentials: Some(("fake-token", "fake-secret")),
            binding_mode: if backed {
                Mode::Dedicated
            } else {
                Mode::Shared
            },
            retry_after_secs: 2,
            loopback_databases_only: true,
        }
    }
}

/// A switch: `1`, `true`, `yes`, `on` or `0`, `false`, `no`, `off`; `default` when unset.
fn switch(name: &'static str, value: Option<String>, default: bool) -> Result<bool, ConfigError> {
    match value.as_deref().map(str::trim) {
        None | Some("") => Ok(default),
        Some(v) if truthy(Some(v.to_owned())) => Ok(true),
        Some("0" | "false" | "FALSE" | "no" | "off") => Ok(false),
        Some(v) => Err(ConfigError::Invalid {
            name,
            value: v.to_owned(),
        }),
    }
}

fn truthy(value: Option<String>) -> bool {
    matches!(
        value.as_deref().map(str::trim),
        Some("1" | "true" | "TRUE" | "yes" | "on")
    )
}

impl Config {
    /// Read the process environment.
    pub fn from_env() -> Result<Config, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Read configuration through `get`, with the values `secrets` holds (from Secrets Manager)
    /// taking precedence over `get` for their keys; `get` fills whatever the secret lacks.
    pub fn from_lookup_with_secrets(
        get: impl Fn(&str) -> Option<String>,
        secrets: Option<&SecretValues>,
    ) -> Result<Config, ConfigError> {
        match secrets {
            Some(values) => Self::from_lookup(values.overlay(get)),
            None => Self::from_lookup(get),
        }
    }

    /// Read configuration through `get` (the environment, or a map in tests).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let secret = |k: &str| get(k).filter(|v| !v.is_empty()).map(Secret::new);
        let fake_mode = truthy(get("SAKURACLOUD_FAKE_MODE"));
        let chosen = if fake_mode {
            let backed = ["SIMULATOR_MARIADB_URL", "SIMULATOR_POSTGRES_URL"]
                .iter()
                .any(|k| get(k).is_some_and(|v| !v.is_empty()));
            Defaults::fake_mode(backed)
        } else {
            Defaults::SAKURA_CLOUD
        };
        let listen = parse(
            "OSB_LISTEN",
            get("OSB_LISTEN"),
            SocketAddr::from(([127, 0, 0, 1], 8080)),
        )?;
        let broker_username = get("OSB_USERNAME").filter(|v| !v.is_empty());
        let broker_password = secret("OSB_PASSWORD");
        let required = chosen.stand_in_credentials.is_none();
        if required && (broker_username.is_none() || broker_password.is_none()) {
            return Err(ConfigError::NoBrokerCredentials);
        }
        let (access_token, access_token_secret) = match (
            secret("SAKURACLOUD_ACCESS_TOKEN"),
            secret("SAKURACLOUD_ACCESS_TOKEN_SECRET"),
            chosen.stand_in_credentials,
        ) {
            (Some(token), Some(secret), _) => (token, secret),
            (token, secret, Some((stand_in_token, stand_in_secret))) => (
                token.unwrap_or_else(|| Secret::new(stand_in_token)),
                secret.unwrap_or_else(|| Secret::new(stand_in_secret)),
            ),
            _ => return Err(ConfigError::NoSakuraCredentials),
        };
        let zone = get("SAKURACLOUD_ZONE")
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| "is1a".into());
        let zones: Vec<String> = match get("OSB_ZONES").filter(|v| !v.trim().is_empty()) {
            Some(list) => list
                .split(',')
                .map(|z| z.trim().to_owned())
                .filter(|z| !z.is_empty())
                .collect(),
            None => KNOWN_ZONES.iter().map(|z| z.to_string()).collect(),
        };
        if !zones.contains(&zone) {
            return Err(ConfigError::ZoneNotOffered { zone, zones });
        }
        let store = match get("OSB_TABLE").filter(|v| !v.is_empty()) {
            Some(table) => StoreChoice::DynamoDb {
                table,
                endpoint: get("DYNAMODB_ENDPOINT").filter(|v| !v.is_empty()),
            },
            None => {
                let dir = get("OSB_DATA_DIR")
                    .filter(|v| !v.is_empty())
                    .unwrap_or_else(|| "./data".into());
                StoreChoice::File(PathBuf::from(dir).join("osb-sacloud.redb"))
            }
        };
        let default_binding_mode = parse(
            "OSB_BINDING_MODE",
            get("OSB_BINDING_MODE"),
            chosen.binding_mode,
        )?;
        let encryption_keys = secret("OSB_ENCRYPTION_KEYS");
        let server = server_limits(&get)?;
        // Network pools: the operator's file (or its JSON inline, as a Lambda secret holds it);
        // fake mode brings a pool of its own so a provision without parameters just works.
        let networks = match get("OSB_NETWORKS").filter(|v| !v.trim().is_empty()) {
            Some(value) => Some(
                Networks::load(&value, &zones).map_err(|e| ConfigError::Networks(e.to_string()))?,
            ),
            None if fake_mode => Some(Networks::fake(&zone)),
            None => None,
        };
        let defaults = Settings::default();
        let retry_after = parse(
            "OSB_RETRY_AFTER_SECS",
            get("OSB_RETRY_AFTER_SECS"),
            chosen.retry_after_secs,
        )?;
        let settings = Settings {
            provision_timeout: parse(
                "OSB_PROVISION_TIMEOUT_SECS",
                get("OSB_PROVISION_TIMEOUT_SECS"),
                defaults.provision_timeout,
            )?,
            update_timeout: parse(
                "OSB_UPDATE_TIMEOUT_SECS",
                get("OSB_UPDATE_TIMEOUT_SECS"),
                defaults.update_timeout,
            )?,
            deprovision_timeout: parse(
                "OSB_DEPROVISION_TIMEOUT_SECS",
                get("OSB_DEPROVISION_TIMEOUT_SECS"),
                defaults.deprovision_timeout,
            )?,
            claim_lease: parse(
                "OSB_CLAIM_LEASE_SECS",
                get("OSB_CLAIM_LEASE_SECS"),
                defaults.claim_lease,
            )?,
            tombstone_ttl: parse(
                "OSB_TOMBSTONE_TTL_SECS",
                get("OSB_TOMBSTONE_TTL_SECS"),
                defaults.tombstone_ttl,
            )?,
            gone_succeeded_secs: parse(
                "OSB_GONE_SUCCEEDED_SECS",
                get("OSB_GONE_SUCCEEDED_SECS"),
                defaults.gone_succeeded_secs,
            )?,
            binding_lifetime: parse::<i64>(
                "OSB_BINDING_LIFETIME_SECS",
                get("OSB_BINDING_LIFETIME_SECS"),
                0,
            )
            .map(|secs| (secs > 0).then_some(secs))?,
            retry_after,
            not_visible_grace: seconds(
                "OSB_NOT_VISIBLE_GRACE_SECS",
                get("OSB_NOT_VISIBLE_GRACE_SECS"),
                defaults.not_visible_grace,
            )?,
            power_resend: seconds(
                "OSB_POWER_RESEND_SECS",
                get("OSB_POWER_RESEND_SECS"),
                defaults.power_resend,
            )?,
            reapply_after: seconds(
                "OSB_REAPPLY_SECS",
                get("OSB_REAPPLY_SECS"),
                defaults.reapply_after,
            )?,
            create_retry_after: seconds(
                "OSB_CREATE_RETRY_SECS",
                get("OSB_CREATE_RETRY_SECS"),
                defaults.create_retry_after,
            )?,
            check_interval: seconds(
                "OSB_CHECK_INTERVAL_SECS",
                get("OSB_CHECK_INTERVAL_SECS"),
                // Polls come about every Retry-After; ask SAKURA at most that often.
                std::time::Duration::from_secs(retry_after),
            )?,
            answer_within: seconds(
                "OSB_ANSWER_WITHIN_SECS",
                get("OSB_ANSWER_WITHIN_SECS"),
                defaults.answer_within,
            )?,
            create_attempts: parse(
                "OSB_CREATE_ATTEMPTS",
                get("OSB_CREATE_ATTEMPTS"),
                defaults.create_attempts,
            )?,
            default_binding_mode,
            loopback_databases_only: chosen.loopback_databases_only,
            database_tls: parse(
                "OSB_DATABASE_TLS",
                get("OSB_DATABASE_TLS"),
                defaults.database_tls,
            )?,
            networks: networks.map(std::sync::Arc::new),
            adopt_legacy: truthy(get("OSB_ADOPT_LEGACY")),
        };
        Ok(Config {
            listen,
            broker_username: broker_username.unwrap_or_else(|| "broker".into()),
            broker_password,
            fake_mode,
            api_root_url: get("SAKURACLOUD_API_ROOT_URL")
                .filter(|v| !v.is_empty())
                .unwrap_or_else(|| crate::sacloud::DEFAULT_ROOT_URL.into())
                .trim_end_matches('/')
                .to_owned(),
            access_token,
            access_token_secret,
            zone,
            zones,
            rate_limit: parse("SAKURACLOUD_RATE_LIMIT", get("SAKURACLOUD_RATE_LIMIT"), 5.0)?,
            retry_max: parse("SAKURACLOUD_RETRY_MAX", get("SAKURACLOUD_RETRY_MAX"), 5)?,
            retry_wait_min: parse(
                "SAKURACLOUD_RETRY_WAIT_MIN",
                get("SAKURACLOUD_RETRY_WAIT_MIN"),
                0.5,
            )?,
            store,
            encryption_keys,
            settings,
            server,
            warm_up: switch("OSB_WARM_UP", get("OSB_WARM_UP"), true)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn config(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn outside_fake_mode_broker_credentials_are_required() {
        let err = config(&[]).unwrap_err().to_string();
        assert!(
            err.contains("OSB_USERNAME") && err.contains("OSB_PASSWORD"),
            "{err}"
        );
    }

    #[test]
    fn outside_fake_mode_sakura_credentials_are_required() {
        let err = config(&[("OSB_USERNAME", "u"), ("OSB_PASSWORD", "p")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("SAKURACLOUD_ACCESS_TOKEN"), "{err}");
    }

    #[test]
    fn fake_mode_has_defaults_and_a_file_store() {
        let c = config(&[("SAKURACLOUD_FAKE_MODE", "1")]).unwrap();
        assert!(c.fake_mode && c.broker_password.is_none());
        assert!(
            c.settings.loopback_databases_only,
            "fake mode never dials simulated addresses"
        );
        assert_eq!(
            c.store,
            StoreChoice::File(PathBuf::from("./data/osb-sacloud.redb"))
        );
        assert_eq!(c.zone, "is1a");
        assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
    }

    #[test]
    fn fake_mode_chooses_its_defaults_once() {
        let real = config(&[
            ("OSB_USERNAME", "u"),
            ("OSB_PASSWORD", "p"),
            ("SAKURACLOUD_ACCESS_TOKEN", "t"),
            ("SAKURACLOUD_ACCESS_TOKEN_SECRET", "s"),
        ])
        .unwrap();
        let picked = |c: &Config| {
            (
                c.settings.default_binding_mode,
                c.settings.retry_after,
                c.settings.loopback_databases_only,
            )
        };
        assert_eq!(picked(&real), (Mode::Dedicated, 10, false));
        let fake = config(&[("SAKURACLOUD_FAKE_MODE", "1")]).unwrap();
        assert_eq!(picked(&fake), (Mode::Shared, 2, true));
        assert_eq!(
            (
                fake.access_token.expose(),
                fake.access_token_secret.expose()
            ),
            ("fake-token", "fake-secret")
        );
        let backed = config(&[
            ("SAKURACLOUD_FAKE_MODE", "1"),
            (
                "SIMULATOR_POSTGRES_URL",
                "postgres://postgres@127.0.0.1:5432/postgres",
            ),
        ])
        .unwrap();
        assert_eq!(picked(&backed), (Mode::Dedicated, 2, true));
    }

    #[test]
    fn table_selects_dynamodb_and_bad_numbers_are_named() {
        let c = config(&[
            ("SAKURACLOUD_FAKE_MODE", "1"),
            ("OSB_TABLE", "t"),
            ("DYNAMODB_ENDPOINT", "http://127.0.0.1:5005"),
        ])
        .unwrap();
        assert_eq!(
            c.store,
            StoreChoice::DynamoDb {
                table: "t".into(),
                endpoint: Some("http://127.0.0.1:5005".into())
            }
        );
        let err = config(&[
            ("SAKURACLOUD_FAKE_MODE", "1"),
            ("SAKURACLOUD_RATE_LIMIT", "fast"),
        ])
        .unwrap_err();
        assert!(err.to_string().contains("SAKURACLOUD_RATE_LIMIT"));
    }

    #[test]
    fn errors_are_typed_and_read_as_sentences_naming_the_variable() {
        let err = config(&[
            ("SAKURACLOUD_FAKE_MODE", "1"),
            ("SAKURACLOUD_RATE_LIMIT", "fast"),
        ])
        .unwrap_err();
        assert!(matches!(
            &err,
            ConfigError::Invalid { name: "SAKURACLOUD_RATE_LIMIT", value } if value == "fast"
        ));
        assert_eq!(
            err.to_string(),
            r#"configuration: SAKURACLOUD_RATE_LIMIT="fast" is not a valid value"#
        );
        let err = config(&[
            ("SAKURACLOUD_FAKE_MODE", "1"),
            ("SAKURACLOUD_ZONE", "xx1a"),
            ("OSB_ZONES", "is1a,tk1a"),
        ])
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"configuration: SAKURACLOUD_ZONE="xx1a" is not one of the zones in OSB_ZONES (is1a, tk1a)"#
        );
        assert!(matches!(config(&[]), Err(ConfigError::NoBrokerCredentials)));
    }

    #[test]
    fn warm_up_is_on_unless_switched_off_and_nonsense_is_named() {
        let fake = ("SAKURACLOUD_FAKE_MODE", "1");
        assert!(config(&[fake]).unwrap().warm_up);
        for (value, want) in [("0", false), ("off", false), ("yes", true), (" 1 ", true)] {
            assert_eq!(
                config(&[fake, ("OSB_WARM_UP", value)]).unwrap().warm_up,
                want,
                "{value:?}"
            );
        }
        let err = config(&[fake, ("OSB_WARM_UP", "later")]).unwrap_err();
        assert!(err.to_string().contains("OSB_WARM_UP"), "{err}");
    }

    #[test]
    fn server_limits_have_defaults_and_refuse_nonsense() {
        let c = config(&[("SAKURACLOUD_FAKE_MODE", "1")]).unwrap();
        assert_eq!(c.server, Limits::default());
        let c = config(&[
            ("SAKURACLOUD_FAKE_MODE", "1"),
            ("OSB_HEADER_TIMEOUT_SECS", "2.5"),
            ("OSB_BODY_TIMEOUT_SECS", "7"),
            ("OSB_IDLE_TIMEOUT_SECS", "30"),
            ("OSB_MAX_CONNECTIONS", "12"),
        ])
        .unwrap();
        assert_eq!(
            c.server,
            Limits {
                header_timeout: std::time::Duration::from_millis(2500),
                body_timeout: std::time::Duration::from_secs(7),
                idle_timeout: std::time::Duration::from_secs(30),
                max_connections: 12,
            }
        );
        for (key, value) in [
            ("OSB_HEADER_TIMEOUT_SECS", "0"),
            ("OSB_BODY_TIMEOUT_SECS", "-1"),
            ("OSB_IDLE_TIMEOUT_SECS", "NaN"),
            ("OSB_IDLE_TIMEOUT_SECS", "inf"),
            ("OSB_MAX_CONNECTIONS", "0"),
            ("OSB_MAX_CONNECTIONS", "many"),
        ] {
            let err = config(&[("SAKURACLOUD_FAKE_MODE", "1"), (key, value)]).unwrap_err();
            assert!(err.to_string().contains(key), "{key}={value}: {err}");
        }
    }

    #[test]
    fn database_tls_defaults_to_disable_and_names_itself_when_wrong() {
        use crate::binder::TlsMode;
        let c = config(&[("SAKURACLOUD_FAKE_MODE", "1")]).unwrap();
        assert_eq!(c.settings.database_tls, TlsMode::Disable);
        let c = config(&[
            ("SAKURACLOUD_FAKE_MODE", "1"),
            ("OSB_DATABASE_TLS", "verify-full"),
        ])
        .unwrap();
        assert_eq!(c.settings.database_tls, TlsMode::VerifyFull);
        let err =
            config(&[("SAKURACLOUD_FAKE_MODE", "1"), ("OSB_DATABASE_TLS", "on")]).unwrap_err();
        assert!(err.to_string().contains("OSB_DATABASE_TLS"), "{err}");
    }

    #[test]
    fn a_secret_supplies_credentials_and_overrides_the_environment() {
        let secrets = SecretValues::parse(
            r#"{"OSB_PASSWORD": "from-secret", "SAKURACLOUD_ACCESS_TOKEN": "tok", "SAKURACLOUD_ACCESS_TOKEN_SECRET": "sec"}"#,
        )
        .unwrap();
        let env: HashMap<&str, &str> = [
            ("OSB_USERNAME", "env-user"),
            ("OSB_PASSWORD", "env-pass"),
            ("OSB_BINDING_MODE", "shared"),
        ]
        .into_iter()
        .collect();
        let lookup = |k: &str| env.get(k).map(|v| v.to_string());
        let c = Config::from_lookup_with_secrets(lookup, Some(&secrets)).unwrap();
        assert_eq!(c.broker_username, "env-user");
        assert_eq!(
            c.broker_password.as_ref().map(Secret::expose),
            Some("from-secret")
        );
        assert_eq!(c.access_token.expose(), "tok");
        // Without the secret the same environment lacks the SAKURA credentials.
        assert!(Config::from_lookup_with_secrets(lookup, None).is_err());
    }

    #[test]
    fn debug_output_hides_secrets() {
        let c = config(&[
            ("OSB_USERNAME", "u"),
            ("OSB_PASSWORD", "broker-pass-123"),
            ("SAKURACLOUD_ACCESS_TOKEN", "tok-abc"),
            ("SAKURACLOUD_ACCESS_TOKEN_SECRET", "sec-def"),
            ("OSB_ENCRYPTION_KEYS", "a2V5LWtleS1rZXk="),
        ])
        .unwrap();
        let printed = format!("{c:?}");
        for secret in ["broker-pass-123", "tok-abc", "sec-def", "a2V5LWtleS1rZXk="] {
            assert!(!printed.contains(secret), "{secret} leaked into {printed}");
        }
    }
}
