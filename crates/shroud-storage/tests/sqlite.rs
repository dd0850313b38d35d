//! SqliteStorage behaviour beyond the conformance suite: persistence across reopen, damaged
//! files, and the group-commit path under concurrency.

use shroud_core::{Op, Storage, StorageError};
use shroud_storage::{CachedStorage, SqliteStorage};
use std::io::{Seek, SeekFrom, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

fn temp_db() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shroud.db");
    (dir, path)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn values_and_sequence_survive_reopen() {
    let (_dir, path) = temp_db();
    let s = SqliteStorage::open(&path).unwrap();
    s.put("a", b"1").await.unwrap();
    s.write_batch(vec![
        Op::Put("b".into(), vec![0, 255]),
        Op::Put("c".into(), vec![]),
    ])
    .await
    .unwrap();
    assert!(s
        .compare_and_swap("a", Some(b"1"), Some(b"2"))
        .await
        .unwrap());
    s.delete("c").await.unwrap();
    let seq = s.sequence().await.unwrap();
    assert_eq!(seq, 4);
    drop(s);

    let s = SqliteStorage::open(&path).unwrap();
    assert_eq!(s.get("a").await.unwrap().as_deref(), Some(&b"2"[..]));
    assert_eq!(s.get("b").await.unwrap(), Some(vec![0, 255]));
    assert_eq!(s.get("c").await.unwrap(), None);
    assert_eq!(s.list("").await.unwrap(), vec!["a", "b"]);
    assert_eq!(
        s.sequence().await.unwrap(),
        seq,
        "the sequence must survive a restart"
    );
    s.put("d", b"x").await.unwrap();
    assert_eq!(s.sequence().await.unwrap(), seq + 1);
}

#[test]
fn garbage_file_is_corrupt() {
    let (_dir, path) = temp_db();
    let garbage: Vec<u8> = (0..16384u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(&path, garbage).unwrap();
    let err = SqliteStorage::open(&path).unwrap_err();
    assert!(matches!(err, StorageError::Corrupt(_)), "{err:?}");
}

#[test]
fn text_file_is_corrupt() {
    let (_dir, path) = temp_db();
    std::fs::write(&path, "listener \"tcp\" { address = \"127.0.0.1:8200\" }\n").unwrap();
    let err = SqliteStorage::open(&path).unwrap_err();
    assert!(matches!(err, StorageError::Corrupt(_)), "{err:?}");
}

#[test]
fn empty_file_becomes_a_new_database() {
    let (_dir, path) = temp_db();
    std::fs::write(&path, b"").unwrap();
    SqliteStorage::open(&path).expect("a zero-length file is an empty SQLite database");
}

/// Damage past the header: opening or reading must fail with an error, never panic.
#[tokio::test]
async fn damaged_pages_fail_without_panic() {
    let (_dir, path) = temp_db();
    let s = SqliteStorage::open(&path).unwrap();
    for i in 0..200 {
        s.put(&format!("k/{i:03}"), &[i as u8; 500]).await.unwrap();
    }
    drop(s); // checkpoints the WAL into the main file and removes it
    let len = std::fs::metadata(&path).unwrap().len();
    assert!(len > 8192);
    let mut f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    f.seek(SeekFrom::Start(4096)).unwrap();
    f.write_all(&vec![0xA5; (len - 4096) as usize]).unwrap();
    drop(f);
    match SqliteStorage::open(&path) {
        Err(e) => assert!(matches!(e, StorageError::Corrupt(_)), "{e:?}"),
        Ok(s) => {
            let r = s.list("").await;
            assert!(matches!(r, Err(StorageError::Corrupt(_))), "{r:?}");
        }
    }
}

/// All CAS requests below arrive together and land in one or a few groups; each must be
/// evaluated against the state left by the requests before it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_create_if_absent_has_one_winner() {
    let (_dir, path) = temp_db();
    let s = Arc::new(SqliteStorage::open(&path).unwrap());
    let mut tasks = Vec::new();
    for t in 0..64u32 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let v = t.to_string();
            (
                t,
                s.compare_and_swap("lock", None, Some(v.as_bytes()))
                    .await
                    .unwrap(),
            )
        }));
    }
    let mut winners = Vec::new();
    for t in tasks {
        let (id, won) = t.await.unwrap();
        if won {
            winners.push(id);
        }
    }
    assert_eq!(winners.len(), 1, "winners: {winners:?}");
    let stored = s.get("lock").await.unwrap().unwrap();
    assert_eq!(stored, winners[0].to_string().as_bytes());
    assert_eq!(
        s.sequence().await.unwrap(),
        1,
        "only the winning CAS is a change"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sequence_counts_requests_not_groups() {
    let (_dir, path) = temp_db();
    let s = Arc::new(SqliteStorage::open(&path).unwrap());
    let mut tasks = Vec::new();
    for t in 0..32u32 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..10u32 {
                s.put(&format!("seq/{t}/{i}"), b"x").await.unwrap();
                // A failed CAS in the same groups must not count.
                assert!(!s
                    .compare_and_swap("seq/none", Some(b"x"), None)
                    .await
                    .unwrap());
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(s.sequence().await.unwrap(), 320);
    drop(s);
    let s = SqliteStorage::open(&path).unwrap();
    assert_eq!(s.sequence().await.unwrap(), 320);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_and_small_writes_interleave() {
    // Requests larger than one group's byte budget still go through, alone.
    let (_dir, path) = temp_db();
    let s = Arc::new(SqliteStorage::open(&path).unwrap());
    let mut tasks = Vec::new();
    for t in 0..8usize {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let size = if t % 2 == 0 { 5 * 1024 * 1024 } else { 10 };
            s.put(&format!("mix/{t}"), &vec![t as u8; size])
                .await
                .unwrap();
            size
        }));
    }
    for (t, task) in tasks.into_iter().enumerate() {
        let size = task.await.unwrap();
        assert_eq!(
            s.get(&format!("mix/{t}")).await.unwrap(),
            Some(vec![t as u8; size])
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cached_sqlite_one_key_race_stays_fresh() {
    let (_dir, path) = temp_db();
    let cache = Arc::new(CachedStorage::new(
        Arc::new(SqliteStorage::open(&path).unwrap()),
        1 << 20,
    ));
    let stop = Arc::new(AtomicBool::new(false));
    let mut readers = Vec::new();
    for _ in 0..8 {
        let (cache, stop) = (cache.clone(), stop.clone());
        readers.push(tokio::spawn(async move {
            let mut last = 0u64;
            while !stop.load(Ordering::Relaxed) {
                if let Some(v) = cache.get("race").await.unwrap() {
                    let n: u64 = std::str::from_utf8(&v).unwrap().parse().unwrap();
                    assert!(n >= last, "a reader saw {n} after {last}");
                    last = n;
                }
                tokio::task::yield_now().await;
            }
        }));
    }
    // Several writers at once, each writing its own increasing values, then one last put.
    let mut writers = Vec::new();
    for w in 0..4u64 {
        let cache = cache.clone();
        writers.push(tokio::spawn(async move {
            for i in 0..50u64 {
                let other = format!("w/{w}");
                cache.put(&other, i.to_string().as_bytes()).await.unwrap();
                let got = cache.get(&other).await.unwrap().unwrap();
                assert_eq!(got, i.to_string().as_bytes(), "stale read after put");
            }
        }));
    }
    for i in 1..=200u64 {
        cache.put("race", i.to_string().as_bytes()).await.unwrap();
        let got = cache.get("race").await.unwrap().unwrap();
        assert_eq!(got, i.to_string().as_bytes(), "stale read after put");
    }
    stop.store(true, Ordering::Relaxed);
    for t in readers.into_iter().chain(writers) {
        t.await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_writers_of_one_key_through_cache_end_coherent() {
    let (_dir, path) = temp_db();
    let inner = Arc::new(SqliteStorage::open(&path).unwrap());
    let cache = Arc::new(CachedStorage::new(inner.clone(), 1 << 20));
    let mut tasks = Vec::new();
    for t in 0..16u32 {
        let cache = cache.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..20u32 {
                cache
                    .put("shared", format!("{t}/{i}").as_bytes())
                    .await
                    .unwrap();
                cache.get("shared").await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(
        cache.get("shared").await.unwrap(),
        inner.get("shared").await.unwrap()
    );
}

/// The writer's connection closes last, so SQLite folds the WAL into the main file: a closed
/// database is one self-contained file (what a backup by copy expects).
#[tokio::test]
async fn close_leaves_no_wal_behind() {
    let (dir, path) = temp_db();
    let s = SqliteStorage::open(&path).unwrap();
    s.put("a", b"1").await.unwrap();
    for _ in 0..4 {
        s.get("a").await.unwrap();
        s.list("").await.unwrap();
    }
    drop(s);
    let mut files: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    files.sort();
    assert_eq!(files, vec!["shroud.db"]);
}
