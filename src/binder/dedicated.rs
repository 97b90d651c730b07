//! Names and passwords for dedicated binding users.

use rand::TryRngCore;
use rand::distr::{Alphanumeric, SampleString};
use rand::rngs::OsRng;
use sha2::{Digest, Sha256};

use crate::secret::Secret;

/// Length of generated passwords: 32 characters of [A-Za-z0-9], about 190 bits.
pub const PASSWORD_LEN: usize = 32;

/// The SQL user name for a binding: `b` + the first 15 hex digits of sha256(binding_id).
///
/// Only `[a-z0-9]`, starts with a letter, 16 characters (within MariaDB's 80 and PostgreSQL's
/// 63), and the same for the same binding id, so a retry after a crash targets the same user.
pub fn generate_username(binding_id: &str) -> String {
    let digest = Sha256::digest(binding_id.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("b{}", &hex[..15])
}

/// A fresh password from the operating system's CSPRNG.
pub fn generate_password() -> Secret {
    Secret::new(Alphanumeric.sample_string(&mut OsRng.unwrap_err(), PASSWORD_LEN))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_are_short_safe_and_deterministic() {
        for id in [
            "",
            "b-1",
            "0f5e1c3a-95a0-4a4e-9e3b-8d1c2f7a6b5c",
            "ünïcode/'\"",
        ] {
            let u = generate_username(id);
            assert_eq!(u.len(), 16);
            assert!(u.starts_with('b'));
            assert!(
                u.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()),
                "{u}"
            );
            assert_eq!(u, generate_username(id));
        }
        assert_ne!(generate_username("a"), generate_username("b"));
    }

    #[test]
    fn passwords_are_alphanumeric_and_differ() {
        let a = generate_password();
        let b = generate_password();
        assert_eq!(a.expose().len(), PASSWORD_LEN);
        assert!(a.expose().chars().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(a, b);
    }
}
