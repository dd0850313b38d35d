//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::sync::Arc;

use shroud_core::{MemoryStorage, SecretBytes, Storage};
use shroud_crypto::{Barrier, SealManager};

/// A storage handle for raw access plus the barrier and seal over it.
pub struct Fixture {
    pub storage: Arc<MemoryStorage>,
    pub barrier: Arc<Barrier>,
    pub seal: SealManager,
}

impl Fixture {
    /// A fresh, uninitialised, sealed fixture.
    pub fn new() -> Fixture {
        Self::over(Arc::new(MemoryStorage::new()))
    }

    /// A new barrier and seal over existing storage, as after a restart.
    pub fn over(storage: Arc<MemoryStorage>) -> Fixture {
        let dyn_storage: Arc<dyn Storage> = storage.clone();
        let barrier = Barrier::new(dyn_storage);
        let seal = SealManager::new(Arc::clone(&barrier));
        Fixture {
            storage,
            barrier,
            seal,
        }
    }

    /// Initialised with the static seal under `key` and unsealed.
    pub async fn unsealed_with(key: &SecretBytes) -> Fixture {
        let f = Fixture::new();
        f.seal.initialize_static(key).await.unwrap();
        f.seal.unseal_with_key(key).await.unwrap();
        f
    }

    /// Initialised with the static seal under a random key and unsealed.
    pub async fn unsealed() -> (Fixture, SecretBytes) {
        let key = shroud_crypto::generate_unseal_key().unwrap();
        (Fixture::unsealed_with(&key).await, key)
    }

    /// Raw stored bytes of `key`.
    pub async fn raw(&self, key: &str) -> Vec<u8> {
        self.storage.get(key).await.unwrap().unwrap()
    }

    /// Every stored (key, value) pair.
    pub async fn dump(&self) -> Vec<(String, Vec<u8>)> {
        let mut out = Vec::new();
        for k in self.storage.list("").await.unwrap() {
            let v = self.storage.get(&k).await.unwrap().unwrap();
            out.push((k, v));
        }
        out
    }
}

/// True if `needle` occurs anywhere in `haystack`.
pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
}

/// Asserts that `dbg` shows none of `secret` in hex (either case), as a decimal byte list, or
/// as raw text.
pub fn assert_redacted(dbg: &str, secret: &[u8]) {
    let hex = hex::encode(secret);
    assert!(!dbg.to_lowercase().contains(&hex), "hex leaked: {dbg}");
    // A window of the hex, to catch partial prints.
    if hex.len() >= 16 {
        assert!(
            !dbg.to_lowercase().contains(&hex[..16]),
            "hex prefix leaked: {dbg}"
        );
    }
    let decimal = secret
        .iter()
        .take(4)
        .map(|b| b.to_string())
        .collect::<Vec<_>>()
        .join(", ");
    assert!(!dbg.contains(&decimal), "decimal bytes leaked: {dbg}");
    let decimal_tight = decimal.replace(' ', "");
    assert!(!dbg.contains(&decimal_tight), "decimal bytes leaked: {dbg}");
}
