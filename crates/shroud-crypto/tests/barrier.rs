//! The barrier: round trips, tamper detection, sealing, rotation.

mod common;

use std::sync::Arc;

use common::{assert_redacted, contains, Fixture};
use shroud_core::{SecretBytes, Storage};
use shroud_crypto::{BarrierOp, CryptoError, ENTRY_OVERHEAD, KEYRING_PATH};

#[tokio::test]
async fn round_trip() {
    let (f, _) = Fixture::unsealed().await;
    let b = &f.barrier;
    assert!(!b.is_sealed());
    assert!(b.get("logical/missing").await.unwrap().is_none());

    b.put("logical/a", b"alpha").await.unwrap();
    b.put("logical/b", b"").await.unwrap();
    assert_eq!(
        b.get("logical/a").await.unwrap().unwrap().expose(),
        b"alpha"
    );
    assert!(b.get("logical/b").await.unwrap().unwrap().is_empty());
    assert_eq!(f.raw("logical/a").await.len(), 5 + ENTRY_OVERHEAD);

    b.put("logical/a", b"alpha-2").await.unwrap();
    assert_eq!(
        b.get("logical/a").await.unwrap().unwrap().expose(),
        b"alpha-2"
    );

    assert_eq!(
        b.list("logical/").await.unwrap(),
        vec!["logical/a", "logical/b"]
    );
    b.delete("logical/a").await.unwrap();
    assert!(b.get("logical/a").await.unwrap().is_none());
    b.delete("logical/a").await.unwrap();
    assert_eq!(b.list("logical/").await.unwrap(), vec!["logical/b"]);
}

#[tokio::test]
async fn large_value_round_trips() {
    let (f, _) = Fixture::unsealed().await;
    let big: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
    f.barrier.put("logical/big", &big).await.unwrap();
    assert_eq!(
        f.barrier
            .get("logical/big")
            .await
            .unwrap()
            .unwrap()
            .expose(),
        &big[..]
    );
}

#[tokio::test]
async fn write_batch_applies_puts_and_deletes() {
    let (f, _) = Fixture::unsealed().await;
    let b = &f.barrier;
    b.put("logical/old", b"x").await.unwrap();
    b.write_batch(vec![
        BarrierOp::Put("logical/one".into(), b"1".to_vec()),
        BarrierOp::Put("logical/two".into(), b"2".to_vec()),
        BarrierOp::Delete("logical/old".into()),
    ])
    .await
    .unwrap();
    assert_eq!(b.get("logical/one").await.unwrap().unwrap().expose(), b"1");
    assert_eq!(b.get("logical/two").await.unwrap().unwrap().expose(), b"2");
    assert!(b.get("logical/old").await.unwrap().is_none());
}

#[tokio::test]
async fn write_batch_with_reserved_path_writes_nothing() {
    let (f, _) = Fixture::unsealed().await;
    let before = f.dump().await;
    let err = f
        .barrier
        .write_batch(vec![
            BarrierOp::Put("logical/one".into(), b"1".to_vec()),
            BarrierOp::Delete(KEYRING_PATH.into()),
        ])
        .await
        .unwrap_err();
    assert!(matches!(err, CryptoError::ReservedPath(_)), "{err:?}");
    assert_eq!(f.dump().await, before);
}

#[tokio::test]
async fn reserved_paths_are_refused() {
    let (f, _) = Fixture::unsealed().await;
    for p in [
        shroud_crypto::ROOT_KEY_PATH,
        shroud_crypto::KEYRING_PATH,
        shroud_crypto::SEAL_CONFIG_PATH,
    ] {
        assert!(matches!(
            f.barrier.put(p, b"x").await,
            Err(CryptoError::ReservedPath(_))
        ));
        assert!(matches!(
            f.barrier.delete(p).await,
            Err(CryptoError::ReservedPath(_))
        ));
        // Reading them through the barrier fails: they are not keyring entries.
        assert!(f.barrier.get(p).await.is_err());
    }
    // A neighbour of a reserved key is an ordinary path.
    f.barrier.put("core/keyring2", b"x").await.unwrap();
}

#[tokio::test]
async fn tampered_ciphertext_fails() {
    let (f, _) = Fixture::unsealed().await;
    f.barrier.put("logical/a", b"secret value").await.unwrap();
    let raw = f.raw("logical/a").await;
    // Flip one bit in the nonce, the ciphertext and the tag in turn.
    for i in [5, 17, raw.len() - 1] {
        let mut t = raw.clone();
        t[i] ^= 0x01;
        f.storage.put("logical/a", &t).await.unwrap();
        let err = f.barrier.get("logical/a").await.unwrap_err();
        assert!(
            matches!(err, CryptoError::DecryptionFailed),
            "byte {i}: {err:?}"
        );
        assert_eq!(err.to_string(), "decryption failed");
    }
    // Truncated and garbage entries fail the same way.
    f.storage.put("logical/a", &raw[..20]).await.unwrap();
    assert!(matches!(
        f.barrier.get("logical/a").await,
        Err(CryptoError::DecryptionFailed)
    ));
    f.storage.put("logical/a", b"plain text").await.unwrap();
    assert!(matches!(
        f.barrier.get("logical/a").await,
        Err(CryptoError::DecryptionFailed)
    ));
    // The untouched ciphertext still reads.
    f.storage.put("logical/a", &raw).await.unwrap();
    assert_eq!(
        f.barrier.get("logical/a").await.unwrap().unwrap().expose(),
        b"secret value"
    );
}

#[tokio::test]
async fn moved_ciphertext_fails() {
    let (f, _) = Fixture::unsealed().await;
    f.barrier.put("logical/a", b"for a").await.unwrap();
    f.barrier.put("logical/b", b"for b").await.unwrap();
    let raw_a = f.raw("logical/a").await;
    f.storage.put("logical/b", &raw_a).await.unwrap();
    assert!(matches!(
        f.barrier.get("logical/b").await,
        Err(CryptoError::DecryptionFailed)
    ));
    // Also to a path that never existed.
    f.storage.put("logical/c", &raw_a).await.unwrap();
    assert!(matches!(
        f.barrier.get("logical/c").await,
        Err(CryptoError::DecryptionFailed)
    ));
    assert_eq!(
        f.barrier.get("logical/a").await.unwrap().unwrap().expose(),
        b"for a"
    );
}

#[tokio::test]
async fn changed_term_header_fails() {
    let (f, _) = Fixture::unsealed().await;
    f.barrier.put("logical/a", b"v").await.unwrap();
    let raw = f.raw("logical/a").await;
    assert_eq!(&raw[..5], &[1, 0, 0, 0, 1]);

    // Term 2 does not exist yet.
    let mut t = raw.clone();
    t[4] = 2;
    f.storage.put("logical/a", &t).await.unwrap();
    assert!(matches!(
        f.barrier.get("logical/a").await,
        Err(CryptoError::DecryptionFailed)
    ));

    // After a rotation term 2 exists, but the header is authenticated.
    f.barrier.rotate().await.unwrap();
    assert!(matches!(
        f.barrier.get("logical/a").await,
        Err(CryptoError::DecryptionFailed)
    ));

    // Term 0 is the bootstrap term and never a keyring term.
    let mut t = raw.clone();
    t[4] = 0;
    f.storage.put("logical/a", &t).await.unwrap();
    assert!(matches!(
        f.barrier.get("logical/a").await,
        Err(CryptoError::DecryptionFailed)
    ));

    // Changing the version byte fails too.
    let mut t = raw.clone();
    t[0] = 2;
    f.storage.put("logical/a", &t).await.unwrap();
    assert!(matches!(
        f.barrier.get("logical/a").await,
        Err(CryptoError::DecryptionFailed)
    ));

    f.storage.put("logical/a", &raw).await.unwrap();
    assert_eq!(
        f.barrier.get("logical/a").await.unwrap().unwrap().expose(),
        b"v"
    );
}

#[tokio::test]
async fn sealed_barrier_refuses_everything() {
    let f = Fixture::new();
    assert!(f.barrier.is_sealed());
    assert!(f.barrier.key_status().is_none());
    assert!(matches!(
        f.barrier.get("logical/a").await,
        Err(CryptoError::Sealed)
    ));
    assert!(matches!(
        f.barrier.put("logical/a", b"x").await,
        Err(CryptoError::Sealed)
    ));
    assert!(matches!(
        f.barrier.delete("logical/a").await,
        Err(CryptoError::Sealed)
    ));
    assert!(matches!(
        f.barrier.list("logical/").await,
        Err(CryptoError::Sealed)
    ));
    assert!(matches!(
        f.barrier
            .write_batch(vec![BarrierOp::Put("logical/a".into(), b"x".to_vec())])
            .await,
        Err(CryptoError::Sealed)
    ));
    assert!(matches!(f.barrier.rotate().await, Err(CryptoError::Sealed)));
    assert!(f.storage.list("logical/").await.unwrap().is_empty());
}

#[tokio::test]
async fn sealing_drops_access_and_unseal_restores_it() {
    let (f, key) = Fixture::unsealed().await;
    f.barrier.put("logical/a", b"v").await.unwrap();
    f.seal.seal();
    assert!(f.barrier.is_sealed());
    assert!(matches!(
        f.barrier.get("logical/a").await,
        Err(CryptoError::Sealed)
    ));
    assert!(matches!(
        f.barrier.put("logical/a", b"w").await,
        Err(CryptoError::Sealed)
    ));
    f.seal.unseal_with_key(&key).await.unwrap();
    assert_eq!(
        f.barrier.get("logical/a").await.unwrap().unwrap().expose(),
        b"v"
    );
}

#[tokio::test]
async fn rotation_keeps_old_entries_readable_and_uses_new_term() {
    let (f, _) = Fixture::unsealed().await;
    let b = &f.barrier;
    let s1 = b.key_status().unwrap();
    assert_eq!(s1.term, 1);

    b.put("logical/before", b"written under term 1")
        .await
        .unwrap();
    assert_eq!(b.key_status().unwrap().encryptions, 1);
    let s2 = b.rotate().await.unwrap();
    assert_eq!(s2.term, 2);
    assert_eq!(s2.encryptions, 0);
    assert!(s2.install_time >= s1.install_time);
    assert_eq!(b.key_status().unwrap(), s2);

    b.put("logical/after", b"written under term 2")
        .await
        .unwrap();
    assert_eq!(&f.raw("logical/before").await[..5], &[1, 0, 0, 0, 1]);
    assert_eq!(&f.raw("logical/after").await[..5], &[1, 0, 0, 0, 2]);
    assert_eq!(
        b.get("logical/before").await.unwrap().unwrap().expose(),
        b"written under term 1"
    );
    assert_eq!(
        b.get("logical/after").await.unwrap().unwrap().expose(),
        b"written under term 2"
    );

    // Rewriting an old entry moves it to the new term.
    b.put("logical/before", b"rewritten").await.unwrap();
    assert_eq!(&f.raw("logical/before").await[..5], &[1, 0, 0, 0, 2]);
    assert_eq!(b.key_status().unwrap().encryptions, 2);
}

#[tokio::test]
async fn keyring_persists_across_restart() {
    let (f, key) = Fixture::unsealed().await;
    f.barrier.put("logical/t1", b"one").await.unwrap();
    f.barrier.rotate().await.unwrap();
    f.barrier.put("logical/t2", b"two").await.unwrap();
    let s3 = f.barrier.rotate().await.unwrap();
    f.barrier.put("logical/t3", b"three").await.unwrap();

    // A new process over the same storage.
    let g = Fixture::over(Arc::clone(&f.storage));
    assert!(g.barrier.is_sealed());
    g.seal.unseal_with_key(&key).await.unwrap();
    let s = g.barrier.key_status().unwrap();
    assert_eq!(s.term, 3);
    assert_eq!(s.install_time, s3.install_time);
    for (p, v) in [
        ("logical/t1", "one"),
        ("logical/t2", "two"),
        ("logical/t3", "three"),
    ] {
        assert_eq!(
            g.barrier.get(p).await.unwrap().unwrap().expose(),
            v.as_bytes()
        );
    }
    g.barrier.put("logical/t3b", b"x").await.unwrap();
    assert_eq!(&g.raw("logical/t3b").await[..5], &[1, 0, 0, 0, 3]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_during_rotation_stay_readable() {
    let (f, key) = Fixture::unsealed().await;
    let mut writers = Vec::new();
    for w in 0..4 {
        let b = Arc::clone(&f.barrier);
        writers.push(tokio::spawn(async move {
            for i in 0..150 {
                let p = format!("logical/w{w}/{i:03}");
                b.put(&p, p.as_bytes()).await.unwrap();
                tokio::task::yield_now().await;
            }
        }));
    }
    let rotator = {
        let b = Arc::clone(&f.barrier);
        tokio::spawn(async move {
            for _ in 0..10 {
                b.rotate().await.unwrap();
                tokio::task::yield_now().await;
            }
        })
    };
    // Concurrent rotations serialise; none may create a duplicate term.
    let extra: Vec<_> = (0..3)
        .map(|_| {
            let b = Arc::clone(&f.barrier);
            tokio::spawn(async move { b.rotate().await.unwrap().term })
        })
        .collect();
    for w in writers {
        w.await.unwrap();
    }
    rotator.await.unwrap();
    let mut terms = Vec::new();
    for e in extra {
        terms.push(e.await.unwrap());
    }
    terms.sort_unstable();
    terms.dedup();
    assert_eq!(terms.len(), 3, "two rotations returned the same term");
    assert_eq!(f.barrier.key_status().unwrap().term, 14);

    // Readable in this process and after a restart (from the persisted keyring).
    let g = Fixture::over(Arc::clone(&f.storage));
    g.seal.unseal_with_key(&key).await.unwrap();
    for w in 0..4 {
        for i in 0..150 {
            let p = format!("logical/w{w}/{i:03}");
            assert_eq!(
                f.barrier.get(&p).await.unwrap().unwrap().expose(),
                p.as_bytes()
            );
            assert_eq!(
                g.barrier.get(&p).await.unwrap().unwrap().expose(),
                p.as_bytes()
            );
        }
    }
}

#[tokio::test]
async fn rotate_after_seal_is_refused() {
    let (f, _) = Fixture::unsealed().await;
    f.seal.seal();
    assert!(matches!(f.barrier.rotate().await, Err(CryptoError::Sealed)));
}

#[tokio::test]
async fn storage_never_contains_the_plaintext() {
    let (f, key) = Fixture::unsealed().await;
    let secrets: Vec<Vec<u8>> = vec![
        b"correct horse battery staple".to_vec(),
        b"-----BEGIN PRIVATE KEY-----MIIEvQIBADANBgkqhkiG9w0BAQEFAASC".to_vec(),
        vec![0x42; 4096],
    ];
    f.barrier.put("logical/s0", &secrets[0]).await.unwrap();
    f.barrier
        .write_batch(vec![
            BarrierOp::Put("logical/s1".into(), secrets[1].clone()),
            BarrierOp::Put("logical/s2".into(), secrets[2].clone()),
        ])
        .await
        .unwrap();
    f.barrier.rotate().await.unwrap();
    f.barrier
        .put("logical/s0-again", &secrets[0])
        .await
        .unwrap();

    let dump = f.dump().await;
    assert!(dump.len() >= 7);
    for (k, v) in &dump {
        for s in &secrets {
            // 16 consecutive plaintext bytes anywhere would be a leak.
            for window in s.windows(16).step_by(8) {
                assert!(!contains(v, window), "plaintext found in {k}");
            }
        }
        assert!(!contains(v, key.expose()), "unseal key found in {k}");
        assert!(!contains(v, hex::encode(key.expose()).as_bytes()));
    }
}

#[tokio::test]
async fn debug_output_is_redacted() {
    let key = SecretBytes::from_slice(&[0xA5; 32]);
    let f = Fixture::unsealed_with(&key).await;
    let dbg = format!("{:?} {:#?} {:?}", f.barrier, f.barrier, f.seal);
    assert!(dbg.contains("active_term"), "{dbg}");
    assert_redacted(&dbg, key.expose());
    assert!(!dbg.contains("165"), "{dbg}");

    let op = BarrierOp::Put("logical/x".into(), b"hunter2hunter2".to_vec());
    let dbg = format!("{op:?} {op:#?}");
    assert!(!dbg.contains("hunter2"), "{dbg}");
    assert_redacted(&dbg, b"hunter2hunter2");
    assert!(dbg.contains("14 bytes"), "{dbg}");

    let dbg = format!("{:?}", f.barrier.key_status().unwrap());
    assert!(dbg.contains("term: 1"), "{dbg}");
}

/// Storage that refuses writes to one key, to simulate a failed keyring write.
struct RefuseKey {
    inner: Arc<shroud_core::MemoryStorage>,
    refused: &'static str,
}

#[async_trait::async_trait]
impl Storage for RefuseKey {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, shroud_core::StorageError> {
        self.inner.get(key).await
    }
    async fn write_batch(
        &self,
        ops: Vec<shroud_core::Op>,
    ) -> Result<(), shroud_core::StorageError> {
        for op in &ops {
            let (shroud_core::Op::Put(k, _) | shroud_core::Op::Delete(k)) = op;
            if k == self.refused {
                return Err(shroud_core::StorageError::Closed);
            }
        }
        self.inner.write_batch(ops).await
    }
    async fn list(&self, prefix: &str) -> Result<Vec<String>, shroud_core::StorageError> {
        self.inner.list(prefix).await
    }
    async fn compare_and_swap(
        &self,
        key: &str,
        expected: Option<&[u8]>,
        new: Option<&[u8]>,
    ) -> Result<bool, shroud_core::StorageError> {
        self.inner.compare_and_swap(key, expected, new).await
    }
    async fn sequence(&self) -> Result<u64, shroud_core::StorageError> {
        self.inner.sequence().await
    }
    fn kind(&self) -> &'static str {
        "refuse-key"
    }
}

#[tokio::test]
async fn failed_keyring_write_leaves_old_term_active() {
    let (f, key) = Fixture::unsealed().await;
    f.barrier.put("logical/a", b"a").await.unwrap();
    // The same storage, seen through a wrapper that cannot write the keyring.
    let wrapped: Arc<dyn Storage> = Arc::new(RefuseKey {
        inner: Arc::clone(&f.storage),
        refused: KEYRING_PATH,
    });
    let barrier = shroud_crypto::Barrier::new(wrapped);
    let seal = shroud_crypto::SealManager::new(Arc::clone(&barrier));
    seal.unseal_with_key(&key).await.unwrap();

    let err = barrier.rotate().await.unwrap_err();
    assert!(matches!(err, CryptoError::Storage(_)), "{err:?}");
    // The new term was never installed: writes still use term 1, which the stored keyring has.
    assert_eq!(barrier.key_status().unwrap().term, 1);
    barrier.put("logical/b", b"b").await.unwrap();
    assert_eq!(&f.raw("logical/b").await[..5], &[1, 0, 0, 0, 1]);

    let g = Fixture::over(Arc::clone(&f.storage));
    g.seal.unseal_with_key(&key).await.unwrap();
    assert_eq!(
        g.barrier.get("logical/b").await.unwrap().unwrap().expose(),
        b"b"
    );
}
