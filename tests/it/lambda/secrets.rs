//! The broker's secrets fetched from Secrets Manager (moto) at a Lambda cold start: the secret's
//! values win over the environment, and a broker built from them accepts exactly its credentials.

use std::collections::HashMap;

use osb_sacloud::lambda::{self, LambdaError};
use osb_sacloud::secrets::{self, SecretsError};

use crate::lambda::events::{SAMPLE_PASSWORD, SAMPLE_USER, invoke};
use crate::support::lambda::Moto;

fn lookup<'a>(env: &'a HashMap<&'static str, String>) -> impl Fn(&str) -> Option<String> + 'a {
    move |k| env.get(k).cloned()
}

#[cfg_attr(
    not(feature = "services"),
    ignore = "needs moto, standing in for Secrets Manager: run scripts/test.sh"
)]
#[tokio::test]
async fn a_cold_start_reads_the_secret_and_the_secret_wins_over_the_environment() {
    let moto = Moto::start().await;
    let value = serde_json::json!({
        "OSB_USERNAME": SAMPLE_USER,
        "OSB_PASSWORD": SAMPLE_PASSWORD,
        "OSB_ENCRYPTION_KEYS": crate::support::ENCRYPTION_KEY,
    });
    let arn = moto
        .create_secret("osb-sacloud/cold-start", &value.to_string())
        .await;
    let env: HashMap<&'static str, String> = [
        ("OSB_SECRET_ARN", arn.clone()),
        ("SECRETSMANAGER_ENDPOINT", moto.endpoint.clone()),
        ("SAKURACLOUD_FAKE_MODE", "1".to_owned()),
        // Overridden by the secret's value.
        (
            "OSB_PASSWORD",
            "a-stale-password-in-the-environment".to_owned(),
        ),
    ]
    .into_iter()
    .collect();

    // The fetch alone, as GetSecretValue returns it.
    let fetched = secrets::load(lookup(&env))
        .await
        .expect("GetSecretValue")
        .expect("a secret is configured");
    assert_eq!(
        fetched.keys().collect::<Vec<_>>(),
        ["OSB_ENCRYPTION_KEYS", "OSB_PASSWORD", "OSB_USERNAME"]
    );
    assert_eq!(
        fetched.get("OSB_PASSWORD").map(|s| s.expose()),
        Some(SAMPLE_PASSWORD)
    );

    // The whole cold start: the broker answers the sample credentials the events carry (from the
    // secret), and refuses the environment's password.
    let app = lambda::init(lookup(&env)).await.expect("cold start");
    assert!(
        !app.generated_password && !app.ephemeral_key,
        "the secret's password and key were not used"
    );
    let catalog = invoke(&app.router, "catalog.json", "secret-catalog").await;
    assert_eq!(catalog.status, 200, "{}", catalog.body);
    let bad = invoke(&app.router, "catalog-bad-auth.json", "secret-bad-auth").await;
    assert_eq!(bad.status, 401, "{}", bad.body);
}

#[cfg_attr(
    not(feature = "services"),
    ignore = "needs moto, standing in for Secrets Manager: run scripts/test.sh"
)]
#[tokio::test]
async fn a_missing_or_malformed_secret_stops_the_cold_start_with_its_name() {
    let moto = Moto::start().await;
    let missing = "arn:aws:secretsmanager:us-east-1:123456789012:secret:osb-sacloud/none-AbCdEf";
    let env: HashMap<&'static str, String> = [
        ("OSB_SECRET_ARN", missing.to_owned()),
        ("SECRETSMANAGER_ENDPOINT", moto.endpoint.clone()),
        ("SAKURACLOUD_FAKE_MODE", "1".to_owned()),
    ]
    .into_iter()
    .collect();
    let err = lambda::init(lookup(&env))
        .await
        .err()
        .expect("no such secret");
    assert!(
        matches!(err, LambdaError::Secrets(SecretsError::Fetch { .. })),
        "{err}"
    );
    let message = err.to_string();
    assert!(
        message.contains(missing) && message.contains("ResourceNotFound"),
        "{message}"
    );

    let arn = moto
        .create_secret("osb-sacloud/typo", r#"{"OSB_PASWORD": "hunter2"}"#)
        .await;
    let env: HashMap<&'static str, String> = [
        ("OSB_SECRET_ARN", arn),
        ("SECRETSMANAGER_ENDPOINT", moto.endpoint.clone()),
        ("SAKURACLOUD_FAKE_MODE", "1".to_owned()),
    ]
    .into_iter()
    .collect();
    let message = lambda::init(lookup(&env))
        .await
        .err()
        .expect("unknown key")
        .to_string();
    assert!(
        message.contains("OSB_PASWORD") && !message.contains("hunter2"),
        "{message}"
    );
}
