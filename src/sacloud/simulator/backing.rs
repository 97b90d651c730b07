//! Optional backing of simulated appliances by real MariaDB / PostgreSQL servers, so fake mode
//! hands out logins that really work.

use crate::sacloud::Engine;

/// Connections to the real servers that back simulated appliances.
pub struct Backing {}

impl Backing {
    /// Connect to the servers named by `SIMULATOR_MARIADB_URL` / `SIMULATOR_POSTGRES_URL`.
    /// `Ok(None)` when neither is set.
    pub async fn connect(
        _mariadb_url: Option<&str>,
        _postgres_url: Option<&str>,
    ) -> Result<Option<Backing>, String> {
        Ok(None)
    }

    /// Whether appliances of this engine are backed by a real server.
    pub fn backs(&self, _engine: Engine) -> bool {
        false
    }

    /// Create the appliance's admin user and its database (named after the user). Idempotent.
    pub async fn create_admin(
        &self,
        _engine: Engine,
        _user: &str,
        _password: &str,
    ) -> Result<(), String> {
        Ok(())
    }

    /// Change the admin user's password (settings update). Idempotent.
    pub async fn set_admin_password(
        &self,
        _engine: Engine,
        _user: &str,
        _password: &str,
    ) -> Result<(), String> {
        Ok(())
    }

    /// Drop the admin user, every user the appliance's admin created, and the database. Idempotent.
    pub async fn drop_admin(&self, _engine: Engine, _user: &str) -> Result<(), String> {
        Ok(())
    }
}
