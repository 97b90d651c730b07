//! Several broker processes (the real `osb-sacloud` binary) sharing one DynamoDB table on moto and
//! one SAKURA Cloud simulator running in the test process, as Lambda instances share a table.
//!
//! Each process listens on its own loopback port and logs JSON to a file of its own, with the
//! per-request store call counters (target `osb_sacloud::api::middleware`, debug) switched on, so
//! tests can read what each request cost. Dropping a [`Cluster`] kills its processes (also when a
//! test panics); a watchdog kills them if the test process dies without unwinding.

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use http::{Method, StatusCode};
use osb_sacloud::sacloud::simulator::{Simulator, SimulatorConfig};
use osb_sacloud::store::dynamodb::DynamoStore;
use osb_sacloud::store::{Key, Store};
use serde_json::Value;
use tempfile::NamedTempFile;

use crate::support::moto;
use crate::support::{PASSWORD, USER, broker_env, simulator_config};

const BINARY: &str = env!("CARGO_BIN_EXE_osb-sacloud");

/// One broker process; dropping it kills the process.
pub struct BrokerProc {
    child: Child,
    watchdog: Child,
    base: String,
    log: NamedTempFile,
}

impl BrokerProc {
    /// Start the binary with exactly `env` (plus a listen address) and wait until it answers.
    fn start(env: &HashMap<String, String>) -> BrokerProc {
        let mut last_failure = String::new();
        // A port found free can be taken before the broker binds it; try a few.
        for _ in 0..3 {
            match BrokerProc::try_start(env) {
                Ok(p) => return p,
                Err(why) => last_failure = why,
            }
        }
        panic!("broker process did not start: {last_failure}");
    }

    fn try_start(env: &HashMap<String, String>) -> Result<BrokerProc, String> {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .map_err(|e| format!("no free port: {e}"))?;
        let log = NamedTempFile::new().map_err(|e| format!("log file: {e}"))?;
        let stderr = log.reopen().map_err(|e| format!("log file: {e}"))?;
        let mut child = Command::new(BINARY)
            .arg("serve")
            .env_clear()
            .envs(env)
            .env("OSB_LISTEN", format!("127.0.0.1:{port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(stderr))
            .spawn()
            .map_err(|e| format!("spawn {BINARY}: {e}"))?;
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let deadline = Instant::now() + Duration::from_secs(20);
        while !healthy(addr) {
            if let Ok(Some(status)) = child.try_wait() {
                let out = std::fs::read_to_string(log.path()).unwrap_or_default();
                return Err(format!("broker exited ({status}): {out}"));
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err("broker not healthy after 20 s".into());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let watchdog = Command::new("sh")
            .args(["-c", "read -r _; kill \"$1\" 2>/dev/null", "sh"])
            .arg(child.id().to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        match watchdog {
            Ok(watchdog) => Ok(BrokerProc {
                child,
                watchdog,
                base: format!("http://{addr}"),
                log,
            }),
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                Err(format!("spawn watchdog: {e}"))
            }
        }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The store calls of every OSB request this process has served so far, oldest first.
    pub fn request_costs(&self) -> Vec<RequestCost> {
        let text = std::fs::read_to_string(self.log.path()).unwrap_or_default();
        text.lines()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .filter(|v| v["fields"]["message"] == "store calls")
            .map(|v| {
                let f = &v["fields"];
                let n = |k: &str| f[k].as_u64().unwrap_or(u64::MAX);
                RequestCost {
                    method: f["method"].as_str().unwrap_or("").to_owned(),
                    path: f["path"].as_str().unwrap_or("").to_owned(),
                    reads: n("store_reads"),
                    queries: n("store_queries"),
                    writes: n("store_writes"),
                }
            })
            .collect()
    }
}

impl Drop for BrokerProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = self.watchdog.kill();
        let _ = self.watchdog.wait();
    }
}

/// Whether `GET /healthz` answers 200 (plain blocking HTTP/1.0, before any runtime work).
fn healthy(addr: SocketAddr) -> bool {
    use std::io::{Read, Write};
    let Ok(mut conn) = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1)) else {
        return false;
    };
    let _ = conn.set_read_timeout(Some(Duration::from_secs(2)));
    if conn
        .write_all(b"GET /healthz HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut head = [0u8; 12];
    conn.read_exact(&mut head).is_ok() && &head[9..12] == b"200"
}

/// What one OSB request cost in store calls, from a broker's debug log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestCost {
    pub method: String,
    pub path: String,
    pub reads: u64,
    pub queries: u64,
    pub writes: u64,
}

/// An answer: status and JSON body (`Null` when empty).
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: StatusCode,
    pub body: Value,
}

/// Brokers on one table and one simulator.
pub struct Cluster {
    pub sim: Simulator,
    pub table: String,
    procs: Vec<BrokerProc>,
    next: AtomicUsize,
    http: crate::support::plain_http::Client,
}

impl Cluster {
    /// `n` brokers in shared binding mode on a new table, with the environment adjusted by `tweak`.
    pub async fn start(
        test: &str,
        n: usize,
        tweak: impl FnOnce(&mut HashMap<String, String>),
    ) -> Arc<Cluster> {
        Self::start_custom(test, n, simulator_config(), tweak).await
    }

    /// Like [`Cluster::start`], with a simulator of its own configuration.
    pub async fn start_custom(
        test: &str,
        n: usize,
        sim_config: SimulatorConfig,
        tweak: impl FnOnce(&mut HashMap<String, String>),
    ) -> Arc<Cluster> {
        Self::start_each(test, n, sim_config, tweak, |_, _| {}).await
    }

    /// Like [`Cluster::start_custom`], and broker `i` gets its environment adjusted by
    /// `tweak_one(i, ..)` too (e.g. a DynamoDB endpoint of its own).
    pub async fn start_each(
        test: &str,
        n: usize,
        sim_config: SimulatorConfig,
        tweak: impl FnOnce(&mut HashMap<String, String>),
        tweak_one: impl Fn(usize, &mut HashMap<String, String>) + Send + 'static,
    ) -> Arc<Cluster> {
        let sim = Simulator::start(sim_config, SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .expect("simulator starts");
        let table = moto::table_name(test);
        let mut env = broker_env(&sim);
        env.extend(
            [
                ("OSB_TABLE", table.as_str()),
                ("DYNAMODB_ENDPOINT", moto::endpoint()),
                ("AWS_ACCESS_KEY_ID", "test"),
                ("AWS_SECRET_ACCESS_KEY", "test"),
                ("AWS_REGION", "us-east-1"),
                ("AWS_EC2_METADATA_DISABLED", "true"),
                ("OSB_LOG_FORMAT", "json"),
                ("RUST_LOG", "info,osb_sacloud::api::middleware=debug"),
            ]
            .map(|(k, v)| (k.to_owned(), v.to_owned())),
        );
        if let Some(path) = std::env::var_os("PATH") {
            env.insert("PATH".into(), path.to_string_lossy().into_owned());
        }
        tweak(&mut env);
        let env = Arc::new(env);
        let create_env = env.clone();
        tokio::task::spawn_blocking(move || create_table(&create_env))
            .await
            .expect("create-table task");
        let procs = tokio::task::spawn_blocking(move || {
            (0..n)
                .map(|i| {
                    let mut own = (*env).clone();
                    tweak_one(i, &mut own);
                    BrokerProc::start(&own)
                })
                .collect::<Vec<_>>()
        })
        .await
        .expect("brokers start");
        let http = crate::support::plain_http::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("http client");
        Arc::new(Cluster {
            sim,
            table,
            procs,
            next: AtomicUsize::new(0),
            http,
        })
    }

    /// A store on the cluster's table (uncounted), to look at records directly.
    pub fn store(&self) -> DynamoStore {
        DynamoStore::new(moto::client().0, self.table.clone())
    }

    /// The stored JSON of a live item (expired tombstones read as absent), its version and expiry.
    pub async fn raw_item(&self, key: &Key) -> Option<(Value, u64, Option<i64>)> {
        let item = self.store().get(key).await.expect("store read")?;
        let data = serde_json::from_str(&item.data).expect("record is JSON");
        Some((data, item.version, item.expires_at))
    }

    /// Send a request as a 2.17 platform to broker `i`.
    pub async fn call_on(
        &self,
        i: usize,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Reply {
        let url = format!("{}{path}", self.procs[i % self.procs.len()].base());
        let mut req = self
            .http
            .request(method, url)
            .header("X-Broker-API-Version", "2.17")
            .basic_auth(USER, Some(PASSWORD));
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await.expect("broker answers");
        let status = resp.status();
        let bytes = resp.bytes().await.expect("body");
        let body = crate::support::json_body(status, &bytes);
        Reply { status, body }
    }

    /// Send to the next broker in turn.
    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Reply {
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        self.call_on(i, method, path, body).await
    }

    /// Poll `last_operation` round-robin until it leaves "in progress"; returns the final body.
    pub async fn poll(&self, id: &str) -> Value {
        let path = format!("/v2/service_instances/{id}/last_operation");
        for _ in 0..1000 {
            let r = self.call(Method::GET, &path, None).await;
            assert_eq!(r.status, StatusCode::OK, "poll {id}: {}", r.body);
            if r.body["state"] != "in progress" {
                return r.body;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("operation on {id} never finished");
    }

    /// Every request cost logged by every broker so far.
    pub fn request_costs(&self) -> Vec<RequestCost> {
        self.procs.iter().flat_map(|p| p.request_costs()).collect()
    }
}

/// `osb-sacloud create-table` with the cluster's environment.
fn create_table(env: &HashMap<String, String>) {
    let out = Command::new(BINARY)
        .arg("create-table")
        .env_clear()
        .envs(env)
        .stdin(Stdio::null())
        .output()
        .expect("run create-table");
    assert!(
        out.status.success(),
        "create-table failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Start `n` copies of `task(i)` at the same moment and collect their results in order.
pub async fn all_at_once<T, F, Fut>(n: usize, task: F) -> Vec<T>
where
    T: Send + 'static,
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = T> + Send + 'static,
{
    let barrier = Arc::new(tokio::sync::Barrier::new(n));
    let handles: Vec<_> = (0..n)
        .map(|i| {
            let barrier = barrier.clone();
            let fut = task(i);
            tokio::spawn(async move {
                barrier.wait().await;
                fut.await
            })
        })
        .collect();
    let mut out = Vec::with_capacity(n);
    for h in handles {
        out.push(h.await.expect("task did not panic"));
    }
    out
}
