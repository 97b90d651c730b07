//! Dedicated bindings on a real MariaDB server, on appliances simulated by `Backing`.

use osb_sacloud::binder::quote::{mariadb_ident, mariadb_literal};
use osb_sacloud::binder::{self, AdminAccount, create_user, drop_user};
use osb_sacloud::sacloud::Engine;
use osb_sacloud::secret::Secret;
use sqlx::AssertSqlSafe;
use sqlx::mysql::MySqlConnection;

use crate::support::binder::{
    Session, backing, bind_latency, create_user_twice_at_once, creds, login, new_binding,
    reserved_admin_names_are_refused, unreachable_admin_is_reported, user_exists, with_appliances,
};

const E: Engine = Engine::MariaDb;

async fn login_as(
    admin: &AdminAccount,
    user: &str,
    password: &Secret,
) -> Result<MySqlConnection, sqlx::Error> {
    match login(E, &creds(admin, user, password)).await? {
        Session::My(conn) => Ok(conn),
        Session::Pg(_) => unreachable!("a mysql:// uri opened a PostgreSQL session"),
    }
}

async fn run(conn: &mut MySqlConnection, sql: &str) -> Result<(), sqlx::Error> {
    sqlx::raw_sql(AssertSqlSafe(sql.to_owned()))
        .execute(conn)
        .await
        .map(drop)
}

async fn count(conn: &mut MySqlConnection, table: &str) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}")))
        .fetch_one(conn)
        .await
}

fn db_error_code(e: &sqlx::Error) -> Option<u16> {
    e.as_database_error()
        .and_then(binder::mariadb::error_number)
}

#[cfg_attr(
    not(feature = "services"),
    ignore = "needs MariaDB on 127.0.0.1:3306: run scripts/test.sh"
)]
#[tokio::test]
async fn mariadb_binding_lifecycle() {
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
        run(&mut s1, "CREATE TABLE t (id INT PRIMARY KEY, v TEXT)")
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
        let grants: Vec<String> = sqlx::query_scalar("SHOW GRANTS")
            .fetch_all(&mut s1)
            .await
            .unwrap();
        assert_eq!(grants.len(), 2, "{grants:?}");
        assert!(grants[0].starts_with("GRANT USAGE ON *.*"), "{grants:?}");
        let mut o = login_as(other, &other.username, &other.password)
            .await
            .expect("other admin");
        run(&mut o, "CREATE TABLE secret (x INT)").await.unwrap();
        let other_db = mariadb_ident(&other.database).unwrap();
        let err = count(&mut s1, &format!("{other_db}.secret"))
            .await
            .expect_err("cross-appliance read");
        assert_eq!(db_error_code(&err), Some(1142), "{err}");
        let mut elsewhere = creds(a, &u1, &p1);
        elsewhere.database = other.database.clone();
        let err = login(E, &elsewhere)
            .await
            .err()
            .expect("login to another appliance's database is refused");
        assert_eq!(db_error_code(&err), Some(1044), "{err}");
        assert!(
            run(&mut s1, "CREATE DATABASE osbt_not_allowed")
                .await
                .is_err()
        );

        // Unbind: session ended, login refused, data kept for the other binding.
        drop_user(a, &u1).await.expect("drop_user");
        assert!(
            count(&mut s1, "t").await.is_err(),
            "the dropped binding's session was ended"
        );
        let err = login_as(a, &u1, &p1)
            .await
            .expect_err("dropped binding cannot log in");
        assert_eq!(db_error_code(&err), Some(1045), "{err}");
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
    ignore = "needs MariaDB on 127.0.0.1:3306: run scripts/test.sh"
)]
#[tokio::test]
async fn mariadb_retry_resets_the_password() {
    with_appliances(E, 1, |apps| async move {
        let a = &apps[0];
        let (u, p_old) = new_binding();
        create_user(a, &u, &p_old).await.unwrap();
        let p_new = binder::generate_password();
        create_user(a, &u, &p_new).await.unwrap();
        assert!(
            login_as(a, &u, &p_old).await.is_err(),
            "old password no longer works"
        );
        login_as(a, &u, &p_new).await.expect("new password works");
        vec![u]
    })
    .await;
}

#[cfg_attr(
    not(feature = "services"),
    ignore = "needs MariaDB on 127.0.0.1:3306: run scripts/test.sh"
)]
#[tokio::test]
async fn mariadb_concurrent_create_user_converges() {
    with_appliances(E, 1, |apps| async move {
        let a = apps[0].clone();
        let (u, p) = create_user_twice_at_once(&a).await;
        login_as(&a, &u, &p)
            .await
            .expect("login after concurrent creates");
        vec![u]
    })
    .await;
}

#[cfg_attr(
    not(feature = "services"),
    ignore = "needs MariaDB on 127.0.0.1:3306: run scripts/test.sh"
)]
#[tokio::test]
async fn mariadb_drop_user_without_connection_admin_still_drops() {
    with_appliances(E, 1, |apps| async move {
        let a = &apps[0];
        let (u, p) = new_binding();
        create_user(a, &u, &p).await.unwrap();
        let mut session = login_as(a, &u, &p).await.unwrap();
        run(&mut session, "SELECT 1").await.unwrap();
        let url = crate::support::binder::mariadb_url();
        let mut root = binder::mariadb::open(url.parse().unwrap(), &[])
            .await
            .unwrap();
        let account = osb_sacloud::binder::quote::mariadb_account(&a.username, "%").unwrap();
        run(
            &mut root,
            &format!("REVOKE CONNECTION ADMIN ON *.* FROM {account}"),
        )
        .await
        .unwrap();
        drop_user(a, &u)
            .await
            .expect("drop_user without the right to kill sessions");
        assert!(!user_exists(E, &u).await);
        assert!(login_as(a, &u, &p).await.is_err(), "no new logins");
        vec![u]
    })
    .await;
}

#[cfg_attr(
    not(feature = "services"),
    ignore = "needs MariaDB on 127.0.0.1:3306: run scripts/test.sh"
)]
#[tokio::test]
async fn mariadb_special_password_logs_in_through_the_uri() {
    with_appliances(E, 1, |apps| async move {
        let a = &apps[0];
        let (u, _) = new_binding();
        let p = Secret::new("p@ss:w/rd?#[]%25 &=+'\"\\`ü;--");
        create_user(a, &u, &p)
            .await
            .expect("create_user with a hard password");
        login_as(a, &u, &p)
            .await
            .expect("the uri carries the password intact");
        vec![u]
    })
    .await;
}

#[cfg_attr(
    not(feature = "services"),
    ignore = "needs MariaDB on 127.0.0.1:3306: run scripts/test.sh"
)]
#[tokio::test]
async fn mariadb_quoting_round_trips_through_the_server() {
    let url = crate::support::binder::mariadb_url();
    let options: sqlx::mysql::MySqlConnectOptions = url.parse().expect("url");
    let mut conn = binder::mariadb::open(options, &[])
        .await
        .expect("root login");
    for s in [
        "plain",
        "it's",
        "back\\slash",
        "\\'; DROP TABLE x; --",
        "`tick`",
        "ü\"'\\\\'",
    ] {
        let sql = format!(
            "SELECT {} AS {}",
            mariadb_literal(s).unwrap(),
            mariadb_ident(s).unwrap()
        );
        let row = sqlx::query(AssertSqlSafe(sql))
            .fetch_one(&mut conn)
            .await
            .expect(s);
        use sqlx::{Column, Row};
        assert_eq!(row.try_get::<String, _>(0).unwrap(), s);
        assert_eq!(row.columns()[0].name(), s);
    }
}

#[tokio::test]
async fn mariadb_unreachable_admin_is_reported_without_the_password() {
    unreachable_admin_is_reported(E, 3306).await;
}

#[cfg_attr(
    not(feature = "services"),
    ignore = "needs MariaDB on 127.0.0.1:3306: run scripts/test.sh"
)]
#[tokio::test]
async fn mariadb_backing_admin_password_and_reserved_names() {
    reserved_admin_names_are_refused(E, &["root", "mysql", "mariadb.sys"]).await;
    with_appliances(E, 1, |apps| async move {
        let a = apps[0].clone();
        let b = backing(E).await;
        b.create_admin(E, &a.username, a.password.expose())
            .await
            .expect("create_admin is idempotent");
        let new_pw = Secret::new("n3w'pw\\");
        b.set_admin_password(E, &a.username, new_pw.expose())
            .await
            .expect("set_admin_password");
        assert!(
            login_as(&a, &a.username, &a.password).await.is_err(),
            "old admin password refused"
        );
        let renewed = AdminAccount {
            password: new_pw,
            ..a
        };
        binder::check_reachable(&renewed)
            .await
            .expect("new admin password works");
        vec![]
    })
    .await;
}

#[cfg_attr(
    not(feature = "services"),
    ignore = "needs MariaDB on 127.0.0.1:3306: run scripts/test.sh"
)]
#[tokio::test]
async fn mariadb_bind_latency() {
    bind_latency(E).await;
}
