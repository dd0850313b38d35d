//! A micro-benchmark of durable writes, ignored by default (it measures, it asserts nothing
//! about time). Run it with
//! `cargo test -p shroud-storage --release --test throughput -- --ignored --nocapture`.
//!
//! It reports 32 concurrent writers against a single writer on the same machine and file
//! system: the ratio is what group commit buys.

use shroud_core::Storage;
use shroud_storage::{CachedStorage, SqliteStorage};
use std::sync::Arc;
use std::time::Instant;

async fn writes_per_second(storage: Arc<dyn Storage>, writers: usize, each: usize) -> f64 {
    let start = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..writers {
        let storage = storage.clone();
        tasks.push(tokio::spawn(async move {
            let value = vec![0x5a; 256];
            for i in 0..each {
                storage
                    .put(&format!("bench/{w:02}/{i:06}"), &value)
                    .await
                    .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    (writers * each) as f64 / start.elapsed().as_secs_f64()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark; run explicitly"]
async fn group_commit_throughput() {
    let dir = tempfile::tempdir().unwrap();
    let sqlite: Arc<dyn Storage> = Arc::new(SqliteStorage::open(&dir.path().join("b.db")).unwrap());
    let single = writes_per_second(sqlite.clone(), 1, 300).await;
    let many = writes_per_second(sqlite.clone(), 32, 500).await;
    let cached: Arc<dyn Storage> = Arc::new(CachedStorage::new(sqlite, 64 << 20));
    let many_cached = writes_per_second(cached, 32, 500).await;
    println!("durable puts/s: 1 writer {single:.0}, 32 writers {many:.0} ({:.1}x), 32 writers through the cache {many_cached:.0}", many / single);
}
