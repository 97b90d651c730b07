//! The HTTP side of the client: configuration, auth and headers, the rate limit, retries with
//! backoff, and turning answers into JSON or an [`Error`]. The appliance calls themselves are in
//! [`super::database`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use reqwest::Method;
use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderMap, HeaderValue};
use serde::de::DeserializeOwned;

use super::error::Error;
use super::pacing::{RateLimiter, backoff};
use super::request::path_escape;
use crate::secret::Secret;

/// The production API root, before `/{zone}`.
pub const DEFAULT_ROOT_URL: &str = "https://secure.sakura.ad.jp/cloud/zone";
/// The path between the zone and the resource.
const API_SUFFIX: &str = "/api/cloud/1.1";
const USER_AGENT: &str = concat!("osb-sacloud/", env!("CARGO_PKG_VERSION"));

/// How to reach and pace the API. `Debug` shows the token and secret as `***`.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// The root before `/{zone}`, e.g. [`DEFAULT_ROOT_URL`] (`SAKURACLOUD_API_ROOT_URL`).
    pub root_url: String,
    pub access_token: Secret,
    pub access_token_secret: Secret,
    /// Client-side requests per second, shared by all clones (`SAKURACLOUD_RATE_LIMIT`, 5).
    pub rate_limit_per_sec: f64,
    /// Per HTTP call (30 s).
    pub timeout: Duration,
    /// Retries after the first attempt, for calls that may be retried (5).
    pub max_retries: u32,
    /// Backoff base (500 ms); retry n waits about `retry_base * 2^n`.
    pub retry_base: Duration,
}

impl ClientConfig {
    /// A config with the documented defaults for everything but where and who.
    pub fn new(root_url: impl Into<String>, token: Secret, secret: Secret) -> Self {
        ClientConfig {
            root_url: root_url.into(),
            access_token: token,
            access_token_secret: secret,
            rate_limit_per_sec: 5.0,
            timeout: Duration::from_secs(30),
            max_retries: 5,
            retry_base: Duration::from_millis(500),
        }
    }
}

/// What may be retried after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Retry {
    /// Nothing: a create, which could otherwise make two appliances.
    Never,
    /// 423 and 503 only: writes, where a dropped connection leaves it unknown whether the
    /// request was applied.
    Busy,
    /// 423, 503 and transport failures: reads, which are safe to repeat.
    BusyOrTransport,
}

/// A SAKURA Cloud API client. Cheap to clone; clones share the connection pool, the rate limit
/// and the call counter.
#[derive(Debug, Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// Built on the first call: building it reads the system's root certificates, a few
    /// milliseconds that a broker answering its catalog or polls from its store never needs.
    http: OnceLock<Result<reqwest::Client, Error>>,
    cfg: ClientConfig,
    root: String,
    limiter: RateLimiter,
    calls: AtomicU64,
}

impl Client {
    /// Build a client; fails when the root URL is not an http(s) URL. The connection pool (and
    /// TLS) is set up on the first call, whose error says so if it cannot be.
    pub fn new(cfg: ClientConfig) -> Result<Client, Error> {
        let root = cfg.root_url.trim_end_matches('/').to_owned();
        match reqwest::Url::parse(&root) {
            Ok(u) if matches!(u.scheme(), "http" | "https") => {}
            _ => {
                return Err(Error::Transport(format!(
                    "invalid SAKURA Cloud API root URL {root:?}"
                )));
            }
        }
        Ok(Client {
            inner: Arc::new(Inner {
                http: OnceLock::new(),
                limiter: RateLimiter::new(cfg.rate_limit_per_sec),
                root,
                cfg,
                calls: AtomicU64::new(0),
            }),
        })
    }

    /// The connection pool, built on first use and shared by all clones.
    fn http(&self) -> Result<&reqwest::Client, Error> {
        let built = self.inner.http.get_or_init(|| {
            let mut headers = HeaderMap::new();
            // Without it, 64-bit ids come back as strings.
            headers.insert("X-Sakura-Bigint-As-Int", HeaderValue::from_static("1"));
            headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
            let timeout = self.inner.cfg.timeout;
            let mut builder = reqwest::Client::builder()
                .user_agent(USER_AGENT)
                .default_headers(headers)
                .timeout(timeout)
                .connect_timeout(timeout.min(Duration::from_secs(10)));
            if self.inner.root.starts_with("http://") {
                // A plain-HTTP API (the simulator) needs no root certificates.
                builder = builder.tls_certs_only(std::iter::empty());
            }
            builder.build().map_err(|e| Error::transport(&e))
        });
        built.as_ref().map_err(Clone::clone)
    }

    /// HTTP requests sent so far by this client and its clones, retries included.
    pub fn calls(&self) -> u64 {
        self.inner.calls.load(Ordering::Relaxed)
    }

    /// Call and parse a JSON answer; an empty success body parses as `{}`.
    pub(crate) async fn call_json<T: DeserializeOwned>(
        &self,
        method: Method,
        zone: &str,
        path: &str,
        query: Option<&str>,
        body: Option<Vec<u8>>,
        retry: Retry,
    ) -> Result<T, Error> {
        let bytes = self.call(method, zone, path, query, body, retry).await?;
        let text: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
            b"{}"
        } else {
            &bytes
        };
        serde_json::from_slice(text).map_err(|e| Error::Parse(format!("{path}: {e}")))
    }

    /// Call, retrying as `retry` allows; the body of a success answer.
    pub(crate) async fn call(
        &self,
        method: Method,
        zone: &str,
        path: &str,
        query: Option<&str>,
        body: Option<Vec<u8>>,
        retry: Retry,
    ) -> Result<Bytes, Error> {
        let mut url = format!(
            "{}/{}{API_SUFFIX}{path}",
            self.inner.root,
            path_escape(zone)
        );
        if let Some(q) = query {
            url.push('?');
            url.push_str(q);
        }
        let body = body.map(Bytes::from);
        let mut attempt = 0;
        loop {
            let result = self.attempt(&method, &url, body.clone()).await;
            let retryable = match &result {
                Ok(_) => false,
                Err(Error::Api { status, .. }) => {
                    retry != Retry::Never && matches!(status, 423 | 503)
                }
                Err(Error::Transport(_)) => retry == Retry::BusyOrTransport,
                Err(Error::Parse(_)) => false,
            };
            match result {
                Err(e) if retryable && attempt < self.inner.cfg.max_retries => {
                    let wait = backoff(self.inner.cfg.retry_base, attempt);
                    tracing::debug!(%method, zone, path, attempt, ?wait, error = %e, "retrying SAKURA Cloud call");
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
                other => {
                    if let Err(e) = &other {
                        tracing::debug!(%method, zone, path, attempt, error = %e, "SAKURA Cloud call failed");
                    }
                    return other;
                }
            }
        }
    }

    /// One HTTP request, after waiting for the rate limit.
    async fn attempt(
        &self,
        method: &Method,
        url: &str,
        body: Option<Bytes>,
    ) -> Result<Bytes, Error> {
        let inner = &self.inner;
        let http = self.http()?;
        inner.limiter.acquire().await;
        inner.calls.fetch_add(1, Ordering::Relaxed);
        let mut req = http.request(method.clone(), url).basic_auth(
            inner.cfg.access_token.expose(),
            Some(inner.cfg.access_token_secret.expose()),
        );
        if let Some(body) = body {
            req = req.header(CONTENT_TYPE, "application/json").body(body);
        }
        let resp = req.send().await.map_err(|e| Error::transport(&e))?;
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await.map_err(|e| Error::transport(&e))?;
        if matches!(status, 200 | 201 | 202 | 204) {
            Ok(bytes)
        } else {
            Err(Error::from_response(status, &bytes))
        }
    }
}
