//! The token auth method (`auth/token/*`): create, look up and revoke tokens.
//!
//! Invariant: token values only ever appear in [`SecretString`]; the `id` field of a lookup
//! (which is the token itself) is not even parsed.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use shroud_core::SecretString;

use crate::client::{Client, Method};
use crate::kv2::missing;
use crate::wrapping::WrapInfo;
use crate::ClientError;

/// Parameters of `auth/token/create`. `None` fields are left to the server's defaults.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TokenCreateRequest {
    /// Policies to attach (`default` is added by the server unless `no_default_policy`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub policies: Vec<String>,
    /// Time to live, as a Vault duration (`"1h"`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ttl: Option<String>,
    /// Uses before the token is revoked; 0 = unlimited.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub num_uses: Option<u64>,
    /// Whether the token can be renewed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub renewable: Option<bool>,
    /// Periodic token: renewable forever by this period, no max TTL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub period: Option<String>,
    /// Shown in the audit log and lookups.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// Free-form metadata.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub meta: BTreeMap<String, String>,
    /// Token type: `service` (the default) or `batch` (not persisted, not renewable, cannot
    /// create children; cheap for short-lived workloads).
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub token_type: Option<String>,
    /// Do not attach the `default` policy.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub no_default_policy: bool,
    /// Create an orphan (no parent; survives the revocation of its creator). Sent as a call to
    /// `create-orphan` rather than as a body field.
    #[serde(skip)]
    pub orphan: bool,
}

/// The `auth` block of a login or token creation.
#[derive(Debug, Clone, Deserialize)]
pub struct TokenAuth {
    /// The new token.
    pub client_token: SecretString,
    /// Its accessor (not secret: lets an operator look up or revoke it without holding it).
    #[serde(default)]
    pub accessor: String,
    /// All policies attached.
    #[serde(default)]
    pub policies: Vec<String>,
    /// Policies attached directly to the token.
    #[serde(default)]
    pub token_policies: Vec<String>,
    /// TTL in seconds; 0 = no expiry (root tokens).
    #[serde(default)]
    pub lease_duration: u64,
    /// Whether it can be renewed.
    #[serde(default)]
    pub renewable: bool,
    /// True for an orphan token.
    #[serde(default)]
    pub orphan: bool,
    /// `service` or `batch`.
    #[serde(default)]
    pub token_type: String,
    /// Uses left; 0 = unlimited.
    #[serde(default)]
    pub num_uses: u64,
}

/// What a token lookup returns (the token's own value excluded).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default)]
pub struct TokenInfo {
    /// Accessor.
    pub accessor: String,
    /// Unix seconds of creation.
    pub creation_time: u64,
    /// TTL at creation, seconds.
    pub creation_ttl: u64,
    /// Display name (`token-<name>`, `root`).
    pub display_name: String,
    /// RFC 3339 expiry, `None` for tokens that do not expire.
    pub expire_time: Option<String>,
    /// Hard upper bound of the TTL in seconds; 0 = none.
    pub explicit_max_ttl: u64,
    /// Metadata.
    pub meta: Option<BTreeMap<String, String>>,
    /// Uses left; 0 = unlimited.
    pub num_uses: u64,
    /// True for an orphan token.
    pub orphan: bool,
    /// Creation path, e.g. `auth/token/create`.
    pub path: String,
    /// Attached policies.
    pub policies: Vec<String>,
    /// Whether it can be renewed.
    pub renewable: bool,
    /// Seconds left; 0 for tokens that do not expire.
    pub ttl: u64,
    /// Period in seconds for periodic tokens.
    pub period: Option<u64>,
    /// `service` or `batch`.
    #[serde(rename = "type")]
    pub token_type: String,
}

#[derive(Deserialize)]
struct AuthEnvelope {
    auth: Option<TokenAuth>,
}

#[derive(Deserialize)]
struct DataEnvelope {
    data: Option<TokenInfo>,
}

#[derive(Serialize)]
struct TokenBody<'a> {
    token: &'a str,
}

#[derive(Serialize)]
struct AccessorBody<'a> {
    accessor: &'a str,
}

impl Client {
    /// `POST auth/token/create` (or `create-orphan`): mints a child token of the client's token.
    pub async fn token_create(&self, req: &TokenCreateRequest) -> Result<TokenAuth, ClientError> {
        let path = if req.orphan {
            "auth/token/create-orphan"
        } else {
            "auth/token/create"
        };
        let env: AuthEnvelope = self
            .send_ok(Method::Post, path, &[], Some(req))
            .await?
            .json("token create")?;
        env.auth.ok_or_else(|| missing("token create", "auth"))
    }

    /// [`Client::token_create`] with response wrapping: the new token is only reachable
    /// through the returned single-use wrapping token (`sys/wrapping/unwrap`).
    pub async fn token_create_wrapped(
        &self,
        req: &TokenCreateRequest,
        wrap_ttl: &str,
    ) -> Result<WrapInfo, ClientError> {
        let path = if req.orphan {
            "auth/token/create-orphan"
        } else {
            "auth/token/create"
        };
        self.send_wrapped(Method::Post, path, Some(req), wrap_ttl)
            .await
    }

    /// `GET auth/token/lookup-self`: the client's own token.
    pub async fn token_lookup_self(&self) -> Result<TokenInfo, ClientError> {
        self.lookup(Method::Get, "auth/token/lookup-self", None::<&()>)
            .await
    }

    /// `POST auth/token/lookup {"token"}`: another token (the value travels in the body, never
    /// in the URL, so it cannot end up in access logs).
    pub async fn token_lookup(&self, token: &SecretString) -> Result<TokenInfo, ClientError> {
        let body = TokenBody {
            token: token.expose(),
        };
        self.lookup(Method::Post, "auth/token/lookup", Some(&body))
            .await
    }

    /// `POST auth/token/lookup-accessor {"accessor"}`.
    pub async fn token_lookup_accessor(&self, accessor: &str) -> Result<TokenInfo, ClientError> {
        self.lookup(
            Method::Post,
            "auth/token/lookup-accessor",
            Some(&AccessorBody { accessor }),
        )
        .await
    }

    async fn lookup<B: Serialize>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<TokenInfo, ClientError> {
        let env: DataEnvelope = self
            .send_ok(method, path, &[], body)
            .await?
            .json("token lookup")?;
        env.data.ok_or_else(|| missing("token lookup", "data"))
    }

    /// `POST auth/token/revoke-self`.
    pub async fn token_revoke_self(&self) -> Result<(), ClientError> {
        self.send_ok::<()>(Method::Post, "auth/token/revoke-self", &[], None)
            .await
            .map(drop)
    }

    /// `POST auth/token/revoke {"token"}`: revokes a token and its children.
    pub async fn token_revoke(&self, token: &SecretString) -> Result<(), ClientError> {
        let body = TokenBody {
            token: token.expose(),
        };
        self.send_ok(Method::Post, "auth/token/revoke", &[], Some(&body))
            .await
            .map(drop)
    }

    /// `POST auth/token/revoke-accessor {"accessor"}`.
    pub async fn token_revoke_accessor(&self, accessor: &str) -> Result<(), ClientError> {
        self.send_ok(
            Method::Post,
            "auth/token/revoke-accessor",
            &[],
            Some(&AccessorBody { accessor }),
        )
        .await
        .map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_body_omits_unset_fields() {
        let req = TokenCreateRequest {
            policies: vec!["app".into()],
            ttl: Some("1h".into()),
            orphan: true,
            ..Default::default()
        };
        assert_eq!(
            serde_json::to_value(&req).unwrap(),
            serde_json::json!({"policies":["app"],"ttl":"1h"})
        );
        let req = TokenCreateRequest {
            token_type: Some("batch".into()),
            ..Default::default()
        };
        assert_eq!(
            serde_json::to_value(&req).unwrap(),
            serde_json::json!({"type":"batch"})
        );
    }

    #[test]
    fn lookup_ignores_the_token_id() {
        let info: TokenInfo = serde_json::from_str(
            r#"{"accessor":"acc","id":"hvs.secret-token","policies":["default"],"ttl":3600,
                "expire_time":null,"type":"service","creation_time":1700000000,"meta":null}"#,
        )
        .unwrap();
        assert_eq!(info.accessor, "acc");
        let again = serde_json::to_string(&info).unwrap();
        assert!(!again.contains("hvs.secret-token"));
    }

    #[test]
    fn auth_block_keeps_the_token_secret() {
        let a: TokenAuth = serde_json::from_str(
            r#"{"client_token":"hvs.newtoken","accessor":"acc","policies":["app"],
                "token_policies":["app"],"lease_duration":3600,"renewable":true,
                "orphan":false,"token_type":"service","num_uses":0,"metadata":null,
                "entity_id":""}"#,
        )
        .unwrap();
        assert!(!format!("{a:?}").contains("newtoken"));
        assert_eq!(a.client_token.expose(), "hvs.newtoken");
    }
}
