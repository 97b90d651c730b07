//! The settings an instance should have (its parameters with any pending update laid over
//! them), how they differ from what an appliance holds, and the change that closes the gap.
//! SAKURA Cloud may accept a settings update and ignore it, so a provision or update ends only
//! when a read shows every wanted setting.

use ipnet::Ipv4Net;
use sha2::{Digest, Sha256};

use crate::broker::records::InstanceRecord;
use crate::catalog::UpdateParams;
use crate::sacloud::{Backup, Database, SettingsChange};
use crate::secret::Secret;

/// Backup days when a backup is asked for: every day (the broker offers daily backups).
pub use crate::sacloud::EVERY_DAY;
/// Backups kept when a backup time is given without a rotation.
pub const DEFAULT_ROTATE: u8 = 8;

/// The settings an instance should have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wanted {
    pub port: u16,
    /// The engine's port when none is set: an appliance that reports no port listens there.
    pub default_port: u16,
    /// Empty: allow every network.
    pub networks: Vec<Ipv4Net>,
    /// `None`: no backup was asked for, whatever the appliance has is fine.
    pub backup_time: Option<String>,
    pub backup_rotate: Option<u8>,
    /// SHA-256 (hex) of a new admin password an update sent.
    pub password_sha256: Option<String>,
}

/// What `record` should have once its current operation succeeds.
pub fn wanted(record: &InstanceRecord, default_port: u16) -> Wanted {
    let p = &record.params;
    let none = UpdateParams::default();
    let u = record.operation.update.as_ref().unwrap_or(&none);
    Wanted {
        port: u.port.or(p.port).unwrap_or(default_port),
        default_port,
        networks: u
            .allow_networks
            .clone()
            .unwrap_or_else(|| p.allow_networks.clone()),
        backup_time: u.backup_time.clone().or_else(|| p.backup_time.clone()),
        backup_rotate: u.backup_rotate.or(p.backup_rotate),
        password_sha256: record.operation.progress.password_sha256.clone(),
    }
}

/// The SAKURA names of the settings `db` does not hold yet; empty when it holds them all.
pub fn differences(wanted: &Wanted, db: &Database) -> Vec<&'static str> {
    let s = &db.settings;
    let mut out = Vec::new();
    if s.port.unwrap_or(wanted.default_port) != wanted.port {
        out.push("ServicePort");
    }
    if !same_networks(&wanted.networks, &s.source_networks) {
        out.push("SourceNetwork");
    }
    if !backup_holds(wanted, s.backup.as_ref()) {
        out.push("Backup");
    }
    if let Some(hash) = &wanted.password_sha256
        && *hash != sha256_hex(s.user_password.expose())
    {
        out.push("UserPassword");
    }
    out
}

/// The change that makes `db` hold `wanted`; `password` is the new admin password, if any.
pub fn change(wanted: &Wanted, db: &Database, password: Option<Secret>) -> SettingsChange {
    let s = &db.settings;
    let mut change = SettingsChange::default();
    if s.port.unwrap_or(wanted.default_port) != wanted.port {
        change.port = Some(wanted.port);
    }
    if !same_networks(&wanted.networks, &s.source_networks) {
        change.source_networks = Some(wanted.networks.iter().map(|n| n.to_string()).collect());
    }
    if !backup_holds(wanted, s.backup.as_ref()) {
        let current = s.backup.as_ref();
        change.backup = Some(Backup {
            rotate: wanted
                .backup_rotate
                .or(current.map(|b| b.rotate))
                .unwrap_or(DEFAULT_ROTATE),
            time: wanted
                .backup_time
                .clone()
                .or(current.map(|b| b.time.clone()))
                .unwrap_or_else(|| "00:00".into()),
            day_of_week: current
                .map(|b| b.day_of_week.clone())
                .filter(|d| !d.is_empty())
                .unwrap_or_else(|| EVERY_DAY.map(String::from).to_vec()),
        });
    }
    change.user_password = password;
    change
}

/// Whether a change would send nothing.
pub fn is_empty(change: &SettingsChange) -> bool {
    *change == SettingsChange::default()
}

pub fn sha256_hex(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The appliance's allow-list equals the wanted one (as sets; `0.0.0.0/0` and empty both mean
/// every network; an entry that does not parse never matches).
fn same_networks(wanted: &[Ipv4Net], held: &[String]) -> bool {
    let mut held: Vec<Ipv4Net> = match held
        .iter()
        .map(|h| h.trim())
        .filter(|h| !h.is_empty())
        .map(|h| {
            h.parse::<Ipv4Net>()
                .or_else(|_| h.parse::<std::net::Ipv4Addr>().map(Ipv4Net::from))
                .map(|n| n.trunc())
        })
        .collect::<Result<_, _>>()
    {
        Ok(list) => list,
        Err(_) => return false,
    };
    let all = |list: &[Ipv4Net]| list.is_empty() || list.iter().any(|n| n.prefix_len() == 0);
    if all(wanted) || all(&held) {
        return all(wanted) && all(&held);
    }
    let mut wanted: Vec<Ipv4Net> = wanted.iter().map(Ipv4Net::trunc).collect();
    wanted.sort();
    wanted.dedup();
    held.sort();
    held.dedup();
    wanted == held
}

fn backup_holds(wanted: &Wanted, held: Option<&Backup>) -> bool {
    if wanted.backup_time.is_none() && wanted.backup_rotate.is_none() {
        return true;
    }
    let Some(b) = held else {
        return false;
    };
    wanted.backup_time.as_ref().is_none_or(|t| *t == b.time)
        && b.rotate == wanted.backup_rotate.unwrap_or(DEFAULT_ROTATE)
}
