//! Optional backing of simulated appliances by real MariaDB / PostgreSQL servers, so fake mode
//! hands out logins that really work.
//!
//! A backed appliance is a database named after its admin user plus that user, with the rights
//! a SAKURA appliance admin has on its own database and what dedicated bindings need:
//! - MariaDB: `ALL ... WITH GRANT OPTION` on the database, `CREATE USER` and
//!   `CONNECTION ADMIN` (10.5.2+) on `*.*`, to create, drop and disconnect binding users;
//! - PostgreSQL: a LOGIN CREATEROLE role owning the database, with CONNECT revoked from
//!   PUBLIC so other appliances' bindings cannot connect to it.
//!
//! Both rights sets reach beyond the appliance's database (CREATE USER / CREATEROLE can alter
//! other non-superuser accounts), as on a real appliance's own server: point the simulator at
//! servers kept for testing. Names of built-in accounts and databases are refused.

use std::fmt;
use std::str::FromStr;

use sqlx::mysql::{MySqlConnectOptions, MySqlConnection, MySqlSslMode};
use sqlx::postgres::{PgConnectOptions, PgConnection, PgSslMode};
use sqlx::{AssertSqlSafe, Connection};

use crate::binder::quote::{
    mariadb_account, mariadb_db_pattern, mariadb_db_pattern_text, mariadb_ident, mariadb_literal,
    pg_ident, pg_literal,
};
use crate::binder::{Error, mariadb, postgres};
use crate::sacloud::Engine;

const MARIADB_RESERVED: &[&str] = &[
    "root",
    "mysql",
    "mariadb.sys",
    "information_schema",
    "performance_schema",
    "sys",
    "PUBLIC",
];
const POSTGRES_RESERVED: &[&str] = &["postgres", "template0", "template1", "public"];

/// Connections to the real servers that back simulated appliances. `Debug` shows addresses
/// only, never the URLs' passwords.
pub struct Backing {
    mariadb: Option<MySqlConnectOptions>,
    postgres: Option<PgConnectOptions>,
}

impl fmt::Debug for Backing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let my = self
            .mariadb
            .as_ref()
            .map(|o| format!("{}:{}", o.get_host(), o.get_port()));
        let pg = self
            .postgres
            .as_ref()
            .map(|o| format!("{}:{}", o.get_host(), o.get_port()));
        f.debug_struct("Backing")
            .field("mariadb", &my)
            .field("postgres", &pg)
            .finish()
    }
}

fn text(e: Error) -> String {
    e.to_string()
}

impl Backing {
    /// Connect to the servers named by `SIMULATOR_MARIADB_URL` / `SIMULATOR_POSTGRES_URL`
    /// (each is tried once, so a wrong URL fails at start). `Ok(None)` when neither is set.
    pub async fn connect(
        mariadb_url: Option<&str>,
        postgres_url: Option<&str>,
    ) -> Result<Option<Backing>, String> {
        let mariadb = match mariadb_url {
            None => None,
            Some(url) => {
                let options = MySqlConnectOptions::from_str(url)
                    .map_err(|_| "SIMULATOR_MARIADB_URL is not a valid mysql:// URL".to_owned())?
                    .ssl_mode(MySqlSslMode::Disabled);
                mariadb::open(options.clone(), &[])
                    .await
                    .map_err(text)?
                    .close()
                    .await
                    .ok();
                Some(options)
            }
        };
        let postgres = match postgres_url {
            None => None,
            Some(url) => {
                let options = PgConnectOptions::from_str(url)
                    .map_err(|_| {
                        "SIMULATOR_POSTGRES_URL is not a valid postgres:// URL".to_owned()
                    })?
                    .ssl_mode(PgSslMode::Disable);
                postgres::open(options.clone(), &[])
                    .await
                    .map_err(text)?
                    .close()
                    .await
                    .ok();
                Some(options)
            }
        };
        if mariadb.is_none() && postgres.is_none() {
            return Ok(None);
        }
        Ok(Some(Backing { mariadb, postgres }))
    }

    /// Whether appliances of this engine are backed by a real server.
    pub fn backs(&self, engine: Engine) -> bool {
        match engine {
            Engine::MariaDb => self.mariadb.is_some(),
            Engine::Postgres => self.postgres.is_some(),
        }
    }

    /// Create the appliance's admin user and its database (named after the user). Idempotent;
    /// a repeat sets the given password.
    pub async fn create_admin(
        &self,
        engine: Engine,
        user: &str,
        password: &str,
    ) -> Result<(), String> {
        match engine {
            Engine::MariaDb => self.mariadb_create(user, password).await.map_err(text),
            Engine::Postgres => self.postgres_create(user, password).await.map_err(text),
        }
    }

    /// Change the admin user's password (settings update). Idempotent.
    pub async fn set_admin_password(
        &self,
        engine: Engine,
        user: &str,
        password: &str,
    ) -> Result<(), String> {
        let result = match engine {
            Engine::MariaDb => {
                async {
                    let mut conn = self.mariadb_conn(user, &[password]).await?;
                    let (account, pw) = (mariadb_account(user, "%")?, mariadb_literal(password)?);
                    mariadb::exec(
                        &mut conn,
                        format!("ALTER USER {account} IDENTIFIED BY {pw}"),
                        &[password],
                    )
                    .await
                }
                .await
            }
            Engine::Postgres => {
                async {
                    let mut conn = self.postgres_conn(user, &[password]).await?;
                    refuse_superuser(&mut conn, user).await?;
                    let (role, pw) = (pg_ident(user)?, pg_literal(password)?);
                    postgres::exec(
                        &mut conn,
                        format!("ALTER ROLE {role} WITH PASSWORD {pw}"),
                        &[password],
                    )
                    .await
                }
                .await
            }
        };
        result.map_err(text)
    }

    /// Drop every binding user the appliance's admin created, the database and the admin user.
    /// Idempotent.
    pub async fn drop_admin(&self, engine: Engine, user: &str) -> Result<(), String> {
        match engine {
            Engine::MariaDb => self.mariadb_drop(user).await.map_err(text),
            Engine::Postgres => self.postgres_drop(user).await.map_err(text),
        }
    }

    /// A connection to the MariaDB server, after checking that `user` may name an appliance.
    async fn mariadb_conn(&self, user: &str, secrets: &[&str]) -> Result<MySqlConnection, Error> {
        let options = self
            .mariadb
            .clone()
            .ok_or_else(|| not_backed(Engine::MariaDb))?;
        if MARIADB_RESERVED
            .iter()
            .any(|r| r.eq_ignore_ascii_case(user))
            || user == options.get_username()
        {
            return Err(Error::Sql(format!(
                "{user:?} is a built-in account name, not an appliance user"
            )));
        }
        mariadb::open(options, secrets).await
    }

    /// A connection to the PostgreSQL server, after checking that `user` may name an appliance.
    async fn postgres_conn(&self, user: &str, secrets: &[&str]) -> Result<PgConnection, Error> {
        let options = self
            .postgres
            .clone()
            .ok_or_else(|| not_backed(Engine::Postgres))?;
        if POSTGRES_RESERVED.contains(&user)
            || user.starts_with("pg_")
            || user == options.get_username()
        {
            return Err(Error::Sql(format!(
                "{user:?} is a built-in role name, not an appliance user"
            )));
        }
        postgres::open(options, secrets).await
    }

    async fn mariadb_create(&self, user: &str, password: &str) -> Result<(), Error> {
        let secrets = [password];
        let mut conn = self.mariadb_conn(user, &secrets).await?;
        let (account, pw) = (mariadb_account(user, "%")?, mariadb_literal(password)?);
        let statements = [
            format!("CREATE DATABASE IF NOT EXISTS {}", mariadb_ident(user)?),
            format!("CREATE USER IF NOT EXISTS {account} IDENTIFIED BY {pw}"),
            format!("ALTER USER {account} IDENTIFIED BY {pw} ACCOUNT UNLOCK"),
            format!(
                "GRANT ALL PRIVILEGES ON {}.* TO {account} WITH GRANT OPTION",
                mariadb_db_pattern(user)?
            ),
            format!("GRANT CREATE USER, CONNECTION ADMIN ON *.* TO {account}"),
        ];
        for sql in statements {
            mariadb::exec(&mut conn, sql, &secrets).await?;
        }
        conn.close().await.map_err(|e| Error::sql(e, &secrets))
    }

    async fn mariadb_drop(&self, user: &str) -> Result<(), Error> {
        let mut conn = self.mariadb_conn(user, &[]).await?;
        // The binding users: every other account with a grant on the appliance's database.
        let bindings: Vec<(String, String)> = sqlx::query_as(
            "SELECT CONVERT(User USING utf8mb4), CONVERT(Host USING utf8mb4) FROM mysql.db \
             WHERE Db IN (?, ?) AND NOT (User = ? AND Host = '%')",
        )
        .bind(mariadb_db_pattern_text(user))
        .bind(user)
        .bind(user)
        .fetch_all(&mut conn)
        .await
        .map_err(|e| Error::sql(e, &[]))?;
        let backing_user = self.mariadb.as_ref().map(|o| o.get_username().to_owned());
        for (name, host) in bindings.iter().chain([&(user.to_owned(), "%".to_owned())]) {
            if MARIADB_RESERVED.contains(&name.as_str()) || Some(name) == backing_user.as_ref() {
                continue;
            }
            let account = mariadb_account(name, host)?;
            mariadb::exec(
                &mut conn,
                format!("ALTER USER IF EXISTS {account} ACCOUNT LOCK"),
                &[],
            )
            .await?;
            mariadb::kill_sessions(&mut conn, name, host).await?;
            if name == user {
                // After the admin's sessions are gone, so no open transaction of theirs holds
                // a metadata lock that would stall the drop.
                let sql = format!("DROP DATABASE IF EXISTS {}", mariadb_ident(user)?);
                mariadb::exec(&mut conn, sql, &[]).await?;
            }
            mariadb::exec(&mut conn, format!("DROP USER IF EXISTS {account}"), &[]).await?;
        }
        conn.close().await.map_err(|e| Error::sql(e, &[]))
    }

    async fn postgres_create(&self, user: &str, password: &str) -> Result<(), Error> {
        let secrets = [password];
        let mut conn = self.postgres_conn(user, &secrets).await?;
        let (role, pw) = (pg_ident(user)?, pg_literal(password)?);
        let exists = refuse_superuser(&mut conn, user).await?;
        let alter = format!("ALTER ROLE {role} WITH LOGIN CREATEROLE PASSWORD {pw}");
        if exists {
            postgres::exec(&mut conn, alter, &secrets).await?;
        } else {
            let create = format!("CREATE ROLE {role} WITH LOGIN CREATEROLE PASSWORD {pw}");
            if let Err(e) = postgres::exec(&mut conn, create, &secrets).await {
                // A concurrent create of the same appliance won the race: converge on ALTER.
                if !postgres::role_exists(&mut conn, user).await? {
                    return Err(e);
                }
                postgres::exec(&mut conn, alter, &secrets).await?;
            }
        }
        let db_exists: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
                .bind(user)
                .fetch_one(&mut conn)
                .await
                .map_err(|e| Error::sql(e, &[]))?;
        if !db_exists {
            // CREATE DATABASE has no IF NOT EXISTS; a concurrent create fails with
            // duplicate_database (42P04), which is as good as success.
            let sql = format!("CREATE DATABASE {role} OWNER {role}");
            match sqlx::raw_sql(AssertSqlSafe(sql)).execute(&mut conn).await {
                Ok(_) => {}
                Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("42P04") => {}
                Err(e) => return Err(Error::sql(e, &[])),
            }
        }
        let statements = [
            format!("REVOKE CONNECT ON DATABASE {role} FROM PUBLIC"),
            format!("GRANT CONNECT ON DATABASE {role} TO {role}"),
        ];
        for sql in statements {
            postgres::exec(&mut conn, sql, &[]).await?;
        }
        conn.close().await.map_err(|e| Error::sql(e, &[]))
    }

    async fn postgres_drop(&self, user: &str) -> Result<(), Error> {
        let mut conn = self.postgres_conn(user, &[]).await?;
        refuse_superuser(&mut conn, user).await?;
        let group = postgres::group_role(user);
        // The binding roles: members of the appliance's group role (never a superuser).
        let mut roles: Vec<String> = sqlx::query_scalar(
            "SELECT m.rolname::text FROM pg_auth_members a \
             JOIN pg_roles g ON g.oid = a.roleid JOIN pg_roles m ON m.oid = a.member \
             WHERE g.rolname = $1 AND m.rolname <> $2 AND NOT m.rolsuper",
        )
        .bind(&group)
        .bind(user)
        .fetch_all(&mut conn)
        .await
        .map_err(|e| Error::sql(e, &[]))?;
        roles.push(user.to_owned());
        let mut existing = Vec::new();
        for role in &roles {
            if postgres::role_exists(&mut conn, role).await? {
                postgres::exec(
                    &mut conn,
                    format!("ALTER ROLE {} WITH NOLOGIN", pg_ident(role)?),
                    &[],
                )
                .await?;
                existing.push(pg_ident(role)?);
            }
        }
        sqlx::query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = ANY($1)",
        )
        .bind(&roles)
        .execute(&mut conn)
        .await
        .map_err(|e| Error::sql(e, &[]))?;
        // FORCE (PostgreSQL 13+) ends whatever sessions are still on the database.
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", pg_ident(user)?);
        postgres::exec(&mut conn, sql, &[]).await?;
        if postgres::role_exists(&mut conn, &group).await? {
            existing.push(pg_ident(&group)?);
        }
        if !existing.is_empty() {
            let list = existing.join(", ");
            // What they own or were granted on this database and on shared objects.
            postgres::exec(&mut conn, format!("DROP OWNED BY {list}"), &[]).await?;
            postgres::exec(&mut conn, format!("DROP ROLE IF EXISTS {list}"), &[]).await?;
        }
        conn.close().await.map_err(|e| Error::sql(e, &[]))
    }
}

fn not_backed(engine: Engine) -> Error {
    Error::Sql(format!(
        "no real server backs {} appliances",
        engine.wire_name()
    ))
}

/// Whether the role exists; an error if it is a superuser, which no appliance admin is.
async fn refuse_superuser(conn: &mut PgConnection, role: &str) -> Result<bool, Error> {
    let superuser: Option<bool> =
        sqlx::query_scalar("SELECT rolsuper FROM pg_roles WHERE rolname = $1")
            .bind(role)
            .fetch_optional(&mut *conn)
            .await
            .map_err(|e| Error::sql(e, &[]))?;
    if superuser == Some(true) {
        return Err(Error::Sql(format!(
            "{role:?} is a superuser, not an appliance user"
        )));
    }
    Ok(superuser.is_some())
}
