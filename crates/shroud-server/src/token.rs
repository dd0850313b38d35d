//! The token store (`auth/token/*`).
//!
//! Tokens are never stored: an entry is keyed by HMAC-SHA256(salt, token), the salt living
//! behind the barrier, so neither storage nor a log ever sees a usable token. Lookups go by that
//! hash, which is why no constant-time comparison of raw tokens is needed anywhere.
//! Entries are cached in memory (single node: the cache is authoritative and updated on every
//! write), because every request authenticates.

use crate::api::{
    bool_field, duration_field, random_id, string_list, timestamp, uint_field, ApiError, AuthBlock,
};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use sha2::Sha256;
use shroud_core::{SecretBytes, SecretString};
use shroud_crypto::{Barrier, BarrierOp};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const SALT_KEY: &str = "sys/token/salt";
const ID_PREFIX: &str = "sys/token/id/";
const ACCESSOR_PREFIX: &str = "sys/token/accessor/";
const PARENT_PREFIX: &str = "sys/token/parent/";

/// Vault's system default and maximum TTL: 768h (32 days).
pub const MAX_TTL: u64 = 768 * 3600;
/// Upper bound on policies attached to one token.
const MAX_POLICIES: usize = 64;

/// A stored token.
#[derive(Clone, Serialize, Deserialize, PartialEq)]
pub struct TokenEntry {
    /// HMAC of the token: the storage key.
    pub hash: String,
    /// Accessor (a handle that can look up or revoke, not use, the token).
    pub accessor: String,
    /// The parent's hash, unless orphan.
    pub parent: Option<String>,
    /// Attached policies, sorted.
    pub policies: Vec<String>,
    /// Metadata.
    pub meta: Map<String, Value>,
    /// Display name.
    pub display_name: String,
    /// Remaining uses; 0 = unlimited.
    pub num_uses: u64,
    /// Unix seconds.
    pub creation_time: u64,
    /// TTL at creation, seconds; 0 = never expires.
    pub creation_ttl: u64,
    /// Unix seconds; `None` = never expires.
    pub expire_time: Option<u64>,
    /// Hard cap, seconds from creation; 0 = none.
    pub explicit_max_ttl: u64,
    /// Periodic token period, seconds; 0 = not periodic.
    pub period: u64,
    /// Whether renew is allowed.
    pub renewable: bool,
    /// No parent.
    pub orphan: bool,
    /// The path that created it.
    pub path: String,
    /// Last renewal, unix seconds.
    pub last_renewal: Option<u64>,
}

impl std::fmt::Debug for TokenEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenEntry")
            .field("accessor", &"[REDACTED]")
            .field("policies", &self.policies)
            .field("display_name", &self.display_name)
            .field("expire_time", &self.expire_time)
            .finish_non_exhaustive()
    }
}

impl TokenEntry {
    /// True for tokens carrying the root policy.
    pub fn is_root(&self) -> bool {
        self.policies.iter().any(|p| p == "root")
    }

    /// Seconds left, 0 for tokens that never expire.
    pub fn ttl_left(&self, now: u64) -> u64 {
        self.expire_time.map(|e| e.saturating_sub(now)).unwrap_or(0)
    }

    fn expired(&self, now: u64) -> bool {
        matches!(self.expire_time, Some(e) if e <= now)
    }

    /// The `data` of lookup responses.
    pub fn lookup_data(&self, id: Option<&str>, now: u64) -> Value {
        let at = |s: u64| timestamp(UNIX_EPOCH + Duration::from_secs(s));
        json!({
            "accessor": self.accessor,
            "creation_time": self.creation_time,
            "creation_ttl": self.creation_ttl,
            "display_name": self.display_name,
            "entity_id": "",
            "expire_time": self.expire_time.map(at),
            "explicit_max_ttl": self.explicit_max_ttl,
            "id": id.unwrap_or(""),
            "issue_time": at(self.creation_time),
            "last_renewal": self.last_renewal.map(at),
            "last_renewal_time": self.last_renewal,
            "meta": if self.meta.is_empty() { Value::Null } else { Value::Object(self.meta.clone()) },
            "num_uses": self.num_uses,
            "orphan": self.orphan,
            "path": self.path,
            "period": if self.period > 0 { Value::from(self.period) } else { Value::Null },
            "policies": self.policies,
            "renewable": self.renewable,
            "ttl": self.ttl_left(now),
            "type": "service",
        })
    }

    /// The `auth` block for a response that hands out this token.
    pub fn auth_block(&self, token: SecretString, now: u64) -> AuthBlock {
        AuthBlock {
            client_token: token,
            accessor: self.accessor.clone(),
            policies: self.policies.clone(),
            token_policies: self.policies.clone(),
            metadata: if self.meta.is_empty() {
                None
            } else {
                Some(self.meta.clone())
            },
            lease_duration: self.ttl_left(now),
            renewable: self.renewable && self.expire_time.is_some(),
            entity_id: String::new(),
            token_type: "service".to_owned(),
            orphan: self.orphan,
            mfa_requirement: None,
            num_uses: self.num_uses,
        }
    }
}

/// What a caller asks for when creating a token.
#[derive(Debug, Default)]
pub struct CreateRequest {
    /// Requested id (root callers only).
    pub id: Option<SecretString>,
    /// Policies.
    pub policies: Vec<String>,
    /// Metadata.
    pub meta: Map<String, Value>,
    /// Make an orphan.
    pub no_parent: bool,
    /// Do not attach `default`.
    pub no_default_policy: bool,
    /// Renewable (default true).
    pub renewable: bool,
    /// TTL.
    pub ttl: Option<Duration>,
    /// Hard cap.
    pub explicit_max_ttl: Option<Duration>,
    /// Display name.
    pub display_name: String,
    /// Use limit.
    pub num_uses: u64,
    /// Period.
    pub period: Option<Duration>,
}

impl CreateRequest {
    /// Parses a token-create body as hvac and the Vault CLI send it.
    pub fn from_body(body: Option<&Map<String, Value>>) -> Result<Self, ApiError> {
        let empty = Map::new();
        let b = body.unwrap_or(&empty);
        let get = |k: &str| b.get(k).filter(|v| !v.is_null());
        if let Some(t) = get("type").and_then(|v| v.as_str()) {
            if t != "service" && t != "default" {
                return Err(ApiError::bad_request(format!(
                    "token type {t:?} is not supported by this server (only \"service\")"
                )));
            }
        }
        let policies = string_list(get("policies"))?;
        if policies.len() > MAX_POLICIES {
            return Err(ApiError::bad_request("too many policies"));
        }
        let meta = match get("meta") {
            None => Map::new(),
            Some(Value::Object(m)) => {
                if m.len() > 64 || m.values().any(|v| !v.is_string()) {
                    return Err(ApiError::bad_request(
                        "meta must be a map of at most 64 string values",
                    ));
                }
                m.clone()
            }
            Some(_) => return Err(ApiError::bad_request("meta must be a map of strings")),
        };
        let id = match get("id") {
            None => None,
            Some(Value::String(s)) if !s.is_empty() => Some(SecretString::from(s.as_str())),
            Some(Value::String(_)) => None,
            Some(_) => return Err(ApiError::bad_request("id must be a string")),
        };
        let display_name = match get("display_name").and_then(|v| v.as_str()) {
            Some(s) if s.len() > 256 => return Err(ApiError::bad_request("display_name too long")),
            Some(s) if !s.is_empty() => s.to_owned(),
            _ => String::new(),
        };
        Ok(Self {
            id,
            policies,
            meta,
            no_parent: bool_field(get("no_parent"), "no_parent")?.unwrap_or(false),
            no_default_policy: bool_field(get("no_default_policy"), "no_default_policy")?
                .unwrap_or(false),
            renewable: bool_field(get("renewable"), "renewable")?.unwrap_or(true),
            ttl: duration_field(get("ttl").or_else(|| get("lease")), "ttl")?,
            explicit_max_ttl: duration_field(get("explicit_max_ttl"), "explicit_max_ttl")?,
            display_name,
            num_uses: uint_field(get("num_uses"), "num_uses")?.unwrap_or(0),
            period: duration_field(get("period"), "period")?,
        })
    }
}

/// Who is asking for a token.
#[derive(Clone, Copy)]
pub enum Issuer<'a> {
    /// Initialization and dev mode: a root token with no parent.
    Root,
    /// An auth method's login: an orphan with exactly the method's policies (never root).
    Login,
    /// An existing token creating a child.
    Parent {
        /// The caller's token.
        parent: &'a TokenEntry,
        /// Whether the caller holds sudo on the create path.
        sudo: bool,
    },
}

/// Unix seconds now.
pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The token store.
pub struct TokenStore {
    barrier: Arc<Barrier>,
    mac: Hmac<Sha256>,
    cache: RwLock<HashMap<String, Arc<TokenEntry>>>,
}

impl TokenStore {
    /// Loads (or creates) the salt.
    pub async fn load(barrier: Arc<Barrier>) -> Result<Self, ApiError> {
        let salt = match barrier.get(SALT_KEY).await? {
            Some(s) => s,
            None => {
                let mut b = vec![0u8; 32];
                getrandom::fill(&mut b).map_err(|e| ApiError::internal(&e))?;
                let s = SecretBytes::new(b);
                barrier.put(SALT_KEY, s.expose()).await?;
                s
            }
        };
        let mac =
            Hmac::<Sha256>::new_from_slice(salt.expose()).map_err(|e| ApiError::internal(&e))?;
        Ok(Self {
            barrier,
            mac,
            cache: RwLock::new(HashMap::new()),
        })
    }

    /// The storage hash of a token.
    pub fn hash(&self, token: &str) -> String {
        let mut m = self.mac.clone();
        m.update(token.as_bytes());
        hex::encode(m.finalize().into_bytes())
    }

    async fn load_entry(&self, hash: &str) -> Result<Option<Arc<TokenEntry>>, ApiError> {
        if let Some(e) = self
            .cache
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(hash)
        {
            return Ok(Some(e.clone()));
        }
        let Some(raw) = self.barrier.get(&format!("{ID_PREFIX}{hash}")).await? else {
            return Ok(None);
        };
        let entry: TokenEntry =
            serde_json::from_slice(raw.expose()).map_err(|e| ApiError::internal(&e))?;
        let entry = Arc::new(entry);
        self.cache
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(hash.to_owned(), entry.clone());
        Ok(Some(entry))
    }

    async fn store(&self, entry: &TokenEntry, extra: Vec<BarrierOp>) -> Result<(), ApiError> {
        let mut ops = vec![BarrierOp::Put(
            format!("{ID_PREFIX}{}", entry.hash),
            serde_json::to_vec(entry).map_err(|e| ApiError::internal(&e))?,
        )];
        ops.extend(extra);
        self.barrier.write_batch(ops).await?;
        self.cache
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(entry.hash.clone(), Arc::new(entry.clone()));
        Ok(())
    }

    /// Resolves a presented token to a live entry. Expired tokens are revoked on sight.
    pub async fn lookup(&self, token: &str) -> Result<Option<Arc<TokenEntry>>, ApiError> {
        if token.is_empty() || token.len() > 1024 {
            return Ok(None);
        }
        let hash = self.hash(token);
        let Some(e) = self.load_entry(&hash).await? else {
            return Ok(None);
        };
        if e.expired(now_secs()) {
            self.revoke_tree(&hash).await?;
            return Ok(None);
        }
        Ok(Some(e))
    }

    /// Looks up by accessor.
    pub async fn lookup_accessor(
        &self,
        accessor: &str,
    ) -> Result<Option<Arc<TokenEntry>>, ApiError> {
        if accessor.is_empty() || accessor.len() > 128 || accessor.contains('/') {
            return Ok(None);
        }
        let Some(h) = self
            .barrier
            .get(&format!("{ACCESSOR_PREFIX}{accessor}"))
            .await?
        else {
            return Ok(None);
        };
        let hash = String::from_utf8_lossy(h.expose()).into_owned();
        let Some(e) = self.load_entry(&hash).await? else {
            return Ok(None);
        };
        if e.expired(now_secs()) {
            self.revoke_tree(&hash).await?;
            return Ok(None);
        }
        Ok(Some(e))
    }

    /// Counts one use of a limited-use token. Returns true if that was its last use (the caller
    /// revokes it after the request completes).
    pub async fn use_once(&self, entry: &TokenEntry) -> Result<bool, ApiError> {
        if entry.num_uses == 0 {
            return Ok(false);
        }
        let mut e = entry.clone();
        e.num_uses -= 1;
        if e.num_uses == 0 {
            return Ok(true);
        }
        self.store(&e, vec![]).await?;
        Ok(false)
    }

    /// Mints a token for an auth method's login.
    pub async fn create_for_login(
        &self,
        identity: crate::engine::LoginResult,
        path: &str,
    ) -> Result<(SecretString, TokenEntry), ApiError> {
        if let Some(t) = identity.token_type.as_deref() {
            if t != "service" && t != "default" && t != "default-service" {
                return Err(ApiError::bad_request(format!(
                    "token type {t:?} is not supported by this server (only \"service\")"
                )));
            }
        }
        let nz = |d: Duration| (!d.is_zero()).then_some(d);
        let req = CreateRequest {
            id: None,
            policies: identity.policies,
            meta: identity.metadata,
            no_parent: true,
            no_default_policy: identity.no_default_policy,
            renewable: true,
            ttl: nz(identity.ttl),
            explicit_max_ttl: nz(identity.explicit_max_ttl),
            display_name: identity.display_name,
            num_uses: identity.num_uses,
            period: nz(identity.period),
        };
        self.create(Issuer::Login, req, path).await
    }

    /// Creates a token for `issuer`.
    pub async fn create(
        &self,
        issuer: Issuer<'_>,
        mut req: CreateRequest,
        path: &str,
    ) -> Result<(SecretString, TokenEntry), ApiError> {
        let (parent, sudo) = match issuer {
            Issuer::Parent { parent, sudo } => (Some(parent), sudo),
            _ => (None, false),
        };
        let login = matches!(issuer, Issuer::Login);
        let parent_root = match issuer {
            Issuer::Root => true,
            Issuer::Login => false,
            Issuer::Parent { parent, .. } => parent.is_root(),
        };
        if req.id.is_some() && !parent_root {
            return Err(ApiError::bad_request(
                "root or sudo privileges required to specify token id",
            ));
        }
        if req.no_parent && !(parent_root || sudo || login) {
            return Err(ApiError::bad_request(
                "root or sudo privileges required to create orphan token",
            ));
        }
        // Policies: inherit the parent's when none are asked for; a non-root parent can only
        // hand out a subset of what it has (Vault's rule).
        let mut policies: Vec<String> = req.policies.iter().map(|p| p.to_lowercase()).collect();
        if policies.is_empty() {
            if let Some(p) = parent {
                policies = p.policies.clone();
            }
        }
        if let (false, Some(p)) = (parent_root, parent) {
            let held = p.policies.clone();
            if let Some(bad) = policies
                .iter()
                .find(|p| *p != "default" && !held.contains(p))
            {
                return Err(ApiError::bad_request(format!(
                    "child policies must be subset of parent (not held: {bad})"
                )));
            }
        }
        if policies.iter().any(|p| p == "root") && !parent_root {
            return Err(ApiError::bad_request(if login {
                "auth methods cannot issue root tokens"
            } else {
                "root tokens can only be created by a root token"
            }));
        }
        if !req.no_default_policy && !policies.iter().any(|p| p == "root") {
            policies.push("default".to_owned());
        }
        if req.no_default_policy {
            policies.retain(|p| p != "default");
        }
        policies.sort();
        policies.dedup();

        let now = now_secs();
        let is_root = policies.iter().any(|p| p == "root");
        let period = req.period.map(|d| d.as_secs()).unwrap_or(0);
        let explicit = req.explicit_max_ttl.map(|d| d.as_secs()).unwrap_or(0);
        let mut ttl = if period > 0 {
            period
        } else {
            match req.ttl.map(|d| d.as_secs()) {
                Some(t) if t > 0 => t.min(MAX_TTL),
                _ if is_root && req.ttl.is_none() => 0,
                _ => MAX_TTL,
            }
        };
        if explicit > 0 && (ttl == 0 || ttl > explicit) {
            ttl = explicit;
        }
        let mut expire_time = (ttl > 0).then_some(now + ttl);
        // A child cannot outlive its parent: parent expiry revokes children in Vault; capping
        // here gives the same result without a background sweep.
        if !req.no_parent {
            if let Some(pe) = parent.and_then(|p| p.expire_time) {
                expire_time = Some(expire_time.map_or(pe, |e| e.min(pe)));
                ttl = expire_time.map(|e| e.saturating_sub(now)).unwrap_or(0);
            }
        }

        let token = match req.id.take() {
            Some(id) => {
                if id.expose().len() > 256 || id.expose().contains(char::is_whitespace) {
                    return Err(ApiError::bad_request("invalid token id"));
                }
                id
            }
            None => SecretString::new(format!("hvs.{}", random_id(32)?)),
        };
        let hash = self.hash(token.expose());
        if self.load_entry(&hash).await?.is_some() {
            return Err(ApiError::bad_request(
                "cannot create a token with a duplicate ID",
            ));
        }
        let accessor = random_id(24)?;
        let orphan = req.no_parent || parent.is_none();
        let root_token = matches!(issuer, Issuer::Root);
        let display = if req.display_name.is_empty() {
            "token".to_owned()
        } else {
            format!("token-{}", req.display_name)
        };
        let entry = TokenEntry {
            hash: hash.clone(),
            accessor: accessor.clone(),
            parent: if orphan {
                None
            } else {
                parent.map(|p| p.hash.clone())
            },
            policies,
            meta: req.meta,
            display_name: if root_token {
                "root".to_owned()
            } else if login {
                req.display_name.clone()
            } else {
                display
            },
            num_uses: req.num_uses,
            creation_time: now,
            creation_ttl: ttl,
            expire_time,
            explicit_max_ttl: explicit,
            period,
            renewable: req.renewable && expire_time.is_some(),
            orphan,
            path: path.to_owned(),
            last_renewal: None,
        };
        let mut extra = vec![BarrierOp::Put(
            format!("{ACCESSOR_PREFIX}{accessor}"),
            hash.as_bytes().to_vec(),
        )];
        if let Some(p) = &entry.parent {
            extra.push(BarrierOp::Put(format!("{PARENT_PREFIX}{p}/{hash}"), vec![]));
        }
        self.store(&entry, extra).await?;
        Ok((token, entry))
    }

    /// Renews a token by `increment` (or its original TTL).
    pub async fn renew(
        &self,
        entry: &TokenEntry,
        increment: Option<Duration>,
    ) -> Result<TokenEntry, ApiError> {
        let now = now_secs();
        if entry.expire_time.is_none() {
            return Ok(entry.clone());
        }
        if !entry.renewable {
            return Err(ApiError::bad_request("lease is not renewable"));
        }
        let mut e = entry.clone();
        let want = if e.period > 0 {
            e.period
        } else {
            increment
                .map(|d| d.as_secs())
                .filter(|s| *s > 0)
                .unwrap_or(e.creation_ttl)
        };
        let mut new_exp = now + want;
        if e.period == 0 {
            new_exp = new_exp.min(e.creation_time + MAX_TTL);
        }
        if e.explicit_max_ttl > 0 {
            new_exp = new_exp.min(e.creation_time + e.explicit_max_ttl);
        }
        if let Some(p) = &e.parent {
            if let Some(pe) = self.load_entry(p).await?.and_then(|p| p.expire_time) {
                new_exp = new_exp.min(pe);
            }
        }
        e.expire_time = Some(new_exp);
        e.last_renewal = Some(now);
        self.store(&e, vec![]).await?;
        Ok(e)
    }

    /// Revokes a token and all its descendants.
    pub async fn revoke_tree(&self, hash: &str) -> Result<(), ApiError> {
        // Iterative depth-first walk; bounded by the number of tokens that exist.
        let mut stack = vec![hash.to_owned()];
        let mut order = Vec::new();
        while let Some(h) = stack.pop() {
            let prefix = format!("{PARENT_PREFIX}{h}/");
            for k in self.barrier.list(&prefix).await? {
                stack.push(k[prefix.len()..].to_owned());
            }
            order.push(h);
        }
        for h in order.into_iter().rev() {
            self.revoke_one(&h).await?;
        }
        Ok(())
    }

    /// Revokes one token; its children become orphans.
    pub async fn revoke_orphan(&self, hash: &str) -> Result<(), ApiError> {
        let prefix = format!("{PARENT_PREFIX}{hash}/");
        for k in self.barrier.list(&prefix).await? {
            let child = &k[prefix.len()..];
            if let Some(c) = self.load_entry(child).await? {
                let mut c = (*c).clone();
                c.parent = None;
                c.orphan = true;
                self.store(&c, vec![BarrierOp::Delete(k.clone())]).await?;
            }
        }
        self.revoke_one(hash).await
    }

    async fn revoke_one(&self, hash: &str) -> Result<(), ApiError> {
        let entry = self.load_entry(hash).await?;
        let mut ops = vec![BarrierOp::Delete(format!("{ID_PREFIX}{hash}"))];
        if let Some(e) = &entry {
            ops.push(BarrierOp::Delete(format!(
                "{ACCESSOR_PREFIX}{}",
                e.accessor
            )));
            if let Some(p) = &e.parent {
                ops.push(BarrierOp::Delete(format!("{PARENT_PREFIX}{p}/{hash}")));
            }
        }
        let prefix = format!("{PARENT_PREFIX}{hash}/");
        for k in self.barrier.list(&prefix).await? {
            ops.push(BarrierOp::Delete(k));
        }
        // Drop from the cache first so no request can use it while the batch commits.
        self.cache
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(hash);
        self.barrier.write_batch(ops).await?;
        Ok(())
    }

    /// Every accessor (for `LIST auth/token/accessors`).
    pub async fn accessors(&self) -> Result<Vec<String>, ApiError> {
        Ok(self
            .barrier
            .list(ACCESSOR_PREFIX)
            .await?
            .into_iter()
            .map(|k| k[ACCESSOR_PREFIX.len()..].to_owned())
            .collect())
    }
}
