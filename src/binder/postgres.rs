//! Dedicated binding users on PostgreSQL.
//!
//! Each instance database gets one NOLOGIN group role ([`group_role`]) with CONNECT, CREATE
//! and TEMPORARY on the database and USAGE, CREATE on schema `public` (PostgreSQL 15 no
//! longer lets everyone create there). Each binding is a LOGIN member of the group whose
//! sessions start with `SET ROLE <group>` (`ALTER ROLE .. SET role`), so the objects it
//! creates belong to the group: every binding of the instance can use them, and they outlive
//! the binding. Nothing is granted on other databases; appliances revoke CONNECT from PUBLIC.
//!
//! The admin account needs CREATEROLE and ownership of the database. It becomes a member of
//! the group and of each binding role, which is what lets it end their sessions and hand
//! over what they own when they are dropped.

use std::time::Duration;

use sha2::{Digest, Sha256};
use sqlx::postgres::{PgConnectOptions, PgConnection, PgSslMode};
use sqlx::{AssertSqlSafe, ConnectOptions, Connection};

use super::quote::{pg_ident, pg_literal};
use super::{AdminAccount, CONNECT_TIMEOUT, Error, TlsMode};
use crate::secret::Secret;

/// PostgreSQL's identifier limit (NAMEDATALEN - 1).
const MAX_NAME: usize = 63;

/// The group role shared by the bindings of `database`: `<database>_osb_shared`, or a
/// hashed name when that would pass PostgreSQL's 63-byte limit.
pub fn group_role(database: &str) -> String {
    let name = format!("{database}_osb_shared");
    if name.len() <= MAX_NAME {
        return name;
    }
    let digest = Sha256::digest(database.as_bytes());
    let hex: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
    format!("osb_shared_{hex}")
}

/// The sqlx mode for a [`TlsMode`].
pub fn ssl_mode(tls: TlsMode) -> PgSslMode {
    match tls {
        TlsMode::Disable => PgSslMode::Disable,
        TlsMode::Prefer => PgSslMode::Prefer,
        TlsMode::Require => PgSslMode::Require,
        TlsMode::VerifyFull => PgSslMode::VerifyFull,
    }
}

/// Connection options for the admin account: TLS as its [`TlsMode`] says, no statement logging.
pub fn admin_options(admin: &AdminAccount) -> PgConnectOptions {
    PgConnectOptions::new_without_pgpass()
        .host(&admin.host)
        .port(admin.port)
        .username(&admin.username)
        .password(admin.password.expose())
        .database(&admin.database)
        .ssl_mode(ssl_mode(admin.tls))
}

/// Connect within [`CONNECT_TIMEOUT`]. `secrets` are blanked out of error messages.
pub async fn open(options: PgConnectOptions, secrets: &[&str]) -> Result<PgConnection, Error> {
    connect(options, secrets, TlsMode::Disable).await
}

/// [`open`] with the admin account's options; a failure names its TLS mode when it required TLS.
pub async fn open_admin(admin: &AdminAccount, secrets: &[&str]) -> Result<PgConnection, Error> {
    connect(admin_options(admin), secrets, admin.tls).await
}

async fn connect(
    options: PgConnectOptions,
    secrets: &[&str],
    tls: TlsMode,
) -> Result<PgConnection, Error> {
    let address = super::address(options.get_host(), options.get_port());
    let options = options.disable_statement_logging();
    match tokio::time::timeout(CONNECT_TIMEOUT, options.connect()).await {
        Ok(Ok(conn)) => Ok(conn),
        Ok(Err(e)) => Err(Error::unreachable_with(address, e, secrets, tls)),
        Err(_) => {
            let cause = format!("no answer within {} s", CONNECT_TIMEOUT.as_secs());
            Err(Error::unreachable_with(address, cause, secrets, tls))
        }
    }
}

/// Run one statement built with the [`super::quote`] functions.
pub async fn exec(conn: &mut PgConnection, sql: String, secrets: &[&str]) -> Result<(), Error> {
    sqlx::raw_sql(AssertSqlSafe(sql))
        .execute(&mut *conn)
        .await
        .map(drop)
        .map_err(|e| Error::sql(e, secrets))
}

/// Whether a role of that name exists.
pub async fn role_exists(conn: &mut PgConnection, role: &str) -> Result<bool, Error> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)")
        .bind(role)
        .fetch_one(&mut *conn)
        .await
        .map_err(|e| Error::sql(e, &[]))
}

/// End every session of `role` and wait (up to a few seconds) until they are gone.
pub async fn terminate_sessions(conn: &mut PgConnection, role: &str) -> Result<(), Error> {
    sqlx::query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1")
        .bind(role)
        .execute(&mut *conn)
        .await
        .map_err(|e| Error::sql(e, &[]))?;
    for _ in 0..50 {
        let left: i64 =
            sqlx::query_scalar("SELECT count(*) FROM pg_stat_activity WHERE usename = $1")
                .bind(role)
                .fetch_one(&mut *conn)
                .await
                .map_err(|e| Error::sql(e, &[]))?;
        if left == 0 {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tracing::warn!(
        role,
        "sessions of a dropped binding role did not end within 5 s"
    );
    Ok(())
}

/// Serialise binding changes on one database: role creation is not idempotent under
/// concurrency (two `CREATE ROLE` of one name race on a unique index), so each change runs in
/// a transaction holding this advisory lock.
async fn lock_database(conn: &mut PgConnection, database: &str) -> Result<(), Error> {
    let digest = Sha256::digest(format!("osb-sacloud/{database}").as_bytes());
    let mut key = [0u8; 8];
    key.copy_from_slice(&digest[..8]);
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(i64::from_be_bytes(key))
        .execute(&mut *conn)
        .await
        .map(drop)
        .map_err(|e| Error::sql(e, &[]))
}

/// Create `username` as a LOGIN member of the instance's group role (creating and granting
/// the group first), or reset its password if it exists. Safe to repeat and to run
/// concurrently.
pub async fn create_user(
    admin: &AdminAccount,
    username: &str,
    password: &Secret,
) -> Result<(), Error> {
    let secrets = [admin.password.expose(), password.expose()];
    let group_name = group_role(&admin.database);
    let (user, group) = (pg_ident(username)?, pg_ident(&group_name)?);
    let (pw, group_value) = (pg_literal(password.expose())?, pg_literal(&group_name)?);
    let database = pg_ident(&admin.database)?;
    let mut conn = open_admin(admin, &secrets).await?;
    let mut tx = conn.begin().await.map_err(|e| Error::sql(e, &[]))?;
    lock_database(&mut tx, &admin.database).await?;
    let mut statements = Vec::new();
    if !role_exists(&mut tx, &group_name).await? {
        statements.push(format!("CREATE ROLE {group} NOLOGIN"));
    }
    statements.extend([
        format!("GRANT CONNECT, CREATE, TEMPORARY ON DATABASE {database} TO {group}"),
        format!("GRANT USAGE, CREATE ON SCHEMA public TO {group}"),
        format!("GRANT {group} TO CURRENT_USER"),
    ]);
    if role_exists(&mut tx, username).await? {
        statements.push(format!(
            "ALTER ROLE {user} WITH LOGIN INHERIT PASSWORD {pw}"
        ));
    } else {
        statements.push(format!(
            "CREATE ROLE {user} WITH LOGIN INHERIT PASSWORD {pw}"
        ));
    }
    statements.extend([
        format!("GRANT {group} TO {user}"),
        format!("GRANT {user} TO CURRENT_USER"),
        format!("ALTER ROLE {user} SET role = {group_value}"),
    ]);
    for sql in statements {
        exec(&mut tx, sql, &secrets).await?;
    }
    tx.commit().await.map_err(|e| Error::sql(e, &secrets))?;
    conn.close().await.map_err(|e| Error::sql(e, &secrets))
}

/// Refuse new logins for `username`, end its sessions, hand anything it owns to the group
/// (so data stays), and drop the role. Safe to repeat.
pub async fn drop_user(admin: &AdminAccount, username: &str) -> Result<(), Error> {
    let secrets = [admin.password.expose()];
    let group_name = group_role(&admin.database);
    let (user, group) = (pg_ident(username)?, pg_ident(&group_name)?);
    let mut conn = open_admin(admin, &secrets).await?;
    if !role_exists(&mut conn, username).await? {
        return conn.close().await.map_err(|e| Error::sql(e, &secrets));
    }
    exec(
        &mut conn,
        format!("ALTER ROLE {user} WITH NOLOGIN"),
        &secrets,
    )
    .await?;
    terminate_sessions(&mut conn, username).await?;
    let mut tx = conn.begin().await.map_err(|e| Error::sql(e, &[]))?;
    lock_database(&mut tx, &admin.database).await?;
    let mut statements = Vec::new();
    if role_exists(&mut tx, &group_name).await? {
        statements.push(format!("REASSIGN OWNED BY {user} TO {group}"));
    }
    statements.extend([
        format!("DROP OWNED BY {user}"),
        format!("DROP ROLE IF EXISTS {user}"),
    ]);
    for sql in statements {
        exec(&mut tx, sql, &secrets).await?;
    }
    tx.commit().await.map_err(|e| Error::sql(e, &secrets))?;
    conn.close().await.map_err(|e| Error::sql(e, &secrets))
}

/// Log in with the admin account and log out.
pub async fn check_reachable(admin: &AdminAccount) -> Result<(), Error> {
    let secrets = [admin.password.expose()];
    let mut conn = open_admin(admin, &secrets).await?;
    conn.ping().await.map_err(|e| Error::sql(e, &secrets))?;
    conn.close().await.map_err(|e| Error::sql(e, &secrets))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_role_fits_the_name_limit() {
        assert_eq!(group_role("appuser"), "appuser_osb_shared");
        let long = "x".repeat(60);
        let g = group_role(&long);
        assert!(g.len() <= MAX_NAME && g.starts_with("osb_shared_"), "{g}");
        assert_eq!(g, group_role(&long));
        assert_ne!(g, group_role(&"y".repeat(60)));
    }
}
