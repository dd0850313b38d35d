//! The transit secrets engine (encryption as a service), mounted at `transit/` by default.
//!
//! Shapes follow Vault's transit backend as hvac sends them (API reference, section 2.3):
//! named keys under `<mount>/keys/<name>`, and `encrypt`, `decrypt`, `rewrap` under their own
//! prefixes. Plaintext and context travel base64-encoded; ciphertext is Vault's
//! `vault:v<version>:<base64>` text, which is not secret and is kept in a plain `String`.
//! Plaintext is only ever held in [`SecretBytes`] (and its base64 form in a zeroized buffer).

use std::collections::BTreeMap;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde::{Deserialize, Deserializer, Serialize};
use shroud_core::{SecretBytes, SecretString};
use zeroize::Zeroizing;

use crate::client::{Client, Method};
use crate::error::clean_server_errors;
use crate::kv2::missing;
use crate::path::join;
use crate::ClientError;

/// Most items sent in one batch request. Vault has no fixed limit; this bounds the request
/// and the response the client holds in memory.
pub const MAX_BATCH_ITEMS: usize = 10_000;

/// Parameters of `POST <mount>/keys/<name>`. `None` fields are left to the server's defaults
/// (an `aes256-gcm96` key, not derived, not exportable).
#[derive(Debug, Clone, Default, Serialize)]
pub struct KeyCreateRequest {
    /// Key type: `aes256-gcm96`, `chacha20-poly1305`, `ed25519`, ...
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub key_type: Option<String>,
    /// Derive a key per `context` (HKDF); every call must then send a context.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub derived: bool,
    /// Rotate automatically with this period (Vault duration, 0 or at least 1h).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auto_rotate_period: Option<String>,
}

/// Fields of `POST <mount>/keys/<name>/config`. `None` fields keep their value.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct KeyConfig {
    /// Oldest key version that may decrypt (older ciphertext is refused).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_decryption_version: Option<u64>,
    /// Oldest key version that may encrypt; 0 = always the latest.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_encryption_version: Option<u64>,
    /// Whether `DELETE <mount>/keys/<name>` is allowed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deletion_allowed: Option<bool>,
    /// Automatic rotation period (Vault duration, 0 = off, else at least 1h).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auto_rotate_period: Option<String>,
}

impl KeyConfig {
    /// True if no field is set (the request would change nothing).
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// One version of a key in [`TransitKey::keys`]. Vault reports symmetric versions as their
/// Unix creation time, asymmetric ones as an object with the public key.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct KeyVersion {
    /// Unix seconds of creation (symmetric keys).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_unix: Option<i64>,
    /// RFC 3339 creation time (asymmetric keys).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub creation_time: Option<String>,
    /// The public key of this version (asymmetric keys; not secret).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_key: Option<String>,
}

impl<'de> Deserialize<'de> for KeyVersion {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Unix(i64),
            Object {
                #[serde(default)]
                creation_time: Option<String>,
                #[serde(default)]
                public_key: Option<String>,
            },
        }
        Ok(match Raw::deserialize(d)? {
            Raw::Unix(t) => KeyVersion {
                created_unix: Some(t),
                ..Default::default()
            },
            Raw::Object {
                creation_time,
                public_key,
            } => KeyVersion {
                created_unix: None,
                creation_time,
                public_key: public_key.filter(|k| !k.is_empty()),
            },
        })
    }
}

/// A key's policy as `GET <mount>/keys/<name>` reports it (never key material).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default)]
pub struct TransitKey {
    /// Key name.
    pub name: String,
    /// Key type, e.g. `aes256-gcm96`.
    #[serde(rename = "type")]
    pub key_type: String,
    /// True if keys are derived per context.
    pub derived: bool,
    /// True if the key may be deleted.
    pub deletion_allowed: bool,
    /// True if the key may be exported.
    pub exportable: bool,
    /// Newest version.
    pub latest_version: u64,
    /// Oldest version still stored (older ones were trimmed).
    pub min_available_version: u64,
    /// Oldest version allowed to decrypt.
    pub min_decryption_version: u64,
    /// Oldest version allowed to encrypt; 0 = the latest.
    pub min_encryption_version: u64,
    /// True if the key type can encrypt.
    pub supports_encryption: bool,
    /// True if the key type can decrypt.
    pub supports_decryption: bool,
    /// True if the key type can derive.
    pub supports_derivation: bool,
    /// True if the key type can sign.
    pub supports_signing: bool,
    /// Automatic rotation period in seconds; 0 = off.
    #[serde(deserialize_with = "seconds")]
    pub auto_rotate_period: u64,
    /// Key versions, by number.
    #[serde(deserialize_with = "versions")]
    pub keys: BTreeMap<u64, KeyVersion>,
}

/// Accepts integer seconds (current Vault) or a duration string (older servers).
fn seconds<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Int(u64),
        Text(String),
        Null(()),
    }
    match Raw::deserialize(d)? {
        Raw::Int(n) => Ok(n),
        Raw::Text(s) => shroud_core::duration::parse(&s)
            .map(|d| d.as_secs())
            .map_err(serde::de::Error::custom),
        Raw::Null(()) => Ok(0),
    }
}

/// Versions arrive as a JSON object with decimal keys (`{"1": ..., "2": ...}`).
fn versions<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<u64, KeyVersion>, D::Error> {
    let raw: Option<BTreeMap<String, KeyVersion>> = Option::deserialize(d)?;
    raw.unwrap_or_default()
        .into_iter()
        .map(|(k, v)| {
            k.parse::<u64>()
                .map(|n| (n, v))
                .map_err(|_| serde::de::Error::custom("key version is not a number"))
        })
        .collect()
}

/// A ciphertext and the key version that produced it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct Ciphertext {
    /// `vault:v<N>:<base64>`.
    pub ciphertext: String,
    /// `N`. Older servers omit it; it is then read from the prefix.
    #[serde(default)]
    pub key_version: u64,
}

impl Ciphertext {
    fn with_version(mut self) -> Self {
        if self.key_version == 0 {
            self.key_version = ciphertext_version(&self.ciphertext).unwrap_or(0);
        }
        self
    }
}

/// The key version of a `vault:v<N>:...` ciphertext, if it has that shape.
pub fn ciphertext_version(ciphertext: &str) -> Option<u64> {
    let rest = ciphertext.strip_prefix("vault:v")?;
    let (n, _) = rest.split_once(':')?;
    n.parse().ok()
}

#[derive(Serialize)]
struct EncryptBody<'a> {
    plaintext: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    context: Option<&'a str>,
}

#[derive(Serialize)]
struct CiphertextBody<'a> {
    ciphertext: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    context: Option<&'a str>,
}

#[derive(Serialize)]
struct BatchBody<'a> {
    batch_input: Vec<CiphertextBody<'a>>,
}

#[derive(Deserialize)]
struct Envelope<T> {
    data: Option<T>,
}

#[derive(Deserialize)]
struct KeysBody {
    #[serde(default)]
    keys: Vec<String>,
}

#[derive(Deserialize)]
struct PlaintextBody {
    plaintext: SecretString,
}

#[derive(Deserialize)]
struct BatchResults {
    #[serde(default)]
    batch_results: Option<Vec<BatchItem>>,
}

#[derive(Deserialize)]
struct BatchItem {
    #[serde(default)]
    ciphertext: Option<String>,
    #[serde(default)]
    key_version: u64,
    #[serde(default)]
    error: Option<String>,
}

/// Transit operations on one mount; get one with [`Client::transit`].
#[derive(Debug, Clone)]
pub struct Transit<'a> {
    client: &'a Client,
    mount: String,
}

impl Client {
    /// The transit engine mounted at `mount` (e.g. `"transit"`).
    pub fn transit(&self, mount: &str) -> Transit<'_> {
        Transit {
            client: self,
            mount: mount.trim_matches('/').to_owned(),
        }
    }
}

impl Transit<'_> {
    fn path(&self, section: &str, name: &str) -> String {
        join(&[&self.mount, section, name])
    }

    /// `POST <mount>/keys/<name>`: creates a key (re-creating an existing key is a no-op with
    /// a warning in Vault).
    pub async fn create_key(&self, name: &str, req: &KeyCreateRequest) -> Result<(), ClientError> {
        self.client
            .send_ok(Method::Post, &self.path("keys", name), &[], Some(req))
            .await
            .map(drop)
    }

    /// `LIST <mount>/keys`: key names (empty when there are none: Vault answers 404).
    pub async fn list_keys(&self) -> Result<Vec<String>, ClientError> {
        let raw = self
            .client
            .send::<()>(Method::List, &join(&[&self.mount, "keys"]), &[], None)
            .await?;
        if raw.status == 404 {
            return Ok(Vec::new());
        }
        if !raw.is_success() {
            return Err(raw.into_api_error());
        }
        let env: Envelope<KeysBody> = raw.json("transit list keys")?;
        Ok(env.data.map(|d| d.keys).unwrap_or_default())
    }

    /// `GET <mount>/keys/<name>`; `Ok(None)` if there is no such key.
    pub async fn read_key(&self, name: &str) -> Result<Option<TransitKey>, ClientError> {
        let raw = self
            .client
            .send::<()>(Method::Get, &self.path("keys", name), &[], None)
            .await?;
        if raw.status == 404 {
            return Ok(None);
        }
        if !raw.is_success() {
            return Err(raw.into_api_error());
        }
        let env: Envelope<TransitKey> = raw.json("transit read key")?;
        env.data
            .map(Some)
            .ok_or_else(|| missing("transit read key", "data"))
    }

    /// `POST <mount>/keys/<name>/rotate`: adds a new version that encrypts from now on; old
    /// versions keep decrypting down to `min_decryption_version`. Returns the key as it is
    /// after the rotation (read back when the server answers 204, as older Vaults do).
    pub async fn rotate_key(&self, name: &str) -> Result<TransitKey, ClientError> {
        let path = join(&[&self.mount, "keys", name, "rotate"]);
        let raw = self
            .client
            .send_ok::<()>(Method::Post, &path, &[], None)
            .await?;
        self.key_from_answer(name, &raw.body, "transit rotate key")
            .await
    }

    /// `POST <mount>/keys/<name>/config`. Returns the key as it is afterwards.
    pub async fn configure_key(
        &self,
        name: &str,
        config: &KeyConfig,
    ) -> Result<TransitKey, ClientError> {
        let path = join(&[&self.mount, "keys", name, "config"]);
        let raw = self
            .client
            .send_ok(Method::Post, &path, &[], Some(config))
            .await?;
        self.key_from_answer(name, &raw.body, "transit key config")
            .await
    }

    async fn key_from_answer(
        &self,
        name: &str,
        body: &[u8],
        what: &str,
    ) -> Result<TransitKey, ClientError> {
        if !body.iter().all(u8::is_ascii_whitespace) {
            let env: Envelope<TransitKey> =
                serde_json::from_slice(body).map_err(|_| ClientError::InvalidResponse {
                    reason: format!("{what}: the body is not a key"),
                })?;
            if let Some(k) = env.data {
                return Ok(k);
            }
        }
        self.read_key(name)
            .await?
            .ok_or_else(|| missing(what, "data"))
    }

    /// `DELETE <mount>/keys/<name>`: fails with 400 unless the key has `deletion_allowed`.
    pub async fn delete_key(&self, name: &str) -> Result<(), ClientError> {
        self.client
            .send_ok::<()>(Method::Delete, &self.path("keys", name), &[], None)
            .await
            .map(drop)
    }

    /// `POST <mount>/encrypt/<name>`. The server creates an `aes256-gcm96` key on first use if
    /// the token may (Vault's upsert). `context` is base64, required for derived keys.
    pub async fn encrypt(
        &self,
        name: &str,
        plaintext: &SecretBytes,
        context: Option<&str>,
    ) -> Result<Ciphertext, ClientError> {
        let b64 = Zeroizing::new(STANDARD.encode(plaintext.expose()));
        let body = EncryptBody {
            plaintext: &b64,
            context,
        };
        let env: Envelope<Ciphertext> = self
            .client
            .send_ok(Method::Post, &self.path("encrypt", name), &[], Some(&body))
            .await?
            .json("transit encrypt")?;
        env.data
            .map(Ciphertext::with_version)
            .ok_or_else(|| missing("transit encrypt", "data"))
    }

    /// `POST <mount>/decrypt/<name>`: the exact plaintext bytes.
    pub async fn decrypt(
        &self,
        name: &str,
        ciphertext: &str,
        context: Option<&str>,
    ) -> Result<SecretBytes, ClientError> {
        let body = CiphertextBody {
            ciphertext,
            context,
        };
        let env: Envelope<PlaintextBody> = self
            .client
            .send_ok(Method::Post, &self.path("decrypt", name), &[], Some(&body))
            .await?
            .json("transit decrypt")?;
        let b64 = env
            .data
            .ok_or_else(|| missing("transit decrypt", "data"))?
            .plaintext;
        let bytes = STANDARD
            .decode(b64.expose())
            .map_err(|_| ClientError::InvalidResponse {
                reason: "transit decrypt: the plaintext is not base64".to_owned(),
            })?;
        Ok(SecretBytes::new(bytes))
    }

    /// `POST <mount>/rewrap/<name>`: re-encrypts `ciphertext` under the latest key version
    /// without the plaintext ever leaving the server.
    pub async fn rewrap(
        &self,
        name: &str,
        ciphertext: &str,
        context: Option<&str>,
    ) -> Result<Ciphertext, ClientError> {
        let body = CiphertextBody {
            ciphertext,
            context,
        };
        let env: Envelope<Ciphertext> = self
            .client
            .send_ok(Method::Post, &self.path("rewrap", name), &[], Some(&body))
            .await?
            .json("transit rewrap")?;
        env.data
            .map(Ciphertext::with_version)
            .ok_or_else(|| missing("transit rewrap", "data"))
    }

    /// `POST <mount>/rewrap/<name>` with `batch_input`: one result per input, in order. A
    /// per-item failure is that item's `Err(message)`; Vault then answers 400 with the full
    /// `batch_results`, which is not a failure of the call.
    pub async fn rewrap_batch(
        &self,
        name: &str,
        ciphertexts: &[&str],
        context: Option<&str>,
    ) -> Result<Vec<Result<Ciphertext, String>>, ClientError> {
        if ciphertexts.len() > MAX_BATCH_ITEMS {
            return Err(ClientError::InvalidRequest {
                reason: format!("at most {MAX_BATCH_ITEMS} items per batch"),
            });
        }
        let body = BatchBody {
            batch_input: ciphertexts
                .iter()
                .map(|c| CiphertextBody {
                    ciphertext: c,
                    context,
                })
                .collect(),
        };
        let raw = self
            .client
            .send(Method::Post, &self.path("rewrap", name), &[], Some(&body))
            .await?;
        let parsed: Option<Envelope<BatchResults>> = if raw.is_success() || raw.status == 400 {
            serde_json::from_slice(&raw.body).ok()
        } else {
            None
        };
        let results = match parsed.and_then(|e| e.data).and_then(|d| d.batch_results) {
            Some(r) => r,
            None if raw.is_success() => return Err(missing("transit rewrap", "batch_results")),
            None => return Err(raw.into_api_error()),
        };
        if results.len() != ciphertexts.len() {
            return Err(ClientError::InvalidResponse {
                reason: format!(
                    "transit rewrap: {} results for {} inputs",
                    results.len(),
                    ciphertexts.len()
                ),
            });
        }
        Ok(results
            .into_iter()
            .map(
                |item| match (item.error.filter(|e| !e.is_empty()), item.ciphertext) {
                    (None, Some(ciphertext)) => Ok(Ciphertext {
                        ciphertext,
                        key_version: item.key_version,
                    }
                    .with_version()),
                    (Some(e), _) => Err(clean_server_errors(vec![e])
                        .into_iter()
                        .next()
                        .unwrap_or_else(|| "failed".to_owned())),
                    (None, None) => Err("no ciphertext in the result".to_owned()),
                },
            )
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_parses_symmetric_and_asymmetric_versions() {
        let k: TransitKey = serde_json::from_str(
            r#"{"name":"k","type":"aes256-gcm96","latest_version":2,"min_decryption_version":1,
                "auto_rotate_period":0,"keys":{"1":1700000000,"2":1700000100},"kdf":"hkdf_sha256"}"#,
        )
        .unwrap();
        assert_eq!(k.keys.len(), 2);
        assert_eq!(k.keys[&2].created_unix, Some(1_700_000_100));
        let k: TransitKey = serde_json::from_str(
            r#"{"name":"s","type":"ed25519","auto_rotate_period":"1h0m0s",
                "keys":{"1":{"creation_time":"2026-01-01T00:00:00Z","name":"ed25519",
                "public_key":"cHVi"}}}"#,
        )
        .unwrap();
        assert_eq!(k.auto_rotate_period, 3600);
        assert_eq!(k.keys[&1].public_key.as_deref(), Some("cHVi"));
    }

    #[test]
    fn non_numeric_key_version_is_an_error() {
        let r: Result<TransitKey, _> = serde_json::from_str(r#"{"keys":{"one":1}}"#);
        assert!(r.is_err());
    }

    #[test]
    fn ciphertext_version_is_read_from_the_prefix() {
        assert_eq!(ciphertext_version("vault:v3:abcd"), Some(3));
        assert_eq!(ciphertext_version("vault:vx:abcd"), None);
        assert_eq!(ciphertext_version("v3:abcd"), None);
    }

    #[test]
    fn config_omits_unset_fields() {
        let c = KeyConfig {
            min_decryption_version: Some(2),
            deletion_allowed: Some(true),
            ..Default::default()
        };
        assert_eq!(
            serde_json::to_value(&c).unwrap(),
            serde_json::json!({"min_decryption_version":2,"deletion_allowed":true})
        );
        assert!(KeyConfig::default().is_empty());
        let r = KeyCreateRequest {
            key_type: Some("chacha20-poly1305".into()),
            derived: true,
            ..Default::default()
        };
        assert_eq!(
            serde_json::to_value(&r).unwrap(),
            serde_json::json!({"type":"chacha20-poly1305","derived":true})
        );
    }
}
