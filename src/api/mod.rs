//! The OSB HTTP API: routes, the middleware that enforces the cross-cutting rules, and the
//! translation between HTTP and the broker. The same [`router`] serves Lambda and the local server.

mod bindings;
mod catalog;
pub mod clip;
pub mod error;
mod extract;
mod instances;
pub mod middleware;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::response::IntoResponse;
use axum::routing::get;

use crate::broker::Broker;
use error::ApiError;
use middleware::BasicAuth;

/// The largest request body accepted (413 above it).
pub const BODY_LIMIT: usize = 1024 * 1024;

/// Build the broker's HTTP router.
pub fn router(broker: Arc<Broker>, auth: BasicAuth) -> Router {
    let auth = Arc::new(auth);
    let osb = Router::new()
        .route("/v2/catalog", get(catalog::get_catalog))
        .route(
            "/v2/service_instances/{instance_id}",
            get(instances::get_instance)
                .put(instances::put_instance)
                .patch(instances::patch_instance)
                .delete(instances::delete_instance),
        )
        .route(
            "/v2/service_instances/{instance_id}/last_operation",
            get(instances::instance_last_operation),
        )
        .route(
            "/v2/service_instances/{instance_id}/service_bindings/{binding_id}",
            get(bindings::get_binding)
                .put(bindings::put_binding)
                .delete(bindings::delete_binding),
        )
        .route(
            "/v2/service_instances/{instance_id}/service_bindings/{binding_id}/last_operation",
            get(bindings::binding_last_operation),
        )
        .method_not_allowed_fallback(|| async { ApiError::method_not_allowed().into_response() })
        .layer(axum::middleware::from_fn_with_state(
            auth,
            middleware::osb_rules,
        ))
        .with_state(broker);
    Router::new()
        .route(
            "/healthz",
            get(|| async { axum::Json(serde_json::json!({"status": "ok"})) }),
        )
        .merge(osb)
        .fallback(|| async { ApiError::not_found_route().into_response() })
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(axum::middleware::from_fn(middleware::request_identity))
}
