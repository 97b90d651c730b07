//! Dedicated binding users on MariaDB: `'u'@'%'` with `ALL PRIVILEGES` on the instance's
//! database and nothing else.
//!
//! What the admin account needs: `ALL ... WITH GRANT OPTION` on its database (to grant),
//! `CREATE USER` (create, alter, lock, drop users) and, to end a binding's sessions,
//! `CONNECTION ADMIN` (MariaDB 10.5.2+; `SUPER` before): a MariaDB session keeps working
//! after its account is dropped. `KILL CONNECTION USER` is used rather than reading
//! `information_schema.PROCESSLIST`, which would also need `PROCESS` to see the threads.

use sqlx::mysql::{MySqlConnectOptions, MySqlConnection, MySqlDatabaseError, MySqlSslMode};
use sqlx::{AssertSqlSafe, ConnectOptions, Connection};

use super::quote::{mariadb_account, mariadb_db_pattern, mariadb_literal};
use super::{AdminAccount, CONNECT_TIMEOUT, Error, TlsMode};
use crate::secret::Secret;

/// The sqlx mode for a [`TlsMode`].
pub fn ssl_mode(tls: TlsMode) -> MySqlSslMode {
    match tls {
        TlsMode::Disable => MySqlSslMode::Disabled,
        TlsMode::Prefer => MySqlSslMode::Preferred,
        TlsMode::Require => MySqlSslMode::Required,
        TlsMode::VerifyFull => MySqlSslMode::VerifyIdentity,
    }
}

/// Connection options for the admin account: TLS as its [`TlsMode`] says, no statement logging
/// (statements carry passwords).
pub fn admin_options(admin: &AdminAccount) -> MySqlConnectOptions {
    MySqlConnectOptions::new()
        .host(&admin.host)
        .port(admin.port)
        .username(&admin.username)
        .password(admin.password.expose())
        .database(&admin.database)
        .ssl_mode(ssl_mode(admin.tls))
}

/// Connect within [`CONNECT_TIMEOUT`] and switch the session to `NO_BACKSLASH_ESCAPES`, the
/// mode [`mariadb_literal`] quotes for. `secrets` are blanked out of error messages.
pub async fn open(
    options: MySqlConnectOptions,
    secrets: &[&str],
) -> Result<MySqlConnection, Error> {
    connect(options, secrets, TlsMode::Disable).await
}

/// [`open`] with the admin account's options; a failure names its TLS mode when it required TLS.
pub async fn open_admin(admin: &AdminAccount, secrets: &[&str]) -> Result<MySqlConnection, Error> {
    connect(admin_options(admin), secrets, admin.tls).await
}

async fn connect(
    options: MySqlConnectOptions,
    secrets: &[&str],
    tls: TlsMode,
) -> Result<MySqlConnection, Error> {
    let address = super::address(options.get_host(), options.get_port());
    let options = options.disable_statement_logging();
    let mut conn = match tokio::time::timeout(CONNECT_TIMEOUT, options.connect()).await {
        Ok(Ok(conn)) => conn,
        Ok(Err(e)) => return Err(Error::unreachable_with(address, e, secrets, tls)),
        Err(_) => {
            let cause = format!("no answer within {} s", CONNECT_TIMEOUT.as_secs());
            return Err(Error::unreachable_with(address, cause, secrets, tls));
        }
    };
    exec(
        &mut conn,
        "SET SESSION sql_mode = CONCAT(@@sql_mode, ',NO_BACKSLASH_ESCAPES')".into(),
        &[],
    )
    .await?;
    Ok(conn)
}

/// Run one statement built with the [`super::quote`] functions.
pub async fn exec(conn: &mut MySqlConnection, sql: String, secrets: &[&str]) -> Result<(), Error> {
    sqlx::raw_sql(AssertSqlSafe(sql))
        .execute(&mut *conn)
        .await
        .map(drop)
        .map_err(|e| Error::sql(e, secrets))
}

/// End every session of `user@host`. `KILL ... USER` silently skips the threads the caller
/// may not end, and in MariaDB a session outlives its dropped account, so an admin account
/// without `CONNECTION ADMIN` (or `SUPER`) is logged rather than passed over.
pub async fn kill_sessions(
    conn: &mut MySqlConnection,
    user: &str,
    host: &str,
) -> Result<(), Error> {
    // information_schema.USER_PRIVILEGES names grantees as 'user'@'host'.
    let may_kill: bool = sqlx::query_scalar(
        r#"SELECT COUNT(*) > 0 FROM information_schema.USER_PRIVILEGES
           WHERE PRIVILEGE_TYPE IN ('CONNECTION ADMIN', 'SUPER')
             AND GRANTEE = CONCAT('''', LEFT(CURRENT_USER(), CHAR_LENGTH(CURRENT_USER())
                   - CHAR_LENGTH(SUBSTRING_INDEX(CURRENT_USER(), '@', -1)) - 1),
                 '''@''', SUBSTRING_INDEX(CURRENT_USER(), '@', -1), '''')"#,
    )
    .fetch_one(&mut *conn)
    .await
    .map_err(|e| Error::sql(e, &[]))?;
    if !may_kill {
        tracing::warn!(
            user,
            "the admin account lacks CONNECTION ADMIN: sessions of the dropped binding user stay open"
        );
    }
    let account = mariadb_account(user, host)?;
    exec(conn, format!("KILL CONNECTION USER {account}"), &[]).await
}

/// The MariaDB error number (`sqlx`'s `code()` is the SQLSTATE, too coarse to act on).
pub fn error_number(e: &dyn sqlx::error::DatabaseError) -> Option<u16> {
    e.try_downcast_ref::<MySqlDatabaseError>()
        .map(MySqlDatabaseError::number)
}

/// Create `username` (or reset its password and unlock it), then grant it everything on the
/// admin's database. Every statement is idempotent, so a retry or a concurrent call for the
/// same name ends in the same state.
pub async fn create_user(
    admin: &AdminAccount,
    username: &str,
    password: &Secret,
) -> Result<(), Error> {
    let secrets = [admin.password.expose(), password.expose()];
    let account = mariadb_account(username, "%")?;
    let pw = mariadb_literal(password.expose())?;
    let database = mariadb_db_pattern(&admin.database)?;
    let mut conn = open_admin(admin, &secrets).await?;
    let statements = [
        format!("CREATE USER IF NOT EXISTS {account} IDENTIFIED BY {pw}"),
        format!("ALTER USER {account} IDENTIFIED BY {pw} ACCOUNT UNLOCK"),
        format!("GRANT ALL PRIVILEGES ON {database}.* TO {account}"),
    ];
    for sql in statements {
        exec(&mut conn, sql, &secrets).await?;
    }
    conn.close().await.map_err(|e| Error::sql(e, &secrets))
}

/// Lock `username` (no new logins), end its sessions and drop it. Tables stay: in MariaDB
/// they belong to the database, not to the user.
pub async fn drop_user(admin: &AdminAccount, username: &str) -> Result<(), Error> {
    let secrets = [admin.password.expose()];
    let account = mariadb_account(username, "%")?;
    let mut conn = open_admin(admin, &secrets).await?;
    exec(
        &mut conn,
        format!("ALTER USER IF EXISTS {account} ACCOUNT LOCK"),
        &secrets,
    )
    .await?;
    kill_sessions(&mut conn, username, "%").await?;
    exec(
        &mut conn,
        format!("DROP USER IF EXISTS {account}"),
        &secrets,
    )
    .await?;
    conn.close().await.map_err(|e| Error::sql(e, &secrets))
}

/// Log in with the admin account and log out.
pub async fn check_reachable(admin: &AdminAccount) -> Result<(), Error> {
    let secrets = [admin.password.expose()];
    let mut conn = open_admin(admin, &secrets).await?;
    conn.ping().await.map_err(|e| Error::sql(e, &secrets))?;
    conn.close().await.map_err(|e| Error::sql(e, &secrets))
}
