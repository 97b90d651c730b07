//! Handlers for finding, creating, reading and updating appliances (`/appliance`,
//! `/appliance/{id}`). Power, status, config and delete are in [`super::power`].

use std::sync::Arc;
use std::time::Instant;

use axum::Json;
use axum::extract::{Path, State as AxState};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::{Value, json};

use super::error::ApiError;
use super::filter::FindCondition;
use super::render::{self, ZONES};
use super::shared::Shared;
use super::state::{Appliance, CREATED, Phase, UPDATES_IGNORED};
use super::validate;

/// `GET /appliance?{json}`. Lists appliances that calls by id still answer 404 for (just
/// created): that is how a client finds the appliance an ambiguous create made, and whether the
/// real API's list lags the same way is not known.
pub(crate) async fn find(
    AxState(sim): AxState<Arc<Shared>>,
    Path(zone): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    check_zone(&zone)?;
    let cond = FindCondition::parse(uri.query())?;
    let now = Instant::now();
    let (total, page) = {
        let st = sim.lock();
        let t = &st.timings;
        let matched: Vec<&Appliance> = st
            .zones
            .get(&zone)
            .into_iter()
            .flat_map(|z| z.values())
            .filter(|a| cond.matches(a))
            .collect();
        let page: Vec<Value> = matched
            .iter()
            .skip(cond.from)
            .take(cond.count.unwrap_or(usize::MAX))
            .map(|a| render::appliance(a, a.phase(now, t)))
            .collect();
        (matched.len(), page)
    };
    let body = json!({"From": cond.from, "Count": page.len(), "Total": total, "Appliances": page, "is_ok": true});
    Ok(respond(StatusCode::OK, body, &headers))
}

/// `POST /appliance`. Answers 202 with the appliance `migrating`. With a backing server, the
/// admin user is made before answering; if that fails the appliance ends `failed`.
pub(crate) async fn create(
    AxState(sim): AxState<Arc<Shared>>,
    Path(zone): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    check_zone(&zone)?;
    let spec = validate::create(&json_body(&body)?)?;
    let (engine, user, password) = (
        spec.engine,
        spec.settings.default_user.clone(),
        spec.settings.password.clone(),
    );
    let (id, ambiguous) = {
        let mut st = sim.lock();
        let id = st.fresh_id();
        let mut a = Appliance::new(id, &zone, spec, Instant::now(), &st.timings);
        a.ends_failed = st.faults.take_failed_create();
        st.zones.entry(zone.clone()).or_default().insert(id, a);
        st.count(CREATED);
        (id, st.faults.take_ambiguous_create())
    };
    if let Some(backing) = sim.backing_for(engine)
        && let Err(e) = backing.create_admin(engine, &user, &password).await
    {
        tracing::warn!(id, error = %e, "backing server refused the admin user; the appliance fails");
        if let Some(a) = sim.lock().find_any(id) {
            a.failed = true;
        }
    }
    if ambiguous {
        tracing::debug!(id, "simulator answers 500 to a create that succeeded");
        return Err(ApiError::internal("An unexpected error occurred."));
    }
    let appliance = read_one(&sim, &zone, id)?;
    let body = json!({"is_ok": true, "Success": "Accepted", "Appliance": appliance});
    Ok(respond(StatusCode::ACCEPTED, body, &headers))
}

/// `GET /appliance/{id}`.
pub(crate) async fn read(
    AxState(sim): AxState<Arc<Shared>>,
    Path((zone, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    check_zone(&zone)?;
    let id = parse_id(&id)?;
    let appliance = {
        let mut st = sim.lock();
        let now = Instant::now();
        let t = st.timings;
        let a = st.visible(&zone, id, now)?;
        render::appliance(a, a.phase(now, &t))
    };
    let body = json!({"is_ok": true, "Success": true, "Appliance": appliance});
    Ok(respond(StatusCode::OK, body, &headers))
}

/// `PUT /appliance/{id}`: name, description, tags and `Settings`, guarded by `SettingsHash`
/// when one is sent (409 when stale). `Settings` are replaced, not merged: what the body leaves
/// out is cleared. Just after the appliance came up the update is answered and ignored. A new
/// password is set on the backing server before it is saved.
pub(crate) async fn update(
    AxState(sim): AxState<Arc<Shared>>,
    Path((zone, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    check_zone(&zone)?;
    let id = parse_id(&id)?;
    let body = json_body(&body)?;
    let upd = validate::update(&body)?;
    let now = Instant::now();
    // Check everything first, so that a refused update changes nothing anywhere.
    let (engine, settings, new_password) = {
        let mut st = sim.lock();
        let t = st.timings;
        let a = st.visible(&zone, id, now)?;
        if a.phase(now, &t) == Phase::Migrating {
            return Err(ApiError::still_creating());
        }
        check_hash(a, upd.settings_hash.as_deref())?;
        let settings = upd
            .settings
            .map(|sent| validate::update_settings(sent, a.spec.engine, &a.spec.settings))
            .transpose()?;
        if a.just_up(now, &t, t.ignore_updates_after_boot) {
            tracing::debug!(id, "simulator ignores an update made just after the boot");
            let appliance = render::appliance(a, a.phase(now, &t));
            st.count(UPDATES_IGNORED);
            let body = json!({"is_ok": true, "Success": true, "Appliance": appliance});
            return Ok(respond(StatusCode::OK, body, &headers));
        }
        let new_password = settings
            .as_ref()
            .filter(|s| s.password != a.spec.settings.password)
            .map(|s| (s.default_user.clone(), s.password.clone()));
        (a.spec.engine, settings, new_password)
    };
    if let Some(backing) = sim.backing_for(engine)
        && let Some((user, password)) = &new_password
        && let Err(e) = backing.set_admin_password(engine, user, password).await
    {
        tracing::warn!(id, error = %e, "backing server refused the new password");
        return Err(ApiError::internal(
            "The database could not apply the new password.",
        ));
    }
    let appliance = {
        let mut st = sim.lock();
        let t = st.timings;
        let a = st.get_mut(&zone, id)?;
        // Someone may have changed the settings while the password was being set.
        check_hash(a, upd.settings_hash.as_deref())?;
        if let Some(name) = upd.name {
            a.spec.name = name;
        }
        if let Some(description) = upd.description {
            a.spec.description = description;
        }
        if let Some(tags) = upd.tags {
            a.spec.tags = tags;
        }
        if let Some(settings) = settings {
            a.set_settings(settings);
        }
        render::appliance(a, a.phase(Instant::now(), &t))
    };
    let body = json!({"is_ok": true, "Success": true, "Appliance": appliance});
    Ok(respond(StatusCode::OK, body, &headers))
}

fn check_hash(a: &Appliance, sent: Option<&str>) -> Result<(), ApiError> {
    match sent {
        Some(h) if h != a.settings_hash => Err(ApiError::conflict(
            "SettingsHash does not match: the settings were changed since they were read",
        )),
        _ => Ok(()),
    }
}

/// The appliance's rendering (even just after its create), or 404.
fn read_one(sim: &Shared, zone: &str, id: u64) -> Result<Value, ApiError> {
    let st = sim.lock();
    let a = st.get(zone, id)?;
    Ok(render::appliance(a, a.phase(Instant::now(), &st.timings)))
}

/// A JSON answer, with ids as strings unless the caller sent `X-Sakura-Bigint-As-Int: 1`.
pub(crate) fn respond(status: StatusCode, mut body: Value, headers: &HeaderMap) -> Response {
    if !wants_numbers(headers) {
        render::ids_as_strings(&mut body);
    }
    (status, Json(body)).into_response()
}

/// Unknown zones answer 404, as the real API does for a path it does not serve.
pub(crate) fn check_zone(zone: &str) -> Result<(), ApiError> {
    if ZONES.iter().any(|(z, _)| *z == zone) {
        Ok(())
    } else {
        Err(ApiError::not_found())
    }
}

pub(crate) fn parse_id(id: &str) -> Result<u64, ApiError> {
    id.parse().map_err(|_| ApiError::not_found())
}

pub(crate) fn json_body(body: &[u8]) -> Result<Value, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("The request body is not valid JSON: {e}")))
}

/// Whether the caller asked for 64-bit ids as JSON numbers.
fn wants_numbers(headers: &HeaderMap) -> bool {
    headers
        .get("x-sakura-bigint-as-int")
        .is_some_and(|v| v.as_bytes() == b"1")
}
