//! The one place that knows OSB status codes and error bodies: every failure the platform sees
//! is an [`ApiError`], answered as `{"error": "...", "description": "..."}`.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::broker;

/// An OSB error response: status, error code and a description a person can act on.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub description: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, description: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            description: description.into(),
        }
    }

    pub fn bad_request(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "BadRequest", description)
    }

    pub fn malformed(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "MalformedRequest", description)
    }

    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            "missing or wrong broker credentials: send HTTP basic auth with the broker's username and password",
        )
    }

    pub fn version_unsupported(got: Option<&str>) -> Self {
        let description = match got {
            None => "the X-Broker-API-Version header is missing; this broker speaks OSB API 2.13 to 2.17 (send e.g. `X-Broker-API-Version: 2.17`)".to_owned(),
            Some(v) => {
                let shown: String = v.chars().take(32).collect();
                format!(
                    "X-Broker-API-Version {shown:?} is not supported; this broker speaks OSB API 2.13 to 2.17 (send e.g. `X-Broker-API-Version: 2.17`)"
                )
            }
        };
        Self::new(
            StatusCode::PRECONDITION_FAILED,
            "PreconditionFailed",
            description,
        )
    }

    pub fn payload_too_large() -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "PayloadTooLarge",
            "the request body is larger than the 1 MiB this broker accepts",
        )
    }

    pub fn request_timeout() -> Self {
        Self::new(
            StatusCode::REQUEST_TIMEOUT,
            "RequestTimeout",
            "the request body did not arrive in time; send it again",
        )
    }

    pub fn not_found_route() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "NotFound",
            "no such endpoint; see the OSB API for the routes this broker serves",
        )
    }

    pub fn method_not_allowed() -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            "this endpoint does not support that HTTP method",
        )
    }
}

impl From<broker::Error> for ApiError {
    fn from(e: broker::Error) -> Self {
        use broker::Error as E;
        match e {
            E::BadRequest(d) => ApiError::bad_request(d),
            E::NotFound(d) => ApiError::new(StatusCode::NOT_FOUND, "NotFound", d),
            E::Gone(d) => ApiError::new(StatusCode::GONE, "Gone", d),
            E::Conflict(d) => ApiError::new(StatusCode::CONFLICT, "Conflict", d),
            e @ E::AsyncRequired => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "AsyncRequired",
                e.to_string(),
            ),
            E::Concurrency(d) => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "ConcurrencyError", d)
            }
            E::Unprocessable(d) => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "UnprocessableEntity", d)
            }
            E::Upstream(d) => {
                tracing::warn!("upstream failure: {d}");
                ApiError::new(StatusCode::BAD_GATEWAY, "UpstreamError", d)
            }
            E::Retry(d) => {
                tracing::info!("transient: {d}");
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "ServiceUnavailable", d)
            }
            E::Internal(d) => {
                // The cause goes to the log only; the platform gets a generic, actionable sentence.
                tracing::error!("internal error: {d}");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "InternalError",
                    "the broker failed internally; the request can be retried, and the broker's log has the cause",
                )
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (
            self.status,
            Json(json!({"error": self.code, "description": self.description})),
        )
            .into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"osb-sacloud\""),
            );
        }
        response
    }
}
