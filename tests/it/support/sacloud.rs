//! Helpers for the SAKURA Cloud client and simulator tests: a simulator with short timings on
//! loopback, a client pointed at it, a bare HTTP client for wire-level checks, and polling
//! until a condition holds.

use std::future::Future;
use std::time::{Duration, Instant};

use http::Method;
use osb_sacloud::sacloud::simulator::{Faults, RouteFaults, Simulator, SimulatorConfig, Timings};
use osb_sacloud::sacloud::{
    Backup, Client, ClientConfig, CreateDatabase, Database, DatabaseSettings, Engine,
};
use osb_sacloud::secret::Secret;
use serde_json::{Value, json};

pub const ZONE: &str = "tk1v";
pub const TOKEN: &str = "test-token";
pub const SECRET: &str = "test-secret";

/// Phases of tens of milliseconds, so a whole lifecycle takes well under a second, with every
/// awkward window of the real API on at the same scale.
pub fn fast_timings() -> Timings {
    Timings {
        migrating: Duration::from_millis(80),
        boot: Duration::from_millis(80),
        cleaning: Duration::from_millis(50),
        not_found_after_create: Duration::from_millis(120),
        ignore_power_after_boot: Duration::from_millis(100),
        ignore_updates_after_boot: Duration::from_millis(100),
        engine_start: Duration::from_millis(80),
    }
}

/// [`fast_timings`] with the awkward windows off: the API as it would be without them.
pub fn plain_timings() -> Timings {
    Timings {
        not_found_after_create: Duration::ZERO,
        ignore_power_after_boot: Duration::ZERO,
        ignore_updates_after_boot: Duration::ZERO,
        engine_start: Duration::ZERO,
        ..fast_timings()
    }
}

pub fn sim_config(timings: Timings) -> SimulatorConfig {
    SimulatorConfig {
        access_token: TOKEN.into(),
        access_token_secret: SECRET.into(),
        timings,
        seed: 7,
        ..SimulatorConfig::default()
    }
}

pub async fn start_sim(timings: Timings) -> Simulator {
    Simulator::start(sim_config(timings), "127.0.0.1:0".parse().unwrap())
        .await
        .expect("simulator starts")
}

/// A client config for `sim`: no rate limit, 5 ms backoff, 5 retries, 5 s timeout.
pub fn client_config(sim: &Simulator) -> ClientConfig {
    let mut cfg = ClientConfig::new(sim.root_url(), Secret::new(TOKEN), Secret::new(SECRET));
    cfg.rate_limit_per_sec = 0.0;
    cfg.retry_base = Duration::from_millis(5);
    cfg.timeout = Duration::from_secs(5);
    cfg
}

pub fn client_for(sim: &Simulator) -> Client {
    Client::new(client_config(sim)).expect("client")
}

/// A MariaDB create request as the broker would make it.
pub fn create_request(name: &str) -> CreateDatabase {
    CreateDatabase {
        name: name.into(),
        description: "test appliance".into(),
        tags: vec!["@osb-sacloud".into(), format!("osb-instance={name}")],
        plan_id: 10,
        switch_id: "112233445566".into(),
        ip_address: "192.168.0.11".into(),
        network_mask_len: 24,
        default_route: "192.168.0.1".into(),
        engine: Engine::MariaDb,
        database_version: None,
        settings: DatabaseSettings {
            default_user: "appuser".into(),
            user_password: Secret::new("first-Pa55word"),
            port: None,
            source_networks: vec!["192.168.0.0/24".into()],
            backup: Some(Backup {
                rotate: 3,
                time: "01:30".into(),
                day_of_week: vec!["mon".into(), "thu".into()],
            }),
        },
    }
}

/// Poll `probe` every 10 ms until it returns `Some`; panic after 10 s (a hang guard, far above
/// the tens of milliseconds the phases take).
pub async fn wait_for<T, F, Fut>(what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(v) = probe().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Faults on one route only.
pub fn route_faults(route: &str, f: RouteFaults) -> Faults {
    Faults {
        routes: [(route.to_string(), f)].into(),
        ..Faults::default()
    }
}

/// Read the appliance, waiting out the 404s the API answers just after a create (as SAKURA's
/// own client does).
pub async fn wait_read(client: &Client, id: u64) -> Database {
    wait_for("the appliance to be readable", || async {
        match client.read(ZONE, id).await {
            Ok(db) => Some(db),
            Err(e) if e.is_not_found() => None,
            Err(e) => panic!("read: {e}"),
        }
    })
    .await
}

/// Wait until the appliance reads `Instance.Status == status` (a 404 just after the create
/// reads as not yet).
pub async fn wait_instance(client: &Client, id: u64, status: &str) {
    wait_for(&format!("instance {status}"), || async {
        match client.read(ZONE, id).await {
            Ok(db) => (db.instance_status.as_deref() == Some(status)).then_some(()),
            Err(e) if e.is_not_found() => None,
            Err(e) => panic!("read: {e}"),
        }
    })
    .await
}

/// Wait until the appliance is up, its engine runs, and the windows in which a fresh appliance
/// ignores power calls and updates have passed: what SAKURA's own tools wait for before they
/// change anything.
pub async fn wait_settled(sim: &Simulator, client: &Client, id: u64) {
    wait_instance(client, id, "up").await;
    wait_for("the engine running", || async {
        let status = client.status(ZONE, id).await.expect("status");
        status.db_running.then_some(())
    })
    .await;
    let t = sim.timings();
    tokio::time::sleep(t.ignore_power_after_boot.max(t.ignore_updates_after_boot)).await;
}

/// A bare HTTP client for one simulator.
pub struct Raw {
    pub http: crate::support::plain_http::Client,
    pub api: String,
    pub control: String,
}

impl Raw {
    pub fn new(sim: &Simulator) -> Raw {
        Raw {
            http: crate::support::plain_http::Client::new(),
            api: format!("{}/{ZONE}/api/cloud/1.1", sim.root_url()),
            control: format!("http://{}/_simulator", sim.addr()),
        }
    }

    /// A SAKURA API call with auth and `X-Sakura-Bigint-As-Int: 1`.
    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        self.send(method, &format!("{}{path}", self.api), body, true, true)
            .await
    }

    pub async fn send(
        &self,
        method: Method,
        url: &str,
        body: Option<Value>,
        auth: bool,
        bigint: bool,
    ) -> (u16, Value) {
        let mut req = self.http.request(method, url);
        if auth {
            req = req.basic_auth(TOKEN, Some(SECRET));
        }
        if bigint {
            req = req.header("X-Sakura-Bigint-As-Int", "1");
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await.expect("answer");
        let status = resp.status().as_u16();
        let text = resp.text().await.expect("body");
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// Wait until `GET /appliance/{id}` answers (not the 404 just after the create); its body.
    pub async fn wait_visible(&self, id: u64) -> Value {
        let path = format!("/appliance/{id}");
        wait_for("the appliance to be visible", || async {
            let (status, body) = self.call(Method::GET, &path, None).await;
            (status == 200).then_some(body)
        })
        .await
    }

    pub async fn find(&self, query: &str) -> (u16, Value) {
        self.call(Method::GET, &format!("/appliance?{query}"), None)
            .await
    }

    pub async fn control(&self, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        self.send(
            method,
            &format!("{}{path}", self.control),
            body,
            false,
            false,
        )
        .await
    }
}

/// A valid postgres create body.
pub fn create_body(name: &str, tags: &[&str]) -> Value {
    json!({"Appliance": {
        "Class": "database", "Name": name, "Description": "", "Tags": tags,
        "Remark": {
            "Plan": {"ID": "10"}, "Switch": {"ID": "112233445566"},
            "Servers": [{"IPAddress": "192.168.0.11"}],
            "Network": {"NetworkMaskLen": 24, "DefaultRoute": "192.168.0.1"},
            "DBConf": {"Common": {"DatabaseName": "postgres", "DefaultUser": "admin1", "UserPassword": "pw-pw-pw"}}},
        "Settings": {"DBConf": {"Common": {"ServicePort": "5432", "SourceNetwork": "",
            "DefaultUser": "admin1", "UserPassword": "pw-pw-pw"}}}}})
}

/// Create through the raw client; the `Appliance` answered.
pub async fn create(raw: &Raw, name: &str, tags: &[&str]) -> Value {
    let (status, body) = raw
        .call(Method::POST, "/appliance", Some(create_body(name, tags)))
        .await;
    assert_eq!(status, 202, "{body}");
    body["Appliance"].clone()
}

/// The body is the real API's error JSON with this status line and code.
pub fn assert_error(body: &Value, status: &str, code: &str) {
    assert_eq!(body["is_fatal"], true, "{body}");
    assert_eq!(body["status"], status, "{body}");
    assert_eq!(body["error_code"], code, "{body}");
    assert!(
        body["error_msg"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    let serial = body["serial"].as_str().unwrap_or_default();
    assert!(
        serial.len() == 32 && serial.bytes().all(|b| b.is_ascii_hexdigit()),
        "{body}"
    );
}
