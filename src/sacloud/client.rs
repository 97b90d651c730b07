//! The HTTP side of the client: configuration, auth and headers, the rate limit, retries with
//! backoff, and turning answers into JSON or an [`Error`]. The appliance calls themselves are in
//! [`super::database`].

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, USER_AGENT};
use http::{HeaderValue, Method, Request, Uri};
use http_body_util::{BodyExt, Full};
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::{Client as HyperClient, ResponseFuture};
use hyper_util::rt::{TokioExecutor, TokioTimer};
use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};
use serde::de::DeserializeOwned;

use super::error::Error;
use super::pacing::{RateLimiter, backoff};
use super::request::path_escape;
use crate::budget::{Gate, Priority};
use crate::secret::Secret;

/// The production API root, before `/{zone}`.
pub const DEFAULT_ROOT_URL: &str = "https://secure.sakura.ad.jp/cloud/zone";
/// The path between the zone and the resource.
const API_SUFFIX: &str = "/api/cloud/1.1";
const USER_AGENT_VALUE: &str = concat!("osb-sacloud/", env!("CARGO_PKG_VERSION"));
/// Without it, 64-bit ids come back as strings.
const BIGINT_AS_INT: &str = "X-Sakura-Bigint-As-Int";
/// What the `http` crate refuses in a query: controls, space, `"`, `#`, `<`, `>` (and DEL). `%`
/// stays as it is, so escapes already in the query are not escaped again.
const QUERY_REFUSED: &AsciiSet = &CONTROLS.add(b' ').add(b'"').add(b'#').add(b'<').add(b'>');
/// How long an unused pooled connection is kept.
const POOL_IDLE: Duration = Duration::from_secs(90);

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
    /// Admits each request against a budget shared with other processes; a request it holds
    /// back fails at once with [`Error::Throttled`] instead of waiting.
    pub gate: Option<Arc<dyn Gate>>,
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
            gate: None,
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
/// and the call counter. `Debug` shows neither the token nor the secret.
#[derive(Debug, Clone)]
pub struct Client {
    inner: Arc<Inner>,
    /// Count reads against the budget as side effects (see [`Client::for_effects`]).
    reads_as_effects: bool,
}

struct Inner {
    /// Built on the first call: building it for HTTPS reads the system's root certificates, a
    /// few milliseconds that a broker answering its catalog or polls from its store never needs.
    pool: OnceLock<Result<Pool, Error>>,
    cfg: ClientConfig,
    /// The root without a trailing `/`, checked to be an http(s) URL.
    root: String,
    /// `Basic base64(token:secret)`, marked sensitive so that no HTTP-level log prints it.
    auth: HeaderValue,
    limiter: RateLimiter,
    calls: AtomicU64,
}

impl fmt::Debug for Inner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Inner")
            .field("root", &self.root)
            .field("cfg", &self.cfg)
            .field("pool_built", &self.pool.get().is_some())
            .field("calls", &self.calls)
            .finish_non_exhaustive()
    }
}

/// The connection pool: plain HTTP for an `http://` root (the simulator, where there are no
/// certificates to load), rustls with the system's root certificates otherwise.
enum Pool {
    Plain(HyperClient<HttpConnector, Full<Bytes>>),
    Tls(HyperClient<HttpsConnector<HttpConnector>, Full<Bytes>>),
}

impl Pool {
    fn build(https: bool, connect_timeout: Duration) -> Result<Pool, Error> {
        let mut tcp = HttpConnector::new();
        tcp.set_connect_timeout(Some(connect_timeout));
        tcp.set_nodelay(true);
        let mut builder = HyperClient::builder(TokioExecutor::new());
        builder
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(POOL_IDLE);
        if !https {
            return Ok(Pool::Plain(builder.build(tcp)));
        }
        tcp.enforce_http(false);
        let tls = HttpsConnectorBuilder::new()
            .with_native_roots()
            .map_err(|e| {
                Error::Transport(format!(
                    "could not load the system's root certificates: {e}"
                ))
            })?
            .https_only()
            .enable_http1()
            .wrap_connector(tcp);
        Ok(Pool::Tls(builder.build(tls)))
    }

    fn request(&self, req: Request<Full<Bytes>>) -> ResponseFuture {
        match self {
            Pool::Plain(c) => c.request(req),
            Pool::Tls(c) => c.request(req),
        }
    }
}

impl Client {
    /// Build a client; fails when the root URL is not an http(s) URL. The connection pool (and
    /// TLS) is set up on the first call, whose error says so if it cannot be.
    pub fn new(cfg: ClientConfig) -> Result<Client, Error> {
        let root = cfg.root_url.trim_end_matches('/').to_owned();
        let valid = root.parse::<Uri>().is_ok_and(|u| {
            matches!(u.scheme_str(), Some("http" | "https")) && u.authority().is_some()
        });
        if !valid {
            return Err(Error::Transport(format!(
                "invalid SAKURA Cloud API root URL {root:?}"
            )));
        }
        let credentials = format!(
            "{}:{}",
            cfg.access_token.expose(),
            cfg.access_token_secret.expose()
        );
        let mut auth = HeaderValue::try_from(format!("Basic {}", BASE64.encode(credentials)))
            .map_err(|_| Error::Transport("the access token cannot be sent".into()))?;
        auth.set_sensitive(true);
        Ok(Client {
            inner: Arc::new(Inner {
                pool: OnceLock::new(),
                limiter: RateLimiter::new(cfg.rate_limit_per_sec),
                root,
                auth,
                cfg,
                calls: AtomicU64::new(0),
            }),
            reads_as_effects: false,
        })
    }

    /// The connection pool, built on first use and shared by all clones.
    fn pool(&self) -> Result<&Pool, Error> {
        let inner = &self.inner;
        let built = inner.pool.get_or_init(|| {
            let connect_timeout = inner.cfg.timeout.min(Duration::from_secs(10));
            Pool::build(!inner.root.starts_with("http://"), connect_timeout)
        });
        built.as_ref().map_err(Clone::clone)
    }

    /// This client for a request that is itself a side effect the platform waits for (a bind's
    /// read of its appliance): its reads count against the budget as effects, which polls'
    /// reads never starve.
    pub fn for_effects(&self) -> Client {
        Client {
            inner: self.inner.clone(),
            reads_as_effects: true,
        }
    }

    /// False when the budget is known to be used up for `priority` until its current slot
    /// ends: a caller about to claim a side effect can answer from its records instead. True
    /// promises nothing.
    pub fn may_send(&self, priority: Priority) -> bool {
        self.inner
            .cfg
            .gate
            .as_ref()
            .is_none_or(|gate| gate.may_admit(priority))
    }

    /// HTTP requests sent so far by this client and its clones, retries included.
    pub fn calls(&self) -> u64 {
        self.inner.calls.load(Ordering::Relaxed)
    }

    /// Build the connection pool and open a connection (TCP, and TLS for an `https://` root)
    /// with the cheapest authenticated read: the first database appliance of `zone`
    /// (`GET /appliance?{"Count":1,"From":0,"Filter":{"Class":"database"}}`), whose answer is
    /// not looked at. It is a SAKURA request like any other: the budget counts it, and may hold
    /// it back ([`Error::Throttled`]). Not retried: a Lambda's cold start must not wait.
    pub async fn warm_up(&self, zone: &str) -> Result<(), Error> {
        const FIRST_DATABASE: &str = r#"{"Count":1,"From":0,"Filter":{"Class":"database"}}"#;
        self.call(
            Method::GET,
            zone,
            "/appliance",
            Some(FIRST_DATABASE),
            None,
            Retry::Never,
        )
        .await
        .map(|_| ())
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
            // SAKURA's own client puts the find condition's JSON raw after `?` (its string
            // values are already escaped, by `path_escape`). The `http` crate refuses a few of
            // those bytes in a query, `"` above all, so exactly those are percent-encoded; the
            // API decodes the query once and reads the Go client's bytes.
            url.push('?');
            url.extend(utf8_percent_encode(q, QUERY_REFUSED));
        }
        let uri: Uri = url
            .parse()
            .map_err(|_| Error::Transport(format!("cannot build a request URL for {path}")))?;
        let body = body.map(Bytes::from);
        let mut attempt = 0;
        loop {
            let result = self.attempt(&method, &uri, body.clone()).await;
            let retryable = match &result {
                Ok(_) => false,
                Err(Error::Api { status, .. }) => {
                    retry != Retry::Never && matches!(status, 423 | 503)
                }
                Err(Error::Transport(_)) => retry == Retry::BusyOrTransport,
                Err(Error::Parse(_) | Error::Throttled) => false,
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

    /// One HTTP request, after waiting for the rate limit; the whole call, answer body
    /// included, must finish within the configured timeout.
    async fn attempt(
        &self,
        method: &Method,
        uri: &Uri,
        body: Option<Bytes>,
    ) -> Result<Bytes, Error> {
        let inner = &self.inner;
        let pool = self.pool()?;
        if let Some(gate) = &inner.cfg.gate {
            let priority = if *method == Method::GET && !self.reads_as_effects {
                Priority::Read
            } else {
                Priority::Effect
            };
            if !gate.admit(priority).await {
                return Err(Error::Throttled);
            }
        }
        inner.limiter.acquire().await;
        inner.calls.fetch_add(1, Ordering::Relaxed);
        let mut req = Request::builder()
            .method(method.clone())
            .uri(uri.clone())
            .header(ACCEPT, "application/json")
            .header(BIGINT_AS_INT, "1")
            .header(USER_AGENT, USER_AGENT_VALUE)
            .header(AUTHORIZATION, inner.auth.clone());
        if body.is_some() {
            req = req.header(CONTENT_TYPE, "application/json");
        }
        let req = req
            .body(Full::new(body.unwrap_or_default()))
            .map_err(|e| Error::Transport(format!("cannot build the request: {e}")))?;
        let exchange = async {
            let resp = pool.request(req).await.map_err(|e| Error::transport(&e))?;
            let status = resp.status().as_u16();
            let bytes = resp
                .into_body()
                .collect()
                .await
                .map_err(|e| Error::broken_body(&e))?
                .to_bytes();
            Ok::<_, Error>((status, bytes))
        };
        let (status, bytes) = tokio::time::timeout(inner.cfg.timeout, exchange)
            .await
            .map_err(|_| Error::Transport("timed out".into()))??;
        if matches!(status, 200 | 201 | 202 | 204) {
            Ok(bytes)
        } else {
            Err(Error::from_response(status, &bytes))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(root: &str) -> ClientConfig {
        ClientConfig::new(root, Secret::new("tok-abc"), Secret::new("sec-xyz"))
    }

    #[test]
    fn only_http_and_https_roots_are_accepted() {
        for bad in [
            "not a url",
            "ftp://example.com/cloud/zone",
            "/cloud/zone",
            "",
        ] {
            assert!(Client::new(config(bad)).is_err(), "{bad:?}");
        }
        for good in [DEFAULT_ROOT_URL, "http://127.0.0.1:1/cloud/zone/"] {
            assert!(Client::new(config(good)).is_ok(), "{good:?}");
        }
    }

    #[test]
    fn debug_shows_no_credentials() {
        let client = Client::new(config(DEFAULT_ROOT_URL)).unwrap();
        let text = format!("{client:?}");
        assert!(
            !text.contains("tok-abc") && !text.contains("sec-xyz"),
            "{text}"
        );
        let encoded = BASE64.encode("tok-abc:sec-xyz");
        assert!(!text.contains(&encoded), "{text}");
        assert!(client.inner.auth.is_sensitive());
    }

    #[tokio::test]
    async fn the_tls_pool_builds_with_the_one_crypto_provider() {
        // Panics if the TLS stack cannot pick its crypto provider on its own; on a machine
        // without root certificates it is an error that says so instead.
        match Pool::build(true, Duration::from_secs(1)) {
            Ok(pool) => assert!(matches!(pool, Pool::Tls(_))),
            Err(e) => assert!(e.to_string().contains("root certificates"), "{e}"),
        }
        assert!(matches!(
            Pool::build(false, Duration::from_secs(1)),
            Ok(Pool::Plain(_))
        ));
    }
}
