//! A broker whose simulator is backed by the real MariaDB and PostgreSQL servers, so bindings hand
//! out logins that work; helpers to drive it through its router and to check the servers.
//!
//! Appliances are provisioned at `127.0.0.1` (maskLen 8, defaultRoute 127.0.0.254) on the real
//! server's port. Every name (instance, binding, admin user) is unique to the run, because other
//! test binaries use the same servers at the same time. [`run`] resets the simulator after the
//! test body, pass or fail, which drops every appliance's admin user, database and binding users.

use std::future::Future;
use std::str::FromStr;
use std::sync::Arc;

use axum::http::{Method, StatusCode};
use osb_sacloud::binder::{AdminAccount, TlsMode};
use osb_sacloud::sacloud::Engine;
use osb_sacloud::store::Key;
use serde_json::{Value, json};
use sqlx::Connection;
use sqlx::mysql::{MySqlConnectOptions, MySqlConnection};
use sqlx::postgres::{PgConnectOptions, PgConnection};

use crate::support::binder::{mariadb_url, postgres_url, unique_name};
use crate::support::*;

/// One engine's catalog entries and the real server behind it.
#[derive(Debug, Clone, Copy)]
pub struct Kind {
    pub engine: Engine,
    pub service: &'static str,
    pub plan: &'static str,
}

pub const MARIADB_KIND: Kind = Kind {
    engine: Engine::MariaDb,
    service: MARIADB,
    plan: MARIADB_10G,
};
pub const POSTGRES_KIND: Kind = Kind {
    engine: Engine::Postgres,
    service: POSTGRES,
    plan: POSTGRES_10G,
};

impl Kind {
    /// The port the real server listens on (from the simulator's backing URL).
    pub fn server_port(self) -> u16 {
        match self.engine {
            Engine::MariaDb => MySqlConnectOptions::from_str(&mariadb_url())
                .expect("SIMULATOR_MARIADB_URL parses")
                .get_port(),
            Engine::Postgres => PgConnectOptions::from_str(&postgres_url())
                .expect("SIMULATOR_POSTGRES_URL parses")
                .get_port(),
        }
    }
}

/// A unique binding id: binding user names derive from it, and the servers are shared.
pub fn binding_id() -> String {
    format!("bd-{}", unique_name())
}

/// A broker with `OSB_BINDING_MODE=default_mode` on a simulator backed by both real servers.
/// A server that cannot be reached fails here (the simulator tries each at start).
pub async fn start(default_mode: &str) -> Arc<Harness> {
    let mut cfg = simulator_config();
    cfg.mariadb_url = Some(mariadb_url());
    cfg.postgres_url = Some(postgres_url());
    let h = Harness::start_custom(cfg, |env| {
        env.insert("OSB_BINDING_MODE".into(), default_mode.into());
    })
    .await;
    Arc::new(h)
}

/// Run `body` on a fresh backed broker, then drop whatever its appliances left on the servers
/// (even when `body` panicked), and re-raise a panic.
pub async fn run<F, Fut>(default_mode: &str, body: F)
where
    F: FnOnce(Arc<Harness>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let h = start(default_mode).await;
    let outcome = tokio::spawn(body(h.clone())).await;
    h.sim.reset().await;
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

pub fn binding_path(id: &str, binding: &str) -> String {
    format!("/v2/service_instances/{id}/service_bindings/{binding}")
}

/// Provision `id` at 127.0.0.1:`port` with the admin user `admin` and wait until it is ready.
pub async fn provision_at(h: &Harness, id: &str, kind: Kind, port: u16, admin: &str) {
    let mut body = provision_body(kind.service, kind.plan);
    body["parameters"] = json!({
        "switchID": "112233445566",
        "ipaddress": "127.0.0.1",
        "maskLen": 8,
        "defaultRoute": "127.0.0.254",
        "port": port,
        "username": admin,
    });
    let (status, _, answer) = h
        .call(
            Method::PUT,
            &format!("/v2/service_instances/{id}?accepts_incomplete=true"),
            Some(body),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "provision {id}: {answer}");
    let last = h.poll(id).await;
    assert_eq!(last["state"], "succeeded", "provision {id}: {last}");
}

/// Provision on the real server's port; returns the admin user's name.
pub async fn provision(h: &Harness, id: &str, kind: Kind) -> String {
    let admin = unique_name();
    provision_at(h, id, kind, kind.server_port(), &admin).await;
    admin
}

/// Deprovision through the API and wait until the appliance is gone.
pub async fn deprovision(h: &Harness, id: &str, kind: Kind) {
    let (status, body) = h.deprovision(id, kind.service, kind.plan).await;
    assert_eq!(status, StatusCode::ACCEPTED, "deprovision {id}: {body}");
    let last = h.poll(id).await;
    assert_eq!(last["state"], "succeeded", "deprovision {id}: {last}");
}

/// `PUT` a binding with `parameters` (none when `Null`).
pub async fn bind(
    h: &Harness,
    id: &str,
    binding: &str,
    kind: Kind,
    parameters: Value,
) -> (StatusCode, Value) {
    let mut body = bind_body(kind.service, kind.plan);
    if !parameters.is_null() {
        body["parameters"] = parameters;
    }
    let (status, _, answer) = h
        .call(Method::PUT, &binding_path(id, binding), Some(body))
        .await;
    (status, answer)
}

/// A dedicated (or broker-default) binding that must succeed; returns its credentials.
pub async fn bind_ok(h: &Harness, id: &str, binding: &str, kind: Kind, parameters: Value) -> Value {
    let (status, body) = bind(h, id, binding, kind, parameters).await;
    assert_eq!(status, StatusCode::CREATED, "bind {binding}: {body}");
    body["credentials"].clone()
}

pub async fn unbind(h: &Harness, id: &str, binding: &str, kind: Kind) -> (StatusCode, Value) {
    let path = format!(
        "{}?service_id={}&plan_id={}",
        binding_path(id, binding),
        kind.service,
        kind.plan
    );
    let (status, _, body) = h.call(Method::DELETE, &path, None).await;
    (status, body)
}

/// The appliance's admin account as SAKURA Cloud (the simulator) reports it now.
pub async fn admin_account(h: &Harness, id: &str, kind: Kind) -> AdminAccount {
    let item = h
        .store
        .get(&Key::instance(id))
        .await
        .expect("store read")
        .expect("instance record");
    let record: Value = serde_json::from_str(&item.data).expect("record is JSON");
    let zone = record["zone"].as_str().expect("zone");
    let appliance = record["appliance_id"].as_u64().expect("appliance id");
    let db = h.app.sakura.read(zone, appliance).await.expect("appliance");
    AdminAccount {
        engine: kind.engine,
        host: db.ip_address.expect("ip address"),
        port: db.settings.port.expect("port"),
        database: db.settings.default_user.clone(),
        username: db.settings.default_user,
        password: db.settings.user_password,
        tls: TlsMode::Disable,
    }
}

/// A session opened from nothing but a credentials `uri`.
pub enum Session {
    My(MySqlConnection),
    Pg(PgConnection),
}

/// Log in with exactly the `uri` string a binding returned.
pub async fn login(uri: &str) -> Result<Session, sqlx::Error> {
    if uri.starts_with("mysql://") {
        Ok(Session::My(MySqlConnection::connect(uri).await?))
    } else {
        Ok(Session::Pg(PgConnection::connect(uri).await?))
    }
}

/// The `uri` of `credentials`, with the database replaced by `database`.
pub fn uri_for_database(credentials: &Value, database: &str) -> String {
    let uri = credentials["uri"].as_str().expect("uri");
    let (base, _) = uri.rsplit_once('/').expect("uri has a path");
    format!("{base}/{database}")
}

impl Session {
    /// Run one statement.
    pub async fn exec(&mut self, sql: &str) -> Result<(), sqlx::Error> {
        match self {
            Session::My(c) => sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
                .execute(c)
                .await
                .map(drop),
            Session::Pg(c) => sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
                .execute(c)
                .await
                .map(drop),
        }
    }

    /// The values of the one-text-column table `table`, sorted.
    pub async fn values(&mut self, table: &str) -> Result<Vec<String>, sqlx::Error> {
        let sql = format!("SELECT v FROM {table} ORDER BY v");
        match self {
            Session::My(c) => {
                sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
                    .fetch_all(c)
                    .await
            }
            Session::Pg(c) => {
                sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
                    .fetch_all(c)
                    .await
            }
        }
    }

    /// Insert `value` into `table` (created if missing) and read the table back.
    pub async fn write(&mut self, table: &str, value: &str) -> Result<Vec<String>, sqlx::Error> {
        self.exec(&format!(
            "CREATE TABLE IF NOT EXISTS {table} (v VARCHAR(64))"
        ))
        .await?;
        self.exec(&format!("INSERT INTO {table} (v) VALUES ('{value}')"))
            .await?;
        self.values(table).await
    }
}

/// Log in with a credentials object's `uri`; panics with the cause when refused.
pub async fn session(credentials: &Value) -> Session {
    let uri = credentials["uri"]
        .as_str()
        .expect("credentials carry a uri");
    login(uri).await.unwrap_or_else(|e| {
        panic!(
            "login as {} refused: {e}",
            credentials["username"].as_str().unwrap_or("?")
        )
    })
}

/// Passwords in `secrets` that appear in any stored item of the instance's partition.
pub async fn plaintext_in_store(h: &Harness, id: &str, secrets: &[&str]) -> Vec<String> {
    let items = h
        .store
        .query(&Key::instance_partition(id))
        .await
        .expect("store query");
    assert!(!items.is_empty(), "the instance {id} has stored items");
    let mut found = Vec::new();
    for item in &items {
        for secret in secrets {
            if item.data.contains(secret) {
                found.push(format!("{} in {}", "a password", item.key.sk));
            }
        }
    }
    found
}

/// The binding items (live or tombstone) stored for an instance.
pub async fn stored_bindings(h: &Harness, id: &str) -> Vec<String> {
    h.store
        .query(&Key::instance_partition(id))
        .await
        .expect("store query")
        .into_iter()
        .filter(|i| i.key.sk.starts_with("binding#"))
        .map(|i| i.key.sk)
        .collect()
}

/// `credentials[field]` as text.
pub fn text(credentials: &Value, field: &str) -> String {
    credentials[field]
        .as_str()
        .unwrap_or_else(|| panic!("credentials lack {field}: {credentials}"))
        .to_owned()
}
