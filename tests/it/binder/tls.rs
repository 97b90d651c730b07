//! `OSB_DATABASE_TLS` against the real MariaDB and PostgreSQL servers, whichever way they are
//! set up (each test asks its server whether it offers TLS first): `disable` and `prefer` always
//! connect, `require` connects encrypted to a server with TLS and fails with an error naming the
//! setting without one, `verify-full` refuses a certificate the web PKI does not vouch for; and
//! the credentials' `sslRequired` says what the setting requires.

use std::sync::Arc;

use axum::http::{Method, StatusCode};
use osb_sacloud::binder::{
    self, AdminAccount, Error, TlsMode, generate_password, generate_username, mariadb, postgres,
};
use osb_sacloud::sacloud::Engine;
use serde_json::{Value, json};

use crate::support::binder::{mariadb_url, postgres_url, unique_name, with_appliances};
use crate::support::dedicated::*;
use crate::support::*;

/// Whether `admin`'s server offers TLS, asked over a plain connection.
async fn server_offers_tls(admin: &AdminAccount) -> bool {
    let plain = AdminAccount {
        tls: TlsMode::Disable,
        ..admin.clone()
    };
    match admin.engine {
        Engine::MariaDb => {
            let mut conn = mariadb::open_admin(&plain, &[]).await.expect("plain login");
            let (_, value): (String, String) =
                sqlx::query_as("SHOW GLOBAL VARIABLES LIKE 'have_ssl'")
                    .fetch_one(&mut conn)
                    .await
                    .expect("have_ssl");
            value == "YES"
        }
        Engine::Postgres => {
            let mut conn = postgres::open_admin(&plain, &[])
                .await
                .expect("plain login");
            let value: String = sqlx::query_scalar("SHOW ssl")
                .fetch_one(&mut conn)
                .await
                .expect("SHOW ssl");
            value == "on"
        }
    }
}

/// Connect with `admin`'s TLS mode; `Ok(encrypted)` says whether the session uses TLS.
async fn connect(admin: &AdminAccount) -> Result<bool, Error> {
    match admin.engine {
        Engine::MariaDb => {
            let mut conn = mariadb::open_admin(admin, &[admin.password.expose()]).await?;
            let (_, cipher): (String, String) =
                sqlx::query_as("SHOW SESSION STATUS LIKE 'Ssl_cipher'")
                    .fetch_one(&mut conn)
                    .await
                    .expect("Ssl_cipher");
            Ok(!cipher.is_empty())
        }
        Engine::Postgres => {
            let mut conn = postgres::open_admin(admin, &[admin.password.expose()]).await?;
            let ssl: bool =
                sqlx::query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
                    .fetch_one(&mut conn)
                    .await
                    .expect("pg_stat_ssl");
            Ok(ssl)
        }
    }
}

fn assert_tls_failure(what: &str, err: &Error, admin: &AdminAccount) {
    let Error::Unreachable { address, cause } = err else {
        panic!("{what}: expected Unreachable, got {err:?}");
    };
    assert_eq!(address, &admin.address(), "{what}");
    let text = err.to_string();
    assert!(
        text.contains(&format!("OSB_DATABASE_TLS={}", admin.tls)),
        "{what}: the error does not name the setting: {text}"
    );
    assert!(
        cause.to_ascii_lowercase().contains("tls")
            || cause.to_ascii_lowercase().contains("ssl")
            || cause.to_ascii_lowercase().contains("certificate"),
        "{what}: the server's reason is lost: {text}"
    );
    assert!(!text.contains(admin.password.expose()), "{text}");
    eprintln!("{what}: {text}");
}

async fn tls_modes(engine: Engine) {
    with_appliances(engine, 1, move |apps| async move {
        let plain = apps[0].clone();
        let offers = server_offers_tls(&plain).await;
        eprintln!("{engine:?} server offers TLS: {offers}");
        let with = |tls| AdminAccount {
            tls,
            ..plain.clone()
        };
        assert!(
            !connect(&with(TlsMode::Disable))
                .await
                .expect("disable connects")
        );
        assert_eq!(
            connect(&with(TlsMode::Prefer))
                .await
                .expect("prefer connects"),
            offers,
            "prefer uses TLS exactly when the server offers it"
        );
        let require = with(TlsMode::Require);
        match connect(&require).await {
            Ok(encrypted) => {
                assert!(offers, "require connected to a server without TLS");
                assert!(encrypted, "require connected without TLS");
            }
            Err(e) => {
                assert!(!offers, "require failed against a server with TLS: {e}");
                assert_tls_failure("require", &e, &require);
            }
        }
        // The test servers' certificates are self-signed (or absent): verify-full refuses them.
        let verify = with(TlsMode::VerifyFull);
        let err = connect(&verify)
            .await
            .expect_err("verify-full accepted a certificate no root vouches for");
        assert_tls_failure("verify-full", &err, &verify);

        // A binding under `require` on a server without TLS is refused before any statement:
        // no user is made (with_appliances checks that the name is left nowhere).
        let user = generate_username(&unique_name());
        if !offers {
            let err = binder::create_user(&require, &user, &generate_password())
                .await
                .expect_err("create_user without TLS under require");
            assert_tls_failure("create_user", &err, &require);
        }
        vec![user]
    })
    .await;
}

#[cfg_attr(
    not(feature = "services"),
    ignore = "needs MariaDB on 127.0.0.1:3306: run scripts/test.sh"
)]
#[tokio::test]
async fn mariadb_tls_modes_follow_the_server() {
    tls_modes(Engine::MariaDb).await;
}

#[cfg_attr(
    not(feature = "services"),
    ignore = "needs PostgreSQL on 127.0.0.1:5432: run scripts/test.sh"
)]
#[tokio::test]
async fn postgres_tls_modes_follow_the_server() {
    tls_modes(Engine::Postgres).await;
}

/// A broker with `OSB_DATABASE_TLS=tls` on a simulator backed by both real servers.
async fn backed_broker(tls: Option<&str>) -> Arc<Harness> {
    let mut cfg = simulator_config();
    cfg.mariadb_url = Some(mariadb_url());
    cfg.postgres_url = Some(postgres_url());
    let h = Harness::start_custom(cfg, |env| {
        env.insert("OSB_BINDING_MODE".into(), "dedicated".into());
        if let Some(tls) = tls {
            env.insert("OSB_DATABASE_TLS".into(), tls.into());
        }
    })
    .await;
    Arc::new(h)
}

#[tokio::test]
async fn ssl_required_in_the_credentials_follows_the_setting() {
    for (tls, required) in [
        (None, false),
        (Some("disable"), false),
        (Some("prefer"), false),
        (Some("require"), true),
        (Some("verify-full"), true),
    ] {
        let h = Harness::start_with(|env| {
            if let Some(tls) = tls {
                env.insert("OSB_DATABASE_TLS".into(), tls.into());
            }
        })
        .await;
        let id = new_id("tls");
        h.ready_instance(&id, MARIADB, MARIADB_10G).await;
        let mut body = bind_body(MARIADB, MARIADB_10G);
        body["parameters"] = json!({"mode": "shared"});
        let (status, _, answer) = h
            .call(
                Method::PUT,
                &format!("/v2/service_instances/{id}/service_bindings/b1"),
                Some(body),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{tls:?}: {answer}");
        let credentials = &answer["credentials"];
        assert_eq!(credentials["sslRequired"], required, "{tls:?}: {answer}");
        let jdbc = credentials["jdbcUrl"].as_str().unwrap();
        assert_eq!(
            jdbc.contains("sslMode=REQUIRED"),
            required,
            "{tls:?}: {jdbc}"
        );
    }
}

#[cfg_attr(
    not(feature = "services"),
    ignore = "needs MariaDB and PostgreSQL on 127.0.0.1: run scripts/test.sh"
)]
#[tokio::test]
async fn a_dedicated_bind_under_require_answers_what_the_server_offers() {
    let h = backed_broker(Some("require")).await;
    let outcome = tokio::spawn({
        let h = h.clone();
        async move {
            let id = new_id("tls-ded");
            provision(&h, &id, MARIADB_KIND).await;
            let admin = admin_account(&h, &id, MARIADB_KIND).await;
            let offers = server_offers_tls(&admin).await;
            let binding = binding_id();
            let (status, answer) = bind(&h, &id, &binding, MARIADB_KIND, Value::Null).await;
            if offers {
                assert_eq!(status, StatusCode::CREATED, "{answer}");
                assert_eq!(answer["credentials"]["sslRequired"], true, "{answer}");
                let (status, body) = unbind(&h, &id, &binding, MARIADB_KIND).await;
                assert_eq!(status, StatusCode::OK, "{body}");
            } else {
                assert_eq!(status, StatusCode::BAD_GATEWAY, "{answer}");
                let description = answer["description"].as_str().unwrap_or("");
                assert!(
                    description.contains("OSB_DATABASE_TLS=require"),
                    "{description}"
                );
                assert!(
                    stored_bindings(&h, &id).await.is_empty(),
                    "a record was left"
                );
            }
        }
    })
    .await;
    h.sim.reset().await;
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}
