//! No secret reaches the logs on the Lambda path either: the built binary runs in Lambda mode
//! against a loopback fake of the Lambda Runtime API (what `lambda_http::run` polls: `next`,
//! `response`, `error`), with `RUST_LOG=trace`, and walks whole lifecycles on both engines
//! (simulated appliances backed by the real MariaDB and PostgreSQL servers, dedicated and shared
//! bindings) plus rejected logins. Its stderr, every line at every level, is then searched for
//! every secret the run handled, in each form it could be printed in.

use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};

use crate::hostile::generators::b64;
use crate::support::binder::{mariadb_url, postgres_url};
use crate::support::capture::{Needle, assert_absent};
use crate::support::logs::{Secrets, credential_needles, loopback_parameters, needles_of};
use crate::support::runtime_api::{Outcome, RuntimeApi};
use crate::support::{MARIADB, MARIADB_10G, POSTGRES, POSTGRES_10G, new_id};

const USER: &str = "lambda-broker";
const PASSWORD: &str = "pwLAMBDA5Gx8Hc2Mb";
const WRONG_PASSWORD: &str = "wrongLAMBDA3Qs7Yd";
const INTRUDER: &str = "intruder";
const TOKEN: &str = "tokLAMBDA4h7Jq2Wz9";
const TOKEN_SECRET: &str = "secLAMBDA8Kp3Vn6Rt";
/// 32 printable bytes, so a raw leak shows as text too.
const RAW_KEY: &[u8; 32] = b"keyLAMBDA-0123456789abcdefghijkl";

/// The broker binary in Lambda mode, its Runtime API, and its stderr as it is written.
struct Function {
    api: Arc<RuntimeApi>,
    child: Child,
    stderr: Arc<Mutex<Vec<u8>>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Function {
    async fn start() -> Function {
        let api = RuntimeApi::start("osb-test").await;

        let mut command = Command::new(env!("CARGO_BIN_EXE_osb-sacloud"));
        command
            .env_clear()
            .envs([
                ("AWS_LAMBDA_RUNTIME_API", api.addr().to_string()),
                ("AWS_LAMBDA_FUNCTION_NAME", "osb-test".to_owned()),
                ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256".to_owned()),
                ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".to_owned()),
                ("AWS_REGION", "us-east-1".to_owned()),
                ("RUST_LOG", "trace".to_owned()),
                ("SAKURACLOUD_FAKE_MODE", "1".to_owned()),
                ("SAKURACLOUD_ACCESS_TOKEN", TOKEN.to_owned()),
                ("SAKURACLOUD_ACCESS_TOKEN_SECRET", TOKEN_SECRET.to_owned()),
                ("SAKURACLOUD_RATE_LIMIT", "1000".to_owned()),
                ("OSB_USERNAME", USER.to_owned()),
                ("OSB_PASSWORD", PASSWORD.to_owned()),
                ("OSB_ENCRYPTION_KEYS", b64(RAW_KEY)),
                ("OSB_RETRY_AFTER_SECS", "1".to_owned()),
                ("SIMULATOR_MARIADB_URL", mariadb_url()),
                ("SIMULATOR_POSTGRES_URL", postgres_url()),
                ("SIMULATOR_MIGRATING_MS", "60".to_owned()),
                ("SIMULATOR_BOOT_MS", "60".to_owned()),
                ("SIMULATOR_CLEANING_MS", "40".to_owned()),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = command.spawn().expect("the broker binary starts");
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let mut pipe = child.stderr.take().expect("stderr is piped");
        let sink = stderr.clone();
        let reader = std::thread::spawn(move || {
            let mut chunk = [0u8; 8192];
            while let Ok(n) = pipe.read(&mut chunk) {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().extend_from_slice(&chunk[..n]);
            }
        });
        Function {
            api,
            child,
            stderr,
            reader: Some(reader),
        }
    }

    /// Hand one Function URL event to the function and wait for what it posts back.
    async fn invoke(&mut self, event: Value) -> (u16, Value) {
        let outcome = match self.api.invoke(event, Duration::from_secs(60)).await {
            Some(outcome) => outcome,
            None => panic!(
                "no answer (init error: {:?}); the function's log:\n{}",
                self.api.init_error(),
                self.log()
            ),
        };
        let posted = match outcome {
            Outcome::Response(posted) => posted,
            Outcome::Error(e) => panic!("the function reported an error: {e}"),
        };
        let status = posted["statusCode"].as_u64().expect("statusCode") as u16;
        let body = match posted["body"].as_str() {
            None | Some("") => Value::Null,
            Some(text) => serde_json::from_str(text).expect("a JSON body"),
        };
        (status, body)
    }

    /// Invoke as the platform does, with `password`; check the status.
    async fn call(
        &mut self,
        method: &str,
        target: &str,
        body: Option<Value>,
        password: &str,
        want: u16,
    ) -> Value {
        self.call_as(USER, password, method, target, body, want)
            .await
    }

    async fn call_as(
        &mut self,
        user: &str,
        password: &str,
        method: &str,
        target: &str,
        body: Option<Value>,
        want: u16,
    ) -> Value {
        let authorization = format!("Basic {}", b64(format!("{user}:{password}").as_bytes()));
        let event = function_url_event(method, target, &authorization, body);
        let (status, answer) = self.invoke(event).await;
        assert_eq!(status, want, "{method} {target}: {answer}");
        answer
    }

    async fn poll(&mut self, id: &str) -> Value {
        let target = format!("/v2/service_instances/{id}/last_operation");
        for _ in 0..500 {
            let body = self.call("GET", &target, None, PASSWORD, 200).await;
            if body["state"] != "in progress" {
                return body;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("operation on {id} never finished");
    }

    fn log(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().unwrap()).into_owned()
    }

    /// Stop the process and return everything it logged.
    fn stop(mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
        self.log()
    }
}

impl Drop for Function {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A Function URL (HTTP API v2 payload) event, as Lambda hands it to the runtime.
fn function_url_event(
    method: &str,
    target: &str,
    authorization: &str,
    body: Option<Value>,
) -> Value {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let mut event = json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": query,
        "headers": {
            "host": "abcdefghijklmnopqrstuvwxyz012345.lambda-url.us-east-1.on.aws",
            "user-agent": "osb-platform/1.0",
            "x-forwarded-proto": "https",
            "x-broker-api-version": "2.17",
            "x-broker-api-request-identity": "lambda-log-test",
            "x-broker-api-originating-identity":
                format!("kubernetes {}", b64(br#"{"username":"alice-auditor","uid":"42"}"#)),
            "authorization": authorization,
        },
        "requestContext": {
            "accountId": "anonymous",
            "apiId": "abcdefghijklmnopqrstuvwxyz012345",
            "domainName": "abcdefghijklmnopqrstuvwxyz012345.lambda-url.us-east-1.on.aws",
            "domainPrefix": "abcdefghijklmnopqrstuvwxyz012345",
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "198.51.100.10",
                "userAgent": "osb-platform/1.0"
            },
            "requestId": "0b5e6f0c-1d2a-4c3b-8e9f-000000000001",
            "routeKey": "$default",
            "stage": "$default",
            "time": "25/Nov/2026:09:00:00 +0000",
            "timeEpoch": 1795597200001u64
        },
        "isBase64Encoded": false
    });
    if let Some(body) = body {
        event["headers"]["content-type"] = json!("application/json");
        event["body"] = json!(body.to_string());
    }
    event
}

/// Provision on loopback, bind dedicated and shared, read both, unbind, deprovision.
async fn lifecycle(f: &mut Function, service: &str, plan: &str) -> Vec<Needle> {
    let id = new_id("lambdalog");
    let instance = format!("/v2/service_instances/{id}");
    let provision = json!({
        "service_id": service, "plan_id": plan,
        "organization_guid": "org", "space_guid": "space",
        "parameters": loopback_parameters(),
    });
    let async_target = format!("{instance}?accepts_incomplete=true");
    f.call("PUT", &async_target, Some(provision), PASSWORD, 202)
        .await;
    assert_eq!(f.poll(&id).await["state"], "succeeded");

    let mut needles = Vec::new();
    let [dedicated, shared] = [new_id("lded"), new_id("lsh")];
    for (binding, mode) in [(&dedicated, "dedicated"), (&shared, "shared")] {
        let target = format!("{instance}/service_bindings/{binding}");
        let body = json!({"service_id": service, "plan_id": plan, "parameters": {"mode": mode}});
        let made = f.call("PUT", &target, Some(body), PASSWORD, 201).await;
        needles.extend(credential_needles(
            &format!("{mode} binding password"),
            &made,
        ));
        let read = f.call("GET", &target, None, PASSWORD, 200).await;
        assert_eq!(read["credentials"], made["credentials"]);
    }
    let ids = format!("service_id={service}&plan_id={plan}");
    for binding in [&dedicated, &shared] {
        let target = format!("{instance}/service_bindings/{binding}?{ids}");
        f.call("DELETE", &target, None, PASSWORD, 200).await;
    }
    let target = format!("{instance}?accepts_incomplete=true&{ids}");
    f.call("DELETE", &target, None, PASSWORD, 202).await;
    assert_eq!(f.poll(&id).await["state"], "succeeded");
    needles
}

#[cfg_attr(
    not(feature = "services"),
    ignore = "needs MariaDB and PostgreSQL on 127.0.0.1: run scripts/test.sh"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_reaches_the_lambda_logs_at_trace() {
    let mut f = Function::start().await;
    f.call("GET", "/v2/catalog", None, PASSWORD, 200).await;
    f.call("GET", "/v2/catalog", None, WRONG_PASSWORD, 401)
        .await;
    f.call_as(INTRUDER, PASSWORD, "GET", "/v2/catalog", None, 401)
        .await;
    let mut needles = lifecycle(&mut f, MARIADB, MARIADB_10G).await;
    needles.extend(lifecycle(&mut f, POSTGRES, POSTGRES_10G).await);
    let logs = f.stop();

    for line in [
        "cold start done",
        "osb request",
        "alice-auditor",
        "rejected: bad or missing credentials",
        "dedicated binding created",
        "\"level\":\"TRACE\"",
    ] {
        assert!(logs.contains(line), "the log misses {line:?}:\n{logs}");
    }
    needles.extend(needles_of(&Secrets {
        user: USER,
        password: PASSWORD,
        wrong_password: WRONG_PASSWORD,
        intruder: INTRUDER,
        token: TOKEN,
        token_secret: TOKEN_SECRET,
        raw_key: RAW_KEY,
    }));
    assert_absent("the Lambda log", &logs, &needles);
    assert!(
        !logs.contains("raw JSON event received from Lambda"),
        "the runtime logged a raw event"
    );
    eprintln!(
        "searched {} bytes of Lambda logs ({} lines) for {} secrets",
        logs.len(),
        logs.lines().count(),
        needles.len()
    );
}
