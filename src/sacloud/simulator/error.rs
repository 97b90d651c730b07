//! The API's error answers, with the body the real API sends:
//! `{"is_fatal":true,"serial":"..","status":"404 Not Found","error_code":"not_found","error_msg":".."}`.

use std::sync::atomic::{AtomicU64, Ordering};

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// An error answer of the simulated API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    pub fn not_found() -> ApiError {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "The target can not be found. Object or state that can not be available, there is an error in the ID or path.",
        )
    }

    pub fn still_creating() -> ApiError {
        ApiError::new(
            StatusCode::CONFLICT,
            "still_creating",
            "The resource is still being created. Please wait a while and try again.",
        )
    }

    pub fn conflict(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::CONFLICT, "conflict", message)
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    pub fn unauthorized() -> ApiError {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Authentication failed. Check the access token and its secret.",
        )
    }

    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "fatal", message)
    }

    /// The answer of an injected fault with this status.
    pub fn injected(status: u16) -> ApiError {
        match status {
            423 => ApiError::new(
                StatusCode::LOCKED,
                "locked",
                "The resource is locked by another operation. Please try again later.",
            ),
            503 => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "service_unavailable",
                "The service is temporarily unavailable. Please try again later.",
            ),
            _ => ApiError::internal("An unexpected error occurred."),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = format!(
            "{} {}",
            self.status.as_u16(),
            self.status.canonical_reason().unwrap_or("")
        );
        let body = json!({
            "is_fatal": true,
            "serial": next_serial(),
            "status": status,
            "error_code": self.code,
            "error_msg": self.message,
        });
        (self.status, Json(body)).into_response()
    }
}

/// A trace id that looks like the real ones (32 hex digits), different on every answer.
fn next_serial() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0x5eed);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{:016x}{:016x}", splitmix(n), splitmix(n ^ 0x9e37_79b9))
}

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}
