//! The audit log cannot be forged: the originating identity is platform-supplied text (any
//! JSON string once decoded), so a user name with a line break or terminal escapes must stay
//! inside its one audit line.

use axum::http::{Method, Request};

use crate::hostile::generators::b64;
use crate::support::capture::run_captured;
use crate::support::*;

const FORGED: &str = "2001-01-01T00:00:00.000000Z  INFO audit: osb request method=DELETE path=/v2/service_instances/victim status=200 platform=kubernetes user=admin";

#[test]
fn a_user_name_cannot_forge_audit_lines() {
    let users = [
        format!("mallory\n{FORGED}"),
        format!("mallory\r\n{FORGED}"),
        "mallory\u{1b}[2K\u{1b}[1Aadmin".to_owned(),
        "mallory\u{85}\u{2028}admin".to_owned(),
    ];
    let requests = users.len();
    let (_, logs) = run_captured(async move {
        let h = Harness::start().await;
        for user in users {
            let identity = serde_json::json!({ "username": user }).to_string();
            let req = Request::builder()
                .method(Method::PUT)
                .uri("/v2/service_instances/audited?accepts_incomplete=true")
                .header("X-Broker-API-Version", "2.17")
                .header("Authorization", basic(USER, PASSWORD))
                .header(
                    "X-Broker-API-Originating-Identity",
                    format!("kubernetes {}", b64(identity.as_bytes())),
                );
            let (status, _, body) = h
                .send(with_body(req, Some(provision_body(MARIADB, MARIADB_10G))))
                .await;
            assert!(status.is_success(), "{body}");
        }
    });
    let audit: Vec<&str> = logs.lines().filter(|l| l.contains("osb request")).collect();
    assert_eq!(audit.len(), requests, "one audit line per request:\n{logs}");
    assert!(
        audit.iter().all(|l| l.contains("mallory")),
        "each audit line names its user:\n{logs}"
    );
    assert!(
        !logs.lines().any(|l| l.starts_with("2001-01-01")),
        "a forged line:\n{logs}"
    );
    assert!(
        !logs.contains('\u{1b}') && !logs.contains('\r'),
        "raw control characters in the log"
    );
}

/// The local server's human log carries colour codes only on a terminal: written to a file, as
/// a service manager or `2> broker.log` writes it, it is plain text.
#[test]
fn human_logs_in_a_file_carry_no_colour_codes() {
    let dir = tempfile::tempdir().expect("temp dir");
    let log_path = dir.path().join("broker.log");
    let log = std::fs::File::create(&log_path).expect("log file");
    let addr = format!("127.0.0.1:{}", crate::support::lambda::free_port());
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_osb-sacloud"))
        .args(["serve", "--store", "memory"])
        .env_clear()
        .envs([
            ("SAKURACLOUD_FAKE_MODE", "1"),
            ("OSB_LISTEN", addr.as_str()),
            ("OSB_USERNAME", USER),
            ("OSB_PASSWORD", PASSWORD),
            ("OSB_BINDING_MODE", "shared"),
            ("RUST_LOG", "info"),
        ])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(log)
        .spawn()
        .expect("the broker binary starts");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let mut text = String::new();
    while std::time::Instant::now() < deadline {
        text = std::fs::read_to_string(&log_path).unwrap_or_default();
        if text.contains("serving the OSB API") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(text.contains("serving the OSB API"), "{text}");
    assert!(
        !text.contains('\u{1b}'),
        "colour codes in a log file:\n{text}"
    );
}
