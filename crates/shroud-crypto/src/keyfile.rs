//! Key files of the static seal.
//!
//! Written as 64 lowercase hex characters and a newline, mode 0600, atomically
//! ([`shroud_core::secret_file::write_atomic`]). Read back as hex or standard base64 (padded or
//! not), surrounding whitespace ignored. A file that group or other may access is refused, as ssh
//! refuses such private keys: a key that others could have read is a key that may have leaked.

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use base64::Engine as _;
use shroud_core::SecretBytes;
use zeroize::Zeroizing;

use crate::error::CryptoError;
use crate::seal::UNSEAL_KEY_LEN;

/// Reading stops here: a key file is 65 bytes; anything far larger is the wrong file.
const MAX_KEY_FILE_LEN: u64 = 1024;

/// A fresh 32-byte unseal key from the OS RNG.
pub fn generate_unseal_key() -> Result<SecretBytes, CryptoError> {
    let mut k = Zeroizing::new(vec![0u8; UNSEAL_KEY_LEN]);
    getrandom::fill(&mut k).map_err(CryptoError::Rng)?;
    Ok(SecretBytes::new(std::mem::take(&mut *k)))
}

/// Writes `key` (32 bytes) to `path` as hex plus a newline, mode 0600, atomically.
pub fn write_key_file(path: &Path, key: &SecretBytes) -> Result<(), CryptoError> {
    if key.len() != UNSEAL_KEY_LEN {
        return Err(CryptoError::InvalidKey);
    }
    let mut text = Zeroizing::new(vec![0u8; 2 * UNSEAL_KEY_LEN + 1]);
    // The buffer is exactly twice the key length, which is all encode_to_slice needs.
    hex::encode_to_slice(key.expose(), &mut text[..2 * UNSEAL_KEY_LEN]).map_err(|_| {
        CryptoError::KeyFileInvalid {
            path: path.to_owned(),
            reason: "key could not be encoded",
        }
    })?;
    text[2 * UNSEAL_KEY_LEN] = b'\n';
    shroud_core::secret_file::write_atomic(path, &text, 0o600).map_err(|source| {
        CryptoError::KeyFileIo {
            path: path.to_owned(),
            source,
        }
    })
}

/// Reads a 32-byte key written by [`write_key_file`] (or by hand, as hex or base64).
///
/// Refuses a file that is not a regular file, that group or other can access, that is longer
/// than 1 KiB, or whose content is not exactly 32 bytes once decoded.
pub fn read_key_file(path: &Path) -> Result<SecretBytes, CryptoError> {
    let io = |source| CryptoError::KeyFileIo {
        path: path.to_owned(),
        source,
    };
    let invalid = |reason| CryptoError::KeyFileInvalid {
        path: path.to_owned(),
        reason,
    };
    let file = File::open(path).map_err(io)?;
    // Check the opened file, not the path, so a swap between check and read cannot matter.
    let meta = file.metadata().map_err(io)?;
    if !meta.is_file() {
        return Err(invalid("not a regular file"));
    }
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(CryptoError::KeyFilePermissions {
            path: path.to_owned(),
            mode,
        });
    }

    let mut content = Zeroizing::new(Vec::with_capacity(128));
    file.take(MAX_KEY_FILE_LEN + 1)
        .read_to_end(&mut content)
        .map_err(io)?;
    if content.len() as u64 > MAX_KEY_FILE_LEN {
        return Err(invalid("file is too large to be a key"));
    }
    decode_key(content.trim_ascii()).ok_or(invalid(
        "content is not a 32-byte key in hex (64 characters) or base64 (44 characters)",
    ))
}

/// Hex if it is 64 characters, else base64; `None` unless the result is 32 bytes.
fn decode_key(text: &[u8]) -> Option<SecretBytes> {
    let mut out = Zeroizing::new(vec![0u8; UNSEAL_KEY_LEN]);
    if text.len() == 2 * UNSEAL_KEY_LEN {
        hex::decode_to_slice(text, &mut out[..]).ok()?;
        return Some(SecretBytes::new(std::mem::take(&mut *out)));
    }
    // Room for any over-long input to be detected rather than silently truncated.
    let mut buf = Zeroizing::new(vec![0u8; UNSEAL_KEY_LEN + 3]);
    let n = base64::engine::general_purpose::STANDARD_PAD_INDIFFERENT
        .decode_slice(text, &mut buf[..])
        .ok()?;
    if n != UNSEAL_KEY_LEN {
        return None;
    }
    out.copy_from_slice(&buf[..UNSEAL_KEY_LEN]);
    Some(SecretBytes::new(std::mem::take(&mut *out)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_accepts_hex_and_base64() {
        let key = [0x11u8; 32];
        let hex_text = hex::encode(key);
        assert_eq!(decode_key(hex_text.as_bytes()).unwrap().expose(), &key);
        assert_eq!(
            decode_key(hex_text.to_uppercase().as_bytes())
                .unwrap()
                .expose(),
            &key
        );
        let b64 = base64::engine::general_purpose::STANDARD.encode(key);
        assert_eq!(decode_key(b64.as_bytes()).unwrap().expose(), &key);
        let b64_np = base64::engine::general_purpose::STANDARD_NO_PAD.encode(key);
        assert_eq!(decode_key(b64_np.as_bytes()).unwrap().expose(), &key);
    }

    #[test]
    fn decode_refuses_other_lengths() {
        for n in [0usize, 1, 16, 31, 33, 48, 64] {
            let key = vec![0x22u8; n];
            let b64 = base64::engine::general_purpose::STANDARD.encode(&key);
            assert!(decode_key(b64.as_bytes()).is_none(), "base64 of {n} bytes");
            if n != 32 {
                assert!(
                    decode_key(hex::encode(&key).as_bytes()).is_none(),
                    "hex of {n} bytes"
                );
            }
        }
        assert!(decode_key(b"not a key at all").is_none());
        assert!(decode_key(&[b'z'; 64]).is_none());
    }
}
