//! Dedicated bindings against the real servers, through the OSB API: every returned `uri` logs
//! in, bindings of one instance share its data and nothing else, an unbind ends the login but
//! keeps the data, identical concurrent binds make one user, the `mode` parameter overrides the
//! broker default, and a full lifecycle leaves nothing on the servers.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::binder::{leftovers, user_exists};
use crate::support::dedicated::*;
use crate::support::*;

#[cfg_attr(
    not(feature = "services"),
    ignore = "needs MariaDB and PostgreSQL on 127.0.0.1: run scripts/test.sh"
)]
#[tokio::test]
async fn dedicated_lifecycle_on_mariadb() {
    run(
        "dedicated",
        |h| async move { lifecycle(&h, MARIADB_KIND).await },
    )
    .await;
}

#[cfg_attr(
    not(feature = "services"),
    ignore = "needs MariaDB and PostgreSQL on 127.0.0.1: run scripts/test.sh"
)]
#[tokio::test]
async fn dedicated_lifecycle_on_postgres() {
    run("dedicated", |h| async move {
        lifecycle(&h, POSTGRES_KIND).await
    })
    .await;
}

/// Two bindings on one instance, one on a neighbour; every step checked on the real server.
async fn lifecycle(h: &Harness, kind: Kind) {
    let (a, b) = (new_id("ded-a"), new_id("ded-b"));
    let admin_a = provision(h, &a, kind).await;
    let admin_b = provision(h, &b, kind).await;
    let (b1, b2, nb) = (binding_id(), binding_id(), binding_id());
    let c1 = bind_ok(h, &a, &b1, kind, Value::Null).await;
    let c2 = bind_ok(h, &a, &b2, kind, Value::Null).await;
    let cn = bind_ok(h, &b, &nb, kind, Value::Null).await;
    let (u1, u2) = (text(&c1, "username"), text(&c2, "username"));
    assert_ne!(u1, u2, "each binding has its own user");
    assert!(u1 != admin_a && u2 != admin_a, "not the admin account");
    assert_eq!(text(&c1, "database"), admin_a);
    assert_eq!(
        (text(&c1, "host"), &c1["port"]),
        ("127.0.0.1".into(), &json!(kind.server_port()))
    );

    // Each login works from its uri alone; the second binding sees the first one's rows.
    let mut s1 = session(&c1).await;
    assert_eq!(
        s1.write("shared_rows", "from-b1").await.expect("b1 writes"),
        ["from-b1"]
    );
    let mut s2 = session(&c2).await;
    assert_eq!(
        s2.write("shared_rows", "from-b2")
            .await
            .expect("b2 writes into b1's table"),
        ["from-b1", "from-b2"]
    );
    assert_eq!(
        s1.values("shared_rows").await.expect("b1 reads"),
        ["from-b1", "from-b2"]
    );

    // The neighbour instance's database is out of reach.
    let foreign = uri_for_database(&c1, &admin_b);
    assert!(
        login(&foreign).await.is_err(),
        "b1 logged in to instance b's database"
    );
    let foreign_table = format!("{admin_b}.stolen");
    assert!(
        s1.exec(&format!("CREATE TABLE {foreign_table} (v INT)"))
            .await
            .is_err(),
        "b1 created a table in instance b's database"
    );
    assert!(
        login(&uri_for_database(&cn, &admin_a)).await.is_err(),
        "b's binding reached a"
    );

    // Nothing stored holds a password in plaintext.
    let admin = admin_account(h, &a, kind).await;
    let secrets = [
        text(&c1, "password"),
        text(&c2, "password"),
        admin.password.expose().to_owned(),
    ];
    let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
    assert_eq!(
        plaintext_in_store(h, &a, &secrets).await,
        Vec::<String>::new()
    );

    // GET answers what PUT did.
    let (status, _, got) = h.call(Method::GET, &binding_path(&a, &b1), None).await;
    assert_eq!((status, &got["credentials"]), (StatusCode::OK, &c1));

    // Unbind b1: its login is refused (its open session too), its rows stay for b2.
    let (status, body) = unbind(h, &a, &b1, kind).await;
    assert_eq!((status, body), (StatusCode::OK, json!({})));
    assert!(
        login(&text(&c1, "uri")).await.is_err(),
        "b1 still logs in after unbind"
    );
    assert!(
        s1.values("shared_rows").await.is_err(),
        "b1's open session survived the unbind"
    );
    assert!(
        !user_exists(kind.engine, &u1).await,
        "user {u1} left after unbind"
    );
    assert_eq!(
        s2.values("shared_rows").await.expect("b2 reads"),
        ["from-b1", "from-b2"]
    );
    let mut s2_again = session(&c2).await;
    assert_eq!(
        s2_again.values("shared_rows").await.expect("b2 reads"),
        ["from-b1", "from-b2"]
    );
    drop((s2, s2_again));

    for (id, binding) in [(&a, &b2), (&b, &nb)] {
        let (status, body) = unbind(h, id, binding, kind).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    assert!(
        !user_exists(kind.engine, &u2).await,
        "user {u2} left after unbind"
    );
    deprovision(h, &a, kind).await;
    deprovision(h, &b, kind).await;
    let names = vec![admin_a, admin_b, u1, u2, text(&cn, "username")];
    let left = leftovers(kind.engine, &names).await;
    println!(
        "{:?}: users/roles/databases left after a full lifecycle: {left}",
        kind.engine
    );
    assert_eq!(left, 0, "left behind among {names:?}");
}

#[cfg_attr(
    not(feature = "services"),
    ignore = "needs MariaDB and PostgreSQL on 127.0.0.1: run scripts/test.sh"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_identical_binds_make_one_user_on_mariadb() {
    run("dedicated", |h| concurrent_binds(h, MARIADB_KIND)).await;
}

#[cfg_attr(
    not(feature = "services"),
    ignore = "needs MariaDB and PostgreSQL on 127.0.0.1: run scripts/test.sh"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_identical_binds_make_one_user_on_postgres() {
    run("dedicated", |h| concurrent_binds(h, POSTGRES_KIND)).await;
}

/// Five identical PUTs at once, on worker threads: one makes the binding (201), the others
/// find it (200), and all hand out the same single user.
async fn concurrent_binds(h: Arc<Harness>, kind: Kind) {
    let id = new_id("ded-conc");
    let admin = provision(&h, &id, kind).await;
    let binding = binding_id();
    let once = || {
        let (h, id, binding) = (h.clone(), id.clone(), binding.clone());
        tokio::spawn(async move { bind(&h, &id, &binding, kind, Value::Null).await })
    };
    let answers = tokio::join!(once(), once(), once(), once(), once());
    let answers = [answers.0, answers.1, answers.2, answers.3, answers.4]
        .map(|a| a.expect("bind task finishes"));
    let statuses: Vec<u16> = answers.iter().map(|(s, _)| s.as_u16()).collect();
    println!(
        "{:?}: five identical concurrent binds answered {statuses:?}",
        kind.engine
    );
    let created = statuses.iter().filter(|s| **s == 201).count();
    let found = statuses.iter().filter(|s| **s == 200).count();
    assert_eq!((created, found), (1, 4), "{answers:?}");
    let first = &answers[0].1["credentials"];
    for (_, body) in &answers {
        assert_eq!(
            &body["credentials"], first,
            "every answer carries the same credentials"
        );
    }
    let user = text(first, "username");
    assert_eq!(
        leftovers(kind.engine, std::slice::from_ref(&user)).await,
        1,
        "one user {user}"
    );
    let mut s = session(first).await;
    assert_eq!(s.write("conc", "x").await.expect("login works"), ["x"]);
    drop(s);
    let (status, _) = unbind(&h, &id, &binding, kind).await;
    assert_eq!(status, StatusCode::OK);
    deprovision(&h, &id, kind).await;
    assert_eq!(leftovers(kind.engine, &[admin, user]).await, 0);
}

/// `{"mode": ...}` on a bind wins over OSB_BINDING_MODE, both ways.
#[cfg_attr(
    not(feature = "services"),
    ignore = "needs MariaDB and PostgreSQL on 127.0.0.1: run scripts/test.sh"
)]
#[tokio::test]
async fn mode_parameter_overrides_the_broker_default() {
    run("dedicated", |h| async move {
        for kind in [MARIADB_KIND, POSTGRES_KIND] {
            let id = new_id("ded-mode");
            let admin = provision(&h, &id, kind).await;
            let binding = binding_id();
            let c = bind_ok(&h, &id, &binding, kind, json!({"mode": "shared"})).await;
            let account = admin_account(&h, &id, kind).await;
            assert_eq!(text(&c, "username"), admin);
            assert_eq!(text(&c, "password"), account.password.expose());
            session(&c).await;
            let (status, _) = unbind(&h, &id, &binding, kind).await;
            assert_eq!(status, StatusCode::OK);
            deprovision(&h, &id, kind).await;
        }
    })
    .await;
    run("shared", |h| async move {
        for kind in [MARIADB_KIND, POSTGRES_KIND] {
            let id = new_id("ded-mode");
            let admin = provision(&h, &id, kind).await;
            let default = bind_ok(&h, &id, &binding_id(), kind, Value::Null).await;
            assert_eq!(
                text(&default, "username"),
                admin,
                "the broker default is shared"
            );
            let binding = binding_id();
            let c = bind_ok(&h, &id, &binding, kind, json!({"mode": "dedicated"})).await;
            let user = text(&c, "username");
            assert_ne!(user, admin);
            assert!(
                user_exists(kind.engine, &user).await,
                "no user {user} on the server"
            );
            session(&c)
                .await
                .write("mode_rows", "d")
                .await
                .expect("dedicated login works");
            let (status, _) = unbind(&h, &id, &binding, kind).await;
            assert_eq!(status, StatusCode::OK);
            assert!(!user_exists(kind.engine, &user).await);
            deprovision(&h, &id, kind).await;
        }
    })
    .await;
}

/// Bind latency through the router, per engine (printed, not asserted).
#[cfg_attr(
    not(feature = "services"),
    ignore = "needs MariaDB and PostgreSQL on 127.0.0.1: run scripts/test.sh"
)]
#[tokio::test]
async fn bind_latency_per_engine_is_measured() {
    run("dedicated", |h| async move {
        for kind in [MARIADB_KIND, POSTGRES_KIND] {
            let id = new_id("ded-lat");
            let admin = provision(&h, &id, kind).await;
            let (mut binds, mut unbinds, mut users) = (Vec::new(), Vec::new(), Vec::new());
            for _ in 0..10 {
                let binding = binding_id();
                let t = Instant::now();
                let c = bind_ok(&h, &id, &binding, kind, Value::Null).await;
                binds.push(t.elapsed());
                users.push(text(&c, "username"));
                let t = Instant::now();
                let (status, _) = unbind(&h, &id, &binding, kind).await;
                unbinds.push(t.elapsed());
                assert_eq!(status, StatusCode::OK);
            }
            deprovision(&h, &id, kind).await;
            users.push(admin);
            let left = leftovers(kind.engine, &users).await;
            println!(
                "{:?} dedicated: bind {} | unbind {} | left behind after lifecycle: {left}",
                kind.engine,
                summary(&mut binds),
                summary(&mut unbinds)
            );
            assert_eq!(left, 0);
        }
    })
    .await;
}

/// "p50 12.3 ms, mean 13.0 ms, max 20.1 ms (n=10)".
fn summary(samples: &mut [Duration]) -> String {
    samples.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let mean = samples.iter().map(|d| ms(*d)).sum::<f64>() / samples.len() as f64;
    format!(
        "p50 {:.1} ms, mean {mean:.1} ms, max {:.1} ms (n={})",
        ms(samples[samples.len() / 2]),
        ms(samples[samples.len() - 1]),
        samples.len()
    )
}

/// A `port` update after a dedicated bind moves the binding's credentials with it: GET and an
/// identical PUT answer the new port (in `port` and `uri`), and the old one again once it is
/// changed back.
#[cfg_attr(
    not(feature = "services"),
    ignore = "needs MariaDB and PostgreSQL on 127.0.0.1: run scripts/test.sh"
)]
#[tokio::test]
async fn dedicated_credentials_follow_a_port_update() {
    run("dedicated", |h| async move {
        let kind = MARIADB_KIND;
        let id = new_id("ded-port");
        provision(&h, &id, kind).await;
        let binding = binding_id();
        let first = bind_ok(&h, &id, &binding, kind, Value::Null).await;
        assert_eq!(first["port"], json!(kind.server_port()));
        let moved = kind.server_port() + 10_000;
        for port in [moved, kind.server_port()] {
            let path = format!("/v2/service_instances/{id}?accepts_incomplete=true");
            let update = json!({"service_id": kind.service, "parameters": {"port": port}});
            let (status, _, body) = h.call(Method::PATCH, &path, Some(update)).await;
            assert_eq!(status, StatusCode::ACCEPTED, "{body}");
            let last = h.poll(&id).await;
            assert_eq!(last["state"], "succeeded", "{last}");

            let (status, _, got) = h
                .call(Method::GET, &binding_path(&id, &binding), None)
                .await;
            assert_eq!(status, StatusCode::OK, "{got}");
            let (status, again) = bind(&h, &id, &binding, kind, Value::Null).await;
            assert_eq!(status, StatusCode::OK, "{again}");
            for credentials in [&got["credentials"], &again["credentials"]] {
                assert_eq!(credentials["port"], json!(port), "{credentials}");
                assert!(
                    text(credentials, "uri").contains(&format!(":{port}/")),
                    "{credentials}"
                );
                assert_eq!(credentials["username"], first["username"]);
                assert_eq!(credentials["password"], first["password"]);
            }
        }
        session(&first).await;
        let (status, body) = unbind(&h, &id, &binding, kind).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        deprovision(&h, &id, kind).await;
    })
    .await;
}
