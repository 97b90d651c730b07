//! What one poll saw of an appliance, typed: the state machine decides on these, never on
//! SAKURA's strings. Building them is the only place that reads `Availability`,
//! `Instance.Status` and the engine status words.

use crate::sacloud::{Database, DatabaseStatus};

/// `Availability` of an appliance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Availability {
    /// Being created (`migrating`, also `uploading`, `transfering`, which other resources use).
    Migrating,
    Available,
    Failed,
    /// A word the broker does not know; treated as "not yet".
    Other(String),
}

impl Availability {
    pub fn from_wire(word: &str) -> Availability {
        match word {
            "available" => Availability::Available,
            "failed" => Availability::Failed,
            "migrating" | "uploading" | "transfering" => Availability::Migrating,
            other => Availability::Other(other.to_owned()),
        }
    }
}

/// `Instance.Status` of an appliance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Power {
    Up,
    Down,
    /// Shutting down.
    Cleaning,
    /// No `Instance` yet (while migrating) or a word the broker does not know.
    Unknown(Option<String>),
}

impl Power {
    pub fn from_wire(word: Option<&str>) -> Power {
        match word {
            Some("up") => Power::Up,
            Some("down") => Power::Down,
            Some("cleaning") => Power::Cleaning,
            other => Power::Unknown(other.map(str::to_owned)),
        }
    }

    /// For descriptions: the word SAKURA used.
    pub fn word(&self) -> &str {
        match self {
            Power::Up => "up",
            Power::Down => "down",
            Power::Cleaning => "cleaning",
            Power::Unknown(Some(w)) => w,
            Power::Unknown(None) => "unknown",
        }
    }
}

/// The database engine inside a running appliance, from `GET /appliance/{id}/status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Engine {
    /// `MariaDB.status` / `postgres.status` is `running`: logins work.
    Running,
    /// Any other engine status (`stopped`, missing): the appliance agent answers, the engine not yet.
    NotRunning(String),
}

impl Engine {
    pub fn from_status(s: &DatabaseStatus) -> Engine {
        if s.db_running {
            Engine::Running
        } else {
            let word = s
                .engine_status
                .clone()
                .or_else(|| s.status.clone())
                .unwrap_or_else(|| "unknown".into());
            Engine::NotRunning(word)
        }
    }
}

/// An appliance as one read showed it.
#[derive(Debug, Clone, PartialEq)]
pub struct Appliance {
    pub id: u64,
    pub availability: Availability,
    pub power: Power,
    /// The whole read, for steps that compare settings.
    pub db: Database,
}

impl Appliance {
    pub fn from_read(db: Database) -> Appliance {
        Appliance {
            id: db.id,
            availability: Availability::from_wire(&db.availability),
            power: Power::from_wire(db.instance_status.as_deref()),
            db,
        }
    }
}

/// What a read by id (with its confirmations) said about the appliance.
#[derive(Debug, Clone, PartialEq)]
pub enum Seen {
    /// The read answered.
    Appliance(Box<Appliance>),
    /// 404 while the appliance may just not be visible yet (inside the grace period after the
    /// create), or while a find by name still lists it: not a reason to conclude anything.
    NotVisible,
    /// 404, and a find by the exact name lists no such appliance either, after the grace period
    /// (or after the broker's own delete was accepted): it is gone.
    Gone,
    /// SAKURA Cloud did not answer usefully (5xx, timeout, unparsable): try again later.
    Unreachable(String),
}

/// The observation one poll makes: the read, and where the step needs it, the engine status.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    pub seen: Seen,
    /// `None` when not asked (the appliance is not up, or the step does not need it);
    /// `Some(Err)` when the status call failed.
    pub engine: Option<Result<Engine, String>>,
}

impl Observation {
    pub fn only(seen: Seen) -> Observation {
        Observation { seen, engine: None }
    }
}
