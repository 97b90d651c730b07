//! The operator scripts, run for real: `scripts/invoke-local.sh` (the built binary in Lambda mode
//! under `cargo lambda watch`), `scripts/smoke.sh` against a broker on a real socket, and
//! `scripts/deploy.sh` refusing to start without AWS credentials.

use std::path::Path;
use std::process::{Command, Output};

use crate::support::Harness;
use crate::support::lambda::serve;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Run a repository script with `env` on top of a cleaned environment (no AWS or broker
/// variables leak in from the test run).
fn script(name: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new("bash");
    command
        .arg(repo().join("scripts").join(name))
        .args(args)
        .current_dir(repo());
    for (key, _) in std::env::vars() {
        if key.starts_with("AWS_")
            || key.starts_with("OSB_")
            || key.starts_with("SAKURACLOUD_")
            || key == "DYNAMODB_ENDPOINT"
        {
            command.env_remove(key);
        }
    }
    command.envs(env.iter().copied());
    command
        .output()
        .unwrap_or_else(|e| panic!("cannot run scripts/{name}: {e}"))
}

fn text(output: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[cfg_attr(
    not(feature = "services"),
    ignore = "needs cargo-lambda, which scripts/invoke-local.sh installs from PyPI: run scripts/test.sh"
)]
#[test]
fn invoke_local_runs_the_binary_in_lambda_mode_and_answers_the_catalog() {
    // The script installs cargo-lambda into ./.venv-lambda when missing; a failed install fails
    // this test.
    let output = script(
        "invoke-local.sh",
        &["events/catalog.json"],
        &[("OSB_BIN", env!("CARGO_BIN_EXE_osb-sacloud"))],
    );
    let (stdout, stderr) = text(&output);
    assert!(
        output.status.success(),
        "invoke-local.sh failed\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    let json_start = stdout.find('{').expect("a JSON response");
    let json_end = stdout.rfind('}').expect("a JSON response");
    let response: serde_json::Value =
        serde_json::from_str(&stdout[json_start..=json_end]).expect("the response is JSON");
    assert_eq!(response["statusCode"], 200, "{response}");
    let body: serde_json::Value =
        serde_json::from_str(response["body"].as_str().expect("a body")).expect("JSON body");
    assert!(
        body["services"].as_array().is_some_and(|s| !s.is_empty()),
        "{body}"
    );
    let timing = stdout
        .lines()
        .find(|l| l.starts_with("cold start:"))
        .expect("the cold-start line");
    println!("{timing}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smoke_walks_the_lifecycle_against_a_broker_on_a_socket() {
    let harness = Harness::start().await;
    let (addr, server) = serve(harness.app.router.clone()).await;
    let url = format!("http://{addr}");
    let output = tokio::task::spawn_blocking(move || {
        script(
            "smoke.sh",
            &[&url],
            &[
                ("OSB_USERNAME", crate::support::USER),
                ("OSB_PASSWORD", crate::support::PASSWORD),
                ("SMOKE_BIND_PARAMETERS", r#"{"mode": "shared"}"#),
                ("SMOKE_POLL_SECS", "0.1"),
                ("SMOKE_TIMEOUT_SECS", "60"),
            ],
        )
    })
    .await
    .expect("the script ran");
    server.abort();
    let (stdout, stderr) = text(&output);
    assert!(
        output.status.success(),
        "smoke.sh failed\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    let walked: Vec<(&str, &str)> = stdout
        .lines()
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            Some((words.next()?, words.next()?))
        })
        .collect();
    for step in [
        ("catalog", "GET"),
        ("provision", "PUT"),
        ("provisioned:", "succeeded"),
        ("bind", "PUT"),
        ("get-binding", "GET"),
        ("unbind", "DELETE"),
        ("deprovision", "DELETE"),
        ("deprovisioned:", "succeeded"),
        ("re-delete", "DELETE"),
    ] {
        assert!(
            walked.contains(&step),
            "no `{} {}` in\n{stdout}",
            step.0,
            step.1
        );
    }
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("re-delete") && l.ends_with("-> 410")),
        "{stdout}"
    );
    // The credentials went through a netrc file, never into the output.
    assert!(
        !stdout.contains(crate::support::PASSWORD) && !stderr.contains(crate::support::PASSWORD)
    );
}

#[test]
fn deploy_refuses_to_start_without_aws_credentials() {
    let home = tempfile::tempdir().expect("temp home");
    let output = script(
        "deploy.sh",
        &[],
        &[
            ("HOME", home.path().to_str().expect("utf-8 path")),
            ("AWS_REGION", "us-east-1"),
            // No instance metadata lookups from a test machine.
            ("AWS_EC2_METADATA_DISABLED", "true"),
            ("AWS_CONFIG_FILE", "/nonexistent"),
            ("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent"),
        ],
    );
    let (stdout, stderr) = text(&output);
    assert!(
        !output.status.success(),
        "deploy.sh went on without credentials\n{stdout}\n{stderr}"
    );
    assert!(
        stderr.contains("deploy:") && stderr.contains("credentials"),
        "unclear message:\n{stderr}"
    );
    assert!(
        !stderr.contains("installing aws-sam-cli") && !stdout.contains("sam build"),
        "checked too late:\n{stderr}"
    );
}
