//! What a request makes the broker log is bounded, whatever the request's size: a 30 KB path,
//! query, request identity or originating identity gives no long log line, on the local router
//! and on the Lambda handler alike.

use axum::http::{Method, Request, StatusCode};
use osb_sacloud::lambda;

use crate::hostile::generators::b64;
use crate::support::capture::run_captured;
use crate::support::*;

/// The longest log line allowed: a few clipped fields and the line's own text.
const LINE_BOUND: usize = 2048;

fn huge(c: char) -> String {
    std::iter::repeat_n(c, 30 * 1024).collect()
}

async fn send_all(h: &Harness) {
    let long_id = huge('i');
    let long_path = format!("/v2/catalog/{}", huge('p'));
    let long_query = format!("/v2/catalog?{}", huge('q'));
    let identity = huge('r');
    let originator = format!(
        "kubernetes {}",
        b64(format!(r#"{{"username":"{}"}}"#, huge('u')).as_bytes())
    );
    let lambda_router = lambda::handler(h.app.router.clone());
    let request = |method: Method, uri: &str, authorized: bool| {
        let mut req = Request::builder()
            .method(method)
            .uri(uri)
            .header("X-Broker-API-Version", "2.17")
            .header("X-Broker-API-Request-Identity", identity.as_str())
            .header("X-Broker-API-Originating-Identity", originator.as_str());
        if authorized {
            req = req.header("Authorization", basic(USER, PASSWORD));
        }
        req
    };
    let cases = [
        // Rejected before anything else: the rejection line names the path.
        (
            Method::GET,
            long_query.clone(),
            false,
            StatusCode::UNAUTHORIZED,
        ),
        (
            Method::GET,
            format!("/v2/service_instances/{long_id}/last_operation"),
            false,
            StatusCode::UNAUTHORIZED,
        ),
        (
            Method::PUT,
            format!("/v2/service_instances/{long_id}"),
            false,
            StatusCode::UNAUTHORIZED,
        ),
        // Authorized: the audit line and the store-calls line name the path and identities.
        (
            Method::PUT,
            format!("/v2/service_instances/{long_id}?accepts_incomplete=true"),
            true,
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::DELETE,
            format!("/v2/service_instances/x/service_bindings/{long_id}"),
            true,
            StatusCode::BAD_REQUEST,
        ),
        (Method::GET, long_query.clone(), true, StatusCode::OK),
        (Method::GET, long_path.clone(), true, StatusCode::NOT_FOUND),
    ];
    for router in [&h.app.router, &lambda_router] {
        for (method, uri, authorized, want) in &cases {
            let body = (*method == Method::PUT).then(|| provision_body(MARIADB, MARIADB_10G));
            let (status, _, answer) = send(
                router,
                with_body(request(method.clone(), uri, *authorized), body),
            )
            .await;
            assert_eq!(status, *want, "{method} {}…: {answer}", &uri[..40]);
        }
    }
}

#[test]
fn a_30_kb_path_query_or_identity_makes_no_long_log_line() {
    let ((), logs) = run_captured(async {
        let h = Harness::start().await;
        send_all(&h).await;
    });
    for expected in [
        "rejected: bad or missing credentials",
        "osb request",
        "store calls",
        "invocation",
    ] {
        assert!(logs.contains(expected), "the capture misses {expected:?}");
    }
    let longest = logs.lines().map(str::len).max().unwrap_or(0);
    let offenders: Vec<String> = logs
        .lines()
        .filter(|l| l.len() > LINE_BOUND)
        .map(|l| {
            format!(
                "{} bytes: {}…",
                l.len(),
                l.chars().take(200).collect::<String>()
            )
        })
        .collect();
    assert!(
        offenders.is_empty(),
        "log lines over {LINE_BOUND} bytes:\n{}",
        offenders.join("\n")
    );
    assert!(
        logs.contains("more bytes]"),
        "no clipping marker in the capture"
    );
    eprintln!(
        "{} log lines, the longest {longest} bytes",
        logs.lines().count()
    );
}
