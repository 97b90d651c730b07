//! Cross-cutting OSB rules, applied to every route but `/healthz`: request-identity echo, basic
//! auth (401), `X-Broker-API-Version` (412), originating identity (decoded, audited), and the
//! per-request store call counters.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::clip::Clipped;
use super::error::ApiError;
use crate::catalog::ApiVersion;
use crate::secret::Secret;

const REQUEST_IDENTITY: &str = "x-broker-api-request-identity";
const ORIGINATING_IDENTITY: &str = "x-broker-api-originating-identity";
const API_VERSION: &str = "x-broker-api-version";

/// The broker's basic-auth credentials, kept as digests so comparison takes constant time
/// whatever the length of what was sent.
#[derive(Clone)]
pub struct BasicAuth {
    digest: [u8; 32],
}

impl std::fmt::Debug for BasicAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BasicAuth(***)")
    }
}

impl BasicAuth {
    pub fn new(username: &str, password: &Secret) -> Self {
        BasicAuth {
            digest: digest_of(username, password.expose()),
        }
    }

    fn accepts(&self, headers: &HeaderMap) -> bool {
        let Some(value) = headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
        else {
            return false;
        };
        // HTTP auth scheme names are case-insensitive; one or more spaces follow the name.
        let Some((scheme, encoded)) = value.split_once(' ') else {
            return false;
        };
        if !scheme.eq_ignore_ascii_case("basic") {
            return false;
        }
        let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(encoded.trim()) else {
            return false;
        };
        let Ok(pair) = String::from_utf8(decoded) else {
            return false;
        };
        let Some((user, pass)) = pair.split_once(':') else {
            return false;
        };
        digest_of(user, pass).ct_eq(&self.digest).into()
    }
}

fn digest_of(user: &str, pass: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update((user.len() as u64).to_be_bytes());
    h.update(user.as_bytes());
    h.update(pass.as_bytes());
    h.finalize().into()
}

/// Echo `X-Broker-API-Request-Identity` on every answer, errors included.
pub async fn request_identity(request: Request, next: Next) -> Response {
    let identity = request.headers().get(REQUEST_IDENTITY).cloned();
    let mut response = next.run(request).await;
    if let Some(identity) = identity {
        response.headers_mut().insert(REQUEST_IDENTITY, identity);
    }
    response
}

/// Every OSB route's rules, in one layer and in this order: 401 unless the request carries the
/// broker's basic-auth credentials, 412 unless `X-Broker-API-Version` names 2.13 or later (the
/// version goes into the request's extensions so handlers can leave out newer fields), then
/// the audit. One layer rather than one per rule: each layer costs a cloned service and a
/// boxed future on every request.
pub async fn osb_rules(
    State(auth): State<Arc<BasicAuth>>,
    mut request: Request,
    next: Next,
) -> Response {
    if !auth.accepts(request.headers()) {
        // The path is the sender's: clipped, and formatted into the line without a copy.
        tracing::info!(method = %request.method(), path = %Clipped(request.uri().path()), "rejected: bad or missing credentials");
        return ApiError::unauthorized().into_response();
    }
    let raw = request
        .headers()
        .get(API_VERSION)
        .map(|v| v.to_str().unwrap_or("<not text>"));
    let Some(version) = raw
        .and_then(ApiVersion::parse)
        .filter(ApiVersion::is_supported)
    else {
        return ApiError::version_unsupported(raw).into_response();
    };
    request.extensions_mut().insert(version);
    audited(request, next).await
}

/// Who asked, per `X-Broker-API-Originating-Identity` (`<platform> <base64 JSON>`).
#[derive(Debug, Clone, Default)]
pub struct Originator {
    pub platform: String,
    pub user: String,
}

fn decode_originator(value: &HeaderValue) -> Option<Originator> {
    let text = value.to_str().ok()?;
    let (platform, encoded) = text.trim().split_once(' ')?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let json: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    let user = ["username", "user_id", "uid"]
        .iter()
        .find_map(|k| json.get(k).and_then(|v| v.as_str()))
        .unwrap_or("")
        .to_owned();
    Some(Originator {
        platform: platform.to_owned(),
        user,
    })
}

/// Decode the originating identity (400 when malformed), count store calls, and write one audit
/// line per mutating request.
async fn audited(request: Request, next: Next) -> Response {
    let originator = match request.headers().get(ORIGINATING_IDENTITY) {
        None => None,
        Some(value) => match decode_originator(value) {
            Some(o) => Some(o),
            None => {
                return ApiError::malformed(
                    "X-Broker-API-Originating-Identity must be `<platform> <base64-encoded JSON>`",
                )
                .into_response();
            }
        },
    };
    // Clones that share the request's bytes: nothing is copied unless a line is written.
    let method = request.method().clone();
    let uri = request.uri().clone();
    let request_identity = request.headers().get(REQUEST_IDENTITY).cloned();
    let started = std::time::Instant::now();
    let (response, calls, store_wait) =
        crate::broker::counting_store_calls(next.run(request)).await;
    // What the request cost and how long it took, and how much of that was the store's.
    if tracing::enabled!(tracing::Level::DEBUG) {
        let took_ms = started.elapsed().as_secs_f64() * 1000.0;
        let store_ms = store_wait.as_secs_f64() * 1000.0;
        tracing::debug!(%method, path = %Clipped(uri.path()), store_reads = calls.reads, store_queries = calls.queries, store_writes = calls.writes, store_budget = calls.budget, store_ms, took_ms, "store calls");
    }
    if method != Method::GET {
        let o = originator.unwrap_or_default();
        // Everything here is the platform's text: clipped, and escaped so that a line break in
        // a user name cannot start a forged audit line.
        tracing::info!(
            target: "audit",
            %method,
            path = %Clipped(uri.path()),
            status = response.status().as_u16(),
            platform = %Clipped(&o.platform),
            user = %Clipped(&o.user),
            request_identity = %Clipped(request_identity
                .as_ref()
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")),
            "osb request"
        );
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_authorization(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            axum::http::header::AUTHORIZATION,
            HeaderValue::from_str(value).unwrap(),
        );
        headers
    }

    fn basic(pair: &str) -> String {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(pair)
        )
    }

    #[test]
    fn basic_auth_accepts_only_the_exact_pair() {
        let auth = BasicAuth::new("broker", &Secret::from("pa:ss word"));
        assert!(auth.accepts(&with_authorization(&basic("broker:pa:ss word"))));
        // The scheme is case-insensitive, and spaces may follow it.
        let encoded = base64::engine::general_purpose::STANDARD.encode("broker:pa:ss word");
        assert!(auth.accepts(&with_authorization(&format!("bAsIc   {encoded}"))));
        for wrong in [
            basic("broker:pa:ss wor"),
            basic("broker:pa:ss word "),
            basic("Broker:pa:ss word"),
            // The same bytes split elsewhere: the user name's length is part of the digest.
            basic("broke:rpa:ss word"),
            basic("brokerpa:ss word"),
            basic("broker"),
            format!("Bearer {encoded}"),
            "Basic".to_owned(),
            "Basic !!!not base64".to_owned(),
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode([0xff, 0xfe, b':', b'x'])
            ),
        ] {
            assert!(!auth.accepts(&with_authorization(&wrong)), "{wrong:?}");
        }
        assert!(!auth.accepts(&HeaderMap::new()), "no header");
    }

    #[test]
    fn the_digest_keeps_user_and_password_apart() {
        assert_ne!(digest_of("ab", "c"), digest_of("a", "bc"));
        assert_eq!(digest_of("a", "bc"), digest_of("a", "bc"));
    }

    #[test]
    fn debug_shows_no_credential() {
        let auth = BasicAuth::new("broker", &Secret::from("hunter2-password"));
        let shown = format!("{auth:?}");
        assert_eq!(shown, "BasicAuth(***)");
    }

    fn originator(value: &str) -> Option<Originator> {
        decode_originator(&HeaderValue::from_str(value).unwrap())
    }

    fn encoded(json: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(json)
    }

    #[test]
    fn the_originating_identity_names_platform_and_user() {
        let cf = originator(&format!("cloudfoundry {}", encoded(r#"{"user_id":"u-1"}"#))).unwrap();
        assert_eq!(
            (cf.platform.as_str(), cf.user.as_str()),
            ("cloudfoundry", "u-1")
        );
        let k8s = originator(&format!(
            " kubernetes {} ",
            encoded(r#"{"username":"alice","uid":"9"}"#)
        ))
        .unwrap();
        assert_eq!(
            (k8s.platform.as_str(), k8s.user.as_str()),
            ("kubernetes", "alice")
        );
        let anonymous = originator(&format!("korifi {}", encoded(r#"{"groups":[]}"#))).unwrap();
        assert_eq!(
            anonymous.user, "",
            "a value without a user is still well-formed"
        );
    }

    #[test]
    fn a_malformed_originating_identity_is_refused() {
        for value in [
            "cloudfoundry".to_owned(),
            "cloudfoundry !!!".to_owned(),
            format!("cloudfoundry {}", encoded("not json")),
            String::new(),
        ] {
            assert!(originator(&value).is_none(), "{value:?}");
        }
    }
}
