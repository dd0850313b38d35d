//! The `Storage` trait: a dumb, ordered key-value store of opaque bytes.
//!
//! Threat assumption: storage is untrusted. Backends only ever see ciphertext produced by the
//! barrier (`shroud-crypto`), plus the few unencrypted bootstrap entries the seal needs (the
//! encrypted root key and seal configuration). All meaning lives above this trait, which keeps
//! backends small and lets one conformance suite ([`crate::conformance`]) check them all.

use async_trait::async_trait;

/// Errors from a storage backend.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    /// The backend failed to perform I/O (disk, database, network).
    #[error("storage I/O failed: {0}")]
    Io(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The stored data could not be interpreted (corrupt database file, bad schema).
    #[error("storage is corrupt: {0}")]
    Corrupt(String),
    /// A key was rejected (empty, too long, or containing NUL).
    #[error("invalid storage key")]
    InvalidKey,
    /// The backend has been shut down.
    #[error("storage is closed")]
    Closed,
}

/// Longest key a backend must accept, in bytes.
pub const MAX_KEY_LEN: usize = 4096;

/// Checks a key against the rules every backend enforces.
pub fn validate_key(key: &str) -> Result<(), StorageError> {
    if key.is_empty() || key.len() > MAX_KEY_LEN || key.contains('\0') {
        return Err(StorageError::InvalidKey);
    }
    Ok(())
}

/// One mutation inside an atomic [`Storage::write_batch`].
#[derive(Clone, PartialEq, Eq)]
pub enum Op {
    /// Create or overwrite `key`.
    Put(String, Vec<u8>),
    /// Remove `key` (no error if absent).
    Delete(String),
}

impl std::fmt::Debug for Op {
    // Values are ciphertext, but there is no reason to print them either.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Op::Put(k, v) => write!(f, "Put({k:?}, <{} bytes>)", v.len()),
            Op::Delete(k) => write!(f, "Delete({k:?})"),
        }
    }
}

/// An ordered key-value store of opaque bytes.
///
/// Contract (checked by [`crate::conformance::run_all`]):
/// - A successful `put`, `delete`, `write_batch` or swapping `compare_and_swap` is **durable**
///   when it returns: it survives a crash of the process (for persistent backends).
/// - `write_batch` is atomic: after a crash either every op or none is visible.
/// - `list(prefix)` returns every key that starts with `prefix`, in ascending byte order.
/// - `sequence()` is the change sequence: it increases by at least one with every committed
///   mutation and never decreases, also across restarts for persistent backends.
#[async_trait]
pub trait Storage: Send + Sync + 'static {
    /// Reads one entry.
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StorageError>;

    /// Creates or overwrites one entry.
    async fn put(&self, key: &str, value: &[u8]) -> Result<(), StorageError> {
        self.write_batch(vec![Op::Put(key.to_owned(), value.to_vec())])
            .await
    }

    /// Deletes one entry; deleting an absent key is not an error.
    async fn delete(&self, key: &str) -> Result<(), StorageError> {
        self.write_batch(vec![Op::Delete(key.to_owned())]).await
    }

    /// Applies all `ops` atomically, in order.
    async fn write_batch(&self, ops: Vec<Op>) -> Result<(), StorageError>;

    /// Every key starting with `prefix`, ascending.
    async fn list(&self, prefix: &str) -> Result<Vec<String>, StorageError>;

    /// If the current value of `key` equals `expected` (`None` = absent), replaces it with
    /// `new` (`None` = delete) and returns `true`; otherwise changes nothing and returns `false`.
    async fn compare_and_swap(
        &self,
        key: &str,
        expected: Option<&[u8]>,
        new: Option<&[u8]>,
    ) -> Result<bool, StorageError>;

    /// The current change sequence (see the trait docs).
    async fn sequence(&self) -> Result<u64, StorageError>;

    /// A short name for logs and `sys/seal-status` (`"memory"`, `"sqlite"`).
    fn kind(&self) -> &'static str;
}
