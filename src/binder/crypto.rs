//! Secrets at rest: stored credentials are sealed with AES-256-GCM under the newest key of
//! `OSB_ENCRYPTION_KEYS`. A sealed value names the key that sealed it, so after a rotation
//! (a new key prepended) old values still open and new ones use the new key.
//!
//! Format: `v2:<key id>:<base64(nonce || ciphertext+tag)>`, where the key id is the first
//! 8 hex digits of sha256(key). The associated data is `v2:<key id>` followed by the record the
//! value belongs to (for a binding password: the instance id and the binding id, each as a
//! 4-byte big-endian length and its bytes), so a value copied into another record, or relabelled
//! with another key's id, does not open.
//!
//! `v1` values, sealed before values were bound to their record (associated data `v1:<key id>`
//! alone), still open wherever they are found, so existing bindings keep working; they are
//! never written any more, and leave the store with their binding (an unbind clears the sealed
//! password). To be rid of them sooner, unbind and bind again.

use std::fmt;

use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use sha2::{Digest, Sha256};

use super::Error;
use crate::secret::Secret;

/// The format written: bound to its record.
const VERSION: &str = "v2";
/// The format of values sealed before, without their record; still opened.
const LEGACY: &str = "v1";
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

    /// Seal `plaintext` with the newest key, bound to `record` (for a binding password: its
    /// instance id and binding id): [`Keyring::open`] must be given the same record.
    pub fn seal(&self, plaintext: &str, record: &[&str]) -> String {
        let key = &self.keys[0];
        let header = format!("{VERSION}:{}", key.id);
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let aad = associated_data(&header, record);
        let payload = Payload {
            msg: plaintext.as_bytes(),
            aad: &aad,
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

    /// Open a value sealed by [`Keyring::seal`] for `record`, with any key of the ring. A `v1`
    /// value (sealed before values were bound to a record) opens whatever `record` is.
    pub fn open(&self, sealed: &str, record: &[&str]) -> Result<Secret, Error> {
        let mut parts = sealed.splitn(3, ':');
        let (Some(version), Some(id), Some(body)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(Error::Crypto(
                "sealed value is not in the form v2:<key id>:<data>".into(),
            ));
        };
        if version != VERSION && version != LEGACY {
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
        let header = format!("{version}:{id}");
        let aad = if version == LEGACY {
            header.into_bytes()
        } else {
            associated_data(&header, record)
        };
        let payload = Payload {
            msg: ciphertext,
            aad: &aad,
        };
        let plain = key
            .cipher
            .decrypt(Nonce::from_slice(nonce), payload)
            .map_err(|_| {
                Error::Crypto(format!(
                    "sealed value does not authenticate under key {id} for this record (tampered with, or copied from another record)"
                ))
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

/// `header` then each part of `record` as a 4-byte big-endian length and its bytes: no two
/// different records give the same bytes (`["ab", "c"]` and `["a", "bc"]` differ).
fn associated_data(header: &str, record: &[&str]) -> Vec<u8> {
    let mut aad =
        Vec::with_capacity(header.len() + record.iter().map(|p| 4 + p.len()).sum::<usize>());
    aad.extend_from_slice(header.as_bytes());
    for part in record {
        let len = u32::try_from(part.len()).expect("record ids are far below 4 GiB");
        aad.extend_from_slice(&len.to_be_bytes());
        aad.extend_from_slice(part.as_bytes());
    }
    aad
}

#[cfg(test)]
mod tests {
    use super::*;

    const RECORD: [&str; 2] = ["instance-1", "binding-1"];

    fn key(byte: u8) -> String {
        B64.encode([byte; 32])
    }

    #[test]
    fn seal_open_round_trip() {
        let ring = Keyring::from_config(&key(1)).unwrap();
        let sealed = ring.seal("pa:ss'wörd", &RECORD);
        assert!(sealed.starts_with(&format!("v2:{}:", ring.current_key_id())));
        assert!(!sealed.contains("pa:ss"));
        assert_eq!(ring.open(&sealed, &RECORD).unwrap().expose(), "pa:ss'wörd");
        assert_ne!(
            ring.seal("x", &RECORD),
            ring.seal("x", &RECORD),
            "every seal uses a fresh nonce"
        );
        let eph = Keyring::ephemeral();
        assert_eq!(eph.open(&eph.seal("", &[]), &[]).unwrap().expose(), "");
    }

    #[test]
    fn a_value_opens_only_for_the_record_it_was_sealed_for() {
        let ring = Keyring::from_config(&key(1)).unwrap();
        let sealed = ring.seal("secret", &RECORD);
        for other in [
            &["instance-1", "binding-2"][..],
            &["instance-2", "binding-1"],
            &["binding-1", "instance-1"],
            &["instance-1binding-1"],
            &["instance-1", "binding-1", ""],
            &["instance-", "1binding-1"],
            &[],
        ] {
            let err = ring.open(&sealed, other).unwrap_err().to_string();
            assert!(err.contains("another record"), "{other:?}: {err}");
        }
        // Length prefixes keep records apart that concatenate alike.
        let split = ring.seal("secret", &["ab", "c"]);
        assert!(ring.open(&split, &["a", "bc"]).is_err());
        assert!(ring.open(&split, &["ab", "c"]).is_ok());
    }

    #[test]
    fn values_sealed_before_record_binding_still_open() {
        // Sealed by the previous format (v1: no record in the associated data) under key(1).
        const V1: &str = "v1:72cd6e84:Iaw1hKP1hzPOpK2SusNK1uDtQLgV/MGSNUqM/Uu2g9mvDSiFutGhsYgi";
        let ring = Keyring::from_config(&key(1)).unwrap();
        for record in [&RECORD[..], &["any", "where"], &[]] {
            assert_eq!(ring.open(V1, record).unwrap().expose(), "legacy-pass-v1");
        }
        // Still authenticated: tampering or relabelling as v2 fails.
        assert!(ring.open(&V1.replacen("v1:", "v2:", 1), &RECORD).is_err());
        assert!(ring.open(&V1.replace("Iaw1", "Iaw2"), &RECORD).is_err());
    }

    #[test]
    fn rotation_keeps_old_values_open_and_seals_with_the_new_key() {
        let old = Keyring::from_config(&key(1)).unwrap();
        let sealed_old = old.seal("secret", &RECORD);
        let rotated = Keyring::from_config(&format!("{}, {}", key(2), key(1))).unwrap();
        assert_eq!(
            rotated.open(&sealed_old, &RECORD).unwrap().expose(),
            "secret"
        );
        assert!(rotated.is_stale(&sealed_old));
        let sealed_new = rotated.seal("secret", &RECORD);
        assert_ne!(rotated.current_key_id(), old.current_key_id());
        assert!(sealed_new.starts_with(&format!("v2:{}:", rotated.current_key_id())));
        assert!(!rotated.is_stale(&sealed_new));
        // The old ring alone cannot open what the new key sealed.
        assert!(old.open(&sealed_new, &RECORD).is_err());
    }

    #[test]
    fn tampering_is_detected() {
        let ring = Keyring::from_config(&format!("{},{}", key(3), key(4))).unwrap();
        let sealed = ring.seal("secret", &RECORD);
        let (head, body) = sealed.rsplit_once(':').unwrap();
        let mut blob = B64.decode(body).unwrap();
        let last = blob.len() - 1;
        blob[last] ^= 1;
        assert!(
            ring.open(&format!("{head}:{}", B64.encode(&blob)), &RECORD)
                .is_err()
        );
        blob[last] ^= 1;
        blob[NONCE_LEN] ^= 0x80;
        assert!(
            ring.open(&format!("{head}:{}", B64.encode(&blob)), &RECORD)
                .is_err()
        );
        // Relabelling the value with the other key's id fails too, and so does calling a v2
        // value v1 (which would drop the record from the associated data).
        let other = Keyring::from_config(&key(4))
            .unwrap()
            .current_key_id()
            .to_owned();
        assert!(ring.open(&format!("v2:{other}:{body}"), &RECORD).is_err());
        assert!(
            ring.open(&sealed.replacen("v2:", "v1:", 1), &RECORD)
                .is_err()
        );
        for junk in [
            "",
            "v2",
            "v3:x:y",
            "v2:nokey:AAAA",
            &format!("{head}:!!"),
            &format!("{head}:AAAA"),
        ] {
            assert!(ring.open(junk, &RECORD).is_err(), "{junk}");
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
