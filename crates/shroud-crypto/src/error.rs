//! The crate's one error type.
//!
//! Crypto failures are deliberately coarse (age, rustls): a tampered entry, a moved entry, an
//! entry under an unknown key term and a truncated entry all read as "decryption failed", so an
//! attacker who controls storage learns nothing about which check failed. No variant carries key
//! material or plaintext; paths and lengths are not secret.

use std::path::PathBuf;

/// Errors from the barrier, the keyring and the seals.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CryptoError {
    /// The barrier is sealed: no key material is in memory. The server answers 503
    /// `Vault is sealed`.
    #[error("Vault is sealed")]
    Sealed,
    /// An entry failed authentication (tampered, moved to another path, wrong or unknown key
    /// term, truncated, unknown format version). Coarse on purpose.
    #[error("decryption failed")]
    DecryptionFailed,
    /// No seal configuration is stored yet: `sys/init` has not run.
    #[error("Vault is not initialized")]
    NotInitialized,
    /// A seal configuration is already stored: initialising again would orphan every entry.
    #[error("Vault is already initialized")]
    AlreadyInitialized,
    /// The submitted unseal key shares do not combine into the unseal key (a share from another
    /// initialisation, a mistyped share, a malformed share). Vault's message.
    #[error("Unseal failed, invalid key")]
    InvalidShare,
    /// The unseal key given to `unseal_with_key` / `initialize_static` is not the stored one,
    /// or has the wrong length. Vault's message.
    #[error("Unseal failed, invalid key")]
    InvalidKey,
    /// A seal configuration was rejected (shares/threshold out of range). The message is
    /// user-readable and never contains a secret.
    #[error("invalid seal configuration: {0}")]
    InvalidConfig(String),
    /// A barrier write targeted one of the seal's own bootstrap entries (`core/seal-config`,
    /// `core/root-key`, `core/keyring`), which only the seal may write.
    #[error("storage key {0:?} is reserved for the seal")]
    ReservedPath(String),
    /// The seal's bootstrap entries are present but unreadable (bad JSON, wrong length, a
    /// keyring that does not parse). Storage was corrupted or tampered with.
    #[error("stored seal state is corrupt: {0}")]
    CorruptState(&'static str),
    /// Every keyring term number has been used (2^32 - 1 rotations).
    #[error("keyring term numbers exhausted")]
    TermsExhausted,
    /// The operating system's random number generator failed.
    #[error("random number generator failed")]
    Rng(#[source] getrandom::Error),
    /// A key file could not be read or written.
    #[error("key file {path}: {source}")]
    KeyFileIo {
        /// The key file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A key file's content is not a 32-byte key in hex or base64. The reason never quotes
    /// the content.
    #[error("key file {path}: {reason}")]
    KeyFileInvalid {
        /// The key file.
        path: PathBuf,
        /// What is wrong, without the content.
        reason: &'static str,
    },
    /// A key file can be read by group or other; refusing it matches ssh's handling of
    /// private keys.
    #[error(
        "key file {path} has mode {mode:04o}, which group or other can access; \
         run `chmod 600 {path}`"
    )]
    KeyFilePermissions {
        /// The key file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The storage backend failed.
    #[error(transparent)]
    Storage(#[from] shroud_core::StorageError),
}

impl CryptoError {
    /// True for errors caused by the caller's input (a bad share, a bad configuration,
    /// initialising twice), which the server answers with 400; false for sealed (503) and
    /// internal failures (500).
    pub fn is_client_error(&self) -> bool {
        matches!(
            self,
            CryptoError::NotInitialized
                | CryptoError::AlreadyInitialized
                | CryptoError::InvalidShare
                | CryptoError::InvalidKey
                | CryptoError::InvalidConfig(_)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_file_permissions_message_names_the_fix() {
        let e = CryptoError::KeyFilePermissions {
            path: PathBuf::from("/etc/shroud/unseal.key"),
            mode: 0o644,
        };
        let msg = e.to_string();
        assert!(msg.contains("0644"), "{msg}");
        assert!(msg.contains("chmod 600 /etc/shroud/unseal.key"), "{msg}");
    }

    #[test]
    fn client_errors_are_classified() {
        assert!(CryptoError::InvalidShare.is_client_error());
        assert!(CryptoError::InvalidConfig("x".into()).is_client_error());
        assert!(!CryptoError::Sealed.is_client_error());
        assert!(!CryptoError::DecryptionFailed.is_client_error());
    }
}
