//! The simulated appliances and what the simulator remembers about its callers. An appliance
//! stores only when things happened; its phase (`migrating`, `up`, `cleaning`...) is computed
//! from those instants on every access, so nothing runs in the background.

use std::collections::{BTreeMap, VecDeque};
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::config::{SimulatorConfig, Timings};
use super::error::ApiError;
use super::faults::Faults;
use super::recorded::RecordedRequest;
use crate::sacloud::Engine;

/// How many recent requests are kept for [`super::Simulator::requests`].
const REQUEST_LOG: usize = 500;

/// Counter key of appliances really created (whatever the answer said).
pub const CREATED: &str = "appliances created";
/// Counter key of appliances really deleted.
pub const DELETED: &str = "appliances deleted";
/// Counter key of calls answered 404 because the appliance was just created.
pub const HIDDEN_AFTER_CREATE: &str = "not found after create";
/// Counter key of power calls answered 200 and ignored, just after the appliance came up.
pub const POWER_IGNORED: &str = "power calls ignored";
/// Counter key of settings updates and config applies answered 200 and ignored, just after
/// the appliance came up.
pub const UPDATES_IGNORED: &str = "updates ignored";
/// Counter key of config applies that took effect (and restarted the engine).
pub const CONFIGS_APPLIED: &str = "configs applied";

/// `Settings` of a simulated appliance: the members the simulator interprets, and the whole
/// object as last sent. An update replaces all of it, as the real API does.
#[derive(Clone, PartialEq, Eq, Serialize)]
pub(crate) struct SimSettings {
    pub default_user: String,
    pub password: String,
    pub port: u16,
    /// As sent; empty means allow all.
    pub source_networks: Vec<String>,
    pub backup: Option<SimBackup>,
    /// `Settings` as the last create or update sent it, members the simulator does not
    /// interpret included (`WebUI`, `ReplicaUser`, `Replication`, `MonitoringSuite`...): they
    /// are rendered back as sent, and an update that leaves one out makes it disappear.
    pub sent: Value,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct SimBackup {
    pub rotate: u8,
    pub time: String,
    pub day_of_week: Vec<String>,
}

/// A validated create request.
pub(crate) struct NewAppliance {
    pub name: String,
    pub description: String,
    pub tags: Vec<String>,
    pub plan_id: u64,
    pub switch_id: String,
    pub ip: Ipv4Addr,
    pub mask_len: u8,
    pub default_route: Ipv4Addr,
    pub engine: Engine,
    pub version: String,
    pub settings: SimSettings,
}

/// The last power command and when it was given.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Power {
    Boot(Instant),
    Shutdown(Instant),
}

/// Where an appliance is in its life, at some instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    Migrating,
    Failed,
    /// Available and booting: `Instance.Status` still reads `down`.
    Booting,
    Up,
    Cleaning,
    Down,
}

impl Phase {
    pub fn availability(self) -> &'static str {
        match self {
            Phase::Migrating => "migrating",
            Phase::Failed => "failed",
            _ => "available",
        }
    }

    /// `Instance.Status`; `None` while migrating, when the API sends no `Instance`.
    pub fn instance_status(self) -> Option<&'static str> {
        match self {
            Phase::Migrating => None,
            Phase::Up => Some("up"),
            Phase::Cleaning => Some("cleaning"),
            Phase::Failed | Phase::Booting | Phase::Down => Some("down"),
        }
    }
}

/// One simulated database appliance.
pub(crate) struct Appliance {
    pub id: u64,
    pub zone: String,
    pub spec: NewAppliance,
    pub created_at: Instant,
    /// When an applied config last restarted the engine.
    pub engine_restarted_at: Option<Instant>,
    pub settings_hash: String,
    /// The hash whose settings the running appliance uses (changed by `PUT /config`).
    pub applied_hash: String,
    settings_rev: u64,
    pub available_at: Instant,
    /// Set by a `failed_creates` fault: the migration ends `failed`.
    pub ends_failed: bool,
    /// Set by `POST /_simulator/appliances/{id}/fail` or a failed backing.
    pub failed: bool,
    pub power: Power,
}

impl Appliance {
    pub fn new(id: u64, zone: &str, spec: NewAppliance, now: Instant, t: &Timings) -> Appliance {
        let available_at = now + t.migrating;
        let mut a = Appliance {
            id,
            zone: zone.to_owned(),
            spec,
            created_at: now,
            engine_restarted_at: None,
            settings_hash: String::new(),
            applied_hash: String::new(),
            settings_rev: 0,
            available_at,
            ends_failed: false,
            failed: false,
            // Appliances boot by themselves once available.
            power: Power::Boot(available_at),
        };
        a.rehash();
        a.applied_hash = a.settings_hash.clone();
        a
    }

    pub fn phase(&self, now: Instant, t: &Timings) -> Phase {
        if self.failed {
            return Phase::Failed;
        }
        if now < self.available_at {
            return Phase::Migrating;
        }
        if self.ends_failed {
            return Phase::Failed;
        }
        match self.power {
            Power::Boot(at) if now < at + t.boot => Phase::Booting,
            Power::Boot(_) => Phase::Up,
            Power::Shutdown(at) if now < at + t.cleaning => Phase::Cleaning,
            Power::Shutdown(_) => Phase::Down,
        }
    }

    /// Whether calls naming the appliance by id answer 404 at `now`: it was created less than
    /// `not_found_after_create` ago.
    pub fn hidden(&self, now: Instant, t: &Timings) -> bool {
        now < self.created_at + t.not_found_after_create
    }

    /// When the appliance came up, if it is up at `now`.
    pub fn up_since(&self, now: Instant, t: &Timings) -> Option<Instant> {
        match (self.phase(now, t), self.power) {
            (Phase::Up, Power::Boot(at)) => Some(at + t.boot),
            _ => None,
        }
    }

    /// Whether the appliance is up and came up less than `window` before `now`.
    pub fn just_up(&self, now: Instant, t: &Timings, window: Duration) -> bool {
        self.up_since(now, t).is_some_and(|up| now < up + window)
    }

    /// Whether the database engine serves at `now`: `engine_start` after the appliance came
    /// up, or after the last applied config restarted it, whichever is later.
    pub fn engine_running(&self, now: Instant, t: &Timings) -> bool {
        self.up_since(now, t).is_some_and(|up| {
            let started = self.engine_restarted_at.map_or(up, |r| r.max(up));
            now >= started + t.engine_start
        })
    }

    /// Replace the settings and give them a new `SettingsHash`.
    pub fn set_settings(&mut self, settings: SimSettings) {
        self.spec.settings = settings;
        self.rehash();
    }

    /// A new hash on every change, even back to earlier values, so a stale reader always
    /// gets a conflict.
    fn rehash(&mut self) {
        self.settings_rev += 1;
        let mut h = Sha256::new();
        h.update(self.id.to_be_bytes());
        h.update(self.settings_rev.to_be_bytes());
        h.update(serde_json::to_vec(&self.spec.settings).unwrap_or_default());
        self.settings_hash = h.finalize()[..16]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
    }
}

/// A summary of one appliance for tests and `GET /_simulator/appliances`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApplianceSummary {
    pub id: u64,
    pub zone: String,
    pub name: String,
    pub tags: Vec<String>,
    pub engine: Engine,
    /// `Availability` now.
    pub availability: String,
    /// `Instance.Status` now; `None` while migrating.
    pub instance_status: Option<String>,
    pub settings_hash: String,
    /// Settings were changed and `PUT /config` has not been applied since.
    pub config_pending: bool,
    /// The engine serves (`/status` reports it `running`).
    pub engine_running: bool,
}

/// Everything the simulator holds, behind one lock (never held across an `.await`).
pub(crate) struct State {
    /// The timings in force: the configured ones until changed at run time.
    pub timings: Timings,
    /// Appliances by zone, then id.
    pub zones: BTreeMap<String, BTreeMap<u64, Appliance>>,
    pub counters: BTreeMap<String, u64>,
    /// SAKURA API calls by the Unix second they arrived in (the last hour), to check a rate.
    pub per_second: BTreeMap<u64, u64>,
    pub faults: Faults,
    pub fault_rng: StdRng,
    id_rng: StdRng,
    pub requests: VecDeque<RecordedRequest>,
    pub last_create: Option<RecordedRequest>,
}

impl State {
    pub fn new(cfg: &SimulatorConfig) -> State {
        State {
            timings: cfg.timings,
            zones: BTreeMap::new(),
            counters: BTreeMap::new(),
            per_second: BTreeMap::new(),
            faults: cfg.faults.clone(),
            fault_rng: StdRng::seed_from_u64(cfg.seed),
            id_rng: StdRng::seed_from_u64(cfg.seed.rotate_left(32) ^ 0x5a5a_5a5a),
            requests: VecDeque::new(),
            last_create: None,
        }
    }

    /// A fresh 12-digit id, unique across zones.
    pub fn fresh_id(&mut self) -> u64 {
        loop {
            let id = self
                .id_rng
                .random_range(100_000_000_000..=999_999_999_999u64);
            if self.find_any(id).is_none() {
                return id;
            }
        }
    }

    /// The appliance `id` in `zone`, or the API's 404.
    pub fn get(&self, zone: &str, id: u64) -> Result<&Appliance, ApiError> {
        self.zones
            .get(zone)
            .and_then(|z| z.get(&id))
            .ok_or_else(ApiError::not_found)
    }

    pub fn get_mut(&mut self, zone: &str, id: u64) -> Result<&mut Appliance, ApiError> {
        self.zones
            .get_mut(zone)
            .and_then(|z| z.get_mut(&id))
            .ok_or_else(ApiError::not_found)
    }

    /// The appliance `id` in `zone` as a call naming it by id sees it: the API's 404 when there
    /// is none, and also while it was just created (counted as [`HIDDEN_AFTER_CREATE`]).
    pub fn visible(
        &mut self,
        zone: &str,
        id: u64,
        now: Instant,
    ) -> Result<&mut Appliance, ApiError> {
        let t = self.timings;
        if self.get(zone, id)?.hidden(now, &t) {
            self.count(HIDDEN_AFTER_CREATE);
            return Err(ApiError::not_found());
        }
        self.get_mut(zone, id)
    }

    pub fn count(&mut self, key: &str) {
        *self.counters.entry(key.to_owned()).or_default() += 1;
    }

    /// The appliance `id` in whichever zone holds it.
    pub fn find_any(&mut self, id: u64) -> Option<&mut Appliance> {
        self.zones.values_mut().find_map(|z| z.get_mut(&id))
    }

    /// Count a call in the second it arrived.
    pub fn count_second(&mut self) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        *self.per_second.entry(now).or_default() += 1;
        while self.per_second.len() > 3600 {
            self.per_second.pop_first();
        }
    }

    pub fn record(&mut self, req: RecordedRequest) {
        if req.route == "POST /appliance" {
            self.last_create = Some(req.clone());
        }
        if self.requests.len() == REQUEST_LOG {
            self.requests.pop_front();
        }
        self.requests.push_back(req);
    }

    pub fn summaries(&self, now: Instant) -> Vec<ApplianceSummary> {
        let t = &self.timings;
        let all = self.zones.values().flat_map(|z| z.values());
        all.map(|a| {
            let phase = a.phase(now, t);
            ApplianceSummary {
                id: a.id,
                zone: a.zone.clone(),
                name: a.spec.name.clone(),
                tags: a.spec.tags.clone(),
                engine: a.spec.engine,
                availability: phase.availability().to_owned(),
                instance_status: phase.instance_status().map(str::to_owned),
                settings_hash: a.settings_hash.clone(),
                config_pending: a.settings_hash != a.applied_hash,
                engine_running: a.engine_running(now, t),
            }
        })
        .collect()
    }
}
