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
        let RawBody(bytes) = RawBody::from_request(req, state).await?;
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

/// A body that is not required (a DELETE's): its bytes, empty when there is none. A body over
/// the limit answers 413, one too slow to arrive 408, one that cannot be read 400, all as OSB
/// error JSON.
pub struct RawBody(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for RawBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        Bytes::from_request(req, state)
            .await
            .map(RawBody)
            .map_err(|rejection| {
                if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::payload_too_large()
                } else if crate::server::is_body_timeout(&rejection) {
                    ApiError::request_timeout()
                } else {
                    ApiError::malformed(format!("the request body could not be read: {rejection}"))
                }
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

/// `service_id` and `plan_id` of a DELETE: from the query string as the OSB spec says, or, when the
/// query lacks them, from a JSON body (Korifi's deprovision sends them in the body only).
pub fn ids_from_query_or_body(query: &OsbQuery, body: &[u8]) -> Result<(String, String), ApiError> {
    let from_body = |key: &str| -> Option<String> {
        let value: serde_json::Value = serde_json::from_slice(body).ok()?;
        value
            .get(key)?
            .as_str()
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    let one = |key: &str| match query.get(key).filter(|v| !v.is_empty()) {
        Some(v) => Ok(v.to_owned()),
        None => from_body(key).ok_or_else(|| {
            ApiError::bad_request(format!("the query parameter `{key}` is required"))
        }),
    };
    Ok((one("service_id")?, one("plan_id")?))
}

/// A provision's `organization_guid` and `space_guid`: the OSB spec requires both, as non-empty
/// strings (Cloud Foundry, Korifi and Crossplane's provider-osb all send them).
pub fn check_platform_ids(
    organization_guid: Option<&serde_json::Value>,
    space_guid: Option<&serde_json::Value>,
) -> Result<(), ApiError> {
    for (name, value) in [
        ("organization_guid", organization_guid),
        ("space_guid", space_guid),
    ] {
        match value {
            Some(serde_json::Value::String(s)) if !s.is_empty() => {}
            Some(serde_json::Value::String(_)) | None | Some(serde_json::Value::Null) => {
                return Err(ApiError::bad_request(format!(
                    "the field `{name}` is required: a non-empty string (the platform's organization and space, or their equivalents)"
                )));
            }
            Some(_) => {
                return Err(ApiError::bad_request(format!(
                    "the field `{name}` must be a non-empty string"
                )));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn query(pairs: &[(&str, &str)]) -> OsbQuery {
        OsbQuery(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    #[test]
    fn delete_ids_come_from_the_query_or_else_the_body() {
        let q = query(&[("service_id", "s"), ("plan_id", "p")]);
        assert_eq!(
            ids_from_query_or_body(&q, b"").expect("query"),
            ("s".into(), "p".into())
        );
        let body = json!({"service_id": "bs", "plan_id": "bp"}).to_string();
        assert_eq!(
            ids_from_query_or_body(&query(&[]), body.as_bytes()).expect("body"),
            ("bs".into(), "bp".into())
        );
        assert_eq!(
            ids_from_query_or_body(&q, body.as_bytes()).expect("query wins"),
            ("s".into(), "p".into())
        );
        for bad in [
            &b""[..],
            b"not json",
            br#"{"service_id": "s"}"#,
            br#"{"service_id": 1, "plan_id": "p"}"#,
        ] {
            let e = ids_from_query_or_body(&query(&[]), bad).expect_err("missing");
            assert_eq!(e.status, StatusCode::BAD_REQUEST);
        }
    }

    #[test]
    fn organization_and_space_are_required_non_empty_strings() {
        let ok = json!("guid");
        assert!(check_platform_ids(Some(&ok), Some(&ok)).is_ok());
        for (org, space) in [
            (None, Some(&ok)),
            (Some(&ok), None),
            (Some(&json!("")), Some(&ok)),
            (Some(&ok), Some(&json!(null))),
            (Some(&json!(7)), Some(&ok)),
        ] {
            let e = check_platform_ids(org, space).expect_err("refused");
            assert_eq!(e.status, StatusCode::BAD_REQUEST);
            assert_eq!(e.code, "BadRequest");
        }
    }
}
