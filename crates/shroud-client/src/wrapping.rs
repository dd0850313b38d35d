//! Response wrapping (`X-Vault-Wrap-TTL`, `sys/wrapping/unwrap`).
//!
//! A wrapped response is replaced by a single-use wrapping token that stands for it; whoever
//! unwraps it first gets the original response, and a second unwrap fails, so an interception
//! in transit is detected. The client's side of the contract: a call asked to be wrapped must
//! come back wrapped. If the server ignores the header (an old server, a proxy stripping it)
//! the plain response is dropped unread and [`ClientError::NotWrapped`] returned, because the
//! caller is about to print or hand on what it believes is only a wrapping token.

use serde::{Deserialize, Serialize};
use shroud_core::SecretString;

use crate::client::{Client, Method};
use crate::kv2::KvData;
use crate::ClientError;

/// The `wrap_info` block of a wrapped response (Vault's `api.SecretWrapInfo`).
#[derive(Debug, Clone, Deserialize)]
pub struct WrapInfo {
    /// The single-use wrapping token.
    pub token: SecretString,
    /// The wrapping token's accessor.
    #[serde(default)]
    pub accessor: String,
    /// Seconds until the wrapping token expires.
    #[serde(default)]
    pub ttl: u64,
    /// RFC 3339 creation time.
    #[serde(default)]
    pub creation_time: String,
    /// The path whose response was wrapped, e.g. `auth/approle/role/app/secret-id`.
    #[serde(default)]
    pub creation_path: String,
    /// Accessor of the wrapped token or secret id, when the wrapped response has one.
    #[serde(default)]
    pub wrapped_accessor: Option<String>,
}

/// What `sys/wrapping/unwrap` returns: the original response's `data` (a secret, e.g. an
/// AppRole secret id) or `auth` (a token creation or login), values kept secret.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct Unwrapped {
    /// The wrapped response's `data`, if it had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<KvData>,
    /// The wrapped response's `auth` block, if it had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<KvData>,
    /// Warnings of the wrapped response.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warnings: Option<Vec<String>>,
}

#[derive(Deserialize)]
struct WrapEnvelope {
    #[serde(default)]
    wrap_info: Option<WrapInfo>,
}

#[derive(Serialize)]
struct Empty {}

impl Client {
    /// Sends `method` to `/v1/<path>` with `X-Vault-Wrap-TTL: <wrap_ttl>` and returns the
    /// `wrap_info`. `wrap_ttl` is a Vault duration (`"60s"`, `"5m"`, `"300"`).
    pub async fn request_wrapped(
        &self,
        method: Method,
        path: &str,
        body: Option<&serde_json::Value>,
        wrap_ttl: &str,
    ) -> Result<WrapInfo, ClientError> {
        self.send_wrapped(method, path, body, wrap_ttl).await
    }

    /// Typed-body form of [`Client::request_wrapped`] for the helpers.
    pub(crate) async fn send_wrapped<B: Serialize + ?Sized>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
        wrap_ttl: &str,
    ) -> Result<WrapInfo, ClientError> {
        let raw = self
            .send_inner(method, path, &[], body, Some(wrap_ttl))
            .await?;
        if !raw.is_success() {
            return Err(raw.into_api_error());
        }
        let env: WrapEnvelope = raw.json("wrapped response")?;
        env.wrap_info.ok_or(ClientError::NotWrapped)
    }

    /// `POST sys/wrapping/unwrap` with the wrapping token as `X-Vault-Token` (so no other token
    /// is needed): returns the original response. A wrapping token works once; a second
    /// unwrap, or an expired token, fails with 400.
    pub async fn unwrap(&self, wrapping_token: &SecretString) -> Result<Unwrapped, ClientError> {
        self.with_token(Some(wrapping_token.clone()))
            .send_ok(Method::Post, "sys/wrapping/unwrap", &[], Some(&Empty {}))
            .await?
            .json("sys/wrapping/unwrap")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrap_info_parses_vault_shape_and_hides_the_token() {
        let w: WrapInfo = serde_json::from_str(
            r#"{"token":"hvs.wrapping-secret","accessor":"acc","ttl":300,
                "creation_time":"2026-01-01T00:00:00Z",
                "creation_path":"auth/approle/role/app/secret-id","wrapped_accessor":"wacc"}"#,
        )
        .unwrap();
        assert_eq!(w.token.expose(), "hvs.wrapping-secret");
        assert_eq!(w.ttl, 300);
        assert_eq!(w.wrapped_accessor.as_deref(), Some("wacc"));
        assert!(!format!("{w:?}").contains("wrapping-secret"));
    }

    #[test]
    fn unwrapped_keeps_values_out_of_debug_and_round_trips() {
        let u: Unwrapped = serde_json::from_str(
            r#"{"request_id":"r","data":{"secret_id":"sid-secret","secret_id_ttl":600},
                "auth":null,"wrap_info":null}"#,
        )
        .unwrap();
        assert!(!format!("{u:?}").contains("sid-secret"));
        assert!(u.auth.is_none());
        assert_eq!(
            serde_json::to_value(&u).unwrap(),
            serde_json::json!({"data":{"secret_id":"sid-secret","secret_id_ttl":600}})
        );
    }
}
