//! The barrier's entry format: one AES-256-GCM envelope per storage entry.
//!
//! ```text
//! [version = 1 : u8][term : u32 BE][nonce : 12 bytes][ciphertext || tag : 16 bytes]
//! AAD = [version][term] || storage path (UTF-8 bytes)
//! ```
//!
//! The 5 header bytes and the path are authenticated, so moving a ciphertext to another path,
//! changing its term or version byte, or flipping any bit fails decryption. The header comes
//! first in the AAD and has a fixed length, so the concatenation is unambiguous.
//!
//! Term 0 is reserved for the two entries above the keyring (`core/root-key` under the unseal
//! key, `core/keyring` under the root key); keyring terms start at 1, so an entry of one kind can
//! never be read as the other.
//!
//! Nonces are 96 random bits from the OS RNG per encryption. NIST SP 800-38D bounds random
//! nonces to 2^32 encryptions per key; the barrier counts encryptions per term so the server can
//! rotate well before that (Vault rotates automatically at ~3.8e9).

use aes_gcm::aead::consts::U12;
use aes_gcm::{AeadInPlace, Aes256Gcm, KeyInit};
use shroud_core::SecretBytes;
use zeroize::Zeroizing;

use crate::error::CryptoError;

/// Format version byte of every envelope.
pub(crate) const VERSION: u8 = 1;
/// Version byte plus the big-endian term.
pub(crate) const HEADER_LEN: usize = 5;
/// AES-GCM nonce length.
pub(crate) const NONCE_LEN: usize = crate::nonce::NONCE_LEN;
/// AES-GCM tag length.
pub(crate) const TAG_LEN: usize = 16;
/// Bytes an envelope adds to its plaintext.
pub(crate) const OVERHEAD: usize = HEADER_LEN + NONCE_LEN + TAG_LEN;
/// Length of every AES-256 key in the hierarchy.
pub(crate) const KEY_LEN: usize = 32;
/// The term of the entries above the keyring (root key, keyring).
pub(crate) const BOOTSTRAP_TERM: u32 = 0;

/// Builds an AES-256-GCM cipher from a 32-byte key.
pub(crate) fn cipher(key: &[u8; KEY_LEN]) -> Aes256Gcm {
    // Convert by reference: `From<[u8; 32]>` would copy the key into an unzeroized
    // temporary. The length is fixed by the type, so there is no error path.
    Aes256Gcm::new(key.into())
}

fn aad(header: &[u8; HEADER_LEN], path: &str) -> Vec<u8> {
    let mut aad = Vec::with_capacity(HEADER_LEN + path.len());
    aad.extend_from_slice(header);
    aad.extend_from_slice(path.as_bytes());
    aad
}

fn header(term: u32) -> [u8; HEADER_LEN] {
    let t = term.to_be_bytes();
    [VERSION, t[0], t[1], t[2], t[3]]
}

/// Encrypts `plaintext` for storage at `path` under `cipher`, the key of `term`.
pub(crate) fn seal(
    cipher: &Aes256Gcm,
    term: u32,
    path: &str,
    plaintext: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    let header = header(term);
    let nonce = crate::nonce::nonce()?;

    // The plaintext is copied into the output buffer and encrypted in place; the buffer is
    // Zeroizing so that, if encryption fails, no plaintext copy is left in freed memory.
    let mut out = Zeroizing::new(Vec::with_capacity(OVERHEAD + plaintext.len()));
    out.extend_from_slice(&header);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(plaintext);
    let tag = cipher
        .encrypt_in_place_detached(
            &aes_gcm::Nonce::<U12>::from(nonce),
            &aad(&header, path),
            &mut out[HEADER_LEN + NONCE_LEN..],
        )
        // Only a message longer than GCM's 64 GiB limit fails here.
        .map_err(|_| CryptoError::DecryptionFailed)?;
    out.extend_from_slice(&tag);
    // Move the ciphertext out; the emptied Zeroizing wrapper has nothing left to wipe.
    Ok(std::mem::take(&mut *out))
}

/// The term in an envelope's header, after checking the version byte and minimum length.
pub(crate) fn term_of(raw: &[u8]) -> Result<u32, CryptoError> {
    if raw.len() < OVERHEAD || raw[0] != VERSION {
        return Err(CryptoError::DecryptionFailed);
    }
    Ok(u32::from_be_bytes([raw[1], raw[2], raw[3], raw[4]]))
}

/// Decrypts an envelope read from `path` with `cipher`. The caller picked `cipher` from
/// [`term_of`]; the term is authenticated as part of the AAD either way.
pub(crate) fn open(
    cipher: &Aes256Gcm,
    path: &str,
    raw: Vec<u8>,
) -> Result<SecretBytes, CryptoError> {
    // aes-gcm decrypts before comparing tags, so on failure the buffer holds unauthenticated
    // plaintext: keep it in a Zeroizing buffer from the start.
    let mut buf = Zeroizing::new(raw);
    term_of(&buf)?;
    let mut header = [0u8; HEADER_LEN];
    header.copy_from_slice(&buf[..HEADER_LEN]);
    let mut nonce = [0u8; NONCE_LEN];
    nonce.copy_from_slice(&buf[HEADER_LEN..HEADER_LEN + NONCE_LEN]);
    let tag_start = buf.len() - TAG_LEN;
    let mut tag = [0u8; TAG_LEN];
    tag.copy_from_slice(&buf[tag_start..]);

    cipher
        .decrypt_in_place_detached(
            &aes_gcm::Nonce::<U12>::from(nonce),
            &aad(&header, path),
            &mut buf[HEADER_LEN + NONCE_LEN..tag_start],
            &aes_gcm::Tag::from(tag),
        )
        .map_err(|_| CryptoError::DecryptionFailed)?;

    // Shift the plaintext to the front and hand the whole allocation (capacity included) to
    // SecretBytes, which zeroizes all of it on drop.
    let len = tag_start - (HEADER_LEN + NONCE_LEN);
    buf.copy_within(HEADER_LEN + NONCE_LEN..tag_start, 0);
    buf.truncate(len);
    Ok(SecretBytes::new(std::mem::take(&mut *buf)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(b: u8) -> Aes256Gcm {
        cipher(&[b; KEY_LEN])
    }

    #[test]
    fn round_trip_and_layout() {
        let c = key(7);
        let raw = seal(&c, 3, "logical/a", b"hello").unwrap();
        assert_eq!(raw.len(), OVERHEAD + 5);
        assert_eq!(raw[0], VERSION);
        assert_eq!(&raw[1..5], &[0, 0, 0, 3]);
        assert_eq!(term_of(&raw).unwrap(), 3);
        assert_eq!(open(&c, "logical/a", raw).unwrap().expose(), b"hello");
    }

    #[test]
    fn empty_plaintext_round_trips() {
        let c = key(1);
        let raw = seal(&c, 1, "p", b"").unwrap();
        assert_eq!(raw.len(), OVERHEAD);
        assert!(open(&c, "p", raw).unwrap().is_empty());
    }

    #[test]
    fn nonces_differ_between_encryptions() {
        let c = key(1);
        let a = seal(&c, 1, "p", b"same").unwrap();
        let b = seal(&c, 1, "p", b"same").unwrap();
        assert_ne!(
            a[HEADER_LEN..HEADER_LEN + NONCE_LEN],
            b[HEADER_LEN..HEADER_LEN + NONCE_LEN]
        );
        assert_ne!(a, b);
    }

    #[test]
    fn every_flipped_bit_fails() {
        let c = key(9);
        let raw = seal(&c, 1, "p", b"abc").unwrap();
        for i in 0..raw.len() {
            for bit in 0..8 {
                let mut t = raw.clone();
                t[i] ^= 1 << bit;
                assert!(
                    matches!(open(&c, "p", t), Err(CryptoError::DecryptionFailed)),
                    "flip of byte {i} bit {bit} was accepted"
                );
            }
        }
    }

    #[test]
    fn wrong_path_fails() {
        let c = key(9);
        let raw = seal(&c, 1, "a", b"abc").unwrap();
        assert!(matches!(
            open(&c, "b", raw),
            Err(CryptoError::DecryptionFailed)
        ));
    }

    #[test]
    fn wrong_key_fails() {
        let raw = seal(&key(1), 1, "a", b"abc").unwrap();
        assert!(matches!(
            open(&key(2), "a", raw),
            Err(CryptoError::DecryptionFailed)
        ));
    }

    #[test]
    fn truncated_and_empty_inputs_fail() {
        let c = key(1);
        let raw = seal(&c, 1, "a", b"abc").unwrap();
        for n in 0..raw.len() {
            assert!(matches!(
                open(&c, "a", raw[..n].to_vec()),
                Err(CryptoError::DecryptionFailed)
            ));
        }
    }

    #[test]
    fn unknown_version_fails() {
        let c = key(1);
        let mut raw = seal(&c, 1, "a", b"abc").unwrap();
        raw[0] = 2;
        assert!(matches!(term_of(&raw), Err(CryptoError::DecryptionFailed)));
        assert!(matches!(
            open(&c, "a", raw),
            Err(CryptoError::DecryptionFailed)
        ));
    }

    /// Known-answer check against the primitive: the envelope body is exactly
    /// AES-256-GCM(key, nonce, aad = header || path) as computed by aes-gcm's one-shot API, so
    /// the format can be re-implemented from the docs.
    #[test]
    fn body_is_plain_aes_gcm_with_documented_aad() {
        use aes_gcm::aead::{Aead, Payload};
        let k = [0x42u8; KEY_LEN];
        let c = cipher(&k);
        let raw = seal(&c, 0x0102_0304, "sys/x", b"payload").unwrap();
        let nonce = aes_gcm::Nonce::<U12>::clone_from_slice(&raw[5..17]);
        let mut aad = vec![1u8, 1, 2, 3, 4];
        aad.extend_from_slice(b"sys/x");
        let pt = Aes256Gcm::new(&k.into())
            .decrypt(
                &nonce,
                Payload {
                    msg: &raw[17..],
                    aad: &aad,
                },
            )
            .unwrap();
        assert_eq!(pt, b"payload");
    }
}
