//! Dedicated bindings when things go wrong, against the real servers: a database the broker
//! cannot reach, an admin password rotated under live bindings, and a crash between recording a
//! binding and making (or dropping) its user.

use axum::http::{Method, StatusCode};
use osb_sacloud::binder::crypto::Keyring;
use osb_sacloud::binder::{self, generate_password, generate_username};
use osb_sacloud::broker::records::{BindingRecord, BindingState, Credential};
use osb_sacloud::sacloud::Engine;
use osb_sacloud::sacloud::simulator::{Faults, RouteFaults};
use osb_sacloud::secret::Secret;
use osb_sacloud::store::{Cond, Item, Key, WriteOp, now_unix};
use serde_json::{Value, json};
use sqlx::{Connection, PgConnection};

use crate::support::binder::{leftovers, postgres_url, unique_name, user_exists};
use crate::support::dedicated::*;
use crate::support::*;

/// A loopback port nothing listens on (bound, then released).
async fn closed_port() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    listener.local_addr().expect("address").port()
}

#[cfg_attr(
    not(feature = "services"),
    ignore = "needs MariaDB and PostgreSQL on 127.0.0.1: run scripts/test.sh"
)]
#[tokio::test]
async fn unreachable_database_is_a_clear_error_and_creates_nothing() {
    run("dedicated", |h| async move {
        for kind in [MARIADB_KIND, POSTGRES_KIND] {
            let id = new_id("ded-down");
            let port = closed_port().await;
            provision_at(&h, &id, kind, port, &unique_name()).await;
            let binding = binding_id();
            let mut first = None;
            for attempt in 0..2 {
                let (status, body) = bind(&h, &id, &binding, kind, Value::Null).await;
                assert_eq!(status, StatusCode::BAD_GATEWAY, "attempt {attempt}: {body}");
                let description = body["description"].as_str().expect("description");
                assert!(
                    description.contains(&format!("127.0.0.1:{port}")),
                    "names the address it tried: {description}"
                );
                assert!(
                    description.contains("\"mode\": \"shared\""),
                    "points at shared mode: {description}"
                );
                let (status, _, _) = h
                    .call(Method::GET, &binding_path(&id, &binding), None)
                    .await;
                assert_eq!(status, StatusCode::NOT_FOUND, "attempt {attempt}");
                assert_eq!(
                    stored_bindings(&h, &id).await,
                    Vec::<String>::new(),
                    "{body}"
                );
                let user = generate_username(&binding);
                assert!(
                    !user_exists(kind.engine, &user).await,
                    "user {user} was made"
                );
                // A retry behaves exactly the same.
                let seen = (status, body["error"].clone(), description.to_owned());
                assert_eq!(first.get_or_insert_with(|| seen.clone()), &seen);
            }
            // The way out the error names works.
            let c = bind_ok(&h, &id, &binding, kind, json!({"mode": "shared"})).await;
            assert_eq!(c["port"], json!(port));
            deprovision(&h, &id, kind).await;
        }
    })
    .await;
}

/// SAKURA Cloud failing the appliance read of a dedicated bind leaves nothing behind either.
#[cfg_attr(
    not(feature = "services"),
    ignore = "needs MariaDB and PostgreSQL on 127.0.0.1: run scripts/test.sh"
)]
#[tokio::test]
async fn sakura_failure_during_a_dedicated_bind_creates_nothing() {
    run("dedicated", |h| async move {
        let kind = MARIADB_KIND;
        let id = new_id("ded-api");
        provision(&h, &id, kind).await;
        let binding = binding_id();
        let route = "GET /appliance/{id}".to_owned();
        let fault = RouteFaults {
            next_500: 1,
            ..RouteFaults::default()
        };
        h.sim.set_faults(Faults {
            routes: [(route, fault)].into(),
            ..Faults::default()
        });
        let (status, body) = bind(&h, &id, &binding, kind, Value::Null).await;
        assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
        assert_eq!(
            stored_bindings(&h, &id).await,
            Vec::<String>::new(),
            "{body}"
        );
        let (status, _, _) = h
            .call(Method::GET, &binding_path(&id, &binding), None)
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        // The platform may retry with other parameters: nothing stands in the way.
        let c = bind_ok(&h, &id, &binding, kind, json!({"mode": "dedicated"})).await;
        session(&c).await;
        let (status, _) = unbind(&h, &id, &binding, kind).await;
        assert_eq!(status, StatusCode::OK);
        deprovision(&h, &id, kind).await;
    })
    .await;
}

#[cfg_attr(
    not(feature = "services"),
    ignore = "needs MariaDB and PostgreSQL on 127.0.0.1: run scripts/test.sh"
)]
#[tokio::test]
async fn admin_password_rotation_on_mariadb() {
    run(
        "dedicated",
        |h| async move { rotation(&h, MARIADB_KIND).await },
    )
    .await;
}

#[cfg_attr(
    not(feature = "services"),
    ignore = "needs MariaDB and PostgreSQL on 127.0.0.1: run scripts/test.sh"
)]
#[tokio::test]
async fn admin_password_rotation_on_postgres() {
    run(
        "dedicated",
        |h| async move { rotation(&h, POSTGRES_KIND).await },
    )
    .await;
}

/// The stored password hash of a PostgreSQL role (the test server trusts every login, so a
/// changed hash is how a changed password shows).
async fn pg_password_hash(role: &str) -> Option<String> {
    let mut conn = PgConnection::connect(&postgres_url())
        .await
        .expect("postgres login");
    sqlx::query_scalar("SELECT rolpassword FROM pg_authid WHERE rolname = $1")
        .bind(role)
        .fetch_one(&mut conn)
        .await
        .expect("role exists")
}

async fn rotation(h: &Harness, kind: Kind) {
    let id = new_id("ded-rot");
    let admin = provision(h, &id, kind).await;
    let (dedicated, shared) = (binding_id(), binding_id());
    let d = bind_ok(h, &id, &dedicated, kind, Value::Null).await;
    let s = bind_ok(h, &id, &shared, kind, json!({"mode": "shared"})).await;
    let old = text(&s, "password");
    assert_eq!(old, admin_account(h, &id, kind).await.password.expose());
    session(&d)
        .await
        .write("rot", "before")
        .await
        .expect("write before");
    let hash_before = match kind.engine {
        Engine::Postgres => pg_password_hash(&admin).await,
        Engine::MariaDb => None,
    };

    let (status, _, body) = h
        .call(
            Method::PATCH,
            &format!("/v2/service_instances/{id}?accepts_incomplete=true"),
            Some(json!({"service_id": kind.service, "parameters": {"rotateAdminPassword": true}})),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let last = h.poll(&id).await;
    assert_eq!(last["state"], "succeeded", "{last}");

    let new = admin_account(h, &id, kind)
        .await
        .password
        .expose()
        .to_owned();
    assert_ne!(new, old, "SAKURA settings carry a new admin password");
    let old_uri = text(&s, "uri");
    let new_uri = old_uri.replace(&old, &new);
    match kind.engine {
        Engine::MariaDb => {
            assert!(
                login(&old_uri).await.is_err(),
                "the old admin password still logs in"
            );
        }
        Engine::Postgres => {
            assert_ne!(
                pg_password_hash(&admin).await,
                hash_before,
                "password unchanged"
            );
        }
    }
    login(&new_uri)
        .await
        .expect("the new admin password logs in");
    let secrets = [
        new.as_str(),
        old.as_str(),
        d["password"].as_str().expect("password"),
    ];
    assert_eq!(
        plaintext_in_store(h, &id, &secrets).await,
        Vec::<String>::new()
    );
    let (status, _, got) = h.call(Method::GET, &binding_path(&id, &shared), None).await;
    assert_eq!(status, StatusCode::OK, "{got}");
    assert_eq!(
        text(&got["credentials"], "password"),
        new,
        "shared GET has the new password"
    );
    assert_eq!(text(&got["credentials"], "uri"), new_uri);

    // The dedicated binding still works, and the broker manages users with the new password.
    let rows = session(&d)
        .await
        .write("rot", "after")
        .await
        .expect("write after");
    assert_eq!(rows, ["after", "before"]);
    let later = binding_id();
    let l = bind_ok(h, &id, &later, kind, Value::Null).await;
    assert_eq!(
        session(&l).await.values("rot").await.expect("read"),
        ["after", "before"]
    );
    for binding in [&dedicated, &later, &shared] {
        let (status, body) = unbind(h, &id, binding, kind).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let users = [text(&d, "username"), text(&l, "username")];
    assert_eq!(
        leftovers(kind.engine, &users).await,
        0,
        "unbind after rotation"
    );
    deprovision(h, &id, kind).await;
    assert_eq!(leftovers(kind.engine, &[admin]).await, 0);
}

#[cfg_attr(
    not(feature = "services"),
    ignore = "needs MariaDB and PostgreSQL on 127.0.0.1: run scripts/test.sh"
)]
#[tokio::test]
async fn half_made_bindings_heal_on_mariadb() {
    run(
        "dedicated",
        |h| async move { half_made(&h, MARIADB_KIND).await },
    )
    .await;
}

#[cfg_attr(
    not(feature = "services"),
    ignore = "needs MariaDB and PostgreSQL on 127.0.0.1: run scripts/test.sh"
)]
#[tokio::test]
async fn half_made_bindings_heal_on_postgres() {
    run("dedicated", |h| async move {
        half_made(&h, POSTGRES_KIND).await
    })
    .await;
}

/// Write the record a crashed bind (or unbind) would have left: user name and sealed password
/// recorded, the user made or not. Returns the password.
async fn crashed_binding(
    h: &Harness,
    id: &str,
    binding: &str,
    kind: Kind,
    state: BindingState,
) -> String {
    let password = generate_password();
    let keyring = Keyring::from_config(ENCRYPTION_KEY).expect("test key");
    let record = BindingRecord {
        instance_id: id.into(),
        binding_id: binding.into(),
        service_id: kind.service.into(),
        plan_id: kind.plan.into(),
        parameters: json!({}),
        bind_resource: json!({"app_guid": "app"}),
        credential: Credential::Dedicated {
            username: generate_username(binding),
            sealed_password: Some(keyring.seal(password.expose(), &[id, binding])),
            endpoint: None,
        },
        state,
        created_at: now_unix(),
        version: 0,
    };
    let item = Item {
        key: Key::binding(id, binding),
        version: 1,
        expires_at: None,
        data: serde_json::to_string(&record).expect("record serialises"),
    };
    h.store
        .write(vec![WriteOp::Put {
            item,
            cond: Cond::Absent,
        }])
        .await
        .expect("record written");
    password.expose().to_owned()
}

async fn half_made(h: &Harness, kind: Kind) {
    let id = new_id("ded-crash");
    let admin_name = provision(h, &id, kind).await;
    let admin = admin_account(h, &id, kind).await;

    // Crash after recording, before the user: the identical PUT finishes it.
    let healed = binding_id();
    let password = crashed_binding(h, &id, &healed, kind, BindingState::Creating).await;
    let (status, _, last) = h
        .call(
            Method::GET,
            &format!("{}/last_operation", binding_path(&id, &healed)),
            None,
        )
        .await;
    assert_eq!(
        (status, last["state"].as_str()),
        (StatusCode::OK, Some("in progress"))
    );
    let (status, _, _) = h.call(Method::GET, &binding_path(&id, &healed), None).await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "a half-made binding is not served"
    );
    let (status, body) = bind(h, &id, &healed, kind, Value::Null).await;
    assert!(
        status == StatusCode::OK || status == StatusCode::CREATED,
        "{status}: {body}"
    );
    let c = &body["credentials"];
    assert_eq!(text(c, "username"), generate_username(&healed));
    assert_eq!(
        text(c, "password"),
        password,
        "the recorded password, not a new one"
    );
    assert_eq!(
        session(c).await.write("healed", "ok").await.expect("works"),
        ["ok"]
    );
    let (status, _, got) = h.call(Method::GET, &binding_path(&id, &healed), None).await;
    assert_eq!((status, &got["credentials"]), (StatusCode::OK, c));

    // Crash after the user was made, before it was recorded as bound: unbind drops it.
    let made = binding_id();
    let pw = crashed_binding(h, &id, &made, kind, BindingState::Creating).await;
    let user = generate_username(&made);
    binder::create_user(&admin, &user, &Secret::new(pw))
        .await
        .expect("user made");
    // Crash in the middle of an unbind: the repeated DELETE finishes it.
    let unbinding = binding_id();
    let pw = crashed_binding(h, &id, &unbinding, kind, BindingState::Deleting).await;
    let user2 = generate_username(&unbinding);
    binder::create_user(&admin, &user2, &Secret::new(pw))
        .await
        .expect("user made");
    // Crash before the user was made: unbind has nothing to drop and still succeeds.
    let empty = binding_id();
    crashed_binding(h, &id, &empty, kind, BindingState::Creating).await;
    for binding in [&made, &unbinding, &empty, &healed] {
        let (status, body) = unbind(h, &id, binding, kind).await;
        assert_eq!(
            (status, body),
            (StatusCode::OK, json!({})),
            "unbind {binding}"
        );
        let (status, _, _) = h.call(Method::GET, &binding_path(&id, binding), None).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
    let users = [
        user,
        user2,
        generate_username(&healed),
        generate_username(&empty),
    ];
    assert_eq!(
        leftovers(kind.engine, &users).await,
        0,
        "binding users left"
    );
    deprovision(h, &id, kind).await;
    assert_eq!(leftovers(kind.engine, &[admin_name]).await, 0);
}
