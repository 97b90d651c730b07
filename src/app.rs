//! Assembly: from a [`Config`] to a running broker's parts (store, SAKURA client, simulator in
//! fake mode, keyring, router). Used by `main` and by the tests alike.

use std::sync::Arc;

use axum::Router;

use crate::api::middleware::BasicAuth;
use crate::binder::Mode;
use crate::binder::crypto::Keyring;
use crate::broker::Broker;
use crate::budget::{Gate, SharedBudget};
use crate::catalog::Catalog;
use crate::config::{Config, StoreChoice};
#[cfg(feature = "simulator")]
use crate::sacloud::simulator::Simulator;
use crate::sacloud::{Client, ClientConfig};
use crate::secret::Secret;
use crate::store::Store;
use crate::store::counting::{Counters, CountingStore};
use crate::store::dynamodb::DynamoStore;
use crate::store::file::FileStore;
use crate::store::memory::MemoryStore;

/// How long a SAKURA request may wait for the next slot of a used-up budget.
const BUDGET_WAIT: std::time::Duration = std::time::Duration::from_millis(250);

/// The longest [`App::warm_up`] waits for its connections: well inside Lambda's 10 s init, and
/// past a TLS handshake on the smallest Lambda size.
const WARM_UP_WITHIN: std::time::Duration = std::time::Duration::from_secs(2);

/// A built broker and what came up with it.
pub struct App {
    pub router: Router,
    pub broker: Arc<Broker>,
    pub sakura: Client,
    /// The store, as the broker uses it (its calls counted).
    pub store: Arc<dyn Store>,
    /// Store calls over the life of the process.
    pub store_calls: Arc<Counters>,
    /// The in-process simulator (fake mode only).
    #[cfg(feature = "simulator")]
    pub simulator: Option<Simulator>,
    /// The broker's basic-auth credentials (generated in fake mode when not configured).
    pub username: String,
    pub password: Secret,
    /// Whether the password was generated (so `serve` prints it once).
    pub generated_password: bool,
    /// Whether the encryption key was generated (fake mode without OSB_ENCRYPTION_KEYS).
    pub ephemeral_key: bool,
}

/// Why the broker could not start. Messages name what to fix.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The store named by the configuration did not open.
    #[error(transparent)]
    Store(#[from] crate::store::Error),
    /// Fake mode in a build without the simulator (the Lambda build).
    #[cfg(not(feature = "simulator"))]
    #[error(
        "SAKURACLOUD_FAKE_MODE needs the SAKURA Cloud simulator, which this build leaves out (built without the `simulator` feature)"
    )]
    NoSimulator,
    /// The in-process simulator of fake mode did not start.
    #[cfg(feature = "simulator")]
    #[error("the SAKURA Cloud simulator could not start: {0}")]
    Simulator(#[source] std::io::Error),
    /// The SAKURA Cloud client refused its configuration (the API root URL).
    #[error("SAKURA Cloud client: {0}")]
    Client(#[source] crate::sacloud::Error),
    /// `OSB_ENCRYPTION_KEYS` is set but is not a list of keys.
    #[error("OSB_ENCRYPTION_KEYS: {0}")]
    EncryptionKeys(#[source] crate::binder::Error),
    /// Dedicated bindings by default, and no key to seal their passwords with.
    #[error(
        "dedicated bindings (OSB_BINDING_MODE=dedicated, the default) need OSB_ENCRYPTION_KEYS: comma-separated base64 32-byte keys, newest first (e.g. `openssl rand -base64 32`); or set OSB_BINDING_MODE=shared"
    )]
    NoEncryptionKeys,
}

/// Open the store the config names.
pub async fn open_store(choice: &StoreChoice) -> Result<Arc<dyn Store>, StartError> {
    Ok(match choice {
        StoreChoice::Memory => Arc::new(MemoryStore::new()),
        StoreChoice::File(path) => Arc::new(FileStore::open(path)?),
        StoreChoice::DynamoDb { table, endpoint } => {
            Arc::new(DynamoStore::from_env(table.clone(), endpoint.clone()).await)
        }
    })
}

/// Build everything from `config`. In fake mode the simulator starts on a loopback port and the
/// real client is pointed at it.
pub async fn build(config: &Config) -> Result<App, StartError> {
    let store = open_store(&config.store).await?;
    build_with_store(config, store).await
}

/// Like [`build`], with a store supplied by the caller (tests share one between brokers).
pub async fn build_with_store(config: &Config, store: Arc<dyn Store>) -> Result<App, StartError> {
    #[cfg(feature = "simulator")]
    let (simulator, root_url) = if config.fake_mode {
        let sim = start_simulator(config).await?;
        let root = sim.root_url();
        (Some(sim), root)
    } else {
        (None, config.api_root_url.clone())
    };
    #[cfg(not(feature = "simulator"))]
    let root_url = if config.fake_mode {
        return Err(StartError::NoSimulator);
    } else {
        config.api_root_url.clone()
    };
    // The SAKURA budget is the deployment's: counted in the store all processes share.
    let counting = Arc::new(CountingStore::new(store));
    let store_calls = counting.totals();
    let budget = SharedBudget::new(counting.clone(), config.rate_limit, BUDGET_WAIT);
    let mut client_config = ClientConfig::new(
        root_url,
        config.access_token.clone(),
        config.access_token_secret.clone(),
    );
    // With a budget, no request waits in the process: one the budget holds back is not sent,
    // and the broker answers from its records.
    client_config.rate_limit_per_sec = if budget.is_some() {
        0.0
    } else {
        config.rate_limit
    };
    client_config.gate = budget.map(|b| Arc::new(b) as Arc<dyn Gate>);
    client_config.max_retries = config.retry_max;
    client_config.retry_base =
        std::time::Duration::from_secs_f64(config.retry_wait_min.clamp(0.0, 60.0));
    let sakura = Client::new(client_config).map_err(StartError::Client)?;

    let (keyring, ephemeral_key) = match &config.encryption_keys {
        Some(keys) => (
            Some(Keyring::from_config(keys.expose()).map_err(StartError::EncryptionKeys)?),
            false,
        ),
        None if config.fake_mode => (Some(Keyring::ephemeral()), true),
        None if config.settings.default_binding_mode == Mode::Dedicated => {
            return Err(StartError::NoEncryptionKeys);
        }
        None => (None, false),
    };

    let catalog = Arc::new(Catalog::with_pools(
        config.zones.clone(),
        config.zone.clone(),
        config.settings.networks.is_some(),
    ));
    let broker = Arc::new(Broker::new(
        counting.clone(),
        sakura.clone(),
        catalog,
        keyring,
        config.settings.clone(),
    ));

    let (password, generated_password) = match &config.broker_password {
        Some(p) => (p.clone(), false),
        None => (Secret::new(crate::broker::random_password()), true),
    };
    let auth = BasicAuth::new(&config.broker_username, &password);
    let router = crate::api::router(broker.clone(), auth);
    Ok(App {
        router,
        broker,
        sakura,
        store: counting,
        store_calls,
        #[cfg(feature = "simulator")]
        simulator,
        username: config.broker_username.clone(),
        password,
        generated_password,
        ephemeral_key,
    })
}

impl App {
    /// Open the connections the first request will use, both at once: the store's (one
    /// `GetItem` on DynamoDB; nothing for a store in this process) and, when `sakura`, SAKURA
    /// Cloud's (one find in `zone`, counted against the budget). A Lambda calls this during its
    /// cold start, so its first invocation does not pay for the DNS lookup, the TCP connect and
    /// the TLS handshake. Failures and timeouts are logged, never fatal: the first request then
    /// connects as it would have.
    pub async fn warm_up(&self, zone: &str, sakura: bool) {
        let store = timed(WARM_UP_WITHIN, self.store.warm_up());
        let sakura = async {
            if sakura {
                Some(timed(WARM_UP_WITHIN, self.sakura.warm_up(zone)).await)
            } else {
                None
            }
        };
        let ((store_ms, store), sakura) = tokio::join!(store, sakura);
        if let Err(e) = &store {
            tracing::warn!(error = %e, "warming up the store connection failed; the first request will connect");
        }
        if let Some((_, Err(e))) = &sakura {
            tracing::warn!(error = %e, "warming up the SAKURA Cloud connection failed; the first request will connect");
        }
        tracing::info!(
            store = self.store.kind(),
            store_ms,
            store_ok = store.is_ok(),
            sakura_ms = sakura.as_ref().map(|(ms, _)| *ms),
            sakura_ok = sakura.as_ref().map(|(_, r)| r.is_ok()),
            "connections warmed up"
        );
    }
}

/// `fut` within `limit`, and how long it took in milliseconds; a timeout is an error.
async fn timed<T, E: std::fmt::Display>(
    limit: std::time::Duration,
    fut: impl std::future::Future<Output = Result<T, E>>,
) -> (u64, Result<T, String>) {
    let started = std::time::Instant::now();
    let result = match tokio::time::timeout(limit, fut).await {
        Ok(r) => r.map_err(|e| e.to_string()),
        Err(_) => Err(format!("no answer within {limit:?}")),
    };
    (started.elapsed().as_millis() as u64, result)
}

/// Fake mode: the simulator on a loopback port, accepting the configured token.
#[cfg(feature = "simulator")]
async fn start_simulator(config: &Config) -> Result<Simulator, StartError> {
    use crate::sacloud::simulator::SimulatorConfig;
    let mut sim_config = SimulatorConfig::from_env();
    sim_config.access_token = config.access_token.expose().to_owned();
    sim_config.access_token_secret = config.access_token_secret.expose().to_owned();
    Simulator::start(sim_config, std::net::SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .map_err(StartError::Simulator)
}
