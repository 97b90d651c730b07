//! A SAKURA Cloud IaaS API simulator for database appliances: an axum app on a loopback port
//! that the real [`crate::sacloud::Client`] talks to, in tests and in fake mode.
//!
//! It models the awkward parts of the real API: basic auth, ids as strings unless
//! `X-Sakura-Bigint-As-Int: 1`, `migrating -> available` with no `Instance` at first, automatic
//! boot (`down -> up`), shutdown through `cleaning`, 409 `still_creating` / `conflict`, delete
//! only when down, 404 afterwards, `SettingsHash` checks, settings replaced (not merged) by an
//! update, the find query's JSON after `?`, and the error JSON. By default it is also as awkward
//! as a real appliance in time: 404 for calls by id just after the create, power calls and
//! updates answered but ignored just after the boot, and the engine `running` a while after the
//! appliance reads `up`. Phases and windows are computed from timestamps on each call
//! ([`Timings`], changeable at run time), so nothing runs in the background. [`Faults`] inject errors, dropped connections and latency; counters
//! and recorded requests show what clients really did. With [`backing::Backing`], appliances get
//! real admin logins on a MariaDB / PostgreSQL server.

mod app;
pub mod backing;
mod config;
mod control;
mod error;
mod faults;
mod filter;
mod listener;
mod power;
mod recorded;
mod render;
mod routes;
mod shared;
mod state;
mod validate;

use std::collections::BTreeMap;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use config::{SimulatorConfig, Timings};
pub use faults::{Faults, RouteFaults};
pub use recorded::RecordedRequest;
pub use state::{
    ApplianceSummary, CONFIGS_APPLIED, CREATED, DELETED, HIDDEN_AFTER_CREATE, POWER_IGNORED,
    UPDATES_IGNORED,
};

use backing::Backing;
use listener::{ConnHandle, CuttableListener};
use shared::Shared;

/// A running simulator. Dropping it, or calling [`Simulator::shutdown`], stops it.
pub struct Simulator {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl Simulator {
    /// Connect the backing servers (if configured), bind `listen` (usually `127.0.0.1:0`) and
    /// serve in a background task.
    pub async fn start(cfg: SimulatorConfig, listen: SocketAddr) -> io::Result<Simulator> {
        let backing = Backing::connect(cfg.mariadb_url.as_deref(), cfg.postgres_url.as_deref())
            .await
            .map_err(|e| io::Error::other(format!("simulator backing: {e}")))?;
        let shared = Arc::new(Shared::new(cfg, backing));
        let listener = CuttableListener::bind(listen).await?;
        let addr = axum::serve::Listener::local_addr(&listener)?.remote;
        let app = app::router(shared.clone()).into_make_service_with_connect_info::<ConnHandle>();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let serve = axum::serve(listener, app).with_graceful_shutdown(async {
                let _ = stopped.await;
            });
            if let Err(e) = serve.await {
                tracing::error!(error = %e, "simulator stopped");
            }
        });
        tracing::debug!(%addr, "simulator listening");
        Ok(Simulator {
            addr,
            shared,
            stop: Some(stop),
            task: Some(task),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The root to put in [`crate::sacloud::ClientConfig::root_url`]:
    /// `http://127.0.0.1:PORT/cloud/zone`.
    pub fn root_url(&self) -> String {
        format!("http://{}/cloud/zone", self.addr)
    }

    /// Calls per route (`"POST /appliance"`, `"GET /appliance/{id}"`, ...), faulted and refused
    /// calls included.
    pub fn counters(&self) -> BTreeMap<String, u64> {
        self.shared.counters()
    }

    /// SAKURA API calls by the Unix second they arrived in (the last hour).
    pub fn per_second(&self) -> BTreeMap<u64, u64> {
        self.shared.per_second()
    }

    /// The calls to one route so far.
    pub fn count(&self, route: &str) -> u64 {
        self.counters().get(route).copied().unwrap_or(0)
    }

    /// Replace the active faults.
    pub fn set_faults(&self, faults: Faults) {
        self.shared.set_faults(faults);
    }

    /// The active faults, with what is left of their bursts.
    pub fn faults(&self) -> Faults {
        self.shared.faults()
    }

    /// Replace the timings in force (see `PUT /_simulator/timings`); a zero window is off.
    pub fn set_timings(&self, timings: Timings) {
        self.shared.set_timings(timings);
    }

    /// The timings in force.
    pub fn timings(&self) -> Timings {
        self.shared.timings()
    }

    /// Every appliance in every zone, as of now.
    pub fn appliances(&self) -> Vec<ApplianceSummary> {
        self.shared.summaries()
    }

    /// Make an appliance `failed`; false when there is no such appliance.
    pub fn fail_appliance(&self, id: u64) -> bool {
        self.shared.fail(id)
    }

    /// The most recent requests to the SAKURA API (up to 500), oldest first.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.lock().requests.iter().cloned().collect()
    }

    /// The last `POST /appliance` as received.
    pub fn last_create(&self) -> Option<RecordedRequest> {
        self.shared.lock().last_create.clone()
    }

    /// Forget everything (see `POST /_simulator/reset`).
    pub async fn reset(&self) {
        self.shared.reset().await;
    }

    /// Stop serving and wait (up to 5 s) for open connections to finish.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(mut task) = self.task.take()
            && tokio::time::timeout(Duration::from_secs(5), &mut task)
                .await
                .is_err()
        {
            task.abort();
        }
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Run a simulator on `listen` until SIGINT or SIGTERM (`osb-sacloud simulator --listen`).
pub async fn serve_standalone(cfg: SimulatorConfig, listen: SocketAddr) -> io::Result<()> {
    let sim = Simulator::start(cfg, listen).await?;
    tracing::info!(root_url = %sim.root_url(), "SAKURA Cloud simulator listening");
    wait_for_signal().await?;
    tracing::info!("SAKURA Cloud simulator stopping");
    sim.shutdown().await;
    Ok(())
}

async fn wait_for_signal() -> io::Result<()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate())?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r,
            _ = term.recv() => Ok(()),
        }
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c().await
    }
}
