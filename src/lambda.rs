//! Running on AWS Lambda: the cold-start init (secrets, configuration, the store check, the app)
//! done once outside the handler, the per-invocation log span, and the hand-over of the same
//! router the local server uses to `lambda_http`.
//!
//! Cold start makes few network calls: the one `GetSecretValue` (when `OSB_SECRET_ARN` is set),
//! then, at once, one `GetItem` on DynamoDB and one find on SAKURA Cloud (not in fake mode) that
//! open the connections the first request will reuse ([`App::warm_up`], `OSB_WARM_UP`), so
//! the first platform request does not wait for the TLS handshakes.

use std::time::Instant;

use axum::Router;
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use lambda_http::RequestExt;
use tracing::Instrument;

use crate::api::clip::Clipped;
use crate::app::{self, App, StartError};
use crate::config::{Config, ConfigError, StoreChoice};
use crate::secrets::{self, SecretsError};

/// Set by the Lambda service (and by `cargo lambda watch`) to the Runtime API's address.
pub const RUNTIME_API_VAR: &str = "AWS_LAMBDA_RUNTIME_API";

const REQUEST_IDENTITY: &str = "x-broker-api-request-identity";

/// Why a cold start could not finish. Messages name the variable or key to fix.
#[derive(Debug, thiserror::Error)]
pub enum LambdaError {
    #[error(transparent)]
    Secrets(#[from] SecretsError),
    #[error(
        "{0} (on Lambda, secrets come from the Secrets Manager secret named by OSB_SECRET_ARN)"
    )]
    Config(#[from] ConfigError),
    #[error(
        "on AWS Lambda the broker keeps its state in DynamoDB: set OSB_TABLE to the table's name (the SAM template does), or SAKURACLOUD_FAKE_MODE=1 for a throwaway in-memory store"
    )]
    NoTable,
    #[error(transparent)]
    Start(#[from] StartError),
}

/// Whether this process was started by a Lambda runtime.
pub fn is_lambda(env: impl Fn(&str) -> Option<String>) -> bool {
    env(RUNTIME_API_VAR).is_some_and(|v| !v.trim().is_empty())
}

/// The configuration for a cold start: the secret named by `OSB_SECRET_ARN` (if any) overlaid on
/// `env`, then the Lambda store rule ([`lambda_store`]).
pub async fn config(env: impl Fn(&str) -> Option<String>) -> Result<Config, LambdaError> {
    let secrets = secrets::load(&env).await?;
    if let Some(values) = &secrets {
        tracing::info!(keys = ?values, "broker secrets read from Secrets Manager");
    }
    let mut config = Config::from_lookup_with_secrets(&env, secrets.as_ref())?;
    lambda_store(&mut config)?;
    Ok(config)
}

/// A Lambda's disk is read-only but `/tmp`, and its memory dies with it: state belongs in
/// DynamoDB. Without `OSB_TABLE` only fake mode may start, on a memory store.
pub fn lambda_store(config: &mut Config) -> Result<(), LambdaError> {
    match config.store {
        StoreChoice::DynamoDb { .. } => Ok(()),
        _ if config.fake_mode => {
            tracing::warn!(
                "fake mode without OSB_TABLE: records live in memory and vanish with this execution environment"
            );
            config.store = StoreChoice::Memory;
            Ok(())
        }
        _ => Err(LambdaError::NoTable),
    }
}

/// The whole cold start: configuration from `env` and secrets, then the app, with its router
/// wrapped by [`handler`].
pub async fn init(env: impl Fn(&str) -> Option<String>) -> Result<App, LambdaError> {
    let config = config(env).await?;
    let mut app = app::build(&config).await?;
    app.router = handler(app.router);
    if config.warm_up {
        app.warm_up(&config.zone, !config.fake_mode).await;
    }
    tracing::info!(store = ?config.store, fake_mode = config.fake_mode, "broker ready for Lambda invocations");
    Ok(app)
}

/// Wrap the broker's router so that every log line of an invocation carries the Lambda request
/// id and the OSB request identity.
pub fn handler(router: Router) -> Router {
    router.layer(axum::middleware::from_fn(invocation_span))
}

async fn invocation_span(request: Request, next: Next) -> Response {
    let aws_request_id = request
        .lambda_context_ref()
        .map(|c| c.request_id.clone())
        .unwrap_or_default();
    let request_identity = request
        .headers()
        .get(REQUEST_IDENTITY)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    // The platform's text, on every line of the invocation: clipped.
    let span = tracing::info_span!("invocation", %aws_request_id, request_identity = %Clipped(request_identity));
    next.run(request).instrument(span).await
}

/// Serve invocations until the runtime stops the process. `app` is held for the simulator's sake
/// (fake mode): it stops when dropped.
pub async fn run(app: App, started: Instant) -> Result<(), lambda_http::Error> {
    tracing::info!(
        init_ms = started.elapsed().as_millis() as u64,
        "cold start done; polling the Runtime API"
    );
    let router = app.router.clone();
    let result = lambda_http::run(router).await;
    drop(app);
    result
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn config_of(pairs: &[(&str, &str)]) -> Result<Config, LambdaError> {
        let env: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let mut config = Config::from_lookup(|k| env.get(k).cloned())?;
        lambda_store(&mut config)?;
        Ok(config)
    }

    #[test]
    fn a_real_broker_on_lambda_needs_a_table() {
        let err = config_of(&[
            ("OSB_USERNAME", "u"),
            ("OSB_PASSWORD", "p"),
            ("SAKURACLOUD_ACCESS_TOKEN", "t"),
            ("SAKURACLOUD_ACCESS_TOKEN_SECRET", "s"),
            ("OSB_BINDING_MODE", "shared"),
        ])
        .unwrap_err();
        assert!(matches!(err, LambdaError::NoTable));
        assert!(err.to_string().contains("OSB_TABLE"), "{err}");
    }

    #[test]
    fn missing_credentials_point_at_the_secret() {
        let err = config_of(&[("OSB_TABLE", "osb")]).unwrap_err().to_string();
        assert!(
            err.contains("OSB_USERNAME") && err.contains("OSB_SECRET_ARN"),
            "{err}"
        );
    }

    #[test]
    fn fake_mode_without_a_table_uses_memory_and_a_table_is_kept() {
        assert_eq!(
            config_of(&[("SAKURACLOUD_FAKE_MODE", "1")]).unwrap().store,
            StoreChoice::Memory
        );
        let with_table =
            config_of(&[("SAKURACLOUD_FAKE_MODE", "1"), ("OSB_TABLE", "osb")]).unwrap();
        assert_eq!(
            with_table.store,
            StoreChoice::DynamoDb {
                table: "osb".into(),
                endpoint: None
            }
        );
    }

    #[test]
    fn the_runtime_api_variable_decides() {
        assert!(is_lambda(
            |k| (k == RUNTIME_API_VAR).then(|| "127.0.0.1:9001".to_owned())
        ));
        assert!(!is_lambda(|_| None));
        assert!(!is_lambda(|_| Some(" ".to_owned())));
    }
}
