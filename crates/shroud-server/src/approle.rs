//! The AppRole auth method (Vault's `approle`): a machine logs in with a role ID and a secret ID.
//!
//! Storage under the mount's barrier prefix `auth/<mount uuid>/`:
//! - `salt`: 32 random bytes, the HMAC key of every index below. It lives behind the barrier,
//!   so whoever reads storage can neither recover a secret ID nor test guesses offline;
//! - `role/<name>`: the role (names are lower-cased, as Vault does for new roles);
//! - `role_id/<hmac(role_id)>`: role ID index → role name;
//! - `secret_id/<role uuid>/<hmac(secret_id)>`: one secret ID's properties, never the secret ID;
//! - `accessor/<role uuid>/<hmac(accessor)>`: accessor index → hmac(secret_id).
//!
//! Secret IDs are filed under the role's internal uuid, not its name, so deleting and
//! recreating a role can never bring old secret IDs back to life.
//!
//! Every login failure answers 400 `invalid role or secret ID`, whichever part was wrong
//! (unknown role ID, unknown/expired/exhausted secret ID, source address outside a CIDR
//! binding): a caller must not learn that half of a credential pair is valid. The reason goes
//! to the server log, without any credential.
//!
//! The token parameters (`token_*` fields), the CIDR matcher and the name rule are shared with
//! the JWT/Kubernetes method (`crate::jwt`).

use crate::api::{
    bool_field, duration_field, string_list, timestamp, uint_field, uuid, ApiError, ApiResult,
    Logical, Operation, Reply, Request,
};
use crate::engine::{Engine, LoginResult};
use hmac::{Hmac, Mac};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use sha2::Sha256;
use shroud_core::{SecretBytes, SecretString};
use shroud_crypto::{Barrier, BarrierOp};
use std::collections::hash_map::DefaultHasher;
use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use subtle::ConstantTimeEq;

/// The one answer to every failed login.
const INVALID_CREDENTIALS: &str = "invalid role or secret ID";
/// Lock stripes serialising use-count updates of one secret ID.
const LOCK_STRIPES: usize = 64;
/// Longest role name.
pub(crate) const MAX_NAME_LEN: usize = 128;
/// Longest role ID or custom secret ID accepted.
const MAX_CREDENTIAL_LEN: usize = 1024;
/// Most CIDR blocks in one list.
const MAX_CIDRS: usize = 64;
/// Most policies on one role.
const MAX_POLICIES: usize = 64;
/// Longest policy name.
const MAX_POLICY_LEN: usize = 128;
/// Bounds on secret ID metadata.
const MAX_METADATA_ENTRIES: usize = 64;
const MAX_METADATA_KEY_LEN: usize = 128;
const MAX_METADATA_VALUE_LEN: usize = 1024;
/// Vault prints a secret ID that never expires with Go's zero time.
const GO_ZERO_TIME: &str = "0001-01-01T00:00:00Z";

// ---------------------------------------------------------------------------------------------
// Shared with crate::jwt: names, token parameters, CIDR blocks.
// ---------------------------------------------------------------------------------------------

/// Vault's `GenericNameRegex`: `\w(([\w.-]+)?\w)?` (ASCII word characters), bounded length.
pub(crate) fn valid_name(name: &str) -> bool {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name.chars().all(|c| word(c) || c == '-' || c == '.')
        && name.starts_with(word)
        && name.ends_with(word)
}

/// Reads an optional string field, rejecting non-strings and overlong values.
pub(crate) fn str_field<'r>(
    req: &'r Request,
    key: &str,
    max: usize,
) -> Result<Option<&'r str>, ApiError> {
    match req.field(key) {
        None => Ok(None),
        Some(Value::String(s)) if s.len() <= max => Ok(Some(s.as_str())),
        Some(Value::String(_)) => Err(ApiError::bad_request(format!("{key} is too long"))),
        Some(_) => Err(ApiError::bad_request(format!("{key} must be a string"))),
    }
}

/// The token a role hands out: Vault's `tokenutil` fields, shared by every auth method here.
#[derive(Serialize, Deserialize, Clone, Default, Debug, PartialEq, Eq)]
pub(crate) struct TokenParams {
    /// Lower-cased, deduplicated, sorted.
    pub policies: Vec<String>,
    /// Seconds; 0 = the system default.
    pub ttl: u64,
    /// Seconds; 0 = the system maximum.
    pub max_ttl: u64,
    /// Seconds; 0 = none.
    pub explicit_max_ttl: u64,
    /// Seconds; 0 = not periodic.
    pub period: u64,
    /// 0 = unlimited.
    pub num_uses: u64,
    /// `""`/`default`/`service`/`default-service` (batch tokens are not served).
    pub token_type: String,
    /// Do not attach `default`.
    pub no_default_policy: bool,
}

/// Parses a policy list (array or comma-joined string, as hvac sends it).
fn parse_policies(v: Option<&Value>) -> Result<Vec<String>, ApiError> {
    let mut out: Vec<String> = string_list(v)?
        .into_iter()
        .map(|p| p.to_lowercase())
        .collect();
    if out.len() > MAX_POLICIES {
        return Err(ApiError::bad_request(format!(
            "too many policies (at most {MAX_POLICIES})"
        )));
    }
    for p in &out {
        if p.len() > MAX_POLICY_LEN || p.chars().any(char::is_control) {
            return Err(ApiError::bad_request("invalid policy name"));
        }
        if p == "root" {
            // The token store would refuse at login anyway; refusing here makes the role
            // unusable mistake visible when it is made.
            return Err(ApiError::bad_request(
                "the root policy cannot be granted by an auth method",
            ));
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

impl TokenParams {
    /// Applies the `token_*` fields present in `req` (absent fields keep their value, as a
    /// Vault role update does). `legacy` also accepts the pre-`token_*` names the JWT and
    /// Kubernetes methods still take (`ttl`, `max_ttl`, `num_uses`, `bound_cidrs`); `policies`
    /// and `period` are accepted everywhere. A `token_*` field wins over its legacy alias.
    pub(crate) fn update(&mut self, req: &Request, legacy: bool) -> Result<(), ApiError> {
        let pick = |new: &str, old: &str, allowed: bool| {
            req.field(new)
                .or_else(|| if allowed { req.field(old) } else { None })
        };
        if let Some(v) = pick("token_policies", "policies", true) {
            self.policies = parse_policies(Some(v))?;
        }
        if let Some(d) = duration_field(pick("token_ttl", "ttl", legacy), "token_ttl")? {
            self.ttl = d.as_secs();
        }
        if let Some(d) = duration_field(pick("token_max_ttl", "max_ttl", legacy), "token_max_ttl")?
        {
            self.max_ttl = d.as_secs();
        }
        if let Some(d) = duration_field(
            req.field("token_explicit_max_ttl"),
            "token_explicit_max_ttl",
        )? {
            self.explicit_max_ttl = d.as_secs();
        }
        if let Some(d) = duration_field(pick("token_period", "period", true), "token_period")? {
            self.period = d.as_secs();
        }
        if let Some(n) = uint_field(pick("token_num_uses", "num_uses", legacy), "token_num_uses")? {
            self.num_uses = n;
        }
        if let Some(b) = bool_field(
            req.field("token_no_default_policy"),
            "token_no_default_policy",
        )? {
            self.no_default_policy = b;
        }
        if let Some(t) = str_field(req, "token_type", 32)? {
            match t {
                "" | "default" | "service" | "default-service" => self.token_type = t.to_owned(),
                "batch" | "default-batch" => {
                    return Err(ApiError::bad_request(
                        "batch tokens are not supported by this server; use token_type \"service\"",
                    ))
                }
                _ => return Err(ApiError::bad_request("invalid token_type")),
            }
        }
        // Binding tokens to CIDRs needs the token store to check every use; until it does,
        // accepting the field would silently drop a restriction the operator asked for.
        if !string_list(pick("token_bound_cidrs", "bound_cidrs", legacy))?.is_empty() {
            return Err(ApiError::bad_request(
                "token_bound_cidrs is not supported by this server yet",
            ));
        }
        if self.ttl > 0 && self.max_ttl > 0 && self.ttl > self.max_ttl {
            return Err(ApiError::bad_request(
                "token_ttl should not be greater than token_max_ttl",
            ));
        }
        Ok(())
    }

    /// Writes the `token_*` fields (and, with `legacy`, their old names) into a role read.
    pub(crate) fn json_into(&self, m: &mut Map<String, Value>, legacy: bool) {
        let token_type = if self.token_type.is_empty() {
            "default"
        } else {
            self.token_type.as_str()
        };
        m.insert("token_bound_cidrs".into(), json!([]));
        m.insert(
            "token_explicit_max_ttl".into(),
            json!(self.explicit_max_ttl),
        );
        m.insert("token_max_ttl".into(), json!(self.max_ttl));
        m.insert(
            "token_no_default_policy".into(),
            json!(self.no_default_policy),
        );
        m.insert("token_num_uses".into(), json!(self.num_uses));
        m.insert("token_period".into(), json!(self.period));
        m.insert("token_policies".into(), json!(self.policies));
        m.insert("token_ttl".into(), json!(self.ttl));
        m.insert("token_type".into(), json!(token_type));
        m.insert("policies".into(), json!(self.policies));
        m.insert("period".into(), json!(self.period));
        if legacy {
            m.insert("ttl".into(), json!(self.ttl));
            m.insert("max_ttl".into(), json!(self.max_ttl));
            m.insert("num_uses".into(), json!(self.num_uses));
            m.insert("bound_cidrs".into(), json!([]));
        }
    }

    /// The identity handed to the core.
    ///
    /// `LoginResult` has no renewal cap, so `token_max_ttl` becomes a hard cap (the smaller of
    /// it and `token_explicit_max_ttl`): the token can never outlive what the role allows.
    pub(crate) fn login_result(
        &self,
        metadata: Map<String, Value>,
        display_name: String,
    ) -> LoginResult {
        let cap = match (self.explicit_max_ttl, self.max_ttl) {
            (0, m) => m,
            (e, 0) => e,
            (e, m) => e.min(m),
        };
        LoginResult {
            policies: self.policies.clone(),
            no_default_policy: self.no_default_policy,
            ttl: Duration::from_secs(self.ttl),
            explicit_max_ttl: Duration::from_secs(cap),
            period: Duration::from_secs(self.period),
            num_uses: self.num_uses,
            token_type: (!self.token_type.is_empty()).then(|| self.token_type.clone()),
            metadata,
            display_name,
        }
    }
}

/// An IPv4 or IPv6 CIDR block (a bare address is a single-host block, as Vault accepts).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Cidr {
    /// The network address, host bits cleared.
    net: IpAddr,
    prefix: u8,
}

fn mask4(prefix: u8) -> u32 {
    // Shifting a u32 by 32 overflows: /0 is handled explicitly.
    if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(prefix))
    }
}

fn mask6(prefix: u8) -> u128 {
    if prefix == 0 {
        0
    } else {
        u128::MAX << (128 - u32::from(prefix))
    }
}

impl Cidr {
    /// Parses `10.0.0.0/8`, `2001:db8::/32` or a bare address. Host bits are cleared
    /// (`10.1.2.3/8` is `10.0.0.0/8`), as Go's `net.ParseCIDR` does for the network.
    pub(crate) fn parse(s: &str) -> Option<Cidr> {
        let s = s.trim();
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => {
                if p.is_empty() || p.len() > 3 || !p.bytes().all(|b| b.is_ascii_digit()) {
                    return None;
                }
                (a, Some(p.parse::<u8>().ok()?))
            }
            None => (s, None),
        };
        let ip: IpAddr = addr.parse().ok()?;
        match ip {
            IpAddr::V4(v4) => {
                let prefix = prefix.unwrap_or(32);
                if prefix > 32 {
                    return None;
                }
                let net = u32::from(v4) & mask4(prefix);
                Some(Cidr {
                    net: IpAddr::V4(net.into()),
                    prefix,
                })
            }
            IpAddr::V6(v6) => {
                let prefix = prefix.unwrap_or(128);
                if prefix > 128 {
                    return None;
                }
                let net = u128::from(v6) & mask6(prefix);
                Some(Cidr {
                    net: IpAddr::V6(net.into()),
                    prefix,
                })
            }
        }
    }

    /// Whether `ip` is inside the block. An IPv4-mapped IPv6 peer (`::ffff:10.0.0.1`, what a
    /// dual-stack listener reports) is treated as the IPv4 address it carries.
    pub(crate) fn contains(&self, ip: IpAddr) -> bool {
        self.contains_exact(ip.to_canonical())
    }

    fn contains_exact(&self, ip: IpAddr) -> bool {
        match (self.net, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                u32::from(ip) & mask4(self.prefix) == u32::from(net)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                u128::from(ip) & mask6(self.prefix) == u128::from(net)
            }
            _ => false,
        }
    }

    /// Whether every address of `other` is inside this block.
    pub(crate) fn covers(&self, other: &Cidr) -> bool {
        self.prefix <= other.prefix && self.contains_exact(other.net)
    }
}

/// Parses a CIDR list field (array or comma-joined string), keeping the strings as given.
pub(crate) fn cidr_list(v: Option<&Value>, name: &str) -> Result<Vec<String>, ApiError> {
    let list = string_list(v)?;
    if list.len() > MAX_CIDRS {
        return Err(ApiError::bad_request(format!(
            "too many CIDR blocks in {name} (at most {MAX_CIDRS})"
        )));
    }
    for c in &list {
        if c.len() > 64 || Cidr::parse(c).is_none() {
            return Err(ApiError::bad_request(format!(
                "invalid CIDR block in {name}"
            )));
        }
    }
    Ok(list)
}

/// Whether `remote` is inside one of `cidrs`. No peer address (an in-process caller) fails
/// closed: a binding that cannot be checked is not satisfied.
pub(crate) fn cidrs_allow(cidrs: &[String], remote: Option<IpAddr>) -> bool {
    let Some(ip) = remote else { return false };
    cidrs
        .iter()
        .filter_map(|c| Cidr::parse(c))
        .any(|c| c.contains(ip))
}

/// Milliseconds since the epoch.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

fn ms_timestamp(ms: u64) -> String {
    timestamp(UNIX_EPOCH + Duration::from_millis(ms))
}

// ---------------------------------------------------------------------------------------------
// Stored records.
// ---------------------------------------------------------------------------------------------

/// A role. Holds the role ID (a credential half): no `Debug`.
#[derive(Serialize, Deserialize, Clone)]
struct Role {
    name: String,
    /// Internal identity, new on every create: the secret IDs are filed under it.
    id: String,
    role_id: String,
    bind_secret_id: bool,
    secret_id_bound_cidrs: Vec<String>,
    secret_id_num_uses: u64,
    secret_id_ttl: u64,
    local_secret_ids: bool,
    token: TokenParams,
}

impl Role {
    fn json(&self) -> Value {
        let mut m = Map::new();
        m.insert("bind_secret_id".into(), json!(self.bind_secret_id));
        m.insert("local_secret_ids".into(), json!(self.local_secret_ids));
        m.insert(
            "secret_id_bound_cidrs".into(),
            json!(self.secret_id_bound_cidrs),
        );
        m.insert("secret_id_num_uses".into(), json!(self.secret_id_num_uses));
        m.insert("secret_id_ttl".into(), json!(self.secret_id_ttl));
        self.token.json_into(&mut m, false);
        Value::Object(m)
    }
}

/// One secret ID's properties. The secret ID itself is only ever in the storage key, HMAC'd.
#[derive(Serialize, Deserialize, Clone, Debug)]
struct SecretIdEntry {
    accessor: String,
    /// Remaining uses; 0 = unlimited.
    num_uses: u64,
    /// TTL at creation, seconds; 0 = never expires.
    ttl: u64,
    created_ms: u64,
    updated_ms: u64,
    /// 0 = never.
    expires_ms: u64,
    metadata: BTreeMap<String, String>,
    cidr_list: Vec<String>,
}

impl SecretIdEntry {
    fn expired(&self, now: u64) -> bool {
        self.expires_ms != 0 && now >= self.expires_ms
    }

    fn json(&self) -> Value {
        json!({
            "secret_id_accessor": self.accessor,
            "secret_id_num_uses": self.num_uses,
            "secret_id_ttl": self.ttl,
            "creation_time": ms_timestamp(self.created_ms),
            "expiration_time": if self.expires_ms == 0 {
                GO_ZERO_TIME.to_owned()
            } else {
                ms_timestamp(self.expires_ms)
            },
            "last_updated_time": ms_timestamp(self.updated_ms),
            "metadata": self.metadata,
            "cidr_list": self.cidr_list,
            "token_bound_cidrs": [],
        })
    }
}

/// Secret ID metadata: a JSON object, a JSON-encoded object string (what hvac sends) or
/// `k=v,k2=v2` (Vault's `ParseArbitraryKeyValues`). Values must be strings.
fn parse_metadata(v: Option<&Value>) -> Result<BTreeMap<String, String>, ApiError> {
    let bad = || ApiError::bad_request("failed to parse metadata: expected a map of strings");
    let obj = match v {
        None => return Ok(BTreeMap::new()),
        Some(Value::Object(m)) => m.clone(),
        Some(Value::String(s)) if s.trim().is_empty() => return Ok(BTreeMap::new()),
        Some(Value::String(s)) if s.trim_start().starts_with('{') => {
            match serde_json::from_str::<Value>(s) {
                Ok(Value::Object(m)) => m,
                _ => return Err(bad()),
            }
        }
        Some(Value::String(s)) => {
            let mut m = Map::new();
            for pair in s.split(',') {
                let (k, v) = pair.split_once('=').ok_or_else(bad)?;
                m.insert(k.trim().to_owned(), Value::String(v.trim().to_owned()));
            }
            m
        }
        Some(_) => return Err(bad()),
    };
    if obj.len() > MAX_METADATA_ENTRIES {
        return Err(ApiError::bad_request(format!(
            "too many metadata entries (at most {MAX_METADATA_ENTRIES})"
        )));
    }
    let mut out = BTreeMap::new();
    for (k, v) in obj {
        let Value::String(v) = v else {
            return Err(bad());
        };
        if k.is_empty() || k.len() > MAX_METADATA_KEY_LEN || v.len() > MAX_METADATA_VALUE_LEN {
            return Err(ApiError::bad_request(
                "failed to parse metadata: key or value too long",
            ));
        }
        out.insert(k, v);
    }
    Ok(out)
}

fn internal_json(e: serde_json::Error) -> ApiError {
    ApiError::internal(&e)
}

/// Logs why a login was refused (never a credential) and answers the one generic error.
fn refuse(role: Option<&str>, reason: &'static str) -> ApiError {
    tracing::info!(role = role.unwrap_or("-"), reason, "approle login refused");
    ApiError::bad_request(INVALID_CREDENTIALS)
}

// ---------------------------------------------------------------------------------------------
// The engine.
// ---------------------------------------------------------------------------------------------

/// One mounted AppRole auth method.
pub struct AppRole {
    prefix: String,
    barrier: Arc<Barrier>,
    salt: tokio::sync::OnceCell<SecretBytes>,
    /// Writers: role create/update/delete and role ID changes. Readers: everything that reads
    /// a role and then acts on it (secret ID operations, login), so a role cannot be deleted
    /// or re-keyed half-way through.
    roles: tokio::sync::RwLock<()>,
    /// Serialise read-modify-write of one secret ID (use counts), keyed by its HMAC.
    stripes: Vec<tokio::sync::Mutex<()>>,
}

impl AppRole {
    /// A method storing under `auth/<uuid>/`.
    pub fn new(barrier: Arc<Barrier>, uuid: &str) -> Self {
        Self {
            prefix: format!("auth/{uuid}/"),
            barrier,
            salt: tokio::sync::OnceCell::new(),
            roles: tokio::sync::RwLock::new(()),
            stripes: (0..LOCK_STRIPES)
                .map(|_| tokio::sync::Mutex::new(()))
                .collect(),
        }
    }

    fn stripe(&self, hash: &str) -> &tokio::sync::Mutex<()> {
        let mut h = DefaultHasher::new();
        hash.hash(&mut h);
        // LOCK_STRIPES > 0, so the remainder is a valid index.
        &self.stripes[(h.finish() as usize) % LOCK_STRIPES]
    }

    async fn salt(&self) -> Result<&SecretBytes, ApiError> {
        self.salt
            .get_or_try_init(|| async {
                let key = format!("{}salt", self.prefix);
                if let Some(s) = self.barrier.get(&key).await? {
                    if s.len() != 32 {
                        return Err(ApiError::internal(&"approle salt has the wrong length"));
                    }
                    return Ok(s);
                }
                let mut b = vec![0u8; 32];
                getrandom::fill(&mut b).map_err(|e| ApiError::internal(&e))?;
                let salt = SecretBytes::new(b);
                self.barrier.put(&key, salt.expose()).await?;
                Ok(salt)
            })
            .await
    }

    /// HMAC-SHA256(salt, kind ‖ 0 ‖ value), hex. `kind` separates the index domains.
    async fn hash(&self, kind: &str, value: &str) -> Result<String, ApiError> {
        let salt = self.salt().await?;
        let mut mac =
            Hmac::<Sha256>::new_from_slice(salt.expose()).map_err(|e| ApiError::internal(&e))?;
        mac.update(kind.as_bytes());
        mac.update(&[0]);
        mac.update(value.as_bytes());
        Ok(hex::encode(mac.finalize().into_bytes()))
    }

    fn key(&self, rest: &str) -> String {
        format!("{}{rest}", self.prefix)
    }

    async fn load<T: DeserializeOwned>(&self, rest: &str) -> Result<Option<T>, ApiError> {
        match self.barrier.get(&self.key(rest)).await? {
            Some(raw) => serde_json::from_slice(raw.expose())
                .map(Some)
                .map_err(internal_json),
            None => Ok(None),
        }
    }

    fn put_op<T: Serialize>(&self, rest: &str, v: &T) -> Result<BarrierOp, ApiError> {
        Ok(BarrierOp::Put(
            self.key(rest),
            serde_json::to_vec(v).map_err(internal_json)?,
        ))
    }

    async fn load_role(&self, name: &str) -> Result<Option<Role>, ApiError> {
        self.load(&format!("role/{name}")).await
    }

    async fn role_or_400(&self, name: &str) -> Result<Role, ApiError> {
        self.load_role(name)
            .await?
            .ok_or_else(|| ApiError::bad_request(format!("role {name:?} does not exist")))
    }

    fn secret_key(role: &Role, hash: &str) -> String {
        format!("secret_id/{}/{hash}", role.id)
    }

    fn accessor_key(role: &Role, hash: &str) -> String {
        format!("accessor/{}/{hash}", role.id)
    }

    async fn route(&self, rel: &str, req: &Request) -> ApiResult {
        use Operation::{Delete, List, Read, Update};
        let rel = rel.trim_end_matches('/');
        let parts: Vec<&str> = rel.split('/').collect();
        let name = |raw: &str| -> Result<String, ApiError> {
            if valid_name(raw) {
                Ok(raw.to_lowercase())
            } else {
                Err(ApiError::bad_request(
                    "invalid role name: use letters, digits, '_', '-' and '.', at most 128 characters",
                ))
            }
        };
        match (parts.as_slice(), req.op) {
            (["role"], List) => self.list_roles().await,
            (["role", n], Read) => self.read_role(&name(n)?).await,
            (["role", n], Update) => self.write_role(&name(n)?, req).await,
            (["role", n], Delete) => self.delete_role(&name(n)?).await,
            (["role", n, "role-id"], Read) => self.read_role_id(&name(n)?).await,
            (["role", n, "role-id"], Update) => self.write_role_id(&name(n)?, req).await,
            (["role", n, "secret-id"], Update) => self.generate(&name(n)?, req, false).await,
            (["role", n, "secret-id"], List) => self.list_accessors(&name(n)?).await,
            (["role", n, "custom-secret-id"], Update) => self.generate(&name(n)?, req, true).await,
            (["role", n, "secret-id", "lookup"], Update) => {
                self.secret_op(&name(n)?, req, false).await
            }
            (["role", n, "secret-id", "destroy"], Update | Delete) => {
                self.secret_op(&name(n)?, req, true).await
            }
            (["role", n, "secret-id-accessor", "lookup"], Update) => {
                self.accessor_op(&name(n)?, req, false).await
            }
            (["role", n, "secret-id-accessor", "destroy"], Update | Delete) => {
                self.accessor_op(&name(n)?, req, true).await
            }
            (["login"], _)
            | (["role"], _)
            | (["role", _], _)
            | (["role", _, "role-id" | "secret-id" | "custom-secret-id"], _)
            | (["role", _, "secret-id" | "secret-id-accessor", "lookup" | "destroy"], _) => {
                Err(ApiError::unsupported_operation())
            }
            _ => Err(ApiError::no_route(&req.path)),
        }
    }

    async fn list_roles(&self) -> ApiResult {
        let base = self.key("role/");
        let keys: Vec<String> = self
            .barrier
            .list(&base)
            .await?
            .into_iter()
            .filter_map(|k| k.strip_prefix(&base).map(str::to_owned))
            .filter(|k| !k.contains('/'))
            .collect();
        if keys.is_empty() {
            return Err(ApiError::not_found());
        }
        Ok(reply(json!({ "keys": keys })))
    }

    async fn read_role(&self, name: &str) -> ApiResult {
        let _g = self.roles.read().await;
        match self.load_role(name).await? {
            Some(role) => Ok(reply(role.json())),
            None => Err(ApiError::not_found()),
        }
    }

    /// Makes `role_id` the role's role ID: refuses one held by another role, replaces the old
    /// index entry. Returns the batch ops; the caller holds the roles write lock.
    async fn role_id_ops(
        &self,
        role: &Role,
        old_role_id: Option<&str>,
    ) -> Result<Vec<BarrierOp>, ApiError> {
        let new_hash = self.hash("role_id", &role.role_id).await?;
        let mut ops = vec![];
        if let Some(owner) = self
            .barrier
            .get(&self.key(&format!("role_id/{new_hash}")))
            .await?
        {
            if owner.expose() != role.name.as_bytes() {
                return Err(ApiError::bad_request("role_id is already in use"));
            }
        }
        if let Some(old) = old_role_id {
            let old_hash = self.hash("role_id", old).await?;
            if old_hash != new_hash {
                ops.push(BarrierOp::Delete(self.key(&format!("role_id/{old_hash}"))));
            }
        }
        ops.push(BarrierOp::Put(
            self.key(&format!("role_id/{new_hash}")),
            role.name.as_bytes().to_vec(),
        ));
        Ok(ops)
    }

    async fn write_role(&self, name: &str, req: &Request) -> ApiResult {
        let _g = self.roles.write().await;
        let existing = self.load_role(name).await?;
        let created = existing.is_none();
        let mut role = match existing {
            Some(r) => r,
            None => Role {
                name: name.to_owned(),
                id: uuid(),
                role_id: uuid(),
                bind_secret_id: true,
                secret_id_bound_cidrs: vec![],
                secret_id_num_uses: 0,
                secret_id_ttl: 0,
                local_secret_ids: false,
                token: TokenParams::default(),
            },
        };
        let old_role_id = role.role_id.clone();
        if let Some(b) = bool_field(req.field("bind_secret_id"), "bind_secret_id")? {
            role.bind_secret_id = b;
        }
        if let Some(v) = req
            .field("secret_id_bound_cidrs")
            .or_else(|| req.field("bound_cidr_list"))
        {
            role.secret_id_bound_cidrs = cidr_list(Some(v), "secret_id_bound_cidrs")?;
        }
        if let Some(n) = uint_field(req.field("secret_id_num_uses"), "secret_id_num_uses")? {
            role.secret_id_num_uses = n;
        }
        if let Some(d) = duration_field(req.field("secret_id_ttl"), "secret_id_ttl")? {
            role.secret_id_ttl = d.as_secs();
        }
        // Vault only honours this at creation; secret IDs here are never replicated anyway.
        if created {
            let local = req
                .field("local_secret_ids")
                .or_else(|| req.field("enable_local_secret_ids"));
            if let Some(b) = bool_field(local, "local_secret_ids")? {
                role.local_secret_ids = b;
            }
        }
        if let Some(r) = str_field(req, "role_id", MAX_CREDENTIAL_LEN)? {
            let r = r.trim();
            if r.is_empty() {
                return Err(ApiError::bad_request("role_id cannot be empty"));
            }
            role.role_id = r.to_owned();
        }
        role.token.update(req, false)?;
        if !role.bind_secret_id && role.secret_id_bound_cidrs.is_empty() {
            // Vault's rule: a role must demand at least one thing of the caller.
            return Err(ApiError::bad_request(
                "at least one constraint should be enabled on the role (bind_secret_id or secret_id_bound_cidrs)",
            ));
        }
        let mut ops = if created || role.role_id != old_role_id {
            self.role_id_ops(&role, (!created).then_some(old_role_id.as_str()))
                .await?
        } else {
            vec![]
        };
        ops.push(self.put_op(&format!("role/{name}"), &role)?);
        self.barrier.write_batch(ops).await?;
        Ok(Reply::NoContent)
    }

    async fn delete_role(&self, name: &str) -> ApiResult {
        let _g = self.roles.write().await;
        let Some(role) = self.load_role(name).await? else {
            return Ok(Reply::NoContent);
        };
        let mut ops = vec![BarrierOp::Delete(self.key(&format!("role/{name}")))];
        let rid = self.hash("role_id", &role.role_id).await?;
        ops.push(BarrierOp::Delete(self.key(&format!("role_id/{rid}"))));
        for prefix in [
            format!("secret_id/{}/", role.id),
            format!("accessor/{}/", role.id),
        ] {
            for k in self.barrier.list(&self.key(&prefix)).await? {
                ops.push(BarrierOp::Delete(k));
            }
        }
        self.barrier.write_batch(ops).await?;
        Ok(Reply::NoContent)
    }

    async fn read_role_id(&self, name: &str) -> ApiResult {
        let _g = self.roles.read().await;
        match self.load_role(name).await? {
            Some(role) => Ok(reply(json!({ "role_id": role.role_id }))),
            None => Err(ApiError::not_found()),
        }
    }

    async fn write_role_id(&self, name: &str, req: &Request) -> ApiResult {
        let _g = self.roles.write().await;
        let mut role = self.role_or_400(name).await?;
        let new = match str_field(req, "role_id", MAX_CREDENTIAL_LEN)?.map(str::trim) {
            Some(r) if !r.is_empty() => r.to_owned(),
            _ => return Err(ApiError::bad_request("missing role_id")),
        };
        if new == role.role_id {
            return Ok(Reply::NoContent);
        }
        let old = std::mem::replace(&mut role.role_id, new);
        let mut ops = self.role_id_ops(&role, Some(&old)).await?;
        ops.push(self.put_op(&format!("role/{name}"), &role)?);
        self.barrier.write_batch(ops).await?;
        Ok(Reply::NoContent)
    }

    async fn generate(&self, name: &str, req: &Request, custom: bool) -> ApiResult {
        let _g = self.roles.read().await;
        let role = self.role_or_400(name).await?;
        if !role.bind_secret_id {
            return Err(ApiError::bad_request(
                "bind_secret_id is not set on the role",
            ));
        }
        let secret = if custom {
            match str_field(req, "secret_id", MAX_CREDENTIAL_LEN)?.map(str::trim) {
                Some(s) if !s.is_empty() => SecretString::from(s),
                _ => return Err(ApiError::bad_request("missing secret_id")),
            }
        } else {
            SecretString::new(uuid())
        };
        let cidrs = cidr_list(req.field("cidr_list"), "cidr_list")?;
        if !role.secret_id_bound_cidrs.is_empty() {
            let role_blocks: Vec<Cidr> = role
                .secret_id_bound_cidrs
                .iter()
                .filter_map(|c| Cidr::parse(c))
                .collect();
            for c in cidrs.iter().filter_map(|c| Cidr::parse(c)) {
                if !role_blocks.iter().any(|r| r.covers(&c)) {
                    return Err(ApiError::bad_request(
                        "cidr_list must be a subset of the role's secret_id_bound_cidrs",
                    ));
                }
            }
        }
        if !string_list(req.field("token_bound_cidrs"))?.is_empty() {
            return Err(ApiError::bad_request(
                "token_bound_cidrs is not supported by this server yet",
            ));
        }
        let num_uses = match uint_field(req.field("num_uses"), "num_uses")? {
            Some(n) => {
                let r = role.secret_id_num_uses;
                if r > 0 && (n == 0 || n > r) {
                    return Err(ApiError::bad_request(
                        "num_uses cannot be higher than the role's secret_id_num_uses",
                    ));
                }
                n
            }
            None => role.secret_id_num_uses,
        };
        let ttl = match duration_field(req.field("ttl"), "ttl")? {
            Some(d) => {
                let (t, r) = (d.as_secs(), role.secret_id_ttl);
                if r > 0 && (t == 0 || t > r) {
                    return Err(ApiError::bad_request(
                        "ttl cannot be longer than the role's secret_id_ttl",
                    ));
                }
                t
            }
            None => role.secret_id_ttl,
        };
        let metadata = parse_metadata(req.field("metadata"))?;

        let hash = self.hash("secret_id", secret.expose()).await?;
        let accessor = uuid();
        let acc_hash = self.hash("accessor", &accessor).await?;
        let _l = self.stripe(&hash).lock().await;
        let key = Self::secret_key(&role, &hash);
        if self.barrier.get(&self.key(&key)).await?.is_some() {
            return Err(ApiError::bad_request("secret_id is already registered"));
        }
        let now = now_ms();
        let entry = SecretIdEntry {
            accessor: accessor.clone(),
            num_uses,
            ttl,
            created_ms: now,
            updated_ms: now,
            expires_ms: if ttl == 0 {
                0
            } else {
                now.saturating_add(ttl.saturating_mul(1000))
            },
            metadata,
            cidr_list: cidrs,
        };
        self.barrier
            .write_batch(vec![
                self.put_op(&key, &entry)?,
                BarrierOp::Put(
                    self.key(&Self::accessor_key(&role, &acc_hash)),
                    hash.into_bytes(),
                ),
            ])
            .await?;
        Ok(reply(json!({
            "secret_id": secret.expose(),
            "secret_id_accessor": accessor,
            "secret_id_ttl": ttl,
            "secret_id_num_uses": num_uses,
        })))
    }

    async fn list_accessors(&self, name: &str) -> ApiResult {
        let _g = self.roles.read().await;
        let Some(role) = self.load_role(name).await? else {
            return Err(ApiError::not_found());
        };
        let now = now_ms();
        let mut keys = vec![];
        for k in self
            .barrier
            .list(&self.key(&format!("secret_id/{}/", role.id)))
            .await?
        {
            if let Some(raw) = self.barrier.get(&k).await? {
                let e: SecretIdEntry =
                    serde_json::from_slice(raw.expose()).map_err(internal_json)?;
                if !e.expired(now) {
                    keys.push(e.accessor);
                }
            }
        }
        if keys.is_empty() {
            return Err(ApiError::not_found());
        }
        keys.sort();
        Ok(reply(json!({ "keys": keys })))
    }

    /// Deletes a secret ID and its accessor index in one batch.
    async fn destroy_entry(
        &self,
        role: &Role,
        hash: &str,
        entry: &SecretIdEntry,
    ) -> Result<(), ApiError> {
        let acc_hash = self.hash("accessor", &entry.accessor).await?;
        self.barrier
            .write_batch(vec![
                BarrierOp::Delete(self.key(&Self::secret_key(role, hash))),
                BarrierOp::Delete(self.key(&Self::accessor_key(role, &acc_hash))),
            ])
            .await?;
        Ok(())
    }

    /// Looks up (or destroys) by hash, under the caller's stripe lock. An expired entry is
    /// removed and reported as absent.
    async fn entry_by_hash(
        &self,
        role: &Role,
        hash: &str,
    ) -> Result<Option<SecretIdEntry>, ApiError> {
        let Some(entry) = self
            .load::<SecretIdEntry>(&Self::secret_key(role, hash))
            .await?
        else {
            return Ok(None);
        };
        if entry.expired(now_ms()) {
            self.destroy_entry(role, hash, &entry).await?;
            return Ok(None);
        }
        Ok(Some(entry))
    }

    /// `secret-id/lookup` and `secret-id/destroy`. Like Vault, an unknown secret ID answers
    /// 204 to both.
    async fn secret_op(&self, name: &str, req: &Request, destroy: bool) -> ApiResult {
        let _g = self.roles.read().await;
        let role = self.role_or_400(name).await?;
        let secret = match str_field(req, "secret_id", MAX_CREDENTIAL_LEN)?.map(str::trim) {
            Some(s) if !s.is_empty() => s,
            _ => return Err(ApiError::bad_request("missing secret_id")),
        };
        let hash = self.hash("secret_id", secret).await?;
        let _l = self.stripe(&hash).lock().await;
        let Some(entry) = self.entry_by_hash(&role, &hash).await? else {
            return Ok(Reply::NoContent);
        };
        if destroy {
            self.destroy_entry(&role, &hash, &entry).await?;
            return Ok(Reply::NoContent);
        }
        Ok(reply(entry.json()))
    }

    /// `secret-id-accessor/lookup` and `/destroy`: 404 for an unknown accessor (Vault's
    /// lookup answers 404; its destroy answers 500, which is no better).
    async fn accessor_op(&self, name: &str, req: &Request, destroy: bool) -> ApiResult {
        let _g = self.roles.read().await;
        let role = self.role_or_400(name).await?;
        let accessor = match str_field(req, "secret_id_accessor", 256)?.map(str::trim) {
            Some(s) if !s.is_empty() => s,
            _ => return Err(ApiError::bad_request("missing secret_id_accessor")),
        };
        let not_found =
            || ApiError::new(404, "failed to find accessor entry for secret_id_accessor");
        let acc_hash = self.hash("accessor", accessor).await?;
        let Some(raw) = self
            .barrier
            .get(&self.key(&Self::accessor_key(&role, &acc_hash)))
            .await?
        else {
            return Err(not_found());
        };
        let hash = String::from_utf8(raw.expose().to_vec()).map_err(|e| ApiError::internal(&e))?;
        let _l = self.stripe(&hash).lock().await;
        let Some(entry) = self.entry_by_hash(&role, &hash).await? else {
            return Err(not_found());
        };
        if destroy {
            self.destroy_entry(&role, &hash, &entry).await?;
            return Ok(Reply::NoContent);
        }
        Ok(reply(entry.json()))
    }

    async fn do_login(&self, req: &Request) -> Result<LoginResult, ApiError> {
        let role_id = match req.field("role_id") {
            Some(Value::String(s)) if !s.trim().is_empty() => s.trim(),
            _ => return Err(ApiError::bad_request("missing role_id")),
        };
        if role_id.len() > MAX_CREDENTIAL_LEN {
            return Err(refuse(None, "role_id too long"));
        }
        let secret_id = match req.field("secret_id") {
            None => None,
            Some(Value::String(s)) => Some(s.trim()).filter(|s| !s.is_empty()),
            Some(_) => return Err(refuse(None, "secret_id is not a string")),
        };
        let remote = req.remote.map(|a| a.ip());

        let _g = self.roles.read().await;
        let rid_hash = self.hash("role_id", role_id).await?;
        let Some(owner) = self
            .barrier
            .get(&self.key(&format!("role_id/{rid_hash}")))
            .await?
        else {
            return Err(refuse(None, "unknown role_id"));
        };
        let name =
            String::from_utf8(owner.expose().to_vec()).map_err(|e| ApiError::internal(&e))?;
        let Some(role) = self.load_role(&name).await? else {
            return Err(refuse(None, "role_id index points to a missing role"));
        };
        // The index is keyed by the HMAC, so this only guards against a stale index entry;
        // it compares a credential, hence constant time.
        if !bool::from(role.role_id.as_bytes().ct_eq(role_id.as_bytes())) {
            return Err(refuse(Some(&name), "role_id index is stale"));
        }
        // Checked before any use count is spent: a caller from outside the allowed networks
        // must not be able to burn a secret ID's uses.
        if !role.secret_id_bound_cidrs.is_empty()
            && !cidrs_allow(&role.secret_id_bound_cidrs, remote)
        {
            return Err(refuse(
                Some(&name),
                "source address outside the role's secret_id_bound_cidrs",
            ));
        }
        let mut metadata = Map::new();
        if role.bind_secret_id {
            let Some(secret) = secret_id else {
                return Err(refuse(Some(&name), "missing secret_id"));
            };
            if secret.len() > MAX_CREDENTIAL_LEN {
                return Err(refuse(Some(&name), "secret_id too long"));
            }
            let hash = self.hash("secret_id", secret).await?;
            let _l = self.stripe(&hash).lock().await;
            let Some(mut entry) = self.entry_by_hash(&role, &hash).await? else {
                return Err(refuse(Some(&name), "unknown or expired secret_id"));
            };
            if !entry.cidr_list.is_empty() && !cidrs_allow(&entry.cidr_list, remote) {
                return Err(refuse(
                    Some(&name),
                    "source address outside the secret ID's cidr_list",
                ));
            }
            match entry.num_uses {
                0 => {}
                1 => self.destroy_entry(&role, &hash, &entry).await?,
                n => {
                    entry.num_uses = n - 1;
                    entry.updated_ms = now_ms();
                    let op = self.put_op(&Self::secret_key(&role, &hash), &entry)?;
                    self.barrier.write_batch(vec![op]).await?;
                }
            }
            for (k, v) in entry.metadata {
                metadata.insert(k, Value::String(v));
            }
        }
        metadata.insert("role_name".into(), Value::String(role.name.clone()));
        Ok(role.token.login_result(metadata, "approle".to_owned()))
    }
}

fn reply(data: Value) -> Reply {
    Reply::Logical(Box::new(Logical {
        data: crate::api::Data::Owned(data),
        mount_type: "approle",
        ..Default::default()
    }))
}

#[async_trait::async_trait]
impl Engine for AppRole {
    /// Vault's existence check exists only on `role/<name>`; every other write is `update`.
    async fn exists(&self, rel: &str, _req: &Request) -> Result<bool, ApiError> {
        let rel = rel.trim_end_matches('/');
        match rel.strip_prefix("role/") {
            Some(n) if !n.contains('/') => {
                Ok(valid_name(n) && self.load_role(&n.to_lowercase()).await?.is_some())
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

    fn is_login(&self, rel: &str, op: Operation) -> bool {
        op == Operation::Update && rel.trim_end_matches('/') == "login"
    }

    async fn login(&self, _rel: &str, req: &Request) -> Result<LoginResult, ApiError> {
        self.do_login(req).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn cidr_v4_membership() {
        let c = Cidr::parse("10.1.0.0/16").unwrap();
        assert!(c.contains(ip("10.1.0.0")));
        assert!(c.contains(ip("10.1.255.255")));
        assert!(!c.contains(ip("10.2.0.1")));
        assert!(!c.contains(ip("9.255.255.255")));
    }

    #[test]
    fn cidr_edges_zero_and_full_prefix() {
        let all = Cidr::parse("0.0.0.0/0").unwrap();
        assert!(all.contains(ip("255.255.255.255")));
        assert!(all.contains(ip("0.0.0.0")));
        let host = Cidr::parse("192.168.1.7/32").unwrap();
        assert!(host.contains(ip("192.168.1.7")));
        assert!(!host.contains(ip("192.168.1.6")));
        assert_eq!(
            Cidr::parse("192.168.1.7"),
            Some(host),
            "bare address is /32"
        );
        let all6 = Cidr::parse("::/0").unwrap();
        assert!(all6.contains(ip("2001:db8::1")));
        assert!(!all6.contains(ip("10.0.0.1")), "families never mix");
    }

    #[test]
    fn cidr_host_bits_are_cleared() {
        let c = Cidr::parse("10.1.2.3/8").unwrap();
        assert_eq!(c, Cidr::parse("10.0.0.0/8").unwrap());
        assert!(c.contains(ip("10.200.0.1")));
    }

    #[test]
    fn cidr_v6_membership() {
        let c = Cidr::parse("2001:db8:abcd::/48").unwrap();
        assert!(c.contains(ip("2001:db8:abcd:12::1")));
        assert!(!c.contains(ip("2001:db8:abce::1")));
        let h = Cidr::parse("::1/128").unwrap();
        assert!(h.contains(ip("::1")));
        assert!(!h.contains(ip("::2")));
    }

    #[test]
    fn cidr_ipv4_mapped_peer_matches_v4_block() {
        let c = Cidr::parse("127.0.0.0/8").unwrap();
        assert!(c.contains(ip("::ffff:127.0.0.1")));
        assert!(!c.contains(ip("::ffff:10.0.0.1")));
    }

    #[test]
    fn cidr_malformed_rejected() {
        for bad in [
            "10.0.0.0/33",
            "10.0.0.0/",
            "10.0.0.0/+8",
            "10.0.0.0/-1",
            "10.0.0/8",
            "::/129",
            "not-an-ip",
            "10.0.0.0/8/8",
            "",
        ] {
            assert_eq!(Cidr::parse(bad), None, "{bad:?} should be rejected");
        }
    }

    #[test]
    fn cidr_covers_subsets_only() {
        let big = Cidr::parse("10.0.0.0/8").unwrap();
        assert!(big.covers(&Cidr::parse("10.1.0.0/16").unwrap()));
        assert!(big.covers(&big));
        assert!(!big.covers(&Cidr::parse("0.0.0.0/0").unwrap()));
        assert!(!big.covers(&Cidr::parse("11.0.0.0/16").unwrap()));
        assert!(!big.covers(&Cidr::parse("::/0").unwrap()));
    }

    #[test]
    fn no_peer_address_fails_closed() {
        assert!(!cidrs_allow(&["0.0.0.0/0".to_owned()], None));
        assert!(cidrs_allow(&["0.0.0.0/0".to_owned()], Some(ip("1.2.3.4"))));
    }

    #[test]
    fn role_names_follow_vault_rule() {
        for good in ["a", "web", "web-1", "my.role_2", "A1"] {
            assert!(valid_name(good), "{good}");
        }
        for bad in ["", "-a", "a-", ".a", "a/b", "a b", "é", &"a".repeat(129)] {
            assert!(!valid_name(bad), "{bad:?}");
        }
    }

    #[test]
    fn metadata_forms() {
        let m = parse_metadata(Some(&json!("{\"team\":\"web\"}"))).unwrap();
        assert_eq!(m.get("team").map(String::as_str), Some("web"));
        let m = parse_metadata(Some(&json!({"a": "1"}))).unwrap();
        assert_eq!(m.len(), 1);
        let m = parse_metadata(Some(&json!("a=1,b=2"))).unwrap();
        assert_eq!(m.get("b").map(String::as_str), Some("2"));
        assert!(parse_metadata(Some(&json!("{\"a\":1}"))).is_err());
        assert!(parse_metadata(Some(&json!("nonsense"))).is_err());
    }

    #[test]
    fn max_ttl_becomes_a_hard_cap() {
        let p = TokenParams {
            max_ttl: 3600,
            explicit_max_ttl: 7200,
            ..Default::default()
        };
        assert_eq!(
            p.login_result(Map::new(), String::new()).explicit_max_ttl,
            Duration::from_secs(3600)
        );
        let p = TokenParams {
            max_ttl: 3600,
            ..Default::default()
        };
        assert_eq!(
            p.login_result(Map::new(), String::new()).explicit_max_ttl,
            Duration::from_secs(3600)
        );
    }
}
