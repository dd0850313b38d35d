//! What every mounted engine and auth method implements.
//!
//! Secrets engines (`kv`, `transit`) and auth methods (`approle`, `jwt`, `kubernetes`) share one
//! trait so that one mount table type, one router and one authorization function serve them all.

use crate::api::{ApiError, ApiResult, Operation, Request};
use async_trait::async_trait;
use serde_json::{Map, Value};
use std::time::Duration;

/// A mounted secrets engine or auth method.
#[async_trait]
pub trait Engine: Send + Sync {
    /// Vault's existence check: whether the object a POST/PUT to `rel` addresses exists, which
    /// makes the ACL ask for `update` (exists) or `create` (absent).
    async fn exists(&self, rel: &str, req: &Request) -> Result<bool, ApiError>;

    /// Handles an authenticated, authorized request. `rel` is the path below the mount.
    async fn handle(&self, rel: &str, req: &Request) -> ApiResult;

    /// The barrier prefix holding this mount's data (deleted when the mount is disabled).
    fn prefix(&self) -> &str;

    /// True when handling `rel` changes no state (e.g. transit encrypt with an existing key),
    /// so its request record may be written together with its response record, in one write,
    /// right before the response is released, as reads are. Default: every write is recorded
    /// before it runs.
    async fn changes_nothing(&self, _rel: &str, _req: &Request) -> Result<bool, ApiError> {
        Ok(false)
    }

    /// True for paths served without a client token (auth methods' `login`).
    fn is_login(&self, _rel: &str, _op: Operation) -> bool {
        false
    }

    /// Handles a login: checks the presented credentials and says what token to mint.
    async fn login(&self, _rel: &str, _req: &Request) -> Result<LoginResult, ApiError> {
        Err(ApiError::unsupported_operation())
    }
}

/// The identity an auth method vouches for: the token the core mints from it.
#[derive(Debug, Default, Clone)]
pub struct LoginResult {
    /// Policies to attach (`default` is added unless `no_default_policy`).
    pub policies: Vec<String>,
    /// Do not attach `default`.
    pub no_default_policy: bool,
    /// Token TTL (0 = the system default).
    pub ttl: Duration,
    /// Hard cap.
    pub explicit_max_ttl: Duration,
    /// Periodic token period.
    pub period: Duration,
    /// Use limit (0 = unlimited).
    pub num_uses: u64,
    /// `service` (default) or `batch`.
    pub token_type: Option<String>,
    /// Token metadata (`role_name`, `service_account_name`, …), returned in `auth.metadata`.
    pub metadata: Map<String, Value>,
    /// Display name, e.g. `approle` or `kubernetes-ns-sa`.
    pub display_name: String,
}
