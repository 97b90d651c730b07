//! The request sequences of the platforms that call brokers, replayed through the router with
//! their headers, query strings and bodies as their client code builds them: Crossplane's
//! provider-osb, Korifi and Cloud Foundry. Each file names the upstream code it follows.
//!
//! Waits poll `last_operation` until the operation leaves "in progress", bounded; no fixed sleeps.

mod cloud_foundry;
mod korifi;
mod provider_osb;

use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use base64::Engine as _;
use serde_json::Value;

use crate::support::*;

/// How one platform's HTTP client dresses its requests.
#[derive(Clone)]
pub struct Platform {
    /// `X-Broker-API-Version`.
    pub version: &'static str,
    /// `X-Broker-API-Originating-Identity` on user-initiated requests: platform and JSON value.
    pub identity: Option<(&'static str, String)>,
    /// `Content-Type: application/json` on every request, bodiless ones included.
    pub content_type_always: bool,
    /// `Content-Type: application/json` on requests with a body.
    pub content_type_with_body: bool,
    /// Sends `X-Broker-API-Request-Identity`.
    pub request_identity: bool,
}

/// An answer: status, headers, JSON body (`Null` when empty).
pub type Answer = (StatusCode, HeaderMap, Value);

impl Platform {
    /// Send `method path` with `body`; `identified` adds the originating identity header.
    pub async fn send(
        &self,
        h: &Harness,
        method: Method,
        path: &str,
        body: Option<Value>,
        identified: bool,
    ) -> Answer {
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header("X-Broker-API-Version", self.version)
            .header("Authorization", basic(USER, PASSWORD));
        if self.content_type_always || (self.content_type_with_body && body.is_some()) {
            req = req.header("Content-Type", "application/json");
        }
        if self.request_identity {
            req = req.header("X-Broker-API-Request-Identity", new_id("req"));
        }
        if identified && let Some((platform, value)) = &self.identity {
            let encoded = base64::engine::general_purpose::STANDARD.encode(value);
            req = req.header(
                "X-Broker-API-Originating-Identity",
                format!("{platform} {encoded}"),
            );
        }
        let body = match body {
            Some(v) => Body::from(v.to_string()),
            None => Body::empty(),
        };
        h.send(req.body(body).expect("request builds")).await
    }

    /// Poll `path` (a `last_operation` URL) until it answers something other than
    /// 200 "in progress"; bounded. Returns the first such answer and every state seen.
    pub async fn poll_until_done(
        &self,
        h: &Harness,
        path: &str,
        identified: bool,
    ) -> (Answer, Vec<String>) {
        let mut seen = Vec::new();
        for _ in 0..500 {
            let answer = self.send(h, Method::GET, path, None, identified).await;
            let state = answer.2["state"].as_str().unwrap_or("").to_owned();
            if answer.0 != StatusCode::OK || state != "in progress" {
                return (answer, seen);
            }
            seen.push(state);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("{path} stayed in progress");
    }
}

/// The broker's stored record of `id`, as JSON.
pub async fn stored_instance(h: &Harness, id: &str) -> Option<Value> {
    let item = h
        .store
        .get(&osb_sacloud::store::Key::instance(id))
        .await
        .expect("store read")?;
    Some(serde_json::from_str(&item.data).expect("record is JSON"))
}

/// Assert a 4xx never answers where a transient fault was injected.
pub fn not_final(status: StatusCode, what: &str, body: &Value) {
    assert!(
        !matches!(status.as_u16(), 400 | 409 | 422),
        "{what}: {status} would be taken as final: {body}"
    );
}
