//! `Debug` (and `Display`, where there is one) of everything that holds a secret prints none:
//! the config, the app's broker password, the keyring, an appliance as read back from SAKURA
//! Cloud with its admin password, the client and its config, the simulator's config and
//! recordings, the basic-auth check, admin accounts and credentials, and keyring errors.

use axum::http::{Method, StatusCode};
use osb_sacloud::api::middleware::BasicAuth;
use osb_sacloud::binder::crypto::Keyring;
use osb_sacloud::binder::{AdminAccount, shared};
use osb_sacloud::sacloud::ClientConfig;
use osb_sacloud::secret::Secret;

use crate::hostile::generators::b64;
use crate::support::capture::{Needle, assert_absent};
use crate::support::logs::*;
use crate::support::*;

const DB_URL_PASSWORD: &str = "dbLOGurlPw7Hq2Zk";
const BINDING_PASSWORD: &str = "bindLOGpw3Vn8Wc1";

/// `{:?}`, `{:#?}` of a value, under a name for failure messages.
fn shown(what: &str, value: &dyn std::fmt::Debug) -> (String, String) {
    (what.to_owned(), format!("{value:?}\n{value:#?}"))
}

#[cfg_attr(
    not(feature = "services"),
    ignore = "needs MariaDB and PostgreSQL on 127.0.0.1: run scripts/test.sh"
)]
#[tokio::test]
async fn debug_output_holds_no_secret() {
    with_backed(|h, env| async move {
        let id = new_id("logsdebug");
        let mut body = provision_body(MARIADB, MARIADB_10G);
        body["parameters"] = loopback_parameters();
        let async_uri = format!("/v2/service_instances/{id}?accepts_incomplete=true");
        ok(
            &h,
            Method::PUT,
            &async_uri,
            Some(body),
            StatusCode::ACCEPTED,
        )
        .await;
        assert_eq!(poll(&h, &id).await["state"], "succeeded");

        let appliance = h.sim.appliances().pop().expect("one appliance");
        let db = h
            .app
            .sakura
            .read(&appliance.zone, appliance.id)
            .await
            .expect("the appliance reads back");
        let admin_passwords = admin_passwords(&h.sim.requests());
        assert!(
            admin_passwords.contains(&db.settings.user_password.expose().to_owned()),
            "the appliance read back carries its admin password"
        );
        let admin = AdminAccount {
            engine: osb_sacloud::sacloud::Engine::MariaDb,
            host: "127.0.0.1".into(),
            port: 3306,
            database: db.settings.default_user.clone(),
            username: db.settings.default_user.clone(),
            password: db.settings.user_password.clone(),
            tls: osb_sacloud::binder::TlsMode::Disable,
        };
        let credentials =
            shared::binding_credentials(&admin, "binder", Secret::new(BINDING_PASSWORD));
        let client_config = ClientConfig::new(
            h.sim.root_url(),
            Secret::new(SAKURA_TOKEN),
            Secret::new(SAKURA_SECRET),
        );
        let mut sim_config = simulator_config();
        sim_config.access_token = SAKURA_TOKEN.into();
        sim_config.access_token_secret = SAKURA_SECRET.into();
        sim_config.mariadb_url = Some(format!("mysql://root:{DB_URL_PASSWORD}@127.0.0.1:3306/"));
        sim_config.postgres_url = Some(format!("postgres://postgres:{DB_URL_PASSWORD}@127.0.0.1/"));
        let keyring = Keyring::from_config(&b64(RAW_KEY)).expect("key");

        let mut outputs = vec![
            shown("Config", &config_from(&env)),
            shown("App password", &h.app.password),
            ("App password (Display)".into(), h.app.password.to_string()),
            shown("Keyring", &keyring),
            shown("Database", &db),
            shown("DatabaseSettings", &db.settings),
            shown("ClientConfig", &client_config),
            shown("Client", &h.app.sakura),
            shown("SimulatorConfig", &sim_config),
            shown("RecordedRequest", &h.sim.requests()),
            shown(
                "BasicAuth",
                &BasicAuth::new(USER, &Secret::new(BROKER_PASSWORD)),
            ),
            shown("AdminAccount", &admin),
            shown("Credentials", &credentials),
        ];
        // A key that is not base64, and one of the wrong length, must not be echoed in the error.
        let bad_keys = [
            "keyLOG!!not-base64!!0123456789".to_owned(),
            b64(&RAW_KEY[..31]),
        ];
        for bad in &bad_keys {
            let e = Keyring::from_config(bad).expect_err("a bad key is refused");
            outputs.push(("Keyring error".into(), format!("{e} {e:?}")));
        }

        let delete = format!("{async_uri}&service_id={MARIADB}&plan_id={MARIADB_10G}");
        ok(&h, Method::DELETE, &delete, None, StatusCode::ACCEPTED).await;
        assert_eq!(poll(&h, &id).await["state"], "succeeded");

        let mut needles = static_needles();
        needles.extend(
            admin_passwords
                .iter()
                .map(|p| Needle::new("appliance admin password", p.clone())),
        );
        needles.push(Needle::new("database URL password", DB_URL_PASSWORD));
        needles.push(Needle::new("binding password", BINDING_PASSWORD));
        needles.extend(
            bad_keys
                .iter()
                .map(|k| Needle::new("bad encryption key", k.clone())),
        );
        for (what, text) in &outputs {
            assert_absent(what, text, &needles);
        }
        // The search itself works: the password is right there in the one place it belongs.
        assert!(credentials.uri(admin.engine).contains(BINDING_PASSWORD));
    })
    .await;
}
