//! A coherent write-through read cache in front of any [`Storage`].

use async_trait::async_trait;
use shroud_core::storage::validate_key;
use shroud_core::{Op, Storage, StorageError};
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};

/// Bytes charged per cached entry on top of its key and value: the slot, the index entry and
/// the shared key's header. Charging it keeps the bound honest for many small or absent
/// entries (an absent entry has no value bytes but still costs memory).
const ENTRY_OVERHEAD: usize = 128;

/// Caches `get` results (including "absent") of an inner [`Storage`] in memory, bounded by
/// `max_bytes`.
///
/// **Why a write-through cache is valid here:** the server is the only writer of its storage
/// (one node; [`crate::SqliteStorage`] even locks its file against a second instance), so every
/// change passes through this value and it can keep itself coherent. A backend shared by
/// several active servers must not be wrapped in this cache.
///
/// Coherence rules:
/// - Writes go to the inner storage first; the cache changes only after the inner write
///   finished. A write updates an entry that is already cached only if no other write to the
///   same key overlapped it (then its value is certainly the latest); otherwise, and after any
///   error or failed CAS, the entry is dropped and the next `get` reads through.
/// - A `get` that misses remembers the cache's write generation before reading the inner
///   storage and installs what it read only if no write finished meanwhile, so a read that
///   raced a write can never install the value the write replaced.
/// - Writes run to completion in a spawned task even if the caller's future is dropped, so
///   the bookkeeping above always matches what the inner storage did. The cache must
///   therefore be used from within a Tokio runtime.
///
/// Entries larger than `max_bytes / 16` (key, value and a fixed per-entry overhead) are not
/// cached. When full, entries are evicted with the CLOCK algorithm (an approximation of
/// least-recently-used that needs no list updates on a hit). Writes update entries already in
/// the cache but do not add new ones, so write-once data does not push out hot entries.
///
/// Values are backend bytes (barrier ciphertext), never plaintext secrets.
pub struct CachedStorage {
    inner: Arc<dyn Storage>,
    max_bytes: usize,
    max_entry_bytes: usize,
    state: Arc<Mutex<CacheState>>,
}

impl std::fmt::Debug for CachedStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CachedStorage")
            .field("inner", &self.inner.kind())
            .field("max_bytes", &self.max_bytes)
            .finish_non_exhaustive()
    }
}

impl CachedStorage {
    /// Wraps `inner` with a cache holding at most `max_bytes` of entries.
    pub fn new(inner: Arc<dyn Storage>, max_bytes: usize) -> Self {
        CachedStorage {
            inner,
            max_bytes,
            max_entry_bytes: max_bytes / 16,
            state: Arc::new(Mutex::new(CacheState::default())),
        }
    }

    /// How many entries (present or absent keys) are cached.
    pub fn cached_entries(&self) -> usize {
        lock(&self.state).slots.len()
    }

    /// The bytes charged for the cached entries; never more than `max_bytes`.
    pub fn cached_bytes(&self) -> usize {
        lock(&self.state).bytes
    }

    /// Drops every cached entry (e.g. when the barrier is sealed). Reads in flight will not
    /// install what they read.
    pub fn clear(&self) {
        lock(&self.state).clear_entries();
    }

    fn begin_write(&self, finals: Vec<(&str, Option<&[u8]>)>) -> WriteGuard {
        WriteGuard::begin(&self.state, finals, self.max_entry_bytes, self.max_bytes)
    }
}

/// Runs a registered write to completion in its own task and updates the cache from its
/// outcome (`applied` says whether the result proves the write took effect). The task keeps
/// running if the caller's future is dropped, so the cache always learns how the write ended.
async fn run_write<T, W>(
    guard: WriteGuard,
    write: W,
    applied: fn(&Result<T, StorageError>) -> bool,
) -> Result<T, StorageError>
where
    T: Send + 'static,
    W: Future<Output = Result<T, StorageError>> + Send + 'static,
{
    let task = tokio::spawn(async move {
        let result = write.await;
        guard.finish(applied(&result));
        result
    });
    match task.await {
        Ok(result) => result,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        // Cancelled: the runtime is shutting down.
        Err(_) => Err(StorageError::Closed),
    }
}

#[async_trait]
impl Storage for CachedStorage {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StorageError> {
        validate_key(key)?;
        let generation = {
            let mut state = lock(&self.state);
            if let Some(hit) = state.lookup(key) {
                return Ok(hit);
            }
            state.generation
        };
        let value = self.inner.get(key).await?;
        let cost = entry_cost(key, value.as_deref());
        if cost <= self.max_entry_bytes {
            let mut state = lock(&self.state);
            // A write that finished since the miss may have replaced what was just read.
            if state.generation == generation {
                state.insert(key, value.clone(), cost, self.max_bytes);
            }
        }
        Ok(value)
    }

    async fn write_batch(&self, ops: Vec<Op>) -> Result<(), StorageError> {
        for op in &ops {
            match op {
                Op::Put(k, _) | Op::Delete(k) => validate_key(k)?,
            }
        }
        if ops.is_empty() {
            return self.inner.write_batch(ops).await;
        }
        // Each key's last op decides its state after the batch.
        let mut finals: Vec<(&str, Option<&[u8]>)> = Vec::with_capacity(ops.len());
        let mut position: HashMap<&str, usize> = HashMap::with_capacity(ops.len());
        for op in &ops {
            let (key, value) = match op {
                Op::Put(k, v) => (k.as_str(), Some(v.as_slice())),
                Op::Delete(k) => (k.as_str(), None),
            };
            match position.get(key) {
                Some(&i) => finals[i].1 = value,
                None => {
                    position.insert(key, finals.len());
                    finals.push((key, value));
                }
            }
        }
        // `finals` borrows `ops`; registering copies what it needs before `ops` moves.
        let guard = self.begin_write(finals);
        let inner = Arc::clone(&self.inner);
        run_write(
            guard,
            async move { inner.write_batch(ops).await },
            Result::is_ok,
        )
        .await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, StorageError> {
        self.inner.list(prefix).await
    }

    async fn compare_and_swap(
        &self,
        key: &str,
        expected: Option<&[u8]>,
        new: Option<&[u8]>,
    ) -> Result<bool, StorageError> {
        validate_key(key)?;
        let guard = self.begin_write(vec![(key, new)]);
        let inner = Arc::clone(&self.inner);
        let (key, expected, new) = (
            key.to_owned(),
            expected.map(<[u8]>::to_vec),
            new.map(<[u8]>::to_vec),
        );
        // A failed CAS changed nothing, but it suggests the caller's view was stale: drop the
        // entry rather than trust it.
        let cas = async move {
            inner
                .compare_and_swap(&key, expected.as_deref(), new.as_deref())
                .await
        };
        run_write(guard, cas, |r| matches!(r, Ok(true))).await
    }

    async fn sequence(&self) -> Result<u64, StorageError> {
        self.inner.sequence().await
    }

    fn kind(&self) -> &'static str {
        self.inner.kind()
    }
}

fn entry_cost(key: &str, value: Option<&[u8]>) -> usize {
    key.len()
        .saturating_add(value.map_or(0, <[u8]>::len))
        .saturating_add(ENTRY_OVERHEAD)
}

/// Locks the cache state. A poisoned lock means a panic in the middle of a cache update, so
/// the entries may be inconsistent: drop them all (always coherent) and go on.
fn lock(state: &Mutex<CacheState>) -> MutexGuard<'_, CacheState> {
    match state.lock() {
        Ok(guard) => guard,
        Err(poisoned) => {
            let mut guard = poisoned.into_inner();
            guard.clear_entries();
            state.clear_poison();
            guard
        }
    }
}

#[derive(Default)]
struct CacheState {
    index: HashMap<Arc<str>, usize>,
    /// Dense; the CLOCK hand walks over it.
    slots: Vec<Slot>,
    hand: usize,
    bytes: usize,
    /// Bumped whenever a write finishes (or the cache is cleared); see `get`.
    generation: u64,
    /// Keys with writes in flight.
    writing: HashMap<String, Writing>,
}

struct Slot {
    key: Arc<str>,
    /// `None`: the key is known to be absent.
    value: Option<Vec<u8>>,
    cost: usize,
    /// CLOCK's reference bit: set on a hit, cleared as the hand passes.
    referenced: bool,
}

struct Writing {
    in_flight: u32,
    /// Another write to the key overlapped one of the writes in flight. The inner storage may
    /// have applied them in a different order than they finish here, so none of them may
    /// install its value.
    contended: bool,
}

impl CacheState {
    fn lookup(&mut self, key: &str) -> Option<Option<Vec<u8>>> {
        let idx = *self.index.get(key)?;
        let slot = self.slots.get_mut(idx)?;
        slot.referenced = true;
        Some(slot.value.clone())
    }

    /// Adds an entry unless the key is already cached (then it is as fresh as this one).
    fn insert(&mut self, key: &str, value: Option<Vec<u8>>, cost: usize, max_bytes: usize) {
        if self.index.contains_key(key) {
            return;
        }
        self.evict(cost, max_bytes);
        if self.bytes.saturating_add(cost) > max_bytes {
            return;
        }
        let key: Arc<str> = Arc::from(key);
        self.index.insert(Arc::clone(&key), self.slots.len());
        self.slots.push(Slot {
            key,
            value,
            cost,
            referenced: false,
        });
        self.bytes += cost;
    }

    /// Replaces the value of an entry that is cached; does nothing otherwise.
    fn update(&mut self, key: &str, value: Option<Vec<u8>>, cost: usize, max_bytes: usize) {
        let Some(&idx) = self.index.get(key) else {
            return;
        };
        let Some(slot) = self.slots.get_mut(idx) else {
            return;
        };
        self.bytes = self.bytes.saturating_sub(slot.cost).saturating_add(cost);
        slot.value = value;
        slot.cost = cost;
        self.evict(0, max_bytes);
    }

    fn remove(&mut self, key: &str) {
        if let Some(&idx) = self.index.get(key) {
            self.remove_at(idx);
        }
    }

    fn remove_at(&mut self, idx: usize) {
        if idx >= self.slots.len() {
            return;
        }
        let slot = self.slots.swap_remove(idx);
        self.bytes = self.bytes.saturating_sub(slot.cost);
        self.index.remove(&*slot.key);
        if let Some(moved) = self.slots.get(idx) {
            if let Some(i) = self.index.get_mut(&*moved.key) {
                *i = idx;
            }
        }
    }

    /// CLOCK: evicts entries until `incoming` more bytes fit. An entry hit since the hand last
    /// passed gets a second chance. Ends within two sweeps, since the first clears every bit.
    fn evict(&mut self, incoming: usize, max_bytes: usize) {
        while self.bytes.saturating_add(incoming) > max_bytes && !self.slots.is_empty() {
            if self.hand >= self.slots.len() {
                self.hand = 0;
            }
            // In bounds: `slots` is not empty and `hand` was just wrapped below its length.
            let slot = &mut self.slots[self.hand];
            if slot.referenced {
                slot.referenced = false;
                self.hand += 1;
            } else {
                self.remove_at(self.hand);
            }
        }
    }

    fn clear_entries(&mut self) {
        self.index.clear();
        self.slots.clear();
        self.hand = 0;
        self.bytes = 0;
        self.generation = self.generation.wrapping_add(1);
    }
}

/// What a finished write does to one key's entry.
enum Final {
    /// The write leaves this value; install it if the key is cached and the write was alone.
    Value(Vec<u8>, usize),
    /// The write leaves the key absent.
    Absent(usize),
    /// Not worth copying (too large, or the key was not cached when the write began): drop
    /// the entry if there is one.
    Drop,
}

/// Tracks one write from before it reaches the inner storage until it finished; if dropped
/// without [`WriteGuard::finish`] (a panic), the keys are dropped from the cache.
struct WriteGuard {
    state: Arc<Mutex<CacheState>>,
    keys: Vec<(String, Final)>,
    max_bytes: usize,
    finished: bool,
}

impl WriteGuard {
    fn begin(
        state: &Arc<Mutex<CacheState>>,
        finals: Vec<(&str, Option<&[u8]>)>,
        max_entry_bytes: usize,
        max_bytes: usize,
    ) -> Self {
        let mut st = lock(state);
        let keys = finals
            .into_iter()
            .map(|(key, value)| {
                st.writing
                    .entry(key.to_owned())
                    .and_modify(|w| {
                        w.in_flight += 1;
                        w.contended = true;
                    })
                    .or_insert(Writing {
                        in_flight: 1,
                        contended: false,
                    });
                let cost = entry_cost(key, value);
                // Copy a value only for a key that is cached now: one that is not is only
                // ever dropped (if a racing `get` installs it meanwhile).
                let fin = if cost > max_entry_bytes || !st.index.contains_key(key) {
                    Final::Drop
                } else {
                    match value {
                        Some(v) => Final::Value(v.to_vec(), cost),
                        None => Final::Absent(cost),
                    }
                };
                (key.to_owned(), fin)
            })
            .collect();
        drop(st);
        WriteGuard {
            state: Arc::clone(state),
            keys,
            max_bytes,
            finished: false,
        }
    }

    /// `applied`: the inner storage certainly applied the write (it returned success).
    fn finish(mut self, applied: bool) {
        self.finished = true;
        self.end(applied);
    }

    fn end(&mut self, applied: bool) {
        let mut st = lock(&self.state);
        for (key, fin) in std::mem::take(&mut self.keys) {
            let alone = match st.writing.get_mut(&key) {
                Some(w) => {
                    w.in_flight = w.in_flight.saturating_sub(1);
                    let alone = !w.contended && w.in_flight == 0;
                    if w.in_flight == 0 {
                        st.writing.remove(&key);
                    }
                    alone
                }
                None => false,
            };
            match fin {
                Final::Value(v, cost) if applied && alone => {
                    st.update(&key, Some(v), cost, self.max_bytes)
                }
                Final::Absent(cost) if applied && alone => {
                    st.update(&key, None, cost, self.max_bytes)
                }
                _ => st.remove(&key),
            }
        }
        st.generation = st.generation.wrapping_add(1);
    }
}

impl Drop for WriteGuard {
    fn drop(&mut self) {
        if !self.finished {
            self.end(false);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shroud_core::MemoryStorage;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use tokio::sync::oneshot;

    /// Where a [`Probe`] holds an operation: it signals `reached`, then waits for `release`.
    struct Hold {
        reached: oneshot::Sender<()>,
        release: oneshot::Receiver<()>,
    }

    /// The test side of a [`Hold`].
    struct HoldHandle {
        reached: oneshot::Receiver<()>,
        release: oneshot::Sender<()>,
    }

    fn hold() -> (Hold, HoldHandle) {
        let (reached_tx, reached_rx) = oneshot::channel();
        let (release_tx, release_rx) = oneshot::channel();
        (
            Hold {
                reached: reached_tx,
                release: release_rx,
            },
            HoldHandle {
                reached: reached_rx,
                release: release_tx,
            },
        )
    }

    impl Hold {
        async fn wait(self) {
            self.reached.send(()).unwrap();
            self.release.await.unwrap();
        }
    }

    /// A memory store that counts reads, can hold the next read after it read, or the next
    /// write after it applied, and can report a write as failed after applying it.
    #[derive(Default)]
    struct Probe {
        mem: MemoryStorage,
        gets: AtomicUsize,
        hold_get: Mutex<Option<Hold>>,
        hold_write: Mutex<Option<Hold>>,
        write_done: Mutex<Option<oneshot::Sender<()>>>,
        fail_writes: AtomicBool,
        yield_inside: AtomicBool,
    }

    impl Probe {
        fn gets(&self) -> usize {
            self.gets.load(Ordering::SeqCst)
        }
        fn hold_next_get(&self) -> HoldHandle {
            let (h, handle) = hold();
            *self.hold_get.lock().unwrap() = Some(h);
            handle
        }
        fn hold_next_write(&self) -> HoldHandle {
            let (h, handle) = hold();
            *self.hold_write.lock().unwrap() = Some(h);
            handle
        }
    }

    #[async_trait]
    impl Storage for Probe {
        async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StorageError> {
            self.gets.fetch_add(1, Ordering::SeqCst);
            let v = self.mem.get(key).await;
            if self.yield_inside.load(Ordering::Relaxed) {
                tokio::task::yield_now().await;
            }
            let held = self.hold_get.lock().unwrap().take();
            if let Some(h) = held {
                h.wait().await;
            }
            v
        }
        async fn write_batch(&self, ops: Vec<Op>) -> Result<(), StorageError> {
            if self.yield_inside.load(Ordering::Relaxed) {
                tokio::task::yield_now().await;
            }
            let r = self.mem.write_batch(ops).await;
            if self.yield_inside.load(Ordering::Relaxed) {
                tokio::task::yield_now().await;
            }
            let held = self.hold_write.lock().unwrap().take();
            if let Some(h) = held {
                h.wait().await;
            }
            if let Some(done) = self.write_done.lock().unwrap().take() {
                done.send(()).unwrap();
            }
            if self.fail_writes.load(Ordering::SeqCst) {
                return Err(StorageError::Io("injected failure after applying".into()));
            }
            r
        }
        async fn list(&self, prefix: &str) -> Result<Vec<String>, StorageError> {
            self.mem.list(prefix).await
        }
        async fn compare_and_swap(
            &self,
            key: &str,
            expected: Option<&[u8]>,
            new: Option<&[u8]>,
        ) -> Result<bool, StorageError> {
            self.mem.compare_and_swap(key, expected, new).await
        }
        async fn sequence(&self) -> Result<u64, StorageError> {
            self.mem.sequence().await
        }
        fn kind(&self) -> &'static str {
            "probe"
        }
    }

    fn cached(max_bytes: usize) -> (Arc<Probe>, Arc<CachedStorage>) {
        let probe = Arc::new(Probe::default());
        let cache = Arc::new(CachedStorage::new(probe.clone(), max_bytes));
        (probe, cache)
    }

    #[tokio::test]
    async fn hits_do_not_reach_inner() {
        let (probe, cache) = cached(1 << 20);
        cache.put("k", b"v").await.unwrap();
        assert_eq!(cache.get("k").await.unwrap().as_deref(), Some(&b"v"[..]));
        assert_eq!(cache.get("k").await.unwrap().as_deref(), Some(&b"v"[..]));
        assert_eq!(probe.gets(), 1);
        assert_eq!(cache.kind(), "probe");
    }

    #[tokio::test]
    async fn absent_is_cached_and_a_put_replaces_it() {
        let (probe, cache) = cached(1 << 20);
        assert_eq!(cache.get("k").await.unwrap(), None);
        assert_eq!(cache.get("k").await.unwrap(), None);
        assert_eq!(probe.gets(), 1, "absent must be cached");
        cache.put("k", b"v").await.unwrap();
        assert_eq!(cache.get("k").await.unwrap().as_deref(), Some(&b"v"[..]));
        assert_eq!(probe.gets(), 1, "the put must update the cached entry");
    }

    #[tokio::test]
    async fn delete_caches_absent() {
        let (probe, cache) = cached(1 << 20);
        cache.put("k", b"v").await.unwrap();
        cache.get("k").await.unwrap();
        cache.delete("k").await.unwrap();
        assert_eq!(cache.get("k").await.unwrap(), None);
        assert_eq!(probe.gets(), 1);
    }

    #[tokio::test]
    async fn batch_last_op_per_key_wins() {
        let (probe, cache) = cached(1 << 20);
        cache.put("a", b"0").await.unwrap();
        cache.get("a").await.unwrap();
        cache
            .write_batch(vec![
                Op::Put("a".into(), b"1".to_vec()),
                Op::Delete("a".into()),
                Op::Put("a".into(), b"2".to_vec()),
            ])
            .await
            .unwrap();
        assert_eq!(cache.get("a").await.unwrap().as_deref(), Some(&b"2"[..]));
        assert_eq!(probe.gets(), 1);
    }

    #[tokio::test]
    async fn cas_updates_cache_and_failed_cas_drops_entry() {
        let (probe, cache) = cached(1 << 20);
        cache.put("k", b"1").await.unwrap();
        cache.get("k").await.unwrap();
        assert!(cache
            .compare_and_swap("k", Some(b"1"), Some(b"2"))
            .await
            .unwrap());
        assert_eq!(cache.get("k").await.unwrap().as_deref(), Some(&b"2"[..]));
        assert_eq!(probe.gets(), 1);
        assert!(!cache
            .compare_and_swap("k", Some(b"1"), Some(b"3"))
            .await
            .unwrap());
        assert_eq!(cache.get("k").await.unwrap().as_deref(), Some(&b"2"[..]));
        assert_eq!(probe.gets(), 2, "a failed CAS must drop the entry");
    }

    #[tokio::test]
    async fn large_values_are_not_cached() {
        let (probe, cache) = cached(16 * 1024);
        cache.put("big", &[1u8; 2000]).await.unwrap();
        cache.get("big").await.unwrap();
        cache.get("big").await.unwrap();
        assert_eq!(probe.gets(), 2);
        assert_eq!(cache.cached_entries(), 0);
    }

    #[tokio::test]
    async fn size_stays_bounded() {
        let max = 16 * 1024;
        let (_probe, cache) = cached(max);
        for i in 0..1000 {
            let k = format!("k/{i:04}");
            cache.put(&k, &[7u8; 100]).await.unwrap();
            cache.get(&k).await.unwrap();
            assert!(
                cache.cached_bytes() <= max,
                "{} > {max}",
                cache.cached_bytes()
            );
        }
        let n = cache.cached_entries();
        assert!(n > 10 && n < 1000, "{n} entries");
        // Every value still reads correctly after the evictions.
        for i in (0..1000).step_by(97) {
            let k = format!("k/{i:04}");
            assert_eq!(cache.get(&k).await.unwrap(), Some(vec![7u8; 100]));
        }
    }

    #[tokio::test]
    async fn hot_entry_survives_a_scan() {
        let (probe, cache) = cached(16 * 1024);
        cache.put("hot", b"h").await.unwrap();
        for i in 0..500 {
            let k = format!("cold/{i:04}");
            cache.put(&k, &[0u8; 200]).await.unwrap();
        }
        let before = probe.gets();
        cache.get("hot").await.unwrap();
        for i in 0..500 {
            cache.get(&format!("cold/{i:04}")).await.unwrap();
            cache.get("hot").await.unwrap();
        }
        assert_eq!(
            probe.gets(),
            before + 1 + 500,
            "the hot key must be read from inner once"
        );
    }

    #[tokio::test]
    async fn zero_capacity_caches_nothing() {
        let (probe, cache) = cached(0);
        cache.put("k", b"v").await.unwrap();
        cache.get("k").await.unwrap();
        cache.get("k").await.unwrap();
        assert_eq!(probe.gets(), 2);
    }

    #[tokio::test]
    async fn clear_drops_entries() {
        let (probe, cache) = cached(1 << 20);
        cache.put("k", b"v").await.unwrap();
        cache.get("k").await.unwrap();
        cache.clear();
        assert_eq!(cache.cached_entries(), 0);
        assert_eq!(cache.cached_bytes(), 0);
        cache.get("k").await.unwrap();
        assert_eq!(probe.gets(), 2);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn get_that_raced_a_put_does_not_install_stale_value() {
        let (probe, cache) = cached(1 << 20);
        probe.mem.put("k", b"old").await.unwrap();
        let held = probe.hold_next_get();
        let reader = {
            let cache = cache.clone();
            tokio::spawn(async move { cache.get("k").await.unwrap() })
        };
        // The reader has read "old" from the inner store and not yet installed it.
        held.reached.await.unwrap();
        cache.put("k", b"new").await.unwrap();
        held.release.send(()).unwrap();
        assert_eq!(
            reader.await.unwrap().as_deref(),
            Some(&b"old"[..]),
            "it started first"
        );
        assert_eq!(
            cache.get("k").await.unwrap().as_deref(),
            Some(&b"new"[..]),
            "the racing read installed the value the put replaced"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn overlapping_writes_do_not_install_out_of_order() {
        let (probe, cache) = cached(1 << 20);
        cache.put("k", b"0").await.unwrap();
        cache.get("k").await.unwrap();
        // The first write applies "1" and is held before returning; the second applies "2"
        // and returns first. The inner store ends with "2", but "1" finishes last.
        let held = probe.hold_next_write();
        let first = {
            let cache = cache.clone();
            tokio::spawn(async move { cache.put("k", b"1").await.unwrap() })
        };
        held.reached.await.unwrap();
        cache.put("k", b"2").await.unwrap();
        held.release.send(()).unwrap();
        first.await.unwrap();
        // "1" finished last but was applied first: installing it would be stale.
        assert_eq!(
            probe.mem.get("k").await.unwrap().as_deref(),
            Some(&b"2"[..])
        );
        assert_eq!(cache.get("k").await.unwrap().as_deref(), Some(&b"2"[..]));
    }

    #[tokio::test]
    async fn failed_write_drops_entry() {
        let (probe, cache) = cached(1 << 20);
        cache.put("k", b"0").await.unwrap();
        cache.get("k").await.unwrap();
        probe.fail_writes.store(true, Ordering::SeqCst);
        assert!(cache.put("k", b"1").await.is_err());
        // The failure came after the inner store applied it: the outcome is unknown, so the
        // cache must read through rather than keep "0".
        assert_eq!(cache.get("k").await.unwrap().as_deref(), Some(&b"1"[..]));
    }

    // current_thread: when `done` arrives, the write task has already run its bookkeeping in
    // the same poll, so the check below is deterministic.
    #[tokio::test(flavor = "current_thread")]
    async fn dropped_write_future_still_updates_cache() {
        let (probe, cache) = cached(1 << 20);
        cache.put("k", b"0").await.unwrap();
        cache.get("k").await.unwrap();
        let held = probe.hold_next_write();
        let (done_tx, done_rx) = oneshot::channel();
        *probe.write_done.lock().unwrap() = Some(done_tx);
        let caller = {
            let cache = cache.clone();
            tokio::spawn(async move { cache.put("k", b"1").await })
        };
        held.reached.await.unwrap();
        caller.abort();
        assert!(caller.await.unwrap_err().is_cancelled());
        held.release.send(()).unwrap();
        done_rx.await.unwrap();
        assert_eq!(cache.get("k").await.unwrap().as_deref(), Some(&b"1"[..]));
    }

    #[tokio::test]
    async fn invalid_keys_are_rejected_before_the_inner_store() {
        let (probe, cache) = cached(1 << 20);
        assert!(matches!(cache.get("").await, Err(StorageError::InvalidKey)));
        assert!(matches!(
            cache.put("a\0", b"").await,
            Err(StorageError::InvalidKey)
        ));
        assert!(matches!(
            cache.compare_and_swap("", None, None).await,
            Err(StorageError::InvalidKey)
        ));
        assert_eq!(probe.gets(), 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_put_get_of_one_key_stays_fresh() {
        let (probe, cache) = cached(1 << 20);
        probe.yield_inside.store(true, Ordering::Relaxed);
        stress_one_key(cache).await;
    }

    /// One writer stores 0, 1, 2, ... while readers hammer the same key. Linearizability
    /// demands that the writer reads back exactly what it just wrote and that no reader ever
    /// sees the value go backwards.
    async fn stress_one_key(cache: Arc<CachedStorage>) {
        const WRITES: u64 = 300;
        let stop = Arc::new(AtomicBool::new(false));
        let mut readers = Vec::new();
        for _ in 0..8 {
            let (cache, stop) = (cache.clone(), stop.clone());
            readers.push(tokio::spawn(async move {
                let mut last = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    if let Some(v) = cache.get("race/k").await.unwrap() {
                        let n: u64 = std::str::from_utf8(&v).unwrap().parse().unwrap();
                        assert!(n >= last, "a reader saw {n} after {last}");
                        last = n;
                    }
                    tokio::task::yield_now().await;
                }
            }));
        }
        for i in 1..=WRITES {
            cache.put("race/k", i.to_string().as_bytes()).await.unwrap();
            let got = cache.get("race/k").await.unwrap().unwrap();
            assert_eq!(
                std::str::from_utf8(&got).unwrap(),
                i.to_string(),
                "stale read after put"
            );
        }
        stop.store(true, Ordering::Relaxed);
        for r in readers {
            r.await.unwrap();
        }
    }
}
