//! Every Function URL event in `events/` replayed through the real Lambda path: the JSON is
//! deserialized as the runtime does (`LambdaRequest`), handed to `lambda_http::Adapter` around the
//! router `main` gives `lambda_http::run`, and the response is serialized as the runtime posts it
//! back. The events run in lifecycle order against one broker and an in-process simulator.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use lambda_http::request::LambdaRequest;
use lambda_http::{Adapter, Context, LambdaEvent};
use osb_sacloud::lambda;
use serde_json::Value;
use tower::{Service, ServiceExt};

use crate::support::Harness;

/// The sample credentials the events carry (documented in docs/deploy.md, "Try the Lambda locally"): never real ones.
pub const SAMPLE_USER: &str = "sample-broker";
pub const SAMPLE_PASSWORD: &str = "sample-password-not-a-secret";

/// What the runtime would post back for one event.
pub struct Answer {
    pub status: u16,
    pub headers: Value,
    pub body: Value,
}

pub fn events_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("events")
}

/// Replay `file` through `lambda_http::Adapter` around `router`.
pub async fn invoke(router: &axum::Router, file: &str, aws_request_id: &str) -> Answer {
    let path = events_dir().join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let request: LambdaRequest = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{file}: not a Lambda HTTP event: {e}"));
    assert!(
        matches!(request, LambdaRequest::ApiGatewayV2(_)),
        "{file} is not a Function URL (HTTP API v2) event"
    );
    let mut context = Context::default();
    context.request_id = aws_request_id.to_owned();
    let mut adapter = Adapter::from(router.clone());
    let response = adapter
        .ready()
        .await
        .expect("router is ready")
        .call(LambdaEvent::new(request, context))
        .await
        .expect("router answers");
    let posted = serde_json::to_value(&response).expect("the response serializes");
    let status = posted["statusCode"]
        .as_u64()
        .unwrap_or_else(|| panic!("{file}: no statusCode in {posted}")) as u16;
    assert_eq!(
        posted["isBase64Encoded"], false,
        "{file}: a JSON answer went out base64-encoded: {posted}"
    );
    let body = match posted["body"].as_str() {
        None | Some("") => Value::Null,
        Some(text) => serde_json::from_str(text)
            .unwrap_or_else(|_| panic!("{file}: non-JSON body ({status}): {text}")),
    };
    Answer {
        status,
        headers: posted["headers"].clone(),
        body,
    }
}

fn assert_status(file: &str, answer: &Answer, status: u16) {
    assert_eq!(answer.status, status, "{file}: {}", answer.body);
}

/// Replays in order, keeping track of which files were replayed.
struct Replay {
    router: axum::Router,
    replayed: BTreeSet<String>,
}

impl Replay {
    /// Replay `file` and check its status.
    async fn run(&mut self, file: &str, status: u16) -> Answer {
        self.replayed.insert(file.to_owned());
        let answer = invoke(&self.router, file, &format!("req-{file}")).await;
        assert_status(file, &answer, status);
        answer
    }

    /// Replay `last-operation.json` until the operation leaves "in progress".
    async fn poll_until_done(&mut self) -> Answer {
        self.replayed.insert("last-operation.json".to_owned());
        poll_until_done(&self.router).await
    }
}

async fn poll_until_done(router: &axum::Router) -> Answer {
    for attempt in 0..400 {
        let answer = invoke(router, "last-operation.json", &format!("poll-{attempt}")).await;
        assert_status("last-operation.json", &answer, 200);
        assert!(
            answer.headers.get("retry-after").is_some(),
            "poll without Retry-After: {}",
            answer.headers
        );
        if answer.body["state"] != "in progress" {
            return answer;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the operation never finished");
}

pub async fn sample_broker() -> Harness {
    Harness::start_with(|env| {
        env.insert("OSB_USERNAME".into(), SAMPLE_USER.into());
        env.insert("OSB_PASSWORD".into(), SAMPLE_PASSWORD.into());
    })
    .await
}

#[tokio::test]
async fn every_event_replays_through_the_lambda_adapter_in_lifecycle_order() {
    let harness = sample_broker().await;
    let mut r = Replay {
        router: lambda::handler(harness.app.router.clone()),
        replayed: BTreeSet::new(),
    };

    let catalog = r.run("catalog.json", 200).await;
    let names: Vec<&str> = catalog.body["services"]
        .as_array()
        .expect("services")
        .iter()
        .filter_map(|s| s["name"].as_str())
        .collect();
    assert!(
        names.contains(&"sacloud-mariadb") && names.contains(&"sacloud-postgres"),
        "{names:?}"
    );
    // The OSB request identity comes back on the Lambda response too.
    assert_eq!(
        catalog.headers["x-broker-api-request-identity"],
        "e26cea2c-0000-4000-8000-000000000001"
    );

    let missing_version = r.run("catalog-missing-version.json", 412).await;
    assert!(
        missing_version.body["description"]
            .as_str()
            .unwrap_or("")
            .contains("X-Broker-API-Version"),
        "{}",
        missing_version.body
    );
    let bad_auth = r.run("catalog-bad-auth.json", 401).await;
    assert!(
        bad_auth.body["description"].is_string(),
        "{}",
        bad_auth.body
    );
    assert!(
        bad_auth.headers.get("www-authenticate").is_some(),
        "401 without WWW-Authenticate: {}",
        bad_auth.headers
    );

    let sync = r
        .run("provision-without-accepts-incomplete.json", 422)
        .await;
    assert_eq!(sync.body["error"], "AsyncRequired", "{}", sync.body);

    let provision = r.run("provision.json", 202).await;
    assert!(
        provision.body["operation"].is_string(),
        "{}",
        provision.body
    );
    let done = r.poll_until_done().await;
    assert_eq!(done.body["state"], "succeeded", "{}", done.body);
    // The same PUT again after success: 200, nothing new.
    r.run("provision.json", 200).await;

    let instance = r.run("get-instance.json", 200).await;
    assert_eq!(
        instance.body["service_id"],
        crate::support::MARIADB,
        "{}",
        instance.body
    );
    assert_eq!(
        instance.body["parameters"]["switchID"], "112233445566",
        "{}",
        instance.body
    );

    let bind = r.run("bind.json", 201).await;
    let credentials = &bind.body["credentials"];
    for key in ["host", "port", "database", "username", "password", "uri"] {
        assert!(
            !credentials[key].is_null(),
            "credentials lack {key}: {credentials}"
        );
    }
    let binding = r.run("get-binding.json", 200).await;
    assert_eq!(&binding.body["credentials"], credentials);
    let unbind = r.run("unbind.json", 200).await;
    assert_eq!(unbind.body, serde_json::json!({}));
    r.run("get-binding.json", 404).await;

    let deprovision = r.run("deprovision.json", 202).await;
    assert!(
        deprovision.body["operation"].is_string(),
        "{}",
        deprovision.body
    );
    let gone = r.poll_until_done().await;
    assert_eq!(gone.body["state"], "succeeded", "{}", gone.body);
    r.run("deprovision.json", 410).await;
    r.run("get-instance.json", 404).await;

    // Every file in events/ was replayed, and nothing here names a file that is not there.
    let on_disk: BTreeSet<String> = std::fs::read_dir(events_dir())
        .expect("events/ exists")
        .map(|e| {
            e.expect("dir entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    let unknown: Vec<_> = on_disk.difference(&r.replayed).collect();
    assert!(
        unknown.is_empty(),
        "events/ has files this test does not replay: {unknown:?}"
    );
    assert_eq!(on_disk, r.replayed);
}
