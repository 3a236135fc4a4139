//! Encryption at rest.
//!
//! - The **master key** (256 bits) lives in `<data-dir>/master.key`, mode
//!   0600, created on first start (written to a temporary file, synced,
//!   renamed, directory synced). A looser mode is refused at open.
//! - Every KMS key of the local world has a 256-bit **data key**, generated
//!   when the key is created and stored in the database only wrapped
//!   (AES-256-GCM under the master key, the key id bound as associated data).
//! - Secret data is sealed with AES-256-GCM under the data key of the
//!   secret's `EncryptionKeyId`, a random 96-bit nonce per version, and
//!   associated data `secret name || 0x00 || version id`, so a ciphertext
//!   moved to another secret or version does not open.
//!
//! Sealed layout: `0x01 || nonce (12) || ciphertext+tag`.

use std::fmt;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use aes_gcm::aead::{Aead, Payload};
use aes_gcm::{Aes256Gcm, KeyInit, Nonce};
use rota_kms::SecretString;

/// File name of the master key in the data directory.
pub const MASTER_KEY_FILE: &str = "master.key";

const SEALED_V1: u8 = 1;
const NONCE_LEN: usize = 12;

/// Why a key could not be loaded or a value not opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CryptoError {
    /// Reading or writing the master key failed.
    #[error("master key {path}: {reason}")]
    MasterKey {
        /// Path of the file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A ciphertext did not authenticate (wrong key, or tampered with).
    #[error("a sealed value does not open ({0})")]
    Open(String),
}

/// An AES-256-GCM key. `Debug` never shows the key.
#[derive(Clone)]
pub struct SealingKey {
    cipher: Aes256Gcm,
}

impl fmt::Debug for SealingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SealingKey(***)")
    }
}

impl SealingKey {
    /// A key from 32 bytes.
    pub fn from_bytes(bytes: &[u8; 32]) -> Self {
        Self {
            cipher: Aes256Gcm::new_from_slice(bytes).expect("32-byte key"),
        }
    }

    /// A fresh random key and its bytes.
    pub fn generate() -> (Self, [u8; 32]) {
        let bytes: [u8; 32] = rand::random();
        (Self::from_bytes(&bytes), bytes)
    }

    /// Seals `plaintext` bound to `aad`.
    pub fn seal(&self, plaintext: &[u8], aad: &[u8]) -> Vec<u8> {
        let nonce_bytes: [u8; NONCE_LEN] = rand::random();
        let nonce = Nonce::from(nonce_bytes);
        let ct = self
            .cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext,
                    aad,
                },
            )
            .expect("AES-GCM encryption of an in-memory buffer cannot fail");
        let mut out = Vec::with_capacity(1 + NONCE_LEN + ct.len());
        out.push(SEALED_V1);
        out.extend_from_slice(&nonce_bytes);
        out.extend_from_slice(&ct);
        out
    }

    /// Opens a value sealed by [`SealingKey::seal`] with the same `aad`.
    pub fn open(&self, sealed: &[u8], aad: &[u8]) -> Result<Vec<u8>, CryptoError> {
        if sealed.len() < 1 + NONCE_LEN + 16 || sealed[0] != SEALED_V1 {
            return Err(CryptoError::Open("unknown layout".into()));
        }
        let nonce_bytes: [u8; NONCE_LEN] =
            sealed[1..1 + NONCE_LEN].try_into().expect("length checked");
        let nonce = Nonce::from(nonce_bytes);
        self.cipher
            .decrypt(
                &nonce,
                Payload {
                    msg: &sealed[1 + NONCE_LEN..],
                    aad,
                },
            )
            .map_err(|_| CryptoError::Open("authentication failed".into()))
    }

    /// Seals secret data of version `version_id` of secret `name`.
    pub fn seal_secret(&self, name: &str, version_id: &str, data: &SecretString) -> Vec<u8> {
        self.seal(
            data.expose_secret().as_bytes(),
            &secret_aad(name, version_id),
        )
    }

    /// Opens secret data of version `version_id` of secret `name`.
    pub fn open_secret(
        &self,
        name: &str,
        version_id: &str,
        sealed: &[u8],
    ) -> Result<SecretString, CryptoError> {
        // The associated data on the stack when it fits (names are at
        // most 192 bytes, version ids 64).
        let mut stack = [0u8; 320];
        let len = name.len() + 1 + version_id.len();
        let bytes = if len <= stack.len() {
            stack[..name.len()].copy_from_slice(name.as_bytes());
            stack[name.len() + 1..len].copy_from_slice(version_id.as_bytes());
            self.open(sealed, &stack[..len])?
        } else {
            self.open(sealed, &secret_aad(name, version_id))?
        };
        String::from_utf8(bytes)
            .map(SecretString::new)
            .map_err(|_| CryptoError::Open("not UTF-8".into()))
    }

    /// Wraps a data key under this (master) key, bound to the key id.
    pub fn wrap_key(&self, key_id: &str, data_key: &[u8; 32]) -> Vec<u8> {
        self.seal(data_key, &key_aad(key_id))
    }

    /// Unwraps a data key.
    pub fn unwrap_key(&self, key_id: &str, wrapped: &[u8]) -> Result<SealingKey, CryptoError> {
        let bytes = self.open(wrapped, &key_aad(key_id))?;
        let arr: [u8; 32] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| CryptoError::Open("a data key is not 32 bytes".into()))?;
        Ok(Self::from_bytes(&arr))
    }
}

fn secret_aad(name: &str, version_id: &str) -> Vec<u8> {
    let mut aad = Vec::with_capacity(name.len() + 1 + version_id.len());
    aad.extend_from_slice(name.as_bytes());
    aad.push(0);
    aad.extend_from_slice(version_id.as_bytes());
    aad
}

fn key_aad(key_id: &str) -> Vec<u8> {
    let mut aad = b"rota-local data key\0".to_vec();
    aad.extend_from_slice(key_id.as_bytes());
    aad
}

/// Loads `<dir>/master.key`, creating it (mode 0600) if it does not exist.
pub fn load_or_create_master_key(dir: &Path) -> Result<SealingKey, CryptoError> {
    let path = dir.join(MASTER_KEY_FILE);
    let err = |reason: String| CryptoError::MasterKey {
        path: path.clone(),
        reason,
    };
    match std::fs::read(&path) {
        Ok(bytes) => {
            check_private(&path).map_err(err)?;
            let arr: [u8; 32] = bytes.as_slice().try_into().map_err(|_| {
                err(format!(
                    "is {} bytes; a master key is 32 bytes",
                    bytes.len()
                ))
            })?;
            Ok(SealingKey::from_bytes(&arr))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let (key, bytes) = SealingKey::generate();
            write_private_file(&path, &bytes).map_err(|e| err(format!("cannot create: {e}")))?;
            Ok(key)
        }
        Err(e) => Err(err(format!("cannot read: {e}"))),
    }
}

/// Refuses a file readable or writable by group or others.
pub fn check_private(path: &Path) -> Result<(), String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(path)
            .map_err(|e| format!("cannot stat: {e}"))?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            return Err(format!(
                "has mode {:o}; it must be readable by its owner only (chmod 600)",
                mode & 0o777
            ));
        }
    }
    Ok(())
}

/// Writes `bytes` to `path` durably with mode 0600: temporary file, fsync,
/// rename, fsync of the directory.
pub fn write_private_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = path.with_extension("tmp");
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        opts.mode(0o600);
    }
    let mut f = opts.open(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, path)?;
    if let Ok(d) = std::fs::File::open(dir) {
        // Directory fsync makes the rename durable; not every platform allows it.
        let _ = d.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_are_bound_to_name_and_version() {
        let (k, _) = SealingKey::generate();
        let data = SecretString::new("canary-value");
        let sealed = k.seal_secret("app/db", "v1", &data);
        assert!(!sealed.windows(6).any(|w| w == b"canary"));
        assert_eq!(k.open_secret("app/db", "v1", &sealed).unwrap(), data);
        assert!(k.open_secret("app/db", "v2", &sealed).is_err());
        assert!(k.open_secret("app/dbv", "1", &sealed).is_err());
        let (other, _) = SealingKey::generate();
        assert!(other.open_secret("app/db", "v1", &sealed).is_err());
    }

    #[test]
    fn master_key_is_created_private_and_reloaded() {
        let dir = tempfile::tempdir().unwrap();
        let k1 = load_or_create_master_key(dir.path()).unwrap();
        let sealed = k1.seal(b"x", b"a");
        let k2 = load_or_create_master_key(dir.path()).unwrap();
        assert_eq!(k2.open(&sealed, b"a").unwrap(), b"x");
        check_private(&dir.path().join(MASTER_KEY_FILE)).unwrap();
        let (dk, bytes) = SealingKey::generate();
        let wrapped = k1.wrap_key("key-1", &bytes);
        let un = k2.unwrap_key("key-1", &wrapped).unwrap();
        assert_eq!(un.open(&dk.seal(b"y", b""), b"").unwrap(), b"y");
        assert!(k2.unwrap_key("key-2", &wrapped).is_err());
    }
}
