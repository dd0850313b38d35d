//! The per-device HMAC key and the `hmac-sha256:<hex>` values it produces.

use crate::error::AuditError;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use shroud_core::SecretBytes;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

/// Shortest salt accepted, in bytes. The server generates 32 random bytes per device.
pub const MIN_SALT_LEN: usize = 16;

const PREFIX: &[u8] = b"hmac-sha256:";
/// `"hmac-sha256:` plus 64 hex digits and the closing quote.
const HASHED_LEN: usize = 1 + PREFIX.len() + 64 + 1;

/// A pre-keyed HMAC-SHA256 state. Keying (two SHA-256 blocks of padding) happens once; each
/// value then costs one clone of the state and the hash of the value itself, which matters
/// because every string of every request and response is hashed on the hot path.
///
/// The keyed state is derived from the salt, so it is secret: `Debug` is redacted.
#[derive(Clone)]
pub(crate) struct Salt {
    mac: Hmac<Sha256>,
    /// Unique per salt created in this process (clones share it): tells which salt an
    /// [`crate::AuditMemo`] was filled under.
    id: u64,
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

impl Salt {
    pub(crate) fn new(salt: &SecretBytes) -> Result<Salt, AuditError> {
        if salt.len() < MIN_SALT_LEN {
            return Err(AuditError::SaltTooShort { min: MIN_SALT_LEN });
        }
        // HMAC accepts keys of any length, so this cannot fail; map it anyway rather than
        // unwrap.
        let mac = Hmac::<Sha256>::new_from_slice(salt.expose())
            .map_err(|_| AuditError::SaltTooShort { min: MIN_SALT_LEN })?;
        Ok(Salt {
            mac,
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
        })
    }

    /// This salt's identity within the process.
    pub(crate) fn id(&self) -> u64 {
        self.id
    }

    /// `hmac-sha256:<hex>` of `input`, in a stack buffer.
    pub(crate) fn hash(&self, input: &str) -> Hashed {
        let mut mac = self.mac.clone();
        mac.update(input.as_bytes());
        let tag = mac.finalize().into_bytes();
        let mut out = [b'"'; HASHED_LEN];
        out[1..=PREFIX.len()].copy_from_slice(PREFIX);
        // The output slice is exactly twice the 32-byte tag, so this cannot fail.
        let _ = hex::encode_to_slice(tag, &mut out[1 + PREFIX.len()..HASHED_LEN - 1]);
        Hashed(out)
    }
}

impl fmt::Debug for Salt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Salt([REDACTED])")
    }
}

/// One `hmac-sha256:<hex>` value, kept between JSON quotes.
#[derive(Clone)]
pub(crate) struct Hashed([u8; HASHED_LEN]);

impl Hashed {
    pub(crate) fn as_str(&self) -> &str {
        // Invariant: the buffer holds an ASCII prefix and ASCII hex digits.
        std::str::from_utf8(&self.0[1..HASHED_LEN - 1]).unwrap_or("hmac-sha256:")
    }

    /// The value as a JSON string (with its quotes; nothing in it needs escaping).
    pub(crate) fn quoted(&self) -> &[u8] {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_answer_rfc4231_case_1() {
        let salt = Salt::new(&SecretBytes::from_slice(&[0x0b; 20])).unwrap();
        assert_eq!(
            salt.hash("Hi There").as_str(),
            "hmac-sha256:b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"
        );
    }

    #[test]
    fn short_salt_is_rejected() {
        assert!(matches!(
            Salt::new(&SecretBytes::from_slice(b"short")),
            Err(AuditError::SaltTooShort { .. })
        ));
    }

    #[test]
    fn debug_is_redacted() {
        let salt = Salt::new(&SecretBytes::from_slice(b"0123456789abcdef")).unwrap();
        assert_eq!(format!("{salt:?}"), "Salt([REDACTED])");
    }
}
