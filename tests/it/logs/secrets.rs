//! No secret ever reaches the logs: whole lifecycles on both engines (shared and dedicated
//! bindings on simulated appliances backed by the real MariaDB and PostgreSQL servers, an admin
//! password rotation, unbind, deprovision) plus rejected logins, with every tracing line captured
//! at TRACE, then searched for every secret the run handled.

use axum::http::{Method, Request, StatusCode};
use serde_json::json;

use crate::support::capture::{Needle, assert_absent, run_captured};
use crate::support::logs::*;
use crate::support::*;

/// Provision, bind shared and dedicated, read both, rotate the admin password, bind again,
/// unbind, deprovision. Returns the credential passwords handed out.
async fn lifecycle(h: &Harness, service: &str, plan: &str) -> Vec<Needle> {
    let id = new_id("logs");
    let instance = format!("/v2/service_instances/{id}");
    let mut body = provision_body(service, plan);
    body["parameters"] = loopback_parameters();
    let async_uri = format!("{instance}?accepts_incomplete=true");
    ok(h, Method::PUT, &async_uri, Some(body), StatusCode::ACCEPTED).await;
    assert_eq!(poll(h, &id).await["state"], "succeeded");

    let mut needles = Vec::new();
    // Binding ids name the dedicated users on servers other tests share: unique per run.
    let [shared, dedicated, shared2] = [new_id("sh"), new_id("ded"), new_id("sh2")];
    let binding = |b: &str| format!("{instance}/service_bindings/{b}");
    let bind = |mode: &str| {
        let mut body = bind_body(service, plan);
        body["parameters"] = json!({ "mode": mode });
        body
    };
    for (b, mode) in [(&shared, "shared"), (&dedicated, "dedicated")] {
        let made = ok(
            h,
            Method::PUT,
            &binding(b),
            Some(bind(mode)),
            StatusCode::CREATED,
        )
        .await;
        needles.extend(credential_needles(
            &format!("{mode} binding password"),
            &made,
        ));
        let read = ok(h, Method::GET, &binding(b), None, StatusCode::OK).await;
        assert_eq!(read["credentials"], made["credentials"]);
    }

    let rotate = json!({"service_id": service, "parameters": {"rotateAdminPassword": true}});
    ok(
        h,
        Method::PATCH,
        &async_uri,
        Some(rotate),
        StatusCode::ACCEPTED,
    )
    .await;
    assert_eq!(poll(h, &id).await["state"], "succeeded");
    let made = ok(
        h,
        Method::PUT,
        &binding(&shared2),
        Some(bind("shared")),
        StatusCode::CREATED,
    )
    .await;
    needles.extend(credential_needles("rotated admin password", &made));
    let read = ok(h, Method::GET, &binding(&shared), None, StatusCode::OK).await;
    needles.extend(credential_needles(
        "rotated admin password (re-read)",
        &read,
    ));

    let unbind = format!("?service_id={service}&plan_id={plan}");
    for b in [&shared, &dedicated, &shared2] {
        ok(
            h,
            Method::DELETE,
            &format!("{}{unbind}", binding(b)),
            None,
            StatusCode::OK,
        )
        .await;
    }
    let delete = format!("{instance}?accepts_incomplete=true&service_id={service}&plan_id={plan}");
    ok(h, Method::DELETE, &delete, None, StatusCode::ACCEPTED).await;
    assert_eq!(poll(h, &id).await["state"], "succeeded");
    needles
}

/// Requests that must be turned away without the credentials they carry being logged.
async fn rejected_logins(h: &Harness) {
    for (user, password) in [(USER, WRONG_PASSWORD), (INTRUDER, BROKER_PASSWORD)] {
        let req = Request::builder()
            .uri("/v2/catalog")
            .header("X-Broker-API-Version", "2.17")
            .header("Authorization", basic(user, password));
        let (status, _, _) = h.send(with_body(req, None)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let (status, _) = call(
        h,
        Method::PUT,
        "/v2/service_instances/rejected?accepts_incomplete=true",
        Some(provision_body(MARIADB, MARIADB_10G)),
        WRONG_PASSWORD,
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[cfg_attr(
    not(feature = "services"),
    ignore = "needs MariaDB and PostgreSQL on 127.0.0.1: run scripts/test.sh"
)]
#[test]
fn no_secret_reaches_the_logs_over_whole_lifecycles() {
    let ((handed_out, admin), logs) = run_captured(with_backed(|h, _| async move {
        rejected_logins(&h).await;
        let mut needles = lifecycle(&h, MARIADB, MARIADB_10G).await;
        needles.extend(lifecycle(&h, POSTGRES, POSTGRES_10G).await);
        (needles, admin_passwords(&h.sim.requests()))
    }));
    for line in [
        "osb request",
        "alice-auditor",
        "rejected: bad or missing credentials",
        "provision started",
        "dedicated binding created",
        "update started",
        "deprovision finished",
        "store calls",
    ] {
        assert!(logs.contains(line), "the capture misses {line:?}");
    }
    assert!(logs.contains(" TRACE "), "the capture has no TRACE lines");
    assert!(
        logs.contains("hyper"),
        "the capture has nothing from the HTTP stack"
    );
    // Two creates and two rotations, each with its own admin password.
    assert!(admin.len() >= 4, "admin passwords seen: {}", admin.len());
    let mut needles = static_needles();
    needles.extend(handed_out);
    needles.extend(
        admin
            .iter()
            .map(|p| Needle::new("appliance admin password", p.clone())),
    );
    assert_absent("the logs", &logs, &needles);
    eprintln!(
        "searched {} bytes of logs ({} lines) for {} secrets",
        logs.len(),
        logs.lines().count(),
        needles.len()
    );
}
