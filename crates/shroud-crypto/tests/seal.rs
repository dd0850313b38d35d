//! Init, unseal and seal: Shamir and static seals.

mod common;

use std::sync::Arc;

use common::{assert_redacted, Fixture};
use shroud_core::{SecretBytes, Storage};
use shroud_crypto::{CryptoError, SealStatus, ROOT_KEY_PATH, SEAL_CONFIG_PATH, SHARE_LEN};

/// Initialises 3-of-5, unseals with the first three shares and writes one entry.
async fn shamir_3_of_5() -> (Fixture, Vec<SecretBytes>) {
    let f = Fixture::new();
    let init = f.seal.initialize(5, 3).await.unwrap();
    assert_eq!(init.shares.len(), 5);
    assert!(init.shares.iter().all(|s| s.len() == SHARE_LEN));
    (f, init.shares)
}

#[tokio::test]
async fn status_before_init() {
    let f = Fixture::new();
    assert!(!f.seal.is_initialized().await.unwrap());
    assert_eq!(
        f.seal.status().await.unwrap(),
        SealStatus {
            initialized: false,
            sealed: true,
            seal_type: "shamir".into(),
            t: 0,
            n: 0,
            progress: 0,
            nonce: String::new(),
        }
    );
    assert!(matches!(
        f.seal.submit_share(&[1u8; SHARE_LEN]).await,
        Err(CryptoError::NotInitialized)
    ));
    let key = SecretBytes::from_slice(&[0u8; 32]);
    assert!(matches!(
        f.seal.unseal_with_key(&key).await,
        Err(CryptoError::NotInitialized)
    ));
}

#[tokio::test]
async fn init_leaves_barrier_sealed_and_stores_config() {
    let (f, _) = shamir_3_of_5().await;
    assert!(f.seal.is_initialized().await.unwrap());
    assert!(f.barrier.is_sealed());
    let st = f.seal.status().await.unwrap();
    assert!(st.initialized && st.sealed);
    assert_eq!(
        (st.seal_type.as_str(), st.t, st.n, st.progress),
        ("shamir", 3, 5, 0)
    );
    assert_eq!(st.nonce, "");
    assert_eq!(
        f.raw(SEAL_CONFIG_PATH).await,
        br#"{"type":"shamir","secret_shares":5,"secret_threshold":3}"#
    );
    assert_eq!(
        f.storage.list("core/").await.unwrap(),
        vec!["core/keyring", "core/root-key", "core/seal-config"]
    );
}

#[tokio::test]
async fn every_3_of_5_subset_unseals() {
    let (f, shares) = shamir_3_of_5().await;
    let mut written = false;
    let mut subsets = 0;
    for a in 0..5 {
        for b in a + 1..5 {
            for c in b + 1..5 {
                let st = f.seal.submit_share(shares[a].expose()).await.unwrap();
                assert_eq!((st.sealed, st.progress), (true, 1));
                assert_eq!(st.nonce.len(), 36);
                let nonce = st.nonce.clone();
                let st = f.seal.submit_share(shares[b].expose()).await.unwrap();
                assert_eq!((st.sealed, st.progress), (true, 2));
                assert_eq!(st.nonce, nonce, "the attempt keeps its nonce");
                let st = f.seal.submit_share(shares[c].expose()).await.unwrap();
                assert!(!st.sealed, "subset {a},{b},{c} did not unseal");
                assert_eq!((st.progress, st.nonce.as_str()), (0, ""));
                assert!(!f.barrier.is_sealed());
                if !written {
                    f.barrier.put("logical/x", b"data").await.unwrap();
                    written = true;
                }
                assert_eq!(
                    f.barrier.get("logical/x").await.unwrap().unwrap().expose(),
                    b"data"
                );
                f.seal.seal();
                assert!(f.barrier.is_sealed());
                subsets += 1;
            }
        }
    }
    assert_eq!(subsets, 10);
}

#[tokio::test]
async fn two_shares_do_not_unseal() {
    let (f, shares) = shamir_3_of_5().await;
    f.seal.submit_share(shares[0].expose()).await.unwrap();
    let st = f.seal.submit_share(shares[1].expose()).await.unwrap();
    assert!(st.sealed);
    assert_eq!(st.progress, 2);
    assert!(f.barrier.is_sealed());
    assert!(matches!(
        f.barrier.get("logical/x").await,
        Err(CryptoError::Sealed)
    ));
}

#[tokio::test]
async fn share_from_other_init_fails_and_resets_progress() {
    let (f, shares) = shamir_3_of_5().await;
    let (_, foreign) = shamir_3_of_5().await;
    f.seal.submit_share(shares[0].expose()).await.unwrap();
    f.seal.submit_share(shares[1].expose()).await.unwrap();
    // A different x coordinate than the two already in, so it is only caught by the combine.
    let err = f.seal.submit_share(foreign[2].expose()).await.unwrap_err();
    assert!(matches!(err, CryptoError::InvalidShare), "{err:?}");
    assert!(err.is_client_error());
    let st = f.seal.status().await.unwrap();
    assert_eq!((st.sealed, st.progress, st.nonce.as_str()), (true, 0, ""));

    // A fresh attempt with good shares works.
    for s in &shares[2..5] {
        f.seal.submit_share(s.expose()).await.unwrap();
    }
    assert!(!f.barrier.is_sealed());
}

#[tokio::test]
async fn conflicting_share_with_same_index_fails_and_resets_progress() {
    let (f, shares) = shamir_3_of_5().await;
    let (_, foreign) = shamir_3_of_5().await;
    f.seal.submit_share(shares[0].expose()).await.unwrap();
    // Same x coordinate (share #1 of both inits), different y.
    let err = f.seal.submit_share(foreign[0].expose()).await.unwrap_err();
    assert!(matches!(err, CryptoError::InvalidShare));
    assert_eq!(f.seal.status().await.unwrap().progress, 0);
}

#[tokio::test]
async fn duplicate_share_not_counted() {
    let (f, shares) = shamir_3_of_5().await;
    let st1 = f.seal.submit_share(shares[3].expose()).await.unwrap();
    let st2 = f.seal.submit_share(shares[3].expose()).await.unwrap();
    assert_eq!(st1, st2);
    assert_eq!(st2.progress, 1);
    let st3 = f.seal.submit_share(shares[3].expose()).await.unwrap();
    assert_eq!(st3.progress, 1);
    assert!(st3.sealed);
    f.seal.submit_share(shares[1].expose()).await.unwrap();
    let st = f.seal.submit_share(shares[4].expose()).await.unwrap();
    assert!(!st.sealed);
}

#[tokio::test]
async fn malformed_share_is_refused_without_losing_progress() {
    let (f, shares) = shamir_3_of_5().await;
    f.seal.submit_share(shares[0].expose()).await.unwrap();
    let mut zero_x = shares[1].expose().to_vec();
    zero_x[0] = 0;
    for bad in [
        &[][..],
        &[1u8][..],
        &shares[1].expose()[..SHARE_LEN - 1],
        &[7u8; SHARE_LEN + 1][..],
        &[7u8; 100_000][..],
        &zero_x[..],
    ] {
        assert!(matches!(
            f.seal.submit_share(bad).await,
            Err(CryptoError::InvalidShare)
        ));
    }
    assert_eq!(f.seal.status().await.unwrap().progress, 1);
}

#[tokio::test]
async fn reset_progress_forgets_shares() {
    let (f, shares) = shamir_3_of_5().await;
    f.seal.submit_share(shares[0].expose()).await.unwrap();
    f.seal.submit_share(shares[1].expose()).await.unwrap();
    f.seal.reset_progress();
    let st = f.seal.status().await.unwrap();
    assert_eq!((st.progress, st.nonce.as_str()), (0, ""));
    // Needs three fresh shares now.
    f.seal.submit_share(shares[2].expose()).await.unwrap();
    assert!(
        f.seal
            .submit_share(shares[3].expose())
            .await
            .unwrap()
            .sealed
    );
    assert!(
        !f.seal
            .submit_share(shares[4].expose())
            .await
            .unwrap()
            .sealed
    );
}

#[tokio::test]
async fn seal_clears_progress() {
    let (f, shares) = shamir_3_of_5().await;
    f.seal.submit_share(shares[0].expose()).await.unwrap();
    f.seal.seal();
    assert_eq!(f.seal.status().await.unwrap().progress, 0);
}

#[tokio::test]
async fn submit_while_unsealed_returns_status() {
    let (f, shares) = shamir_3_of_5().await;
    for s in &shares[..3] {
        f.seal.submit_share(s.expose()).await.unwrap();
    }
    let st = f.seal.submit_share(shares[3].expose()).await.unwrap();
    assert!(!st.sealed);
    assert_eq!(st.progress, 0);
}

#[tokio::test]
async fn one_of_one_unseals_with_one_share() {
    let f = Fixture::new();
    let init = f.seal.initialize(1, 1).await.unwrap();
    assert_eq!(init.shares.len(), 1);
    let st = f.seal.submit_share(init.shares[0].expose()).await.unwrap();
    assert!(!st.sealed);
    assert_eq!((st.t, st.n), (1, 1));
}

#[tokio::test]
async fn unseal_with_shares_at_once() {
    let (f, shares) = shamir_3_of_5().await;
    // Duplicates are skipped; two distinct shares are not enough.
    let too_few = vec![shares[0].clone(), shares[0].clone(), shares[1].clone()];
    assert!(matches!(
        f.seal.unseal_with_shares(&too_few).await,
        Err(CryptoError::InvalidShare)
    ));
    f.seal.unseal_with_shares(&shares[1..4]).await.unwrap();
    assert!(!f.barrier.is_sealed());
}

#[tokio::test]
async fn invalid_shamir_configs_are_refused() {
    let f = Fixture::new();
    for (n, t) in [(0, 0), (5, 0), (0, 1), (3, 1), (3, 4), (1, 2)] {
        let err = f.seal.initialize(n, t).await.unwrap_err();
        assert!(
            matches!(err, CryptoError::InvalidConfig(_)),
            "{n}/{t}: {err:?}"
        );
        assert!(err.to_string().starts_with("invalid seal configuration: "));
    }
    assert!(!f.seal.is_initialized().await.unwrap());
    assert!(f.storage.list("").await.unwrap().is_empty());
}

#[tokio::test]
async fn init_twice_is_already_initialized() {
    let (f, _) = shamir_3_of_5().await;
    let before = f.dump().await;
    assert!(matches!(
        f.seal.initialize(5, 3).await,
        Err(CryptoError::AlreadyInitialized)
    ));
    let key = shroud_crypto::generate_unseal_key().unwrap();
    assert!(matches!(
        f.seal.initialize_static(&key).await,
        Err(CryptoError::AlreadyInitialized)
    ));
    assert_eq!(f.dump().await, before, "a refused init must not write");

    // Also after a restart, and for a static install.
    let (g, _) = Fixture::unsealed().await;
    let h = Fixture::over(Arc::clone(&g.storage));
    assert!(matches!(
        h.seal.initialize(1, 1).await,
        Err(CryptoError::AlreadyInitialized)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_inits_only_one_wins() {
    let f = Arc::new(Fixture::new());
    let tasks: Vec<_> = (0..4)
        .map(|_| {
            let f = Arc::clone(&f);
            tokio::spawn(async move { f.seal.initialize(3, 2).await.is_ok() })
        })
        .collect();
    let mut wins = 0;
    for t in tasks {
        wins += usize::from(t.await.unwrap());
    }
    assert_eq!(wins, 1);
}

#[tokio::test]
async fn static_seal_init_and_unseal() {
    let key = shroud_crypto::generate_unseal_key().unwrap();
    let f = Fixture::new();
    f.seal.initialize_static(&key).await.unwrap();
    let st = f.seal.status().await.unwrap();
    assert_eq!(
        (st.seal_type.as_str(), st.t, st.n, st.sealed),
        ("static", 1, 1, true)
    );
    f.seal.unseal_with_key(&key).await.unwrap();
    assert!(!f.barrier.is_sealed());
    // Idempotent while unsealed.
    f.seal.unseal_with_key(&key).await.unwrap();
    f.barrier.put("logical/a", b"v").await.unwrap();

    // The key itself is accepted through sys/unseal too.
    f.seal.seal();
    let st = f.seal.submit_share(key.expose()).await.unwrap();
    assert!(!st.sealed);
    assert_eq!(
        f.barrier.get("logical/a").await.unwrap().unwrap().expose(),
        b"v"
    );
}

#[tokio::test]
async fn static_seal_wrong_key_fails() {
    let (f, key) = Fixture::unsealed().await;
    f.seal.seal();
    let mut wrong = key.expose().to_vec();
    wrong[31] ^= 1;
    let err = f
        .seal
        .unseal_with_key(&SecretBytes::new(wrong.clone()))
        .await
        .unwrap_err();
    assert!(matches!(err, CryptoError::InvalidKey), "{err:?}");
    assert!(err.is_client_error());
    assert!(f.barrier.is_sealed());
    assert!(matches!(
        f.seal.submit_share(&wrong).await,
        Err(CryptoError::InvalidKey)
    ));
    // Wrong lengths.
    for n in [0, 16, 31, 33, 64] {
        assert!(matches!(
            f.seal.unseal_with_key(&SecretBytes::new(vec![1; n])).await,
            Err(CryptoError::InvalidKey)
        ));
    }
    let g = Fixture::new();
    assert!(matches!(
        g.seal
            .initialize_static(&SecretBytes::new(vec![1; 16]))
            .await,
        Err(CryptoError::InvalidKey)
    ));
    assert!(!g.seal.is_initialized().await.unwrap());
}

#[tokio::test]
async fn shamir_unseal_key_works_with_unseal_with_key() {
    // A 1-of-1 share is [x = 1] || unseal key.
    let f = Fixture::new();
    let init = f.seal.initialize(1, 1).await.unwrap();
    let key = SecretBytes::from_slice(&init.shares[0].expose()[1..]);
    f.seal.unseal_with_key(&key).await.unwrap();
    assert!(!f.barrier.is_sealed());
}

#[tokio::test]
async fn tampered_root_key_refuses_unseal() {
    let (f, key) = Fixture::unsealed().await;
    f.seal.seal();
    let mut raw = f.raw(ROOT_KEY_PATH).await;
    let last = raw.len() - 1;
    raw[last] ^= 0x80;
    f.storage.put(ROOT_KEY_PATH, &raw).await.unwrap();
    assert!(matches!(
        f.seal.unseal_with_key(&key).await,
        Err(CryptoError::InvalidKey)
    ));
    assert!(f.barrier.is_sealed());
}

#[tokio::test]
async fn tampered_keyring_refuses_unseal() {
    let (f, key) = Fixture::unsealed().await;
    f.seal.seal();
    let mut raw = f.raw(shroud_crypto::KEYRING_PATH).await;
    raw[20] ^= 0x01;
    f.storage
        .put(shroud_crypto::KEYRING_PATH, &raw)
        .await
        .unwrap();
    assert!(matches!(
        f.seal.unseal_with_key(&key).await,
        Err(CryptoError::DecryptionFailed)
    ));
    assert!(f.barrier.is_sealed());
}

#[tokio::test]
async fn swapped_bootstrap_entries_refuse_unseal() {
    // The keyring entry moved to the root-key path must not decrypt (path is in the AAD).
    let (f, key) = Fixture::unsealed().await;
    f.seal.seal();
    let keyring = f.raw(shroud_crypto::KEYRING_PATH).await;
    f.storage.put(ROOT_KEY_PATH, &keyring).await.unwrap();
    assert!(f.seal.unseal_with_key(&key).await.is_err());
    assert!(f.barrier.is_sealed());
}

#[tokio::test]
async fn corrupt_seal_config_is_reported() {
    let (f, _) = shamir_3_of_5().await;
    for bad in [
        &b"not json"[..],
        br#"{"type":"shamir","secret_shares":3,"secret_threshold":5}"#,
        br#"{"type":"static","secret_shares":3,"secret_threshold":2}"#,
        br#"{"type":"kms","secret_shares":1,"secret_threshold":1}"#,
        &[b' '; 10_000][..],
    ] {
        f.storage.put(SEAL_CONFIG_PATH, bad).await.unwrap();
        assert!(matches!(
            f.seal.status().await,
            Err(CryptoError::CorruptState(_))
        ));
    }
}

#[tokio::test]
async fn debug_of_seal_types_is_redacted() {
    let (f, shares) = shamir_3_of_5().await;
    f.seal.submit_share(shares[0].expose()).await.unwrap();
    f.seal.submit_share(shares[1].expose()).await.unwrap();
    let init = f.seal.initialize(5, 3).await; // AlreadyInitialized; exercise Debug of the error
    let dbg = format!("{:?} {:#?} {:?}", f.seal, f.seal, init);
    for s in &shares {
        assert_redacted(&dbg, s.expose());
    }
    assert!(dbg.contains("progress: 2"), "{dbg}");

    let g = Fixture::new();
    let init = g.seal.initialize(5, 3).await.unwrap();
    let dbg = format!("{init:?} {init:#?}");
    assert!(dbg.contains("REDACTED"), "{dbg}");
    for s in &init.shares {
        assert_redacted(&dbg, s.expose());
        assert_redacted(&dbg, &s.expose()[1..]);
    }
}
