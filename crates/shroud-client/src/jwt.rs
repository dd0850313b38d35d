//! Login with a signed JWT: the JWT/OIDC auth method and the Kubernetes auth method (a
//! service-account token), both `POST auth/<mount>/login {"role","jwt"}` (API reference,
//! section 2.6).

use serde::Serialize;
use shroud_core::SecretString;

use crate::approle::AuthEnvelope;
use crate::client::{Client, Method};
use crate::kv2::missing;
use crate::path::join;
use crate::token::TokenAuth;
use crate::ClientError;

#[derive(Serialize)]
struct JwtLogin<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<&'a str>,
    jwt: &'a str,
}

impl Client {
    /// `POST auth/<mount>/login {"role","jwt"}` on a `jwt` or `kubernetes` auth mount. `role`
    /// may be `None` for a JWT mount with a default role (Kubernetes always needs one). Sent
    /// without the client's own token.
    pub async fn login_jwt(
        &self,
        mount: &str,
        role: Option<&str>,
        jwt: &SecretString,
    ) -> Result<TokenAuth, ClientError> {
        let body = JwtLogin {
            role,
            jwt: jwt.expose(),
        };
        let env: AuthEnvelope = self
            .with_token(None)
            .send_ok(
                Method::Post,
                &join(&["auth", mount, "login"]),
                &[],
                Some(&body),
            )
            .await?
            .json("jwt login")?;
        env.auth.ok_or_else(|| missing("jwt login", "auth"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_body_omits_a_missing_role() {
        let v = serde_json::to_value(JwtLogin {
            role: None,
            jwt: "e.y.j",
        })
        .unwrap();
        assert_eq!(v, serde_json::json!({"jwt":"e.y.j"}));
        let v = serde_json::to_value(JwtLogin {
            role: Some("app"),
            jwt: "e.y.j",
        })
        .unwrap();
        assert_eq!(v, serde_json::json!({"role":"app","jwt":"e.y.j"}));
    }
}
