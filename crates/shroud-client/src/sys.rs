//! The system backend (`sys/*`): initialisation, seal state, keyring rotation, ACL policies,
//! audit devices, health.
//!
//! `sys/init`, `sys/seal-status`, `sys/unseal` and `sys/health` answer with a bare JSON object
//! (no envelope), as Vault does; the other endpoints use the standard envelope.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use shroud_core::SecretString;

use crate::client::{Client, Method};
use crate::kv2::missing;
use crate::ClientError;

/// Answer of `GET sys/seal-status` and `PUT sys/unseal`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default)]
pub struct SealStatus {
    /// Seal type, `"shamir"` for key shares.
    #[serde(rename = "type")]
    pub seal_type: String,
    /// True once `sys/init` has run.
    pub initialized: bool,
    /// True while sealed.
    pub sealed: bool,
    /// Threshold: shares needed to unseal.
    pub t: u32,
    /// Number of shares.
    pub n: u32,
    /// Shares submitted so far in this unseal attempt.
    pub progress: u32,
    /// Server version.
    pub version: String,
    /// Storage backend name, when the server reports it.
    pub storage_type: String,
}

/// Answer of `GET sys/health` (any of its status codes).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default)]
pub struct Health {
    /// True once initialised.
    pub initialized: bool,
    /// True while sealed.
    pub sealed: bool,
    /// True on a standby node.
    pub standby: bool,
    /// Server version.
    pub version: String,
    /// Server clock, Unix seconds.
    pub server_time_utc: u64,
}

/// Answer of `PUT sys/init`: the unseal key shares and the initial root token. All of it is
/// secret; it is shown once and never stored by the server.
#[derive(Debug, Clone, Deserialize)]
pub struct InitResponse {
    /// Key shares, hex.
    pub keys: Vec<SecretString>,
    /// The same shares, base64.
    #[serde(default)]
    pub keys_base64: Vec<SecretString>,
    /// The initial root token.
    pub root_token: SecretString,
}

/// Answer of `GET sys/key-status`: the keyring's current term.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default)]
pub struct KeyStatus {
    /// Current key term, from 1; increases on every rotation.
    pub term: u64,
    /// RFC 3339 time the term was installed.
    pub install_time: String,
}

/// One enabled auth method, from `GET sys/auth`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default)]
pub struct AuthMount {
    /// Method type: `token`, `approle`, `jwt`, `kubernetes`, ...
    #[serde(rename = "type")]
    pub method_type: String,
    /// Free-form description.
    pub description: String,
    /// The mount's accessor (`auth_approle_1a2b3c4d`).
    pub accessor: String,
    /// True for a mount not replicated (Vault Enterprise); always false on shroud.
    pub local: bool,
}

#[derive(Serialize)]
struct AuthEnable<'a> {
    #[serde(rename = "type")]
    method_type: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    description: &'a str,
}

#[derive(Serialize)]
struct InitRequest {
    secret_shares: u8,
    secret_threshold: u8,
}

#[derive(Serialize)]
struct UnsealRequest<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    key: Option<&'a str>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    reset: bool,
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
struct PolicyBody {
    #[serde(default)]
    policy: String,
}

#[derive(Serialize)]
struct PolicyWrite<'a> {
    policy: &'a str,
}

#[derive(Serialize)]
struct AuditEnable<'a> {
    #[serde(rename = "type")]
    device_type: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    description: &'a str,
    options: &'a BTreeMap<String, String>,
}

impl Client {
    /// `GET sys/health`. Vault encodes the state in the status code (200 active, 429 standby,
    /// 501 not initialised, 503 sealed) with the same body each time, so all four are answers.
    pub async fn health(&self) -> Result<Health, ClientError> {
        let raw = self
            .send::<()>(Method::Get, "sys/health", &[], None)
            .await?;
        match raw.status {
            200 | 429 | 472 | 473 | 501 | 503 => raw.json("sys/health"),
            _ => Err(raw.into_api_error()),
        }
    }

    /// `GET sys/seal-status` (unauthenticated).
    pub async fn seal_status(&self) -> Result<SealStatus, ClientError> {
        self.send_ok::<()>(Method::Get, "sys/seal-status", &[], None)
            .await?
            .json("sys/seal-status")
    }

    /// `PUT sys/init` with Shamir parameters. Vault bounds both to 1..=255 and
    /// threshold <= shares; the server re-checks.
    pub async fn init(&self, shares: u8, threshold: u8) -> Result<InitResponse, ClientError> {
        let body = InitRequest {
            secret_shares: shares,
            secret_threshold: threshold,
        };
        self.send_ok(Method::Put, "sys/init", &[], Some(&body))
            .await?
            .json("sys/init")
    }

    /// `GET sys/init`: whether the server is initialised.
    pub async fn init_status(&self) -> Result<bool, ClientError> {
        #[derive(Deserialize)]
        struct Init {
            initialized: bool,
        }
        let i: Init = self
            .send_ok::<()>(Method::Get, "sys/init", &[], None)
            .await?
            .json("sys/init")?;
        Ok(i.initialized)
    }

    /// `PUT sys/unseal` with one key share (hex or base64).
    pub async fn unseal(&self, key: &SecretString) -> Result<SealStatus, ClientError> {
        let body = UnsealRequest {
            key: Some(key.expose()),
            reset: false,
        };
        self.send_ok(Method::Put, "sys/unseal", &[], Some(&body))
            .await?
            .json("sys/unseal")
    }

    /// `PUT sys/unseal {"reset":true}`: discards the shares submitted so far.
    pub async fn unseal_reset(&self) -> Result<SealStatus, ClientError> {
        let body = UnsealRequest {
            key: None,
            reset: true,
        };
        self.send_ok(Method::Put, "sys/unseal", &[], Some(&body))
            .await?
            .json("sys/unseal")
    }

    /// `PUT sys/seal` (needs sudo).
    pub async fn seal(&self) -> Result<(), ClientError> {
        self.send_ok::<()>(Method::Put, "sys/seal", &[], None)
            .await
            .map(drop)
    }

    /// `PUT sys/rotate`: adds a new key term to the keyring (online; old terms stay readable).
    pub async fn rotate(&self) -> Result<(), ClientError> {
        self.send_ok::<()>(Method::Put, "sys/rotate", &[], None)
            .await
            .map(drop)
    }

    /// `GET sys/key-status`: the keyring's current term.
    pub async fn key_status(&self) -> Result<KeyStatus, ClientError> {
        let raw = self
            .send_ok::<()>(Method::Get, "sys/key-status", &[], None)
            .await?;
        // Vault copies `data` to the top level for sys paths; accept either.
        let v: serde_json::Value = raw.json("sys/key-status")?;
        let obj = v.get("data").filter(|d| !d.is_null()).unwrap_or(&v);
        serde_json::from_value(obj.clone()).map_err(|e| ClientError::InvalidResponse {
            reason: format!("sys/key-status: {e}"),
        })
    }

    /// `LIST sys/policies/acl`: policy names.
    pub async fn policy_list(&self) -> Result<Vec<String>, ClientError> {
        let raw = self
            .send::<()>(Method::List, "sys/policies/acl", &[], None)
            .await?;
        if raw.status == 404 {
            return Ok(Vec::new());
        }
        if !raw.is_success() {
            return Err(raw.into_api_error());
        }
        let env: Envelope<KeysBody> = raw.json("sys/policies/acl")?;
        Ok(env.data.map(|d| d.keys).unwrap_or_default())
    }

    /// `GET sys/policies/acl/<name>`: the policy text; `Ok(None)` if it does not exist.
    pub async fn policy_read(&self, name: &str) -> Result<Option<String>, ClientError> {
        let raw = self
            .send::<()>(Method::Get, &policy_path(name), &[], None)
            .await?;
        if raw.status == 404 {
            return Ok(None);
        }
        if !raw.is_success() {
            return Err(raw.into_api_error());
        }
        let env: Envelope<PolicyBody> = raw.json("sys/policies/acl")?;
        env.data
            .map(|d| Some(d.policy))
            .ok_or_else(|| missing("sys/policies/acl", "data"))
    }

    /// `PUT sys/policies/acl/<name>`: creates or replaces a policy (HCL or JSON text).
    pub async fn policy_write(&self, name: &str, policy: &str) -> Result<(), ClientError> {
        self.send_ok(
            Method::Put,
            &policy_path(name),
            &[],
            Some(&PolicyWrite { policy }),
        )
        .await
        .map(drop)
    }

    /// `DELETE sys/policies/acl/<name>`.
    pub async fn policy_delete(&self, name: &str) -> Result<(), ClientError> {
        self.send_ok::<()>(Method::Delete, &policy_path(name), &[], None)
            .await
            .map(drop)
    }

    /// `GET sys/auth`: enabled auth methods by path (`"approle/"`, `"token/"`, ...).
    pub async fn auth_list(&self) -> Result<BTreeMap<String, AuthMount>, ClientError> {
        // Vault also copies each entry to the top level; only `data` is read.
        let env: Envelope<BTreeMap<String, AuthMount>> = self
            .send_ok::<()>(Method::Get, "sys/auth", &[], None)
            .await?
            .json("sys/auth")?;
        env.data.ok_or_else(|| missing("sys/auth", "data"))
    }

    /// `POST sys/auth/<path> {"type","description"}`: enables an auth method (needs sudo).
    pub async fn auth_enable(
        &self,
        path: &str,
        method_type: &str,
        description: &str,
    ) -> Result<(), ClientError> {
        let body = AuthEnable {
            method_type,
            description,
        };
        self.send_ok(
            Method::Post,
            &format!("sys/auth/{}", path.trim_matches('/')),
            &[],
            Some(&body),
        )
        .await
        .map(drop)
    }

    /// `DELETE sys/auth/<path>`: disables an auth method, revoking every token it issued.
    pub async fn auth_disable(&self, path: &str) -> Result<(), ClientError> {
        self.send_ok::<()>(
            Method::Delete,
            &format!("sys/auth/{}", path.trim_matches('/')),
            &[],
            None,
        )
        .await
        .map(drop)
    }

    /// `POST sys/audit/<path>`: enables an audit device, e.g. type `"file"` with option
    /// `file_path` (needs sudo).
    pub async fn audit_enable(
        &self,
        path: &str,
        device_type: &str,
        description: &str,
        options: &BTreeMap<String, String>,
    ) -> Result<(), ClientError> {
        let body = AuditEnable {
            device_type,
            description,
            options,
        };
        self.send_ok(
            Method::Post,
            &format!("sys/audit/{}", path.trim_matches('/')),
            &[],
            Some(&body),
        )
        .await
        .map(drop)
    }

    /// `DELETE sys/audit/<path>`.
    pub async fn audit_disable(&self, path: &str) -> Result<(), ClientError> {
        self.send_ok::<()>(
            Method::Delete,
            &format!("sys/audit/{}", path.trim_matches('/')),
            &[],
            None,
        )
        .await
        .map(drop)
    }
}

fn policy_path(name: &str) -> String {
    format!("sys/policies/acl/{}", name.trim_matches('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unseal_body_shapes() {
        let k = "abcd";
        let v = serde_json::to_value(UnsealRequest {
            key: Some(k),
            reset: false,
        })
        .unwrap();
        assert_eq!(v, serde_json::json!({"key":"abcd"}));
        let v = serde_json::to_value(UnsealRequest {
            key: None,
            reset: true,
        })
        .unwrap();
        assert_eq!(v, serde_json::json!({"reset":true}));
    }

    #[test]
    fn init_response_keeps_secrets_out_of_debug() {
        let r: InitResponse = serde_json::from_str(
            r#"{"keys":["aa11"],"keys_base64":["qhE="],"root_token":"hvs.rootsecret"}"#,
        )
        .unwrap();
        let dbg = format!("{r:?}");
        assert!(
            !dbg.contains("rootsecret") && !dbg.contains("aa11"),
            "{dbg}"
        );
        assert_eq!(r.root_token.expose(), "hvs.rootsecret");
    }

    #[test]
    fn auth_mounts_parse_vault_shape() {
        let env: Envelope<BTreeMap<String, AuthMount>> = serde_json::from_str(
            r#"{"approle/":{"type":"approle"},"data":{"approle/":{"type":"approle",
                "description":"ci","accessor":"auth_approle_1","local":false,"config":{},
                "options":null,"seal_wrap":false,"uuid":"u"},
                "token/":{"type":"token","accessor":"auth_token","description":"token based credentials"}}}"#,
        )
        .unwrap();
        let m = env.data.unwrap();
        assert_eq!(m["approle/"].method_type, "approle");
        assert_eq!(m["approle/"].accessor, "auth_approle_1");
        assert_eq!(m["token/"].method_type, "token");
        let body = serde_json::to_value(AuthEnable {
            method_type: "jwt",
            description: "",
        })
        .unwrap();
        assert_eq!(body, serde_json::json!({"type":"jwt"}));
    }

    #[test]
    fn seal_status_parses_vault_shape() {
        let s: SealStatus = serde_json::from_str(
            r#"{"type":"shamir","initialized":true,"sealed":true,"t":3,"n":5,"progress":1,
                "nonce":"","version":"1.15.0","migration":false,"recovery_seal":false,
                "storage_type":"sqlite"}"#,
        )
        .unwrap();
        assert!(s.sealed);
        assert_eq!((s.t, s.n, s.progress), (3, 5, 1));
        assert_eq!(s.seal_type, "shamir");
    }
}
