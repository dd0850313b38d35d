//! The core: seal state, the unsealed subsystems, and the one request pipeline
//! (authenticate → authorize → audit → dispatch → audit).

use crate::api::{ApiError, ApiResult, Logical, Operation, Reply, Request};
use crate::audit::Broker;
use crate::mounts::{Mounted, Mounts};
use crate::policy_store::PolicyStore;
use crate::ratelimit::{ClientKey, RateLimitConfig, RateLimiter};
use crate::token::{CreateRequest, TokenEntry, TokenStore};
use crate::wrapping::WrapStore;
use serde_json::Value;
use shroud_audit::{AuthInfo, Entry, EntryType, ResponseAuth};
use shroud_core::{SecretString, Storage};
use shroud_crypto::{Barrier, SealManager};
use shroud_policy::{Acl, Operation as PolicyOp};
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

/// Subsystems that exist only while unsealed.
pub struct Active {
    /// Secrets engines.
    pub mounts: Mounts,
    /// Auth methods (below `auth/`).
    pub auth_mounts: Mounts,
    /// Token store.
    pub tokens: TokenStore,
    /// Policies.
    pub policies: PolicyStore,
    /// Audit devices.
    pub audit: Broker,
    /// Wrapped responses.
    pub wrapping: WrapStore,
}

/// How the seal is configured.
#[derive(Debug, Clone)]
pub enum SealKind {
    /// Shamir shares typed in by operators.
    Shamir,
    /// Unseal key read from a file at start (unattended restarts).
    Static {
        /// The key file.
        key_file: PathBuf,
    },
}

/// The server core, shared by every request.
pub struct Core {
    /// The barrier.
    pub barrier: Arc<Barrier>,
    /// Seal state machine.
    pub seal: SealManager,
    /// Configured seal.
    pub seal_kind: SealKind,
    active: RwLock<Option<Arc<Active>>>,
    lifecycle: tokio::sync::Mutex<()>,
    /// Storage backend name.
    pub storage_kind: &'static str,
    /// Per-client limit on minting tokens (token create and logins). Kept across seals.
    pub rate_limiter: RateLimiter,
}

/// What a handler knows about its caller.
pub struct Caller {
    /// The token entry.
    pub entry: Arc<TokenEntry>,
    /// The raw token (lookup-self echoes it as `id`).
    pub token: SecretString,
    /// The compiled ACL.
    pub acl: Arc<Acl>,
    /// Whether the matched rule granted sudo (or the token is root).
    pub sudo: bool,
}

/// Where a path goes.
enum Target {
    Sys,
    Token,
    /// A secrets engine; the usize is the length of the mount path in the request path.
    Mount(Arc<Mounted>, usize),
    /// An auth method below `auth/`.
    Auth(Arc<Mounted>, usize),
}

impl Target {
    fn rel<'p>(&self, path: &'p str) -> &'p str {
        match self {
            Target::Mount(_, n) | Target::Auth(_, n) => path.get(*n..).unwrap_or(""),
            _ => "",
        }
    }
    fn engine(&self) -> Option<&Arc<Mounted>> {
        match self {
            Target::Mount(m, _) | Target::Auth(m, _) => Some(m),
            _ => None,
        }
    }
}

/// Paths that need `sudo` on top of the normal capability (Vault's root-protected paths).
fn needs_sudo(path: &str, op: Operation) -> bool {
    let p = path.trim_end_matches('/');
    p == "sys/audit"
        || p.starts_with("sys/audit/")
        || p == "sys/rotate"
        || p == "sys/seal"
        || (p.starts_with("sys/auth/") && op != Operation::Read)
        || p == "auth/token/accessors"
        || p.starts_with("auth/token/revoke-orphan")
        || p == "sys/raw"
        || p.starts_with("sys/raw/")
}

impl Core {
    /// A sealed core over `storage`.
    pub fn new(storage: Arc<dyn Storage>, seal_kind: SealKind) -> Arc<Self> {
        let storage_kind = storage.kind();
        let barrier = Barrier::new(storage);
        Arc::new(Self {
            seal: SealManager::new(barrier.clone()),
            barrier,
            seal_kind,
            active: RwLock::new(None),
            lifecycle: tokio::sync::Mutex::new(()),
            storage_kind,
            rate_limiter: RateLimiter::new(RateLimitConfig::default()),
        })
    }

    /// The unsealed subsystems, or None while sealed.
    pub fn active(&self) -> Option<Arc<Active>> {
        self.active
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Loads the subsystems after the barrier was unsealed.
    async fn post_unseal(&self) -> Result<Arc<Active>, ApiError> {
        let policies = PolicyStore::load(self.barrier.clone()).await?;
        policies.ensure_default().await?;
        let active = Arc::new(Active {
            mounts: Mounts::load(self.barrier.clone(), &crate::mounts::SECRET_KINDS).await?,
            auth_mounts: Mounts::load(self.barrier.clone(), &crate::mounts::AUTH_KINDS).await?,
            tokens: TokenStore::load(self.barrier.clone()).await?,
            policies,
            audit: Broker::load(self.barrier.clone()).await?,
            wrapping: WrapStore::new(self.barrier.clone()),
        });
        *self.active.write().unwrap_or_else(|e| e.into_inner()) = Some(active.clone());
        Ok(active)
    }

    /// Initializes storage: seal, keyring, `secret/` mount, default policy and a root token.
    /// Returns the unseal shares (for Shamir) and the root token. Leaves a Shamir core sealed
    /// and a static-seal core unsealed, as Vault does with auto-unseal.
    pub async fn initialize(
        &self,
        shares: u8,
        threshold: u8,
        root_token: Option<SecretString>,
    ) -> Result<(Vec<shroud_core::SecretBytes>, SecretString), ApiError> {
        let _l = self.lifecycle.lock().await;
        if self.seal.is_initialized().await? {
            return Err(ApiError::bad_request("Vault is already initialized"));
        }
        let shares_out = match &self.seal_kind {
            SealKind::Shamir => {
                let init = self
                    .seal
                    .initialize(shares, threshold)
                    .await
                    .map_err(|e| match e {
                        shroud_crypto::CryptoError::InvalidConfig(m) => ApiError::bad_request(m),
                        other => ApiError::from(other),
                    })?;
                for s in init.shares.iter().take(threshold as usize) {
                    self.seal.submit_share(s.expose()).await?;
                }
                init.shares
            }
            SealKind::Static { key_file } => {
                let key = match shroud_crypto::read_key_file(key_file) {
                    Ok(k) => k,
                    Err(_) if !key_file.exists() => {
                        let k = shroud_crypto::generate_unseal_key()?;
                        shroud_crypto::write_key_file(key_file, &k)?;
                        k
                    }
                    Err(e) => return Err(ApiError::internal(&e)),
                };
                self.seal.initialize_static(&key).await?;
                self.seal.unseal_with_key(&key).await?;
                vec![]
            }
        };
        let active = self.post_unseal().await?;
        if active.mounts.get("secret/").is_none() {
            active
                .mounts
                .enable(
                    "secret/",
                    "kv",
                    "key/value secret storage",
                    Default::default(),
                )
                .await?;
        }
        if active.mounts.get("transit/").is_none() {
            active
                .mounts
                .enable(
                    "transit/",
                    "transit",
                    "encryption as a service",
                    Default::default(),
                )
                .await?;
        }
        let req = CreateRequest {
            id: root_token,
            policies: vec!["root".to_owned()],
            renewable: false,
            ..Default::default()
        };
        let (token, _) = active
            .tokens
            .create(crate::token::Issuer::Root, req, "auth/token/root")
            .await?;
        if matches!(self.seal_kind, SealKind::Shamir) {
            self.seal_now();
        }
        Ok((shares_out, token))
    }

    /// Submits one unseal share; unseals when the threshold is reached.
    pub async fn submit_share(&self, share: &[u8]) -> Result<shroud_crypto::SealStatus, ApiError> {
        let _l = self.lifecycle.lock().await;
        let status = self.seal.submit_share(share).await.map_err(|e| match e {
            shroud_crypto::CryptoError::InvalidShare => ApiError::bad_request(
                "unseal failed: the shares do not combine to this server's unseal key; progress was reset",
            ),
            shroud_crypto::CryptoError::NotInitialized => {
                ApiError::bad_request("Vault is not initialized")
            }
            other => ApiError::from(other),
        })?;
        if !status.sealed && self.active().is_none() {
            self.post_unseal().await?;
        }
        Ok(status)
    }

    /// Unseals with the unseal key itself (static seal, dev mode).
    pub async fn unseal_with_key(&self, key: &shroud_core::SecretBytes) -> Result<(), ApiError> {
        let _l = self.lifecycle.lock().await;
        self.seal.unseal_with_key(key).await?;
        if self.active().is_none() {
            self.post_unseal().await?;
        }
        Ok(())
    }

    /// Seals: drops every key and subsystem from memory.
    pub fn seal_now(&self) {
        *self.active.write().unwrap_or_else(|e| e.into_inner()) = None;
        self.seal.seal();
    }

    fn target(&self, active: &Active, path: &str) -> Result<Target, ApiError> {
        if path == "sys" || path.starts_with("sys/") {
            return Ok(Target::Sys);
        }
        if path == "auth/token" || path.starts_with("auth/token/") {
            return Ok(Target::Token);
        }
        if let Some(below) = path.strip_prefix("auth/") {
            return match active.auth_mounts.resolve(below) {
                Some((m, _)) => {
                    let n = "auth/".len() + m.entry.path.len();
                    Ok(Target::Auth(m, n))
                }
                None => Err(ApiError::no_route(path)),
            };
        }
        match active.mounts.resolve(path) {
            Some((m, _)) => {
                let n = m.entry.path.len();
                Ok(Target::Mount(m, n))
            }
            None => Err(ApiError::no_route(path)),
        }
    }

    /// The request pipeline. Every authenticated endpoint goes through here, and authorization
    /// happens in exactly one place (`authorize`).
    pub async fn handle(self: &Arc<Self>, req: Request) -> ApiResult {
        if let Some(r) = crate::sys::unauthenticated(self, &req).await {
            return r;
        }
        let active = self.active().ok_or_else(ApiError::sealed)?;
        crate::wrapping::precheck(&active, &req).await?;
        let remote = req.remote.map(crate::api::IpText::of);
        let target = self.target(&active, &req.path);
        if let Ok(Target::Auth(m, n)) = &target {
            let rel = req.path.get(*n..).unwrap_or("");
            if m.engine.is_login(rel, req.op) {
                return self
                    .login(
                        &active,
                        m.clone(),
                        rel,
                        &req,
                        remote.as_ref().map(|r| r.as_str()),
                    )
                    .await;
            }
        }
        let Some(token) = req.token.as_ref() else {
            return Err(ApiError::permission_denied());
        };
        let Some(entry) = active.tokens.lookup(token.expose()).await? else {
            // Vault answers 403 "permission denied" for unknown, revoked and expired tokens.
            return Err(ApiError::permission_denied());
        };
        let target = target?;
        // Root is exempt: operators bootstrapping many tokens are not the threat, and a root
        // token can do far worse than mint tokens quickly.
        if is_token_create(&req) && !entry.is_root() {
            if let Some(e) = self
                .over_limit(&active, &req, "token", remote.as_ref().map(|r| r.as_str()))
                .await
            {
                return Err(e);
            }
        }
        let acl = active.policies.acl(&entry.policies);
        let (allowed, sudo) = if entry.is_wrapping() {
            // Fixed ACL, never the policy store: see wrapping.rs.
            (crate::wrapping::wrapping_token_may(&req), false)
        } else {
            self.authorize(&active, &target, &acl, &req).await?
        };

        let mount_type = match &target {
            Target::Sys => "system",
            Target::Token => "token",
            Target::Mount(m, _) | Target::Auth(m, _) => m.entry.kind.as_str(),
        };
        let auth_info = AuthInfo {
            display_name: &entry.display_name,
            policies: &entry.policies,
            token_type: entry.token_type(),
            metadata: Some(&entry.meta),
            token_ttl: entry.ttl_left(crate::token::now_secs()),
        };
        let mut log = Entry {
            kind: EntryType::Request,
            request_id: &req.id,
            operation: req.op.as_str(),
            path: &req.path,
            mount_type: Some(mount_type),
            remote_address: remote.as_ref().map(|r| r.as_str()),
            client_token: Some(token.expose()),
            client_token_accessor: (!entry.accessor.is_empty()).then_some(entry.accessor.as_str()),
            auth: Some(auth_info),
            request_data: req.body.as_ref(),
            response_data: None,
            response_memo: None,
            // Everything the memo covers (token, accessor, display name, policies, metadata,
            // token type) comes from `entry`, the entry this token resolved to.
            caller_memo: Some(&entry.audit),
            response_auth: None,
            status: None,
            error: if allowed {
                None
            } else {
                Some("permission denied")
            },
        };
        // Escape hatch: a sudo holder may disable an audit device even when no device can
        // record it; otherwise one broken device locks everyone out for good.
        let audit_escape =
            allowed && sudo && req.op == Operation::Delete && req.path.starts_with("sys/audit/");
        let devices = active.audit.all();
        // A read (or an operation its engine says changes nothing, like transit encrypt with
        // an existing key) has no effect the response does not carry, so its request record is
        // written together with the response record (one write, both or neither) right
        // before the response is released. Anything else is recorded before it runs.
        let deferred = allowed
            && match req.op {
                Operation::Read | Operation::List => true,
                Operation::Update => match target.engine() {
                    Some(m) => {
                        m.engine
                            .changes_nothing(target.rel(&req.path), &req)
                            .await?
                    }
                    None => false,
                },
                _ => false,
            };
        if !deferred {
            if let Err(e) = Broker::log_to(&devices, &log).await {
                if !audit_escape {
                    return Err(e);
                }
                tracing::error!(path = %req.path, "audit devices failing; allowing audit device removal");
            }
        }
        let request_log = log;
        if !allowed {
            return Err(ApiError::permission_denied());
        }
        let last_use = active.tokens.use_once(&entry).await?;
        // Only sys and the token backend look at the caller; engines see the request alone.
        let caller = || Caller {
            entry: entry.clone(),
            token: token.clone(),
            acl,
            sudo,
        };
        let result = match &target {
            Target::Sys => crate::sys::handle(self, &active, &caller(), &req).await,
            Target::Token => crate::token_api::handle(&active, &caller(), &req).await,
            Target::Mount(m, _) | Target::Auth(m, _) => {
                m.engine.handle(target.rel(&req.path), &req).await
            }
        };
        let result = crate::wrapping::maybe_wrap(&active, &req, result).await;

        // Response record: fail closed, so a secret is never returned unaudited.
        let wrapped;
        let (resp_data, resp_memo, resp_auth, status, err_text) = match &result {
            Ok(Reply::Logical(l)) => {
                let (data, memo) = match &l.wrap_info {
                    Some(w) => {
                        wrapped = serde_json::json!({ "wrap_info": w });
                        (Some(&wrapped), None)
                    }
                    None => (l.data.as_value(), l.data.audit_memo()),
                };
                (data, memo, l.auth.as_ref(), l.status.unwrap_or(200), None)
            }
            Ok(Reply::Raw(s, v)) => (Some(v), None, None, *s, None),
            Ok(Reply::NoContent) => (None, None, None, 204, None),
            Err(e) => (
                e.data.as_ref(),
                None,
                None,
                e.status,
                Some(e.errors.join("; ")),
            ),
        };
        log.kind = EntryType::Response;
        log.response_data = resp_data;
        log.response_memo = resp_memo;
        log.response_auth = resp_auth.map(|a| ResponseAuth {
            client_token: a.client_token.expose(),
            accessor: &a.accessor,
            policies: &a.policies,
            metadata: a.metadata.as_ref(),
            lease_duration: a.lease_duration,
            renewable: a.renewable,
            token_type: &a.token_type,
            orphan: a.orphan,
        });
        log.status = Some(status);
        log.error = err_text.as_deref();
        // A revoke-self / seal may have removed the caller's state; the audit still records it.
        let logged = if deferred {
            Broker::log_pair_to(&devices, &request_log, &log).await
        } else {
            Broker::log_to(&devices, &log).await
        };
        if let Err(e) = logged {
            if !audit_escape {
                return Err(e);
            }
        }
        if last_use {
            active.tokens.revoke_tree(&entry.hash).await?;
        }
        result
    }

    /// The one authorization decision: ACL capability for the operation (create vs update
    /// decided by the target's existence check), plus sudo for root-protected paths.
    async fn authorize(
        &self,
        _active: &Active,
        target: &Target,
        acl: &Acl,
        req: &Request,
    ) -> Result<(bool, bool), ApiError> {
        if acl.is_root() {
            return Ok((true, true));
        }
        // Vault serves the CLI's mount preflight to any valid token, without an ACL check.
        if req.op == Operation::Read && req.path.starts_with("sys/internal/ui/mounts") {
            return Ok((true, false));
        }
        let op = match req.op {
            Operation::Read => PolicyOp::Read,
            Operation::List => PolicyOp::List,
            Operation::Delete => PolicyOp::Delete,
            Operation::Patch => PolicyOp::Patch,
            Operation::Update => {
                let exists = match target.engine() {
                    Some(m) => m.engine.exists(target.rel(&req.path), req).await?,
                    None => true,
                };
                if exists {
                    PolicyOp::Update
                } else {
                    PolicyOp::Create
                }
            }
        };
        let d = acl.check(&req.path, op);
        let allowed = d.allowed && (!needs_sudo(&req.path, req.op) || d.sudo);
        Ok((allowed, d.sudo))
    }
}

impl Core {
    /// A login request: no client token; the auth method vouches for an identity and the
    /// token store mints a token for it. Audited like everything else.
    async fn login(
        &self,
        active: &Active,
        m: Arc<Mounted>,
        rel: &str,
        req: &Request,
        remote: Option<&str>,
    ) -> ApiResult {
        // Before anything else: a login checks a credential, so this is also what stops
        // brute-forcing a role's secret.
        if let Some(e) = self
            .over_limit(active, req, m.entry.kind.as_str(), remote)
            .await
        {
            return Err(e);
        }
        let mut log = Entry {
            kind: EntryType::Request,
            request_id: &req.id,
            operation: req.op.as_str(),
            path: &req.path,
            mount_type: Some(m.entry.kind.as_str()),
            remote_address: remote,
            request_data: req.body.as_ref(),
            ..Default::default()
        };
        let devices = active.audit.all();
        Broker::log_to(&devices, &log).await?;
        let result = match m.engine.login(rel, req).await {
            Ok(identity) => active
                .tokens
                .create_for_login(identity, &req.path)
                .await
                .map(|(token, entry)| crate::token_api::auth_reply(&entry, token)),
            Err(e) => Err(e),
        };
        let result = crate::wrapping::maybe_wrap(active, req, result).await;
        let (resp_data, resp_auth, status, err_text) = match &result {
            Ok(Reply::Logical(l)) => (audited_data(l), l.auth.as_ref(), 200, None),
            Ok(_) => (None, None, 200, None),
            Err(e) => (None, None, e.status, Some(e.errors.join("; "))),
        };
        log.kind = EntryType::Response;
        log.response_data = resp_data.as_ref();
        log.response_auth = resp_auth.map(|a| ResponseAuth {
            client_token: a.client_token.expose(),
            accessor: &a.accessor,
            policies: &a.policies,
            metadata: a.metadata.as_ref(),
            lease_duration: a.lease_duration,
            renewable: a.renewable,
            token_type: &a.token_type,
            orphan: a.orphan,
        });
        log.status = Some(status);
        log.error = err_text.as_deref();
        Broker::log_to(&devices, &log).await?;
        result
    }
}

impl Core {
    /// Takes one token from the client's bucket; when it is empty, records the refusal as a
    /// failed request (no body: cheap, and nothing in it matters) and returns the 429.
    async fn over_limit(
        &self,
        active: &Active,
        req: &Request,
        mount_type: &str,
        remote: Option<&str>,
    ) -> Option<ApiError> {
        if self.rate_limiter.check(ClientKey::from_remote(req.remote)) {
            return None;
        }
        let err = ApiError::rate_limited();
        let log = Entry {
            kind: EntryType::Request,
            request_id: &req.id,
            operation: req.op.as_str(),
            path: &req.path,
            mount_type: Some(mount_type),
            remote_address: remote,
            client_token: req.token.as_ref().map(|t| t.expose()),
            status: Some(err.status),
            error: err.errors.first().map(String::as_str),
            ..Default::default()
        };
        if let Err(e) = Broker::log_to(&active.audit.all(), &log).await {
            return Some(e);
        }
        Some(err)
    }
}

/// `auth/token/create`, `create-orphan` and `create/<role>`: the rate-limited token mints.
fn is_token_create(req: &Request) -> bool {
    let p = req.path.trim_end_matches('/');
    req.op == Operation::Update
        && (p == "auth/token/create"
            || p == "auth/token/create-orphan"
            || p.starts_with("auth/token/create/"))
}

/// What the audit log records as response data. For a wrapped response that is the
/// `wrap_info` (whose token the device HMACs like every string), never the wrapped content.
fn audited_data(l: &Logical) -> Option<Value> {
    match &l.wrap_info {
        Some(w) => Some(serde_json::json!({ "wrap_info": w })),
        None => l.data.as_value().cloned(),
    }
}

/// Policy check for handlers that must test another path (e.g. `sys/capabilities-self`).
pub fn capabilities(acl: &Acl, path: &str) -> Vec<&'static str> {
    if acl.is_root() {
        return vec!["root"];
    }
    let caps = acl.capabilities(path);
    if caps.is_empty() {
        return vec!["deny"];
    }
    caps.names()
}
