//! Barrier throughput against its baseline, the raw storage backend, measured in the same run.
//!
//! `cargo bench -p shroud-crypto`. Prints operations per second and the ratio to the baseline;
//! asserts nothing (timings are machine-dependent).

use std::sync::Arc;
use std::time::{Duration, Instant};

use shroud_core::{MemoryStorage, Storage};
use shroud_crypto::{generate_unseal_key, Barrier, SealManager};

const ENTRIES: usize = 1_000;
const VALUE_LEN: usize = 256;
const ROUNDS: usize = 50;

fn rate(n: usize, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64()
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let storage = Arc::new(MemoryStorage::new());
        let dyn_storage: Arc<dyn Storage> = storage.clone();
        let barrier = Barrier::new(dyn_storage);
        let seal = SealManager::new(Arc::clone(&barrier));
        let key = generate_unseal_key().expect("rng");
        seal.initialize_static(&key).await.expect("init");
        seal.unseal_with_key(&key).await.expect("unseal");

        let value = vec![0x5Au8; VALUE_LEN];
        let paths: Vec<String> = (0..ENTRIES).map(|i| format!("logical/e{i:05}")).collect();
        for p in &paths {
            barrier.put(p, &value).await.expect("put");
        }
        let raw_paths: Vec<String> = (0..ENTRIES).map(|i| format!("raw/e{i:05}")).collect();
        for p in &raw_paths {
            storage.put(p, &value).await.expect("raw put");
        }

        let n = ENTRIES * ROUNDS;
        let t = Instant::now();
        for _ in 0..ROUNDS {
            for p in &raw_paths {
                std::hint::black_box(storage.get(p).await.expect("raw get"));
            }
        }
        let base_get = rate(n, t.elapsed());

        let t = Instant::now();
        for _ in 0..ROUNDS {
            for p in &paths {
                std::hint::black_box(barrier.get(p).await.expect("get"));
            }
        }
        let get = rate(n, t.elapsed());

        let t = Instant::now();
        for _ in 0..ROUNDS {
            for p in &raw_paths {
                storage.put(p, &value).await.expect("raw put");
            }
        }
        let base_put = rate(n, t.elapsed());

        let t = Instant::now();
        for _ in 0..ROUNDS {
            for p in &paths {
                barrier.put(p, &value).await.expect("put");
            }
        }
        let put = rate(n, t.elapsed());

        println!("{VALUE_LEN}-byte values, {n} operations each, one thread");
        println!(
            "get: barrier {get:>12.0}/s   memory storage {base_get:>12.0}/s   ratio {:.2}",
            get / base_get
        );
        println!(
            "put: barrier {put:>12.0}/s   memory storage {base_put:>12.0}/s   ratio {:.2}",
            put / base_put
        );
    });
}
