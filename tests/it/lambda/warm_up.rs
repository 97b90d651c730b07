//! The Lambda cold start opens the DynamoDB and SAKURA Cloud connections before the first
//! invocation. The built binary runs in Lambda mode against a loopback Runtime API that hands
//! out nothing until the test says so; DynamoDB (moto) and the SAKURA simulator sit behind
//! loopback proxies that count the connections they accept and record the DynamoDB operations
//! sent through them. So what init did is seen from outside the process, as Lambda's neighbours
//! would see it.

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::support::moto;
use crate::support::runtime_api::{Outcome, RuntimeApi};
use crate::support::simulator_config;
use osb_sacloud::sacloud::simulator::Simulator;

/// The sample broker credentials the files in `events/` carry.
const USER: &str = "sample-broker";
const PASSWORD: &str = "sample-password-not-a-secret";

/// A loopback TCP proxy to `upstream` that counts the connections it accepts and keeps the
/// `x-amz-target` operations of the requests sent through it.
struct Proxy {
    addr: SocketAddr,
    connections: Arc<AtomicUsize>,
    operations: Arc<Mutex<Vec<String>>>,
}

impl Proxy {
    async fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let connections = Arc::new(AtomicUsize::new(0));
        let operations = Arc::new(Mutex::new(Vec::new()));
        let (count, ops) = (connections.clone(), operations.clone());
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                let ops = ops.clone();
                tokio::spawn(async move {
                    if let Ok(server) = TcpStream::connect(upstream).await {
                        relay(client, server, ops).await;
                    }
                });
            }
        });
        Proxy {
            addr,
            connections,
            operations,
        }
    }

    fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    fn operations(&self) -> Vec<String> {
        self.operations.lock().unwrap().clone()
    }
}

/// Copy both ways until either side closes; note every `x-amz-target` the client sends.
async fn relay(client: TcpStream, server: TcpStream, ops: Arc<Mutex<Vec<String>>>) {
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let upstream = async {
        let mut buf = vec![0u8; 16 * 1024];
        let mut seen = String::new();
        loop {
            let n = match client_read.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            seen.push_str(&String::from_utf8_lossy(&buf[..n]).to_ascii_lowercase());
            while let Some(at) = seen.find("x-amz-target:") {
                let rest = &seen[at + "x-amz-target:".len()..];
                let Some(end) = rest.find("\r\n") else { break };
                let target = rest[..end].trim();
                let op = target.rsplit('.').next().unwrap_or(target).to_owned();
                ops.lock().unwrap().push(op);
                seen = rest[end..].to_owned();
            }
            if seen.len() > 64 * 1024 {
                seen.drain(..seen.len() - 1024);
            }
            if server_write.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
        let _ = server_write.shutdown().await;
    };
    let downstream = async {
        let _ = tokio::io::copy(&mut server_read, &mut client_write).await;
        let _ = client_write.shutdown().await;
    };
    tokio::join!(upstream, downstream);
}

/// The broker binary in Lambda mode, on moto and the simulator, each behind a proxy.
struct Function {
    api: Arc<RuntimeApi>,
    child: Child,
    log: tempfile::NamedTempFile,
    sim: Simulator,
    dynamodb: Proxy,
    sakura: Proxy,
}

impl Function {
    async fn start(warm_up: bool) -> Function {
        let sim_config = simulator_config();
        let token = sim_config.access_token.clone();
        let token_secret = sim_config.access_token_secret.clone();
        let sim = Simulator::start(sim_config, SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .expect("simulator starts");
        let moto_addr: SocketAddr = moto::endpoint()
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .parse()
            .expect("the DynamoDB endpoint is http://IP:PORT");
        let (dynamodb, sakura) = (
            Proxy::start(moto_addr).await,
            Proxy::start(sim.addr()).await,
        );
        let (store, _) = moto::store("warm-up").await;

        let api = RuntimeApi::start("osb-warm-up").await;

        let log = tempfile::NamedTempFile::new().expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_osb-sacloud"))
            .env_clear()
            .envs([
                ("AWS_LAMBDA_RUNTIME_API", api.addr().to_string()),
                ("AWS_LAMBDA_FUNCTION_NAME", "osb-warm-up".to_owned()),
                ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128".to_owned()),
                ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".to_owned()),
                ("AWS_REGION", "us-east-1".to_owned()),
                ("AWS_ACCESS_KEY_ID", "test".to_owned()),
                ("AWS_SECRET_ACCESS_KEY", "test".to_owned()),
                ("AWS_EC2_METADATA_DISABLED", "true".to_owned()),
                ("RUST_LOG", "info".to_owned()),
                ("OSB_TABLE", store.table().to_owned()),
                ("DYNAMODB_ENDPOINT", format!("http://{}", dynamodb.addr)),
                (
                    "SAKURACLOUD_API_ROOT_URL",
                    format!("http://{}/cloud/zone", sakura.addr),
                ),
                ("SAKURACLOUD_ACCESS_TOKEN", token),
                ("SAKURACLOUD_ACCESS_TOKEN_SECRET", token_secret),
                // No shared budget and no early answer: on a loaded machine moto may take
                // longer than a budget slot or the answer bound, and then a SAKURA call is
                // (rightly) left for later, which is not what these tests look at.
                ("SAKURACLOUD_RATE_LIMIT", "0".to_owned()),
                ("OSB_ANSWER_WITHIN_SECS", "30".to_owned()),
                ("OSB_USERNAME", USER.to_owned()),
                ("OSB_PASSWORD", PASSWORD.to_owned()),
                ("OSB_BINDING_MODE", "shared".to_owned()),
                ("OSB_WARM_UP", if warm_up { "1" } else { "0" }.to_owned()),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log.reopen().expect("log file")))
            .spawn()
            .expect("the broker binary starts");
        let f = Function {
            api,
            child,
            log,
            sim,
            dynamodb,
            sakura,
        };
        f.wait_for_init().await;
        f
    }

    /// Until the function asks the Runtime API for its first invocation: init is over.
    async fn wait_for_init(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.api.polled() == 0 {
            assert!(
                Instant::now() < deadline,
                "init did not finish within 20 s (init error: {:?}); log:\n{}",
                self.api.init_error(),
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Hand out one event from `events/` and wait for the function's answer.
    async fn invoke(&self, file: &str) -> Value {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(file);
        let event: Value =
            serde_json::from_str(&std::fs::read_to_string(&path).expect("event file"))
                .expect("event JSON");
        match self.api.invoke(event, Duration::from_secs(30)).await {
            Some(Outcome::Response(answer)) => answer,
            other => panic!("no answer to {file} ({other:?}); log:\n{}", self.log()),
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.log.path()).unwrap_or_default()
    }
}

impl Drop for Function {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_opens_both_connections_before_the_first_invocation() {
    let f = Function::start(true).await;
    // Init is over and nothing has been invoked: what moto and the simulator saw is init's.
    let ops = f.dynamodb.operations();
    assert!(
        ops.iter().any(|op| op == "getitem"),
        "a GetItem warmed up DynamoDB during init: {ops:?}; log:\n{}",
        f.log()
    );
    assert_eq!(
        f.sim.count("GET /appliance"),
        1,
        "one find opened the SAKURA connection during init: {:?}",
        f.sim.counters()
    );
    assert_eq!(
        f.sim.counters().values().sum::<u64>(),
        1,
        "and nothing else reached SAKURA"
    );
    assert_eq!(f.sakura.connections(), 1);
    assert!(
        f.log().contains("connections warmed up"),
        "init says so: {}",
        f.log()
    );

    // The first invocation's SAKURA calls go over the connection init opened.
    let answer = f.invoke("events/provision.json").await;
    assert_eq!(answer["statusCode"], 202, "{answer}");
    assert_eq!(f.sim.count("POST /appliance"), 1, "{:?}", f.sim.counters());
    assert_eq!(
        f.sakura.connections(),
        1,
        "the first request reused the connection opened during init"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_warm_up_init_calls_nobody() {
    let f = Function::start(false).await;
    assert_eq!(f.dynamodb.operations(), Vec::<String>::new());
    assert_eq!(f.dynamodb.connections(), 0);
    assert_eq!(f.sakura.connections(), 0);
    assert!(f.sim.counters().is_empty(), "{:?}", f.sim.counters());
    let answer = f.invoke("events/provision.json").await;
    assert_eq!(answer["statusCode"], 202, "{answer}");
    assert_eq!(f.sakura.connections(), 1, "the first request connects");
}
