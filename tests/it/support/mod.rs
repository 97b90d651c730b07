//! A broker wired to an in-process simulator with short timers, driven through its router.

pub mod binder;
pub mod capture;
pub mod dedicated;
pub mod gate;
pub mod hostile;
pub mod lambda;
pub mod logs;
pub mod moto;
pub mod plain_http;
pub mod procs;
pub mod runtime_api;
pub mod sacloud;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use base64::Engine as _;
use http_body_util::BodyExt;
use osb_sacloud::app::{self, App};
use osb_sacloud::config::Config;
use osb_sacloud::sacloud::simulator::{Simulator, SimulatorConfig, Timings};
use osb_sacloud::store::Store;
use osb_sacloud::store::memory::MemoryStore;
use serde_json::{Value, json};
use tower::ServiceExt;

pub const MARIADB: &str = "c4f353f3-8a59-437d-b4af-6a6f856248db";
pub const MARIADB_10G: &str = "7320351e-4664-4df5-938c-c0bfe8551609";
pub const POSTGRES: &str = "cc17eabf-0178-4eea-966e-2f5fb2aa62a9";
pub const POSTGRES_10G: &str = "590eb4a9-6efb-4f14-ac03-b66fe49adb2e";
pub const USER: &str = "broker-user";
pub const PASSWORD: &str = "broker-pass-0123456789";
pub const TOKEN: &str = "test-token";
pub const TOKEN_SECRET: &str = "test-token-secret-value";
/// A 32-byte key, base64.
pub const ENCRYPTION_KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";

/// Short simulator timers: a whole lifecycle takes well under a second. Every awkward window
/// of the real API is on, at the same small scale: 404 just after the create, power calls and
/// updates ignored just after the boot, the engine running a little after `up`.
pub fn fast_timings() -> Timings {
    Timings {
        migrating: Duration::from_millis(60),
        boot: Duration::from_millis(60),
        cleaning: Duration::from_millis(40),
        not_found_after_create: Duration::from_millis(100),
        ignore_power_after_boot: Duration::from_millis(80),
        ignore_updates_after_boot: Duration::from_millis(80),
        engine_start: Duration::from_millis(60),
    }
}

pub fn simulator_config() -> SimulatorConfig {
    let mut cfg = SimulatorConfig::from_env();
    cfg.access_token = TOKEN.into();
    cfg.access_token_secret = TOKEN_SECRET.into();
    cfg.timings = fast_timings();
    cfg.mariadb_url = None;
    cfg.postgres_url = None;
    cfg
}

/// The environment a test broker reads, pointed at `sim`.
pub fn broker_env(sim: &Simulator) -> HashMap<String, String> {
    [
        ("OSB_USERNAME", USER),
        ("OSB_PASSWORD", PASSWORD),
        ("SAKURACLOUD_ACCESS_TOKEN", TOKEN),
        ("SAKURACLOUD_ACCESS_TOKEN_SECRET", TOKEN_SECRET),
        ("OSB_BINDING_MODE", "shared"),
        ("OSB_ENCRYPTION_KEYS", ENCRYPTION_KEY),
        // No SAKURA budget: the budget has tests of its own (the storm, the unit tests), and
        // counting it would add a store call to every SAKURA call of every other test.
        ("SAKURACLOUD_RATE_LIMIT", "0"),
        ("OSB_RETRY_AFTER_SECS", "1"),
        ("SAKURACLOUD_RETRY_WAIT_MIN", "0.005"),
        // SAKURA's habits at test speed: re-send ignored power calls and settings quickly.
        ("OSB_POWER_RESEND_SECS", "0.2"),
        ("OSB_REAPPLY_SECS", "0.2"),
        ("OSB_CREATE_RETRY_SECS", "0.05"),
        // Every poll asks SAKURA (tests count calls per poll); coalescing has its own tests.
        ("OSB_CHECK_INTERVAL_SECS", "0"),
        // Requests wait for their step, so each request's store calls are its own; the bound on
        // answer time has its own tests.
        ("OSB_ANSWER_WITHIN_SECS", "30"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .chain([("SAKURACLOUD_API_ROOT_URL".to_owned(), sim.root_url())])
    .collect()
}

pub fn config_from(env: &HashMap<String, String>) -> Config {
    Config::from_lookup(|k| env.get(k).cloned()).expect("test config is valid")
}

/// A broker (memory store unless given) and its simulator.
#[allow(dead_code)]
pub struct Harness {
    pub app: App,
    pub sim: Simulator,
    pub store: Arc<dyn Store>,
}

impl Harness {
    pub async fn start() -> Harness {
        Self::start_with(|_| {}).await
    }

    /// Start with the environment adjusted by `tweak`.
    pub async fn start_with(tweak: impl FnOnce(&mut HashMap<String, String>)) -> Harness {
        Self::start_custom(simulator_config(), tweak).await
    }

    /// Start with a simulator of its own configuration and the environment adjusted by `tweak`.
    pub async fn start_custom(
        sim_config: SimulatorConfig,
        tweak: impl FnOnce(&mut HashMap<String, String>),
    ) -> Harness {
        let sim = Simulator::start(sim_config, SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .expect("simulator starts");
        let mut env = broker_env(&sim);
        tweak(&mut env);
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let app = app::build_with_store(&config_from(&env), store.clone())
            .await
            .expect("broker builds");
        Harness { app, sim, store }
    }

    /// Replace the broker by a fresh one on the same store and simulator, as after a crash and
    /// restart (or a request landing on another Lambda instance).
    pub async fn restart_broker(&mut self, tweak: impl FnOnce(&mut HashMap<String, String>)) {
        let mut env = broker_env(&self.sim);
        tweak(&mut env);
        self.app = app::build_with_store(&config_from(&env), self.store.clone())
            .await
            .expect("broker builds");
    }

    /// Send a request as a 2.17 platform would.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, HeaderMap, Value) {
        let req = Request::builder()
            .method(method)
            .uri(path)
            .header("X-Broker-API-Version", "2.17")
            .header("Authorization", basic(USER, PASSWORD));
        self.send(with_body(req, body)).await
    }

    /// Send a fully built request.
    pub async fn send(&self, req: Request<Body>) -> (StatusCode, HeaderMap, Value) {
        send(&self.app.router, req).await
    }

    /// Provision `id` with good parameters, returning the operation token.
    pub async fn provision(&self, id: &str, service: &str, plan: &str) -> String {
        let (status, _, body) = self
            .call(
                Method::PUT,
                &format!("/v2/service_instances/{id}?accepts_incomplete=true"),
                Some(provision_body(service, plan)),
            )
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        body["operation"]
            .as_str()
            .expect("operation token")
            .to_owned()
    }

    /// One `last_operation` poll of `id`.
    pub async fn last_operation(&self, id: &str) -> (StatusCode, HeaderMap, Value) {
        self.call(
            Method::GET,
            &format!("/v2/service_instances/{id}/last_operation"),
            None,
        )
        .await
    }

    /// Poll `last_operation` until it leaves "in progress"; returns the final body.
    pub async fn poll(&self, id: &str) -> Value {
        for _ in 0..400 {
            let (status, headers, body) = self
                .call(
                    Method::GET,
                    &format!("/v2/service_instances/{id}/last_operation"),
                    None,
                )
                .await;
            assert_eq!(status, StatusCode::OK, "{body}");
            assert!(
                headers.contains_key("retry-after"),
                "poll without Retry-After"
            );
            if body["state"] != "in progress" {
                return body;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("operation on {id} never finished");
    }

    /// Provision and wait until ready.
    pub async fn ready_instance(&self, id: &str, service: &str, plan: &str) {
        self.provision(id, service, plan).await;
        let last = self.poll(id).await;
        assert_eq!(last["state"], "succeeded", "{last}");
    }

    pub async fn deprovision(&self, id: &str, service: &str, plan: &str) -> (StatusCode, Value) {
        let (status, _, body) = self
            .call(
                Method::DELETE,
                &format!("/v2/service_instances/{id}?accepts_incomplete=true&service_id={service}&plan_id={plan}"),
                None,
            )
            .await;
        (status, body)
    }
}

/// Finish a request with a JSON body (and its Content-Type), or an empty one.
pub fn with_body(req: axum::http::request::Builder, body: Option<Value>) -> Request<Body> {
    match body {
        Some(v) => req
            .header("Content-Type", "application/json")
            .body(Body::from(v.to_string())),
        None => req.body(Body::empty()),
    }
    .expect("request builds")
}

/// Send through the router, returning status, headers and the JSON body (`Null` when empty).
pub async fn send(router: &axum::Router, req: Request<Body>) -> (StatusCode, HeaderMap, Value) {
    let response = router.clone().oneshot(req).await.expect("router answers");
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    (status, headers, json_body(status, &bytes))
}

/// An answer's body as JSON (`Null` when empty); any other body fails the test.
pub fn json_body(status: impl std::fmt::Display, bytes: &[u8]) -> Value {
    if bytes.is_empty() {
        return Value::Null;
    }
    serde_json::from_slice(bytes).unwrap_or_else(|_| {
        panic!(
            "non-JSON body ({status}): {}",
            String::from_utf8_lossy(bytes)
        )
    })
}

pub fn basic(user: &str, password: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

/// Parameters the simulator accepts.
pub fn good_parameters() -> Value {
    json!({"switchID": "112233445566", "ipaddress": "192.168.0.11", "maskLen": 24, "defaultRoute": "192.168.0.1"})
}

pub fn provision_body(service: &str, plan: &str) -> Value {
    json!({
        "service_id": service,
        "plan_id": plan,
        "organization_guid": "org",
        "space_guid": "space",
        "context": {"platform": "kubernetes", "namespace": "default"},
        "parameters": good_parameters(),
    })
}

pub fn bind_body(service: &str, plan: &str) -> Value {
    json!({"service_id": service, "plan_id": plan, "bind_resource": {"app_guid": "app"}})
}

/// A fresh id for a test.
pub fn new_id(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}
