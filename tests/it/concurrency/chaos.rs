//! Chaos at small scale, as `scripts/chaos.sh` runs it at large: the simulator and the broker run
//! as separate processes of the real binary; the simulator answers 503/423 at random and gets
//! ambiguous creates, and the broker (file store) is SIGKILLed at random moments and restarted
//! on the same data directory while instances are provisioned and deprovisioned over HTTP.
//! Every instance must end deprovisioned, with exactly one appliance created and deleted for
//! each (no duplicate, no orphan).

use std::fs::{File, OpenOptions};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use http::{Method, StatusCode};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::Value;

use crate::support::plain_http::Client;
use crate::support::{MARIADB, MARIADB_10G, PASSWORD, TOKEN, TOKEN_SECRET, USER, provision_body};

const BIN: &str = env!("CARGO_BIN_EXE_osb-sacloud");
const INSTANCES: usize = 6;
const KILLS: usize = 3;
/// 503/423 at random and two ambiguous creates; every call also waits a little, so that kills
/// land while SAKURA calls are in flight.
const FAULTS: &str =
    r#"{"routes":{"*":{"rate_503":0.2,"rate_423":0.05,"latency_ms":20}},"ambiguous_creates":2}"#;
/// Past this the run counts as stuck (the whole test normally takes a few seconds).
const DEADLINE: Duration = Duration::from_secs(45);

/// A child process, SIGKILLed when dropped so a failing test leaves nothing running.
struct Process(Child);

impl Process {
    fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a free loopback port");
    listener.local_addr().expect("bound address").port()
}

fn log_file(path: &Path) -> File {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .expect("log file opens")
}

/// The binary with a clean environment (nothing from the test run leaks in, such as a DynamoDB
/// table or real database servers behind the simulator).
fn command(args: &[&str], log: &Path) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .env_clear()
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log_file(log));
    cmd
}

fn start_simulator(port: u16, seed: u64, dir: &Path) -> Process {
    let mut cmd = command(
        &["simulator", "--listen", &format!("127.0.0.1:{port}")],
        &dir.join("simulator.log"),
    );
    cmd.env("SAKURACLOUD_ACCESS_TOKEN", TOKEN)
        .env("SAKURACLOUD_ACCESS_TOKEN_SECRET", TOKEN_SECRET)
        .env("SIMULATOR_MIGRATING_MS", "1000")
        .env("SIMULATOR_BOOT_MS", "400")
        .env("SIMULATOR_CLEANING_MS", "300")
        // The real API's awkward windows, on at this run's scale.
        .env("SIMULATOR_NOT_FOUND_AFTER_CREATE_MS", "1200")
        .env("SIMULATOR_IGNORE_POWER_AFTER_BOOT_MS", "500")
        .env("SIMULATOR_IGNORE_UPDATES_AFTER_BOOT_MS", "500")
        .env("SIMULATOR_ENGINE_START_MS", "300")
        .env("SIMULATOR_FAULTS", FAULTS)
        .env("SIMULATOR_SEED", seed.to_string());
    Process(cmd.spawn().expect("simulator starts"))
}

fn start_broker(port: u16, sim_port: u16, dir: &Path) -> Process {
    let mut cmd = command(&["serve"], &dir.join("broker.log"));
    cmd.env("OSB_LISTEN", format!("127.0.0.1:{port}"))
        .env("OSB_DATA_DIR", dir.join("data"))
        .env("OSB_USERNAME", USER)
        .env("OSB_PASSWORD", PASSWORD)
        .env("OSB_BINDING_MODE", "shared")
        .env(
            "SAKURACLOUD_API_ROOT_URL",
            format!("http://127.0.0.1:{sim_port}/cloud/zone"),
        )
        .env("SAKURACLOUD_ACCESS_TOKEN", TOKEN)
        .env("SAKURACLOUD_ACCESS_TOKEN_SECRET", TOKEN_SECRET)
        .env("SAKURACLOUD_RATE_LIMIT", "200")
        .env("SAKURACLOUD_RETRY_WAIT_MIN", "0.02")
        .env("OSB_CLAIM_LEASE_SECS", "1")
        .env("OSB_POWER_RESEND_SECS", "0.5")
        .env("OSB_REAPPLY_SECS", "0.5")
        .env("OSB_CREATE_RETRY_SECS", "0.2")
        .env("OSB_CHECK_INTERVAL_SECS", "0.3")
        // 20% of creates answer 503: allow enough attempts that none ends failed by chance.
        .env("OSB_CREATE_ATTEMPTS", "20")
        .env("OSB_RETRY_AFTER_SECS", "1");
    Process(cmd.spawn().expect("broker starts"))
}

/// What happened to one instance, and what its requests met on the way.
#[derive(Debug, Default, Clone)]
struct Outcome {
    provision: String,
    deprovision: String,
    final_delete: u16,
    /// Requests that found no broker (killed or restarting).
    unreachable: u32,
    server_errors: u32,
}

struct Api {
    client: Client,
    base: String,
}

impl Api {
    /// `None` when no broker answered.
    async fn call(&self, method: Method, path: &str, body: Option<&Value>) -> Option<(u16, Value)> {
        let mut req = self
            .client
            .request(method, format!("{}{path}", self.base))
            .basic_auth(USER, Some(PASSWORD))
            .header("X-Broker-API-Version", "2.17");
        if let Some(body) = body {
            req = req.json(body);
        }
        let response = req.send().await.ok()?;
        let status = response.status().as_u16();
        let bytes = response.bytes().await.ok()?;
        Some((
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        ))
    }

    /// Repeat a request until it answers one of `wanted` (returned) or the deadline passes (0).
    async fn until(
        &self,
        out: &mut Outcome,
        wanted: &[u16],
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> u16 {
        let start = Instant::now();
        while start.elapsed() < DEADLINE {
            match self.call(method.clone(), path, body).await {
                None => out.unreachable += 1,
                Some((status, _)) if wanted.contains(&status) => return status,
                Some((status, _)) if status >= 500 => out.server_errors += 1,
                Some(_) => {}
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        0
    }

    /// Poll `last_operation` until it leaves "in progress"; the final state.
    async fn poll(&self, out: &mut Outcome, id: &str) -> String {
        let path = format!("/v2/service_instances/{id}/last_operation");
        let start = Instant::now();
        while start.elapsed() < DEADLINE {
            match self.call(Method::GET, &path, None).await {
                None => out.unreachable += 1,
                Some((200, body)) if body["state"] != "in progress" => {
                    return body["state"].as_str().unwrap_or("?").to_owned();
                }
                Some((status, _)) if status >= 500 => out.server_errors += 1,
                Some(_) => {}
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        "timeout".into()
    }

    async fn lifecycle(&self, id: String) -> Outcome {
        let mut out = Outcome::default();
        let provision = format!("/v2/service_instances/{id}?accepts_incomplete=true");
        let delete = format!("{provision}&service_id={MARIADB}&plan_id={MARIADB_10G}");
        let body = provision_body(MARIADB, MARIADB_10G);
        if self
            .until(
                &mut out,
                &[200, 201, 202],
                Method::PUT,
                &provision,
                Some(&body),
            )
            .await
            != 0
        {
            out.provision = self.poll(&mut out, &id).await;
        }
        if self
            .until(&mut out, &[200, 202, 410], Method::DELETE, &delete, None)
            .await
            != 0
        {
            out.deprovision = self.poll(&mut out, &id).await;
        }
        out.final_delete = self
            .until(&mut out, &[200, 202, 410], Method::DELETE, &delete, None)
            .await;
        out
    }
}

async fn get_json(client: &Client, url: &str) -> Value {
    let response = client.get(url).send().await.expect("simulator answers");
    assert_eq!(response.status(), StatusCode::OK, "{url}");
    response.json().await.expect("JSON")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkilled_brokers_leave_no_duplicate_and_no_orphan_appliance() {
    let dir = tempfile::tempdir().expect("temp dir");
    let seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(1);
    eprintln!("chaos seed {seed}, logs in {}", dir.path().display());
    let mut rng = StdRng::seed_from_u64(seed);
    let (sim_port, broker_port) = (free_port(), free_port());
    let _sim = start_simulator(sim_port, seed, dir.path());
    let mut broker = start_broker(broker_port, sim_port, dir.path());
    let client = Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client");
    let api = std::sync::Arc::new(Api {
        client: client.clone(),
        base: format!("http://127.0.0.1:{broker_port}"),
    });

    let mut tasks = Vec::new();
    for i in 0..INSTANCES {
        let api = api.clone();
        tasks.push(tokio::spawn(async move {
            // Staggered, so the kills land on instances in every step.
            tokio::time::sleep(Duration::from_millis(150 * i as u64)).await;
            api.lifecycle(format!("chaos-{seed}-{i}")).await
        }));
    }
    for kill in 0..KILLS {
        tokio::time::sleep(Duration::from_millis(rng.random_range(150..700))).await;
        assert!(
            tasks.iter().any(|t| !t.is_finished()),
            "kill {kill} would come after every lifecycle ended"
        );
        broker.kill();
        // Down for a moment: some requests find no broker at all.
        tokio::time::sleep(Duration::from_millis(rng.random_range(0..150))).await;
        broker = start_broker(broker_port, sim_port, dir.path());
    }
    let mut outcomes = Vec::new();
    for task in tasks {
        outcomes.push(task.await.expect("lifecycle task"));
    }

    let sim = format!("http://127.0.0.1:{sim_port}/_simulator");
    let counters = get_json(&client, &format!("{sim}/counters")).await;
    let appliances = get_json(&client, &format!("{sim}/appliances")).await;
    let count = |key: &str| counters[key].as_u64().unwrap_or(0);
    let unreachable: u32 = outcomes.iter().map(|o| o.unreachable).sum();
    let server_errors: u32 = outcomes.iter().map(|o| o.server_errors).sum();
    eprintln!(
        "chaos: {INSTANCES} instances, {KILLS} kills, {unreachable} requests found no broker, \
         {server_errors} 5xx, created {}, deleted {}, left {}",
        count("appliances created"),
        count("appliances deleted"),
        appliances.as_array().map_or(0, Vec::len)
    );
    assert_eq!(server_errors, 0, "no answer is a 5xx, kills or not");
    for o in &outcomes {
        assert_eq!(
            (o.provision.as_str(), o.deprovision.as_str(), o.final_delete),
            ("succeeded", "succeeded", 410),
            "{o:?}; counters {counters}"
        );
    }
    assert_eq!(
        count("appliances created"),
        INSTANCES as u64,
        "one appliance per instance, no duplicate: {counters}"
    );
    assert_eq!(
        count("appliances deleted"),
        INSTANCES as u64,
        "every appliance deleted, no orphan: {counters}"
    );
    assert_eq!(appliances, Value::Array(vec![]), "nothing left behind");
}
