//! The barrier: every entry above it is plaintext, every entry below it is an envelope.
//!
//! Threat assumption: whoever controls storage can read, copy, reorder and rewrite any entry.
//! The barrier guarantees confidentiality and integrity per entry (AES-256-GCM, AAD bound to the
//! path and header); it does not detect rollback of an entry to an older ciphertext of the same
//! path (nothing short of a trusted counter could).

use std::fmt;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::SystemTime;

use shroud_core::storage::Op;
use shroud_core::{SecretBytes, Storage};

use crate::envelope;
use crate::error::CryptoError;
use crate::keyring::Keyring;
use crate::{KEYRING_PATH, ROOT_KEY_PATH, SEAL_CONFIG_PATH};

/// One mutation inside [`Barrier::write_batch`].
#[derive(Clone)]
pub enum BarrierOp {
    /// Encrypt the plaintext and store it at the path.
    Put(String, Vec<u8>),
    /// Remove the path (no error if absent).
    Delete(String),
}

impl fmt::Debug for BarrierOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BarrierOp::Put(p, v) => write!(f, "Put({p:?}, <{} bytes>)", v.len()),
            BarrierOp::Delete(p) => write!(f, "Delete({p:?})"),
        }
    }
}

/// The active key term, as shown by `sys/key-status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyStatus {
    /// The term new entries are encrypted with.
    pub term: u32,
    /// When that term was created.
    pub install_time: SystemTime,
    /// Encryptions under that term since this process unsealed (not persisted).
    pub encryptions: u64,
}

/// Encrypts and decrypts every storage entry with the keyring's terms.
///
/// Cheap to share (`Arc<Barrier>`); all methods take `&self`. While sealed, every data method
/// returns [`CryptoError::Sealed`].
pub struct Barrier {
    storage: Arc<dyn Storage>,
    /// `None` while sealed. Readers clone the `Arc` and drop the lock before any crypto, so the
    /// lock is held for a pointer copy only; sealing drops this reference and the key material
    /// is wiped when the last in-flight operation finishes with its snapshot.
    state: RwLock<Option<Arc<Keyring>>>,
    /// Serialises rotations (and the install that ends each one) so two rotations cannot both
    /// create term N+1 with different keys.
    rotate_lock: tokio::sync::Mutex<()>,
}

impl Barrier {
    /// A sealed barrier over `storage`.
    pub fn new(storage: Arc<dyn Storage>) -> Arc<Barrier> {
        Arc::new(Barrier {
            storage,
            state: RwLock::new(None),
            rotate_lock: tokio::sync::Mutex::new(()),
        })
    }

    /// The storage backend, for the seal (and the server's `storage_type`).
    pub fn storage(&self) -> &Arc<dyn Storage> {
        &self.storage
    }

    /// True while no key material is loaded.
    pub fn is_sealed(&self) -> bool {
        self.read_state().is_none()
    }

    /// Reads and decrypts `path`. `Ok(None)` if absent.
    pub async fn get(&self, path: &str) -> Result<Option<SecretBytes>, CryptoError> {
        let keyring = self.keyring()?;
        let Some(raw) = self.storage.get(path).await? else {
            return Ok(None);
        };
        let term = envelope::term_of(&raw)?;
        // An unknown term reads as a failed decryption: storage must not learn which terms exist.
        let key = keyring.term(term).ok_or(CryptoError::DecryptionFailed)?;
        envelope::open(&key.cipher, path, raw).map(Some)
    }

    /// Encrypts `plaintext` with the active term and stores it at `path`.
    pub async fn put(&self, path: &str, plaintext: &[u8]) -> Result<(), CryptoError> {
        check_writable(path)?;
        let keyring = self.keyring()?;
        let raw = encrypt(&keyring, path, plaintext)?;
        drop(keyring);
        self.storage.put(path, &raw).await?;
        Ok(())
    }

    /// Removes `path`.
    pub async fn delete(&self, path: &str) -> Result<(), CryptoError> {
        check_writable(path)?;
        self.keyring()?;
        self.storage.delete(path).await?;
        Ok(())
    }

    /// Every stored key starting with `prefix`, ascending (keys are not encrypted).
    pub async fn list(&self, prefix: &str) -> Result<Vec<String>, CryptoError> {
        self.keyring()?;
        Ok(self.storage.list(prefix).await?)
    }

    /// Encrypts every put and applies all ops atomically ([`Storage::write_batch`]).
    pub async fn write_batch(&self, ops: Vec<BarrierOp>) -> Result<(), CryptoError> {
        for op in &ops {
            match op {
                BarrierOp::Put(p, _) | BarrierOp::Delete(p) => check_writable(p)?,
            }
        }
        let keyring = self.keyring()?;
        let mut out = Vec::with_capacity(ops.len());
        for op in ops {
            out.push(match op {
                BarrierOp::Put(path, plaintext) => {
                    // The caller handed over ownership of the plaintext: wipe it once encrypted.
                    let plaintext = zeroize::Zeroizing::new(plaintext);
                    let raw = encrypt(&keyring, &path, &plaintext)?;
                    Op::Put(path, raw)
                }
                BarrierOp::Delete(path) => Op::Delete(path),
            });
        }
        drop(keyring);
        self.storage.write_batch(out).await?;
        Ok(())
    }

    /// Adds a key term and makes it active, online. Entries under older terms stay readable.
    ///
    /// The new keyring is persisted before the new term is installed in memory: if the process
    /// dies, or the write fails, after a write but before the install, nothing was encrypted
    /// under a term the stored keyring lacks.
    pub async fn rotate(&self) -> Result<KeyStatus, CryptoError> {
        let _serial = self.rotate_lock.lock().await;
        let current = self.keyring()?;
        let next = current.rotated()?;
        let raw = envelope::seal(
            &current.root_cipher(),
            envelope::BOOTSTRAP_TERM,
            KEYRING_PATH,
            &next.encode(),
        )?;
        self.storage.put(KEYRING_PATH, &raw).await?;

        let next = Arc::new(next);
        let mut state = self.write_state();
        // If the barrier was sealed (and perhaps unsealed again) while the write was in flight,
        // do not resurrect key material; the persisted keyring is loaded at the next unseal.
        match state.as_ref() {
            Some(s) if Arc::ptr_eq(s, &current) => *state = Some(Arc::clone(&next)),
            _ => return Err(CryptoError::Sealed),
        }
        drop(state);
        Ok(status_of(&next))
    }

    /// The active term, or `None` while sealed.
    pub fn key_status(&self) -> Option<KeyStatus> {
        self.read_state().as_ref().map(|k| status_of(k))
    }

    /// Loads the keyring stored under `root_key` and unseals. Used by the seal once it has
    /// decrypted the root key.
    pub(crate) async fn unseal_with_root_key(
        &self,
        root_key: zeroize::Zeroizing<[u8; envelope::KEY_LEN]>,
    ) -> Result<(), CryptoError> {
        let raw = self
            .storage
            .get(KEYRING_PATH)
            .await?
            .ok_or(CryptoError::CorruptState("keyring is missing"))?;
        if envelope::term_of(&raw)? != envelope::BOOTSTRAP_TERM {
            return Err(CryptoError::DecryptionFailed);
        }
        let plain = envelope::open(&envelope::cipher(&root_key), KEYRING_PATH, raw)?;
        let keyring = Keyring::decode(root_key, plain.expose())?;
        // Taking the rotate lock orders this install after any rotation still writing.
        let _serial = self.rotate_lock.lock().await;
        *self.write_state() = Some(Arc::new(keyring));
        Ok(())
    }

    /// Drops the key material and seals. In-flight operations finish with their snapshot.
    pub(crate) fn seal(&self) {
        *self.write_state() = None;
    }

    fn keyring(&self) -> Result<Arc<Keyring>, CryptoError> {
        self.read_state().clone().ok_or(CryptoError::Sealed)
    }

    fn read_state(&self) -> RwLockReadGuard<'_, Option<Arc<Keyring>>> {
        // A poisoned lock means a thread panicked while holding it; every critical section is
        // a single assignment or clone, so the value is still consistent.
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write_state(&self) -> RwLockWriteGuard<'_, Option<Arc<Keyring>>> {
        // See read_state.
        self.state.write().unwrap_or_else(|e| e.into_inner())
    }
}

impl fmt::Debug for Barrier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.read_state();
        f.debug_struct("Barrier")
            .field("storage", &self.storage.kind())
            .field("sealed", &state.is_none())
            .field("active_term", &state.as_ref().map(|k| k.active().term))
            .finish()
    }
}

fn encrypt(keyring: &Keyring, path: &str, plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
    let term = keyring.active();
    let raw = envelope::seal(&term.cipher, term.term, path, plaintext)?;
    term.count_encryption();
    Ok(raw)
}

fn status_of(k: &Keyring) -> KeyStatus {
    let t = k.active();
    KeyStatus {
        term: t.term,
        install_time: t.install_time,
        encryptions: t.encryptions(),
    }
}

/// The seal's bootstrap entries are written only by the seal: an engine overwriting
/// `core/keyring` would make every entry unreadable.
fn check_writable(path: &str) -> Result<(), CryptoError> {
    if path == ROOT_KEY_PATH || path == KEYRING_PATH || path == SEAL_CONFIG_PATH {
        return Err(CryptoError::ReservedPath(path.to_owned()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use shroud_core::MemoryStorage;
    use zeroize::Zeroizing;

    /// A keyring record with one term whose key is all 0xA5, under root key 0x5A.
    fn known_keyring() -> Keyring {
        let mut rec = vec![1u8, 0, 0, 0, 1, 0, 0, 0, 1];
        rec.extend_from_slice(&1u32.to_be_bytes());
        rec.extend_from_slice(&1_700_000_000u64.to_be_bytes());
        rec.extend_from_slice(&0u32.to_be_bytes());
        rec.extend_from_slice(&[0xA5; 32]);
        Keyring::decode(Zeroizing::new([0x5A; 32]), &rec).unwrap()
    }

    #[tokio::test]
    async fn debug_shows_no_term_or_root_key_bytes() {
        let b = Barrier::new(Arc::new(MemoryStorage::new()));
        *b.write_state() = Some(Arc::new(known_keyring()));
        b.put("logical/a", b"x").await.unwrap();
        let dbg = format!("{b:?} {b:#?} {:?}", b.keyring().unwrap());
        for needle in ["a5a5", "A5A5", "165", "5a5a", "5A5A", "90, 90"] {
            assert!(!dbg.contains(needle), "{needle} in {dbg}");
        }
        assert!(dbg.contains("active_term"), "{dbg}");
    }

    #[tokio::test]
    async fn seal_drops_the_keyring_snapshot() {
        let b = Barrier::new(Arc::new(MemoryStorage::new()));
        let k = Arc::new(known_keyring());
        *b.write_state() = Some(Arc::clone(&k));
        assert_eq!(Arc::strong_count(&k), 2);
        b.seal();
        // Only the test's handle is left: the barrier kept no copy of the key material.
        assert_eq!(Arc::strong_count(&k), 1);
    }
}
