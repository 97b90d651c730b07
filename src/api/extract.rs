//! Extractors that turn bad input into OSB error JSON instead of axum's plain-text rejections.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use super::clip::Clipped;
use super::error::ApiError;
use crate::catalog::ApiVersion;

/// A JSON object body, parsed into `T`. Malformed JSON, a non-object, wrong field types or a
/// non-JSON content type answer 400; a body over the limit answers 413.
pub struct OsbJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for OsbJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if let Some(ct) = req.headers().get(axum::http::header::CONTENT_TYPE) {
            let ct = ct.to_str().unwrap_or("").to_ascii_lowercase();
            let mime = ct.split(';').next().unwrap_or("").trim();
            if !(mime == "application/json" || mime.ends_with("+json") || mime.is_empty()) {
                return Err(ApiError::malformed(format!(
                    "Content-Type must be application/json, not {mime:?}"
                )));
            }
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::payload_too_large()
            } else if crate::server::is_body_timeout(&rejection) {
                ApiError::request_timeout()
            } else {
                ApiError::malformed(format!("the request body could not be read: {rejection}"))
            }
        })?;
        let value: serde_json::Value = serde_json::from_slice(&bytes)
            .map_err(|e| ApiError::malformed(format!("the request body is not valid JSON: {e}")))?;
        if !value.is_object() {
            return Err(ApiError::malformed(
                "the request body must be a JSON object",
            ));
        }
        serde_json::from_value(value).map(OsbJson).map_err(|e| {
            ApiError::malformed(format!(
                "the request body has a field of the wrong type: {e}"
            ))
        })
    }
}

/// The query string as key/value pairs; percent-decoding errors answer 400.
pub struct OsbQuery(pub Vec<(String, String)>);

impl OsbQuery {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// `accepts_incomplete`: `true` or `false` (absent is false). Any other value, or two
    /// occurrences that disagree, is a 400: a platform that sends something else is out of step
    /// with the OSB API, and guessing would turn an async request into a sync one or back.
    pub fn accepts_incomplete(&self) -> Result<bool, ApiError> {
        let mut answer = None;
        for (_, value) in self.0.iter().filter(|(k, _)| k == "accepts_incomplete") {
            let this = match value.as_str() {
                "true" => true,
                "false" => false,
                _ => {
                    return Err(ApiError::bad_request(format!(
                        "the query parameter `accepts_incomplete` must be `true` or `false`, not {:?}",
                        Clipped(value)
                    )));
                }
            };
            if answer.is_some_and(|a| a != this) {
                return Err(ApiError::bad_request(
                    "the query parameter `accepts_incomplete` is given twice with different values",
                ));
            }
            answer = Some(this);
        }
        Ok(answer.unwrap_or(false))
    }

    /// A query parameter the endpoint requires (`service_id`, `plan_id` on DELETE).
    pub fn required(&self, key: &str) -> Result<String, ApiError> {
        match self.get(key) {
            Some(v) if !v.is_empty() => Ok(v.to_owned()),
            _ => Err(ApiError::bad_request(format!(
                "the query parameter `{key}` is required"
            ))),
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for OsbQuery {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or("");
        let pairs = axum::extract::Query::<Vec<(String, String)>>::try_from_uri(&parts.uri)
            .map_err(|e| {
                ApiError::malformed(format!("the query string {query:?} is malformed: {e}"))
            })?;
        Ok(OsbQuery(pairs.0))
    }
}

/// The OSB API version of this request (set by the version middleware).
pub struct Version(pub ApiVersion);

impl<S: Send + Sync> FromRequestParts<S> for Version {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<ApiVersion>()
            .copied()
            .map(Version)
            .ok_or_else(|| ApiError::version_unsupported(None))
    }
}

/// Unicode's bidirectional controls: they make an id display as another (`Trojan Source`).
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Check an id from the path: 1 to 255 bytes, no control or bidirectional-control character,
/// no `/`, not only whitespace, and not the dot segments `.` or `..` (which a proxy or a log
/// reader would take for a path step).
pub fn check_id(kind: &str, id: &str) -> Result<(), ApiError> {
    let bad = id.is_empty()
        || id.len() > 255
        || id == "."
        || id == ".."
        || id.chars().all(char::is_whitespace)
        || id
            .chars()
            .any(|c| c.is_control() || is_bidi_control(c) || c == '/');
    if bad {
        return Err(ApiError::bad_request(format!(
            "the {kind} id must be 1 to 255 bytes of printable characters: no control or bidirectional-control character, no `/`, not only whitespace, and not `.` or `..`"
        )));
    }
    Ok(())
}

/// A required body field.
pub fn required(field: Option<String>, name: &str) -> Result<String, ApiError> {
    match field {
        Some(v) if !v.is_empty() => Ok(v),
        _ => Err(ApiError::bad_request(format!(
            "the field `{name}` is required"
        ))),
    }
}

/// Path parameters; undecodable ids answer 400 with JSON.
pub struct OsbPath<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for OsbPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| OsbPath(p.0))
            .map_err(|e| ApiError::bad_request(format!("the URL path is malformed: {e}")))
    }
}
