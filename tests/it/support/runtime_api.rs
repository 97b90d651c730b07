//! A loopback fake of the Lambda Runtime API, the one `lambda_http::run` polls: events the test
//! queues are handed out on `next`, the function's answers come back on `response` or `error`,
//! and an init failure on `init/error`. The first `next` call means init is over.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use serde_json::Value;
use tokio::sync::{Mutex as AsyncMutex, mpsc, oneshot};

/// What the function posted back for one invocation.
#[derive(Debug)]
pub enum Outcome {
    Response(Value),
    Error(String),
}

/// The Runtime API of one function, on a loopback port.
pub struct RuntimeApi {
    addr: SocketAddr,
    function: String,
    events: mpsc::UnboundedSender<(String, Value)>,
    queue: AsyncMutex<mpsc::UnboundedReceiver<(String, Value)>>,
    waiting: Mutex<HashMap<String, oneshot::Sender<Outcome>>>,
    polled: AtomicU64,
    invoked: AtomicU64,
    init_error: Mutex<Option<String>>,
}

impl RuntimeApi {
    /// Serve the Runtime API for a function called `function` (its ARN carries the name).
    pub async fn start(function: &str) -> Arc<RuntimeApi> {
        let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .expect("bind loopback");
        let (events, queue) = mpsc::unbounded_channel();
        let api = Arc::new(RuntimeApi {
            addr: listener.local_addr().unwrap(),
            function: function.to_owned(),
            events,
            queue: AsyncMutex::new(queue),
            waiting: Mutex::new(HashMap::new()),
            polled: AtomicU64::new(0),
            invoked: AtomicU64::new(0),
            init_error: Mutex::new(None),
        });
        let routes = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route(
                "/2018-06-01/runtime/invocation/{id}/response",
                post(response),
            )
            .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .with_state(api.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, routes).await;
        });
        api
    }

    /// For `AWS_LAMBDA_RUNTIME_API`.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// How many times the function has asked for its next invocation.
    pub fn polled(&self) -> u64 {
        self.polled.load(Ordering::SeqCst)
    }

    /// What the function reported when its init failed.
    pub fn init_error(&self) -> Option<String> {
        self.init_error.lock().unwrap().clone()
    }

    /// Hand `event` to the function and wait up to `within` for what it posts back; `None` when
    /// nothing came.
    pub async fn invoke(&self, event: Value, within: Duration) -> Option<Outcome> {
        let n = self.invoked.fetch_add(1, Ordering::SeqCst) + 1;
        let id = format!("req-{n:04}");
        let (tx, rx) = oneshot::channel();
        self.waiting.lock().unwrap().insert(id.clone(), tx);
        self.events.send((id, event)).expect("queue open");
        tokio::time::timeout(within, rx).await.ok()?.ok()
    }
}

async fn next(State(api): State<Arc<RuntimeApi>>) -> impl IntoResponse {
    api.polled.fetch_add(1, Ordering::SeqCst);
    let Some((id, event)) = api.queue.lock().await.recv().await else {
        return (StatusCode::GONE, HeaderMap::new(), String::new());
    };
    let deadline = SystemTime::now().duration_since(UNIX_EPOCH).unwrap() + Duration::from_secs(60);
    let mut headers = HeaderMap::new();
    for (name, value) in [
        ("lambda-runtime-aws-request-id", id.clone()),
        (
            "lambda-runtime-deadline-ms",
            deadline.as_millis().to_string(),
        ),
        (
            "lambda-runtime-invoked-function-arn",
            format!(
                "arn:aws:lambda:us-east-1:123456789012:function:{}",
                api.function
            ),
        ),
        ("lambda-runtime-trace-id", format!("Root=1-00000000-{id}")),
        ("content-type", "application/json".to_owned()),
    ] {
        headers.insert(name, HeaderValue::from_str(&value).unwrap());
    }
    (StatusCode::OK, headers, event.to_string())
}

async fn response(
    State(api): State<Arc<RuntimeApi>>,
    Path(id): Path<String>,
    body: String,
) -> StatusCode {
    let outcome = match serde_json::from_str(&body) {
        Ok(value) => Outcome::Response(value),
        Err(_) => Outcome::Error(format!("a response that is not JSON: {body}")),
    };
    if let Some(tx) = api.waiting.lock().unwrap().remove(&id) {
        let _ = tx.send(outcome);
    }
    StatusCode::ACCEPTED
}

async fn error(
    State(api): State<Arc<RuntimeApi>>,
    Path(id): Path<String>,
    body: String,
) -> StatusCode {
    if let Some(tx) = api.waiting.lock().unwrap().remove(&id) {
        let _ = tx.send(Outcome::Error(body));
    }
    StatusCode::ACCEPTED
}

async fn init_error(State(api): State<Arc<RuntimeApi>>, body: String) -> StatusCode {
    *api.init_error.lock().unwrap() = Some(body);
    StatusCode::ACCEPTED
}
