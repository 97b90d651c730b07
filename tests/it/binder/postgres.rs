//! Dedicated bindings on a real PostgreSQL server, on appliances simulated by `Backing`.
//!
//! The test server trusts loopback logins, so these tests prove roles, grants and CONNECT
//! rules, not password checks (the MariaDB tests cover passwords end to end).

use osb_sacloud::binder::postgres::group_role;
use osb_sacloud::binder::quote::{pg_ident, pg_literal};
use osb_sacloud::binder::{self, AdminAccount, create_user, drop_user};
use osb_sacloud::sacloud::Engine;
use osb_sacloud::secret::Secret;
use sqlx::postgres::PgConnection;
use sqlx::{AssertSqlSafe, Connection};

use crate::support::binder::{
    Session, backing, bind_latency, create_user_twice_at_once, creds, login, new_binding,
    reserved_admin_names_are_refused, unreachable_admin_is_reported, user_exists, with_appliances,
};

const E: Engine = Engine::Postgres;

async fn login_as(
    admin: &AdminAccount,
    user: &str,
    password: &Secret,
) -> Result<PgConnection, sqlx::Error> {
    match login(E, &creds(admin, user, password)).await? {
        Session::Pg(conn) => Ok(conn),
        Session::My(_) => unreachable!("a postgresql:// uri opened a MariaDB session"),
    }
}

async fn run(conn: &mut PgConnection, sql: &str) -> Result<(), sqlx::Error> {
    sqlx::raw_sql(AssertSqlSafe(sql.to_owned()))
        .execute(conn)
        .await
        .map(drop)
}

async fn count(conn: &mut PgConnection, table: &str) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(AssertSqlSafe(format!("SELECT count(*) FROM {table}")))
        .fetch_one(conn)
        .await
}

fn sqlstate(e: &sqlx::Error) -> Option<String> {
    e.as_database_error()
        .and_then(|d| d.code())
        .map(|c| c.into_owned())
}

#[cfg_attr(
    not(feature = "services"),
    ignore = "needs PostgreSQL on 127.0.0.1:5432: run scripts/test.sh"
)]
#[tokio::test]
async fn postgres_binding_lifecycle() {
    with_appliances(E, 2, |apps| async move {
        let (a, other) = (&apps[0], &apps[1]);
        let (u1, p1) = new_binding();
        create_user(a, &u1, &p1).await.expect("create_user");
        create_user(a, &u1, &p1)
            .await
            .expect("create_user again is a no-op");
        let mut s1 = login_as(a, &u1, &p1)
            .await
            .expect("first binding logs in via its uri");
        run(&mut s1, "CREATE TABLE t (id int PRIMARY KEY, v text)")
            .await
            .expect("create table");
        run(&mut s1, "INSERT INTO t VALUES (1, 'from b1')")
            .await
            .expect("insert");
        let v: String = sqlx::query_scalar("SELECT v FROM t WHERE id = 1")
            .fetch_one(&mut s1)
            .await
            .unwrap();
        assert_eq!(v, "from b1");
        let owner: String =
            sqlx::query_scalar("SELECT tableowner::text FROM pg_tables WHERE tablename = 't'")
                .fetch_one(&mut s1)
                .await
                .unwrap();
        assert_eq!(
            owner,
            group_role(&a.database),
            "objects belong to the instance's group role"
        );

        let (u2, p2) = new_binding();
        create_user(a, &u2, &p2).await.expect("second binding");
        let mut s2 = login_as(a, &u2, &p2).await.expect("second binding logs in");
        assert_eq!(
            count(&mut s2, "t").await.unwrap(),
            1,
            "second binding reads the first one's rows"
        );
        run(&mut s2, "INSERT INTO t VALUES (2, 'from b2')")
            .await
            .expect("second binding inserts");

        // Nothing beyond the instance's database.
        let mut elsewhere = creds(a, &u1, &p1);
        elsewhere.database = other.database.clone();
        let err = login(E, &elsewhere)
            .await
            .err()
            .expect("login to another appliance's database is refused");
        assert_eq!(sqlstate(&err).as_deref(), Some("42501"), "{err}");
        let mut o = login_as(other, &other.username, &other.password)
            .await
            .expect("other admin");
        run(&mut o, "SELECT 1").await.unwrap();
        let err = run(&mut s1, "CREATE ROLE osbt_not_allowed")
            .await
            .expect_err("no CREATEROLE");
        assert_eq!(sqlstate(&err).as_deref(), Some("42501"), "{err}");
        let err = run(
            &mut s1,
            "RESET ROLE; SET ROLE NONE; CREATE DATABASE osbt_not_allowed",
        )
        .await;
        assert!(err.is_err(), "no CREATEDB");

        // Unbind: session ended, login refused, data kept for the other binding.
        drop_user(a, &u1).await.expect("drop_user");
        assert!(
            count(&mut s1, "t").await.is_err(),
            "the dropped binding's session was ended"
        );
        assert!(
            login_as(a, &u1, &p1).await.is_err(),
            "dropped binding cannot log in"
        );
        assert_eq!(
            count(&mut s2, "t").await.unwrap(),
            2,
            "data stays after unbind"
        );
        drop_user(a, &u1).await.expect("drop_user again is a no-op");
        assert!(!user_exists(E, &u1).await);
        vec![u1, u2]
    })
    .await;
}

#[cfg_attr(
    not(feature = "services"),
    ignore = "needs PostgreSQL on 127.0.0.1:5432: run scripts/test.sh"
)]
#[tokio::test]
async fn postgres_objects_a_binding_owns_itself_survive_its_drop() {
    with_appliances(E, 1, |apps| async move {
        let a = &apps[0];
        let (u1, p1) = new_binding();
        let (u2, p2) = new_binding();
        create_user(a, &u1, &p1).await.unwrap();
        create_user(a, &u2, &p2).await.unwrap();
        let mut s1 = login_as(a, &u1, &p1).await.unwrap();
        // Step out of the group role: this table belongs to the binding role itself.
        run(
            &mut s1,
            "RESET ROLE; CREATE TABLE mine (x int); INSERT INTO mine VALUES (7)",
        )
        .await
        .unwrap();
        drop_user(a, &u1)
            .await
            .expect("drop_user hands the table to the group");
        let mut s2 = login_as(a, &u2, &p2).await.unwrap();
        assert_eq!(count(&mut s2, "mine").await.unwrap(), 1);
        vec![u1, u2]
    })
    .await;
}

#[cfg_attr(
    not(feature = "services"),
    ignore = "needs PostgreSQL on 127.0.0.1:5432: run scripts/test.sh"
)]
#[tokio::test]
async fn postgres_concurrent_create_user_converges() {
    with_appliances(E, 1, |apps| async move {
        let a = apps[0].clone();
        let (u, p) = create_user_twice_at_once(&a).await;
        let mut s = login_as(&a, &u, &p)
            .await
            .expect("login after concurrent creates");
        run(&mut s, "CREATE TABLE t (x int)")
            .await
            .expect("binding can create");
        vec![u]
    })
    .await;
}

#[cfg_attr(
    not(feature = "services"),
    ignore = "needs PostgreSQL on 127.0.0.1:5432: run scripts/test.sh"
)]
#[tokio::test]
async fn postgres_concurrent_first_bindings_share_one_group() {
    with_appliances(E, 1, |apps| async move {
        let a = apps[0].clone();
        let mut tasks = Vec::new();
        let mut users = Vec::new();
        for _ in 0..4 {
            let (u, p) = new_binding();
            users.push(u.clone());
            let a = a.clone();
            tasks.push(tokio::spawn(async move { create_user(&a, &u, &p).await }));
        }
        for t in tasks {
            t.await
                .unwrap()
                .expect("concurrent first binds all succeed");
        }
        users
    })
    .await;
}

#[cfg_attr(
    not(feature = "services"),
    ignore = "needs PostgreSQL on 127.0.0.1:5432: run scripts/test.sh"
)]
#[tokio::test]
async fn postgres_quoting_round_trips_through_the_server() {
    let mut conn = PgConnection::connect(&crate::support::binder::postgres_url())
        .await
        .expect("login");
    for s in [
        "plain",
        "it's",
        "back\\slash",
        "\\'; DROP TABLE x; --",
        "\"dq\"",
        "ü\"'\\\\'",
        "MiXeD",
    ] {
        let sql = format!(
            "SELECT {} AS {}",
            pg_literal(s).unwrap(),
            pg_ident(s).unwrap()
        );
        let row = sqlx::query(AssertSqlSafe(sql))
            .fetch_one(&mut conn)
            .await
            .expect(s);
        use sqlx::{Column, Row};
        assert_eq!(row.try_get::<String, _>(0).unwrap(), s);
        assert_eq!(row.columns()[0].name(), s);
    }
    run(&mut conn, "SET standard_conforming_strings = off")
        .await
        .unwrap();
    let sql = format!("SELECT {}", pg_literal("a\\b'c").unwrap());
    let v: String = sqlx::query_scalar(AssertSqlSafe(sql))
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(
        v, "a\\b'c",
        "E'' literals mean the same under either setting"
    );
}

#[tokio::test]
async fn postgres_unreachable_admin_is_reported() {
    unreachable_admin_is_reported(E, 5432).await;
}

#[cfg_attr(
    not(feature = "services"),
    ignore = "needs PostgreSQL on 127.0.0.1:5432: run scripts/test.sh"
)]
#[tokio::test]
async fn postgres_backing_reserved_names_and_debug() {
    reserved_admin_names_are_refused(E, &["postgres", "root", "template1", "pg_monitor"]).await;
    let url = "postgres://postgres:s3cr3t-in-url@127.0.0.1:5432/postgres";
    let with_pw = osb_sacloud::sacloud::simulator::backing::Backing::connect(None, Some(url))
        .await
        .expect("trust auth ignores the password")
        .expect("a backing");
    let text = format!("{with_pw:?}");
    assert!(!text.contains("s3cr3t"), "{text}");
    assert!(with_pw.backs(E) && !with_pw.backs(Engine::MariaDb));
    with_appliances(E, 1, |apps| async move {
        let a = apps[0].clone();
        let b = backing(E).await;
        b.create_admin(E, &a.username, a.password.expose())
            .await
            .expect("create_admin is idempotent");
        b.set_admin_password(E, &a.username, "n3w'pw\\")
            .await
            .expect("set_admin_password");
        binder::check_reachable(&a)
            .await
            .expect("admin still logs in");
        vec![]
    })
    .await;
}

#[cfg_attr(
    not(feature = "services"),
    ignore = "needs PostgreSQL on 127.0.0.1:5432: run scripts/test.sh"
)]
#[tokio::test]
async fn postgres_bind_latency() {
    bind_latency(E).await;
}
