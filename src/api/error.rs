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
            E::Upstream { description, .. } => {
                tracing::warn!("upstream failure: {description}");
                ApiError::new(StatusCode::BAD_GATEWAY, "UpstreamError", description)
            }
            E::Retry(d) => {
                tracing::info!("transient: {d}");
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "ServiceUnavailable", d)
            }
            e @ E::Internal { .. } => {
                // The cause goes to the log only; the platform gets a generic, actionable sentence.
                tracing::error!("internal error: {}", with_causes(&e));
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "InternalError",
                    "the broker failed internally; the request can be retried, and the broker's log has the cause",
                )
            }
        }
    }
}

/// `e` and each of its sources in turn: "state store: store backend failed: ...".
fn with_causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut next = e.source();
    while let Some(cause) = next {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        next = cause.source();
    }
    text
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

#[cfg(test)]
mod tests {
    use super::*;

    /// An internal error keeps its cause for the log, and the platform still reads only the
    /// generic sentence.
    #[test]
    fn internal_errors_keep_their_cause_and_tell_the_platform_nothing_of_it() {
        let store = crate::store::Error::Backend("disk on fire".into());
        let error = broker::Error::from(store);
        assert_eq!(
            with_causes(&error),
            "state store: store backend failed: disk on fire"
        );
        let cause = std::error::Error::source(&error).expect("a source");
        assert!(matches!(
            cause.downcast_ref::<crate::store::Error>(),
            Some(crate::store::Error::Backend(_))
        ));
        let api = ApiError::from(error);
        assert_eq!(api.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(
            !api.description.contains("disk on fire"),
            "{}",
            api.description
        );
    }

    /// An upstream error's description, the platform's message, is the whole sentence.
    #[test]
    fn upstream_errors_answer_their_description_and_keep_their_cause() {
        let cause = crate::binder::Error::Sql("permission denied".into());
        let error =
            broker::Error::upstream_from(format!("creating the user failed: {cause}"), cause);
        assert!(std::error::Error::source(&error).is_some());
        let api = ApiError::from(error);
        assert_eq!(api.status, StatusCode::BAD_GATEWAY);
        assert_eq!(
            api.description,
            "creating the user failed: database statement failed: permission denied"
        );
    }
}
