//! Secrets at rest: stored credentials are sealed with AES-256-GCM under the newest key of
//! `OSB_ENCRYPTION_KEYS`. A sealed value names the key that sealed it, so after a rotation
//! (a new key prepended) old values still open and new ones use the new key.
//!
//! Format: `v1:<key id>:<base64(nonce || ciphertext+tag)>`, where the key id is the first
//! 8 hex digits of sha256(key) and `v1:<key id>` is authenticated as associated data.

use std::fmt;

use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use sha2::{Digest, Sha256};

use super::Error;
use crate::secret::Secret;

const VERSION: &str = "v1";
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;

struct SealingKey {
    id: String,
    cipher: Aes256Gcm,
}

impl SealingKey {
    fn new(key: &[u8; 32]) -> SealingKey {
        let digest = Sha256::digest(key);
        let id = digest[..4].iter().map(|b| format!("{b:02x}")).collect();
        SealingKey {
            id,
            cipher: Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(key)),
        }
    }
}

/// The encryption keys, newest first. `Debug` shows key ids only.
pub struct Keyring {
    keys: Vec<SealingKey>,
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ids: Vec<&str> = self.keys.iter().map(|k| k.id.as_str()).collect();
        f.debug_struct("Keyring").field("key_ids", &ids).finish()
    }
}

impl Keyring {
    /// Parse `OSB_ENCRYPTION_KEYS`: comma-separated base64 of 32-byte keys, newest first.
    pub fn from_config(keys: &str) -> Result<Keyring, Error> {
        let mut ring = Vec::new();
        for (n, entry) in keys.split(',').map(str::trim).enumerate() {
            if entry.is_empty() {
                continue;
            }
            let bytes = B64.decode(entry).map_err(|_| {
                Error::Crypto(format!(
                    "OSB_ENCRYPTION_KEYS entry {} is not valid base64",
                    n + 1
                ))
            })?;
            let key: [u8; 32] = bytes.as_slice().try_into().map_err(|_| {
                Error::Crypto(format!(
                    "OSB_ENCRYPTION_KEYS entry {} is {} bytes long, expected 32",
                    n + 1,
                    bytes.len()
                ))
            })?;
            ring.push(SealingKey::new(&key));
        }
        if ring.is_empty() {
            return Err(Error::Crypto("OSB_ENCRYPTION_KEYS holds no key".into()));
        }
        Ok(Keyring { keys: ring })
    }

    /// A keyring with one random key, for fake mode: nothing it seals outlives the process.
    pub fn ephemeral() -> Keyring {
        let key = Aes256Gcm::generate_key(OsRng);
        Keyring {
            keys: vec![SealingKey::new(&key.into())],
        }
    }

    /// A fresh random key in the form `OSB_ENCRYPTION_KEYS` takes.
    pub fn generate_key() -> Secret {
        Secret::new(B64.encode(Aes256Gcm::generate_key(OsRng)))
    }

    /// The id of the key new values are sealed with.
    pub fn current_key_id(&self) -> &str {
        &self.keys[0].id
    }

    /// Seal `plaintext` with the newest key.
    pub fn seal(&self, plaintext: &str) -> String {
        let key = &self.keys[0];
        let header = format!("{VERSION}:{}", key.id);
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let payload = Payload {
            msg: plaintext.as_bytes(),
            aad: header.as_bytes(),
        };
        let ciphertext = key
            .cipher
            .encrypt(&nonce, payload)
            .expect("AES-GCM encrypts any message shorter than 64 GiB");
        let mut blob = Vec::with_capacity(NONCE_LEN + ciphertext.len());
        blob.extend_from_slice(&nonce);
        blob.extend_from_slice(&ciphertext);
        format!("{header}:{}", B64.encode(blob))
    }

    /// Open a value sealed by [`Keyring::seal`] with any key of the ring.
    pub fn open(&self, sealed: &str) -> Result<Secret, Error> {
        let mut parts = sealed.splitn(3, ':');
        let (Some(version), Some(id), Some(body)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(Error::Crypto(
                "sealed value is not in the form v1:<key id>:<data>".into(),
            ));
        };
        if version != VERSION {
            return Err(Error::Crypto(format!(
                "sealed value has unknown version {version:?}"
            )));
        }
        let key = self.keys.iter().find(|k| k.id == id).ok_or_else(|| {
            Error::Crypto(format!(
                "sealed with key {id:?}, which OSB_ENCRYPTION_KEYS no longer holds"
            ))
        })?;
        let blob = B64
            .decode(body)
            .map_err(|_| Error::Crypto("sealed value is not valid base64".into()))?;
        if blob.len() < NONCE_LEN + TAG_LEN {
            return Err(Error::Crypto("sealed value is too short".into()));
        }
        let (nonce, ciphertext) = blob.split_at(NONCE_LEN);
        let header = format!("{VERSION}:{id}");
        let payload = Payload {
            msg: ciphertext,
            aad: header.as_bytes(),
        };
        let plain = key
            .cipher
            .decrypt(Nonce::from_slice(nonce), payload)
            .map_err(|_| {
                Error::Crypto(format!("sealed value does not authenticate under key {id}"))
            })?;
        String::from_utf8(plain)
            .map(Secret::new)
            .map_err(|_| Error::Crypto("sealed value is not UTF-8".into()))
    }

    /// Whether `sealed` was sealed with an older key than the newest (worth resealing).
    pub fn is_stale(&self, sealed: &str) -> bool {
        sealed.split(':').nth(1) != Some(self.current_key_id())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> String {
        B64.encode([byte; 32])
    }

    #[test]
    fn seal_open_round_trip() {
        let ring = Keyring::from_config(&key(1)).unwrap();
        let sealed = ring.seal("pa:ss'wörd");
        assert!(sealed.starts_with(&format!("v1:{}:", ring.current_key_id())));
        assert!(!sealed.contains("pa:ss"));
        assert_eq!(ring.open(&sealed).unwrap().expose(), "pa:ss'wörd");
        assert_ne!(
            ring.seal("x"),
            ring.seal("x"),
            "every seal uses a fresh nonce"
        );
        let eph = Keyring::ephemeral();
        assert_eq!(eph.open(&eph.seal("")).unwrap().expose(), "");
    }

    #[test]
    fn rotation_keeps_old_values_open_and_seals_with_the_new_key() {
        let old = Keyring::from_config(&key(1)).unwrap();
        let sealed_old = old.seal("secret");
        let rotated = Keyring::from_config(&format!("{}, {}", key(2), key(1))).unwrap();
        assert_eq!(rotated.open(&sealed_old).unwrap().expose(), "secret");
        assert!(rotated.is_stale(&sealed_old));
        let sealed_new = rotated.seal("secret");
        assert_ne!(rotated.current_key_id(), old.current_key_id());
        assert!(sealed_new.starts_with(&format!("v1:{}:", rotated.current_key_id())));
        assert!(!rotated.is_stale(&sealed_new));
        // The old ring alone cannot open what the new key sealed.
        assert!(old.open(&sealed_new).is_err());
    }

    #[test]
    fn tampering_is_detected() {
        let ring = Keyring::from_config(&format!("{},{}", key(3), key(4))).unwrap();
        let sealed = ring.seal("secret");
        let (head, body) = sealed.rsplit_once(':').unwrap();
        let mut blob = B64.decode(body).unwrap();
        let last = blob.len() - 1;
        blob[last] ^= 1;
        assert!(ring.open(&format!("{head}:{}", B64.encode(&blob))).is_err());
        blob[last] ^= 1;
        blob[NONCE_LEN] ^= 0x80;
        assert!(ring.open(&format!("{head}:{}", B64.encode(&blob))).is_err());
        // Relabelling the value with the other key's id fails too.
        let other = Keyring::from_config(&key(4))
            .unwrap()
            .current_key_id()
            .to_owned();
        assert!(ring.open(&format!("v1:{other}:{body}")).is_err());
        for junk in [
            "",
            "v1",
            "v2:x:y",
            "v1:nokey:AAAA",
            &format!("{head}:!!"),
            &format!("{head}:AAAA"),
        ] {
            assert!(ring.open(junk).is_err(), "{junk}");
        }
    }

    #[test]
    fn config_errors_do_not_echo_keys() {
        for bad in ["", " , ", "not-base64!", &B64.encode([0u8; 16])] {
            let err = Keyring::from_config(bad).unwrap_err().to_string();
            assert!(!err.contains("not-base64"), "{err}");
            assert!(!err.contains(&B64.encode([0u8; 16])), "{err}");
        }
    }

    #[test]
    fn debug_prints_ids_not_keys() {
        let k = key(9);
        let ring = Keyring::from_config(&k).unwrap();
        let text = format!("{ring:?}");
        assert!(text.contains(ring.current_key_id()));
        assert!(!text.contains(&k), "{text}");
        assert!(!text.contains("9, 9"), "{text}");
        assert_eq!(Keyring::generate_key().expose().len(), 44);
    }
}
