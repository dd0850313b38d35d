//! The token store (`auth/token/*`).
//!
//! Tokens are never stored: an entry is keyed by HMAC-SHA256(salt, token), the salt living
//! behind the barrier, so neither storage nor a log ever sees a usable token. Lookups go by that
//! hash, which is why no constant-time comparison of raw tokens is needed anywhere.
//! Entries are cached in memory (single node: the cache is authoritative and updated on every
//! write), because every request authenticates.
//!
//! Batch tokens (`hvb.`) are the exception to "tokens are never stored": they are not stored at
//! all. A batch token is the AES-256-GCM encryption of its own entry under a key that lives
//! behind the barrier, so lookup is a decryption, creation costs no write, and nothing needs
//! cleaning up when they expire. What Vault gives up for that, shroud gives up too: no renewal,
//! no revocation (other than through the parent), no accessor, no children.

use crate::api::{
    bool_field, duration_field, random_id, string_list, timestamp, uint_field, ApiError, AuthBlock,
};
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
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
const BATCH_KEY: &str = "sys/token/batch-key";
/// Prefix of batch tokens (Vault ≥ 1.10 mints `hvb.`).
pub const BATCH_PREFIX: &str = "hvb.";
/// Associated data of batch-token encryption: names the format, so a ciphertext made for
/// anything else under the same key can never parse as a token.
const BATCH_AAD: &[u8] = b"shroud/batch-token/v1";
const NONCE_LEN: usize = 12;
/// Longest token accepted anywhere. Service tokens are ~36 bytes; batch tokens grow with
/// their policies and metadata, and creation refuses one that would not fit.
pub const MAX_TOKEN_LEN: usize = 4096;

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
    /// A batch token (never stored; see the module doc).
    #[serde(default)]
    pub batch: bool,
    /// A limited-use token whose last use is in flight: no further request may use it, and it
    /// is revoked when that request completes (Vault's "tainted" state, `num_uses = -1`).
    #[serde(default)]
    pub exhausted: bool,
    /// The audit encoding of this caller, kept while the entry is cached (never stored).
    #[serde(skip)]
    pub audit: shroud_audit::CallerMemo,
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

    /// `service` or `batch`, as Vault reports it.
    pub fn token_type(&self) -> &'static str {
        if self.batch {
            "batch"
        } else {
            "service"
        }
    }

    /// True for a response-wrapping token: its only policy is `response-wrapping`, which no
    /// other token can be given (see `TokenStore::create`).
    pub fn is_wrapping(&self) -> bool {
        self.policies.len() == 1 && self.policies[0] == crate::wrapping::POLICY
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
            "type": self.token_type(),
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
            token_type: self.token_type().to_owned(),
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
    /// Mint a batch token instead of a service token.
    pub batch: bool,
}

impl CreateRequest {
    /// Parses a token-create body as hvac and the Vault CLI send it.
    pub fn from_body(body: Option<&Map<String, Value>>) -> Result<Self, ApiError> {
        let empty = Map::new();
        let b = body.unwrap_or(&empty);
        let get = |k: &str| b.get(k).filter(|v| !v.is_null());
        let batch = match get("type") {
            None => false,
            Some(Value::String(t)) => match t.as_str() {
                "" | "service" | "default" => false,
                "batch" => true,
                _ => return Err(ApiError::bad_request("invalid 'type' value")),
            },
            Some(_) => return Err(ApiError::bad_request("invalid 'type' value")),
        };
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
            batch,
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
        /// The endpoint makes orphans without sudo (`auth/token/create-orphan`).
        orphan_endpoint: bool,
    },
}

/// Unix seconds now.
pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// What a batch token carries, encrypted: everything a lookup needs. Short field names keep
/// the token short (it travels in a header on every request).
#[derive(Serialize, Deserialize)]
struct BatchClaims {
    #[serde(rename = "p")]
    policies: Vec<String>,
    #[serde(rename = "m", default, skip_serializing_if = "Map::is_empty")]
    meta: Map<String, Value>,
    #[serde(rename = "d")]
    display_name: String,
    #[serde(rename = "c")]
    creation_time: u64,
    #[serde(rename = "t")]
    ttl: u64,
    #[serde(rename = "e")]
    expire_time: u64,
    /// The parent's storage hash; the token stops working when the parent is gone.
    #[serde(rename = "a", default, skip_serializing_if = "Option::is_none")]
    parent: Option<String>,
    #[serde(rename = "x")]
    path: String,
}

/// The token store.
pub struct TokenStore {
    barrier: Arc<Barrier>,
    mac: Hmac<Sha256>,
    cache: RwLock<HashMap<String, Arc<TokenEntry>>>,
    /// Seals batch tokens. The key (32 random bytes) lives behind the barrier at `BATCH_KEY`.
    batch_cipher: Aes256Gcm,
    /// Serializes use counting so two concurrent requests cannot both spend a last use.
    use_lock: tokio::sync::Mutex<()>,
}

/// Reads a 32-byte key from the barrier, creating it on first use.
async fn load_or_create_key(barrier: &Barrier, path: &str) -> Result<SecretBytes, ApiError> {
    if let Some(k) = barrier.get(path).await? {
        if k.len() != 32 {
            return Err(ApiError::internal(&format!(
                "stored key {path} has a bad length"
            )));
        }
        return Ok(k);
    }
    let mut b = vec![0u8; 32];
    getrandom::fill(&mut b).map_err(|e| ApiError::internal(&e))?;
    let k = SecretBytes::new(b);
    barrier.put(path, k.expose()).await?;
    Ok(k)
}

impl TokenStore {
    /// Loads (or creates) the salt and the batch-token key.
    pub async fn load(barrier: Arc<Barrier>) -> Result<Self, ApiError> {
        let salt = load_or_create_key(&barrier, SALT_KEY).await?;
        let mac = <Hmac<Sha256> as Mac>::new_from_slice(salt.expose())
            .map_err(|e| ApiError::internal(&e))?;
        let batch_key = load_or_create_key(&barrier, BATCH_KEY).await?;
        let batch_cipher = <Aes256Gcm as KeyInit>::new_from_slice(batch_key.expose())
            .map_err(|e| ApiError::internal(&e))?;
        Ok(Self {
            barrier,
            mac,
            cache: RwLock::new(HashMap::new()),
            batch_cipher,
            use_lock: tokio::sync::Mutex::new(()),
        })
    }

    /// The storage hash of a token.
    pub fn hash(&self, token: &str) -> String {
        self.hash_hex(token).as_str().to_owned()
    }

    /// [`Self::hash`] on the stack, for the per-request lookup.
    fn hash_hex(&self, token: &str) -> HexHash {
        let mut m = self.mac.clone();
        m.update(token.as_bytes());
        let mut out = [0u8; 64];
        // The output is exactly twice the 32-byte tag, so this cannot fail.
        let _ = hex::encode_to_slice(m.finalize().into_bytes(), &mut out);
        HexHash(out)
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
        if token.is_empty() || token.len() > MAX_TOKEN_LEN {
            return Ok(None);
        }
        if token.starts_with(BATCH_PREFIX) {
            return self.lookup_batch(token).await;
        }
        let hash = self.hash_hex(token);
        let hash = hash.as_str();
        let Some(e) = self.load_entry(hash).await? else {
            return Ok(None);
        };
        if e.expired(now_secs()) {
            self.revoke_tree(hash).await?;
            return Ok(None);
        }
        if e.exhausted {
            return Ok(None);
        }
        Ok(Some(e))
    }

    /// A live parent: exists, not expired (revoked on sight if it is), not on its last use.
    async fn live_parent(&self, hash: &str) -> Result<bool, ApiError> {
        let Some(p) = self.load_entry(hash).await? else {
            return Ok(false);
        };
        if p.expired(now_secs()) {
            self.revoke_tree(hash).await?;
            return Ok(false);
        }
        Ok(!p.exhausted)
    }

    async fn lookup_batch(&self, token: &str) -> Result<Option<Arc<TokenEntry>>, ApiError> {
        // Tampered, truncated, foreign-key or garbage tokens all end here, indistinguishably.
        let Some(c) = self.open_batch(token) else {
            return Ok(None);
        };
        if c.expire_time <= now_secs() {
            return Ok(None);
        }
        if let Some(p) = &c.parent {
            if !self.live_parent(p).await? {
                return Ok(None);
            }
        }
        Ok(Some(Arc::new(TokenEntry {
            hash: self.hash(token),
            accessor: String::new(),
            orphan: c.parent.is_none(),
            parent: c.parent,
            policies: c.policies,
            meta: c.meta,
            display_name: c.display_name,
            num_uses: 0,
            creation_time: c.creation_time,
            creation_ttl: c.ttl,
            expire_time: Some(c.expire_time),
            explicit_max_ttl: 0,
            period: 0,
            renewable: false,
            path: c.path,
            last_renewal: None,
            batch: true,
            exhausted: false,
            audit: Default::default(),
        })))
    }

    fn seal_batch(&self, claims: &BatchClaims) -> Result<SecretString, ApiError> {
        let plain = zeroize::Zeroizing::new(
            serde_json::to_vec(claims).map_err(|e| ApiError::internal(&e))?,
        );
        let mut nonce = [0u8; NONCE_LEN];
        // A fresh random 96-bit nonce per token: the key lives as long as the store, and the
        // collision bound (2^32 tokens) is far beyond what one store mints.
        getrandom::fill(&mut nonce).map_err(|e| ApiError::internal(&e))?;
        let ct = self
            .batch_cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: &plain,
                    aad: BATCH_AAD,
                },
            )
            .map_err(|_| ApiError::internal(&"batch token encryption failed"))?;
        let mut raw = Vec::with_capacity(NONCE_LEN + ct.len());
        raw.extend_from_slice(&nonce);
        raw.extend_from_slice(&ct);
        let token = format!("{BATCH_PREFIX}{}", URL_SAFE_NO_PAD.encode(&raw));
        if token.len() > MAX_TOKEN_LEN {
            return Err(ApiError::bad_request(
                "batch token would be too long: use fewer policies or less metadata",
            ));
        }
        Ok(SecretString::new(token))
    }

    fn open_batch(&self, token: &str) -> Option<BatchClaims> {
        let body = token.strip_prefix(BATCH_PREFIX)?;
        let raw = URL_SAFE_NO_PAD.decode(body).ok()?;
        if raw.len() < NONCE_LEN + 16 {
            return None;
        }
        let (nonce, ct) = raw.split_at(NONCE_LEN);
        let plain = zeroize::Zeroizing::new(
            self.batch_cipher
                .decrypt(
                    Nonce::from_slice(nonce),
                    Payload {
                        msg: ct,
                        aad: BATCH_AAD,
                    },
                )
                .ok()?,
        );
        serde_json::from_slice(&plain).ok()
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

    /// Counts one use of a limited-use token. Returns true if that was its last use: the entry
    /// is then marked exhausted (no other request can use it from now on) and the caller
    /// revokes it after the request completes. Counting goes by the current stored entry, not
    /// the caller's snapshot, so concurrent requests cannot spend the same use twice.
    pub async fn use_once(&self, entry: &TokenEntry) -> Result<bool, ApiError> {
        if entry.num_uses == 0 || entry.batch {
            return Ok(false);
        }
        let _g = self.use_lock.lock().await;
        let Some(current) = self.load_entry(&entry.hash).await? else {
            return Err(ApiError::permission_denied());
        };
        if current.exhausted {
            return Err(ApiError::permission_denied());
        }
        if current.num_uses == 0 {
            return Ok(false);
        }
        let mut e = (*current).clone();
        e.num_uses -= 1;
        let last = e.num_uses == 0;
        // Persisted, so a crash between here and the revocation cannot give the token back.
        e.exhausted = last;
        self.store(&e, vec![]).await?;
        Ok(last)
    }

    /// Mints a token for an auth method's login.
    pub async fn create_for_login(
        &self,
        identity: crate::engine::LoginResult,
        path: &str,
    ) -> Result<(SecretString, TokenEntry), ApiError> {
        let batch = match identity.token_type.as_deref() {
            None | Some("" | "service" | "default" | "default-service") => false,
            Some("batch" | "default-batch") => true,
            Some(t) => {
                return Err(ApiError::bad_request(format!(
                    "token type {t:?} is not supported (service or batch)"
                )))
            }
        };
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
            batch,
        };
        self.create(Issuer::Login, req, path).await
    }

    /// Mints the single-use token of a wrapped response, storing `response` (the rendered
    /// original response) in the same atomic write, under a key only this token's hash names.
    /// Orphan, policy `response-wrapping` only, one use, not renewable: Vault's wrapping token.
    pub async fn create_wrapping(
        &self,
        ttl: Duration,
        path: &str,
        response: Vec<u8>,
    ) -> Result<(SecretString, TokenEntry), ApiError> {
        let now = now_secs();
        // Sub-second wrap TTLs round up: a token that is dead on arrival helps nobody.
        let ttl = ttl.as_secs().max(1);
        let token = SecretString::new(format!("hvs.{}", random_id(32)?));
        let hash = self.hash(token.expose());
        let accessor = random_id(24)?;
        let entry = TokenEntry {
            hash: hash.clone(),
            accessor: accessor.clone(),
            parent: None,
            policies: vec![crate::wrapping::POLICY.to_owned()],
            meta: Map::new(),
            display_name: String::new(),
            num_uses: 1,
            creation_time: now,
            creation_ttl: ttl,
            expire_time: Some(now + ttl),
            explicit_max_ttl: ttl,
            period: 0,
            renewable: false,
            orphan: true,
            path: path.to_owned(),
            last_renewal: None,
            batch: false,
            exhausted: false,
            audit: Default::default(),
        };
        let extra = vec![
            BarrierOp::Put(
                format!("{ACCESSOR_PREFIX}{accessor}"),
                hash.as_bytes().to_vec(),
            ),
            BarrierOp::Put(
                format!("{}{hash}", crate::wrapping::RESPONSE_PREFIX),
                response,
            ),
        ];
        self.store(&entry, extra).await?;
        Ok((token, entry))
    }

    /// Creates a token for `issuer`.
    pub async fn create(
        &self,
        issuer: Issuer<'_>,
        mut req: CreateRequest,
        path: &str,
    ) -> Result<(SecretString, TokenEntry), ApiError> {
        let (parent, sudo, orphan_endpoint) = match issuer {
            Issuer::Parent {
                parent,
                sudo,
                orphan_endpoint,
            } => (Some(parent), sudo, orphan_endpoint),
            _ => (None, false, false),
        };
        if parent.is_some_and(|p| p.batch) {
            return Err(ApiError::bad_request(
                "batch tokens cannot create child tokens",
            ));
        }
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
        if req.no_parent && !(parent_root || sudo || login || orphan_endpoint) {
            return Err(ApiError::bad_request(
                "root or sudo privileges required to create orphan token",
            ));
        }
        let period = req.period.map(|d| d.as_secs()).unwrap_or(0);
        // Vault's rule: a periodic token can live forever, so minting one is privileged.
        if period > 0 && !(parent_root || sudo || login) {
            return Err(ApiError::bad_request(
                "root or sudo privileges required to create periodic token",
            ));
        }
        if req.batch {
            if req.id.is_some() {
                return Err(ApiError::bad_request(
                    "batch tokens cannot have a custom ID",
                ));
            }
            if period > 0 {
                return Err(ApiError::bad_request("batch tokens cannot be periodic"));
            }
            if req.num_uses > 0 {
                return Err(ApiError::bad_request(
                    "batch tokens cannot have a limited number of uses",
                ));
            }
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
        // Only `create_wrapping` hands out this policy, so that holding it identifies a
        // wrapping token (whose ACL is fixed in the core, not read from the policy store).
        if policies.iter().any(|p| p == crate::wrapping::POLICY) {
            return Err(ApiError::bad_request(
                "the response-wrapping policy is reserved for response-wrapping tokens",
            ));
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
        if req.batch && is_root {
            return Err(ApiError::bad_request("batch tokens cannot be root tokens"));
        }
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
        let orphan = req.no_parent || parent.is_none();
        let root_token = matches!(issuer, Issuer::Root);
        let display = if root_token {
            "root".to_owned()
        } else if login {
            req.display_name.clone()
        } else if req.display_name.is_empty() {
            "token".to_owned()
        } else {
            format!("token-{}", req.display_name)
        };
        let parent_hash = if orphan {
            None
        } else {
            parent.map(|p| p.hash.clone())
        };

        if req.batch {
            // Not stored: the token is its own (encrypted) entry.
            let expire = expire_time.unwrap_or(now + MAX_TTL);
            let claims = BatchClaims {
                policies: policies.clone(),
                meta: req.meta.clone(),
                display_name: display.clone(),
                creation_time: now,
                ttl: expire.saturating_sub(now),
                expire_time: expire,
                parent: parent_hash.clone(),
                path: path.to_owned(),
            };
            let token = self.seal_batch(&claims)?;
            let entry = TokenEntry {
                hash: self.hash(token.expose()),
                accessor: String::new(),
                parent: parent_hash,
                policies,
                meta: req.meta,
                display_name: display,
                num_uses: 0,
                creation_time: now,
                creation_ttl: claims.ttl,
                expire_time: Some(expire),
                explicit_max_ttl: 0,
                period: 0,
                renewable: false,
                orphan,
                path: path.to_owned(),
                last_renewal: None,
                batch: true,
                exhausted: false,
                audit: Default::default(),
            };
            return Ok((token, entry));
        }

        let token = match req.id.take() {
            Some(id) => {
                if id.expose().len() > 256
                    || id.expose().contains(char::is_whitespace)
                    || id.expose().starts_with(BATCH_PREFIX)
                {
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
        let entry = TokenEntry {
            hash: hash.clone(),
            accessor: accessor.clone(),
            parent: parent_hash,
            policies,
            meta: req.meta,
            display_name: display,
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
            batch: false,
            exhausted: false,
            audit: Default::default(),
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

    /// Renews a token by `increment` (or its original TTL). Periodic tokens go back to their
    /// period (the increment is ignored, and no max TTL applies: that is what periodic means);
    /// everything is capped by `explicit_max_ttl` and the parent's expiry.
    pub async fn renew(
        &self,
        entry: &TokenEntry,
        increment: Option<Duration>,
    ) -> Result<TokenEntry, ApiError> {
        if entry.batch {
            return Err(ApiError::bad_request("batch tokens cannot be renewed"));
        }
        let now = now_secs();
        // Work on the current entry, not the caller's snapshot: the snapshot may predate a
        // use count or exhaustion, which writing it back would undo.
        let Some(current) = self.load_entry(&entry.hash).await? else {
            return Err(ApiError::bad_request("token not found"));
        };
        if current.expire_time.is_none() {
            return Ok((*current).clone());
        }
        if !current.renewable {
            return Err(ApiError::bad_request("lease is not renewable"));
        }
        let mut e = (*current).clone();
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
            if e.is_wrapping() {
                // The wrapped response dies with its token, in the same atomic write.
                ops.push(BarrierOp::Delete(format!(
                    "{}{hash}",
                    crate::wrapping::RESPONSE_PREFIX
                )));
            }
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

/// A token's storage hash as 64 lowercase hex digits.
struct HexHash([u8; 64]);

impl HexHash {
    fn as_str(&self) -> &str {
        // Invariant: hex digits only.
        std::str::from_utf8(&self.0).unwrap_or("")
    }
}
