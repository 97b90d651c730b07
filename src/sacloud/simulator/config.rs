//! What a simulator is started with: credentials it accepts, how long each phase lasts, optional
//! real database servers, faults, and the seed of its randomness. Read from the environment for
//! `osb-sacloud simulator` and for fake mode.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value, json};

use super::faults::Faults;

/// How long the timed phases of an appliance last, and how long each of the real API's awkward
/// windows stays open. A zero duration turns a window off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timings {
    /// From create until `Availability: available` (or `failed`).
    pub migrating: Duration,
    /// From a boot (automatic after create, or `PUT /power`) until `Instance.Status: up`.
    pub boot: Duration,
    /// From a shutdown until `down`; `Instance.Status` is `cleaning` meanwhile.
    pub cleaning: Duration,
    /// For this long after the create, every call that names the appliance by id (read,
    /// status, power, config, update, delete) answers the API's 404, although the appliance
    /// exists; a find by name does list it. SAKURA's own client tolerates such 404s between a
    /// create and the end of the boot.
    pub not_found_after_create: Duration,
    /// A power call (boot or shutdown) this soon after the appliance came up answers 200 and
    /// changes nothing: the appliance accepts it and ignores it.
    pub ignore_power_after_boot: Duration,
    /// A settings update or config apply this soon after the appliance came up answers 200
    /// (the update with the appliance as it is) and changes nothing.
    pub ignore_updates_after_boot: Duration,
    /// After the appliance comes up, and after an applied config restarts the engine, `/status`
    /// reports the engine `stopped` for this long before `running` (`Status` is `up` meanwhile).
    pub engine_start: Duration,
}

impl Default for Timings {
    fn default() -> Self {
        Timings {
            migrating: Duration::from_millis(1500),
            boot: Duration::from_millis(1500),
            cleaning: Duration::from_millis(800),
            not_found_after_create: Duration::from_millis(2000),
            ignore_power_after_boot: Duration::from_millis(2000),
            ignore_updates_after_boot: Duration::from_millis(2000),
            engine_start: Duration::from_millis(1000),
        }
    }
}

impl Timings {
    /// Every duration with its name: `SIMULATOR_<NAME>_MS` in the environment, `<name>_ms` in
    /// the JSON of `/_simulator/timings`.
    fn named(&mut self) -> [(&'static str, &mut Duration); 7] {
        [
            ("migrating", &mut self.migrating),
            ("boot", &mut self.boot),
            ("cleaning", &mut self.cleaning),
            ("not_found_after_create", &mut self.not_found_after_create),
            ("ignore_power_after_boot", &mut self.ignore_power_after_boot),
            (
                "ignore_updates_after_boot",
                &mut self.ignore_updates_after_boot,
            ),
            ("engine_start", &mut self.engine_start),
        ]
    }

    /// `{"migrating_ms": 1500, "boot_ms": 1500, ...}`.
    pub fn to_json(&self) -> Value {
        let mut copy = *self;
        let map: Map<String, Value> = copy
            .named()
            .into_iter()
            .map(|(name, d)| (format!("{name}_ms"), json!(d.as_millis() as u64)))
            .collect();
        Value::Object(map)
    }

    /// These timings with the members of `patch` (`{"boot_ms": 300}`) changed; members left out
    /// keep their value. Anything but an object of known names with whole milliseconds is
    /// refused, and then nothing changes.
    pub fn patched(&self, patch: &Value) -> Result<Timings, String> {
        let Value::Object(members) = patch else {
            return Err("timings must be a JSON object".into());
        };
        let mut out = *self;
        let mut named = out.named();
        for (key, value) in members {
            let slot = named
                .iter_mut()
                .find(|(name, _)| key.strip_suffix("_ms") == Some(name))
                .ok_or_else(|| format!("unknown timing {key:?}"))?;
            let ms = value
                .as_u64()
                .ok_or_else(|| format!("{key} must be a whole number of milliseconds"))?;
            *slot.1 = Duration::from_millis(ms);
        }
        Ok(out)
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
    /// Read `SAKURACLOUD_ACCESS_TOKEN(_SECRET)`, the timings (`SIMULATOR_MIGRATING_MS`,
    /// `SIMULATOR_BOOT_MS`, `SIMULATOR_CLEANING_MS`, `SIMULATOR_NOT_FOUND_AFTER_CREATE_MS`,
    /// `SIMULATOR_IGNORE_POWER_AFTER_BOOT_MS`, `SIMULATOR_IGNORE_UPDATES_AFTER_BOOT_MS`,
    /// `SIMULATOR_ENGINE_START_MS`; `0` turns a window off), `SIMULATOR_MARIADB_URL`,
    /// `SIMULATOR_POSTGRES_URL`, `SIMULATOR_FAULTS` (JSON) and `SIMULATOR_SEED`. A value that does not parse is reported
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
        let mut timings = Timings::default();
        for (name, slot) in timings.named() {
            let var = format!("SIMULATOR_{}_MS", name.to_ascii_uppercase());
            if let Some(v) = get(&var) {
                match v.trim().parse() {
                    Ok(ms) => *slot = Duration::from_millis(ms),
                    Err(_) => problem(format!("{var}={v:?} is not a number of milliseconds")),
                }
            }
        }
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
        let (cfg, problems) = from(&[
            ("SIMULATOR_BOOT_MS", "soon"),
            ("SIMULATOR_FAULTS", "{"),
            ("SIMULATOR_ENGINE_START_MS", "-5"),
        ]);
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(problems[0].contains("SIMULATOR_BOOT_MS"), "{problems:?}");
        assert_eq!(cfg.timings, Timings::default());
    }

    #[test]
    fn the_awkward_windows_are_on_by_default() {
        let t = Timings::default();
        for d in [
            t.not_found_after_create,
            t.ignore_power_after_boot,
            t.ignore_updates_after_boot,
            t.engine_start,
        ] {
            assert!(d >= Duration::from_millis(1000), "{t:?}");
        }
    }

    #[test]
    fn reads_the_awkward_windows_and_zero_turns_them_off() {
        let (cfg, problems) = from(&[
            ("SIMULATOR_NOT_FOUND_AFTER_CREATE_MS", "100"),
            ("SIMULATOR_IGNORE_POWER_AFTER_BOOT_MS", "0"),
            ("SIMULATOR_IGNORE_UPDATES_AFTER_BOOT_MS", " 80 "),
            ("SIMULATOR_ENGINE_START_MS", "0"),
        ]);
        assert!(problems.is_empty(), "{problems:?}");
        let t = cfg.timings;
        assert_eq!(t.not_found_after_create, Duration::from_millis(100));
        assert_eq!(t.ignore_power_after_boot, Duration::ZERO);
        assert_eq!(t.ignore_updates_after_boot, Duration::from_millis(80));
        assert_eq!(t.engine_start, Duration::ZERO);
        assert_eq!(
            t.boot,
            Timings::default().boot,
            "the others keep their defaults"
        );
    }

    #[test]
    fn timings_json_round_trips_and_patches_only_what_it_names() {
        let t = Timings::default();
        let v = t.to_json();
        assert_eq!(v["boot_ms"], 1500);
        assert_eq!(v["not_found_after_create_ms"], 2000);
        assert_eq!(v.as_object().unwrap().len(), 7);
        assert_eq!(t.patched(&v), Ok(t));
        let p = t
            .patched(&serde_json::json!({"engine_start_ms": 0, "boot_ms": 60}))
            .unwrap();
        assert_eq!(p.engine_start, Duration::ZERO);
        assert_eq!(p.boot, Duration::from_millis(60));
        assert_eq!(p.migrating, t.migrating);
        for bad in [
            serde_json::json!({"boot": 60}),
            serde_json::json!({"boot_ms": -1}),
            serde_json::json!({"boot_ms": "60"}),
            serde_json::json!({"boot_ms": 1.5}),
            serde_json::json!([1]),
        ] {
            assert!(t.patched(&bad).is_err(), "{bad}");
        }
    }
}
