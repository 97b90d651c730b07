//! Helpers for the SAKURA Cloud client and simulator tests: a simulator with short timings on
//! loopback, a client pointed at it, and polling until a condition holds.

use std::future::Future;
use std::time::{Duration, Instant};

use osb_sacloud::sacloud::simulator::{Simulator, SimulatorConfig, Timings};
use osb_sacloud::sacloud::{
    Backup, Client, ClientConfig, CreateDatabase, DatabaseSettings, Engine,
};
use osb_sacloud::secret::Secret;

pub const ZONE: &str = "tk1v";
pub const TOKEN: &str = "test-token";
pub const SECRET: &str = "test-secret";

/// Phases of tens of milliseconds, so a whole lifecycle takes well under a second.
pub fn fast_timings() -> Timings {
    Timings {
        migrating: Duration::from_millis(80),
        boot: Duration::from_millis(80),
        cleaning: Duration::from_millis(50),
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
