//! Handlers for the appliance's power, status, config and deletion. What each may do depends on
//! the phase: nothing while `migrating` (409 `still_creating`), boot only when down, shutdown
//! only when up, delete only when down (409 `conflict` otherwise). Just after the appliance
//! came up, power calls and config applies are answered 200 and ignored, as a real database
//! appliance ignores what it is told right after powering on; and just after the create, all of
//! them answer 404.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Path, State as AxState};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use bytes::Bytes;
use serde_json::json;

use super::config::Timings;
use super::error::ApiError;
use super::render;
use super::routes::{check_zone, json_body, parse_id, respond};
use super::shared::Shared;
use super::state::{
    Appliance, CONFIGS_APPLIED, DELETED, POWER_IGNORED, Phase, Power, UPDATES_IGNORED,
};

/// `GET /appliance/{id}/status`: `SettingsResponse.Status` `up` once booted, `down` otherwise;
/// the engine `running` only `engine_start` after that (and after a config restarted it).
pub(crate) async fn status(
    AxState(sim): AxState<Arc<Shared>>,
    Path((zone, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    check_zone(&zone)?;
    let id = parse_id(&id)?;
    let body = {
        let mut st = sim.lock();
        let now = Instant::now();
        let t = st.timings;
        let a = st.visible(&zone, id, now)?;
        let phase = a.phase(now, &t);
        if phase == Phase::Migrating {
            return Err(ApiError::still_creating());
        }
        render::status(a, phase, a.engine_running(now, &t))
    };
    Ok(respond(StatusCode::OK, body, &headers))
}

/// `PUT /appliance/{id}/config`: the appliance takes its saved settings, which restarts the
/// engine. Ignored just after the appliance came up.
pub(crate) async fn apply_config(
    AxState(sim): AxState<Arc<Shared>>,
    Path((zone, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    change(&sim, &zone, &id, &headers, |a, phase, now, t| {
        if phase == Phase::Failed {
            return Err(ApiError::conflict("The appliance has failed"));
        }
        if a.just_up(now, t, t.ignore_updates_after_boot) {
            return Ok(UPDATES_IGNORED);
        }
        a.applied_hash = a.settings_hash.clone();
        a.engine_restarted_at = Some(now);
        Ok(CONFIGS_APPLIED)
    })
}

/// `PUT /appliance/{id}/power`: boot a `down` appliance.
pub(crate) async fn boot(
    AxState(sim): AxState<Arc<Shared>>,
    Path((zone, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    change(&sim, &zone, &id, &headers, |a, phase, now, t| match phase {
        Phase::Down => {
            a.power = Power::Boot(now);
            Ok("")
        }
        Phase::Up if a.just_up(now, t, t.ignore_power_after_boot) => Ok(POWER_IGNORED),
        Phase::Up | Phase::Booting => Err(ApiError::conflict("The appliance is already up")),
        Phase::Cleaning => Err(ApiError::conflict("The appliance is shutting down")),
        Phase::Failed => Err(ApiError::conflict("The appliance has failed")),
        Phase::Migrating => Err(ApiError::still_creating()),
    })
}

/// `DELETE /appliance/{id}/power` (body `{"Force":true}`, optional): shut down an `up`
/// appliance; it reads `cleaning`, then `down`.
pub(crate) async fn shutdown(
    AxState(sim): AxState<Arc<Shared>>,
    Path((zone, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    check_zone(&zone)?;
    if !body.iter().all(u8::is_ascii_whitespace) {
        let body = json_body(&body)?;
        if body.get("Force").is_some_and(|f| !f.is_boolean()) {
            return Err(ApiError::bad_request("Force must be a boolean"));
        }
    }
    change(&sim, &zone, &id, &headers, |a, phase, now, t| {
        if phase != Phase::Up {
            return Err(ApiError::conflict("The appliance is not up"));
        }
        if a.just_up(now, t, t.ignore_power_after_boot) {
            return Ok(POWER_IGNORED);
        }
        a.power = Power::Shutdown(now);
        Ok("")
    })
}

/// Change one appliance under the lock and answer `{"is_ok": true}`; `f` gets its phase, the
/// time it was judged at and the timings, and returns the counter to count the call under (`""`
/// for none). The appliance must be visible (404 just after its create), and nothing changes
/// while it is still being created (409 `still_creating`, as SAKURA Cloud answers).
fn change(
    sim: &Shared,
    zone: &str,
    id: &str,
    headers: &HeaderMap,
    f: impl FnOnce(&mut Appliance, Phase, Instant, &Timings) -> Result<&'static str, ApiError>,
) -> Result<Response, ApiError> {
    check_zone(zone)?;
    let id = parse_id(id)?;
    {
        let mut st = sim.lock();
        let now = Instant::now();
        let t = st.timings;
        let a = st.visible(zone, id, now)?;
        let phase = a.phase(now, &t);
        if phase == Phase::Migrating {
            return Err(ApiError::still_creating());
        }
        let counter = f(a, phase, now, &t)?;
        if !counter.is_empty() {
            if counter != CONFIGS_APPLIED {
                tracing::debug!(
                    id,
                    counter,
                    "simulator ignores a call made just after the boot"
                );
            }
            st.count(counter);
        }
    }
    Ok(ok(headers))
}

/// `DELETE /appliance/{id}`: only when down (or failed); afterwards every call answers 404.
pub(crate) async fn delete(
    AxState(sim): AxState<Arc<Shared>>,
    Path((zone, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    check_zone(&zone)?;
    let id = parse_id(&id)?;
    let removed = {
        let mut st = sim.lock();
        let now = Instant::now();
        let t = st.timings;
        let a = st.visible(&zone, id, now)?;
        match a.phase(now, &t) {
            Phase::Migrating => return Err(ApiError::still_creating()),
            Phase::Up | Phase::Cleaning => {
                return Err(ApiError::conflict(
                    "The appliance must be down to be deleted",
                ));
            }
            Phase::Booting | Phase::Down | Phase::Failed => {}
        }
        let removed = st.zones.get_mut(&zone).and_then(|z| z.remove(&id));
        if removed.is_some() {
            st.count(DELETED);
        }
        removed
    };
    if let Some(a) = removed
        && let Some(backing) = sim.backing_for(a.spec.engine)
        && let Err(e) = backing
            .drop_admin(a.spec.engine, &a.spec.settings.default_user)
            .await
    {
        tracing::warn!(id, error = %e, "backing server could not drop the admin user");
    }
    Ok(ok(&headers))
}

fn ok(headers: &HeaderMap) -> Response {
    respond(
        StatusCode::OK,
        json!({"is_ok": true, "Success": true}),
        headers,
    )
}
