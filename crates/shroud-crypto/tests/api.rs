//! Compile-time checks of the public API's thread-safety: the server shares these types
//! across tasks and spawns their futures.

use std::sync::Arc;

use shroud_core::{MemoryStorage, SecretBytes};
use shroud_crypto::{Barrier, BarrierOp, CryptoError, SealManager};

fn assert_send_sync<T: Send + Sync>() {}
fn assert_send<T: Send>(_: &T) {}

#[test]
fn types_are_send_and_sync() {
    assert_send_sync::<Barrier>();
    assert_send_sync::<SealManager>();
    assert_send_sync::<CryptoError>();
    assert_send_sync::<BarrierOp>();
}

#[test]
fn futures_are_send() {
    let barrier = Barrier::new(Arc::new(MemoryStorage::new()));
    let seal = SealManager::new(Arc::clone(&barrier));
    let key = SecretBytes::new(vec![0; 32]);
    assert_send(&barrier.get("a"));
    assert_send(&barrier.put("a", b"x"));
    assert_send(&barrier.delete("a"));
    assert_send(&barrier.list("a"));
    assert_send(&barrier.write_batch(vec![]));
    assert_send(&barrier.rotate());
    assert_send(&seal.status());
    assert_send(&seal.is_initialized());
    assert_send(&seal.initialize(1, 1));
    assert_send(&seal.initialize_static(&key));
    assert_send(&seal.submit_share(b"x"));
    assert_send(&seal.unseal_with_key(&key));
    assert_send(&seal.unseal_with_shares(&[]));
}
