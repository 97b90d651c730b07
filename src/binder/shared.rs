//! Credentials built from accounts the broker already knows: the admin account itself
//! (`shared` mode) or a binding user on the admin's server and database (`dedicated` mode).

use super::{AdminAccount, Credentials};
use crate::secret::Secret;

/// `shared` mode: the appliance's admin account, as SAKURA reports it.
pub fn admin_credentials(admin: &AdminAccount) -> Credentials {
    Credentials {
        host: admin.host.clone(),
        port: admin.port,
        database: admin.database.clone(),
        username: admin.username.clone(),
        password: admin.password.clone(),
        // Appliances speak plain TCP on their private switch.
        ssl_required: false,
    }
}

/// `dedicated` mode: the binding user `username` on the admin's server and database.
pub fn binding_credentials(admin: &AdminAccount, username: &str, password: Secret) -> Credentials {
    Credentials {
        username: username.to_owned(),
        password,
        ..admin_credentials(admin)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sacloud::Engine;

    #[test]
    fn binding_credentials_keep_the_server_and_database() {
        let admin = AdminAccount {
            engine: Engine::Postgres,
            host: "10.1.2.3".into(),
            port: 15432,
            database: "appuser".into(),
            username: "appuser".into(),
            password: Secret::new("adminpw"),
        };
        let c = binding_credentials(&admin, "b123", Secret::new("pw"));
        assert_eq!(
            (c.host.as_str(), c.port, c.database.as_str()),
            ("10.1.2.3", 15432, "appuser")
        );
        assert_eq!((c.username.as_str(), c.password.expose()), ("b123", "pw"));
        assert_eq!(admin_credentials(&admin).password.expose(), "adminpw");
    }
}
