//! The transit engine (encryption as a service). Placeholder until implemented.

use crate::api::{ApiError, ApiResult, Request};
use shroud_crypto::Barrier;
use std::sync::Arc;

/// One mounted transit engine.
pub struct TransitEngine {
    prefix: String,
    #[allow(dead_code)]
    barrier: Arc<Barrier>,
}

impl TransitEngine {
    /// An engine storing under `logical/<uuid>/`.
    pub fn new(barrier: Arc<Barrier>, uuid: &str) -> Self {
        Self {
            prefix: format!("logical/{uuid}/"),
            barrier,
        }
    }
}

#[async_trait::async_trait]
impl crate::engine::Engine for TransitEngine {
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
