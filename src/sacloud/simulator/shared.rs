//! What every handler of the simulator shares: its configuration, the optional backing servers
//! and the state behind one lock. A module of its own, so that the handlers (`routes`, `power`,
//! `control`) and the app that routes to them depend on it rather than on each other.

use std::sync::{Mutex, MutexGuard};

use super::backing::Backing;
use super::config::SimulatorConfig;
use super::state::State;
use crate::sacloud::Engine;

/// What every handler shares.
pub(crate) struct Shared {
    pub cfg: SimulatorConfig,
    pub backing: Option<Backing>,
    state: Mutex<State>,
}

impl Shared {
    pub fn new(cfg: SimulatorConfig, backing: Option<Backing>) -> Shared {
        Shared {
            state: Mutex::new(State::new(&cfg)),
            cfg,
            backing,
        }
    }

    /// The backing server for appliances of this engine, if there is one.
    pub fn backing_for(&self, engine: Engine) -> Option<&Backing> {
        self.backing.as_ref().filter(|b| b.backs(engine))
    }

    /// The state. A panic while holding the lock cannot leave it half-updated in a way that
    /// matters to a simulator, so a poisoned lock is used as is.
    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}
