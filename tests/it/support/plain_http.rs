//! A small plain-HTTP client for the tests, on the hyper client the crate already uses: the few
//! request-builder calls the tests make (method and URL, headers, basic auth, a JSON or raw
//! body, a timeout), and answers read whole. Loopback only, so no TLS and no proxy.

use std::fmt;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_TYPE};
use http::{HeaderName, HeaderValue, Method, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client as Hyper;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// A pooled HTTP/1.1 client. Cheap to clone.
#[derive(Clone)]
pub struct Client {
    inner: Hyper<HttpConnector, Full<Bytes>>,
    timeout: Option<Duration>,
}

impl Default for Client {
    fn default() -> Self {
        Client::new()
    }
}

impl Client {
    pub fn new() -> Client {
        Client::builder().build().expect("http client")
    }

    pub fn builder() -> ClientBuilder {
        ClientBuilder { timeout: None }
    }

    pub fn get(&self, url: impl AsRef<str>) -> RequestBuilder {
        self.request(Method::GET, url)
    }

    pub fn post(&self, url: impl AsRef<str>) -> RequestBuilder {
        self.request(Method::POST, url)
    }

    pub fn request(&self, method: Method, url: impl AsRef<str>) -> RequestBuilder {
        RequestBuilder {
            client: self.clone(),
            method,
            url: url.as_ref().to_owned(),
            headers: Vec::new(),
            body: None,
        }
    }
}

pub struct ClientBuilder {
    timeout: Option<Duration>,
}

impl ClientBuilder {
    /// Proxies are never used; kept so call sites read as they always did.
    pub fn no_proxy(self) -> Self {
        self
    }

    /// A limit on each whole call, answer body included.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    pub fn build(self) -> Result<Client, Error> {
        Ok(Client {
            inner: Hyper::builder(TokioExecutor::new()).build_http(),
            timeout: self.timeout,
        })
    }
}

pub struct RequestBuilder {
    client: Client,
    method: Method,
    url: String,
    headers: Vec<(HeaderName, HeaderValue)>,
    body: Option<Bytes>,
}

impl RequestBuilder {
    pub fn header(mut self, name: &str, value: &str) -> Self {
        let name = HeaderName::try_from(name).expect("header name");
        let value = HeaderValue::try_from(value).expect("header value");
        self.headers.push((name, value));
        self
    }

    pub fn basic_auth(mut self, user: &str, password: Option<&str>) -> Self {
        let encoded = BASE64.encode(format!("{user}:{}", password.unwrap_or_default()));
        let mut value = HeaderValue::try_from(format!("Basic {encoded}")).expect("header value");
        value.set_sensitive(true);
        self.headers.push((AUTHORIZATION, value));
        self
    }

    pub fn json<T: Serialize + ?Sized>(mut self, body: &T) -> Self {
        self.body = Some(serde_json::to_vec(body).expect("JSON body").into());
        self.headers
            .push((CONTENT_TYPE, HeaderValue::from_static("application/json")));
        self
    }

    pub fn body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = Some(body.into());
        self
    }

    /// Send and read the whole answer.
    pub async fn send(self) -> Result<Response, Error> {
        let uri: Uri = encode_query(&self.url)
            .parse()
            .map_err(|e| Error::new(false, e))?;
        let mut req = Request::builder().method(self.method).uri(uri);
        for (name, value) in self.headers {
            req = req.header(name, value);
        }
        let req = req
            .body(Full::new(self.body.unwrap_or_default()))
            .map_err(|e| Error::new(false, e))?;
        let client = self.client.inner.clone();
        let call = async move {
            let resp = client
                .request(req)
                .await
                .map_err(|e| Error::new(false, e))?;
            let status = resp.status();
            let body = resp
                .into_body()
                .collect()
                .await
                .map_err(|e| Error::new(false, e))?
                .to_bytes();
            Ok(Response { status, body })
        };
        match self.client.timeout {
            None => call.await,
            Some(limit) => tokio::time::timeout(limit, call)
                .await
                .unwrap_or_else(|_| Err(Error::new(true, "timed out"))),
        }
    }
}

/// What a browser's URL parser encodes in a query: controls, space, `"`, `'`, `<`, `>`. The
/// `http` crate refuses several of them raw, and tests write queries such as `{"Count":2}`.
const QUERY: &AsciiSet = &CONTROLS.add(b' ').add(b'"').add(b'\'').add(b'<').add(b'>');

fn encode_query(url: &str) -> String {
    match url.split_once('?') {
        None => url.to_owned(),
        Some((base, query)) => format!("{base}?{}", utf8_percent_encode(query, QUERY)),
    }
}

/// An answer, read whole.
pub struct Response {
    status: StatusCode,
    body: Bytes,
}

impl fmt::Debug for Response {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Response")
            .field("status", &self.status)
            .field("body", &format_args!("<{} bytes>", self.body.len()))
            .finish()
    }
}

impl Response {
    pub fn status(&self) -> StatusCode {
        self.status
    }

    pub async fn bytes(self) -> Result<Bytes, Error> {
        Ok(self.body)
    }

    pub async fn text(self) -> Result<String, Error> {
        Ok(String::from_utf8_lossy(&self.body).into_owned())
    }

    pub async fn json<T: DeserializeOwned>(self) -> Result<T, Error> {
        serde_json::from_slice(&self.body).map_err(|e| Error::new(false, e))
    }
}

/// No answer (connection refused or dropped, a timeout) or one that could not be read.
#[derive(Debug)]
pub struct Error {
    timeout: bool,
    message: String,
}

impl Error {
    fn new(timeout: bool, e: impl fmt::Display) -> Error {
        Error {
            timeout,
            message: e.to_string(),
        }
    }

    /// Always `None`: an answer with any status is a [`Response`], not an error.
    pub fn status(&self) -> Option<StatusCode> {
        None
    }

    pub fn is_timeout(&self) -> bool {
        self.timeout
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}
