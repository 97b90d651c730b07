//! What every hostile-input test shares: a broker and simulator on one current-thread runtime
//! (so a proptest closure can drive them synchronously), a raw sender that never panics on an odd
//! answer, and the one rule every answer must meet: a 2xx, or a 4xx whose JSON body carries a
//! non-empty `error` and `description`. Never a 5xx, a redirect, a panic or a plain-text error.

use std::cell::RefCell;
use std::collections::BTreeMap;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, Request, StatusCode, Uri};
use http_body_util::BodyExt;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::{Value, json};

use crate::hostile::generators::Route;
use osb_sacloud::sacloud::simulator::SimulatorConfig;
use tokio::runtime::Runtime;
use tower::ServiceExt;

use crate::support::*;

/// An answer as the platform would see it.
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Answer {
    /// The body as text, cut short for messages.
    pub fn text(&self) -> String {
        let text = String::from_utf8_lossy(&self.body);
        text.chars().take(400).collect()
    }

    pub fn json(&self) -> Option<Value> {
        serde_json::from_slice(&self.body).ok()
    }
}

/// Whether `answer` to a `method` request meets the contract; the reason when it does not.
pub fn judge(method: &Method, answer: &Answer) -> Result<(), String> {
    let status = answer.status;
    if !(status.is_success() || status.is_client_error()) {
        return Err(format!("status {status}, body {}", answer.text()));
    }
    // A HEAD answer carries no body by definition.
    if method == Method::HEAD {
        return Ok(());
    }
    if status.is_success() {
        if !answer.body.is_empty() && answer.json().is_none() {
            return Err(format!("{status} with a non-JSON body: {}", answer.text()));
        }
        return Ok(());
    }
    let content_type = answer
        .headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !content_type.starts_with("application/json") {
        return Err(format!(
            "{status} with Content-Type {content_type:?}: {}",
            answer.text()
        ));
    }
    let Some(body) = answer.json() else {
        return Err(format!("{status} with a non-JSON body: {}", answer.text()));
    };
    let non_empty = |key: &str| body[key].as_str().is_some_and(|s| !s.trim().is_empty());
    if !non_empty("error") || !non_empty("description") {
        return Err(format!("{status} without error and description: {body}"));
    }
    Ok(())
}

/// A test runner for `cases` cases, times `HOSTILE_SCALE` when set (`scripts/hostile.sh` runs
/// longer than CI), that keeps no regression files (seeds vary per run).
pub fn runner(cases: u32) -> TestRunner {
    let scale = std::env::var("HOSTILE_SCALE")
        .ok()
        .and_then(|v| v.parse::<u32>().ok())
        .unwrap_or(1)
        .max(1);
    TestRunner::new(Config {
        cases: cases.saturating_mul(scale),
        failure_persistence: None,
        ..Config::default()
    })
}

/// A broker and simulator on a current-thread runtime, with one ready MariaDB instance and a
/// shared binding on it, so hostile requests also reach the deeper paths.
pub struct Hostile {
    pub rt: Runtime,
    pub h: Harness,
    pub ready: String,
    pub binding: String,
    /// How many answers had each status, to show which paths the cases reached.
    seen: RefCell<BTreeMap<u16, u32>>,
}

impl Hostile {
    pub fn start() -> Hostile {
        Self::start_on(simulator_config(), good_parameters())
    }

    /// Like [`Hostile::start`], with the simulator backed by the real MariaDB and PostgreSQL
    /// servers and the ready instance on loopback, so dedicated bindings work. Reset the
    /// simulator at the end to drop what the appliances left on the servers.
    pub fn start_backed() -> Hostile {
        let mut cfg = simulator_config();
        cfg.mariadb_url = Some(crate::support::binder::mariadb_url());
        cfg.postgres_url = Some(crate::support::binder::postgres_url());
        Self::start_on(cfg, crate::support::logs::loopback_parameters())
    }

    fn start_on(cfg: SimulatorConfig, parameters: Value) -> Hostile {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let ready = new_id("ready");
        let binding = new_id("bound");
        let h = rt.block_on(async {
            let h = Harness::start_custom(cfg, |_| {}).await;
            let mut body = provision_body(MARIADB, MARIADB_10G);
            body["parameters"] = parameters;
            let (status, _, answer) = h
                .call(
                    Method::PUT,
                    &format!("/v2/service_instances/{ready}?accepts_incomplete=true"),
                    Some(body),
                )
                .await;
            assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
            assert_eq!(h.poll(&ready).await["state"], "succeeded");
            let (status, _, body) = h
                .call(
                    Method::PUT,
                    &format!("/v2/service_instances/{ready}/service_bindings/{binding}"),
                    Some(bind_body(MARIADB, MARIADB_10G)),
                )
                .await;
            assert_eq!(status, StatusCode::CREATED, "{body}");
            h
        });
        Hostile {
            rt,
            h,
            ready,
            binding,
            seen: RefCell::default(),
        }
    }

    /// Send `req` and read the whole answer.
    pub fn answer(&self, req: Request<Body>) -> Answer {
        self.rt.block_on(send_raw(&self.h, req))
    }

    /// Send `req`, judge the answer, then check that the broker still serves its catalog.
    pub fn check(&self, req: Request<Body>) -> Result<Answer, TestCaseError> {
        let method = req.method().clone();
        let uri = req.uri().to_string();
        let answer = self.answer(req);
        *self
            .seen
            .borrow_mut()
            .entry(answer.status.as_u16())
            .or_default() += 1;
        if let Err(why) = judge(&method, &answer) {
            let shown: String = uri.chars().take(300).collect();
            return Err(TestCaseError::fail(format!("{method} {shown}: {why}")));
        }
        let catalog = self.answer(request(
            Method::GET,
            "/v2/catalog",
            &standard_headers(),
            Body::empty(),
        )?);
        if catalog.status != StatusCode::OK {
            return Err(TestCaseError::fail(format!(
                "after {method} the catalog answers {}: {}",
                catalog.status,
                catalog.text()
            )));
        }
        Ok(answer)
    }

    /// The statuses answered so far, as `status x count` pairs.
    pub fn statuses(&self) -> String {
        let seen = self.seen.borrow();
        let parts: Vec<String> = seen.iter().map(|(s, n)| format!("{s}x{n}")).collect();
        parts.join(" ")
    }

    /// Advance the ready instance's operation, so an update a case started finishes in time.
    pub fn poll_ready(&self) -> Result<(), TestCaseError> {
        let path = format!("/v2/service_instances/{}/last_operation", self.ready);
        let answer = self.answer(request(
            Method::GET,
            &path,
            &standard_headers(),
            Body::empty(),
        )?);
        match answer.status {
            StatusCode::OK | StatusCode::NOT_FOUND | StatusCode::GONE => Ok(()),
            other => Err(TestCaseError::fail(format!(
                "last_operation of the ready instance answers {other}: {}",
                answer.text()
            ))),
        }
    }
}

/// The headers a well-behaved 2.17 platform sends.
pub fn standard_headers() -> Vec<(HeaderName, HeaderValue)> {
    vec![
        (
            HeaderName::from_static("x-broker-api-version"),
            HeaderValue::from_static("2.17"),
        ),
        (
            axum::http::header::AUTHORIZATION,
            HeaderValue::from_str(&basic(USER, PASSWORD)).expect("ascii"),
        ),
    ]
}

/// A request, or a rejected case when `uri` is not one an HTTP server could even receive.
pub fn request(
    method: Method,
    uri: &str,
    headers: &[(HeaderName, HeaderValue)],
    body: Body,
) -> Result<Request<Body>, TestCaseError> {
    let uri: Uri = uri
        .parse()
        .map_err(|_| TestCaseError::reject("not a valid request target"))?;
    let mut req = Request::builder().method(method).uri(uri);
    for (name, value) in headers {
        req = req.header(name, value);
    }
    req.body(body)
        .map_err(|_| TestCaseError::reject("request does not build"))
}

/// The body a well-behaved platform sends with `method` on `route` (empty where none is read).
pub fn good_body(route: Route, method: &Method) -> Body {
    let value = match (route, method.as_str()) {
        (Route::Instance, "PUT") => provision_body(MARIADB, MARIADB_10G),
        (Route::Instance, "PATCH") => json!({"service_id": MARIADB}),
        (Route::Binding, "PUT") => bind_body(MARIADB, MARIADB_10G),
        _ => return Body::empty(),
    };
    Body::from(value.to_string())
}

/// Send `req` through the router and read the whole answer, whatever it is.
pub async fn send_raw(h: &Harness, req: Request<Body>) -> Answer {
    let response = h
        .app
        .router
        .clone()
        .oneshot(req)
        .await
        .expect("the router is infallible");
    let status = response.status();
    let headers = response.headers().clone();
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    Answer {
        status,
        headers,
        body,
    }
}

/// Send `req`, require a 2xx or a JSON 4xx, then require the catalog to still answer 200.
pub async fn expect_sane(h: &Harness, req: Request<Body>) -> Answer {
    let method = req.method().clone();
    let uri: String = req.uri().to_string().chars().take(200).collect();
    let answer = send_raw(h, req).await;
    if let Err(why) = judge(&method, &answer) {
        panic!("{method} {uri}: {why}");
    }
    let (status, _, body) = h.call(Method::GET, "/v2/catalog", None).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "catalog after {method} {uri}: {body}"
    );
    answer
}

/// The rule above must be able to fail, or the properties prove nothing.
#[test]
fn judge_rejects_what_the_contract_forbids() {
    let answer = |status: u16, content_type: &str, body: &str| {
        let mut headers = HeaderMap::new();
        headers.insert("content-type", content_type.parse().expect("header"));
        Answer {
            status: StatusCode::from_u16(status).expect("status"),
            headers,
            body: Bytes::from(body.to_owned()),
        }
    };
    let json = "application/json";
    let good = r#"{"error":"NotFound","description":"no such instance"}"#;
    assert!(judge(&Method::GET, &answer(404, json, good)).is_ok());
    assert!(judge(&Method::GET, &answer(200, json, "{}")).is_ok());
    assert!(judge(&Method::HEAD, &answer(404, json, "")).is_ok());
    assert!(judge(&Method::GET, &answer(500, json, good)).is_err());
    assert!(judge(&Method::GET, &answer(502, json, good)).is_err());
    assert!(judge(&Method::GET, &answer(301, json, good)).is_err());
    assert!(judge(&Method::GET, &answer(400, "text/plain", good)).is_err());
    assert!(judge(&Method::GET, &answer(400, json, "Bad Request")).is_err());
    assert!(judge(&Method::GET, &answer(400, json, r#"{"error":"X"}"#)).is_err());
    assert!(
        judge(
            &Method::GET,
            &answer(400, json, r#"{"error":"X","description":" "}"#)
        )
        .is_err()
    );
    assert!(
        judge(
            &Method::GET,
            &answer(400, json, r#"{"error":5,"description":"d"}"#)
        )
        .is_err()
    );
    assert!(judge(&Method::GET, &answer(200, "text/plain", "ok")).is_err());
}
