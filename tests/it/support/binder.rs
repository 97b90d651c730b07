//! Helpers for the binder tests: simulated appliances on the real servers, cleaned up whatever
//! the test does, and a check that nothing is left behind.

use std::future::Future;
use std::str::FromStr;

use osb_sacloud::binder::{
    AdminAccount, Credentials, TlsMode, generate_password, generate_username,
};
use osb_sacloud::sacloud::Engine;
use osb_sacloud::sacloud::simulator::backing::Backing;
use osb_sacloud::secret::Secret;
use rand::distr::{Alphanumeric, SampleString};
use sqlx::mysql::{MySqlConnectOptions, MySqlConnection};
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{ConnectOptions, Connection};

pub fn mariadb_url() -> String {
    std::env::var("SIMULATOR_MARIADB_URL").unwrap_or_else(|_| "mysql://root@127.0.0.1:3306/".into())
}

pub fn postgres_url() -> String {
    std::env::var("SIMULATOR_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// A backing for one engine; a server that cannot be reached fails the test, loudly.
pub async fn backing(engine: Engine) -> Backing {
    let (my, pg) = match engine {
        Engine::MariaDb => (Some(mariadb_url()), None),
        Engine::Postgres => (None, Some(postgres_url())),
    };
    match Backing::connect(my.as_deref(), pg.as_deref()).await {
        Ok(Some(b)) => b,
        Ok(None) => panic!("Backing::connect returned None although a URL was given"),
        Err(e) => panic!("the {engine:?} test server is required and unreachable: {e}"),
    }
}

/// A lower-case name unique to this run: `osbt` + 10 random characters.
pub fn unique_name() -> String {
    let tail = Alphanumeric
        .sample_string(&mut rand::rng(), 10)
        .to_lowercase();
    format!("osbt{tail}")
}

/// A fresh binding user name and password, as the broker would make them.
pub fn new_binding() -> (String, Secret) {
    (generate_username(&unique_name()), generate_password())
}

/// Credentials that log in as `username` on the admin's server and database.
pub fn creds(admin: &AdminAccount, username: &str, password: &Secret) -> Credentials {
    osb_sacloud::binder::shared::binding_credentials(admin, username, password.clone())
}

pub enum Session {
    My(MySqlConnection),
    Pg(PgConnection),
}

/// Log in with the credentials' `uri`, parsed as a URL by sqlx's own option parser.
pub async fn login(engine: Engine, c: &Credentials) -> Result<Session, sqlx::Error> {
    let uri = c.uri(engine);
    match engine {
        Engine::MariaDb => {
            let options = MySqlConnectOptions::from_str(&uri)?;
            Ok(Session::My(options.connect().await?))
        }
        Engine::Postgres => {
            let options = PgConnectOptions::from_str(&uri)?;
            Ok(Session::Pg(options.connect().await?))
        }
    }
}

/// Create `n` appliances (admin user + database) on the real server, run `body` with their
/// admin accounts, then drop them all even if `body` panicked, and check that no account,
/// role or database of theirs (nor any binding user `body` reports) is left behind.
pub async fn with_appliances<F, Fut>(engine: Engine, n: usize, body: F)
where
    F: FnOnce(Vec<AdminAccount>) -> Fut,
    Fut: Future<Output = Vec<String>> + Send + 'static,
{
    let backing = backing(engine).await;
    let mut admins = Vec::new();
    for _ in 0..n {
        let name = unique_name();
        let password = generate_password();
        let created = backing.create_admin(engine, &name, password.expose()).await;
        admins.push(AdminAccount {
            engine,
            host: "127.0.0.1".into(),
            port: engine.default_port(),
            database: name.clone(),
            username: name,
            password,
            tls: TlsMode::Disable,
        });
        if let Err(e) = created {
            drop_all(&backing, engine, &admins).await;
            panic!("create_admin failed: {e}");
        }
    }
    let outcome = tokio::spawn(body(admins.clone())).await;
    drop_all(&backing, engine, &admins).await;
    let bindings = match outcome {
        Ok(bindings) => bindings,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    };
    let mut names: Vec<String> = admins.iter().map(|a| a.username.clone()).collect();
    names.extend(bindings);
    let left = leftovers(engine, &names).await;
    assert_eq!(
        left, 0,
        "accounts, roles or databases left after drop_admin among {names:?}"
    );
}

async fn drop_all(backing: &Backing, engine: Engine, admins: &[AdminAccount]) {
    for admin in admins {
        if let Err(e) = backing.drop_admin(engine, &admin.username).await {
            eprintln!("cleanup: drop_admin {} failed: {e}", admin.username);
        }
    }
}

/// Accounts, roles (including the appliances' group roles) and databases named in `names`.
pub async fn leftovers(engine: Engine, names: &[String]) -> i64 {
    match engine {
        Engine::MariaDb => {
            let mut root = MySqlConnection::connect(&mariadb_url())
                .await
                .expect("root login");
            let mut total = 0;
            for name in names {
                let n: i64 = sqlx::query_scalar(
                    "SELECT (SELECT COUNT(*) FROM mysql.user WHERE User = ?) \
                     + (SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?)",
                )
                .bind(name)
                .bind(name)
                .fetch_one(&mut root)
                .await
                .expect("count leftovers");
                total += n;
            }
            total
        }
        Engine::Postgres => {
            let mut root = PgConnection::connect(&postgres_url())
                .await
                .expect("postgres login");
            let groups: Vec<String> = names
                .iter()
                .map(|n| osb_sacloud::binder::postgres::group_role(n))
                .collect();
            sqlx::query_scalar(
                "SELECT (SELECT count(*) FROM pg_roles WHERE rolname = ANY($1) OR rolname = ANY($2)) \
                 + (SELECT count(*) FROM pg_database WHERE datname = ANY($1))",
            )
            .bind(names)
            .bind(&groups)
            .fetch_one(&mut root)
            .await
            .expect("count leftovers")
        }
    }
}

/// Whether an account or role of that name exists on the server.
pub async fn user_exists(engine: Engine, name: &str) -> bool {
    leftovers(engine, &[name.to_owned()]).await > 0
}

/// Two `create_user` calls for the same binding at once both succeed and leave one user;
/// returns the user and password for the engine's own login checks.
pub async fn create_user_twice_at_once(admin: &AdminAccount) -> (String, Secret) {
    let (u, p) = new_binding();
    let spawn_create = |(a, u, p): (AdminAccount, String, Secret)| {
        tokio::spawn(async move { osb_sacloud::binder::create_user(&a, &u, &p).await })
    };
    let t1 = spawn_create((admin.clone(), u.clone(), p.clone()));
    let t2 = spawn_create((admin.clone(), u.clone(), p.clone()));
    t1.await.unwrap().expect("first concurrent create");
    t2.await.unwrap().expect("second concurrent create");
    assert!(user_exists(admin.engine, &u).await);
    (u, p)
}

/// An admin account on a closed port is reported unreachable, and one that cannot log in to the
/// real server (`server_port`) fails `create_user` the same way; neither error shows the password.
pub async fn unreachable_admin_is_reported(engine: Engine, server_port: u16) {
    use osb_sacloud::binder::{Error, check_reachable, create_user};
    let admin = AdminAccount {
        engine,
        host: "127.0.0.1".into(),
        port: 1,
        database: "x".into(),
        username: "x".into(),
        password: Secret::new("hunter2-secret"),
        tls: TlsMode::Disable,
    };
    match check_reachable(&admin).await {
        Err(Error::Unreachable { address, cause }) => {
            assert_eq!(address, "127.0.0.1:1");
            assert!(!cause.contains("hunter2"), "{cause}");
        }
        other => panic!("expected Unreachable, got {other:?}"),
    }
    let wrong = AdminAccount {
        port: server_port,
        username: "osbt_nobody".into(),
        ..admin
    };
    let err = create_user(&wrong, "bx", &Secret::new("pw"))
        .await
        .expect_err("an unknown admin cannot log in");
    assert!(matches!(err, Error::Unreachable { .. }), "{err}");
    assert!(!err.to_string().contains("hunter2"), "{err}");
}

/// The backing refuses to make or drop admin accounts with the server's reserved `names`.
pub async fn reserved_admin_names_are_refused(engine: Engine, names: &[&str]) {
    let b = backing(engine).await;
    for name in names {
        assert!(
            b.create_admin(engine, name, "x").await.is_err(),
            "{name} must be refused"
        );
        assert!(
            b.drop_admin(engine, name).await.is_err(),
            "{name} must be refused"
        );
    }
}

/// Ten binds and ten unbinds on one appliance, timed; prints the averages.
pub async fn bind_latency(engine: Engine) {
    with_appliances(engine, 1, |apps| async move {
        let a = &apps[0];
        let mut users = Vec::new();
        let (mut bind, mut unbind) = (Vec::new(), Vec::new());
        for _ in 0..10 {
            let (u, p) = new_binding();
            let t = std::time::Instant::now();
            osb_sacloud::binder::create_user(a, &u, &p)
                .await
                .expect("create_user");
            bind.push(t.elapsed());
            users.push(u);
        }
        for u in &users {
            let t = std::time::Instant::now();
            osb_sacloud::binder::drop_user(a, u)
                .await
                .expect("drop_user");
            unbind.push(t.elapsed());
        }
        let avg =
            |v: &[std::time::Duration]| v.iter().sum::<std::time::Duration>() / v.len() as u32;
        println!(
            "{engine:?}: create_user avg {:?} (max {:?}), drop_user avg {:?} over {} bindings",
            avg(&bind),
            bind.iter().max().unwrap(),
            avg(&unbind),
            bind.len()
        );
        users
    })
    .await;
}
