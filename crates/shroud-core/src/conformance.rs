//! The storage conformance suite: every backend runs [`run_all`] in its tests.
//!
//! It panics (with a message naming the broken rule) on the first violation of the
//! [`Storage`] contract.

use crate::storage::{Op, Storage};
use std::sync::Arc;

/// Runs every check against `s`, which must start empty.
pub async fn run_all(s: Arc<dyn Storage>) {
    get_put_delete(&*s).await;
    binary_values_round_trip(&*s).await;
    list_is_ordered_and_prefix_bounded(&*s).await;
    batch_is_applied_in_order(&*s).await;
    cas_semantics(&*s).await;
    sequence_is_monotonic(&*s).await;
    invalid_keys_rejected(&*s).await;
    concurrent_cas_counter(s.clone()).await;
    concurrent_writers_all_visible(s.clone()).await;
}

async fn get_put_delete(s: &dyn Storage) {
    assert_eq!(
        s.get("conf/a").await.unwrap(),
        None,
        "absent key must read as None"
    );
    s.put("conf/a", b"one").await.unwrap();
    assert_eq!(s.get("conf/a").await.unwrap().as_deref(), Some(&b"one"[..]));
    s.put("conf/a", b"two").await.unwrap();
    assert_eq!(
        s.get("conf/a").await.unwrap().as_deref(),
        Some(&b"two"[..]),
        "put overwrites"
    );
    s.delete("conf/a").await.unwrap();
    assert_eq!(s.get("conf/a").await.unwrap(), None, "delete removes");
    s.delete("conf/a")
        .await
        .expect("deleting an absent key is not an error");
}

async fn binary_values_round_trip(s: &dyn Storage) {
    let v: Vec<u8> = (0..=255u8).chain([0, 0, 255]).collect();
    s.put("conf/bin", &v).await.unwrap();
    assert_eq!(s.get("conf/bin").await.unwrap(), Some(v));
    s.put("conf/empty", b"").await.unwrap();
    assert_eq!(
        s.get("conf/empty").await.unwrap(),
        Some(vec![]),
        "empty value is not absent"
    );
    let big = vec![7u8; 3 * 1024 * 1024];
    s.put("conf/big", &big).await.unwrap();
    assert_eq!(
        s.get("conf/big").await.unwrap().map(|v| v.len()),
        Some(big.len())
    );
    for k in ["conf/bin", "conf/empty", "conf/big"] {
        s.delete(k).await.unwrap();
    }
}

async fn list_is_ordered_and_prefix_bounded(s: &dyn Storage) {
    for k in ["ls/b", "ls/a/x", "ls/a", "ls/c/d/e", "lt/z", "ls0", "l"] {
        s.put(k, k.as_bytes()).await.unwrap();
    }
    let got = s.list("ls/").await.unwrap();
    assert_eq!(
        got,
        vec!["ls/a", "ls/a/x", "ls/b", "ls/c/d/e"],
        "list must be ordered and bounded"
    );
    assert_eq!(s.list("nothing/").await.unwrap(), Vec::<String>::new());
    let all = s.list("").await.unwrap();
    let mut sorted = all.clone();
    sorted.sort();
    assert_eq!(all, sorted, "list(\"\") must be ordered");
    for k in ["ls/b", "ls/a/x", "ls/a", "ls/c/d/e", "lt/z", "ls0", "l"] {
        s.delete(k).await.unwrap();
    }
}

async fn batch_is_applied_in_order(s: &dyn Storage) {
    s.put("batch/gone", b"x").await.unwrap();
    s.write_batch(vec![
        Op::Put("batch/a".into(), b"1".to_vec()),
        Op::Put("batch/a".into(), b"2".to_vec()),
        Op::Delete("batch/gone".into()),
        Op::Put("batch/b".into(), b"3".to_vec()),
    ])
    .await
    .unwrap();
    assert_eq!(
        s.get("batch/a").await.unwrap().as_deref(),
        Some(&b"2"[..]),
        "later op wins"
    );
    assert_eq!(s.get("batch/gone").await.unwrap(), None);
    assert_eq!(s.get("batch/b").await.unwrap().as_deref(), Some(&b"3"[..]));
    s.write_batch(vec![]).await.expect("an empty batch is fine");
    s.write_batch(vec![
        Op::Delete("batch/a".into()),
        Op::Delete("batch/b".into()),
    ])
    .await
    .unwrap();
}

async fn cas_semantics(s: &dyn Storage) {
    assert!(
        s.compare_and_swap("cas/k", None, Some(b"v1"))
            .await
            .unwrap(),
        "create if absent"
    );
    assert!(
        !s.compare_and_swap("cas/k", None, Some(b"v2"))
            .await
            .unwrap(),
        "exists: no create"
    );
    assert!(!s
        .compare_and_swap("cas/k", Some(b"zz"), Some(b"v2"))
        .await
        .unwrap());
    assert_eq!(
        s.get("cas/k").await.unwrap().as_deref(),
        Some(&b"v1"[..]),
        "failed CAS changes nothing"
    );
    assert!(s
        .compare_and_swap("cas/k", Some(b"v1"), Some(b"v2"))
        .await
        .unwrap());
    assert_eq!(s.get("cas/k").await.unwrap().as_deref(), Some(&b"v2"[..]));
    assert!(
        s.compare_and_swap("cas/k", Some(b"v2"), None)
            .await
            .unwrap(),
        "CAS delete"
    );
    assert_eq!(s.get("cas/k").await.unwrap(), None);
}

async fn sequence_is_monotonic(s: &dyn Storage) {
    let a = s.sequence().await.unwrap();
    s.put("seq/x", b"1").await.unwrap();
    let b = s.sequence().await.unwrap();
    assert!(b > a, "put must advance the sequence ({a} -> {b})");
    s.delete("seq/x").await.unwrap();
    let c = s.sequence().await.unwrap();
    assert!(c > b, "delete must advance the sequence ({b} -> {c})");
    assert!(!s
        .compare_and_swap("seq/x", Some(b"no"), None)
        .await
        .unwrap());
    assert_eq!(
        s.sequence().await.unwrap(),
        c,
        "a failed CAS must not advance the sequence"
    );
}

async fn invalid_keys_rejected(s: &dyn Storage) {
    assert!(s.put("", b"x").await.is_err(), "empty key must be rejected");
    assert!(
        s.put("a\0b", b"x").await.is_err(),
        "NUL in key must be rejected"
    );
    let long = "k".repeat(crate::storage::MAX_KEY_LEN + 1);
    assert!(
        s.put(&long, b"x").await.is_err(),
        "over-long key must be rejected"
    );
    assert!(s.get("").await.is_err());
}

async fn concurrent_cas_counter(s: Arc<dyn Storage>) {
    const TASKS: u64 = 8;
    const EACH: u64 = 25;
    let mut handles = Vec::new();
    for _ in 0..TASKS {
        let s = s.clone();
        handles.push(tokio::spawn(async move {
            for _ in 0..EACH {
                loop {
                    let cur = s.get("cc/counter").await.unwrap();
                    let n: u64 = cur
                        .as_deref()
                        .map(|b| std::str::from_utf8(b).unwrap().parse().unwrap())
                        .unwrap_or(0);
                    let next = (n + 1).to_string();
                    if s.compare_and_swap("cc/counter", cur.as_deref(), Some(next.as_bytes()))
                        .await
                        .unwrap()
                    {
                        break;
                    }
                }
            }
        }));
    }
    for h in handles {
        h.await.unwrap();
    }
    let v = s.get("cc/counter").await.unwrap().unwrap();
    assert_eq!(
        std::str::from_utf8(&v).unwrap(),
        (TASKS * EACH).to_string(),
        "CAS lost an increment under concurrency"
    );
    s.delete("cc/counter").await.unwrap();
}

async fn concurrent_writers_all_visible(s: Arc<dyn Storage>) {
    let mut handles = Vec::new();
    for t in 0..16u32 {
        let s = s.clone();
        handles.push(tokio::spawn(async move {
            for i in 0..20u32 {
                let k = format!("cw/{t:02}/{i:02}");
                s.put(&k, k.as_bytes()).await.unwrap();
            }
        }));
    }
    for h in handles {
        h.await.unwrap();
    }
    let keys = s.list("cw/").await.unwrap();
    assert_eq!(
        keys.len(),
        16 * 20,
        "every acknowledged concurrent write must be listed"
    );
    for k in &keys {
        assert_eq!(s.get(k).await.unwrap().as_deref(), Some(k.as_bytes()));
        s.delete(k).await.unwrap();
    }
}
