//! Policies behind the barrier, with compiled ACLs cached per set of policy names.
//!
//! Every request compiles nothing: the `Acl` for a token's policy list is built once and kept
//! until any policy changes (the cache is simply cleared on every write or delete).

use crate::api::ApiError;
use shroud_crypto::Barrier;
use shroud_policy::{parse_policy, Acl, Policy};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

const PREFIX: &str = "sys/policy/";

/// Maximum size of one policy document.
pub const MAX_POLICY_BYTES: usize = 1024 * 1024;

/// The policy store.
pub struct PolicyStore {
    barrier: Arc<Barrier>,
    policies: RwLock<HashMap<String, Arc<Policy>>>,
    acls: RwLock<HashMap<Vec<String>, Arc<Acl>>>,
}

impl PolicyStore {
    /// Loads every policy from storage.
    pub async fn load(barrier: Arc<Barrier>) -> Result<Self, ApiError> {
        let mut map = HashMap::new();
        for key in barrier.list(PREFIX).await? {
            let name = &key[PREFIX.len()..];
            if let Some(raw) = barrier.get(&key).await? {
                let text = String::from_utf8_lossy(raw.expose()).into_owned();
                match parse_policy(name, &text) {
                    Ok(p) => {
                        map.insert(name.to_owned(), Arc::new(p));
                    }
                    Err(e) => {
                        tracing::error!(policy = name, error = %e, "stored policy does not parse; ignored")
                    }
                }
            }
        }
        Ok(Self {
            barrier,
            policies: RwLock::new(map),
            acls: RwLock::new(HashMap::new()),
        })
    }

    /// Creates the built-in `default` policy if it does not exist yet.
    pub async fn ensure_default(&self) -> Result<(), ApiError> {
        if self.get("default").is_none() {
            self.put("default", shroud_policy::DEFAULT_POLICY).await?;
        }
        Ok(())
    }

    /// A policy by (normalized) name.
    pub fn get(&self, name: &str) -> Option<Arc<Policy>> {
        self.policies
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .cloned()
    }

    /// All policy names, sorted, including `root`.
    pub fn names(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .policies
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .cloned()
            .collect();
        v.push("root".to_owned());
        v.sort();
        v
    }

    /// Parses and stores a policy. Errors are 400s the client can act on.
    pub async fn put(&self, name: &str, text: &str) -> Result<(), ApiError> {
        let name = shroud_policy::normalize_name(name)
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
        if name == "root" {
            return Err(ApiError::bad_request("cannot update root policy"));
        }
        if text.len() > MAX_POLICY_BYTES {
            return Err(ApiError::new(413, "policy is too large"));
        }
        let policy = parse_policy(&name, text)
            .map_err(|e| ApiError::bad_request(format!("failed to parse policy: {e}")))?;
        self.barrier
            .put(&format!("{PREFIX}{name}"), text.as_bytes())
            .await?;
        self.policies
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name, Arc::new(policy));
        self.acls.write().unwrap_or_else(|e| e.into_inner()).clear();
        Ok(())
    }

    /// Deletes a policy. `root` and `default` cannot be deleted (Vault's rule).
    pub async fn delete(&self, name: &str) -> Result<(), ApiError> {
        let name = name.to_lowercase();
        if name == "root" {
            return Err(ApiError::bad_request("cannot delete root policy"));
        }
        if name == "default" {
            return Err(ApiError::bad_request("cannot delete default policy"));
        }
        self.barrier.delete(&format!("{PREFIX}{name}")).await?;
        self.policies
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&name);
        self.acls.write().unwrap_or_else(|e| e.into_inner()).clear();
        Ok(())
    }

    /// The compiled ACL for a token's policies. Unknown policy names grant nothing.
    pub fn acl(&self, names: &[String]) -> Arc<Acl> {
        if let Some(a) = self
            .acls
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(names)
        {
            return a.clone();
        }
        let acl = if names.iter().any(|n| n == "root") {
            Arc::new(Acl::root())
        } else {
            let held: Vec<Arc<Policy>> = names.iter().filter_map(|n| self.get(n)).collect();
            let refs: Vec<&Policy> = held.iter().map(|p| p.as_ref()).collect();
            Arc::new(Acl::new(&refs))
        };
        let mut cache = self.acls.write().unwrap_or_else(|e| e.into_inner());
        if cache.len() > 10_000 {
            cache.clear();
        }
        cache.insert(names.to_vec(), acl.clone());
        acl
    }
}
