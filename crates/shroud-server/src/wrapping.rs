//! Response wrapping (`X-Vault-Wrap-TTL`, `sys/wrapping/*`), with Vault's semantics.
//!
//! A request sent with `X-Vault-Wrap-TTL` is handled as usual, but instead of its response the
//! client gets a `wrap_info` envelope holding a single-use wrapping token. The response itself,
//! rendered exactly as the client would have received it, is stored behind the barrier under
//! a key derived from the wrapping token's storage hash (Vault keeps it in the wrapping token's
//! cubbyhole; shroud has no cubbyhole, the effect is the same: only that token names it).
//! `sys/wrapping/unwrap` hands it out once and destroys token and response together.
//!
//! Invariants:
//! - A wrapping token is an orphan service token whose only policy is `response-wrapping`;
//!   the token store refuses that policy to every other token, so the policy identifies it.
//! - Its ACL is fixed here ([`wrapping_token_may`]), not read from the policy store: it can
//!   call `sys/wrapping/{unwrap,lookup,rewrap}` and nothing else, whatever policies an
//!   operator writes.
//! - The response is stored in the same atomic write that creates the token, and deleted in
//!   the same atomic write that revokes it (`TokenStore::revoke_one`), so an expired or
//!   revoked wrapping token never leaves a readable response behind.
//! - Unwrap takes the response under a lock and revokes before answering: of two concurrent
//!   unwraps exactly one gets the response. When something fails half way, the response is
//!   lost rather than delivered twice.
//!
//! Start with [`maybe_wrap`] (called by the core on every response) and [`handle`].

use crate::api::{timestamp, ApiError, ApiResult, Logical, Operation, Reply, Request, WrapInfo};
use crate::core::{Active, Caller, Core};
use crate::token::{TokenEntry, TokenStore, MAX_TTL};
use serde_json::{json, Map, Value};
use shroud_audit::{Entry, EntryType};
use shroud_crypto::Barrier;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

/// The only policy of a wrapping token (Vault's `responseWrappingPolicyName`).
pub const POLICY: &str = "response-wrapping";
/// Barrier prefix of wrapped responses; the rest of the key is the wrapping token's hash.
pub const RESPONSE_PREFIX: &str = "sys/wrapping/response/";
/// Longest wrap TTL: Vault caps a wrap TTL at the mount's max lease TTL, 768h by default.
pub const MAX_WRAP_TTL: Duration = Duration::from_secs(MAX_TTL);

/// Where wrapped responses live, and the lock that makes taking one atomic.
pub struct WrapStore {
    barrier: Arc<Barrier>,
    take_lock: tokio::sync::Mutex<()>,
}

impl WrapStore {
    /// A store over `barrier`.
    pub fn new(barrier: Arc<Barrier>) -> Self {
        Self {
            barrier,
            take_lock: tokio::sync::Mutex::new(()),
        }
    }

    /// Removes and returns the response wrapped by `entry`, revoking the wrapping token in the
    /// same step. None if it was already taken (or never existed).
    async fn take(
        &self,
        tokens: &TokenStore,
        entry: &TokenEntry,
    ) -> Result<Option<Map<String, Value>>, ApiError> {
        let _g = self.take_lock.lock().await;
        let Some(raw) = self
            .barrier
            .get(&format!("{RESPONSE_PREFIX}{}", entry.hash))
            .await?
        else {
            return Ok(None);
        };
        let env: Map<String, Value> =
            serde_json::from_slice(raw.expose()).map_err(|e| ApiError::internal(&e))?;
        // Revoking deletes the stored response too (one atomic write), so once this returns
        // nobody else can take it, even if the caller never gets the answer.
        tokens.revoke_tree(&entry.hash).await?;
        Ok(Some(env))
    }
}

/// The paths a wrapping token may call (with POST/PUT). Everything else is denied to it.
pub fn wrapping_token_may(req: &Request) -> bool {
    req.op == Operation::Update
        && matches!(
            req.path.trim_end_matches('/'),
            "sys/wrapping/unwrap" | "sys/wrapping/lookup" | "sys/wrapping/rewrap"
        )
}

/// The wrapping token a `sys/wrapping/*` request is about: `token` in the body, else the
/// client token (hvac's `unwrap()` without an argument sends it as `X-Vault-Token`).
fn presented_token(req: &Request) -> Result<Option<String>, ApiError> {
    match req.field("token") {
        Some(Value::String(s)) if !s.is_empty() => Ok(Some(s.clone())),
        Some(Value::String(_)) | None => Ok(req.token.as_ref().map(|t| t.expose().to_owned())),
        Some(_) => Err(ApiError::bad_request("token must be a string")),
    }
}

async fn wrapping_entry(active: &Active, token: &str) -> Result<Arc<TokenEntry>, ApiError> {
    match active.tokens.lookup(token).await? {
        Some(e) if e.is_wrapping() => Ok(e),
        _ => Err(ApiError::invalid_wrapping_token()),
    }
}

/// Vault validates the wrapping token of `unwrap` and `rewrap` before the normal token check
/// (`wrappingVerificationFunc`), so a used or expired wrapping token is a 400 with Vault's
/// text, not a 403. Returns Ok for every other request.
pub async fn precheck(active: &Active, req: &Request) -> Result<(), ApiError> {
    if req.op != Operation::Update
        || !matches!(
            req.path.trim_end_matches('/'),
            "sys/wrapping/unwrap" | "sys/wrapping/rewrap"
        )
    {
        return Ok(());
    }
    match presented_token(req)? {
        // No token at all: the pipeline answers 403 like for any unauthenticated request.
        None => Ok(()),
        Some(t) => wrapping_entry(active, &t).await.map(|_| ()),
    }
}

/// Stores `envelope` behind a new wrapping token and returns its `wrap_info`.
async fn wrap_envelope(
    active: &Active,
    ttl: Duration,
    creation_path: &str,
    mut envelope: Map<String, Value>,
    wrapped_accessor: Option<String>,
) -> Result<WrapInfo, ApiError> {
    envelope.remove("request_id");
    let raw =
        zeroize::Zeroizing::new(serde_json::to_vec(&envelope).map_err(|e| ApiError::internal(&e))?);
    let (token, entry) = active
        .tokens
        .create_wrapping(ttl.min(MAX_WRAP_TTL), creation_path, raw.to_vec())
        .await?;
    Ok(WrapInfo {
        token,
        accessor: entry.accessor.clone(),
        ttl: entry.creation_ttl,
        creation_time: timestamp(UNIX_EPOCH + Duration::from_secs(entry.creation_time)),
        creation_path: entry.path.clone(),
        wrapped_accessor,
    })
}

fn wrapped_reply(info: WrapInfo) -> Reply {
    Reply::Logical(Box::new(Logical {
        wrap_info: Some(info),
        ..Default::default()
    }))
}

fn auth_accessor(env: &Map<String, Value>) -> Option<String> {
    env.get("auth")
        .and_then(|a| a.get("accessor"))
        .and_then(|a| a.as_str())
        .filter(|a| !a.is_empty())
        .map(str::to_owned)
}

/// Wraps `result` when the request asked for it (`X-Vault-Wrap-TTL`). Only successful
/// enveloped responses are wrapped (as in Vault: errors and 204s go out as they are). If
/// wrapping fails the original response is dropped, never sent unwrapped.
pub async fn maybe_wrap(active: &Active, req: &Request, result: ApiResult) -> ApiResult {
    let Some(ttl) = req.wrap_ttl else {
        return result;
    };
    match result {
        Ok(Reply::Logical(l)) if l.wrap_info.is_none() && l.status.unwrap_or(200) == 200 => {
            let accessor = l
                .auth
                .as_ref()
                .map(|a| a.accessor.clone())
                .filter(|a| !a.is_empty());
            let env = crate::http::envelope(*l, "");
            let info = wrap_envelope(active, ttl, &req.path, env, accessor).await?;
            Ok(wrapped_reply(info))
        }
        // An unwrap asked to be wrapped again: the unwrapped response goes into a new token
        // (what Vault does), rather than out in clear against the client's request.
        Ok(Reply::Raw(200, Value::Object(env)))
            if req.path.trim_end_matches('/') == "sys/wrapping/unwrap" =>
        {
            let accessor = auth_accessor(&env);
            let info = wrap_envelope(active, ttl, &req.path, env, accessor).await?;
            Ok(wrapped_reply(info))
        }
        other => other,
    }
}

/// Authenticated `sys/wrapping/<rest>` (the ACL check already passed).
pub async fn handle(active: &Active, caller: &Caller, req: &Request, rest: &str) -> ApiResult {
    match (rest, req.op) {
        ("unwrap", Operation::Update) => {
            let entry = target_entry(active, caller, req).await?;
            let Some(mut env) = active.wrapping.take(&active.tokens, &entry).await? else {
                return Err(ApiError::invalid_wrapping_token());
            };
            // The response as it would have been, under this request's id.
            env.insert("request_id".into(), Value::from(req.id.as_str()));
            Ok(Reply::Raw(200, Value::Object(env)))
        }
        ("rewrap", Operation::Update) => {
            let entry = target_entry(active, caller, req).await?;
            let Some(env) = active.wrapping.take(&active.tokens, &entry).await? else {
                return Err(ApiError::invalid_wrapping_token());
            };
            let accessor = auth_accessor(&env);
            // The old token is gone at this point; if minting the new one fails, the response
            // is lost rather than left readable twice.
            let info = wrap_envelope(
                active,
                Duration::from_secs(entry.creation_ttl),
                &entry.path,
                env,
                accessor,
            )
            .await?;
            Ok(wrapped_reply(info))
        }
        ("wrap", Operation::Update) => {
            if req.wrap_ttl.is_none() {
                return Err(ApiError::bad_request(
                    "wrapping is required for this endpoint: set X-Vault-Wrap-TTL",
                ));
            }
            match &req.body {
                Some(b) if !b.is_empty() => Ok(Reply::data(Value::Object(b.clone()))),
                _ => Err(ApiError::bad_request("no data provided")),
            }
        }
        ("lookup", Operation::Update) => {
            let Some(t) = presented_token(req)? else {
                return Err(ApiError::invalid_wrapping_token());
            };
            let e = wrapping_entry(active, &t).await?;
            Ok(Reply::data(lookup_data(&e)))
        }
        ("unwrap" | "rewrap" | "wrap" | "lookup", _) => Err(ApiError::unsupported_operation()),
        _ => Err(ApiError::no_route(&req.path)),
    }
}

/// The wrapping token an unwrap/rewrap acts on: the body's `token` if given, else the
/// caller's own token (already counted as used by the pipeline, hence not looked up again).
async fn target_entry(
    active: &Active,
    caller: &Caller,
    req: &Request,
) -> Result<Arc<TokenEntry>, ApiError> {
    match req.field("token") {
        Some(Value::String(s)) if !s.is_empty() => wrapping_entry(active, s).await,
        Some(Value::String(_)) | None if caller.entry.is_wrapping() => Ok(caller.entry.clone()),
        Some(Value::String(_)) | None => Err(ApiError::invalid_wrapping_token()),
        Some(_) => Err(ApiError::bad_request("token must be a string")),
    }
}

fn lookup_data(e: &TokenEntry) -> Value {
    json!({
        "creation_path": e.path,
        "creation_time": timestamp(UNIX_EPOCH + Duration::from_secs(e.creation_time)),
        "creation_ttl": e.creation_ttl,
    })
}

/// `sys/wrapping/lookup`, which Vault serves without a client token (anyone holding a
/// wrapping token may check it before unwrapping). Audited like an authenticated request;
/// it does not count as a use of the wrapping token.
pub async fn lookup_unauthenticated(core: &Core, req: &Request) -> ApiResult {
    if req.op != Operation::Update {
        return Err(ApiError::unsupported_operation());
    }
    let active = core.active().ok_or_else(ApiError::sealed)?;
    let remote = req.remote.map(crate::api::IpText::of);
    let mut log = Entry {
        kind: EntryType::Request,
        request_id: &req.id,
        operation: req.op.as_str(),
        path: &req.path,
        mount_type: Some("system"),
        remote_address: remote.as_ref().map(|r| r.as_str()),
        client_token: req.token.as_ref().map(|t| t.expose()),
        request_data: req.body.as_ref(),
        ..Default::default()
    };
    let devices = active.audit.all();
    crate::audit::Broker::log_to(&devices, &log).await?;
    let result = match presented_token(req) {
        Ok(Some(t)) => wrapping_entry(&active, &t)
            .await
            .map(|e| Reply::data(lookup_data(&e))),
        Ok(None) => Err(ApiError::invalid_wrapping_token()),
        Err(e) => Err(e),
    };
    let (data, status, err) = match &result {
        Ok(Reply::Logical(l)) => (l.data.as_value().cloned(), 200, None),
        Ok(_) => (None, 200, None),
        Err(e) => (None, e.status, Some(e.errors.join("; "))),
    };
    log.kind = EntryType::Response;
    log.response_data = data.as_ref();
    log.status = Some(status);
    log.error = err.as_deref();
    crate::audit::Broker::log_to(&devices, &log).await?;
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(op: Operation, path: &str) -> Request {
        Request {
            id: crate::api::request_id(),
            op,
            path: path.into(),
            query: vec![],
            body: None,
            token: None,
            remote: None,
            wrap_ttl: None,
            head: false,
        }
    }

    #[test]
    fn wrapping_token_acl_is_fixed() {
        assert!(wrapping_token_may(&req(
            Operation::Update,
            "sys/wrapping/unwrap"
        )));
        assert!(wrapping_token_may(&req(
            Operation::Update,
            "sys/wrapping/rewrap"
        )));
        assert!(wrapping_token_may(&req(
            Operation::Update,
            "sys/wrapping/lookup/"
        )));
        for (op, p) in [
            (Operation::Read, "sys/wrapping/unwrap"),
            (Operation::Update, "sys/wrapping/wrap"),
            (Operation::Read, "secret/data/x"),
            (Operation::Update, "auth/token/create"),
            (Operation::Read, "auth/token/lookup-self"),
            (Operation::Update, "sys/wrapping/unwrap/extra"),
        ] {
            assert!(!wrapping_token_may(&req(op, p)), "{op:?} {p}");
        }
    }

    #[test]
    fn accessor_of_wrapped_auth() {
        let env: Map<String, Value> =
            serde_json::from_value(json!({"auth": {"accessor": "abc"}})).unwrap();
        assert_eq!(auth_accessor(&env).as_deref(), Some("abc"));
        let batch: Map<String, Value> =
            serde_json::from_value(json!({"auth": {"accessor": ""}})).unwrap();
        assert_eq!(auth_accessor(&batch), None, "batch tokens have no accessor");
        assert_eq!(auth_accessor(&Map::new()), None);
    }
}
