//! The AWS SDK configuration every AWS client of the broker starts from (DynamoDB, Secrets
//! Manager): the default chain (env, profile, IMDS/ECS, the Lambda role), standard retries (3
//! attempts: throttling and 5xx), a 3 s connect timeout, 4 s per attempt (room for a retry when
//! one hangs) and 10 s per operation.

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_dynamodb::config::Credentials;

/// The shared configuration. `endpoint` points the client at an emulator; then, when the
/// environment has no `AWS_ACCESS_KEY_ID`, static dummy credentials are used, and the region
/// defaults to `us-east-1` unless `AWS_REGION` or `AWS_DEFAULT_REGION` is set.
pub async fn sdk_config(endpoint: Option<&str>) -> SdkConfig {
    let timeouts = TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(3))
        .operation_attempt_timeout(Duration::from_secs(4))
        .operation_timeout(Duration::from_secs(10))
        .build();
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .retry_config(RetryConfig::standard().with_max_attempts(3))
        .timeout_config(timeouts);
    if let Some(url) = endpoint {
        loader = loader.endpoint_url(url);
        if !env_set("AWS_ACCESS_KEY_ID") {
            let dummy = Credentials::new("local", "local", None, None, "emulator-dummy");
            loader = loader.credentials_provider(dummy);
        }
        if !env_set("AWS_REGION") && !env_set("AWS_DEFAULT_REGION") {
            loader = loader.region(Region::new("us-east-1"));
        }
    }
    loader.load().await
}

fn env_set(name: &str) -> bool {
    std::env::var_os(name).is_some_and(|v| !v.is_empty())
}
