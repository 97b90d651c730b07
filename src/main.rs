//! `osb-sacloud`: on AWS Lambda (when `AWS_LAMBDA_RUNTIME_API` is set) the router is handed to
//! `lambda_http`; otherwise the subcommand runs (`serve` by default).

use std::process::ExitCode;
use std::time::Instant;

use clap::{Parser, Subcommand, ValueEnum};
use osb_sacloud::app;
use osb_sacloud::config::{Config, StoreChoice};
#[cfg(feature = "simulator")]
use osb_sacloud::sacloud::simulator::{SimulatorConfig, serve_standalone};
use osb_sacloud::{lambda, logging};

#[derive(Parser)]
#[command(
    name = "osb-sacloud",
    version,
    about = "Open Service Broker for SAKURA Cloud database appliances"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Clone, Copy, ValueEnum)]
enum StoreArg {
    Memory,
    File,
    Dynamodb,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the OSB API on OSB_LISTEN (default 127.0.0.1:8080).
    Serve {
        /// Override the store chosen from the environment (memory is for tests).
        #[arg(long, value_enum)]
        store: Option<StoreArg>,
    },
    /// Run the SAKURA Cloud API simulator alone.
    #[cfg(feature = "simulator")]
    Simulator {
        #[arg(long, default_value = "127.0.0.1:8081")]
        listen: std::net::SocketAddr,
    },
    /// Create the DynamoDB table named by OSB_TABLE (PAY_PER_REQUEST, TTL on expires_at).
    CreateTable,
    /// Adopt the appliance the 2018 open-service-broker-sacloud made for a service instance: the
    /// appliance named exactly INSTANCE_ID and tagged @open-service-broker-sacloud. Writes the
    /// instance's record in the configured store, with the parameters read back from the
    /// appliance, and adds the owner tags and description to it.
    Adopt {
        /// The platform's service instance id (the 2018 broker named the appliance after it).
        instance_id: String,
        /// The zone the appliance is in (default: SAKURACLOUD_ZONE).
        #[arg(long)]
        zone: Option<String>,
    },
}

/// The Lambda cold start: init once, then hand the router to the runtime.
async fn lambda_main(started: Instant) -> Result<(), String> {
    let app = lambda::init(|k| std::env::var(k).ok())
        .await
        .map_err(|e| e.to_string())?;
    lambda::run(app, started)
        .await
        .map_err(|e| format!("Lambda runtime: {e}"))
}

#[tokio::main]
async fn main() -> ExitCode {
    let started = Instant::now();
    if lambda::is_lambda(|k| std::env::var(k).ok()) {
        logging::init_lambda();
        return match lambda_main(started).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(message) => {
                tracing::error!(error = %message, "cold start failed");
                ExitCode::FAILURE
            }
        };
    }
    let cli = Cli::parse();
    // Read here, not with the configuration, so that configuration errors are logged in it.
    let json_logs = std::env::var("OSB_LOG_FORMAT").is_ok_and(|v| v == "json");
    logging::init_local(json_logs);
    let result = match cli.command.unwrap_or(Command::Serve { store: None }) {
        Command::Serve { store } => serve(store).await,
        #[cfg(feature = "simulator")]
        Command::Simulator { listen } => serve_standalone(SimulatorConfig::from_env(), listen)
            .await
            .map_err(|e| e.to_string()),
        Command::CreateTable => create_table().await,
        Command::Adopt { instance_id, zone } => adopt(&instance_id, zone).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("osb-sacloud: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(store: Option<StoreArg>) -> Result<(), String> {
    let mut config = Config::from_env().map_err(|e| e.to_string())?;
    match store {
        Some(StoreArg::Memory) => config.store = StoreChoice::Memory,
        Some(StoreArg::File) if !matches!(config.store, StoreChoice::File(_)) => {
            config.store = StoreChoice::File("./data/osb-sacloud.redb".into());
        }
        Some(StoreArg::Dynamodb) if !matches!(config.store, StoreChoice::DynamoDb { .. }) => {
            return Err(
                "--store dynamodb needs OSB_TABLE (and DYNAMODB_ENDPOINT for an emulator)".into(),
            );
        }
        _ => {}
    }
    let app = app::build(&config).await.map_err(|e| e.to_string())?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", config.listen))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    #[cfg(feature = "simulator")]
    if let Some(sim) = &app.simulator {
        tracing::info!(simulator = %sim.root_url(), "fake mode: SAKURA Cloud simulator running in-process");
    }
    if app.ephemeral_key {
        tracing::warn!(
            "fake mode: no OSB_ENCRYPTION_KEYS, using an ephemeral key (dedicated bindings will not survive a restart)"
        );
    }
    if app.generated_password {
        // Printed once, to the terminal of the person who started fake mode.
        println!(
            "osb-sacloud broker: http://{addr}  username: {}  password: {}",
            app.username,
            app.password.expose()
        );
    }
    tracing::info!(%addr, store = ?config.store, fake_mode = config.fake_mode, limits = ?config.server, "serving the OSB API (HTTP/1.1; put a TLS reverse proxy in front of an exposed server)");
    osb_sacloud::server::serve(listener, app.router, config.server, shutdown_signal())
        .await
        .map_err(|e| e.to_string())
}

async fn create_table() -> Result<(), String> {
    let table =
        std::env::var("OSB_TABLE").map_err(|_| "set OSB_TABLE to the table name".to_string())?;
    let endpoint = std::env::var("DYNAMODB_ENDPOINT")
        .ok()
        .filter(|v| !v.is_empty());
    let store = osb_sacloud::store::dynamodb::DynamoStore::from_env(table.clone(), endpoint).await;
    store.create_table().await.map_err(|e| e.to_string())?;
    println!("table {table} is ready");
    Ok(())
}

async fn adopt(instance_id: &str, zone: Option<String>) -> Result<(), String> {
    use osb_sacloud::broker::AdoptOutcome;
    let config = Config::from_env().map_err(|e| e.to_string())?;
    let zone = zone.unwrap_or_else(|| config.zone.clone());
    if !config.zones.contains(&zone) {
        return Err(format!(
            "zone {zone:?} is not one of the zones this broker serves ({})",
            config.zones.join(", ")
        ));
    }
    let app = app::build(&config).await.map_err(|e| e.to_string())?;
    let outcome = app
        .broker
        .adopt_legacy(&zone, instance_id)
        .await
        .map_err(|e| e.to_string())?;
    let (word, record) = match outcome {
        AdoptOutcome::Adopted(r) => ("adopted", r),
        AdoptOutcome::Known(r) => ("already known", r),
        AdoptOutcome::NotFound => {
            return Err(format!(
                "no appliance named {instance_id:?} with the tag @open-service-broker-sacloud in zone {zone}"
            ));
        }
    };
    let summary = serde_json::json!({
        "outcome": word,
        "instance_id": record.instance_id,
        "appliance_id": record.appliance_id,
        "zone": record.zone,
        "service_id": record.service_id,
        "plan_id": record.plan_id,
        "state": record.state,
    });
    println!("{summary}");
    Ok(())
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    tracing::info!("shutting down");
}
