//! What the log tests share: a broker with distinctive secrets whose simulator is backed by the
//! real MariaDB and PostgreSQL servers, audited requests, and the secrets a run handled, in
//! every form they could be printed in.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::http::{Method, Request, StatusCode};
use osb_sacloud::app;
use osb_sacloud::sacloud::simulator::{RecordedRequest, Simulator};
use osb_sacloud::store::Store;
use osb_sacloud::store::memory::MemoryStore;
use serde_json::{Value, json};

use crate::hostile::generators::{b64, encode};
use crate::support::binder::{mariadb_url, postgres_url};
use crate::support::capture::Needle;
use crate::support::*;

pub const SAKURA_TOKEN: &str = "tokLOG7f3kQ9zW2xV8";
pub const SAKURA_SECRET: &str = "secLOGp4Rt8mN1bC6yH0";
pub const BROKER_PASSWORD: &str = "pwLOGe9Jq2Lk7Xs4Tz1";
/// A user name the broker does not know, sent with the right password.
pub const INTRUDER: &str = "intruder";
pub const WRONG_PASSWORD: &str = "wrongLOGa8Df3Gh6Jk";
/// The encryption key: 32 printable bytes, so a raw leak shows up as text too.
pub const RAW_KEY: &[u8; 32] = b"keyLOG-0123456789abcdefghijklmno";

/// The secrets a broker runs with, all known before anything runs.
pub struct Secrets<'a> {
    pub user: &'a str,
    pub password: &'a str,
    /// A wrong password a test sends for `user`.
    pub wrong_password: &'a str,
    /// A user name the broker does not know, sent with the right password.
    pub intruder: &'a str,
    pub token: &'a str,
    pub token_secret: &'a str,
    pub raw_key: &'a [u8; 32],
}

/// `s` in every form it could be printed in.
pub fn needles_of(s: &Secrets) -> Vec<Needle> {
    let basic = |user: &str, password: &str| b64(format!("{user}:{password}").as_bytes());
    let hex: String = s.raw_key.iter().map(|b| format!("{b:02x}")).collect();
    vec![
        Needle::new("SAKURA access token", s.token),
        Needle::new("SAKURA access token secret", s.token_secret),
        Needle::new("SAKURA basic auth", basic(s.token, s.token_secret)),
        Needle::new("broker password", s.password),
        Needle::new("broker basic auth", basic(s.user, s.password)),
        Needle::new("intruder basic auth", basic(s.intruder, s.password)),
        Needle::new("wrong password", s.wrong_password),
        Needle::new("wrong basic auth", basic(s.user, s.wrong_password)),
        Needle::new("encryption key (base64)", b64(s.raw_key)),
        Needle::new(
            "encryption key (raw)",
            String::from_utf8_lossy(s.raw_key).into_owned(),
        ),
        Needle::new("encryption key (hex)", hex),
        Needle::new("encryption key (bytes)", format!("{:?}", &s.raw_key[..12])),
    ]
}

/// The secrets of the log tests' brokers, in every form they could be printed in.
pub fn static_needles() -> Vec<Needle> {
    needles_of(&Secrets {
        user: USER,
        password: BROKER_PASSWORD,
        wrong_password: WRONG_PASSWORD,
        intruder: INTRUDER,
        token: SAKURA_TOKEN,
        token_secret: SAKURA_SECRET,
        raw_key: RAW_KEY,
    })
}

/// A broker whose simulator is backed by the real servers, with the secrets above.
pub async fn start() -> (Harness, HashMap<String, String>) {
    let mut cfg = simulator_config();
    cfg.access_token = SAKURA_TOKEN.into();
    cfg.access_token_secret = SAKURA_SECRET.into();
    cfg.mariadb_url = Some(mariadb_url());
    cfg.postgres_url = Some(postgres_url());
    let sim = Simulator::start(cfg, SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .expect("simulator starts (the MariaDB and PostgreSQL test servers must be up)");
    let mut env = broker_env(&sim);
    for (k, v) in [
        ("SAKURACLOUD_ACCESS_TOKEN", SAKURA_TOKEN.to_owned()),
        ("SAKURACLOUD_ACCESS_TOKEN_SECRET", SAKURA_SECRET.to_owned()),
        ("OSB_PASSWORD", BROKER_PASSWORD.to_owned()),
        ("OSB_ENCRYPTION_KEYS", b64(RAW_KEY)),
    ] {
        env.insert(k.to_owned(), v);
    }
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let app = app::build_with_store(&config_from(&env), store.clone())
        .await
        .expect("broker builds");
    (Harness { app, sim, store }, env)
}

/// Run `work` on a fresh [`start`]ed broker, then reset the simulator whether `work` passed or
/// panicked, which drops every appliance's admin user, database and binding users from the
/// shared servers; a panic is raised again afterwards.
pub async fn with_backed<T, F, Fut>(work: F) -> T
where
    F: FnOnce(Arc<Harness>, HashMap<String, String>) -> Fut,
    Fut: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let (h, env) = start().await;
    let h = Arc::new(h);
    let outcome = tokio::spawn(work(h.clone(), env)).await;
    h.sim.reset().await;
    match outcome {
        Ok(out) => out,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}

/// A request as an audited platform user sends it, with `password`.
pub async fn call(
    h: &Harness,
    method: Method,
    path: &str,
    body: Option<Value>,
    password: &str,
) -> (StatusCode, Value) {
    let identity = b64(br#"{"username":"alice-auditor","uid":"42"}"#);
    let req = Request::builder()
        .method(method)
        .uri(path)
        .header("X-Broker-API-Version", "2.17")
        .header("X-Broker-API-Request-Identity", "log-test-request")
        .header(
            "X-Broker-API-Originating-Identity",
            format!("kubernetes {identity}"),
        )
        .header("Authorization", basic(USER, password));
    let (status, _, body) = h.send(with_body(req, body)).await;
    (status, body)
}

pub async fn ok(
    h: &Harness,
    method: Method,
    path: &str,
    body: Option<Value>,
    want: StatusCode,
) -> Value {
    let (status, answer) = call(h, method.clone(), path, body, BROKER_PASSWORD).await;
    assert_eq!(status, want, "{method} {path}: {answer}");
    answer
}

pub async fn poll(h: &Harness, id: &str) -> Value {
    let path = format!("/v2/service_instances/{id}/last_operation");
    for _ in 0..500 {
        let body = ok(h, Method::GET, &path, None, StatusCode::OK).await;
        if body["state"] != "in progress" {
            return body;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("operation on {id} never finished");
}

/// Parameters for an appliance on loopback, where the backing server really listens.
pub fn loopback_parameters() -> Value {
    json!({"switchID": "112233445566", "ipaddress": "127.0.0.1", "maskLen": 8, "defaultRoute": "127.0.0.2"})
}

/// The password in a credentials answer, in the forms it is handed out.
pub fn credential_needles(what: &str, answer: &Value) -> Vec<Needle> {
    let password = answer["credentials"]["password"]
        .as_str()
        .unwrap_or_else(|| panic!("{what}: no password in {answer}"));
    vec![
        Needle::new(what, password),
        Needle::new(format!("{what} (encoded)"), encode(password)),
    ]
}

/// Every value of a `...Password` key in the JSON bodies the simulator received.
pub fn admin_passwords(requests: &[RecordedRequest]) -> Vec<String> {
    fn walk(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(map) => {
                for (k, v) in map {
                    match v {
                        Value::String(s) if k.contains("Password") && !s.is_empty() => {
                            out.push(s.clone())
                        }
                        _ => walk(v, out),
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    for r in requests {
        if let Some(v) = r.json() {
            walk(&v, &mut out);
        }
    }
    out.sort();
    out.dedup();
    out
}
