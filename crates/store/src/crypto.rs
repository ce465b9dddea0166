//! Encryption at rest. Secret material (private and symmetric keys) is sealed with
//! AES-256-GCM under the store's master key, with the object's ID as associated data so a
//! sealed blob cannot be moved to another row. The master key comes from a key file made on
//! first use (mode 0600), from an environment variable, or from a passphrase run through scrypt
//! with a salt kept in the store.

use std::fmt;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use openssl::rand::rand_bytes;
use openssl::symm::{Cipher, decrypt_aead, encrypt_aead};
use secrecy::{ExposeSecret, SecretString};
use zeroize::Zeroizing;

use crate::error::{Result, StoreError};

const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
pub(crate) const KEY_LEN: usize = 32;

/// Where the master key comes from.
#[derive(Clone)]
pub enum MasterKeySource {
    /// A file holding the base64 key; created with mode 0600 when a new store is made.
    File(PathBuf),
    /// The base64 key itself (from an environment variable).
    Base64(SecretString),
    /// A passphrase; the key is derived with scrypt and a per-store salt.
    Passphrase(SecretString),
}

impl fmt::Debug for MasterKeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::File(path) => f.debug_tuple("File").field(path).finish(),
            Self::Base64(_) => f.write_str("Base64([REDACTED])"),
            Self::Passphrase(_) => f.write_str("Passphrase([REDACTED])"),
        }
    }
}

/// The 256-bit key that seals secret material. Zeroized on drop, never printed.
pub(crate) struct MasterKey(Zeroizing<[u8; KEY_LEN]>);

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey([REDACTED])")
    }
}

impl MasterKey {
    pub(crate) fn generate() -> Result<Self> {
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        rand_bytes(key.as_mut()).map_err(StoreError::crypto("generating the master key"))?;
        Ok(Self(key))
    }

    pub(crate) fn from_base64(text: &str, source_name: &str) -> Result<Self> {
        let bytes = Zeroizing::new(STANDARD.decode(text.trim()).map_err(|_| {
            StoreError::InvalidMasterKey {
                source_name: source_name.to_owned(),
                reason: "it is not base64",
            }
        })?);
        let array: [u8; KEY_LEN] =
            bytes
                .as_slice()
                .try_into()
                .map_err(|_| StoreError::InvalidMasterKey {
                    source_name: source_name.to_owned(),
                    reason: "it must decode to exactly 32 bytes",
                })?;
        Ok(Self(Zeroizing::new(array)))
    }

    pub(crate) fn to_base64(&self) -> Zeroizing<String> {
        Zeroizing::new(STANDARD.encode(self.0.as_ref()))
    }

    /// Derives a key from a passphrase with scrypt (N = 2^15, r = 8, p = 1).
    pub(crate) fn from_passphrase(passphrase: &SecretString, salt: &[u8]) -> Result<Self> {
        if passphrase.expose_secret().is_empty() {
            return Err(StoreError::InvalidMasterKey {
                source_name: "passphrase".to_owned(),
                reason: "it is empty",
            });
        }
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        openssl::pkcs5::scrypt(
            passphrase.expose_secret().as_bytes(),
            salt,
            1 << 15,
            8,
            1,
            64 * 1024 * 1024,
            key.as_mut(),
        )
        .map_err(StoreError::crypto("deriving the master key"))?;
        Ok(Self(key))
    }

    /// Reads a key file, or creates one with mode 0600 when `create` is set and none exists.
    pub(crate) fn from_file(path: &Path, create: bool) -> Result<Option<Self>> {
        match fs::read_to_string(path) {
            Ok(text) => {
                warn_if_readable_by_others(path);
                let text = Zeroizing::new(text);
                Self::from_base64(&text, &path.display().to_string()).map(Some)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && create => {
                let key = Self::generate()?;
                write_private_file(path, key.to_base64().as_bytes())?;
                tracing::info!(path = %path.display(), "created a new master key file");
                Ok(Some(key))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(StoreError::io(path)(e)),
        }
    }

    /// Seals `plaintext`, binding it to `aad` (the object ID).
    pub(crate) fn seal(&self, plaintext: &[u8], aad: &[u8]) -> Result<Vec<u8>> {
        let mut nonce = [0u8; NONCE_LEN];
        rand_bytes(&mut nonce).map_err(StoreError::crypto("drawing a nonce"))?;
        let mut tag = [0u8; TAG_LEN];
        let ciphertext = encrypt_aead(
            Cipher::aes_256_gcm(),
            self.0.as_ref(),
            Some(&nonce),
            aad,
            plaintext,
            &mut tag,
        )
        .map_err(StoreError::crypto("sealing key material"))?;
        let mut out = Vec::with_capacity(NONCE_LEN + ciphertext.len() + TAG_LEN);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ciphertext);
        out.extend_from_slice(&tag);
        Ok(out)
    }

    /// Opens what `seal` made; `None` when the key or the associated data do not match or
    /// the blob was altered.
    pub(crate) fn open(&self, sealed: &[u8], aad: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
        if sealed.len() < NONCE_LEN + TAG_LEN {
            return None;
        }
        let (nonce, rest) = sealed.split_at(NONCE_LEN);
        let (ciphertext, tag) = rest.split_at(rest.len() - TAG_LEN);
        decrypt_aead(
            Cipher::aes_256_gcm(),
            self.0.as_ref(),
            Some(nonce),
            aad,
            ciphertext,
            tag,
        )
        .ok()
        .map(Zeroizing::new)
    }
}

/// Wraps a private key (PKCS#8 DER) for Gmail CSE with a 256-bit key from the store:
/// base64(nonce 12 ‖ AES-256-GCM ciphertext ‖ tag 16), the layout Cosmian KMS uses, so wrapped
/// keys stay portable between key services.
pub fn cse_wrap(wrapping_key: &[u8], pkcs8: &[u8]) -> crate::Result<String> {
    let key = cse_key(wrapping_key)?;
    let sealed = key.seal(pkcs8, b"")?;
    Ok(STANDARD.encode(sealed))
}

/// Unwraps what [`cse_wrap`] made; `None` when the key is not the one that wrapped it or the
/// data was altered.
pub fn cse_unwrap(wrapping_key: &[u8], wrapped: &str) -> crate::Result<Option<Zeroizing<Vec<u8>>>> {
    let key = cse_key(wrapping_key)?;
    let Ok(bytes) = STANDARD.decode(wrapped.trim()) else {
        return Ok(None);
    };
    Ok(key.open(&bytes, b""))
}

fn cse_key(wrapping_key: &[u8]) -> crate::Result<MasterKey> {
    let array: [u8; KEY_LEN] =
        wrapping_key
            .try_into()
            .map_err(|_| StoreError::InvalidKeyLength {
                algorithm: "AES (CSE wrapping needs AES-256)".to_owned(),
                bits: (wrapping_key.len() * 8) as u32,
            })?;
    Ok(MasterKey(Zeroizing::new(array)))
}

/// Creates `path` (and missing parent folders, mode 0700) with mode 0600 and writes `data`.
/// Fails if the file exists, so a secret is never silently replaced.
pub fn write_private_file(path: &Path, data: &[u8]) -> Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        create_private_dir(parent)?;
    }
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(StoreError::io(path))?;
    file.write_all(data)
        .and_then(|()| file.sync_all())
        .map_err(StoreError::io(path))
}

/// Writes `data` to `path` (mode 0600) through a temporary file beside it, replacing any file
/// there: readers see the old file or the whole new one, never a part of it.
pub fn replace_private_file(path: &Path, data: &[u8]) -> Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = std::path::PathBuf::from(tmp);
    let _ = fs::remove_file(&tmp);
    write_private_file(&tmp, data)?;
    fs::rename(&tmp, path).map_err(StoreError::io(path))
}

/// Opens `path` with `options`, refusing a symbolic link in its last component (so that a
/// link planted in an output folder cannot send writes elsewhere).
pub fn open_no_follow(path: &Path, options: &mut fs::OpenOptions) -> std::io::Result<fs::File> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NOFOLLOW);
    }
    options.open(path)
}

/// Creates a folder and its missing parents; new folders get mode 0700.
pub fn create_private_dir(path: &Path) -> Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(path).map_err(StoreError::io(path))
}

fn warn_if_readable_by_others(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = fs::metadata(path)
            && meta.permissions().mode() & 0o077 != 0
        {
            tracing::warn!(
                path = %path.display(),
                "the master key file is readable by other users; run `chmod 600` on it"
            );
        }
    }
    #[cfg(not(unix))]
    let _ = path;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_round_trips_and_binds_the_id() -> Result<()> {
        let key = MasterKey::generate()?;
        let sealed = key.seal(b"secret key bytes", b"id-1")?;
        assert_eq!(
            key.open(&sealed, b"id-1").as_deref().map(Vec::as_slice),
            Some(&b"secret key bytes"[..])
        );
        assert!(key.open(&sealed, b"id-2").is_none(), "moved to another row");
        let other = MasterKey::generate()?;
        assert!(other.open(&sealed, b"id-1").is_none(), "another master key");
        let mut tampered = sealed.clone();
        tampered[NONCE_LEN] ^= 1;
        assert!(key.open(&tampered, b"id-1").is_none(), "flipped bit");
        assert!(key.open(&sealed[..10], b"id-1").is_none(), "truncated");
        Ok(())
    }

    #[test]
    fn cse_wrapping_round_trips_in_the_portable_layout() -> Result<()> {
        let key = [9u8; 32];
        let wrapped = cse_wrap(&key, b"pkcs8 bytes")?;
        let raw = STANDARD
            .decode(&wrapped)
            .map_err(|_| StoreError::EmptyImport)?;
        assert_eq!(raw.len(), NONCE_LEN + 11 + TAG_LEN);
        assert_eq!(
            cse_unwrap(&key, &wrapped)?.as_deref().map(Vec::as_slice),
            Some(&b"pkcs8 bytes"[..])
        );
        assert!(cse_unwrap(&[8u8; 32], &wrapped)?.is_none(), "another key");
        assert!(cse_wrap(&[1u8; 16], b"x").is_err(), "AES-128 is refused");
        Ok(())
    }

    #[test]
    fn base64_keys_must_be_32_bytes() {
        assert!(MasterKey::from_base64(&STANDARD.encode([7u8; 32]), "env").is_ok());
        assert!(matches!(
            MasterKey::from_base64(&STANDARD.encode([7u8; 16]), "env"),
            Err(StoreError::InvalidMasterKey { .. })
        ));
        assert!(MasterKey::from_base64("%%%", "env").is_err());
    }

    #[test]
    fn key_files_are_created_private_and_read_back() -> Result<()> {
        let dir = tempfile::tempdir().map_err(StoreError::io("tempdir"))?;
        let path = dir.path().join("sub/master.key");
        assert!(MasterKey::from_file(&path, false)?.is_none());
        let created = MasterKey::from_file(&path, true)?.ok_or(StoreError::EmptyImport)?;
        let again = MasterKey::from_file(&path, false)?.ok_or(StoreError::EmptyImport)?;
        assert_eq!(created.to_base64(), again.to_base64());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&path)
                .map_err(StoreError::io(&path))?
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        Ok(())
    }

    #[test]
    fn debug_output_is_redacted() -> Result<()> {
        let key = MasterKey::generate()?;
        assert_eq!(format!("{key:?}"), "MasterKey([REDACTED])");
        let source = MasterKeySource::Passphrase(SecretString::from("hunter2"));
        assert!(!format!("{source:?}").contains("hunter2"));
        Ok(())
    }
}
