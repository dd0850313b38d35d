//! The transit engine: encryption as a service, wire-compatible with Vault's `transit` secrets
//! engine (what hvac's `transit.Transit`, the Vault CLI and sops' `hc_vault_transit` send).
//!
//! Start with [`TransitEngine`]: the mount table builds one per `transit` mount.
//!
//! Storage layout under the mount's barrier prefix `logical/<mount uuid>/`:
//! - `policy/<name>`: one JSON entry per named key (Vault calls it a key policy) holding its
//!   configuration and every live version's key material, base64-encoded. The barrier encrypts
//!   the entry, so key material is in clear only in this process's memory, inside zeroizing,
//!   Debug-redacted wrappers. No endpoint returns it (export, backup and import answer 400).
//!
//! Concurrency and caching: every write to a key (create, config, rotate, trim, delete, the
//! upsert done by encrypt, lazy auto-rotation) holds that key's striped lock across its
//! read-modify-write, so two concurrent rotations cannot both mint version N+1. Parsed keys are
//! cached in memory because encrypt is the hot path; a cache miss is filled under the same lock
//! and every write replaces the cached entry while holding it, so a reader can never put a stale
//! key back into the cache. The cache lives as long as the engine, which the core drops on seal.
//!
//! Derived keys (`derived: true`) use HKDF-SHA256 (RFC 5869) with no salt, the version's key as
//! input keying material and the request's decoded `context` as `info` — Vault's `hkdf_sha256`
//! KDF. Ciphertexts are `vault:v<version>:<std base64(nonce(12) ‖ ciphertext ‖ tag(16))>`.

use crate::api::{
    bool_field, duration_field, timestamp, uint_field, ApiError, ApiResult, Operation, Reply,
    Request,
};
use aes_gcm::aead::generic_array::GenericArray;
use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::{Aes128Gcm, Aes256Gcm};
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, URL_SAFE_NO_PAD};
use base64::{alphabet, Engine as _};
use chacha20poly1305::ChaCha20Poly1305;
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use ring::signature::{Ed25519KeyPair, KeyPair, UnparsedPublicKey, ED25519};
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha224, Sha256, Sha384, Sha512};
use shroud_core::SecretBytes;
use shroud_crypto::Barrier;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, LazyLock, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use zeroize::Zeroizing;

/// Striped per-key write locks (the same scheme as the KV engine).
const LOCK_STRIPES: usize = 256;
/// Longest key name accepted.
const MAX_NAME_LEN: usize = 256;
/// Most items in one `batch_input`.
const MAX_BATCH: usize = 10_000;
/// Largest decoded plaintext (or HMAC/sign/hash input) per item. The HTTP layer already caps
/// the whole body at 32 MiB; this keeps one item from using all of it twice over.
const MAX_INPUT: usize = 16 * 1024 * 1024;
/// Most versions one key keeps at once. All live versions sit in one storage entry, so the
/// entry (and every cache fill) grows with this; `trim` frees room.
const MAX_LIVE_VERSIONS: usize = 4096;
/// Largest `random` request, as Vault (`helper/random`: 128 KiB).
const MAX_RANDOM_BYTES: u64 = 128 * 1024;
/// Keys kept parsed in memory; past this the cache is emptied and refills on demand.
const MAX_CACHED_KEYS: usize = 4096;
/// Vault's floor for `auto_rotate_period` (other than 0 = off).
const MIN_AUTO_ROTATE_SECS: u64 = 3600;
const NONCE_LEN: usize = shroud_crypto::NONCE_LEN;
const TAG_LEN: usize = 16;
const HMAC_KEY_LEN: usize = 32;

/// Vault's `keysutil.ErrTooOld`, parsed by clients that handle re-encryption.
const ERR_TOO_OLD: &str = "ciphertext or signature version is disallowed by policy (too old)";
/// Vault's message for a derived key used without `context`.
const ERR_MISSING_CONTEXT: &str = "missing 'context' for key derivation; the key was created \
using a derived key, which means additional, per-request information must be included in order \
to perform operations with the key";
/// Go's `crypto/cipher` AEAD open failure, which Vault passes through unchanged.
const ERR_AUTH_FAILED: &str = "cipher: message authentication failed";

/// Base64 as Go's `base64.StdEncoding` decodes it: padded, and (unlike this crate's default)
/// tolerant of non-zero trailing bits, so everything Vault accepts is accepted here.
const B64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_allow_trailing_bits(true),
);

static EMPTY_BODY: LazyLock<Map<String, Value>> = LazyLock::new(Map::new);

// ---------------------------------------------------------------------------------------------
// Errors

/// Why one transit operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
enum TransitError {
    /// The request is wrong. The message is Vault's (clients match on some of them) and never
    /// contains secret material; it becomes a 400.
    #[error("{0}")]
    User(String),
    /// Something failed on the server. The detail goes to the log only; the client sees
    /// "internal error" and a 500.
    #[error("internal error")]
    Internal(String),
}

fn user(msg: impl Into<String>) -> TransitError {
    TransitError::User(msg.into())
}

fn internal(detail: impl fmt::Display) -> TransitError {
    TransitError::Internal(detail.to_string())
}

impl From<TransitError> for ApiError {
    fn from(e: TransitError) -> Self {
        match e {
            TransitError::User(m) => ApiError::bad_request(m),
            TransitError::Internal(d) => ApiError::internal(&d),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Key types and key material

/// The key types this engine creates. Vault's ECDSA, RSA, HMAC and managed types are refused
/// at creation with a 400.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
enum KeyType {
    /// AES-128-GCM with a 96-bit random nonce.
    #[serde(rename = "aes128-gcm96")]
    Aes128Gcm96,
    /// AES-256-GCM with a 96-bit random nonce (Vault's default).
    #[serde(rename = "aes256-gcm96")]
    Aes256Gcm96,
    /// ChaCha20-Poly1305 with a 96-bit random nonce.
    #[serde(rename = "chacha20-poly1305")]
    ChaCha20Poly1305,
    /// Ed25519 signatures; the stored key is the 32-byte seed.
    #[serde(rename = "ed25519")]
    Ed25519,
}

impl KeyType {
    fn parse(s: &str) -> Option<KeyType> {
        match s {
            "aes128-gcm96" => Some(KeyType::Aes128Gcm96),
            "aes256-gcm96" => Some(KeyType::Aes256Gcm96),
            "chacha20-poly1305" => Some(KeyType::ChaCha20Poly1305),
            "ed25519" => Some(KeyType::Ed25519),
            _ => None,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            KeyType::Aes128Gcm96 => "aes128-gcm96",
            KeyType::Aes256Gcm96 => "aes256-gcm96",
            KeyType::ChaCha20Poly1305 => "chacha20-poly1305",
            KeyType::Ed25519 => "ed25519",
        }
    }

    fn key_len(self) -> usize {
        match self {
            KeyType::Aes128Gcm96 => 16,
            KeyType::Aes256Gcm96 | KeyType::ChaCha20Poly1305 | KeyType::Ed25519 => 32,
        }
    }

    fn is_aead(self) -> bool {
        !matches!(self, KeyType::Ed25519)
    }

    fn is_signing(self) -> bool {
        matches!(self, KeyType::Ed25519)
    }
}

impl fmt::Display for KeyType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Key material: zeroized on drop, redacted in `Debug`, base64 inside the (barrier-encrypted)
/// storage entry and nowhere else.
#[derive(Clone)]
struct KeyBytes(SecretBytes);

impl KeyBytes {
    fn random(n: usize) -> Result<KeyBytes, TransitError> {
        let mut buf = Zeroizing::new(vec![0u8; n]);
        getrandom::fill(&mut buf).map_err(internal)?;
        Ok(KeyBytes(SecretBytes::new(std::mem::take(&mut *buf))))
    }

    fn expose(&self) -> &[u8] {
        self.0.expose()
    }
}

impl fmt::Debug for KeyBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KeyBytes([REDACTED])")
    }
}

impl Serialize for KeyBytes {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let encoded = Zeroizing::new(B64.encode(self.expose()));
        s.serialize_str(&encoded)
    }
}

impl<'de> Deserialize<'de> for KeyBytes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl Visitor<'_> for KeyVisitor {
            type Value = KeyBytes;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("base64 key material")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<KeyBytes, E> {
                B64.decode(s)
                    .map(|b| KeyBytes(SecretBytes::new(b)))
                    // No detail: the input is key material.
                    .map_err(|_| E::custom("invalid key material encoding"))
            }
            fn visit_string<E: de::Error>(self, s: String) -> Result<KeyBytes, E> {
                let s = Zeroizing::new(s);
                self.visit_str(&s)
            }
        }
        d.deserialize_str(KeyVisitor)
    }
}

/// A key whose bytes are either the stored version key or derived from it per request.
enum KeyRef<'a> {
    Stored(&'a KeyBytes),
    Derived(SecretBytes),
}

impl KeyRef<'_> {
    fn bytes(&self) -> &[u8] {
        match self {
            KeyRef::Stored(k) => k.expose(),
            KeyRef::Derived(k) => k.expose(),
        }
    }
}

/// One version of a named key.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct KeyVersion {
    /// The cipher key (AEAD types) or the Ed25519 seed.
    key: KeyBytes,
    /// A separate key for `hmac/` (Vault gives every version one, whatever its type).
    hmac_key: KeyBytes,
    /// Creation time, nanoseconds since the Unix epoch.
    created_ns: u64,
    /// Ed25519 public key, standard base64 (not secret).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    public_key: Option<String>,
}

impl KeyVersion {
    fn generate(kt: KeyType) -> Result<KeyVersion, TransitError> {
        let key = KeyBytes::random(kt.key_len())?;
        let public_key = match kt {
            KeyType::Ed25519 => {
                let pair = Ed25519KeyPair::from_seed_unchecked(key.expose()).map_err(internal)?;
                Some(B64.encode(pair.public_key().as_ref()))
            }
            _ => None,
        };
        Ok(KeyVersion {
            key,
            hmac_key: KeyBytes::random(HMAC_KEY_LEN)?,
            created_ns: now_ns(),
            public_key,
        })
    }
}

/// A named key and all its live versions: the unit stored at `policy/<name>`.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Policy {
    name: String,
    #[serde(rename = "type")]
    key_type: KeyType,
    derived: bool,
    deletion_allowed: bool,
    allow_plaintext_backup: bool,
    /// Seconds; 0 = never.
    auto_rotate_period: u64,
    /// Versions below this were trimmed (their material is gone). 0 = never trimmed.
    min_available_version: u64,
    /// Ciphertexts and signatures of older versions are refused. Always >= 1.
    min_decryption_version: u64,
    /// Encrypting or signing with an older version is refused. 0 = any live version.
    min_encryption_version: u64,
    latest_version: u64,
    versions: BTreeMap<u64, KeyVersion>,
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

impl Policy {
    fn new(
        name: &str,
        key_type: KeyType,
        derived: bool,
        allow_plaintext_backup: bool,
        auto_rotate_period: u64,
    ) -> Result<Policy, TransitError> {
        let mut p = Policy {
            name: name.to_owned(),
            key_type,
            derived,
            deletion_allowed: false,
            allow_plaintext_backup,
            auto_rotate_period,
            min_available_version: 0,
            min_decryption_version: 1,
            min_encryption_version: 0,
            latest_version: 0,
            versions: BTreeMap::new(),
        };
        p.rotate()?;
        Ok(p)
    }

    /// Adds a fresh version and makes it the latest.
    fn rotate(&mut self) -> Result<(), TransitError> {
        if self.versions.len() >= MAX_LIVE_VERSIONS {
            return Err(user(format!(
                "key {} has {MAX_LIVE_VERSIONS} live versions, the maximum; trim old versions \
                 first",
                self.name
            )));
        }
        let v = KeyVersion::generate(self.key_type)?;
        self.latest_version += 1;
        self.versions.insert(self.latest_version, v);
        Ok(())
    }

    /// True when automatic rotation is on and the latest version is older than the period.
    fn rotation_due(&self, now_ns: u64) -> bool {
        if self.auto_rotate_period == 0 {
            return false;
        }
        let Some(latest) = self.versions.get(&self.latest_version) else {
            return false;
        };
        let period_ns = self.auto_rotate_period.saturating_mul(1_000_000_000);
        now_ns >= latest.created_ns.saturating_add(period_ns)
    }

    /// Serializes into a zeroizing buffer sized up front, so growth does not leave unzeroized
    /// copies of the base64 key material in freed memory.
    fn encode(&self) -> Result<Zeroizing<Vec<u8>>, TransitError> {
        let mut buf = Zeroizing::new(Vec::with_capacity(1024 + self.versions.len() * 512));
        serde_json::to_writer(&mut *buf, self).map_err(internal)?;
        Ok(buf)
    }

    fn version(&self, v: u64) -> Result<&KeyVersion, TransitError> {
        self.versions
            .get(&v)
            .ok_or_else(|| user("no such key version"))
    }

    /// The key for version `v`: the stored one, or for derived keys
    /// HKDF-SHA256(ikm = stored key, salt = none, info = context), as Vault's `hkdf_sha256`.
    fn key_for(&self, v: u64, context: Option<&[u8]>) -> Result<KeyRef<'_>, TransitError> {
        let kv = self.version(v)?;
        if !self.derived {
            return Ok(KeyRef::Stored(&kv.key));
        }
        let ctx = context
            .filter(|c| !c.is_empty())
            .ok_or_else(|| user(ERR_MISSING_CONTEXT))?;
        let mut okm = Zeroizing::new(vec![0u8; self.key_type.key_len()]);
        Hkdf::<Sha256>::new(None, kv.key.expose())
            .expand(ctx, &mut okm)
            .map_err(internal)?;
        Ok(KeyRef::Derived(SecretBytes::new(std::mem::take(&mut *okm))))
    }

    /// Vault's version choice for encryption (`EncryptWithFactory`).
    fn encryption_version(&self, requested: u64) -> Result<u64, TransitError> {
        match requested {
            0 => Ok(self.latest_version),
            v if v > self.latest_version => Err(user(
                "requested version for encryption is higher than the latest key version",
            )),
            v if v < self.min_encryption_version => Err(user(
                "requested version for encryption is less than the minimum encryption key version",
            )),
            v => Ok(v),
        }
    }

    fn encrypt(
        &self,
        requested: u64,
        context: Option<&[u8]>,
        plaintext: &[u8],
        aad: &[u8],
    ) -> Result<(String, u64), TransitError> {
        if !self.key_type.is_aead() {
            return Err(user(format!(
                "message encryption not supported for key type {}",
                self.key_type
            )));
        }
        let ver = self.encryption_version(requested)?;
        let key = self.key_for(ver, context)?;
        let blob = seal(self.key_type, key.bytes(), aad, plaintext)?;
        let mut out = String::with_capacity(12 + blob.len().div_ceil(3) * 4);
        // Writing to a String cannot fail.
        let _ = std::fmt::Write::write_fmt(&mut out, format_args!("vault:v{ver}:"));
        B64.encode_string(&blob, &mut out);
        Ok((out, ver))
    }

    fn decrypt(
        &self,
        value: &str,
        context: Option<&[u8]>,
        aad: &[u8],
    ) -> Result<SecretBytes, TransitError> {
        if !self.key_type.is_aead() {
            return Err(user(format!(
                "message decryption not supported for key type {}",
                self.key_type
            )));
        }
        let (ver, body) = parse_versioned(value, "ciphertext")?;
        // Vault's compatibility with its very first format, where versions started at 0.
        let ver = ver.max(1);
        if ver > self.latest_version {
            return Err(user("invalid ciphertext: version is too new"));
        }
        if ver < self.min_decryption_version {
            return Err(user(ERR_TOO_OLD));
        }
        let blob = B64
            .decode(body)
            .map_err(|_| user("invalid ciphertext: could not decode base64"))?;
        let key = self.key_for(ver, context)?;
        open(self.key_type, key.bytes(), aad, &blob)
    }

    /// The HMAC key of version `v` (Vault's `HMACKey`).
    fn hmac_key(&self, v: u64) -> Result<&[u8], TransitError> {
        if v > self.latest_version {
            return Err(user(format!(
                "key version does not exist; latest key version is {}",
                self.latest_version
            )));
        }
        Ok(self.version(v)?.hmac_key.expose())
    }

    /// The Ed25519 key pair of version `ver` (per context when derived).
    fn signing_pair(
        &self,
        ver: u64,
        context: Option<&[u8]>,
    ) -> Result<Ed25519KeyPair, TransitError> {
        let seed = self.key_for(ver, context)?;
        Ed25519KeyPair::from_seed_unchecked(seed.bytes()).map_err(internal)
    }

    fn sign(
        &self,
        requested: u64,
        context: Option<&[u8]>,
        input: &[u8],
        jws: bool,
    ) -> Result<(String, u64, Option<String>), TransitError> {
        let ver = match requested {
            0 => self.latest_version,
            v if v > self.latest_version => {
                return Err(user(
                    "requested version for signing is higher than the latest key version",
                ))
            }
            v if self.min_encryption_version > 0 && v < self.min_encryption_version => {
                return Err(user(
                    "requested version for signing is less than the minimum encryption key \
                     version",
                ))
            }
            v => v,
        };
        let pair = self.signing_pair(ver, context)?;
        let sig = pair.sign(input);
        let encoded = if jws {
            URL_SAFE_NO_PAD.encode(sig.as_ref())
        } else {
            B64.encode(sig.as_ref())
        };
        // As Vault, a derived key's per-context public key comes back with the signature.
        let public_key = self.derived.then(|| B64.encode(pair.public_key().as_ref()));
        Ok((format!("vault:v{ver}:{encoded}"), ver, public_key))
    }

    fn verify(
        &self,
        context: Option<&[u8]>,
        input: &[u8],
        signature: &str,
        jws: bool,
    ) -> Result<bool, TransitError> {
        let (ver, body) = parse_versioned(signature, "signature")?;
        if ver > self.latest_version {
            return Err(user("invalid signature: version is too new"));
        }
        if ver < self.min_decryption_version {
            return Err(user(ERR_TOO_OLD));
        }
        let sig = if jws {
            URL_SAFE_NO_PAD.decode(body)
        } else {
            B64.decode(body)
        }
        .map_err(|_| user("invalid base64 signature value"))?;
        let public: Vec<u8> = if self.derived {
            self.signing_pair(ver, context)?
                .public_key()
                .as_ref()
                .to_vec()
        } else {
            let stored = self
                .version(ver)?
                .public_key
                .as_deref()
                .ok_or_else(|| internal("ed25519 version without public key"))?;
            B64.decode(stored).map_err(internal)?
        };
        Ok(UnparsedPublicKey::new(&ED25519, public)
            .verify(input, &sig)
            .is_ok())
    }

    /// Vault's `formatKeyPolicy`: what `GET keys/<name>` and every key write answer.
    fn to_json(&self) -> Value {
        let keys: Map<String, Value> = self
            .versions
            .iter()
            .map(|(v, kv)| {
                let entry = match self.key_type {
                    KeyType::Ed25519 => json!({
                        "name": "ed25519",
                        // Vault shows no public key for a derived key read without context.
                        "public_key": if self.derived { "" } else { kv.public_key.as_deref().unwrap_or("") },
                        "creation_time": timestamp(UNIX_EPOCH + Duration::from_nanos(kv.created_ns)),
                    }),
                    _ => json!(kv.created_ns / 1_000_000_000),
                };
                (v.to_string(), entry)
            })
            .collect();
        let mut m = json!({
            "name": self.name,
            "type": self.key_type.as_str(),
            "derived": self.derived,
            "deletion_allowed": self.deletion_allowed,
            "min_available_version": self.min_available_version,
            "min_decryption_version": self.min_decryption_version,
            "min_encryption_version": self.min_encryption_version,
            "latest_version": self.latest_version,
            "exportable": false,
            "allow_plaintext_backup": self.allow_plaintext_backup,
            "supports_encryption": self.key_type.is_aead(),
            "supports_decryption": self.key_type.is_aead(),
            "supports_signing": self.key_type.is_signing(),
            "supports_derivation": true,
            "auto_rotate_period": self.auto_rotate_period,
            "imported_key": false,
            "keys": keys,
        });
        if self.derived {
            m["kdf"] = json!("hkdf_sha256");
            m["convergent_encryption"] = json!(false);
        }
        m
    }
}

/// Splits `vault:v<N>:<body>` (Vault's default version template) into N and body, with
/// Vault's messages for each way it can be malformed.
fn parse_versioned<'a>(value: &'a str, what: &str) -> Result<(u64, &'a str), TransitError> {
    let rest = value
        .strip_prefix("vault:v")
        .ok_or_else(|| user(format!("invalid {what}: no prefix")))?;
    let (ver, body) = rest
        .split_once(':')
        .ok_or_else(|| user(format!("invalid {what}: wrong number of fields")))?;
    let ver = ver.parse::<u64>().map_err(|_| {
        user(format!(
            "invalid {what}: version number could not be decoded"
        ))
    })?;
    Ok((ver, body))
}

/// AEAD-encrypts with a fresh random nonce: `nonce ‖ ciphertext ‖ tag` (Go's GCM layout).
fn seal(kt: KeyType, key: &[u8], aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, TransitError> {
    // A random 96-bit nonce per message, as Vault; with 2^32 messages per key version the
    // collision probability stays below 2^-32 (NIST SP 800-38D), and rotation resets the count.
    let nonce = shroud_crypto::nonce().map_err(internal)?;
    let mut out = Vec::with_capacity(NONCE_LEN + plaintext.len() + TAG_LEN);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(plaintext);
    let n = GenericArray::from_slice(&nonce);
    let buf = &mut out[NONCE_LEN..];
    let tag = match kt {
        KeyType::Aes128Gcm96 => Aes128Gcm::new_from_slice(key)
            .map_err(internal)?
            .encrypt_in_place_detached(n, aad, buf),
        KeyType::Aes256Gcm96 => Aes256Gcm::new_from_slice(key)
            .map_err(internal)?
            .encrypt_in_place_detached(n, aad, buf),
        KeyType::ChaCha20Poly1305 => ChaCha20Poly1305::new_from_slice(key)
            .map_err(internal)?
            .encrypt_in_place_detached(n, aad, buf),
        KeyType::Ed25519 => return Err(internal("seal with a signing key")),
    }
    .map_err(|_| internal("aead seal failed"))?;
    out.extend_from_slice(&tag);
    Ok(out)
}

/// Opens `nonce ‖ ciphertext ‖ tag`. Every authentication failure has the one message.
fn open(kt: KeyType, key: &[u8], aad: &[u8], blob: &[u8]) -> Result<SecretBytes, TransitError> {
    if blob.len() < NONCE_LEN {
        return Err(user("invalid ciphertext length"));
    }
    if blob.len() < NONCE_LEN + TAG_LEN {
        return Err(user(ERR_AUTH_FAILED));
    }
    let (nonce, rest) = blob.split_at(NONCE_LEN);
    let (ct, tag) = rest.split_at(rest.len() - TAG_LEN);
    let n = GenericArray::from_slice(nonce);
    let t = GenericArray::from_slice(tag);
    let mut buf = Zeroizing::new(ct.to_vec());
    match kt {
        KeyType::Aes128Gcm96 => Aes128Gcm::new_from_slice(key)
            .map_err(internal)?
            .decrypt_in_place_detached(n, aad, &mut buf, t),
        KeyType::Aes256Gcm96 => Aes256Gcm::new_from_slice(key)
            .map_err(internal)?
            .decrypt_in_place_detached(n, aad, &mut buf, t),
        KeyType::ChaCha20Poly1305 => ChaCha20Poly1305::new_from_slice(key)
            .map_err(internal)?
            .decrypt_in_place_detached(n, aad, &mut buf, t),
        KeyType::Ed25519 => return Err(internal("open with a signing key")),
    }
    .map_err(|_| user(ERR_AUTH_FAILED))?;
    Ok(SecretBytes::new(std::mem::take(&mut *buf)))
}

// ---------------------------------------------------------------------------------------------
// Hash algorithms (hash/, hmac/)

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum HashAlg {
    Sha224,
    Sha256,
    Sha384,
    Sha512,
}

macro_rules! with_hash {
    ($alg:expr, $h:ident => $body:expr) => {
        match $alg {
            HashAlg::Sha224 => {
                type $h = Sha224;
                $body
            }
            HashAlg::Sha256 => {
                type $h = Sha256;
                $body
            }
            HashAlg::Sha384 => {
                type $h = Sha384;
                $body
            }
            HashAlg::Sha512 => {
                type $h = Sha512;
                $body
            }
        }
    };
}

impl HashAlg {
    fn parse(s: &str) -> Option<HashAlg> {
        match s {
            "sha2-224" => Some(HashAlg::Sha224),
            "sha2-256" => Some(HashAlg::Sha256),
            "sha2-384" => Some(HashAlg::Sha384),
            "sha2-512" => Some(HashAlg::Sha512),
            _ => None,
        }
    }

    fn digest(self, data: &[u8]) -> Vec<u8> {
        with_hash!(self, H => H::digest(data).to_vec())
    }

    fn mac(self, key: &[u8], data: &[u8]) -> Result<Vec<u8>, TransitError> {
        with_hash!(self, H => {
            let mut m = <Hmac<H> as Mac>::new_from_slice(key).map_err(internal)?;
            m.update(data);
            Ok(m.finalize().into_bytes().to_vec())
        })
    }

    /// Constant-time comparison of `tag` with the HMAC of `data`.
    fn mac_verify(self, key: &[u8], data: &[u8], tag: &[u8]) -> Result<bool, TransitError> {
        with_hash!(self, H => {
            let mut m = <Hmac<H> as Mac>::new_from_slice(key).map_err(internal)?;
            m.update(data);
            Ok(m.verify_slice(tag).is_ok())
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Request parsing

fn body_of(req: &Request) -> &Map<String, Value> {
    req.body.as_ref().unwrap_or(&EMPTY_BODY)
}

/// A string field; `null` counts as absent (hvac sends `null` for unset options).
fn str_field<'a>(
    m: &'a Map<String, Value>,
    key: &str,
    idx: Option<usize>,
) -> Result<Option<&'a str>, ApiError> {
    match m.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(ApiError::bad_request(match idx {
            Some(i) => format!("'[{i}].{key}' expected type 'string'"),
            None => format!("'{key}' expected type 'string'"),
        })),
    }
}

/// Go's `base64.StdEncoding` error text, which Vault returns verbatim for bad input.
fn go_b64_error(e: base64::DecodeError) -> String {
    let at = match e {
        base64::DecodeError::InvalidByte(offset, _) => offset,
        base64::DecodeError::InvalidLength(len) => len,
        base64::DecodeError::InvalidLastSymbol { offset, .. } => offset,
        base64::DecodeError::InvalidPadding => 0,
    };
    format!("illegal base64 data at input byte {at}")
}

/// Decodes user-supplied base64 (plaintext, input, context) into a zeroizing buffer.
fn decode_input(s: &str, what: &str) -> Result<SecretBytes, TransitError> {
    // Every 4 base64 characters carry 3 bytes: refuse before allocating.
    if s.len() / 4 * 3 > MAX_INPUT {
        return Err(user(format!("{what} is larger than {MAX_INPUT} bytes")));
    }
    B64.decode(s)
        .map(SecretBytes::new)
        .map_err(|e| user(go_b64_error(e)))
}

fn decode_opt(s: Option<&str>, what: &str) -> Result<Option<SecretBytes>, TransitError> {
    s.filter(|s| !s.is_empty())
        .map(|s| decode_input(s, what))
        .transpose()
}

/// One element of `batch_input`, or the top-level body of a single request.
#[derive(Default)]
struct Item<'a> {
    plaintext: Option<&'a str>,
    ciphertext: Option<&'a str>,
    context: Option<&'a str>,
    nonce: Option<&'a str>,
    associated_data: Option<&'a str>,
    input: Option<&'a str>,
    hmac: Option<&'a str>,
    signature: Option<&'a str>,
    key_version: u64,
    reference: &'a str,
}

impl<'a> Item<'a> {
    fn parse(m: &'a Map<String, Value>, idx: Option<usize>) -> Result<Item<'a>, ApiError> {
        let s = |k: &str| str_field(m, k, idx);
        Ok(Item {
            plaintext: s("plaintext")?,
            ciphertext: s("ciphertext")?,
            context: s("context")?.filter(|c| !c.is_empty()),
            nonce: s("nonce")?.filter(|c| !c.is_empty()),
            associated_data: s("associated_data")?.filter(|c| !c.is_empty()),
            input: s("input")?,
            hmac: s("hmac")?,
            signature: s("signature")?,
            key_version: uint_field(m.get("key_version"), "key_version")?.unwrap_or(0),
            reference: s("reference")?.unwrap_or(""),
        })
    }
}

/// The request's items and whether they came from `batch_input` (in which case the top-level
/// single-item fields are ignored, as in Vault; hvac sends them as `null` alongside).
fn items_of(req: &Request) -> Result<(Vec<Item<'_>>, bool), ApiError> {
    let body = body_of(req);
    match body.get("batch_input") {
        None | Some(Value::Null) => Ok((vec![Item::parse(body, None)?], false)),
        Some(Value::Array(a)) => {
            if a.is_empty() {
                return Err(ApiError::bad_request("missing batch input to process"));
            }
            if a.len() > MAX_BATCH {
                return Err(ApiError::bad_request(format!(
                    "batch_input has {} items; at most {MAX_BATCH} are accepted",
                    a.len()
                )));
            }
            let items = a
                .iter()
                .enumerate()
                .map(|(i, v)| match v {
                    Value::Object(m) => Item::parse(m, Some(i)),
                    _ => Err(ApiError::bad_request(format!(
                        "failed to parse batch input: [{i}] expected a map"
                    ))),
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok((items, true))
        }
        Some(_) => Err(ApiError::bad_request(
            "failed to parse batch input: source data must be an array or slice",
        )),
    }
}

/// Vault's `context should be set either in all the request blocks or in none`.
fn context_set(items: &[Item<'_>]) -> Result<bool, ApiError> {
    let set = items.first().is_some_and(|i| i.context.is_some());
    if items.iter().any(|i| i.context.is_some() != set) {
        return Err(ApiError::bad_request(
            "context should be set either in all the request blocks or in none",
        ));
    }
    Ok(set)
}

/// Key names as Vault's `framework.GenericNameRegex`: word characters, with `-`, `.` and `@`
/// allowed inside.
fn valid_name(name: &str) -> bool {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name.starts_with(word)
        && name.ends_with(word)
        && name
            .chars()
            .all(|c| word(c) || c == '-' || c == '.' || c == '@')
}

fn reply(data: Value, warnings: Vec<String>, status: Option<u16>) -> Reply {
    Reply::Logical(Box::new(crate::api::Logical {
        status,
        data: crate::api::Data::Owned(data),
        warnings,
        mount_type: "transit",
        ..Default::default()
    }))
}

// ---------------------------------------------------------------------------------------------
// Batches

/// The result of one item: response fields, or an error.
type ItemResult = Result<Map<String, Value>, TransitError>;

/// How batch failures map to the HTTP status.
#[derive(Clone, Copy, PartialEq, Eq)]
enum BatchStatus {
    /// encrypt/decrypt/rewrap (Vault's `batchRequestResponse`): 400 if any item failed on
    /// input, else 500 if any failed internally, unless `partial_failure_response_code`
    /// overrides it when some items succeeded.
    Strict,
    /// hmac/sign/verify: 200 with per-item errors, as Vault.
    Lenient,
}

/// Builds the response for items processed by `results`: a single request answers with the
/// item's fields or its error; a batch answers with `batch_results` (references echoed).
fn finish(
    req: &Request,
    batch: bool,
    items: &[Item<'_>],
    results: Vec<ItemResult>,
    mode: BatchStatus,
    error_fill: &[(&str, Value)],
    mut warnings: Vec<String>,
) -> ApiResult {
    if !batch {
        let only = results
            .into_iter()
            .next()
            .ok_or_else(|| ApiError::internal(&"empty result set"))?;
        return Ok(reply(Value::Object(only?), warnings, None));
    }
    let (mut user_err, mut internal_err, mut success) = (false, false, false);
    let out: Vec<Value> = results
        .into_iter()
        .zip(items)
        .map(|(r, item)| {
            let mut m = match r {
                Ok(m) => {
                    success = true;
                    m
                }
                Err(e) => {
                    let msg = match e {
                        TransitError::User(m) => {
                            user_err = true;
                            m
                        }
                        TransitError::Internal(d) => {
                            internal_err = true;
                            tracing::error!(error = %d, "transit batch item failed");
                            "internal error".to_owned()
                        }
                    };
                    let mut m: Map<String, Value> = error_fill
                        .iter()
                        .map(|(k, v)| ((*k).to_owned(), v.clone()))
                        .collect();
                    m.insert("error".into(), Value::from(msg));
                    m
                }
            };
            m.insert("reference".into(), Value::from(item.reference));
            Value::Object(m)
        })
        .collect();
    let mut status = None;
    if mode == BatchStatus::Strict && (user_err || internal_err) {
        let mut code = if user_err { 400 } else { 500 };
        if success {
            if let Some(c) = uint_field(
                req.field("partial_failure_response_code"),
                "partial_failure_response_code",
            )? {
                if (1..=599).contains(&c) {
                    code = c as u16;
                } else {
                    warnings.push(format!(
                        "invalid HTTP response code override from \
                         partial_failure_response_code, reverting to {code}"
                    ));
                }
            }
        }
        status = Some(code);
    }
    Ok(reply(json!({ "batch_results": out }), warnings, status))
}

// ---------------------------------------------------------------------------------------------
// The engine

/// One mounted transit engine.
pub struct TransitEngine {
    prefix: String,
    barrier: Arc<Barrier>,
    /// Parsed keys by name. Filled and replaced only under the key's lock (see module doc).
    cache: RwLock<HashMap<String, Arc<Policy>>>,
    locks: Vec<tokio::sync::Mutex<()>>,
}

impl fmt::Debug for TransitEngine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TransitEngine")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl TransitEngine {
    /// An engine storing under `logical/<uuid>/`.
    pub fn new(barrier: Arc<Barrier>, uuid: &str) -> Self {
        Self {
            prefix: format!("logical/{uuid}/"),
            barrier,
            cache: RwLock::new(HashMap::new()),
            locks: (0..LOCK_STRIPES)
                .map(|_| tokio::sync::Mutex::new(()))
                .collect(),
        }
    }

    fn lock_for(&self, name: &str) -> &tokio::sync::Mutex<()> {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        name.hash(&mut h);
        &self.locks[(h.finish() as usize) % LOCK_STRIPES]
    }

    fn policy_path(&self, name: &str) -> String {
        format!("{}policy/{name}", self.prefix)
    }

    fn cached(&self, name: &str) -> Option<Arc<Policy>> {
        self.cache
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .cloned()
    }

    /// Replaces (or with `None` drops) the cached key. Call only with the key's lock held.
    fn cache_set(&self, name: &str, p: Option<Arc<Policy>>) {
        let mut c = self.cache.write().unwrap_or_else(|e| e.into_inner());
        match p {
            Some(p) => {
                if c.len() >= MAX_CACHED_KEYS && !c.contains_key(name) {
                    c.clear();
                }
                c.insert(name.to_owned(), p);
            }
            None => {
                c.remove(name);
            }
        }
    }

    /// The key, from the cache or storage.
    async fn load(&self, name: &str) -> Result<Option<Arc<Policy>>, ApiError> {
        if let Some(p) = self.cached(name) {
            return Ok(Some(p));
        }
        let _guard = self.lock_for(name).lock().await;
        self.load_locked(name).await
    }

    /// [`Self::load`] for a caller that holds the key's lock.
    async fn load_locked(&self, name: &str) -> Result<Option<Arc<Policy>>, ApiError> {
        if let Some(p) = self.cached(name) {
            return Ok(Some(p));
        }
        let Some(raw) = self.barrier.get(&self.policy_path(name)).await? else {
            return Ok(None);
        };
        let p: Policy = serde_json::from_slice(raw.expose()).map_err(|e| {
            // Position only: serde's message can quote the offending value.
            ApiError::internal(&format!(
                "transit key {name}: stored entry does not parse ({:?} at line {} column {})",
                e.classify(),
                e.line(),
                e.column()
            ))
        })?;
        let p = Arc::new(p);
        self.cache_set(name, Some(p.clone()));
        Ok(Some(p))
    }

    /// Persists `p` and makes it the cached version. Call only with the key's lock held.
    async fn store_locked(&self, p: Policy) -> Result<Arc<Policy>, ApiError> {
        let buf = p.encode()?;
        // Drop the cached copy first: if the write fails, the next reader reloads from storage
        // rather than trusting a version that may or may not have been persisted.
        self.cache_set(&p.name, None);
        self.barrier.put(&self.policy_path(&p.name), &buf).await?;
        let name = p.name.clone();
        let p = Arc::new(p);
        self.cache_set(&name, Some(p.clone()));
        Ok(p)
    }

    /// The key for an operation, rotated first if its `auto_rotate_period` has elapsed.
    ///
    /// Vault rotates from a periodic task; here rotation happens on the first use after the
    /// period, which is indistinguishable to clients (a key nobody uses produces nothing under
    /// its stale version) and needs no background task.
    async fn load_for_use(&self, name: &str) -> Result<Option<Arc<Policy>>, ApiError> {
        let Some(p) = self.load(name).await? else {
            return Ok(None);
        };
        let now = now_ns();
        if !p.rotation_due(now) {
            return Ok(Some(p));
        }
        let _guard = self.lock_for(name).lock().await;
        let Some(cur) = self.load_locked(name).await? else {
            return Ok(None);
        };
        if !cur.rotation_due(now) {
            return Ok(Some(cur));
        }
        let mut next = (*cur).clone();
        if let Err(e) = next.rotate() {
            // Keep serving with the current version rather than failing the caller's request.
            tracing::warn!(key = %name, error = %e, "transit auto-rotation skipped");
            return Ok(Some(cur));
        }
        self.store_locked(next).await.map(Some)
    }

    async fn route(&self, rel: &str, req: &Request) -> ApiResult {
        let segs: Vec<&str> = rel.trim_end_matches('/').split('/').collect();
        let op = req.op;
        let upd = op == Operation::Update;
        let name_ok = |n: &str| {
            if valid_name(n) {
                Ok(())
            } else {
                Err(ApiError::no_route(&req.path))
            }
        };
        match segs.as_slice() {
            ["keys"] => match op {
                Operation::List => self.list_keys().await,
                _ => Err(ApiError::unsupported_operation()),
            },
            ["keys", name] => {
                name_ok(name)?;
                match op {
                    Operation::Update => self.create_key(name, req).await,
                    Operation::Read => self.read_key(name).await,
                    Operation::Delete => self.delete_key(name).await,
                    _ => Err(ApiError::unsupported_operation()),
                }
            }
            ["keys", name, action @ ("config" | "rotate" | "trim")] => {
                name_ok(name)?;
                if !upd {
                    return Err(ApiError::unsupported_operation());
                }
                match *action {
                    "config" => self.config_key(name, req).await,
                    "rotate" => self.rotate_key(name).await,
                    _ => self.trim_key(name, req).await,
                }
            }
            ["keys", _, "import" | "import_version"] | ["wrapping_key"] => Err(
                ApiError::bad_request("importing keys is not supported by this server"),
            ),
            ["export", ..] => Err(ApiError::bad_request(
                "key export is not supported: key material never leaves this server",
            )),
            ["backup", ..] | ["restore", ..] => Err(ApiError::bad_request(
                "key backup and restore are not supported: key material never leaves this server",
            )),
            [action @ ("encrypt" | "decrypt" | "rewrap"), name] => {
                name_ok(name)?;
                if !upd {
                    return Err(ApiError::unsupported_operation());
                }
                match *action {
                    "encrypt" => self.encrypt(name, req).await,
                    "decrypt" => self.decrypt(name, req).await,
                    _ => self.rewrap(name, req).await,
                }
            }
            ["datakey", kind, name] => {
                name_ok(name)?;
                if !upd {
                    return Err(ApiError::unsupported_operation());
                }
                self.datakey(kind, name, req).await
            }
            ["random", rest @ ..] if rest.len() <= 2 => {
                if !upd {
                    return Err(ApiError::unsupported_operation());
                }
                random(rest, req)
            }
            ["hash", rest @ ..] if rest.len() <= 1 => {
                if !upd {
                    return Err(ApiError::unsupported_operation());
                }
                hash(rest.first().copied(), req)
            }
            [action @ ("hmac" | "sign" | "verify"), name, rest @ ..] if rest.len() <= 1 => {
                name_ok(name)?;
                if !upd {
                    return Err(ApiError::unsupported_operation());
                }
                let url_alg = rest.first().copied();
                match *action {
                    "hmac" => self.hmac(name, url_alg, req).await,
                    "sign" => self.sign(name, url_alg, req).await,
                    _ => self.verify(name, url_alg, req).await,
                }
            }
            _ => Err(ApiError::no_route(&req.path)),
        }
    }
}

#[async_trait::async_trait]
impl crate::engine::Engine for TransitEngine {
    /// Encrypt is an upsert (Vault's `pathEncryptExistenceCheck`): for a missing key the ACL
    /// asks for `create`, which lets the handler create it. Every other path asks for `update`.
    async fn exists(&self, rel: &str, _req: &Request) -> Result<bool, ApiError> {
        match rel.split_once('/') {
            Some(("encrypt", name)) if valid_name(name) => Ok(self.load(name).await?.is_some()),
            _ => Ok(true),
        }
    }

    async fn handle(&self, rel: &str, req: &Request) -> ApiResult {
        self.route(rel, req).await
    }

    /// Cryptographic operations with an existing key change nothing, unless the key is due
    /// for automatic rotation (which the operation would perform) or must be created.
    async fn changes_nothing(&self, rel: &str, _req: &Request) -> Result<bool, ApiError> {
        let mut parts = rel.split('/');
        let (op, name) = match (parts.next(), parts.next()) {
            (Some("hash" | "random"), _) => return Ok(true),
            (Some("datakey"), Some(_)) => ("datakey", parts.next()),
            (Some(op), name) => (op, name),
            (None, _) => return Ok(false),
        };
        if !matches!(
            op,
            "encrypt" | "decrypt" | "rewrap" | "datakey" | "hmac" | "sign" | "verify"
        ) {
            return Ok(false);
        }
        let Some(name) = name.filter(|n| valid_name(n)) else {
            return Ok(false);
        };
        match self.load(name).await? {
            Some(p) => Ok(!p.rotation_due(now_ns())),
            None => Ok(false),
        }
    }

    fn prefix(&self) -> &str {
        &self.prefix
    }
}

// ---------------------------------------------------------------------------------------------
// keys/

impl TransitEngine {
    async fn list_keys(&self) -> ApiResult {
        let prefix = format!("{}policy/", self.prefix);
        let keys: Vec<String> = self
            .barrier
            .list(&prefix)
            .await?
            .into_iter()
            .filter_map(|k| k.strip_prefix(&prefix).map(str::to_owned))
            .collect();
        if keys.is_empty() {
            return Err(ApiError::not_found());
        }
        Ok(reply(json!({ "keys": keys }), vec![], None))
    }

    async fn read_key(&self, name: &str) -> ApiResult {
        match self.load_for_use(name).await? {
            Some(p) => Ok(reply(p.to_json(), vec![], None)),
            None => Err(ApiError::not_found()),
        }
    }

    async fn create_key(&self, name: &str, req: &Request) -> ApiResult {
        let type_name = str_field(body_of(req), "type", None)?.unwrap_or("aes256-gcm96");
        let key_type = KeyType::parse(type_name).ok_or_else(|| {
            ApiError::bad_request(format!(
                "unknown or unsupported key type {type_name} (supported: aes128-gcm96, \
                 aes256-gcm96, chacha20-poly1305, ed25519)"
            ))
        })?;
        let derived = bool_field(req.field("derived"), "derived")?.unwrap_or(false);
        let convergent = bool_field(req.field("convergent_encryption"), "convergent_encryption")?
            .unwrap_or(false);
        let exportable = bool_field(req.field("exportable"), "exportable")?.unwrap_or(false);
        let backup = bool_field(
            req.field("allow_plaintext_backup"),
            "allow_plaintext_backup",
        )?
        .unwrap_or(false);
        let period = auto_rotate_period(req)?.unwrap_or(0);
        if uint_field(req.field("key_size"), "key_size")?.unwrap_or(0) != 0 {
            return Err(ApiError::bad_request(format!(
                "key_size is not valid for algorithm {key_type}"
            )));
        }
        if convergent && !derived {
            return Err(ApiError::bad_request(
                "convergent encryption requires derivation to be enabled",
            ));
        }
        if convergent {
            return Err(ApiError::bad_request(
                "convergent encryption is not supported",
            ));
        }
        if exportable {
            return Err(ApiError::bad_request("exportable keys are not supported"));
        }
        let _guard = self.lock_for(name).lock().await;
        if let Some(existing) = self.load_locked(name).await? {
            // Vault answers a re-create with the existing key (settings unchanged) and a warning.
            return Ok(reply(
                existing.to_json(),
                vec![format!("key {name} already existed")],
                None,
            ));
        }
        let p = Policy::new(name, key_type, derived, backup, period)?;
        let p = self.store_locked(p).await?;
        Ok(reply(p.to_json(), vec![], None))
    }

    async fn delete_key(&self, name: &str) -> ApiResult {
        let _guard = self.lock_for(name).lock().await;
        let Some(p) = self.load_locked(name).await? else {
            return Err(ApiError::bad_request(format!(
                "error deleting policy {name}: could not delete key; not found"
            )));
        };
        if !p.deletion_allowed {
            return Err(ApiError::bad_request(format!(
                "error deleting policy {name}: deletion is not allowed for this key"
            )));
        }
        self.cache_set(name, None);
        self.barrier.delete(&self.policy_path(name)).await?;
        Ok(Reply::NoContent)
    }

    /// Vault's `pathKeysConfigWrite`, check for check.
    async fn config_key(&self, name: &str, req: &Request) -> ApiResult {
        let min_dec = uint_field(
            req.field("min_decryption_version"),
            "min_decryption_version",
        )?;
        let min_enc = uint_field(
            req.field("min_encryption_version"),
            "min_encryption_version",
        )?;
        let deletion = bool_field(req.field("deletion_allowed"), "deletion_allowed")?;
        let exportable = bool_field(req.field("exportable"), "exportable")?;
        let backup = bool_field(
            req.field("allow_plaintext_backup"),
            "allow_plaintext_backup",
        )?;
        let period = auto_rotate_period(req)?;
        if exportable == Some(true) {
            return Err(ApiError::bad_request("exportable keys are not supported"));
        }

        let _guard = self.lock_for(name).lock().await;
        let Some(cur) = self.load_locked(name).await? else {
            return Err(ApiError::bad_request(format!(
                "no existing key named {name} could be found"
            )));
        };
        let mut p = (*cur).clone();
        let mut warnings = vec![];
        let mut changed = false;
        if let Some(mut v) = min_dec {
            if v == 0 {
                v = 1;
                warnings.push(
                    "since Vault 0.3, transit key numbering starts at 1; forcing minimum to 1"
                        .to_owned(),
                );
            }
            if v != p.min_decryption_version {
                if v > p.latest_version {
                    return Err(ApiError::bad_request(format!(
                        "cannot set min decryption version of {v}, latest key version is {}",
                        p.latest_version
                    )));
                }
                p.min_decryption_version = v;
                changed = true;
            }
        }
        if let Some(v) = min_enc {
            if v != p.min_encryption_version {
                if v > p.latest_version {
                    return Err(ApiError::bad_request(format!(
                        "cannot set min encryption version of {v}, latest key version is {}",
                        p.latest_version
                    )));
                }
                p.min_encryption_version = v;
                changed = true;
            }
        }
        if p.min_encryption_version > 0 && p.min_encryption_version < p.min_decryption_version {
            return Err(ApiError::bad_request(format!(
                "cannot set min encryption/decryption values; min encryption version of {} must \
                 be greater than or equal to min decryption version of {}",
                p.min_encryption_version, p.min_decryption_version
            )));
        }
        if let Some(d) = deletion {
            changed |= d != p.deletion_allowed;
            p.deletion_allowed = d;
        }
        // As Vault, allow_plaintext_backup can be turned on but never off.
        if backup == Some(true) && !p.allow_plaintext_backup {
            p.allow_plaintext_backup = true;
            changed = true;
        }
        if let Some(s) = period {
            changed |= s != p.auto_rotate_period;
            p.auto_rotate_period = s;
        }
        if !changed {
            return Ok(reply(p.to_json(), warnings, None));
        }
        if p.min_available_version > p.min_encryption_version {
            return Err(ApiError::bad_request(
                "min encryption version should not be less than min available version",
            ));
        }
        if p.min_available_version > p.min_decryption_version {
            return Err(ApiError::bad_request(
                "min decryption version should not be less then min available version",
            ));
        }
        let p = self.store_locked(p).await?;
        Ok(reply(p.to_json(), warnings, None))
    }

    async fn rotate_key(&self, name: &str) -> ApiResult {
        let _guard = self.lock_for(name).lock().await;
        let Some(cur) = self.load_locked(name).await? else {
            return Err(ApiError::bad_request("key not found"));
        };
        let mut p = (*cur).clone();
        p.rotate()?;
        let p = self.store_locked(p).await?;
        Ok(reply(p.to_json(), vec![], None))
    }

    /// Vault's `pathTrimUpdate`: versions below `min_available_version` are deleted for good.
    async fn trim_key(&self, name: &str, req: &Request) -> ApiResult {
        let min_avail = uint_field(req.field("min_available_version"), "min_available_version")?
            .ok_or_else(|| ApiError::bad_request("missing min_available_version"))?;
        let _guard = self.lock_for(name).lock().await;
        let Some(cur) = self.load_locked(name).await? else {
            return Err(ApiError::bad_request("invalid key name"));
        };
        let msg = if min_avail < cur.min_available_version {
            Some("minimum available version cannot be decremented")
        } else if cur.min_encryption_version == 0 {
            Some("minimum available version cannot be set when minimum encryption version is not set")
        } else if min_avail > cur.min_encryption_version {
            Some("minimum available version cannot be greater than minimum encryption version")
        } else if min_avail > cur.min_decryption_version {
            Some("minimum available version cannot be greater than minimum decryption version")
        } else if min_avail == 0 {
            Some("minimum available version should be positive")
        } else {
            None
        };
        if let Some(m) = msg {
            return Err(ApiError::bad_request(m));
        }
        let mut p = (*cur).clone();
        p.min_available_version = min_avail;
        // Dropping the versions drops (and zeroizes) their material in this copy; the storage
        // entry is rewritten without them.
        p.versions.retain(|v, _| *v >= min_avail);
        let p = self.store_locked(p).await?;
        Ok(reply(p.to_json(), vec![], None))
    }
}

fn auto_rotate_period(req: &Request) -> Result<Option<u64>, ApiError> {
    let Some(d) = duration_field(req.field("auto_rotate_period"), "auto_rotate_period")? else {
        return Ok(None);
    };
    let s = d.as_secs();
    if s != 0 && s < MIN_AUTO_ROTATE_SECS {
        return Err(ApiError::bad_request(
            "auto rotate period must be 0 to disable or at least an hour",
        ));
    }
    Ok(Some(s))
}

// ---------------------------------------------------------------------------------------------
// encrypt/, decrypt/, rewrap/, datakey/

fn encrypt_item(p: &Policy, item: &Item<'_>) -> ItemResult {
    let pt = decode_input(
        item.plaintext
            .ok_or_else(|| user("missing plaintext to encrypt"))?,
        "plaintext",
    )?;
    if item.nonce.is_some() {
        // Only convergent encryption takes a caller nonce, and it is not offered.
        return Err(user("nonce provided when not allowed"));
    }
    seal_item(p, item, &pt)
}

/// Encrypts `pt` with the item's context, key version and associated data: the shared tail of
/// encrypt and rewrap.
fn seal_item(
    p: &Policy,
    item: &Item<'_>,
    pt: &SecretBytes,
) -> Result<Map<String, Value>, TransitError> {
    let ctx = decode_opt(item.context, "context")?;
    let aad = decode_opt(item.associated_data, "associated_data")?;
    let (ct, ver) = p.encrypt(
        item.key_version,
        ctx.as_ref().map(|c| c.expose()),
        pt.expose(),
        aad.as_ref().map(|a| a.expose()).unwrap_or(&[]),
    )?;
    let mut m = Map::new();
    m.insert("ciphertext".into(), Value::from(ct));
    m.insert("key_version".into(), Value::from(ver));
    Ok(m)
}

fn decrypt_item(p: &Policy, item: &Item<'_>) -> Result<SecretBytes, TransitError> {
    let ct = item
        .ciphertext
        .filter(|c| !c.is_empty())
        .ok_or_else(|| user("missing ciphertext to decrypt"))?;
    let ctx = decode_opt(item.context, "context")?;
    if item.nonce.is_some() {
        return Err(user("nonce provided when not allowed"));
    }
    let aad = decode_opt(item.associated_data, "associated_data")?;
    p.decrypt(
        ct,
        ctx.as_ref().map(|c| c.expose()),
        aad.as_ref().map(|a| a.expose()).unwrap_or(&[]),
    )
}

impl TransitEngine {
    async fn encrypt(&self, name: &str, req: &Request) -> ApiResult {
        let (items, batch) = items_of(req)?;
        if !batch && items.iter().any(|i| i.plaintext.is_none()) {
            return Err(ApiError::bad_request("missing plaintext to encrypt"));
        }
        let derived = context_set(&items)?;
        let p = match self.load_for_use(name).await? {
            Some(p) => p,
            None => self.upsert(name, derived, req).await?,
        };
        let results = items.iter().map(|i| encrypt_item(&p, i)).collect();
        finish(
            req,
            batch,
            &items,
            results,
            BatchStatus::Strict,
            &[],
            vec![],
        )
    }

    /// Creates the key encrypt was asked to use (Vault's upsert). The ACL already required
    /// `create` for this (see `exists`); a key created concurrently in between is used as is.
    async fn upsert(
        &self,
        name: &str,
        derived: bool,
        req: &Request,
    ) -> Result<Arc<Policy>, ApiError> {
        let type_name = str_field(body_of(req), "type", None)?.unwrap_or("aes256-gcm96");
        let key_type = match KeyType::parse(type_name) {
            Some(t) if t.is_aead() => t,
            Some(t) => {
                return Err(ApiError::bad_request(format!(
                    "key type {t} not supported for this operation"
                )))
            }
            None => {
                return Err(ApiError::bad_request(format!(
                    "unknown key type {type_name}"
                )))
            }
        };
        if bool_field(req.field("convergent_encryption"), "convergent_encryption")? == Some(true) {
            return Err(ApiError::bad_request(
                "convergent encryption is not supported",
            ));
        }
        let _guard = self.lock_for(name).lock().await;
        if let Some(p) = self.load_locked(name).await? {
            return Ok(p);
        }
        let p = Policy::new(name, key_type, derived, false, 0)?;
        self.store_locked(p).await
    }

    async fn decrypt(&self, name: &str, req: &Request) -> ApiResult {
        let (items, batch) = items_of(req)?;
        context_set(&items)?;
        let Some(p) = self.load_for_use(name).await? else {
            return Err(ApiError::bad_request("encryption key not found"));
        };
        let results = items
            .iter()
            .map(|i| {
                decrypt_item(&p, i).map(|pt| {
                    let mut m = Map::new();
                    m.insert("plaintext".into(), Value::from(B64.encode(pt.expose())));
                    m
                })
            })
            .collect();
        // Vault's decrypt batch items always carry `plaintext`, empty on error.
        let fill = [("plaintext", Value::from(""))];
        finish(
            req,
            batch,
            &items,
            results,
            BatchStatus::Strict,
            &fill,
            vec![],
        )
    }

    async fn rewrap(&self, name: &str, req: &Request) -> ApiResult {
        let (items, batch) = items_of(req)?;
        context_set(&items)?;
        let Some(p) = self.load_for_use(name).await? else {
            return Err(ApiError::bad_request("encryption key not found"));
        };
        let results = items
            .iter()
            .map(|i| {
                let pt = decrypt_item(&p, i)?;
                seal_item(&p, i, &pt)
            })
            .collect();
        finish(
            req,
            batch,
            &items,
            results,
            BatchStatus::Strict,
            &[],
            vec![],
        )
    }

    async fn datakey(&self, kind: &str, name: &str, req: &Request) -> ApiResult {
        let with_plaintext = match kind {
            "plaintext" => true,
            "wrapped" => false,
            _ => {
                return Err(ApiError::bad_request(
                    "Invalid path, must be 'plaintext' or 'wrapped'",
                ))
            }
        };
        let b = body_of(req);
        let ctx = str_field(b, "context", None)?
            .filter(|c| !c.is_empty())
            .map(|c| B64.decode(c).map(SecretBytes::new))
            .transpose()
            .map_err(|_| ApiError::bad_request("failed to base64-decode context"))?;
        if str_field(b, "nonce", None)?.is_some_and(|n| !n.is_empty()) {
            return Err(ApiError::bad_request("nonce provided when not allowed"));
        }
        let bits = uint_field(req.field("bits"), "bits")?.unwrap_or(256);
        let len = match bits {
            128 => 16,
            256 => 32,
            512 => 64,
            _ => return Err(ApiError::bad_request("invalid bit length")),
        };
        let ver = uint_field(req.field("key_version"), "key_version")?.unwrap_or(0);
        let Some(p) = self.load_for_use(name).await? else {
            return Err(ApiError::bad_request("encryption key not found"));
        };
        let data_key = KeyBytes::random(len)?;
        let (ct, ver) = p.encrypt(
            ver,
            ctx.as_ref().map(|c| c.expose()),
            data_key.expose(),
            &[],
        )?;
        let mut data = json!({ "ciphertext": ct, "key_version": ver });
        if with_plaintext {
            data["plaintext"] = Value::from(B64.encode(data_key.expose()));
        }
        Ok(reply(data, vec![], None))
    }
}

// ---------------------------------------------------------------------------------------------
// hmac/, sign/, verify/

/// `algorithm` from the URL, else the body field(s), else `sha2-256`.
fn algorithm_of<'a>(
    url_alg: Option<&'a str>,
    req: &'a Request,
    fields: &[&str],
) -> Result<&'a str, ApiError> {
    if let Some(a) = url_alg {
        return Ok(a);
    }
    for f in fields {
        if let Some(a) = str_field(body_of(req), f, None)?.filter(|a| !a.is_empty()) {
            return Ok(a);
        }
    }
    Ok("sha2-256")
}

/// Marshaling of signatures: `asn1` (Vault's default, standard base64 for Ed25519) or `jws`
/// (unpadded URL-safe base64).
fn jws_of(req: &Request) -> Result<bool, ApiError> {
    match str_field(body_of(req), "marshaling_algorithm", None)?.unwrap_or("asn1") {
        "asn1" => Ok(false),
        "jws" => Ok(true),
        other => Err(ApiError::bad_request(format!(
            "invalid marshaling type \"{other}\""
        ))),
    }
}

/// Hash names Vault accepts for `hash_algorithm` on sign/verify. Ed25519 signs the message
/// itself, so the name is only validated.
fn valid_sign_hash(s: &str) -> bool {
    matches!(
        s,
        "sha1"
            | "sha2-224"
            | "sha2-256"
            | "sha2-384"
            | "sha2-512"
            | "sha3-224"
            | "sha3-256"
            | "sha3-384"
            | "sha3-512"
    )
}

fn hmac_verify_item(p: &Policy, alg: HashAlg, item: &Item<'_>) -> ItemResult {
    let input = decode_input(item.input.unwrap_or(""), "input")
        .map_err(|e| user(format!("unable to decode input as base64: {e}")))?;
    let mac = item.hmac.ok_or_else(|| user("missing hmac"))?;
    let rest = mac
        .strip_prefix("vault:v")
        .ok_or_else(|| user("invalid HMAC to verify: no prefix"))?;
    let (ver, body) = rest
        .split_once(':')
        .ok_or_else(|| user("invalid HMAC: wrong number of fields"))?;
    let ver: u64 = ver
        .parse()
        .map_err(|_| user("invalid HMAC: version number could not be decoded"))?;
    let tag = B64.decode(body).map_err(|e| {
        user(format!(
            "unable to decode verification HMAC as base64: {}",
            go_b64_error(e)
        ))
    })?;
    if ver > p.latest_version {
        return Err(user("invalid HMAC: version is too new"));
    }
    if ver < p.min_decryption_version {
        return Err(user(
            "cannot verify HMAC: version is too old (disallowed by policy)",
        ));
    }
    let valid = alg.mac_verify(p.hmac_key(ver)?, input.expose(), &tag)?;
    let mut m = Map::new();
    m.insert("valid".into(), Value::from(valid));
    Ok(m)
}

impl TransitEngine {
    async fn hmac(&self, name: &str, url_alg: Option<&str>, req: &Request) -> ApiResult {
        let requested = uint_field(req.field("key_version"), "key_version")?.unwrap_or(0);
        let alg_name = algorithm_of(url_alg, req, &["algorithm"])?;
        let Some(p) = self.load_for_use(name).await? else {
            return Err(ApiError::bad_request("encryption key not found"));
        };
        let ver = match requested {
            0 => p.latest_version,
            v if p.min_encryption_version > 0 && v < p.min_encryption_version => {
                return Err(ApiError::bad_request(
                    "cannot generate HMAC: version is too old (disallowed by policy)",
                ))
            }
            v => v,
        };
        let key = p.hmac_key(ver)?;
        let alg = HashAlg::parse(alg_name).ok_or_else(|| {
            ApiError::bad_request(format!("unsupported algorithm \"{alg_name}\""))
        })?;
        let (items, batch) = items_of(req)?;
        if !batch && items.iter().any(|i| i.input.is_none()) {
            return Err(ApiError::bad_request("missing input for HMAC"));
        }
        let results = items
            .iter()
            .map(|i| {
                let raw = i.input.ok_or_else(|| user("missing input for HMAC"))?;
                let input = decode_input(raw, "input")
                    .map_err(|e| user(format!("unable to decode input as base64: {e}")))?;
                let mac = alg.mac(key, input.expose())?;
                let mut m = Map::new();
                m.insert(
                    "hmac".into(),
                    Value::from(format!("vault:v{ver}:{}", B64.encode(mac))),
                );
                Ok(m)
            })
            .collect();
        finish(
            req,
            batch,
            &items,
            results,
            BatchStatus::Lenient,
            &[],
            vec![],
        )
    }

    async fn sign(&self, name: &str, url_alg: Option<&str>, req: &Request) -> ApiResult {
        let requested = uint_field(req.field("key_version"), "key_version")?.unwrap_or(0);
        let jws = signature_options(url_alg, req)?;
        let Some(p) = self.load_for_use(name).await? else {
            return Err(ApiError::bad_request("signing key not found"));
        };
        if !p.key_type.is_signing() {
            return Err(ApiError::bad_request(format!(
                "key type {} does not support signing",
                p.key_type
            )));
        }
        let (items, batch) = items_of(req)?;
        let results = items
            .iter()
            .map(|i| {
                let input = decode_input(i.input.unwrap_or(""), "input")
                    .map_err(|e| user(format!("unable to decode input as base64: {e}")))?;
                let ctx = decode_opt(i.context, "context")
                    .map_err(|_| user("failed to base64-decode context"))?;
                let (sig, ver, public_key) = p.sign(
                    requested,
                    ctx.as_ref().map(|c| c.expose()),
                    input.expose(),
                    jws,
                )?;
                let mut m = Map::new();
                m.insert("signature".into(), Value::from(sig));
                m.insert("key_version".into(), Value::from(ver));
                if let Some(pk) = public_key {
                    m.insert("public_key".into(), Value::from(pk));
                }
                Ok(m)
            })
            .collect();
        finish(
            req,
            batch,
            &items,
            results,
            BatchStatus::Lenient,
            &[],
            vec![],
        )
    }

    /// Verifies signatures, or HMACs when the request carries `hmac` instead (Vault serves both
    /// on `verify/`).
    async fn verify(&self, name: &str, url_alg: Option<&str>, req: &Request) -> ApiResult {
        let (items, batch) = items_of(req)?;
        let sig_found = items.iter().any(|i| i.signature.is_some());
        let hmac_found = items
            .iter()
            .any(|i| i.signature.is_none() && i.hmac.is_some());
        let missing = items
            .iter()
            .any(|i| i.signature.is_none() && i.hmac.is_none());
        let msg = match (batch, sig_found, hmac_found, missing) {
            (false, true, true, _) => Some("provide one of 'signature' or 'hmac'"),
            (false, false, false, _) => {
                Some("neither a 'signature' nor an 'hmac' were given to verify")
            }
            (true, true, true, _) => {
                Some("elements of batch_input must all provide 'signature' or all provide 'hmac'")
            }
            (true, true, false, true) => {
                Some("some elements of batch_input are missing 'signature'")
            }
            (true, false, true, true) => Some("some elements of batch_input are missing 'hmac'"),
            (true, false, false, _) => Some("no batch_input elements have 'signature' or 'hmac'"),
            _ => None,
        };
        if let Some(m) = msg {
            return Err(ApiError::bad_request(m));
        }
        if hmac_found {
            let alg_name = algorithm_of(url_alg, req, &["algorithm"])?;
            let Some(p) = self.load_for_use(name).await? else {
                return Err(ApiError::bad_request("encryption key not found"));
            };
            let alg = HashAlg::parse(alg_name).ok_or_else(|| {
                ApiError::bad_request(format!("unsupported algorithm \"{alg_name}\""))
            })?;
            let results = items.iter().map(|i| hmac_verify_item(&p, alg, i)).collect();
            return finish(
                req,
                batch,
                &items,
                results,
                BatchStatus::Lenient,
                &[],
                vec![],
            );
        }

        let jws = signature_options(url_alg, req)?;
        let Some(p) = self.load_for_use(name).await? else {
            return Err(ApiError::bad_request(
                "signature verification key not found",
            ));
        };
        if !p.key_type.is_signing() {
            return Err(ApiError::bad_request(format!(
                "key type {} does not support verification",
                p.key_type
            )));
        }
        let results = items
            .iter()
            .map(|i| {
                let input = decode_input(i.input.unwrap_or(""), "input")
                    .map_err(|e| user(format!("unable to decode input as base64: {e}")))?;
                let sig = i.signature.ok_or_else(|| user("missing signature"))?;
                let ctx = decode_opt(i.context, "context")
                    .map_err(|_| user("failed to base64-decode context"))?;
                let valid = p.verify(ctx.as_ref().map(|c| c.expose()), input.expose(), sig, jws)?;
                let mut m = Map::new();
                m.insert("valid".into(), Value::from(valid));
                Ok(m)
            })
            .collect();
        finish(
            req,
            batch,
            &items,
            results,
            BatchStatus::Lenient,
            &[],
            vec![],
        )
    }
}

// ---------------------------------------------------------------------------------------------
// random/, hash/ (no key involved)

fn output_format(req: &Request, default: &str) -> Result<bool, ApiError> {
    let f = str_field(body_of(req), "format", None)?
        .filter(|f| !f.is_empty())
        .unwrap_or(default);
    match f {
        "hex" => Ok(true),
        "base64" => Ok(false),
        other => Err(ApiError::bad_request(format!(
            "unsupported encoding format \"{other}\"; must be \"hex\" or \"base64\""
        ))),
    }
}

/// `random`, `random/<bytes>`, `random/<source>`, `random/<source>/<bytes>` (Vault's
/// `HandleRandomAPI`). Every source reads the OS RNG: this server has no seal entropy.
fn random(rest: &[&str], req: &Request) -> ApiResult {
    const SOURCES: [&str; 3] = ["platform", "seal", "all"];
    let body_bytes = || uint_field(req.field("bytes"), "bytes").map(|b| b.unwrap_or(32));
    let parse_url = |s: &str| {
        s.parse::<u64>().map_err(|_| {
            ApiError::bad_request(format!(
                "error parsing url-set byte count: invalid syntax {s:?}"
            ))
        })
    };
    let (source, bytes) = match rest {
        [] => ("platform", body_bytes()?),
        [s] if SOURCES.contains(s) => (*s, body_bytes()?),
        [n] => ("platform", parse_url(n)?),
        [s, n] => (*s, parse_url(n)?),
        _ => return Err(ApiError::no_route(&req.path)),
    };
    if !SOURCES.contains(&source) {
        return Err(ApiError::bad_request(format!(
            "unsupported entropy source {source:?}; must be \"platform\" or \"seal\", or \"all\""
        )));
    }
    if bytes < 1 {
        return Err(ApiError::bad_request("\"bytes\" cannot be less than 1"));
    }
    if bytes > MAX_RANDOM_BYTES {
        return Err(ApiError::bad_request(format!(
            "\"bytes\" should be less than {MAX_RANDOM_BYTES}"
        )));
    }
    let hex = output_format(req, "base64")?;
    // Bounded above, so the cast cannot truncate.
    let buf = KeyBytes::random(bytes as usize)?;
    let out = if hex {
        hex::encode(buf.expose())
    } else {
        B64.encode(buf.expose())
    };
    Ok(reply(json!({ "random_bytes": out }), vec![], None))
}

/// `hash[/<algorithm>]` (Vault's `pathHashWrite`): `{"sum": …}`, hex by default.
fn hash(url_alg: Option<&str>, req: &Request) -> ApiResult {
    let input = decode_input(
        str_field(body_of(req), "input", None)?.unwrap_or(""),
        "input",
    )
    .map_err(|e| ApiError::bad_request(format!("unable to decode input as base64: {e}")))?;
    let hex = output_format(req, "hex")?;
    let alg_name = algorithm_of(url_alg, req, &["algorithm"])?;
    let alg = HashAlg::parse(alg_name)
        .ok_or_else(|| ApiError::bad_request(format!("unsupported algorithm {alg_name}")))?;
    let sum = alg.digest(input.expose());
    let out = if hex {
        hex::encode(sum)
    } else {
        B64.encode(sum)
    };
    Ok(reply(json!({ "sum": out }), vec![], None))
}

/// The options `sign` and `verify` share: the hash algorithm is checked (ed25519 signs the
/// message itself, so it only has to be valid), prehashed input is refused, and the JWS flag
/// is returned.
fn signature_options(url_alg: Option<&str>, req: &Request) -> Result<bool, ApiError> {
    let hash_name = algorithm_of(url_alg, req, &["hash_algorithm", "algorithm"])?;
    if !valid_sign_hash(hash_name) {
        return Err(ApiError::bad_request(format!(
            "invalid hash algorithm \"{hash_name}\""
        )));
    }
    let jws = jws_of(req)?;
    if bool_field(req.field("prehashed"), "prehashed")? == Some(true) {
        return Err(ApiError::bad_request(
            "prehashed input is not supported for ed25519 keys",
        ));
    }
    Ok(jws)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(kt: KeyType, derived: bool) -> Policy {
        Policy::new("k", kt, derived, false, 0).unwrap()
    }

    #[test]
    fn debug_is_redacted() {
        let p = policy(KeyType::Aes256Gcm96, false);
        let key = p.versions[&1].key.expose().to_vec();
        let dbg = format!("{p:?}");
        assert!(dbg.contains("[REDACTED]"));
        assert!(!dbg.contains(&B64.encode(&key)));
        assert!(!dbg.contains(&hex::encode(&key)));
        assert!(!dbg.contains(&format!("{key:?}")));
        assert_eq!(
            format!("{:?}", p.versions[&1].hmac_key),
            "KeyBytes([REDACTED])"
        );
    }

    #[test]
    fn storage_round_trip_keeps_key_material() {
        let p = policy(KeyType::ChaCha20Poly1305, true);
        let enc = p.encode().unwrap();
        let back: Policy = serde_json::from_slice(&enc).unwrap();
        assert_eq!(back.versions[&1].key.expose(), p.versions[&1].key.expose());
        assert_eq!(back.key_type, KeyType::ChaCha20Poly1305);
        assert!(back.derived);
    }

    #[test]
    fn corrupt_key_material_is_an_error_without_detail() {
        let bad = r#"{"name":"k","type":"aes256-gcm96","derived":false,"deletion_allowed":false,
            "allow_plaintext_backup":false,"auto_rotate_period":0,"min_available_version":0,
            "min_decryption_version":1,"min_encryption_version":0,"latest_version":1,
            "versions":{"1":{"key":"c2VjcmV0!!","hmac_key":"","created_ns":0}}}"#;
        let err = serde_json::from_str::<Policy>(bad).unwrap_err().to_string();
        assert!(err.contains("invalid key material encoding"));
        assert!(!err.contains("c2VjcmV0"));
    }

    #[test]
    fn aead_round_trip_every_type() {
        for kt in [
            KeyType::Aes128Gcm96,
            KeyType::Aes256Gcm96,
            KeyType::ChaCha20Poly1305,
        ] {
            let p = policy(kt, false);
            let (ct, v) = p.encrypt(0, None, b"hello", b"ad").unwrap();
            assert_eq!(v, 1);
            assert!(ct.starts_with("vault:v1:"));
            let blob = B64.decode(&ct["vault:v1:".len()..]).unwrap();
            assert_eq!(blob.len(), NONCE_LEN + 5 + TAG_LEN);
            assert_eq!(p.decrypt(&ct, None, b"ad").unwrap().expose(), b"hello");
        }
    }

    #[test]
    fn tampered_ciphertext_fails() {
        let p = policy(KeyType::Aes256Gcm96, false);
        let (ct, _) = p.encrypt(0, None, b"hello", b"").unwrap();
        let mut blob = B64.decode(&ct["vault:v1:".len()..]).unwrap();
        blob[NONCE_LEN] ^= 1;
        let bad = format!("vault:v1:{}", B64.encode(&blob));
        assert_eq!(
            p.decrypt(&bad, None, b"").unwrap_err().to_string(),
            ERR_AUTH_FAILED
        );
    }

    #[test]
    fn wrong_associated_data_fails() {
        let p = policy(KeyType::ChaCha20Poly1305, false);
        let (ct, _) = p.encrypt(0, None, b"x", b"one").unwrap();
        assert_eq!(
            p.decrypt(&ct, None, b"two").unwrap_err().to_string(),
            ERR_AUTH_FAILED
        );
    }

    #[test]
    fn short_ciphertexts_fail_cleanly() {
        let p = policy(KeyType::Aes256Gcm96, false);
        let short = format!("vault:v1:{}", B64.encode([0u8; 5]));
        assert_eq!(
            p.decrypt(&short, None, b"").unwrap_err().to_string(),
            "invalid ciphertext length"
        );
        let no_tag = format!("vault:v1:{}", B64.encode([0u8; 20]));
        assert_eq!(
            p.decrypt(&no_tag, None, b"").unwrap_err().to_string(),
            ERR_AUTH_FAILED
        );
    }

    #[test]
    fn derived_key_is_hkdf_sha256_of_context() {
        let p = policy(KeyType::Aes256Gcm96, true);
        let k1 = p.key_for(1, Some(b"ctx")).unwrap().bytes().to_vec();
        let mut expect = [0u8; 32];
        Hkdf::<Sha256>::new(None, p.versions[&1].key.expose())
            .expand(b"ctx", &mut expect)
            .unwrap();
        assert_eq!(k1, expect);
        assert_ne!(k1, p.key_for(1, Some(b"other")).unwrap().bytes());
        assert_eq!(
            p.key_for(1, None).err().unwrap().to_string(),
            ERR_MISSING_CONTEXT
        );
    }

    #[test]
    fn parse_errors_have_vault_messages() {
        let cases = [
            ("nope", "invalid ciphertext: no prefix"),
            ("vault:v1", "invalid ciphertext: wrong number of fields"),
            (
                "vault:vX:abc",
                "invalid ciphertext: version number could not be decoded",
            ),
        ];
        for (input, msg) in cases {
            assert_eq!(
                parse_versioned(input, "ciphertext")
                    .unwrap_err()
                    .to_string(),
                msg
            );
        }
        assert_eq!(parse_versioned("vault:v12:a:b", "x").unwrap(), (12, "a:b"));
    }

    #[test]
    fn go_base64_leniency_and_messages() {
        // Non-zero trailing bits are accepted, as Go's StdEncoding does.
        assert_eq!(B64.decode("aGk=").unwrap(), b"hi");
        assert_eq!(B64.decode("aGl=").unwrap(), b"hi");
        let e = decode_input("ab!d", "x").unwrap_err().to_string();
        assert_eq!(e, "illegal base64 data at input byte 2");
    }

    #[test]
    fn names_follow_vault_regex() {
        for ok in ["a", "my-key", "a.b@c_d", "K1"] {
            assert!(valid_name(ok), "{ok}");
        }
        for bad in [
            "",
            "-a",
            "a-",
            "a/b",
            "a b",
            ".",
            &"x".repeat(MAX_NAME_LEN + 1),
        ] {
            assert!(!valid_name(bad), "{bad}");
        }
    }

    #[test]
    fn rotation_is_capped() {
        let mut p = policy(KeyType::Aes128Gcm96, false);
        for _ in 1..MAX_LIVE_VERSIONS {
            p.rotate().unwrap();
        }
        assert!(matches!(p.rotate(), Err(TransitError::User(_))));
    }

    #[test]
    fn auto_rotation_due_after_period() {
        let mut p = policy(KeyType::Aes256Gcm96, false);
        let created = p.versions[&1].created_ns;
        assert!(!p.rotation_due(created + 10_000_000_000_000));
        p.auto_rotate_period = 3600;
        assert!(!p.rotation_due(created + 3599 * 1_000_000_000));
        assert!(p.rotation_due(created + 3600 * 1_000_000_000));
    }

    #[test]
    fn ed25519_sign_verify_and_tamper() {
        let p = policy(KeyType::Ed25519, false);
        let (sig, v, pk) = p.sign(0, None, b"msg", false).unwrap();
        assert_eq!(v, 1);
        assert!(pk.is_none());
        assert!(p.verify(None, b"msg", &sig, false).unwrap());
        assert!(!p.verify(None, b"msh", &sig, false).unwrap());
        let (jws, _, _) = p.sign(0, None, b"msg", true).unwrap();
        assert!(p.verify(None, b"msg", &jws, true).unwrap());
    }

    #[test]
    fn hmac_verify_is_exact() {
        let key = [7u8; 32];
        let tag = HashAlg::Sha256.mac(&key, b"data").unwrap();
        assert!(HashAlg::Sha256.mac_verify(&key, b"data", &tag).unwrap());
        assert!(!HashAlg::Sha256
            .mac_verify(&key, b"data", &tag[..31])
            .unwrap());
        assert!(!HashAlg::Sha384.mac_verify(&key, b"data", &tag).unwrap());
    }
}
