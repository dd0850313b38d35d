//! The keyring: numbered key terms plus the root key that encrypts it.
//!
//! Stored at `core/keyring` as an envelope (term 0) under the root key. The plaintext is a
//! fixed-layout binary record rather than JSON so every copy of the key bytes sits in a buffer
//! this crate zeroizes:
//!
//! ```text
//! [format = 1 : u8][active term : u32 BE][count : u32 BE]
//! count × [term : u32 BE][install time, seconds since the Unix epoch : u64 BE]
//!         [install time, nanoseconds : u32 BE][key : 32 bytes]
//! ```
//!
//! Invariants checked on load: terms are nonzero and strictly ascending, the active term is the
//! highest, the record length is exact.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aes_gcm::Aes256Gcm;
use zeroize::Zeroizing;

use crate::envelope::{self, KEY_LEN};
use crate::error::CryptoError;

const FORMAT: u8 = 1;
const FIXED_LEN: usize = 1 + 4 + 4;
const TERM_LEN: usize = 4 + 8 + 4 + KEY_LEN;

/// 32 bytes from the OS RNG.
pub(crate) fn random_key() -> Result<Zeroizing<[u8; KEY_LEN]>, CryptoError> {
    let mut k = Zeroizing::new([0u8; KEY_LEN]);
    getrandom::fill(k.as_mut_slice()).map_err(CryptoError::Rng)?;
    Ok(k)
}

/// One key term: its key, the precomputed cipher and an encryption counter.
pub(crate) struct TermKey {
    pub(crate) term: u32,
    key: Zeroizing<[u8; KEY_LEN]>,
    /// Precomputed AES key schedule and GHASH key: the read path only looks this up. The key
    /// schedule is wiped on drop (`aes/zeroize`); the GHASH key is not on x86_64 (polyval 0.6's
    /// autodetect backend has no `Drop`; see `docs/key-hierarchy.md`).
    pub(crate) cipher: Aes256Gcm,
    pub(crate) install_time: SystemTime,
    /// Encryptions under this term since unseal (not persisted).
    encryptions: AtomicU64,
}

impl TermKey {
    fn new(term: u32, key: Zeroizing<[u8; KEY_LEN]>, install_time: SystemTime) -> TermKey {
        let cipher = envelope::cipher(&key);
        TermKey {
            term,
            key,
            cipher,
            install_time,
            encryptions: AtomicU64::new(0),
        }
    }

    /// Counts one encryption; returns nothing because the count is advisory.
    pub(crate) fn count_encryption(&self) {
        self.encryptions.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn encryptions(&self) -> u64 {
        self.encryptions.load(Ordering::Relaxed)
    }
}

impl fmt::Debug for TermKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TermKey")
            .field("term", &self.term)
            .field("install_time", &self.install_time)
            .field("key", &"[REDACTED]")
            .finish()
    }
}

/// The unsealed key material: root key plus every term.
pub(crate) struct Keyring {
    /// Shared with the keyrings rotation derives from this one, so it is never copied.
    root_key: Arc<Zeroizing<[u8; KEY_LEN]>>,
    /// Terms are shared between successive keyrings (rotation copies the map), so encryption
    /// counters keep counting across a rotation for writers holding the old snapshot.
    terms: BTreeMap<u32, Arc<TermKey>>,
    active: u32,
}

impl Keyring {
    /// A fresh keyring with term 1, for `sys/init`.
    pub(crate) fn new_initial(root_key: Zeroizing<[u8; KEY_LEN]>) -> Result<Keyring, CryptoError> {
        let mut terms = BTreeMap::new();
        terms.insert(
            1,
            Arc::new(TermKey::new(1, random_key()?, SystemTime::now())),
        );
        Ok(Keyring {
            root_key: Arc::new(root_key),
            terms,
            active: 1,
        })
    }

    /// A copy of this keyring with one more term, which becomes active.
    pub(crate) fn rotated(&self) -> Result<Keyring, CryptoError> {
        let next = self
            .active
            .checked_add(1)
            .ok_or(CryptoError::TermsExhausted)?;
        let mut terms = self.terms.clone();
        terms.insert(
            next,
            Arc::new(TermKey::new(next, random_key()?, SystemTime::now())),
        );
        Ok(Keyring {
            root_key: Arc::clone(&self.root_key),
            terms,
            active: next,
        })
    }

    /// The term new entries are encrypted with.
    pub(crate) fn active(&self) -> &Arc<TermKey> {
        // Invariant: every constructor inserts `active` into `terms` and nothing removes terms,
        // so the lookup cannot miss; `decode` checks it for stored keyrings.
        &self.terms[&self.active]
    }

    /// The term `term`, if this keyring has it.
    pub(crate) fn term(&self, term: u32) -> Option<&Arc<TermKey>> {
        self.terms.get(&term)
    }

    /// Cipher for the keyring entry itself.
    pub(crate) fn root_cipher(&self) -> Aes256Gcm {
        envelope::cipher(&self.root_key)
    }

    /// The root key's bytes, for writing `core/root-key` at init.
    pub(crate) fn root_key(&self) -> &[u8; KEY_LEN] {
        &self.root_key
    }

    /// The binary record described in the module docs.
    pub(crate) fn encode(&self) -> Zeroizing<Vec<u8>> {
        let mut out = Zeroizing::new(Vec::with_capacity(FIXED_LEN + TERM_LEN * self.terms.len()));
        out.push(FORMAT);
        out.extend_from_slice(&self.active.to_be_bytes());
        // The number of terms is bounded by the u32 term numbers they are keyed by.
        out.extend_from_slice(&(self.terms.len() as u32).to_be_bytes());
        for t in self.terms.values() {
            let since = t
                .install_time
                .duration_since(UNIX_EPOCH)
                .unwrap_or(Duration::ZERO);
            out.extend_from_slice(&t.term.to_be_bytes());
            out.extend_from_slice(&since.as_secs().to_be_bytes());
            out.extend_from_slice(&since.subsec_nanos().to_be_bytes());
            out.extend_from_slice(t.key.as_slice());
        }
        out
    }

    /// Parses the record written by [`Keyring::encode`].
    pub(crate) fn decode(
        root_key: Zeroizing<[u8; KEY_LEN]>,
        bytes: &[u8],
    ) -> Result<Keyring, CryptoError> {
        const CORRUPT: CryptoError = CryptoError::CorruptState("keyring does not parse");
        if bytes.len() < FIXED_LEN || bytes[0] != FORMAT {
            return Err(CORRUPT);
        }
        let active = be_u32(&bytes[1..5]);
        let count = be_u32(&bytes[5..9]) as usize;
        // Check the exact length before allocating anything sized by `count`.
        if count == 0
            || !(bytes.len() - FIXED_LEN).is_multiple_of(TERM_LEN)
            || (bytes.len() - FIXED_LEN) / TERM_LEN != count
        {
            return Err(CORRUPT);
        }
        let mut terms = BTreeMap::new();
        let mut prev = 0u32;
        for rec in bytes[FIXED_LEN..].chunks_exact(TERM_LEN) {
            let term = be_u32(&rec[0..4]);
            if term <= prev {
                return Err(CORRUPT);
            }
            prev = term;
            let secs = u64::from_be_bytes(rec[4..12].try_into().map_err(|_| CORRUPT)?);
            let nanos = be_u32(&rec[12..16]);
            if nanos >= 1_000_000_000 {
                return Err(CORRUPT);
            }
            let install_time = UNIX_EPOCH
                .checked_add(Duration::new(secs, nanos))
                .ok_or(CORRUPT)?;
            let mut key = Zeroizing::new([0u8; KEY_LEN]);
            key.copy_from_slice(&rec[16..16 + KEY_LEN]);
            terms.insert(term, Arc::new(TermKey::new(term, key, install_time)));
        }
        if active != prev {
            return Err(CORRUPT);
        }
        Ok(Keyring {
            root_key: Arc::new(root_key),
            terms,
            active,
        })
    }
}

fn be_u32(b: &[u8]) -> u32 {
    // Callers pass exactly four bytes (fixed offsets into length-checked records).
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[..4]);
    u32::from_be_bytes(a)
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring")
            .field("active_term", &self.active)
            .field("terms", &self.terms.keys().collect::<Vec<_>>())
            .field("root_key", &"[REDACTED]")
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root() -> Zeroizing<[u8; KEY_LEN]> {
        Zeroizing::new([0xAB; KEY_LEN])
    }

    #[test]
    fn encode_decode_round_trip_after_rotations() {
        let k = Keyring::new_initial(root())
            .unwrap()
            .rotated()
            .unwrap()
            .rotated()
            .unwrap();
        assert_eq!(k.active().term, 3);
        let bytes = k.encode();
        let back = Keyring::decode(root(), &bytes).unwrap();
        assert_eq!(back.active().term, 3);
        for t in 1..=3 {
            let (a, b) = (k.term(t).unwrap(), back.term(t).unwrap());
            assert_eq!(a.key.as_slice(), b.key.as_slice());
            assert_eq!(
                a.install_time.duration_since(UNIX_EPOCH).unwrap(),
                b.install_time.duration_since(UNIX_EPOCH).unwrap()
            );
        }
    }

    #[test]
    fn rotated_keys_differ() {
        let k1 = Keyring::new_initial(root()).unwrap();
        let k2 = k1.rotated().unwrap();
        assert_ne!(
            k2.term(1).unwrap().key.as_slice(),
            k2.term(2).unwrap().key.as_slice()
        );
        // The old term is shared, not re-generated.
        assert!(Arc::ptr_eq(k1.term(1).unwrap(), k2.term(1).unwrap()));
    }

    #[test]
    fn malformed_records_are_corrupt_not_panics() {
        let good = Keyring::new_initial(root())
            .unwrap()
            .rotated()
            .unwrap()
            .encode();
        // Every truncation.
        for n in 0..good.len() {
            assert!(Keyring::decode(root(), &good[..n]).is_err(), "len {n}");
        }
        // A count that claims more terms than present (and a huge one).
        for count in [3u32, u32::MAX] {
            let mut b = good.to_vec();
            b[5..9].copy_from_slice(&count.to_be_bytes());
            assert!(Keyring::decode(root(), &b).is_err());
        }
        // Active term not the highest.
        let mut b = good.to_vec();
        b[1..5].copy_from_slice(&1u32.to_be_bytes());
        assert!(Keyring::decode(root(), &b).is_err());
        // Terms out of order (second term set to 1).
        let mut b = good.to_vec();
        b[FIXED_LEN + TERM_LEN..FIXED_LEN + TERM_LEN + 4].copy_from_slice(&1u32.to_be_bytes());
        assert!(Keyring::decode(root(), &b).is_err());
        // Term 0 is reserved.
        let mut b = good.to_vec();
        b[FIXED_LEN..FIXED_LEN + 4].copy_from_slice(&0u32.to_be_bytes());
        assert!(Keyring::decode(root(), &b).is_err());
        // Bad format byte.
        let mut b = good.to_vec();
        b[0] = 9;
        assert!(Keyring::decode(root(), &b).is_err());
    }

    #[test]
    fn debug_is_redacted() {
        let k = Keyring::new_initial(root()).unwrap();
        let dbg = format!("{k:?} {:?}", k.active());
        assert!(dbg.contains("REDACTED"));
        assert!(!dbg.to_lowercase().contains("abab"), "{dbg}");
        assert!(!dbg.contains("171"), "{dbg}");
        let key_hex = hex::encode(k.active().key.as_slice());
        assert!(!dbg.contains(&key_hex));
    }

    #[test]
    fn terms_exhausted_is_an_error() {
        let mut k = Keyring::new_initial(root()).unwrap();
        k.active = u32::MAX;
        let t = k.terms.remove(&1).unwrap();
        k.terms.insert(u32::MAX, t);
        assert!(matches!(k.rotated(), Err(CryptoError::TermsExhausted)));
    }
}
