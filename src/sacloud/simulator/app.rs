//! The simulator's axum app: the router, and the layer every SAKURA route goes through (count,
//! record, inject faults, check basic auth).

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, MatchedPath, Request, State as AxState};
use axum::http::HeaderMap;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use subtle::ConstantTimeEq;

use super::config::SimulatorConfig;
use super::error::ApiError;
use super::faults::Injected;
use super::listener::ConnHandle;
use super::recorded::RecordedRequest;
use super::shared::Shared;
use super::{control, power, routes};

/// Where the API lives under the root; `{zone}` is a path parameter.
pub(crate) const PREFIX: &str = "/cloud/zone/{zone}/api/cloud/1.1";
/// Larger bodies are refused; real ones are a few kilobytes.
const MAX_BODY: usize = 1 << 20;

/// The whole app: the SAKURA API under [`PREFIX`] and the control API under `/_simulator/`.
pub(crate) fn router(shared: Arc<Shared>) -> Router {
    let p = |rest: &str| format!("{PREFIX}{rest}");
    let api = Router::new()
        .route(&p("/appliance"), get(routes::find).post(routes::create))
        .route(
            &p("/appliance/{id}"),
            get(routes::read).put(routes::update).delete(power::delete),
        )
        .route(&p("/appliance/{id}/status"), get(power::status))
        .route(&p("/appliance/{id}/config"), put(power::apply_config))
        .route(
            &p("/appliance/{id}/power"),
            put(power::boot).delete(power::shutdown),
        )
        .route_layer(middleware::from_fn_with_state(shared.clone(), sakura_layer));
    api.merge(control::router())
        .fallback(|| async { ApiError::not_found() })
        .with_state(shared)
}

/// Count the call, record it, apply faults, then check basic auth, in that order: faults come
/// from in front of the API, and a refused call still counts.
async fn sakura_layer(
    AxState(sim): AxState<Arc<Shared>>,
    matched: MatchedPath,
    req: Request,
    next: Next,
) -> Response {
    let template = matched.as_str();
    let route = format!(
        "{} {}",
        req.method(),
        template.strip_prefix(PREFIX).unwrap_or(template)
    );
    let (parts, body) = req.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_BODY).await else {
        return ApiError::bad_request("The request body is too large or unreadable")
            .into_response();
    };
    let auth_ok = basic_auth_ok(&parts.headers, &sim.cfg);
    let recorded = RecordedRequest {
        method: parts.method.to_string(),
        route: route.clone(),
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().map(str::to_owned),
        headers: parts
            .headers
            .iter()
            .filter(|(name, _)| *name != "authorization")
            .map(|(n, v)| {
                (
                    n.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        basic_auth_ok: auth_ok,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    };
    let (latency, injected) = {
        let mut st = sim.lock();
        *st.counters.entry(route.clone()).or_default() += 1;
        st.count_second();
        st.record(recorded);
        let st = &mut *st;
        st.faults.decide(&route, &mut st.fault_rng)
    };
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    match injected {
        Some(Injected::Drop) => {
            tracing::debug!(route, "simulator drops the connection");
            if let Some(ConnectInfo(conn)) = parts.extensions.get::<ConnectInfo<ConnHandle>>() {
                conn.cut();
            }
            // Never reaches the client once the connection is cut.
            return ApiError::injected(503).into_response();
        }
        Some(Injected::Status(status)) => {
            tracing::debug!(route, status, "simulator injects an error");
            return ApiError::injected(status).into_response();
        }
        None => {}
    }
    if !auth_ok {
        return ApiError::unauthorized().into_response();
    }
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

/// HTTP basic auth with the configured token (user) and secret (password).
fn basic_auth_ok(headers: &HeaderMap, cfg: &SimulatorConfig) -> bool {
    let Some(encoded) = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
    else {
        return false;
    };
    let Ok(decoded) = BASE64.decode(encoded.trim()) else {
        return false;
    };
    let Some(colon) = decoded.iter().position(|b| *b == b':') else {
        return false;
    };
    let (user, pass) = (&decoded[..colon], &decoded[colon + 1..]);
    let user_ok = user.ct_eq(cfg.access_token.as_bytes());
    let pass_ok = pass.ct_eq(cfg.access_token_secret.as_bytes());
    bool::from(user_ok & pass_ok)
}
