//! No secret reaches the logs when things go wrong either: errors are where a password-carrying
//! request, connection string or upstream answer is most likely to be printed. Captured at
//! TRACE: a dedicated bind to a port nothing listens on, an admin password rotation and a bind
//! that SAKURA Cloud answers with 500, and a broker holding the wrong SAKURA Cloud secret.

use std::collections::HashMap;

use axum::http::{Method, Request, StatusCode};
use osb_sacloud::app;
use osb_sacloud::sacloud::simulator::{Faults, RouteFaults};
use osb_sacloud::store::memory::MemoryStore;
use serde_json::json;

use crate::hostile::generators::b64;
use crate::support::capture::{Needle, assert_absent, run_captured};
use crate::support::logs::*;
use crate::support::*;

const WRONG_SAKURA_SECRET: &str = "secLOGwrongQ2w8Rt5Yu";

fn one_fault(route: &str, fault: RouteFaults) -> Faults {
    Faults {
        routes: [(route.to_owned(), fault)].into(),
        ..Faults::default()
    }
}

fn next_500(n: u32) -> RouteFaults {
    RouteFaults {
        next_500: n,
        ..RouteFaults::default()
    }
}

/// Each failure, then clean-up; returns the passwords handed out on the way.
async fn failures(h: &Harness, env: &HashMap<String, String>) -> Vec<Needle> {
    let id = new_id("logsfail");
    let instance = format!("/v2/service_instances/{id}");
    let async_uri = format!("{instance}?accepts_incomplete=true");
    let mut body = provision_body(MARIADB, MARIADB_10G);
    body["parameters"] = loopback_parameters();
    body["parameters"]["port"] = json!(1025);
    ok(h, Method::PUT, &async_uri, Some(body), StatusCode::ACCEPTED).await;
    assert_eq!(poll(h, &id).await["state"], "succeeded");
    let (ded, sh) = (new_id("ded"), new_id("sh"));
    let binding = |b: &str| format!("{instance}/service_bindings/{b}");
    let bind = |mode: &str| {
        let mut body = bind_body(MARIADB, MARIADB_10G);
        body["parameters"] = json!({ "mode": mode });
        body
    };

    // Nothing listens on 1025: the admin login fails with the password in the options.
    let (status, answer) = call(
        h,
        Method::PUT,
        &binding(&ded),
        Some(bind("dedicated")),
        BROKER_PASSWORD,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{answer}");

    // The settings write (password included) fails a few times; the update retries it.
    h.sim
        .set_faults(one_fault("PUT /appliance/{id}", next_500(5)));
    let rotate = json!({"service_id": MARIADB, "parameters": {"rotateAdminPassword": true}});
    let (status, answer) = call(h, Method::PATCH, &async_uri, Some(rotate), BROKER_PASSWORD).await;
    assert!(status.is_success() || status.is_client_error(), "{answer}");
    if status == StatusCode::ACCEPTED {
        poll(h, &id).await;
    }

    // Reading the appliance (and so its password) fails for a shared bind.
    h.sim
        .set_faults(one_fault("GET /appliance/{id}", next_500(1)));
    let (status, answer) = call(
        h,
        Method::PUT,
        &binding(&sh),
        Some(bind("shared")),
        BROKER_PASSWORD,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{answer}");
    h.sim.set_faults(Faults::default());
    let made = ok(
        h,
        Method::PUT,
        &binding(&sh),
        Some(bind("shared")),
        StatusCode::CREATED,
    )
    .await;
    let needles = credential_needles("admin password", &made);

    let unbind = format!("?service_id={MARIADB}&plan_id={MARIADB_10G}");
    ok(
        h,
        Method::DELETE,
        &format!("{}{unbind}", binding(&sh)),
        None,
        StatusCode::OK,
    )
    .await;
    let (status, _) = call(
        h,
        Method::DELETE,
        &format!("{}{unbind}", binding(&ded)),
        None,
        BROKER_PASSWORD,
    )
    .await;
    assert!(status.is_success() || status == StatusCode::BAD_GATEWAY || status == StatusCode::GONE);
    let delete = format!("{async_uri}&service_id={MARIADB}&plan_id={MARIADB_10G}");
    ok(h, Method::DELETE, &delete, None, StatusCode::ACCEPTED).await;
    assert_eq!(poll(h, &id).await["state"], "succeeded");

    // A broker with the wrong SAKURA Cloud secret: SAKURA refuses the create.
    let mut wrong = env.clone();
    wrong.insert(
        "SAKURACLOUD_ACCESS_TOKEN_SECRET".into(),
        WRONG_SAKURA_SECRET.into(),
    );
    let other = app::build_with_store(
        &config_from(&wrong),
        std::sync::Arc::new(MemoryStore::new()),
    )
    .await
    .expect("broker builds");
    let refused = new_id("logsrefused");
    let mut body = provision_body(MARIADB, MARIADB_10G);
    body["parameters"] = loopback_parameters();
    let req = Request::builder()
        .method(Method::PUT)
        .uri(format!(
            "/v2/service_instances/{refused}?accepts_incomplete=true"
        ))
        .header("X-Broker-API-Version", "2.17")
        .header("Authorization", basic(USER, BROKER_PASSWORD));
    let (status, _, answer) = send(&other.router, with_body(req, Some(body))).await;
    assert!(status.is_success() || status.is_client_error(), "{answer}");
    needles
}

#[cfg_attr(
    not(feature = "services"),
    ignore = "needs MariaDB and PostgreSQL on 127.0.0.1: run scripts/test.sh"
)]
#[test]
fn no_secret_reaches_the_logs_when_things_fail() {
    let ((handed_out, admin), logs) = run_captured(with_backed(|h, env| async move {
        let needles = failures(&h, &env).await;
        (needles, admin_passwords(&h.sim.requests()))
    }));
    for line in [
        "upstream failure",
        "could not connect to the database at 127.0.0.1:1025",
        "simulator injects an error",
        "will retry",
        "401 unauthorized",
    ] {
        assert!(logs.contains(line), "the capture misses {line:?}");
    }
    assert!(!admin.is_empty());
    let mut needles = static_needles();
    needles.extend(handed_out);
    needles.push(Needle::new("wrong SAKURA secret", WRONG_SAKURA_SECRET));
    needles.push(Needle::new(
        "wrong SAKURA basic auth",
        b64(format!("{SAKURA_TOKEN}:{WRONG_SAKURA_SECRET}").as_bytes()),
    ));
    needles.extend(
        admin
            .iter()
            .map(|p| Needle::new("appliance admin password", p.clone())),
    );
    assert_absent("the logs", &logs, &needles);
}
