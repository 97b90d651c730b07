//! A request as the simulator received it, kept so tests can assert on what a client really
//! sent. Only available in-process: bodies hold passwords, so they are never served over HTTP,
//! and `Debug` leaves the body out.

use std::collections::BTreeMap;
use std::fmt;

/// One request to the simulated SAKURA API (not to `/_simulator/`).
#[derive(Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    pub method: String,
    /// The counter key, e.g. `PUT /appliance/{id}/power`.
    pub route: String,
    /// The path as sent, e.g. `/cloud/zone/tk1v/api/cloud/1.1/appliance/123/power`.
    pub path: String,
    /// The raw query (after `?`), still percent-encoded.
    pub query: Option<String>,
    /// Header names in lower case; `authorization` is not kept (see `basic_auth_ok`).
    pub headers: BTreeMap<String, String>,
    /// Whether the basic-auth credentials were the right ones.
    pub basic_auth_ok: bool,
    /// The body as text (lossy UTF-8).
    pub body: String,
}

impl RecordedRequest {
    /// The body parsed as JSON, if it is JSON.
    pub fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_str(&self.body).ok()
    }

    /// A header's value by (case-insensitive) name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }
}

impl fmt::Debug for RecordedRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecordedRequest")
            .field("method", &self.method)
            .field("route", &self.route)
            .field("path", &self.path)
            .field("query", &self.query)
            .field("headers", &self.headers)
            .field("basic_auth_ok", &self.basic_auth_ok)
            .field("body", &format_args!("<{} bytes>", self.body.len()))
            .finish()
    }
}
