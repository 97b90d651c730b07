//! The broker's secrets from AWS Secrets Manager: one secret whose value is a JSON object with
//! the keys in [`SECRET_KEYS`], named by `OSB_SECRET_ARN`, fetched once per process (a Lambda cold
//! start) and kept in memory for its life.
//!
//! Precedence: a key present in the secret wins over the environment variable of the same name;
//! the environment fills only what the secret lacks. On Lambda the template never puts these
//! values in the environment, so the secret is the single source; locally, without
//! `OSB_SECRET_ARN`, the plain environment variables are used as before.

use std::collections::BTreeMap;
use std::fmt;

use aws_sdk_secretsmanager::error::DisplayErrorContext;

use crate::secret::Secret;

/// The environment variable naming the secret (its ARN, or its name).
pub const SECRET_ARN_VAR: &str = "OSB_SECRET_ARN";
/// An endpoint override for Secrets Manager (an emulator such as moto), like `DYNAMODB_ENDPOINT`.
pub const ENDPOINT_VAR: &str = "SECRETSMANAGER_ENDPOINT";
/// The keys the secret may hold: exactly the environment variables they stand for.
pub const SECRET_KEYS: [&str; 6] = [
    "OSB_USERNAME",
    "OSB_PASSWORD",
    "SAKURACLOUD_ACCESS_TOKEN",
    "SAKURACLOUD_ACCESS_TOKEN_SECRET",
    "OSB_ENCRYPTION_KEYS",
    // The network pools' JSON: not a secret, but kept beside the others so a Lambda deployment
    // has one place for its configuration documents.
    "OSB_NETWORKS",
];

/// Why the secrets could not be had. Never carries a secret value.
#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    #[error("secret {arn}: GetSecretValue failed: {message}")]
    Fetch { arn: String, message: String },
    #[error("secret {arn}: it has no SecretString (a binary secret is not supported)")]
    NotText { arn: String },
    #[error(
        "the secret's value must be a JSON object of strings with keys among {known}: {problem}"
    )]
    Malformed { problem: String, known: String },
}

/// The values read from the secret, by key. `Debug` prints the keys only.
#[derive(Clone, Default, PartialEq)]
pub struct SecretValues(BTreeMap<&'static str, Secret>);

impl fmt::Debug for SecretValues {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

fn malformed(problem: impl Into<String>) -> SecretsError {
    SecretsError::Malformed {
        problem: problem.into(),
        known: SECRET_KEYS.join(", "),
    }
}

impl SecretValues {
    /// Parse the secret's JSON text. Unknown keys are refused (a misspelt key would otherwise
    /// silently fall back to the environment); empty strings count as absent.
    pub fn parse(text: &str) -> Result<SecretValues, SecretsError> {
        // The parser's own error could quote the text, so only its position is kept.
        let value: serde_json::Value = serde_json::from_str(text).map_err(|e| {
            malformed(format!(
                "not JSON (line {}, column {})",
                e.line(),
                e.column()
            ))
        })?;
        let serde_json::Value::Object(map) = value else {
            return Err(malformed("not a JSON object"));
        };
        let mut values = BTreeMap::new();
        for (key, value) in map {
            let Some(known) = SECRET_KEYS.iter().find(|k| **k == key) else {
                return Err(malformed(format!("unknown key {key:?}")));
            };
            let serde_json::Value::String(text) = value else {
                return Err(malformed(format!("the value of {key} is not a string")));
            };
            if !text.is_empty() {
                values.insert(*known, Secret::new(text));
            }
        }
        Ok(SecretValues(values))
    }

    /// The value for `key`, if the secret holds one.
    pub fn get(&self, key: &str) -> Option<&Secret> {
        self.0.get(key)
    }

    /// The keys present.
    pub fn keys(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.0.keys().copied()
    }

    /// A lookup that answers from the secret first, then from `env`.
    pub fn overlay<'a>(
        &'a self,
        env: impl Fn(&str) -> Option<String> + 'a,
    ) -> impl Fn(&str) -> Option<String> + 'a {
        move |key| {
            self.get(key)
                .map(|s| s.expose().to_owned())
                .or_else(|| env(key))
        }
    }
}

/// A Secrets Manager client: the default AWS chain (on Lambda, the function's role), or static
/// dummy credentials and `us-east-1` at an emulator's `endpoint` when none are configured.
pub async fn client(endpoint: Option<&str>) -> aws_sdk_secretsmanager::Client {
    aws_sdk_secretsmanager::Client::new(&crate::aws::sdk_config(endpoint).await)
}

/// `GetSecretValue` on `arn` and parse it.
pub async fn fetch(
    client: &aws_sdk_secretsmanager::Client,
    arn: &str,
) -> Result<SecretValues, SecretsError> {
    let output = client
        .get_secret_value()
        .secret_id(arn)
        .send()
        .await
        .map_err(|e| SecretsError::Fetch {
            arn: arn.to_owned(),
            message: DisplayErrorContext(e).to_string(),
        })?;
    let text = output
        .secret_string()
        .ok_or_else(|| SecretsError::NotText {
            arn: arn.to_owned(),
        })?;
    SecretValues::parse(text)
}

/// When `OSB_SECRET_ARN` is set in `env`, fetch that secret (at `SECRETSMANAGER_ENDPOINT` if
/// set); otherwise no secret, and the environment alone configures the broker.
pub async fn load(
    env: impl Fn(&str) -> Option<String>,
) -> Result<Option<SecretValues>, SecretsError> {
    let Some(arn) = env(SECRET_ARN_VAR).filter(|v| !v.trim().is_empty()) else {
        return Ok(None);
    };
    let endpoint = env(ENDPOINT_VAR).filter(|v| !v.is_empty());
    let client = client(endpoint.as_deref()).await;
    fetch(&client, arn.trim()).await.map(Some)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    #[test]
    fn the_secret_wins_and_the_environment_fills_the_rest() {
        let secrets = SecretValues::parse(
            r#"{"OSB_PASSWORD": "from-secret", "SAKURACLOUD_ACCESS_TOKEN": ""}"#,
        )
        .unwrap();
        let env: HashMap<&str, &str> = [
            ("OSB_USERNAME", "env-user"),
            ("OSB_PASSWORD", "env-pass"),
            ("SAKURACLOUD_ACCESS_TOKEN", "env-token"),
        ]
        .into_iter()
        .collect();
        let lookup = secrets.overlay(|k| env.get(k).map(|v| v.to_string()));
        assert_eq!(lookup("OSB_PASSWORD").as_deref(), Some("from-secret"));
        assert_eq!(lookup("OSB_USERNAME").as_deref(), Some("env-user"));
        // An empty value in the secret is absent, so the environment's value stands.
        assert_eq!(
            lookup("SAKURACLOUD_ACCESS_TOKEN").as_deref(),
            Some("env-token")
        );
        assert_eq!(lookup("OSB_ENCRYPTION_KEYS"), None);
        assert_eq!(secrets.keys().collect::<Vec<_>>(), ["OSB_PASSWORD"]);
    }

    #[test]
    fn unknown_keys_and_non_strings_are_refused_without_quoting_values() {
        let err = SecretValues::parse(r#"{"OSB_PASWORD": "hunter2"}"#)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("OSB_PASWORD") && err.contains("OSB_PASSWORD") && !err.contains("hunter2"),
            "{err}"
        );
        let err = SecretValues::parse(r#"{"OSB_PASSWORD": 12345}"#)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("not a string") && !err.contains("12345"),
            "{err}"
        );
        let err = SecretValues::parse("hunter2-not-json")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("not JSON") && !err.contains("hunter2"),
            "{err}"
        );
        assert!(
            SecretValues::parse("[]")
                .unwrap_err()
                .to_string()
                .contains("not a JSON object")
        );
    }

    #[test]
    fn debug_shows_keys_not_values() {
        let secrets = SecretValues::parse(r#"{"OSB_PASSWORD": "hunter2"}"#).unwrap();
        assert_eq!(format!("{secrets:?}"), r#"{"OSB_PASSWORD"}"#);
    }
}
