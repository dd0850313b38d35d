//! The KV v2 engine (vault-plugin-secrets-kv's HTTP shapes).
//!
//! Storage layout under the mount's barrier prefix `logical/<mount uuid>/`:
//! - `config`: engine configuration;
//! - `metadata/<key>`: the key's metadata, including every version's timestamps;
//! - `versions/<key>/<n>`: version n's data.
//!
//! A write takes the key's lock (striped), reads metadata, and commits metadata plus the new
//! version in one atomic batch, so concurrent writers can neither lose a version nor leave
//! metadata and data out of step.

use crate::api::{
    bool_field, duration_field, timestamp, uint_field, ApiError, ApiResult, Data, Logical,
    Operation, Reply, Request, SharedData,
};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use shroud_crypto::{Barrier, BarrierOp};
use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const LOCK_STRIPES: usize = 256;
/// Longest key name accepted.
const MAX_KEY_LEN: usize = 1024;
/// Vault's default number of versions kept.
const DEFAULT_MAX_VERSIONS: u64 = 10;

#[derive(Serialize, Deserialize, Default, Clone)]
struct Config {
    max_versions: u64,
    cas_required: bool,
    delete_version_after: u64,
}

#[derive(Serialize, Deserialize, Clone, Default)]
struct VersionMeta {
    created: u128,
    deleted: Option<u128>,
    destroyed: bool,
}

#[derive(Serialize, Deserialize, Clone, Default)]
struct Metadata {
    created: u128,
    updated: u128,
    current_version: u64,
    oldest_version: u64,
    max_versions: u64,
    cas_required: bool,
    delete_version_after: u64,
    custom_metadata: Option<BTreeMap<String, String>>,
    versions: BTreeMap<u64, VersionMeta>,
}

fn now_nanos() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

fn ts(n: u128) -> String {
    let secs = (n / 1_000_000_000) as u64;
    let nanos = (n % 1_000_000_000) as u32;
    timestamp(UNIX_EPOCH + Duration::new(secs, nanos))
}

impl VersionMeta {
    fn is_deleted(&self, now: u128) -> bool {
        matches!(self.deleted, Some(d) if d <= now)
    }
    fn json(&self, version: Option<u64>, custom: &Option<BTreeMap<String, String>>) -> Value {
        let mut m = json!({
            "created_time": ts(self.created),
            "deletion_time": self.deleted.map(ts).unwrap_or_default(),
            "destroyed": self.destroyed,
        });
        if let Some(v) = version {
            m["version"] = json!(v);
            m["custom_metadata"] = json!(custom);
        }
        m
    }
}

/// Most keys whose parsed metadata and versions the read cache holds.
const CACHE_KEYS: usize = 8192;
/// Largest stored entry the read cache holds, in bytes.
const CACHE_ENTRY_MAX: usize = 16 * 1024;

/// Parsed entries of one key: reads skip decryption and JSON parsing on a hit.
#[derive(Default)]
struct Cached {
    meta: Option<Arc<Metadata>>,
    versions: std::collections::HashMap<u64, Arc<Value>>,
    /// Whole read replies (data and metadata, rendered) of live versions with no deletion
    /// time, which only a write can change.
    replies: std::collections::HashMap<u64, Arc<SharedData>>,
}

/// The read cache. Coherence: every write goes through [`KvEngine::commit`], which bumps
/// `generation` and drops the key under the same lock; a reader only installs what it read if
/// the generation did not move since it started reading, so a read that raced a write can
/// never leave a stale entry behind. (Plaintext in this cache is protected like every other
/// in-memory secret: the process is non-dumpable and its memory locked.)
#[derive(Default)]
struct ReadCache {
    generation: u64,
    keys: std::collections::HashMap<String, Cached>,
}

/// One mounted KV v2 engine.
pub struct KvEngine {
    barrier: Arc<Barrier>,
    prefix: String,
    locks: Vec<tokio::sync::Mutex<()>>,
    cache: std::sync::RwLock<ReadCache>,
}

impl KvEngine {
    /// An engine storing under `logical/<uuid>/`.
    pub fn new(barrier: Arc<Barrier>, uuid: &str) -> Self {
        Self {
            barrier,
            prefix: format!("logical/{uuid}/"),
            locks: (0..LOCK_STRIPES)
                .map(|_| tokio::sync::Mutex::new(()))
                .collect(),
            cache: std::sync::RwLock::new(ReadCache::default()),
        }
    }

    fn generation(&self) -> u64 {
        self.cache
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .generation
    }

    /// Installs `f`'s change for `key` unless a write happened since `generation`.
    fn install(&self, key: &str, generation: u64, f: impl FnOnce(&mut Cached)) {
        let mut c = self.cache.write().unwrap_or_else(|e| e.into_inner());
        if c.generation != generation {
            return;
        }
        if c.keys.len() >= CACHE_KEYS && !c.keys.contains_key(key) {
            c.keys.clear();
        }
        f(c.keys.entry(key.to_owned()).or_default());
    }

    /// Writes `ops` (all about `key`) atomically, then drops `key` from the read cache.
    async fn commit(&self, key: &str, ops: Vec<BarrierOp>) -> Result<(), ApiError> {
        let r = self.barrier.write_batch(ops).await;
        // Invalidate even on error: the write may have landed.
        let mut c = self.cache.write().unwrap_or_else(|e| e.into_inner());
        c.generation += 1;
        c.keys.remove(key);
        drop(c);
        r.map_err(ApiError::from)
    }

    /// Metadata through the read cache.
    async fn metadata_cached(&self, key: &str) -> Result<Option<Arc<Metadata>>, ApiError> {
        if let Some(m) = self
            .cache
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .keys
            .get(key)
            .and_then(|c| c.meta.clone())
        {
            return Ok(Some(m));
        }
        let generation = self.generation();
        let Some(raw) = self
            .barrier
            .get(&format!("{}metadata/{key}", self.prefix))
            .await?
        else {
            return Ok(None);
        };
        let meta: Arc<Metadata> =
            Arc::new(serde_json::from_slice(raw.expose()).map_err(|e| ApiError::internal(&e))?);
        if raw.len() <= CACHE_ENTRY_MAX {
            self.install(key, generation, |c| c.meta = Some(meta.clone()));
        }
        Ok(Some(meta))
    }

    /// One version's data through the read cache.
    async fn version_cached(
        &self,
        key: &str,
        version: u64,
    ) -> Result<Option<Arc<Value>>, ApiError> {
        if let Some(v) = self
            .cache
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .keys
            .get(key)
            .and_then(|c| c.versions.get(&version).cloned())
        {
            return Ok(Some(v));
        }
        let generation = self.generation();
        let Some(raw) = self.barrier.get(&self.version_key(key, version)).await? else {
            return Ok(None);
        };
        let data: Arc<Value> =
            Arc::new(serde_json::from_slice(raw.expose()).map_err(|e| ApiError::internal(&e))?);
        if raw.len() <= CACHE_ENTRY_MAX {
            self.install(key, generation, |c| {
                c.versions.insert(version, data.clone());
            });
        }
        Ok(Some(data))
    }

    /// A cached read reply for `version` of `key`.
    fn reply_cached(&self, key: &str, version: u64) -> Option<Arc<SharedData>> {
        self.cache
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .keys
            .get(key)
            .and_then(|c| c.replies.get(&version).cloned())
    }

    fn lock_for(&self, key: &str) -> &tokio::sync::Mutex<()> {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        key.hash(&mut h);
        &self.locks[(h.finish() as usize) % LOCK_STRIPES]
    }

    async fn config(&self) -> Result<Config, ApiError> {
        match self.barrier.get(&format!("{}config", self.prefix)).await? {
            Some(raw) => serde_json::from_slice(raw.expose()).map_err(|e| ApiError::internal(&e)),
            None => Ok(Config::default()),
        }
    }

    async fn metadata(&self, key: &str) -> Result<Option<Metadata>, ApiError> {
        match self
            .barrier
            .get(&format!("{}metadata/{key}", self.prefix))
            .await?
        {
            Some(raw) => serde_json::from_slice(raw.expose())
                .map(Some)
                .map_err(|e| ApiError::internal(&e)),
            None => Ok(None),
        }
    }

    fn meta_op(&self, key: &str, m: &Metadata) -> Result<BarrierOp, ApiError> {
        Ok(BarrierOp::Put(
            format!("{}metadata/{key}", self.prefix),
            serde_json::to_vec(m).map_err(|e| ApiError::internal(&e))?,
        ))
    }

    fn version_key(&self, key: &str, v: u64) -> String {
        format!("{}versions/{key}/{v}", self.prefix)
    }

    async fn route(&self, rel: &str, req: &Request) -> ApiResult {
        let (kind, key) = split(rel);
        let r = match (kind, req.op) {
            ("config", Operation::Read) if key.is_empty() => self.read_config().await,
            ("config", Operation::Update) if key.is_empty() => self.write_config(req).await,
            ("data", Operation::Read) => self.read(key, req).await,
            ("data", Operation::Update) => self.write(key, req).await,
            ("data", Operation::Patch) => self.patch(key, req).await,
            ("data", Operation::Delete) => self.delete_latest(key).await,
            ("delete", Operation::Update) => self.set_deleted(key, req, true).await,
            ("undelete", Operation::Update) => self.set_deleted(key, req, false).await,
            ("destroy", Operation::Update) => self.destroy(key, req).await,
            ("metadata", Operation::List) => self.list(key).await,
            ("metadata", Operation::Read) => self.read_metadata(key).await,
            ("metadata", Operation::Update) => self.write_metadata(key, req, false).await,
            ("metadata", Operation::Patch) => self.write_metadata(key, req, true).await,
            ("metadata", Operation::Delete) => self.delete_metadata(key).await,
            ("subkeys", Operation::Read) => self.subkeys(key, req).await,
            ("config" | "data" | "delete" | "undelete" | "destroy" | "subkeys", _) => {
                Err(ApiError::unsupported_operation())
            }
            _ => Err(ApiError::not_found()),
        };
        r.map(|reply| match reply {
            Reply::Logical(mut l) => {
                l.mount_type = "kv";
                Reply::Logical(l)
            }
            other => other,
        })
    }
}

#[async_trait::async_trait]
impl crate::engine::Engine for KvEngine {
    /// The existence check Vault's ACL uses to pick `create` or `update`.
    async fn exists(&self, rel: &str, _req: &Request) -> Result<bool, ApiError> {
        let (kind, key) = split(rel);
        match kind {
            "data" | "metadata" => {
                Ok(valid_key(key).is_ok() && self.metadata_cached(key).await?.is_some())
            }
            _ => Ok(true),
        }
    }

    async fn handle(&self, rel: &str, req: &Request) -> ApiResult {
        self.route(rel, req).await
    }

    fn prefix(&self) -> &str {
        &self.prefix
    }
}

fn shared_reply(data: Arc<SharedData>) -> Reply {
    Reply::Logical(Box::new(Logical {
        data: Data::Shared(data),
        ..Default::default()
    }))
}

impl KvEngine {
    async fn read_config(&self) -> ApiResult {
        let c = self.config().await?;
        Ok(Reply::data(json!({
            "max_versions": c.max_versions,
            "cas_required": c.cas_required,
            "delete_version_after": shroud_core::duration::go_string(c.delete_version_after),
        })))
    }

    async fn write_config(&self, req: &Request) -> ApiResult {
        let mut c = self.config().await?;
        if let Some(n) = uint_field(req.field("max_versions"), "max_versions")? {
            c.max_versions = n;
        }
        if let Some(b) = bool_field(req.field("cas_required"), "cas_required")? {
            c.cas_required = b;
        }
        if let Some(d) = duration_field(req.field("delete_version_after"), "delete_version_after")?
        {
            c.delete_version_after = d.as_secs();
        }
        self.barrier
            .put(
                &format!("{}config", self.prefix),
                &serde_json::to_vec(&c).map_err(|e| ApiError::internal(&e))?,
            )
            .await?;
        Ok(Reply::NoContent)
    }

    async fn read(&self, key: &str, req: &Request) -> ApiResult {
        if valid_key(key).is_err() {
            return Err(ApiError::not_found());
        }
        let asked = match req.query("version") {
            None | Some("") | Some("0") => None,
            Some(v) => Some(
                v.parse::<u64>()
                    .map_err(|_| ApiError::bad_request("invalid version"))?,
            ),
        };
        // Metadata and data are two reads: a burst of writes between them can prune the
        // version the metadata named. For "the current version" that is not a miss, so look
        // again (bounded); an explicitly asked-for version that was pruned is a 404.
        let generation = self.generation();
        let mut attempts = 0;
        let (data, md, version, cacheable) = loop {
            attempts += 1;
            let Some(meta) = self.metadata_cached(key).await? else {
                return Err(ApiError::not_found());
            };
            let version = asked.unwrap_or(meta.current_version);
            let Some(vm) = meta.versions.get(&version) else {
                return Err(ApiError::not_found());
            };
            if vm.destroyed || vm.is_deleted(now_nanos()) {
                let md = vm.json(Some(version), &meta.custom_metadata);
                // Vault answers 404 but keeps the envelope, so clients can tell deleted from
                // absent.
                return Ok(Reply::Logical(Box::new(Logical {
                    status: Some(404),
                    data: Data::Owned(json!({"data": null, "metadata": md})),
                    ..Default::default()
                })));
            }
            let cacheable = vm.deleted.is_none();
            if cacheable {
                if let Some(r) = self.reply_cached(key, version) {
                    return Ok(shared_reply(r));
                }
            }
            let md = vm.json(Some(version), &meta.custom_metadata);
            match self.version_cached(key, version).await? {
                Some(data) => break (Value::clone(&data), md, version, cacheable),
                None if asked.is_none() && attempts < 5 => continue,
                None => return Err(ApiError::not_found()),
            }
        };
        let value = json!({"data": data, "metadata": md});
        if !cacheable {
            return Ok(Reply::data(value));
        }
        let shared = SharedData::new(value)?;
        if shared.json_len() <= 2 * CACHE_ENTRY_MAX {
            self.install(key, generation, |c| {
                c.replies.insert(version, shared.clone());
            });
        }
        Ok(shared_reply(shared))
    }

    fn check_cas(
        &self,
        req: &Request,
        meta: Option<&Metadata>,
        config: &Config,
    ) -> Result<(), ApiError> {
        let cas = match req.field("options").and_then(|o| o.get("cas")) {
            None | Some(Value::Null) => None,
            Some(v) => Some(
                v.as_u64()
                    .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
                    .ok_or_else(|| ApiError::bad_request("invalid cas value"))?,
            ),
        };
        let required = config.cas_required || meta.map(|m| m.cas_required).unwrap_or(false);
        match cas {
            None if required => Err(ApiError::bad_request(
                "check-and-set parameter required for this call",
            )),
            Some(c) if c != meta.map(|m| m.current_version).unwrap_or(0) => Err(
                ApiError::bad_request("check-and-set parameter did not match the current version"),
            ),
            _ => Ok(()),
        }
    }

    async fn write(&self, key: &str, req: &Request) -> ApiResult {
        valid_key(key)?;
        let data = match req.field("data") {
            Some(Value::Object(m)) => m.clone(),
            Some(_) => return Err(ApiError::bad_request("data must be a JSON object")),
            None => return Err(ApiError::bad_request("no data provided")),
        };
        if let Some(o) = req.field("options") {
            if !o.is_object() {
                return Err(ApiError::bad_request("options must be a JSON object"));
            }
        }
        self.commit_version(key, req, data).await
    }

    async fn commit_version(
        &self,
        key: &str,
        req: &Request,
        data: Map<String, Value>,
    ) -> ApiResult {
        let _g = self.lock_for(key).lock().await;
        let config = self.config().await?;
        let existing = self.metadata(key).await?;
        self.check_cas(req, existing.as_ref(), &config)?;
        let now = now_nanos();
        let mut meta = existing.unwrap_or_else(|| Metadata {
            created: now,
            ..Default::default()
        });
        let version = meta.current_version + 1;
        meta.current_version = version;
        meta.updated = now;
        let dva = if meta.delete_version_after > 0 {
            meta.delete_version_after
        } else {
            config.delete_version_after
        };
        let vm = VersionMeta {
            created: now,
            deleted: (dva > 0).then(|| now + u128::from(dva) * 1_000_000_000),
            destroyed: false,
        };
        meta.versions.insert(version, vm.clone());
        let mut ops = Vec::new();
        let max = effective_max(&meta, &config);
        while meta.versions.len() as u64 > max {
            let Some((&oldest, _)) = meta.versions.iter().next() else {
                break;
            };
            meta.versions.remove(&oldest);
            ops.push(BarrierOp::Delete(self.version_key(key, oldest)));
        }
        meta.oldest_version = meta.versions.keys().next().copied().unwrap_or(0);
        ops.push(BarrierOp::Put(
            self.version_key(key, version),
            serde_json::to_vec(&Value::Object(data)).map_err(|e| ApiError::internal(&e))?,
        ));
        ops.push(self.meta_op(key, &meta)?);
        self.commit(key, ops).await?;
        Ok(Reply::data(vm.json(Some(version), &meta.custom_metadata)))
    }

    async fn patch(&self, key: &str, req: &Request) -> ApiResult {
        valid_key(key)?;
        let patch = match req.field("data") {
            Some(Value::Object(m)) => m.clone(),
            Some(_) => return Err(ApiError::bad_request("data must be a JSON object")),
            None => return Err(ApiError::bad_request("no data provided")),
        };
        let current = {
            let Some(meta) = self.metadata(key).await? else {
                return Err(ApiError::not_found());
            };
            let Some(vm) = meta.versions.get(&meta.current_version) else {
                return Err(ApiError::not_found());
            };
            if vm.destroyed || vm.is_deleted(now_nanos()) {
                return Err(ApiError::not_found());
            }
            match self
                .barrier
                .get(&self.version_key(key, meta.current_version))
                .await?
            {
                Some(raw) => serde_json::from_slice::<Value>(raw.expose())
                    .map_err(|e| ApiError::internal(&e))?,
                None => return Err(ApiError::not_found()),
            }
        };
        let mut merged = current;
        merge_patch(&mut merged, &Value::Object(patch));
        let Value::Object(m) = merged else {
            return Err(ApiError::bad_request("patch must produce a JSON object"));
        };
        self.commit_version(key, req, m).await
    }

    async fn delete_latest(&self, key: &str) -> ApiResult {
        if valid_key(key).is_err() {
            return Ok(Reply::NoContent);
        }
        let _g = self.lock_for(key).lock().await;
        let Some(mut meta) = self.metadata(key).await? else {
            return Ok(Reply::NoContent);
        };
        let cur = meta.current_version;
        let now = now_nanos();
        if let Some(v) = meta.versions.get_mut(&cur) {
            if !v.destroyed && !v.is_deleted(now) {
                v.deleted = Some(now);
                meta.updated = now;
                self.commit(key, vec![self.meta_op(key, &meta)?]).await?;
            }
        }
        Ok(Reply::NoContent)
    }

    fn versions_arg(req: &Request) -> Result<Vec<u64>, ApiError> {
        let v = match req.field("versions") {
            Some(Value::Array(a)) => a
                .iter()
                .map(|x| {
                    x.as_u64()
                        .or_else(|| x.as_str().and_then(|s| s.trim().parse().ok()))
                        .ok_or_else(|| ApiError::bad_request("versions must be integers"))
                })
                .collect::<Result<Vec<_>, _>>()?,
            Some(Value::String(s)) => s
                .split(',')
                .map(|p| {
                    p.trim()
                        .parse()
                        .map_err(|_| ApiError::bad_request("versions must be integers"))
                })
                .collect::<Result<Vec<_>, _>>()?,
            Some(Value::Number(n)) => vec![n
                .as_u64()
                .ok_or_else(|| ApiError::bad_request("versions must be integers"))?],
            _ => vec![],
        };
        if v.is_empty() {
            return Err(ApiError::bad_request("no version number provided"));
        }
        if v.len() > 1000 {
            return Err(ApiError::bad_request("too many versions"));
        }
        Ok(v)
    }

    async fn set_deleted(&self, key: &str, req: &Request, delete: bool) -> ApiResult {
        valid_key(key)?;
        let versions = Self::versions_arg(req)?;
        let _g = self.lock_for(key).lock().await;
        let Some(mut meta) = self.metadata(key).await? else {
            return Ok(Reply::NoContent);
        };
        let now = now_nanos();
        for n in versions {
            if let Some(v) = meta.versions.get_mut(&n) {
                if v.destroyed {
                    continue;
                }
                if delete {
                    if !v.is_deleted(now) {
                        v.deleted = Some(now);
                    }
                } else {
                    v.deleted = None;
                }
            }
        }
        meta.updated = now;
        self.commit(key, vec![self.meta_op(key, &meta)?]).await?;
        Ok(Reply::NoContent)
    }

    async fn destroy(&self, key: &str, req: &Request) -> ApiResult {
        valid_key(key)?;
        let versions = Self::versions_arg(req)?;
        let _g = self.lock_for(key).lock().await;
        let Some(mut meta) = self.metadata(key).await? else {
            return Ok(Reply::NoContent);
        };
        let mut ops = Vec::new();
        for n in versions {
            if let Some(v) = meta.versions.get_mut(&n) {
                v.destroyed = true;
                ops.push(BarrierOp::Delete(self.version_key(key, n)));
            }
        }
        meta.updated = now_nanos();
        ops.push(self.meta_op(key, &meta)?);
        self.commit(key, ops).await?;
        Ok(Reply::NoContent)
    }

    async fn list(&self, key: &str) -> ApiResult {
        let dir = if key.is_empty() || key.ends_with('/') {
            key.to_owned()
        } else {
            format!("{key}/")
        };
        let prefix = format!("{}metadata/{dir}", self.prefix);
        let mut keys: Vec<String> = Vec::new();
        for full in self.barrier.list(&prefix).await? {
            let rest = &full[prefix.len()..];
            let child = match rest.find('/') {
                Some(i) => &rest[..=i],
                None => rest,
            };
            if keys.last().map(|l| l != child).unwrap_or(true) && !keys.iter().any(|k| k == child) {
                keys.push(child.to_owned());
            }
        }
        if keys.is_empty() {
            return Err(ApiError::not_found());
        }
        keys.sort();
        Ok(Reply::data(json!({ "keys": keys })))
    }

    fn metadata_json(meta: &Metadata, config: &Config) -> Value {
        let versions: Map<String, Value> = meta
            .versions
            .iter()
            .map(|(k, v)| (k.to_string(), v.json(None, &None)))
            .collect();
        let _ = config;
        json!({
            "cas_required": meta.cas_required,
            "created_time": ts(meta.created),
            "current_version": meta.current_version,
            "custom_metadata": meta.custom_metadata,
            "delete_version_after": shroud_core::duration::go_string(meta.delete_version_after),
            "max_versions": meta.max_versions,
            "oldest_version": meta.oldest_version,
            "updated_time": ts(meta.updated),
            "versions": versions,
        })
    }

    async fn read_metadata(&self, key: &str) -> ApiResult {
        if key.is_empty() || key.ends_with('/') {
            // `GET metadata/dir/` is how some clients list.
            return self.list(key).await;
        }
        if valid_key(key).is_err() {
            return Err(ApiError::not_found());
        }
        let Some(meta) = self.metadata(key).await? else {
            return Err(ApiError::not_found());
        };
        let config = self.config().await?;
        Ok(Reply::data(Self::metadata_json(&meta, &config)))
    }

    async fn write_metadata(&self, key: &str, req: &Request, patch: bool) -> ApiResult {
        valid_key(key)?;
        let _g = self.lock_for(key).lock().await;
        let existing = self.metadata(key).await?;
        if patch && existing.is_none() {
            return Err(ApiError::not_found());
        }
        let now = now_nanos();
        let mut meta = existing.unwrap_or_else(|| Metadata {
            created: now,
            updated: now,
            ..Default::default()
        });
        if let Some(n) = uint_field(req.field("max_versions"), "max_versions")? {
            meta.max_versions = n;
        }
        if let Some(b) = bool_field(req.field("cas_required"), "cas_required")? {
            meta.cas_required = b;
        }
        if let Some(d) = duration_field(req.field("delete_version_after"), "delete_version_after")?
        {
            meta.delete_version_after = d.as_secs();
        }
        if let Some(cm) = req.field("custom_metadata") {
            let Value::Object(m) = cm else {
                return Err(ApiError::bad_request(
                    "custom_metadata must be a map of strings",
                ));
            };
            let mut out = if patch {
                meta.custom_metadata.clone().unwrap_or_default()
            } else {
                BTreeMap::new()
            };
            for (k, v) in m {
                match v {
                    Value::String(s) => {
                        out.insert(k.clone(), s.clone());
                    }
                    Value::Null if patch => {
                        out.remove(k);
                    }
                    _ => {
                        return Err(ApiError::bad_request(
                            "custom_metadata values must be strings",
                        ))
                    }
                }
            }
            validate_custom(&out)?;
            meta.custom_metadata = if out.is_empty() { None } else { Some(out) };
        }
        meta.updated = now;
        let config = self.config().await?;
        let mut ops = Vec::new();
        let max = effective_max(&meta, &config);
        while meta.versions.len() as u64 > max {
            let Some((&oldest, _)) = meta.versions.iter().next() else {
                break;
            };
            meta.versions.remove(&oldest);
            ops.push(BarrierOp::Delete(self.version_key(key, oldest)));
        }
        meta.oldest_version = meta.versions.keys().next().copied().unwrap_or(0);
        ops.push(self.meta_op(key, &meta)?);
        self.commit(key, ops).await?;
        Ok(Reply::NoContent)
    }

    async fn delete_metadata(&self, key: &str) -> ApiResult {
        if valid_key(key).is_err() {
            return Ok(Reply::NoContent);
        }
        let _g = self.lock_for(key).lock().await;
        let Some(meta) = self.metadata(key).await? else {
            return Ok(Reply::NoContent);
        };
        let mut ops: Vec<BarrierOp> = meta
            .versions
            .keys()
            .map(|v| BarrierOp::Delete(self.version_key(key, *v)))
            .collect();
        ops.push(BarrierOp::Delete(format!("{}metadata/{key}", self.prefix)));
        self.commit(key, ops).await?;
        Ok(Reply::NoContent)
    }

    async fn subkeys(&self, key: &str, req: &Request) -> ApiResult {
        let reply = self.read(key, req).await?;
        let Reply::Logical(l) = reply else {
            return Err(ApiError::not_found());
        };
        if l.status == Some(404) {
            return Ok(Reply::Logical(l));
        }
        let depth: usize = req.query("depth").and_then(|d| d.parse().ok()).unwrap_or(0);
        let data = l.data.into_value().unwrap_or(Value::Null);
        fn strip(v: &Value, depth: usize, level: usize) -> Value {
            match v {
                Value::Object(m) if depth == 0 || level < depth => Value::Object(
                    m.iter()
                        .map(|(k, v)| (k.clone(), strip(v, depth, level + 1)))
                        .collect(),
                ),
                _ => Value::Null,
            }
        }
        Ok(Reply::data(json!({
            "subkeys": strip(&data["data"], depth, 0),
            "metadata": data["metadata"],
        })))
    }
}

fn effective_max(meta: &Metadata, config: &Config) -> u64 {
    if meta.max_versions > 0 {
        meta.max_versions
    } else if config.max_versions > 0 {
        config.max_versions
    } else {
        DEFAULT_MAX_VERSIONS
    }
}

fn split(rel: &str) -> (&str, &str) {
    match rel.find('/') {
        Some(i) => (&rel[..i], &rel[i + 1..]),
        None => (rel, ""),
    }
}

fn valid_key(key: &str) -> Result<(), ApiError> {
    if key.is_empty() {
        return Err(ApiError::bad_request("missing secret path"));
    }
    if key.len() > MAX_KEY_LEN {
        return Err(ApiError::bad_request("secret path is too long"));
    }
    if key.ends_with('/') || key.contains("//") || key.split('/').any(|s| s == "." || s == "..") {
        return Err(ApiError::bad_request("invalid secret path"));
    }
    Ok(())
}

fn validate_custom(m: &BTreeMap<String, String>) -> Result<(), ApiError> {
    if m.len() > 64 {
        return Err(ApiError::bad_request(
            "custom_metadata can have a maximum of 64 keys",
        ));
    }
    for (k, v) in m {
        if k.is_empty() || k.len() > 128 {
            return Err(ApiError::bad_request(
                "custom_metadata keys must be 1 to 128 bytes",
            ));
        }
        if v.len() > 512 {
            return Err(ApiError::bad_request(
                "custom_metadata values can be at most 512 bytes",
            ));
        }
    }
    Ok(())
}

/// RFC 7386 JSON merge patch.
fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(p) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    if let Value::Object(t) = target {
        for (k, v) in p {
            if v.is_null() {
                t.remove(k);
            } else {
                merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_patch_follows_rfc7386() {
        let mut t = json!({"a": "b", "c": {"d": "e", "f": "g"}});
        merge_patch(&mut t, &json!({"a": "z", "c": {"f": null}}));
        assert_eq!(t, json!({"a": "z", "c": {"d": "e"}}));
    }

    #[test]
    fn invalid_keys_rejected() {
        for k in ["", "a/", "a//b", "../x", "a/./b"] {
            assert!(valid_key(k).is_err(), "{k:?}");
        }
        assert!(valid_key("app/db-password").is_ok());
    }
}
