//! The shared storage conformance suite, run against every backend and cache combination
//! this crate provides.

use shroud_core::conformance::run_all;
use shroud_core::{MemoryStorage, Storage};
use shroud_storage::{CachedStorage, SqliteStorage};
use std::sync::Arc;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_passes_conformance() {
    let dir = tempfile::tempdir().unwrap();
    run_all(Arc::new(
        SqliteStorage::open(&dir.path().join("s.db")).unwrap(),
    ))
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cached_memory_passes_conformance() {
    let inner: Arc<dyn Storage> = Arc::new(MemoryStorage::new());
    run_all(Arc::new(CachedStorage::new(inner, 1 << 20))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cached_sqlite_passes_conformance() {
    let dir = tempfile::tempdir().unwrap();
    let inner: Arc<dyn Storage> = Arc::new(SqliteStorage::open(&dir.path().join("s.db")).unwrap());
    let cached = CachedStorage::new(inner, 1 << 20);
    assert_eq!(cached.kind(), "sqlite");
    run_all(Arc::new(cached)).await;
}

/// A cache so small that it evicts constantly must still behave like the store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tiny_cache_over_sqlite_passes_conformance() {
    let dir = tempfile::tempdir().unwrap();
    let inner: Arc<dyn Storage> = Arc::new(SqliteStorage::open(&dir.path().join("s.db")).unwrap());
    run_all(Arc::new(CachedStorage::new(inner, 4096))).await;
}
