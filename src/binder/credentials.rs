//! The credentials a binding hands to the platform, and their OSB JSON form.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::{Value, json};

use crate::engine::Engine;
use crate::secret::Secret;

/// Everything but the URL "unreserved" characters is encoded, so a user name, password or
/// database name can never be read as a delimiter (`:`, `@`, `/`, `?`, `&`, `=`, `#`, `%`).
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

fn enc(s: &str) -> String {
    utf8_percent_encode(s, COMPONENT).to_string()
}

/// The `provider` entry of every binding (servicebinding.io's optional well-known entry).
pub const PROVIDER: &str = "sakuracloud";

/// The servicebinding.io `type` entry, by the names Spring Cloud Bindings and other libraries
/// select on: `mysql` (MariaDB speaks the MySQL protocol) and `postgresql`.
pub fn binding_type(engine: Engine) -> &'static str {
    match engine {
        Engine::MariaDb => "mysql",
        Engine::Postgres => "postgresql",
    }
}

/// A database login for one binding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub host: String,
    pub port: u16,
    pub database: String,
    pub username: String,
    pub password: Secret,
    pub ssl_required: bool,
}

impl Credentials {
    /// The OSB `credentials` object: `type` and `provider` (servicebinding.io), `host`, `port`
    /// (a number), `database`, `username`, `password`, `uri` (a real URL with percent-encoded
    /// parts), `jdbcUrl` and `sslRequired`.
    pub fn to_json(&self, engine: Engine) -> Value {
        json!({
            "type": binding_type(engine),
            "provider": PROVIDER,
            "host": self.host,
            "port": self.port,
            "database": self.database,
            "username": self.username,
            "password": self.password.expose(),
            "uri": self.uri(engine),
            "jdbcUrl": self.jdbc_url(engine),
            "sslRequired": self.ssl_required,
        })
    }

    /// `mysql://user:pass@host:port/db` or `postgresql://user:pass@host:port/db`.
    pub fn uri(&self, engine: Engine) -> String {
        let scheme = match engine {
            Engine::MariaDb => "mysql",
            Engine::Postgres => "postgresql",
        };
        format!(
            "{scheme}://{}:{}@{}/{}",
            enc(&self.username),
            enc(self.password.expose()),
            super::address(&self.host, self.port),
            enc(&self.database),
        )
    }

    /// `jdbc:mysql://host:port/db?user=..&password=..` (or `jdbc:postgresql:`).
    pub fn jdbc_url(&self, engine: Engine) -> String {
        let driver = match engine {
            Engine::MariaDb => "mysql",
            Engine::Postgres => "postgresql",
        };
        let mut url = format!(
            "jdbc:{driver}://{}/{}?user={}&password={}",
            super::address(&self.host, self.port),
            enc(&self.database),
            enc(&self.username),
            enc(self.password.expose()),
        );
        if self.ssl_required {
            url.push_str(match engine {
                Engine::MariaDb => "&sslMode=REQUIRED",
                Engine::Postgres => "&sslmode=require",
            });
        }
        url
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlx::mysql::MySqlConnectOptions;
    use sqlx::postgres::PgConnectOptions;
    use std::str::FromStr;

    const NASTY: &str = "p@ss:w/rd?#[]%25 &=+'\"\\ü";

    fn creds(password: &str) -> Credentials {
        Credentials {
            host: "192.168.0.11".into(),
            port: 3307,
            database: "app_db".into(),
            username: "user:name@x".into(),
            password: Secret::new(password),
            ssl_required: false,
        }
    }

    #[test]
    fn json_has_every_key_with_a_numeric_port() {
        let v = creds("simple").to_json(Engine::MariaDb);
        assert_eq!(v["type"], json!("mysql"));
        assert_eq!(v["provider"], json!("sakuracloud"));
        assert_eq!(v["port"], json!(3307));
        assert_eq!(v["sslRequired"], json!(false));
        assert_eq!(v["password"], json!("simple"));
        assert_eq!(
            v["uri"],
            json!("mysql://user%3Aname%40x:simple@192.168.0.11:3307/app_db")
        );
        assert_eq!(
            v["jdbcUrl"],
            json!("jdbc:mysql://192.168.0.11:3307/app_db?user=user%3Aname%40x&password=simple")
        );
        let pg = creds("simple").to_json(Engine::Postgres);
        assert_eq!(pg["type"], json!("postgresql"));
        assert!(pg["uri"].as_str().unwrap().starts_with("postgresql://"));
        assert!(
            pg["jdbcUrl"]
                .as_str()
                .unwrap()
                .starts_with("jdbc:postgresql://")
        );
    }

    #[test]
    fn special_characters_round_trip_through_url_parsers() {
        let c = creds(NASTY);
        let my = MySqlConnectOptions::from_str(&c.uri(Engine::MariaDb)).expect("mysql uri parses");
        assert_eq!(my.get_username(), "user:name@x");
        assert_eq!(my.get_host(), "192.168.0.11");
        assert_eq!(my.get_port(), 3307);
        assert_eq!(my.get_database(), Some("app_db"));
        let pg = PgConnectOptions::from_str(&c.uri(Engine::Postgres)).expect("pg uri parses");
        assert_eq!(pg.get_username(), "user:name@x");
        assert_eq!(pg.get_port(), 3307);
        assert_eq!(pg.get_database(), Some("app_db"));
        // Neither options type exposes the password; decode it the way a URL parser does.
        let uri = c.uri(Engine::Postgres);
        let userinfo = &uri["postgresql://".len()..uri.rfind('@').unwrap()];
        let (_, pw) = userinfo.split_once(':').unwrap();
        assert_eq!(
            percent_encoding::percent_decode_str(pw)
                .decode_utf8()
                .unwrap(),
            NASTY
        );
        let jdbc = c.jdbc_url(Engine::MariaDb);
        let pw = jdbc.split("&password=").nth(1).unwrap();
        assert_eq!(
            percent_encoding::percent_decode_str(pw)
                .decode_utf8()
                .unwrap(),
            NASTY
        );
    }

    #[test]
    fn debug_hides_the_password() {
        let text = format!("{:?}", creds("hunter2"));
        assert!(!text.contains("hunter2"), "{text}");
    }
}
