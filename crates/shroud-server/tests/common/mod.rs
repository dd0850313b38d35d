//! In-process harness: a memory-backed, unsealed core driven through the real router.
#![allow(dead_code)]

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::Value;
use shroud_core::SecretString;
use shroud_server::core::Core;
use std::sync::Arc;
use tower::ServiceExt;

pub struct Harness {
    pub core: Arc<Core>,
    pub root: String,
}

pub struct Resp {
    pub status: u16,
    pub content_type: Option<String>,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

impl Harness {
    pub async fn new() -> Self {
        let (core, root) = shroud_server::memory_core(Some(SecretString::from("root-test-token")))
            .await
            .expect("memory core");
        Self {
            core,
            root: root.expose().to_owned(),
        }
    }

    pub async fn raw(&self, req: Request<Body>) -> Resp {
        let app = shroud_server::http::router(self.core.clone());
        let r = app.oneshot(req).await.expect("router is infallible");
        let status = r.status().as_u16();
        let content_type = r
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned());
        let body = r.into_body().collect().await.unwrap().to_bytes().to_vec();
        Resp {
            status,
            content_type,
            body,
        }
    }

    pub async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Resp {
        let mut b = Request::builder().method(method).uri(format!("/v1/{path}"));
        if let Some(t) = token {
            b = b.header("X-Vault-Token", t);
        }
        if method == "PATCH" {
            b = b.header("Content-Type", "application/merge-patch+json");
        }
        let body = match body {
            Some(v) => Body::from(serde_json::to_vec(&v).unwrap()),
            None => Body::empty(),
        };
        self.raw(b.body(body).unwrap()).await
    }

    pub async fn root(&self, method: &str, path: &str, body: Option<Value>) -> Resp {
        let root = self.root.clone();
        self.call(method, path, Some(&root), body).await
    }

    /// Writes a policy and returns a token holding only it.
    pub async fn token_with(&self, name: &str, hcl: &str) -> String {
        let r = self
            .root(
                "PUT",
                &format!("sys/policies/acl/{name}"),
                Some(serde_json::json!({"policy": hcl})),
            )
            .await;
        assert_eq!(r.status, 204, "policy write: {}", r.text());
        let r = self
            .root(
                "POST",
                "auth/token/create",
                Some(
                    serde_json::json!({"policies": [name], "no_default_policy": true, "ttl": "1h"}),
                ),
            )
            .await;
        assert_eq!(r.status, 200, "token create: {}", r.text());
        r.json()["auth"]["client_token"]
            .as_str()
            .unwrap()
            .to_owned()
    }
}

pub fn ok(status: u16) -> bool {
    StatusCode::from_u16(status).unwrap().is_success()
}
