//! How a secret's bytes are stored in a KV v2 entry, so that any content round-trips exactly.
//!
//! Valid UTF-8 is stored as `{"value": "<text>"}`, which any Vault client reads naturally.
//! Anything else (binary keys, keystores) is stored as `{"value": "<base64>", "encoding":
//! "base64"}`: JSON strings cannot carry invalid UTF-8. Entries written by other clients with
//! several fields, or without `value`, are printed as their JSON object.

use anyhow::{bail, Context};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use shroud_client::KvData;
use shroud_core::{SecretBytes, SecretString};
use zeroize::Zeroizing;

/// The field holding the content.
pub const VALUE_FIELD: &str = "value";
/// The field naming the encoding of `value`, when not plain text.
pub const ENCODING_FIELD: &str = "encoding";
/// The only encoding written besides plain text.
pub const BASE64: &str = "base64";

/// Largest secret accepted, in bytes. Docker caps secrets at 500 KiB; 1 MiB leaves room while
/// keeping the JSON body (at worst 6x for escaped control characters) far below the server's
/// 32 MiB request limit.
pub const MAX_SECRET_BYTES: usize = 1024 * 1024;

/// Builds the KV data for `content`.
pub fn encode(content: &SecretBytes) -> KvData {
    let mut data = KvData::new();
    match std::str::from_utf8(content.expose()) {
        Ok(text) => data.insert_str(VALUE_FIELD, SecretString::from(text)),
        Err(_) => {
            data.insert_str(
                VALUE_FIELD,
                SecretString::new(STANDARD.encode(content.expose())),
            );
            data.insert_str(ENCODING_FIELD, SecretString::from(BASE64));
        }
    }
    data
}

/// Recovers the exact bytes from KV data written by [`encode`]; other shapes are returned as
/// their JSON text (what `secret get` prints for them).
pub fn decode(data: &KvData) -> anyhow::Result<SecretBytes> {
    let Some(value) = data.get_str(VALUE_FIELD) else {
        return Ok(SecretBytes::from_slice(data.to_json()?.expose().as_bytes()));
    };
    match data.get_str(ENCODING_FIELD).map(SecretString::expose) {
        None if data.get(ENCODING_FIELD).is_none() && data.len() == 1 => {
            Ok(SecretBytes::from_slice(value.expose().as_bytes()))
        }
        // `value` plus unrelated fields: written by another client; show all of it.
        None if data.get(ENCODING_FIELD).is_none() => {
            Ok(SecretBytes::from_slice(data.to_json()?.expose().as_bytes()))
        }
        Some(BASE64) => {
            let bytes = Zeroizing::new(
                STANDARD
                    .decode(value.expose())
                    .context("the stored base64 value is corrupt")?,
            );
            Ok(SecretBytes::from_slice(&bytes))
        }
        Some(other) => bail!(
            "unknown encoding {:?} in the stored secret",
            other.chars().take(32).collect::<String>()
        ),
        None => bail!("the stored secret's encoding field is not a string"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(bytes: &[u8]) -> (KvData, Vec<u8>) {
        let data = encode(&SecretBytes::from_slice(bytes));
        // Through JSON, as it travels to and from the server.
        let json = serde_json::to_string(&data).unwrap();
        let back: KvData = serde_json::from_str(&json).unwrap();
        let decoded = decode(&back).unwrap();
        (data, decoded.expose().to_vec())
    }

    #[test]
    fn utf8_text_is_stored_as_plain_value() {
        let (data, out) = round_trip("pässwörd\nline 2\n".as_bytes());
        assert_eq!(out, "pässwörd\nline 2\n".as_bytes());
        assert!(data.get(ENCODING_FIELD).is_none());
        assert_eq!(
            data.get_str(VALUE_FIELD).unwrap().expose(),
            "pässwörd\nline 2\n"
        );
    }

    #[test]
    fn binary_content_round_trips_byte_exactly() {
        let bytes: Vec<u8> = vec![0x00, 0xff, 0xfe, b'a', 0x00, 0xc3, 0x28, 0x80, b'\n'];
        let (data, out) = round_trip(&bytes);
        assert_eq!(out, bytes);
        assert_eq!(data.get_str(ENCODING_FIELD).unwrap().expose(), BASE64);
    }

    #[test]
    fn every_byte_value_round_trips() {
        let bytes: Vec<u8> = (0..=255u8).cycle().take(4096).collect();
        assert_eq!(round_trip(&bytes).1, bytes);
    }

    #[test]
    fn text_with_nul_is_valid_utf8_and_round_trips() {
        let (data, out) = round_trip(b"a\0b");
        assert_eq!(out, b"a\0b");
        assert!(data.get(ENCODING_FIELD).is_none());
    }

    #[test]
    fn empty_content_round_trips() {
        assert_eq!(round_trip(b"").1, b"");
    }

    #[test]
    fn corrupt_base64_is_an_error() {
        let data: KvData =
            serde_json::from_str(r#"{"value":"!!!not base64","encoding":"base64"}"#).unwrap();
        assert!(decode(&data).is_err());
    }

    #[test]
    fn unknown_encoding_is_an_error() {
        let data: KvData = serde_json::from_str(r#"{"value":"x","encoding":"rot13"}"#).unwrap();
        let err = decode(&data).unwrap_err().to_string();
        assert!(err.contains("rot13"), "{err}");
    }

    #[test]
    fn foreign_entries_print_as_json() {
        let data: KvData = serde_json::from_str(r#"{"user":"u","password":"p"}"#).unwrap();
        let out = decode(&data).unwrap();
        let v: serde_json::Value = serde_json::from_slice(out.expose()).unwrap();
        assert_eq!(v, serde_json::json!({"user":"u","password":"p"}));
    }
}
