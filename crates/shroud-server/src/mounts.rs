//! Mount tables: which engine serves which path prefix.
//!
//! Two tables use this type: secrets engines (persisted at `core/mounts`, paths like
//! `secret/`) and auth methods (persisted at `core/auth`, paths below `auth/` like `approle/`).
//! `sys/` and `auth/token/` are built in and never appear in storage.

use crate::api::{random_id, uuid, ApiError};
use crate::engine::Engine;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use shroud_crypto::Barrier;
use std::sync::{Arc, RwLock};

/// Canonical type and stored options of a mount, from what the client asked for.
pub type Canonicalize =
    fn(&str, Map<String, Value>) -> Result<(String, Map<String, Value>), ApiError>;
/// Builds the engine of a stored mount row.
pub type Build = fn(&MountEntry, Arc<Barrier>) -> Result<Arc<dyn Engine>, ApiError>;

/// Which engines a table can hold and how to build them.
pub struct Kinds {
    /// Storage key of the table.
    pub table_key: &'static str,
    /// Paths (within the table's namespace) nothing may be mounted at.
    pub reserved: &'static [&'static str],
    /// Maps a requested type and options to the canonical type and stored options, or a 400.
    pub canonicalize: Canonicalize,
    /// Builds the engine of a stored row.
    pub build: Build,
}

/// The secrets-engine table.
pub static SECRET_KINDS: Kinds = Kinds {
    table_key: "core/mounts",
    reserved: &["sys/", "auth/", "cubbyhole/", "identity/", "v1/"],
    canonicalize: |kind, options| match kind {
        "kv" | "kv-v2" => {
            let v = options.get("version").and_then(|v| {
                v.as_str()
                    .map(str::to_owned)
                    .or_else(|| v.as_u64().map(|n| n.to_string()))
            });
            if matches!(v.as_deref(), Some("1")) {
                return Err(ApiError::bad_request(
                    "KV version 1 is not supported; shroud serves KV version 2 (options.version=\"2\")",
                ));
            }
            let mut o = Map::new();
            o.insert("version".into(), json!("2"));
            Ok(("kv".to_owned(), o))
        }
        "transit" => Ok(("transit".to_owned(), Map::new())),
        other => Err(ApiError::bad_request(format!(
            "unknown or unsupported secrets engine type {other:?} (supported: kv, transit)"
        ))),
    },
    build: |e, barrier| match e.kind.as_str() {
        "kv" => Ok(Arc::new(crate::kv::KvEngine::new(barrier, &e.uuid)) as Arc<dyn Engine>),
        "transit" => {
            Ok(Arc::new(crate::transit::TransitEngine::new(barrier, &e.uuid)) as Arc<dyn Engine>)
        }
        other => Err(ApiError::internal(&format!(
            "stored mount has unknown type {other}"
        ))),
    },
};

/// The auth-method table (paths are below `auth/`).
pub static AUTH_KINDS: Kinds = Kinds {
    table_key: "core/auth",
    reserved: &["token/"],
    canonicalize: |kind, _options| {
        match kind {
        "approle" | "jwt" | "kubernetes" => Ok((kind.to_owned(), Map::new())),
        other => Err(ApiError::bad_request(format!(
            "unknown or unsupported auth method type {other:?} (supported: approle, jwt, kubernetes)"
        ))),
    }
    },
    build: |e, barrier| match e.kind.as_str() {
        "approle" => {
            Ok(Arc::new(crate::approle::AppRole::new(barrier, &e.uuid)) as Arc<dyn Engine>)
        }
        "jwt" => Ok(Arc::new(crate::jwt::JwtAuth::new(barrier, &e.uuid, false)) as Arc<dyn Engine>),
        "kubernetes" => {
            Ok(Arc::new(crate::jwt::JwtAuth::new(barrier, &e.uuid, true)) as Arc<dyn Engine>)
        }
        other => Err(ApiError::internal(&format!(
            "stored auth mount has unknown type {other}"
        ))),
    },
};

/// One row of the mount table.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MountEntry {
    /// With trailing slash, e.g. `secret/`.
    pub path: String,
    /// Engine type (`kv`).
    #[serde(rename = "type")]
    pub kind: String,
    /// Description.
    pub description: String,
    /// Storage identity.
    pub uuid: String,
    /// Accessor shown in listings.
    pub accessor: String,
    /// Engine options (`{"version":"2"}` for kv).
    pub options: Map<String, Value>,
    /// Unix seconds.
    pub created: u64,
}

impl MountEntry {
    /// The `sys/mounts` JSON of this entry.
    pub fn json(&self) -> Value {
        json!({
            "type": self.kind,
            "description": self.description,
            "accessor": self.accessor,
            "uuid": self.uuid,
            "config": {"default_lease_ttl": 0, "max_lease_ttl": 0, "force_no_cache": false},
            "options": self.options,
            "local": false,
            "seal_wrap": false,
            "external_entropy_access": false,
            "plugin_version": "",
            "running_plugin_version": "",
            "running_sha256": "",
            "deprecation_status": "supported",
        })
    }
}

/// A mounted engine.
pub struct Mounted {
    /// Its table row.
    pub entry: MountEntry,
    /// The engine.
    pub engine: Arc<dyn Engine>,
}

/// The live mount table.
pub struct Mounts {
    kinds: &'static Kinds,
    barrier: Arc<Barrier>,
    table: RwLock<Vec<Arc<Mounted>>>,
    write_lock: tokio::sync::Mutex<()>,
}

/// Normalizes a mount path: no leading slash, exactly one trailing slash.
pub fn normalize(path: &str) -> Result<String, ApiError> {
    let p = path.trim_matches('/');
    if p.is_empty() || p.len() > 256 {
        return Err(ApiError::bad_request("invalid mount path"));
    }
    if p.split('/').any(|s| s.is_empty() || s == "." || s == "..")
        || p.contains(|c: char| c.is_control() || c == '*' || c == '+')
    {
        return Err(ApiError::bad_request("invalid mount path"));
    }
    Ok(format!("{p}/"))
}

impl Mounts {
    /// Loads the table.
    pub async fn load(barrier: Arc<Barrier>, kinds: &'static Kinds) -> Result<Self, ApiError> {
        let entries: Vec<MountEntry> = match barrier.get(kinds.table_key).await? {
            Some(raw) => {
                serde_json::from_slice(raw.expose()).map_err(|e| ApiError::internal(&e))?
            }
            None => Vec::new(),
        };
        let mut table = Vec::new();
        for e in entries {
            table.push(Arc::new(Mounted {
                engine: (kinds.build)(&e, barrier.clone())?,
                entry: e,
            }));
        }
        Ok(Self {
            kinds,
            barrier,
            table: RwLock::new(table),
            write_lock: tokio::sync::Mutex::new(()),
        })
    }

    /// Every mount, sorted by path.
    pub fn all(&self) -> Vec<Arc<Mounted>> {
        let mut v = self.table.read().unwrap_or_else(|e| e.into_inner()).clone();
        v.sort_by(|a, b| a.entry.path.cmp(&b.entry.path));
        v
    }

    /// The mount serving `path` (longest prefix) and the path below it.
    pub fn resolve<'p>(&self, path: &'p str) -> Option<(Arc<Mounted>, &'p str)> {
        let t = self.table.read().unwrap_or_else(|e| e.into_inner());
        let mut best: Option<&Arc<Mounted>> = None;
        for m in t.iter() {
            let mp = &m.entry.path;
            let hit = path.starts_with(mp.as_str()) || path == &mp[..mp.len() - 1];
            if hit && best.map(|b| b.entry.path.len() < mp.len()).unwrap_or(true) {
                best = Some(m);
            }
        }
        best.map(|m| {
            let rel = path.get(m.entry.path.len()..).unwrap_or("");
            (m.clone(), rel)
        })
    }

    /// Exact mount at `path` (normalized).
    pub fn get(&self, path: &str) -> Option<Arc<Mounted>> {
        self.table
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .find(|m| m.entry.path == path)
            .cloned()
    }

    async fn persist(&self, entries: &[MountEntry]) -> Result<(), ApiError> {
        let raw = serde_json::to_vec(entries).map_err(|e| ApiError::internal(&e))?;
        self.barrier.put(self.kinds.table_key, &raw).await?;
        Ok(())
    }

    /// Enables an engine at `path`.
    pub async fn enable(
        &self,
        path: &str,
        kind: &str,
        description: &str,
        options: Map<String, Value>,
    ) -> Result<(), ApiError> {
        let path = normalize(path)?;
        if self.kinds.reserved.iter().any(|r| path.starts_with(r)) {
            return Err(ApiError::bad_request(format!(
                "cannot mount at reserved path {path:?}"
            )));
        }
        let (kind, options) = (self.kinds.canonicalize)(kind, options)?;
        let kind = kind.as_str();
        let _w = self.write_lock.lock().await;
        let current: Vec<MountEntry> = self.all().iter().map(|m| m.entry.clone()).collect();
        for m in &current {
            if path.starts_with(&m.path) || m.path.starts_with(&path) {
                return Err(ApiError::bad_request(format!(
                    "path is already in use at {}",
                    m.path
                )));
            }
        }
        let entry = MountEntry {
            path: path.clone(),
            kind: kind.to_owned(),
            description: description.to_owned(),
            uuid: uuid(),
            accessor: format!("{kind}_{}", random_id(8)?.to_lowercase()),
            options,
            created: crate::token::now_secs(),
        };
        let engine = (self.kinds.build)(&entry, self.barrier.clone())?;
        let mut next = current;
        next.push(entry.clone());
        self.persist(&next).await?;
        self.table
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .push(Arc::new(Mounted { engine, entry }));
        Ok(())
    }

    /// Disables the mount at `path` and deletes all its data. Absent mounts are not an error.
    pub async fn disable(&self, path: &str) -> Result<(), ApiError> {
        let path = normalize(path)?;
        let _w = self.write_lock.lock().await;
        let Some(m) = self.get(&path) else {
            return Ok(());
        };
        let next: Vec<MountEntry> = self
            .all()
            .iter()
            .filter(|x| x.entry.path != path)
            .map(|x| x.entry.clone())
            .collect();
        self.persist(&next).await?;
        self.table
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|x| x.entry.path != path);
        let prefix = m.engine.prefix().to_owned();
        let keys = self.barrier.list(&prefix).await?;
        for chunk in keys.chunks(500) {
            self.barrier
                .write_batch(
                    chunk
                        .iter()
                        .map(|k| shroud_crypto::BarrierOp::Delete(k.clone()))
                        .collect(),
                )
                .await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_mount_paths() {
        assert_eq!(normalize("secret").unwrap(), "secret/");
        assert_eq!(normalize("/team/kv/").unwrap(), "team/kv/");
        for bad in ["", "/", "a//b", "../x", "a/*"] {
            assert!(normalize(bad).is_err(), "{bad}");
        }
    }
}
