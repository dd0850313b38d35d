//! Wrapper types for secret material.
//!
//! Invariant: every byte of key material, token or secret value that lives longer than one
//! expression sits in one of these types. They zeroize on drop, print `[REDACTED]` in `Debug`,
//! and have no `Display`: getting at the bytes is always an explicit, greppable `expose()`.

use std::fmt;
use zeroize::{Zeroize, Zeroizing};

/// Secret bytes (keys, plaintext values). Zeroized on drop; `Debug` is redacted.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct SecretBytes(Zeroizing<Vec<u8>>);

impl SecretBytes {
    /// Takes ownership of `bytes`.
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(Zeroizing::new(bytes))
    }

    /// Copies `bytes` into a new secret.
    pub fn from_slice(bytes: &[u8]) -> Self {
        Self(Zeroizing::new(bytes.to_vec()))
    }

    /// The secret bytes. Every call site is a place where the secret leaves its wrapper.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// Number of bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True if there are no bytes.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<Vec<u8>> for SecretBytes {
    fn from(v: Vec<u8>) -> Self {
        Self::new(v)
    }
}

impl fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretBytes([REDACTED])")
    }
}

/// A secret UTF-8 string (tokens, passwords). Zeroized on drop; `Debug` is redacted.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct SecretString(Zeroizing<String>);

impl SecretString {
    /// Takes ownership of `s`.
    pub fn new(s: String) -> Self {
        Self(Zeroizing::new(s))
    }

    /// The secret string. Every call site is a place where the secret leaves its wrapper.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// True if the string is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<String> for SecretString {
    fn from(s: String) -> Self {
        Self::new(s)
    }
}

impl From<&str> for SecretString {
    fn from(s: &str) -> Self {
        Self::new(s.to_owned())
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretString([REDACTED])")
    }
}

impl<'de> serde::Deserialize<'de> for SecretString {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let mut s = String::deserialize(d)?;
        let out = SecretString::new(s.clone());
        s.zeroize();
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_bytes_debug_is_redacted() {
        let s = SecretBytes::from_slice(b"hunter2-bytes");
        let dbg = format!("{s:?} {s:#?}");
        assert!(!dbg.contains("hunter2"), "{dbg}");
        assert!(!dbg.contains("104"), "byte values leaked: {dbg}");
        assert!(dbg.contains("REDACTED"));
    }

    #[test]
    fn secret_string_debug_is_redacted() {
        let s = SecretString::from("hvs.topsecret");
        let dbg = format!("{s:?} {:?}", Some(&s));
        assert!(!dbg.contains("topsecret"), "{dbg}");
        assert!(dbg.contains("REDACTED"));
    }

    #[test]
    fn secret_string_deserializes() {
        let s: SecretString = serde_json_like("\"abc\"");
        assert_eq!(s.expose(), "abc");
    }

    fn serde_json_like(_: &str) -> SecretString {
        // serde_json is not a dependency of core; exercise Deserialize through a
        // trivial deserializer.
        use serde::de::value::{Error, StrDeserializer};
        use serde::de::IntoDeserializer;
        let d: StrDeserializer<'_, Error> = "abc".into_deserializer();
        <SecretString as serde::Deserialize>::deserialize(d).unwrap()
    }
}
