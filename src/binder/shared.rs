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
        // True only when the broker itself refuses the server without TLS (OSB_DATABASE_TLS
        // `require` or `verify-full`); SAKURA documents no TLS on its appliances.
        ssl_required: admin.tls.requires_tls(),
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
    use crate::binder::TlsMode;
    use crate::engine::Engine;

    #[test]
    fn binding_credentials_keep_the_server_and_database() {
        let admin = AdminAccount {
            engine: Engine::Postgres,
            host: "10.1.2.3".into(),
            port: 15432,
            database: "appuser".into(),
            username: "appuser".into(),
            password: Secret::new("adminpw"),
            tls: TlsMode::Disable,
        };
        let c = binding_credentials(&admin, "b123", Secret::new("pw"));
        assert_eq!(
            (c.host.as_str(), c.port, c.database.as_str()),
            ("10.1.2.3", 15432, "appuser")
        );
        assert_eq!((c.username.as_str(), c.password.expose()), ("b123", "pw"));
        assert_eq!(admin_credentials(&admin).password.expose(), "adminpw");
        assert!(!c.ssl_required);
        for (tls, required) in [
            (TlsMode::Prefer, false),
            (TlsMode::Require, true),
            (TlsMode::VerifyFull, true),
        ] {
            let admin = AdminAccount {
                tls,
                ..admin.clone()
            };
            assert_eq!(admin_credentials(&admin).ssl_required, required, "{tls}");
            let c = binding_credentials(&admin, "b", Secret::new("pw"));
            assert_eq!(c.ssl_required, required, "{tls}");
        }
    }
}
