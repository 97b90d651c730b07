//! The control API under `/_simulator/` (no SAKURA auth, never faulted, not counted), so other
//! processes such as chaos scripts and multi-process tests can watch and steer a simulator. The
//! in-process [`super::Simulator`] methods call the same `Shared` methods.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Path, State as AxState};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use bytes::Bytes;
use serde_json::json;

use super::config::Timings;
use super::faults::Faults;
use super::shared::Shared;
use super::state::{ApplianceSummary, State};

/// `GET /_simulator/counters`, `GET /_simulator/per_second`, `GET /_simulator/appliances`, `POST
/// /_simulator/appliances/{id}/fail`, `GET|PUT /_simulator/faults`, `GET|PUT
/// /_simulator/timings`, `POST /_simulator/reset`.
pub(crate) fn router() -> Router<Arc<Shared>> {
    Router::new()
        .route("/_simulator/counters", get(counters))
        .route("/_simulator/per_second", get(per_second))
        .route("/_simulator/appliances", get(appliances))
        .route("/_simulator/appliances/{id}/fail", post(fail))
        .route("/_simulator/faults", get(faults).put(set_faults))
        .route("/_simulator/timings", get(timings).put(set_timings))
        .route("/_simulator/reset", post(reset))
}

impl Shared {
    pub fn counters(&self) -> BTreeMap<String, u64> {
        self.lock().counters.clone()
    }

    /// SAKURA API calls by the Unix second they arrived in.
    pub fn per_second(&self) -> BTreeMap<u64, u64> {
        self.lock().per_second.clone()
    }

    pub fn summaries(&self) -> Vec<ApplianceSummary> {
        self.lock().summaries(Instant::now())
    }

    pub fn faults(&self) -> Faults {
        self.lock().faults.clone()
    }

    pub fn set_faults(&self, faults: Faults) {
        self.lock().faults = faults;
    }

    pub fn timings(&self) -> Timings {
        self.lock().timings
    }

    /// Takes effect on the next call; phases are computed from the timings in force when
    /// asked, so this also moves appliances that are already booting or shutting down.
    pub fn set_timings(&self, timings: Timings) {
        self.lock().timings = timings;
    }

    /// Make an appliance `failed` now; false when there is no such appliance.
    pub fn fail(&self, id: u64) -> bool {
        match self.lock().find_any(id) {
            Some(a) => {
                a.failed = true;
                true
            }
            None => false,
        }
    }

    /// Back to the start: no appliances (their backing users dropped), no counters, no
    /// recorded requests, the configured faults and timings. Ids and fault draws start over
    /// from the seed.
    pub async fn reset(&self) {
        let old = std::mem::replace(&mut *self.lock(), State::new(&self.cfg));
        for a in old.zones.into_values().flat_map(|z| z.into_values()) {
            let engine = a.spec.engine;
            if let Some(backing) = self.backing_for(engine)
                && let Err(e) = backing
                    .drop_admin(engine, &a.spec.settings.default_user)
                    .await
            {
                tracing::warn!(id = a.id, error = %e, "reset could not drop a backing user");
            }
        }
    }
}

async fn per_second(AxState(sim): AxState<Arc<Shared>>) -> Json<BTreeMap<u64, u64>> {
    Json(sim.per_second())
}

async fn counters(AxState(sim): AxState<Arc<Shared>>) -> Json<BTreeMap<String, u64>> {
    Json(sim.counters())
}

async fn appliances(AxState(sim): AxState<Arc<Shared>>) -> Json<Vec<ApplianceSummary>> {
    Json(sim.summaries())
}

async fn fail(AxState(sim): AxState<Arc<Shared>>, Path(id): Path<String>) -> Response {
    match id.parse() {
        Ok(id) if sim.fail(id) => StatusCode::NO_CONTENT.into_response(),
        _ => control_error(StatusCode::NOT_FOUND, "no such appliance"),
    }
}

async fn faults(AxState(sim): AxState<Arc<Shared>>) -> Json<Faults> {
    Json(sim.faults())
}

async fn set_faults(AxState(sim): AxState<Arc<Shared>>, body: Bytes) -> Response {
    match serde_json::from_slice::<Faults>(&body) {
        Ok(f) => {
            sim.set_faults(f);
            StatusCode::NO_CONTENT.into_response()
        }
        Err(e) => control_error(
            StatusCode::BAD_REQUEST,
            &format!("invalid faults JSON: {e}"),
        ),
    }
}

/// `{"migrating_ms": .., "boot_ms": .., ..}`, every timing in force.
async fn timings(AxState(sim): AxState<Arc<Shared>>) -> Json<serde_json::Value> {
    Json(sim.timings().to_json())
}

/// Change the timings named in the body (`{"engine_start_ms": 0}`); the others keep theirs.
async fn set_timings(AxState(sim): AxState<Arc<Shared>>, body: Bytes) -> Response {
    let patched = serde_json::from_slice(&body)
        .map_err(|e| format!("invalid timings JSON: {e}"))
        .and_then(|patch| {
            // Read and replaced under one lock, so concurrent patches do not undo each other.
            let mut st = sim.lock();
            let t = st.timings.patched(&patch)?;
            st.timings = t;
            Ok(())
        });
    match patched {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => control_error(StatusCode::BAD_REQUEST, &e),
    }
}

async fn reset(AxState(sim): AxState<Arc<Shared>>) -> StatusCode {
    sim.reset().await;
    StatusCode::NO_CONTENT
}

fn control_error(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({"error": message}))).into_response()
}
