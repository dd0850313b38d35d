//! The JWT auth method, also mounted as `kubernetes`. Placeholder until implemented.

use crate::api::{ApiError, ApiResult, Request};
use shroud_crypto::Barrier;
use std::sync::Arc;

/// One mounted JWT (or Kubernetes) auth method.
pub struct JwtAuth {
    prefix: String,
    #[allow(dead_code)]
    barrier: Arc<Barrier>,
    #[allow(dead_code)]
    kubernetes: bool,
}

impl JwtAuth {
    /// A method storing under `auth/<uuid>/`; `kubernetes` selects Vault's Kubernetes login shape.
    pub fn new(barrier: Arc<Barrier>, uuid: &str, kubernetes: bool) -> Self {
        Self {
            prefix: format!("auth/{uuid}/"),
            barrier,
            kubernetes,
        }
    }
}

#[async_trait::async_trait]
impl crate::engine::Engine for JwtAuth {
    async fn exists(&self, _rel: &str, _req: &Request) -> Result<bool, ApiError> {
        Ok(true)
    }
    async fn handle(&self, _rel: &str, req: &Request) -> ApiResult {
        Err(ApiError::no_route(&req.path))
    }
    fn prefix(&self) -> &str {
        &self.prefix
    }
}
