//! In-memory backend, for tests and `--dev` runs that need no persistence.

use crate::storage::{validate_key, Op, Storage, StorageError};
use async_trait::async_trait;
use std::collections::BTreeMap;
use std::sync::Mutex;

/// A `BTreeMap` behind a mutex. Nothing survives the process.
#[derive(Default)]
pub struct MemoryStorage {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    map: BTreeMap<String, Vec<u8>>,
    seq: u64,
}

impl MemoryStorage {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A poisoned lock only means another thread panicked mid-operation; every operation
        // below leaves the map consistent before it can panic, so the data is still valid.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[async_trait]
impl Storage for MemoryStorage {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StorageError> {
        validate_key(key)?;
        Ok(self.lock().map.get(key).cloned())
    }

    async fn write_batch(&self, ops: Vec<Op>) -> Result<(), StorageError> {
        for op in &ops {
            match op {
                Op::Put(k, _) | Op::Delete(k) => validate_key(k)?,
            }
        }
        let mut g = self.lock();
        for op in ops {
            match op {
                Op::Put(k, v) => {
                    g.map.insert(k, v);
                }
                Op::Delete(k) => {
                    g.map.remove(&k);
                }
            }
        }
        g.seq += 1;
        Ok(())
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, StorageError> {
        let g = self.lock();
        Ok(g.map
            .range(prefix.to_owned()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, _)| k.clone())
            .collect())
    }

    async fn compare_and_swap(
        &self,
        key: &str,
        expected: Option<&[u8]>,
        new: Option<&[u8]>,
    ) -> Result<bool, StorageError> {
        validate_key(key)?;
        let mut g = self.lock();
        if g.map.get(key).map(|v| v.as_slice()) != expected {
            return Ok(false);
        }
        match new {
            Some(v) => {
                g.map.insert(key.to_owned(), v.to_vec());
            }
            None => {
                g.map.remove(key);
            }
        }
        g.seq += 1;
        Ok(true)
    }

    async fn sequence(&self) -> Result<u64, StorageError> {
        Ok(self.lock().seq)
    }

    fn kind(&self) -> &'static str {
        "memory"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn memory_passes_conformance() {
        crate::conformance::run_all(Arc::new(MemoryStorage::new())).await;
    }
}
