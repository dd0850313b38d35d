//! The AppRole auth method (`auth/<mount>/...`, mount `approle` by default): roles, their
//! role ids and secret ids, and login.
//!
//! Shapes follow Vault's AppRole backend as hvac sends them (API reference, section 2.5). List
//! fields are sent as JSON arrays, which Vault and shroud accept alongside hvac's
//! comma-joined strings. Secret ids only ever live in [`SecretString`]; role ids are
//! identifiers (half of the credential, but not the secret half) and stay plain strings.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use shroud_core::SecretString;

use crate::client::{Client, Method};
use crate::kv2::missing;
use crate::path::join;
use crate::token::TokenAuth;
use crate::wrapping::WrapInfo;
use crate::ClientError;

/// Fields of `POST auth/<mount>/role/<name>` (create or update). Unset fields are not sent and
/// keep their value on an update.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RoleRequest {
    /// Policies of the tokens issued by logging in with this role.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub token_policies: Vec<String>,
    /// TTL of those tokens (Vault duration).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_ttl: Option<String>,
    /// How long a secret id stays valid (Vault duration; 0 = forever).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret_id_ttl: Option<String>,
    /// How many logins a secret id allows (0 = unlimited).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret_id_num_uses: Option<u64>,
    /// Source addresses (CIDR blocks) allowed to log in with a secret id.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub secret_id_bound_cidrs: Vec<String>,
}

/// Fields of `POST auth/<mount>/role/<name>/secret-id`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SecretIdRequest {
    /// Logins allowed with this secret id (0 = the role's setting).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub num_uses: Option<u64>,
    /// Lifetime of this secret id (Vault duration; unset = the role's setting).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ttl: Option<String>,
    /// Source addresses (CIDR blocks) allowed to use it; must be within the role's.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cidr_list: Vec<String>,
}

/// A new secret id.
#[derive(Debug, Clone, Deserialize)]
pub struct SecretId {
    /// The secret id.
    pub secret_id: SecretString,
    /// Its accessor (lets an operator look it up or destroy it without holding it).
    #[serde(default)]
    pub secret_id_accessor: String,
    /// Seconds it stays valid; 0 = no expiry.
    #[serde(default)]
    pub secret_id_ttl: u64,
    /// Logins it allows; 0 = unlimited.
    #[serde(default)]
    pub secret_id_num_uses: u64,
}

#[derive(Deserialize)]
struct Envelope<T> {
    data: Option<T>,
}

#[derive(Deserialize)]
struct KeysBody {
    #[serde(default)]
    keys: Vec<String>,
}

#[derive(Deserialize)]
struct RoleIdBody {
    role_id: String,
}

#[derive(Serialize)]
struct LoginBody<'a> {
    role_id: &'a str,
    secret_id: &'a str,
}

#[derive(Deserialize)]
pub(crate) struct AuthEnvelope {
    pub(crate) auth: Option<TokenAuth>,
}

/// AppRole operations on one mount; get one with [`Client::approle`].
#[derive(Debug, Clone)]
pub struct AppRole<'a> {
    client: &'a Client,
    mount: String,
}

impl Client {
    /// The AppRole auth method mounted at `auth/<mount>` (e.g. `"approle"`).
    pub fn approle(&self, mount: &str) -> AppRole<'_> {
        AppRole {
            client: self,
            mount: mount.trim_matches('/').to_owned(),
        }
    }
}

impl AppRole<'_> {
    fn role_path(&self, role: &str, rest: &str) -> String {
        join(&["auth", &self.mount, "role", role, rest])
    }

    /// `POST auth/<mount>/role/<name>`: creates or updates a role.
    pub async fn write_role(&self, role: &str, req: &RoleRequest) -> Result<(), ClientError> {
        self.client
            .send_ok(Method::Post, &self.role_path(role, ""), &[], Some(req))
            .await
            .map(drop)
    }

    /// `GET auth/<mount>/role/<name>`: the role's settings; `Ok(None)` if there is no such
    /// role. Settings are not secret and are returned as JSON values.
    pub async fn read_role(
        &self,
        role: &str,
    ) -> Result<Option<BTreeMap<String, serde_json::Value>>, ClientError> {
        let raw = self
            .client
            .send::<()>(Method::Get, &self.role_path(role, ""), &[], None)
            .await?;
        if raw.status == 404 {
            return Ok(None);
        }
        if !raw.is_success() {
            return Err(raw.into_api_error());
        }
        let env: Envelope<BTreeMap<String, serde_json::Value>> = raw.json("approle read role")?;
        env.data
            .map(Some)
            .ok_or_else(|| missing("approle read role", "data"))
    }

    /// `LIST auth/<mount>/role`: role names (empty when there are none).
    pub async fn list_roles(&self) -> Result<Vec<String>, ClientError> {
        let raw = self
            .client
            .send::<()>(
                Method::List,
                &join(&["auth", &self.mount, "role"]),
                &[],
                None,
            )
            .await?;
        if raw.status == 404 {
            return Ok(Vec::new());
        }
        if !raw.is_success() {
            return Err(raw.into_api_error());
        }
        let env: Envelope<KeysBody> = raw.json("approle list roles")?;
        Ok(env.data.map(|d| d.keys).unwrap_or_default())
    }

    /// `DELETE auth/<mount>/role/<name>`.
    pub async fn delete_role(&self, role: &str) -> Result<(), ClientError> {
        self.client
            .send_ok::<()>(Method::Delete, &self.role_path(role, ""), &[], None)
            .await
            .map(drop)
    }

    /// `GET auth/<mount>/role/<name>/role-id`.
    pub async fn role_id(&self, role: &str) -> Result<String, ClientError> {
        let env: Envelope<RoleIdBody> = self
            .client
            .send_ok::<()>(Method::Get, &self.role_path(role, "role-id"), &[], None)
            .await?
            .json("approle role-id")?;
        env.data
            .map(|d| d.role_id)
            .ok_or_else(|| missing("approle role-id", "data"))
    }

    /// `POST auth/<mount>/role/<name>/secret-id`: a new secret id.
    pub async fn secret_id(
        &self,
        role: &str,
        req: &SecretIdRequest,
    ) -> Result<SecretId, ClientError> {
        let env: Envelope<SecretId> = self
            .client
            .send_ok(
                Method::Post,
                &self.role_path(role, "secret-id"),
                &[],
                Some(req),
            )
            .await?
            .json("approle secret-id")?;
        env.data.ok_or_else(|| missing("approle secret-id", "data"))
    }

    /// [`AppRole::secret_id`] with response wrapping: the secret id is only reachable through
    /// the returned single-use wrapping token (`sys/wrapping/unwrap`).
    pub async fn secret_id_wrapped(
        &self,
        role: &str,
        req: &SecretIdRequest,
        wrap_ttl: &str,
    ) -> Result<WrapInfo, ClientError> {
        self.client
            .send_wrapped(
                Method::Post,
                &self.role_path(role, "secret-id"),
                Some(req),
                wrap_ttl,
            )
            .await
    }

    /// `POST auth/<mount>/login {"role_id","secret_id"}`: a token for the role. Sent without
    /// the client's own token (a login needs none).
    pub async fn login(
        &self,
        role_id: &str,
        secret_id: &SecretString,
    ) -> Result<TokenAuth, ClientError> {
        let body = LoginBody {
            role_id,
            secret_id: secret_id.expose(),
        };
        let env: AuthEnvelope = self
            .client
            .with_token(None)
            .send_ok(
                Method::Post,
                &join(&["auth", &self.mount, "login"]),
                &[],
                Some(&body),
            )
            .await?
            .json("approle login")?;
        env.auth.ok_or_else(|| missing("approle login", "auth"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_body_sends_lists_as_arrays_and_omits_unset_fields() {
        let r = RoleRequest {
            token_policies: vec!["app".into(), "ci".into()],
            secret_id_num_uses: Some(1),
            ..Default::default()
        };
        assert_eq!(
            serde_json::to_value(&r).unwrap(),
            serde_json::json!({"token_policies":["app","ci"],"secret_id_num_uses":1})
        );
        assert_eq!(
            serde_json::to_value(SecretIdRequest::default()).unwrap(),
            serde_json::json!({})
        );
    }

    #[test]
    fn secret_id_is_redacted_in_debug() {
        let s: SecretId = serde_json::from_str(
            r#"{"secret_id":"sid-very-secret","secret_id_accessor":"acc","secret_id_ttl":600,
                "secret_id_num_uses":0}"#,
        )
        .unwrap();
        assert!(!format!("{s:?}").contains("very-secret"));
        assert_eq!(s.secret_id.expose(), "sid-very-secret");
    }
}
