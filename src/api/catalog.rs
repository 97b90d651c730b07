//! `GET /v2/catalog`: the catalog body, serialised once per API version (on its first request).

use std::sync::Arc;

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};

use super::extract::Version;
use crate::broker::Broker;

/// `GET /v2/catalog`.
pub async fn get_catalog(State(broker): State<Arc<Broker>>, Version(version): Version) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        broker.catalog().json(version),
    )
        .into_response()
}
