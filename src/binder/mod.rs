//! Credentials for bindings.
//!
//! Two modes: `shared` hands out the appliance's admin account (the broker never connects to
//! the database), `dedicated` connects with that admin account and creates one SQL user per
//! binding with rights on the instance's database only ([`create_user`] / [`drop_user`]).
//! Stored credentials are sealed with [`crypto::Keyring`].
//!
//! Every statement that carries a name or a secret is built with the quoting functions in
//! [`quote`]; statement logging is off on every connection so passwords never reach a log.

mod credentials;
pub mod crypto;
pub mod dedicated;
pub mod mariadb;
pub mod postgres;
pub mod quote;
pub mod shared;

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use crate::engine::Engine;
use crate::secret::Secret;

pub use credentials::Credentials;
pub use dedicated::{generate_password, generate_username};

/// How long to wait for a connection to the appliance before giving up.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How a binding gets its credentials (the bind parameter `mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// The appliance's admin account, read from the SAKURA API.
    Shared,
    /// A user per binding, created by the broker on the database itself.
    Dedicated,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Shared => "shared",
            Mode::Dedicated => "dedicated",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A mode name that is neither `shared` nor `dedicated`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown binding mode {0:?}: expected \"shared\" or \"dedicated\"")]
pub struct UnknownMode(pub String);

impl FromStr for Mode {
    type Err = UnknownMode;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "shared" => Ok(Mode::Shared),
            "dedicated" => Ok(Mode::Dedicated),
            other => Err(UnknownMode(other.to_owned())),
        }
    }
}

/// How the broker (and, through `sslRequired`, the applications) reach the databases: with TLS
/// or without (`OSB_DATABASE_TLS`).
///
/// SAKURA Cloud documents no TLS on its database appliances (their settings have no TLS
/// switch), so the default is `disable`. The other modes are for servers that do offer it:
/// `prefer` uses TLS when the server offers it and falls back to plain TCP otherwise (so it
/// protects against eavesdropping only, and only where TLS is on); `require` refuses a server
/// without TLS but does not check its certificate; `verify-full` also checks the certificate
/// against the web PKI roots and the host name.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum TlsMode {
    #[default]
    Disable,
    Prefer,
    Require,
    VerifyFull,
}

impl TlsMode {
    pub fn as_str(self) -> &'static str {
        match self {
            TlsMode::Disable => "disable",
            TlsMode::Prefer => "prefer",
            TlsMode::Require => "require",
            TlsMode::VerifyFull => "verify-full",
        }
    }

    /// Whether a connection without TLS is refused: what a binding's `sslRequired` says.
    pub fn requires_tls(self) -> bool {
        matches!(self, TlsMode::Require | TlsMode::VerifyFull)
    }
}

impl fmt::Display for TlsMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A TLS mode name that is none of `disable`, `prefer`, `require`, `verify-full`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown TLS mode {0:?}: expected disable, prefer, require or verify-full")]
pub struct UnknownTlsMode(pub String);

impl FromStr for TlsMode {
    type Err = UnknownTlsMode;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "disable" => Ok(TlsMode::Disable),
            "prefer" => Ok(TlsMode::Prefer),
            "require" => Ok(TlsMode::Require),
            "verify-full" => Ok(TlsMode::VerifyFull),
            other => Err(UnknownTlsMode(other.to_owned())),
        }
    }
}

/// The appliance's admin account (`DefaultUser` / `UserPassword`) and where to reach it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminAccount {
    pub engine: Engine,
    pub host: String,
    pub port: u16,
    /// The instance's database: on SAKURA appliances, the one named after the admin user.
    pub database: String,
    pub username: String,
    pub password: Secret,
    /// Whether the broker's connections (and the applications', per `sslRequired`) use TLS.
    pub tls: TlsMode,
}

impl AdminAccount {
    /// `host:port`, as error messages name the server.
    pub fn address(&self) -> String {
        address(&self.host, self.port)
    }
}

pub(crate) fn address(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Errors of the binder layer. `Display` never includes a password.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The broker could not open a connection with the admin account (network, timeout, login).
    #[error("cannot connect to the database at {address}: {cause}")]
    Unreachable { address: String, cause: String },
    /// A statement failed, or a name cannot be used in one.
    #[error("database statement failed: {0}")]
    Sql(String),
    /// Sealing or opening stored credentials failed, or the key configuration is invalid.
    #[error("credential encryption: {0}")]
    Crypto(String),
}

impl Error {
    /// A failed statement, with every given secret (and its quoted forms) blanked out of the
    /// server's message: a syntax error echoes the statement text near the error.
    pub(crate) fn sql(err: sqlx::Error, secrets: &[&str]) -> Error {
        Error::Sql(scrub(&err.to_string(), secrets))
    }

    /// A failed connection to `address` under `tls`: when TLS was asked for, the cause says so,
    /// since the server's own words ("server does not support TLS", a certificate error) do not
    /// name the setting.
    pub(crate) fn unreachable_with(
        address: String,
        cause: impl fmt::Display,
        secrets: &[&str],
        tls: TlsMode,
    ) -> Error {
        let cause = scrub(&cause.to_string(), secrets);
        let cause = if tls.requires_tls() {
            format!(
                "{cause} (OSB_DATABASE_TLS={tls}: the broker connects with TLS only{})",
                if tls == TlsMode::VerifyFull {
                    ", to a server whose certificate is valid for its address"
                } else {
                    ""
                }
            )
        } else {
            cause
        };
        Error::Unreachable { address, cause }
    }
}

/// Replace every occurrence of each secret in `message` by `***`.
pub(crate) fn scrub(message: &str, secrets: &[&str]) -> String {
    let mut out = message.to_owned();
    for secret in secrets.iter().filter(|s| !s.is_empty()) {
        let quotes_doubled = secret.replace('\'', "''");
        // Longest form first, so a shorter one cannot leave half of a longer one behind.
        let forms = [
            quotes_doubled.replace('\\', "\\\\"),
            secret.replace('\\', "\\\\"),
            quotes_doubled,
            secret.to_string(),
        ];
        for form in forms {
            out = out.replace(&form, "***");
        }
    }
    out
}

/// Create (or, if it exists, reset the password of and re-grant) the binding user `username`
/// on the admin's database. Safe to repeat and to run concurrently for the same name.
pub async fn create_user(
    admin: &AdminAccount,
    username: &str,
    password: &Secret,
) -> Result<(), Error> {
    match admin.engine {
        Engine::MariaDb => mariadb::create_user(admin, username, password).await,
        Engine::Postgres => postgres::create_user(admin, username, password).await,
    }
}

/// End the sessions of `username` and drop it; the data it wrote stays. Safe to repeat.
pub async fn drop_user(admin: &AdminAccount, username: &str) -> Result<(), Error> {
    match admin.engine {
        Engine::MariaDb => mariadb::drop_user(admin, username).await,
        Engine::Postgres => postgres::drop_user(admin, username).await,
    }
}

/// Open and close a connection with the admin account.
pub async fn check_reachable(admin: &AdminAccount) -> Result<(), Error> {
    match admin.engine {
        Engine::MariaDb => mariadb::check_reachable(admin).await,
        Engine::Postgres => postgres::check_reachable(admin).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mode_round_trips_through_text_and_serde() {
        for mode in [Mode::Shared, Mode::Dedicated] {
            assert_eq!(mode.to_string().parse::<Mode>(), Ok(mode));
            let json = serde_json::to_string(&mode).expect("serialize");
            assert_eq!(json, format!("\"{mode}\""));
            assert_eq!(
                serde_json::from_str::<Mode>(&json).expect("deserialize"),
                mode
            );
        }
        assert!("Shared".parse::<Mode>().is_err());
        assert!(serde_json::from_str::<Mode>("\"exclusive\"").is_err());
    }

    #[test]
    fn tls_modes_round_trip_and_say_whether_tls_is_required() {
        for (name, requires) in [
            ("disable", false),
            ("prefer", false),
            ("require", true),
            ("verify-full", true),
        ] {
            let mode: TlsMode = name.parse().unwrap();
            assert_eq!(mode.to_string(), name);
            assert_eq!(mode.requires_tls(), requires, "{name}");
        }
        assert_eq!(TlsMode::default(), TlsMode::Disable);
        assert!("verify-ca".parse::<TlsMode>().is_err());
        assert!("REQUIRE".parse::<TlsMode>().is_err());
    }

    #[test]
    fn scrub_blanks_secrets_and_their_quoted_forms() {
        let msg = "near 'it''s\\\\x' and it's\\x";
        assert_eq!(scrub(msg, &["it's\\x"]), "near '***' and ***");
        assert_eq!(scrub("nothing", &[""]), "nothing");
    }

    #[test]
    fn errors_name_the_address_not_the_password() {
        let e = Error::unreachable_with(
            "10.0.0.1:3306".into(),
            "bad pw hunter2",
            &["hunter2"],
            TlsMode::Disable,
        );
        assert_eq!(
            e.to_string(),
            "cannot connect to the database at 10.0.0.1:3306: bad pw ***"
        );
    }

    /// The broker awaits these inside axum handlers and the simulator inside its own: the
    /// futures must be `Send`. (Built and dropped unpolled; this is a compile-time check.)
    #[test]
    fn futures_are_send() {
        fn send<T: Send>(_: T) {}
        let admin = AdminAccount {
            engine: Engine::MariaDb,
            host: "127.0.0.1".into(),
            port: 1,
            database: "d".into(),
            username: "u".into(),
            password: Secret::new("p"),
            tls: TlsMode::Disable,
        };
        let pw = Secret::new("p");
        send(create_user(&admin, "u", &pw));
        send(drop_user(&admin, "u"));
        send(check_reachable(&admin));
        #[cfg(feature = "simulator")]
        {
            let backing: Option<crate::sacloud::simulator::backing::Backing> = None;
            if let Some(b) = &backing {
                send(b.create_admin(Engine::Postgres, "u", "p"));
                send(b.set_admin_password(Engine::Postgres, "u", "p"));
                send(b.drop_admin(Engine::Postgres, "u"));
            }
        }
    }

    #[test]
    fn ipv6_addresses_are_bracketed() {
        assert_eq!(address("::1", 5432), "[::1]:5432");
        assert_eq!(address("db.local", 5432), "db.local:5432");
    }
}
