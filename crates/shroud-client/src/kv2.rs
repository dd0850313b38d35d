//! The KV version 2 secrets engine: versioned key/value entries under a mount (`secret/`).
//!
//! Shapes follow vault-plugin-secrets-kv (see the API reference, section 2.1): data lives at
//! `<mount>/data/<key>`, metadata and listing at `<mount>/metadata/<key>`, and soft-delete,
//! undelete and destroy at their own prefixes. Values read from the server are held in
//! [`SecretString`]s inside [`KvData`].

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use shroud_core::SecretString;

use crate::client::{Client, Method};
use crate::path::join;
use crate::ClientError;

/// One value of a KV entry.
#[derive(Clone, PartialEq, Eq)]
pub enum KvValue {
    /// A JSON string (what `shroud secret` writes).
    String(SecretString),
    /// Any other JSON value (number, bool, object, array, null), kept as its compact JSON text
    /// so that writing it back preserves its type.
    Json(SecretString),
}

impl fmt::Debug for KvValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KvValue::String(_) => f.write_str("String([REDACTED])"),
            KvValue::Json(_) => f.write_str("Json([REDACTED])"),
        }
    }
}

impl Serialize for KvValue {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            KvValue::String(v) => s.serialize_str(v.expose()),
            KvValue::Json(text) => {
                let v: serde_json::Value =
                    serde_json::from_str(text.expose()).map_err(serde::ser::Error::custom)?;
                v.serialize(s)
            }
        }
    }
}

impl<'de> Deserialize<'de> for KvValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // The intermediate Value of a non-string is not zeroized; strings (the common case)
        // move straight into a SecretString without a copy.
        Ok(match serde_json::Value::deserialize(d)? {
            serde_json::Value::String(s) => KvValue::String(SecretString::new(s)),
            other => KvValue::Json(SecretString::new(other.to_string())),
        })
    }
}

/// The `data` map of a KV v2 entry. `Debug` shows the field names, never the values.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct KvData(BTreeMap<String, KvValue>);

impl KvData {
    /// An empty map.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `key` to a string value.
    pub fn insert_str(&mut self, key: impl Into<String>, value: SecretString) {
        self.0.insert(key.into(), KvValue::String(value));
    }

    /// Sets `key` to any value.
    pub fn insert(&mut self, key: impl Into<String>, value: KvValue) {
        self.0.insert(key.into(), value);
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&KvValue> {
        self.0.get(key)
    }

    /// The value of `key` if it is a JSON string.
    pub fn get_str(&self, key: &str) -> Option<&SecretString> {
        match self.0.get(key) {
            Some(KvValue::String(s)) => Some(s),
            _ => None,
        }
    }

    /// Field names, sorted.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }

    /// Number of fields.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True if there are no fields.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The whole map as JSON text, in a [`SecretString`] (for printing a multi-field entry).
    pub fn to_json(&self) -> Result<SecretString, ClientError> {
        serde_json::to_string(self)
            .map(SecretString::new)
            .map_err(ClientError::Encode)
    }
}

impl fmt::Debug for KvData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.0.iter()).finish()
    }
}

impl Serialize for KvData {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

impl<'de> Deserialize<'de> for KvData {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = KvData;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<KvData, A::Error> {
                let mut out = BTreeMap::new();
                while let Some((k, v)) = map.next_entry::<String, KvValue>()? {
                    out.insert(k, v);
                }
                Ok(KvData(out))
            }
        }
        d.deserialize_map(V)
    }
}

/// Metadata of one version, as returned by a data read or write.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default)]
pub struct VersionMetadata {
    /// RFC 3339 creation time.
    pub created_time: String,
    /// RFC 3339 soft-deletion time, `""` when not deleted.
    pub deletion_time: String,
    /// True once destroyed (data gone for good).
    pub destroyed: bool,
    /// Version number, from 1.
    pub version: u64,
    /// The key's custom metadata (labels); `None` when unset.
    pub custom_metadata: Option<BTreeMap<String, String>>,
}

/// A version read from `<mount>/data/<key>`.
#[derive(Debug, Clone)]
pub struct KvSecret {
    /// The data; `None` when the version is soft-deleted or destroyed (Vault answers those with
    /// 404 and metadata only).
    pub data: Option<KvData>,
    /// The version's metadata.
    pub metadata: VersionMetadata,
}

/// Per-version entry in [`KeyMetadata::versions`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default)]
pub struct VersionInfo {
    /// RFC 3339 creation time.
    pub created_time: String,
    /// RFC 3339 soft-deletion time, `""` when not deleted.
    pub deletion_time: String,
    /// True once destroyed.
    pub destroyed: bool,
}

/// Metadata of a key, from `<mount>/metadata/<key>`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default)]
pub struct KeyMetadata {
    /// True if writes must carry `cas`.
    pub cas_required: bool,
    /// RFC 3339 time the key was created.
    pub created_time: String,
    /// Latest version number.
    pub current_version: u64,
    /// Labels; `None` when unset.
    pub custom_metadata: Option<BTreeMap<String, String>>,
    /// Go duration string, `"0s"` for never.
    pub delete_version_after: String,
    /// Versions kept; 0 means the mount default.
    pub max_versions: u64,
    /// Oldest version still kept.
    pub oldest_version: u64,
    /// RFC 3339 time of the last write.
    pub updated_time: String,
    /// Every version kept, by number (JSON object keys `"1"`, `"2"`, ...).
    pub versions: BTreeMap<u64, VersionInfo>,
}

/// Fields of a metadata write. `None` fields are not sent and keep their value on the server.
#[derive(Debug, Clone, Default, Serialize)]
pub struct MetadataUpdate {
    /// Labels, replacing the existing ones.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub custom_metadata: Option<BTreeMap<String, String>>,
    /// Versions to keep.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_versions: Option<u64>,
    /// Require `cas` on writes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cas_required: Option<bool>,
}

#[derive(Deserialize)]
struct Envelope<T> {
    data: Option<T>,
}

#[derive(Deserialize)]
struct DataBody {
    #[serde(default)]
    data: Option<KvData>,
    metadata: Option<VersionMetadata>,
}

#[derive(Deserialize)]
struct ListBody {
    #[serde(default)]
    keys: Vec<String>,
}

#[derive(Serialize)]
struct WriteBody<'a> {
    options: WriteOptions,
    data: &'a KvData,
}

#[derive(Serialize)]
struct WriteOptions {
    #[serde(skip_serializing_if = "Option::is_none")]
    cas: Option<u64>,
}

#[derive(Serialize)]
struct VersionsBody<'a> {
    versions: &'a [u64],
}

/// KV v2 operations on one mount; get one with [`Client::kv2`].
#[derive(Debug, Clone)]
pub struct Kv2<'a> {
    client: &'a Client,
    mount: String,
}

impl Client {
    /// The KV v2 engine mounted at `mount` (e.g. `"secret"`).
    pub fn kv2(&self, mount: &str) -> Kv2<'_> {
        Kv2 {
            client: self,
            mount: mount.trim_matches('/').to_owned(),
        }
    }
}

impl Kv2<'_> {
    fn path(&self, section: &str, key: &str) -> String {
        join(&[&self.mount, section, key])
    }

    /// Reads the latest version, or `version`. `Ok(None)` when the key or version does not
    /// exist; `Some` with `data: None` when it is deleted or destroyed.
    pub async fn read(
        &self,
        key: &str,
        version: Option<u64>,
    ) -> Result<Option<KvSecret>, ClientError> {
        let query: Vec<(&str, String)> = version
            .map(|v| ("version", v.to_string()))
            .into_iter()
            .collect();
        let raw = self
            .client
            .send::<()>(Method::Get, &self.path("data", key), &query, None)
            .await?;
        if raw.status == 404 {
            // A deleted/destroyed version comes back as 404 with the envelope and metadata;
            // a missing key as 404 with `{"errors":[]}`.
            let body: Option<Envelope<DataBody>> = serde_json::from_slice(&raw.body).ok();
            return Ok(body
                .and_then(|e| e.data)
                .and_then(|d| d.metadata)
                .map(|metadata| KvSecret {
                    data: None,
                    metadata,
                }));
        }
        if !raw.is_success() {
            return Err(raw.into_api_error());
        }
        let env: Envelope<DataBody> = raw.json("kv read")?;
        let body = env.data.ok_or_else(|| missing("kv read", "data"))?;
        Ok(Some(KvSecret {
            data: body.data,
            metadata: body
                .metadata
                .ok_or_else(|| missing("kv read", "data.metadata"))?,
        }))
    }

    /// Writes a new version. `cas: Some(0)` writes only if the key does not exist;
    /// `Some(n)` only if the current version is `n` (Vault's check-and-set).
    pub async fn write(
        &self,
        key: &str,
        data: &KvData,
        cas: Option<u64>,
    ) -> Result<VersionMetadata, ClientError> {
        let body = WriteBody {
            options: WriteOptions { cas },
            data,
        };
        let raw = self
            .client
            .send_ok(Method::Post, &self.path("data", key), &[], Some(&body))
            .await?;
        let env: Envelope<VersionMetadata> = raw.json("kv write")?;
        env.data.ok_or_else(|| missing("kv write", "data"))
    }

    /// Reads the key's metadata; `Ok(None)` when the key does not exist.
    pub async fn read_metadata(&self, key: &str) -> Result<Option<KeyMetadata>, ClientError> {
        let raw = self
            .client
            .send::<()>(Method::Get, &self.path("metadata", key), &[], None)
            .await?;
        if raw.status == 404 {
            return Ok(None);
        }
        if !raw.is_success() {
            return Err(raw.into_api_error());
        }
        let env: Envelope<KeyMetadata> = raw.json("kv metadata")?;
        env.data
            .map(Some)
            .ok_or_else(|| missing("kv metadata", "data"))
    }

    /// Updates the key's metadata (labels, limits).
    pub async fn write_metadata(
        &self,
        key: &str,
        update: &MetadataUpdate,
    ) -> Result<(), ClientError> {
        self.client
            .send_ok(Method::Post, &self.path("metadata", key), &[], Some(update))
            .await
            .map(drop)
    }

    /// Lists the keys directly under `prefix` (`""` for the mount root); folder names end in
    /// `/`. A folder with no keys is an empty list (Vault answers it with 404).
    pub async fn list(&self, prefix: &str) -> Result<Vec<String>, ClientError> {
        let path = format!("{}/", self.path("metadata", prefix));
        let raw = self
            .client
            .send::<()>(Method::List, &path, &[], None)
            .await?;
        if raw.status == 404 {
            return Ok(Vec::new());
        }
        if !raw.is_success() {
            return Err(raw.into_api_error());
        }
        let env: Envelope<ListBody> = raw.json("kv list")?;
        Ok(env.data.map(|d| d.keys).unwrap_or_default())
    }

    /// Deletes the key's metadata and every version (irreversible).
    pub async fn delete_metadata(&self, key: &str) -> Result<(), ClientError> {
        self.client
            .send_ok::<()>(Method::Delete, &self.path("metadata", key), &[], None)
            .await
            .map(drop)
    }

    /// Soft-deletes the latest version (undeletable).
    pub async fn delete_latest(&self, key: &str) -> Result<(), ClientError> {
        self.client
            .send_ok::<()>(Method::Delete, &self.path("data", key), &[], None)
            .await
            .map(drop)
    }

    /// Soft-deletes the given versions.
    pub async fn delete_versions(&self, key: &str, versions: &[u64]) -> Result<(), ClientError> {
        self.versions_call("delete", key, versions).await
    }

    /// Restores soft-deleted versions.
    pub async fn undelete_versions(&self, key: &str, versions: &[u64]) -> Result<(), ClientError> {
        self.versions_call("undelete", key, versions).await
    }

    /// Permanently destroys the data of the given versions.
    pub async fn destroy_versions(&self, key: &str, versions: &[u64]) -> Result<(), ClientError> {
        self.versions_call("destroy", key, versions).await
    }

    async fn versions_call(
        &self,
        section: &str,
        key: &str,
        versions: &[u64],
    ) -> Result<(), ClientError> {
        self.client
            .send_ok(
                Method::Post,
                &self.path(section, key),
                &[],
                Some(&VersionsBody { versions }),
            )
            .await
            .map(drop)
    }
}

pub(crate) fn missing(call: &str, field: &str) -> ClientError {
    ClientError::InvalidResponse {
        reason: format!("{call}: no `{field}` in the response"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kv_data_round_trips_strings_and_other_json() {
        let json = r#"{"value":"s3cr3t","n":42,"obj":{"a":[1,true,null]},"nul":null}"#;
        let d: KvData = serde_json::from_str(json).unwrap();
        assert_eq!(d.get_str("value").unwrap().expose(), "s3cr3t");
        assert!(d.get_str("n").is_none());
        let back: serde_json::Value = serde_json::to_value(&d).unwrap();
        let orig: serde_json::Value = serde_json::from_str(json).unwrap();
        assert_eq!(back, orig);
    }

    #[test]
    fn kv_data_debug_shows_keys_not_values() {
        let mut d = KvData::new();
        d.insert_str("password", SecretString::from("hunter2"));
        let dbg = format!("{d:?}");
        assert!(dbg.contains("password"));
        assert!(!dbg.contains("hunter2"), "{dbg}");
    }

    #[test]
    fn metadata_parses_vault_shape_with_numeric_version_keys() {
        let json = r#"{"cas_required":false,"created_time":"2018-03-22T02:24:06.945319214Z",
            "current_version":3,"custom_metadata":{"env":"prod"},"delete_version_after":"0s",
            "max_versions":0,"oldest_version":0,"updated_time":"2018-03-22T02:36:43.986212308Z",
            "versions":{"1":{"created_time":"a","deletion_time":"","destroyed":false},
                        "10":{"created_time":"b","deletion_time":"c","destroyed":true}},
            "last_updated_by":{"actor":"x"}}"#;
        let m: KeyMetadata = serde_json::from_str(json).unwrap();
        assert_eq!(m.current_version, 3);
        assert_eq!(m.custom_metadata.unwrap()["env"], "prod");
        assert_eq!(m.versions.keys().copied().collect::<Vec<_>>(), vec![1, 10]);
        assert!(m.versions[&10].destroyed);
    }

    #[test]
    fn write_body_has_vault_shape() {
        let mut d = KvData::new();
        d.insert_str("value", SecretString::from("x"));
        let body = WriteBody {
            options: WriteOptions { cas: Some(0) },
            data: &d,
        };
        assert_eq!(
            serde_json::to_value(&body).unwrap(),
            serde_json::json!({"options":{"cas":0},"data":{"value":"x"}})
        );
        let body = WriteBody {
            options: WriteOptions { cas: None },
            data: &d,
        };
        assert_eq!(
            serde_json::to_value(&body).unwrap(),
            serde_json::json!({"options":{},"data":{"value":"x"}})
        );
    }
}
