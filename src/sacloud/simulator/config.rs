//! What a simulator is started with: credentials it accepts, how long each phase lasts, optional
//! real database servers, faults, and the seed of its randomness. Read from the environment for
//! `osb-sacloud simulator` and for fake mode.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::faults::Faults;

/// How long the timed phases of an appliance last.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timings {
    /// From create until `Availability: available` (or `failed`).
    pub migrating: Duration,
    /// From a boot (automatic after create, or `PUT /power`) until `Instance.Status: up`.
    pub boot: Duration,
    /// From a shutdown until `down`; `Instance.Status` is `cleaning` meanwhile.
    pub cleaning: Duration,
}

impl Default for Timings {
    fn default() -> Self {
        Timings {
            migrating: Duration::from_millis(1500),
            boot: Duration::from_millis(1500),
            cleaning: Duration::from_millis(800),
        }
    }
}

/// A simulator's configuration. `Debug` hides the token and secret.
#[derive(Clone)]
pub struct SimulatorConfig {
    /// The basic-auth user the API accepts.
    pub access_token: String,
    /// The basic-auth password the API accepts.
    pub access_token_secret: String,
    pub timings: Timings,
    /// A MariaDB server that backs MariaDB appliances (admin logins really work).
    pub mariadb_url: Option<String>,
    /// A PostgreSQL server that backs postgres appliances.
    pub postgres_url: Option<String>,
    /// Seeds appliance ids, serials and fault draws, so a run can be repeated.
    pub seed: u64,
    /// Faults active from the start (and again after a reset).
    pub faults: Faults,
}

impl fmt::Debug for SimulatorConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimulatorConfig")
            .field("access_token", &"***")
            .field("access_token_secret", &"***")
            .field("timings", &self.timings)
            .field("mariadb_url", &self.mariadb_url.as_ref().map(|_| "***"))
            .field("postgres_url", &self.postgres_url.as_ref().map(|_| "***"))
            .field("seed", &self.seed)
            .field("faults", &self.faults)
            .finish()
    }
}

impl Default for SimulatorConfig {
    fn default() -> Self {
        SimulatorConfig {
            access_token: "fake-token".into(),
            access_token_secret: "fake-secret".into(),
            timings: Timings::default(),
            mariadb_url: None,
            postgres_url: None,
            seed: 1,
            faults: Faults::default(),
        }
    }
}

impl SimulatorConfig {
    /// Read `SAKURACLOUD_ACCESS_TOKEN(_SECRET)`, `SIMULATOR_MIGRATING_MS`, `SIMULATOR_BOOT_MS`,
    /// `SIMULATOR_CLEANING_MS`, `SIMULATOR_MARIADB_URL`, `SIMULATOR_POSTGRES_URL`,
    /// `SIMULATOR_FAULTS` (JSON) and `SIMULATOR_SEED`. A value that does not parse is reported
    /// with a warning and its default is used; see [`SimulatorConfig::try_from_env`] to refuse.
    pub fn from_env() -> Self {
        Self::from_lookup(
            |k| std::env::var(k).ok(),
            |problem| tracing::warn!("{problem}"),
        )
    }

    /// Like [`SimulatorConfig::from_env`], but a value that does not parse is an error.
    pub fn try_from_env() -> Result<Self, String> {
        let mut problems = Vec::new();
        let cfg = Self::from_lookup(|k| std::env::var(k).ok(), |p| problems.push(p));
        if problems.is_empty() {
            Ok(cfg)
        } else {
            Err(problems.join("; "))
        }
    }

    /// The parsing behind both constructors, over any variable lookup (tests pass a map).
    pub fn from_lookup(
        get: impl Fn(&str) -> Option<String>,
        mut problem: impl FnMut(String),
    ) -> Self {
        let defaults = Timings::default();
        let mut ms = |name: &str, default: Duration| match get(name) {
            None => default,
            Some(v) => v
                .trim()
                .parse()
                .map(Duration::from_millis)
                .unwrap_or_else(|_| {
                    problem(format!("{name}={v:?} is not a number of milliseconds"));
                    default
                }),
        };
        let timings = Timings {
            migrating: ms("SIMULATOR_MIGRATING_MS", defaults.migrating),
            boot: ms("SIMULATOR_BOOT_MS", defaults.boot),
            cleaning: ms("SIMULATOR_CLEANING_MS", defaults.cleaning),
        };
        let faults = match get("SIMULATOR_FAULTS").filter(|v| !v.trim().is_empty()) {
            None => Faults::default(),
            Some(v) => serde_json::from_str(&v).unwrap_or_else(|e| {
                problem(format!("SIMULATOR_FAULTS is not valid faults JSON: {e}"));
                Faults::default()
            }),
        };
        // Without a fixed seed, ids differ from one run to the next, as real ones would.
        let seed = match get("SIMULATOR_SEED") {
            None => time_seed(),
            Some(v) => v.trim().parse().unwrap_or_else(|_| {
                problem(format!("SIMULATOR_SEED={v:?} is not a number"));
                time_seed()
            }),
        };
        let nonempty = |k: &str| get(k).filter(|v| !v.is_empty());
        SimulatorConfig {
            access_token: nonempty("SAKURACLOUD_ACCESS_TOKEN")
                .unwrap_or_else(|| "fake-token".into()),
            access_token_secret: nonempty("SAKURACLOUD_ACCESS_TOKEN_SECRET")
                .unwrap_or_else(|| "fake-secret".into()),
            timings,
            mariadb_url: nonempty("SIMULATOR_MARIADB_URL"),
            postgres_url: nonempty("SIMULATOR_POSTGRES_URL"),
            seed,
            faults,
        }
    }
}

fn time_seed() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn from(vars: &[(&str, &str)]) -> (SimulatorConfig, Vec<String>) {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let mut problems = Vec::new();
        let cfg = SimulatorConfig::from_lookup(|k| map.get(k).cloned(), |p| problems.push(p));
        (cfg, problems)
    }

    #[test]
    fn defaults_when_nothing_is_set() {
        let (cfg, problems) = from(&[]);
        assert!(problems.is_empty());
        assert_eq!(cfg.timings, Timings::default());
        assert_eq!(
            (cfg.access_token.as_str(), cfg.access_token_secret.as_str()),
            ("fake-token", "fake-secret")
        );
        assert_eq!(cfg.faults, Faults::default());
    }

    #[test]
    fn reads_every_variable() {
        let (cfg, problems) = from(&[
            ("SIMULATOR_MIGRATING_MS", "10"),
            ("SIMULATOR_BOOT_MS", "20"),
            ("SIMULATOR_CLEANING_MS", "30"),
            ("SIMULATOR_SEED", "42"),
            (
                "SIMULATOR_FAULTS",
                r#"{"ambiguous_creates":2,"routes":{"*":{"rate_503":0.5}}}"#,
            ),
            ("SAKURACLOUD_ACCESS_TOKEN", "t"),
            ("SAKURACLOUD_ACCESS_TOKEN_SECRET", "s"),
            ("SIMULATOR_MARIADB_URL", "mysql://root@127.0.0.1:3306"),
        ]);
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(cfg.timings.migrating, Duration::from_millis(10));
        assert_eq!(cfg.timings.boot, Duration::from_millis(20));
        assert_eq!(cfg.timings.cleaning, Duration::from_millis(30));
        assert_eq!(cfg.seed, 42);
        assert_eq!(cfg.faults.ambiguous_creates, 2);
        assert_eq!(cfg.faults.routes["*"].rate_503, 0.5);
        assert_eq!(
            cfg.mariadb_url.as_deref(),
            Some("mysql://root@127.0.0.1:3306")
        );
        assert!(!format!("{cfg:?}").contains("mysql://"));
    }

    #[test]
    fn reports_values_that_do_not_parse() {
        let (cfg, problems) = from(&[("SIMULATOR_BOOT_MS", "soon"), ("SIMULATOR_FAULTS", "{")]);
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert_eq!(cfg.timings.boot, Timings::default().boot);
    }
}
