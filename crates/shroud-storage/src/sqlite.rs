//! The embedded SQLite backend.
//!
//! Layout: one database file (plus SQLite's `-wal` and `-shm` companions) holding
//! `entries(key, value)` and a one-row `meta` table with the persisted change sequence.
//! Writes go through one dedicated writer thread that batches concurrent requests into one
//! transaction (see [`writer`]); reads use a small pool of read-only connections, which WAL
//! lets run concurrently with the writer.

mod writer;

use async_trait::async_trait;
use rusqlite::{Connection, ErrorCode, OpenFlags, OptionalExtension};
use shroud_core::storage::{validate_key, MAX_KEY_LEN};
use shroud_core::{Op, Storage, StorageError};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex, PoisonError, TryLockError};
use std::thread::JoinHandle;
use std::time::Duration;
use tokio::sync::oneshot;
use writer::{Request, Writer};

/// WAL pages between automatic checkpoints (about 40 MiB of WAL at 4 KiB pages).
const WAL_AUTOCHECKPOINT: i64 = 10_000;
/// Size the WAL file is truncated back to after a checkpoint, in bytes.
const WAL_SIZE_LIMIT: i64 = 64 * 1024 * 1024;

/// The schema version this build writes (`PRAGMA user_version`). Files with a newer version are
/// refused rather than misread; older versions would be migrated here when one exists.
const SCHEMA_VERSION: i64 = 1;

/// Schema version 1. `WITHOUT ROWID` stores each entry once, clustered by key, which makes
/// `list(prefix)` a range scan. TEXT keys compare with SQLite's BINARY collation (`memcmp`
/// of the UTF-8 bytes), which is exactly the ascending byte order the `Storage` contract
/// asks of `list`.
const SCHEMA_V1: &str = "
    CREATE TABLE entries (key TEXT PRIMARY KEY NOT NULL, value BLOB NOT NULL) WITHOUT ROWID;
    CREATE TABLE meta (id INTEGER PRIMARY KEY CHECK (id = 0), seq INTEGER NOT NULL);
    INSERT INTO meta (id, seq) VALUES (0, 0);
";

/// How long a connection waits for a lock held by another connection before failing. Within
/// one process only WAL bookkeeping (recovery, checkpoints) ever contends, and briefly.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Errors that only this backend produces; they reach callers as the source of
/// [`StorageError::Io`].
#[derive(Debug, thiserror::Error)]
enum SqliteError {
    /// Another process (or another `SqliteStorage` in this one) has the file open. The cache
    /// and the change sequence assume a single writer, so sharing is refused.
    #[error("the database file is in use by another shroud storage instance")]
    InUse,
    /// `PRAGMA journal_mode=WAL` did not take effect (e.g. the file system cannot share memory).
    #[error("could not switch the database to WAL mode (got journal mode {0:?})")]
    NoWal(String),
}

/// A durable, ordered key-value store in one SQLite file.
///
/// Writes (`put`, `delete`, `write_batch`, `compare_and_swap`) are queued to a single writer
/// thread that applies every queued request in one transaction and commits it with one
/// `fsync` (`synchronous=FULL`), then acknowledges them: concurrent writers share the cost of
/// durability. Every acknowledged write survives a crash of the process or the machine.
///
/// The file is locked (`flock`) while open: a second `SqliteStorage` on the same file, in this
/// or another process, fails to open. Dropping the value (or calling [`SqliteStorage::close`])
/// finishes the queued writes and stops the writer thread; later requests fail with
/// [`StorageError::Closed`].
pub struct SqliteStorage {
    path: PathBuf,
    sender: mpsc::Sender<Request>,
    writer: Mutex<Option<JoinHandle<()>>>,
    closed: AtomicBool,
    /// The sequence of the last committed group; written by the writer thread after COMMIT.
    sequence: Arc<AtomicU64>,
    readers: ReaderPool,
    /// Holds the `flock` on the database file. Declared last so it is dropped after every
    /// SQLite connection: closing any descriptor of a file drops all of this process's POSIX
    /// locks on it, including SQLite's own, so it must not close while SQLite still uses them.
    _lock: File,
}

impl std::fmt::Debug for SqliteStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStorage")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl SqliteStorage {
    /// Opens the database at `path`, creating it (mode 0600) if it does not exist. The parent
    /// directory must exist.
    ///
    /// Fails with [`StorageError::Corrupt`] if the file is not a shroud database (garbage, a
    /// foreign SQLite database, a schema version newer than this build), and with
    /// [`StorageError::Io`] if it cannot be created, read or locked.
    pub fn open(path: &Path) -> Result<SqliteStorage, StorageError> {
        let lock = create_and_lock(path)?;

        // No SQLITE_OPEN_CREATE: the file exists now, created above with the right mode.
        // SQLite gives the `-wal` and `-shm` files the database file's permissions.
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let mut conn = Connection::open_with_flags(path, flags).map_err(map_err)?;
        configure(&conn)?;
        let mode: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .map_err(map_err)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StorageError::Io(Box::new(SqliteError::NoWal(mode))));
        }
        // FULL: the WAL is fsynced at every COMMIT, so an acknowledged write is durable.
        // (NORMAL syncs only at checkpoints: it survives a process crash but can lose
        // acknowledged writes when the machine loses power.)
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(map_err)?;
        // Checkpoint every WAL_AUTOCHECKPOINT pages rather than SQLite's 1,000: a page written
        // many times between checkpoints is copied into the database once, which took a sixth
        // off the cost of a durable write under load. Durability is the WAL's fsync at each
        // COMMIT either way; the cap keeps the WAL file from staying large after a burst.
        conn.pragma_update(None, "wal_autocheckpoint", WAL_AUTOCHECKPOINT)
            .map_err(map_err)?;
        conn.pragma_update(None, "journal_size_limit", WAL_SIZE_LIMIT)
            .map_err(map_err)?;
        let seq = prepare_schema(&mut conn)?;

        let readers = ReaderPool::open(path)?;
        let sequence = Arc::new(AtomicU64::new(seq));
        let (sender, receiver) = mpsc::channel();
        let handle = Writer::new(conn, receiver, seq, Arc::clone(&sequence))
            .spawn()
            .map_err(|e| StorageError::Io(Box::new(e)))?;
        Ok(SqliteStorage {
            path: path.to_owned(),
            sender,
            writer: Mutex::new(Some(handle)),
            closed: AtomicBool::new(false),
            sequence,
            readers,
            _lock: lock,
        })
    }

    /// The path this storage was opened at.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Finishes every write queued so far, stops the writer thread and waits for it. Later
    /// requests (reads too) fail with [`StorageError::Closed`]. Idempotent; also run on drop.
    ///
    /// This blocks the calling thread until the writer's last group is committed (normally a
    /// few milliseconds), so call it at shutdown, not on a latency-sensitive path.
    pub fn close(&self) {
        self.closed.store(true, Ordering::Release);
        // Readers first, so that the writer's connection is the last one to close: SQLite
        // then checkpoints the WAL into the main file and removes it (a read-only connection
        // closing last cannot).
        self.readers.close();
        // The writer finishes everything queued before this message, then exits and drops the
        // receiver: a request sent after that fails to send or loses its reply, both `Closed`.
        // A send error means the writer is already gone, which is the goal.
        let _ = self.sender.send(Request::Shutdown);
        let handle = self
            .writer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(handle) = handle {
            if handle.join().is_err() {
                tracing::error!(path = %self.path.display(), "sqlite writer thread panicked");
            }
        }
    }

    fn check_open(&self) -> Result<(), StorageError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(StorageError::Closed);
        }
        Ok(())
    }

    /// Queues one request for the writer thread and waits for its answer.
    ///
    /// If the caller's future is dropped after the request was sent, the write may still be
    /// applied; only its acknowledgement is lost (as with any remote store).
    async fn submit<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<T, StorageError>>) -> Request,
    ) -> Result<T, StorageError> {
        self.check_open()?;
        let (tx, rx) = oneshot::channel();
        self.sender
            .send(make(tx))
            .map_err(|_| StorageError::Closed)?;
        // A dropped reply sender means the writer exited (shutdown or panic) without
        // answering; the request was not acknowledged.
        rx.await.map_err(|_| StorageError::Closed)?
    }
}

impl Drop for SqliteStorage {
    fn drop(&mut self) {
        self.close();
    }
}

// Reads run inline on the calling (async) thread instead of `spawn_blocking`: a point lookup or
// a prefix range scan on a read-only WAL connection takes microseconds and never waits for the
// writer (WAL readers see the last committed snapshot without locking), which is cheaper than
// the thread hand-off `spawn_blocking` costs. Only a pathological `list` of a huge prefix would
// be slow, and that is bounded by the size of the store.
#[async_trait]
impl Storage for SqliteStorage {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StorageError> {
        validate_key(key)?;
        self.check_open()?;
        self.readers.with(|c| {
            c.prepare_cached("SELECT value FROM entries WHERE key = ?1")?
                .query_row([key], |r| r.get::<_, Vec<u8>>(0))
                .optional()
        })
    }

    async fn write_batch(&self, ops: Vec<Op>) -> Result<(), StorageError> {
        for op in &ops {
            match op {
                Op::Put(k, _) | Op::Delete(k) => validate_key(k)?,
            }
        }
        if ops.is_empty() {
            // Nothing to apply and nothing to make durable: every earlier acknowledged write
            // already is. Not a mutation, so the sequence does not move.
            return self.check_open();
        }
        self.submit(|reply| Request::Batch { ops, reply }).await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, StorageError> {
        self.check_open()?;
        if prefix.len() > MAX_KEY_LEN || prefix.contains('\0') {
            // No valid key can start with this prefix.
            return Ok(Vec::new());
        }
        self.readers.with(|c| {
            // Seek to the first key >= prefix and stop at the first one without it, so the
            // scan touches only matching keys plus one.
            let mut stmt =
                c.prepare_cached("SELECT key FROM entries WHERE key >= ?1 ORDER BY key")?;
            let mut rows = stmt.query([prefix])?;
            let mut keys = Vec::new();
            while let Some(row) = rows.next()? {
                let key: String = row.get(0)?;
                if !key.starts_with(prefix) {
                    break;
                }
                keys.push(key);
            }
            Ok(keys)
        })
    }

    async fn compare_and_swap(
        &self,
        key: &str,
        expected: Option<&[u8]>,
        new: Option<&[u8]>,
    ) -> Result<bool, StorageError> {
        validate_key(key)?;
        let (key, expected, new) = (
            key.to_owned(),
            expected.map(<[u8]>::to_vec),
            new.map(<[u8]>::to_vec),
        );
        self.submit(|reply| Request::Cas {
            key,
            expected,
            new,
            reply,
        })
        .await
    }

    async fn sequence(&self) -> Result<u64, StorageError> {
        self.check_open()?;
        // Published by the writer after COMMIT and before any reply, so a caller that saw a
        // write acknowledged sees a sequence that includes it, and a reader that sees sequence
        // N then reads the store sees at least the state of N.
        Ok(self.sequence.load(Ordering::Acquire))
    }

    fn kind(&self) -> &'static str {
        "sqlite"
    }
}

/// Creates the file with mode 0600 if needed (SQLite would use 0644), and takes an exclusive
/// `flock` on it so no second instance writes the same file behind the cache's back.
fn create_and_lock(path: &Path) -> Result<File, StorageError> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true).write(true).create(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        options.mode(0o600);
        let file = options
            .open(path)
            .map_err(|e| StorageError::Io(Box::new(e)))?;
        let mode = file
            .metadata()
            .map_err(|e| StorageError::Io(Box::new(e)))?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            // An existing file's mode is the operator's choice; its content is ciphertext, but
            // say so, since 0600 is what shroud creates.
            tracing::warn!(path = %path.display(), mode = format_args!("{:o}", mode & 0o777),
                "storage file is accessible to group or others");
        }
        lock(file)
    }
    #[cfg(not(unix))]
    {
        let file = options
            .open(path)
            .map_err(|e| StorageError::Io(Box::new(e)))?;
        lock(file)
    }
}

fn lock(file: File) -> Result<File, StorageError> {
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => {
            Err(StorageError::Io(Box::new(SqliteError::InUse)))
        }
        Err(std::fs::TryLockError::Error(e)) => Err(StorageError::Io(Box::new(e))),
    }
}

/// Settings every connection gets.
fn configure(conn: &Connection) -> Result<(), StorageError> {
    conn.busy_timeout(BUSY_TIMEOUT).map_err(map_err)?;
    // The file is untrusted input: never let its schema (views, triggers) call SQL functions
    // with side effects.
    conn.pragma_update(None, "trusted_schema", "OFF")
        .map_err(map_err)?;
    Ok(())
}

/// Creates the schema in a new file or checks an existing one; returns the stored sequence.
fn prepare_schema(conn: &mut Connection) -> Result<u64, StorageError> {
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(map_err)?;
    match version {
        0 => {
            let tx = conn
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                .map_err(map_err)?;
            let objects: i64 = tx
                .query_row("SELECT count(*) FROM sqlite_schema", [], |r| r.get(0))
                .map_err(map_err)?;
            if objects != 0 {
                return Err(StorageError::Corrupt(
                    "file is an SQLite database but not a shroud one (no schema version)".into(),
                ));
            }
            tx.execute_batch(SCHEMA_V1).map_err(map_err)?;
            tx.pragma_update(None, "user_version", SCHEMA_VERSION)
                .map_err(map_err)?;
            tx.commit().map_err(map_err)?;
        }
        SCHEMA_VERSION => {}
        v if v > SCHEMA_VERSION => {
            return Err(StorageError::Corrupt(format!(
                "schema version {v} is newer than this build supports ({SCHEMA_VERSION})"
            )));
        }
        v => return Err(StorageError::Corrupt(format!("invalid schema version {v}"))),
    }

    // The file is untrusted: check that it holds exactly our tables (no triggers or views
    // that would run on our statements) before using it.
    let mut stmt = conn
        .prepare("SELECT type, name FROM sqlite_schema ORDER BY name")
        .map_err(map_err)?;
    let objects = stmt
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
        .map_err(map_err)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(map_err)?;
    drop(stmt);
    let expected = [("table", "entries"), ("table", "meta")];
    let matches = objects.len() == expected.len()
        && objects
            .iter()
            .zip(expected)
            .all(|((t, n), (et, en))| t == et && n == en);
    if !matches {
        return Err(StorageError::Corrupt(
            "unexpected schema objects in the database".into(),
        ));
    }

    let seq: Option<i64> = conn
        .query_row("SELECT seq FROM meta WHERE id = 0", [], |r| r.get(0))
        .optional()
        .map_err(map_err)?;
    let seq = seq.ok_or_else(|| StorageError::Corrupt("missing change sequence".into()))?;
    u64::try_from(seq).map_err(|_| StorageError::Corrupt("negative change sequence".into()))
}

/// A few read-only connections, each behind its own mutex (a `Connection` is `Send` but not
/// `Sync`). More connections than threads that can read at once would only cost file handles.
/// A slot is `None` once the pool is closed.
struct ReaderPool {
    conns: Vec<Mutex<Option<Connection>>>,
    next: AtomicUsize,
}

impl ReaderPool {
    fn open(path: &Path) -> Result<Self, StorageError> {
        let n = std::thread::available_parallelism()
            .map_or(2, |n| n.get())
            .clamp(2, 8);
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let mut conns = Vec::with_capacity(n);
        for _ in 0..n {
            let conn = Connection::open_with_flags(path, flags).map_err(map_err)?;
            configure(&conn)?;
            conns.push(Mutex::new(Some(conn)));
        }
        Ok(ReaderPool {
            conns,
            next: AtomicUsize::new(0),
        })
    }

    /// Runs `f` on a free connection, or waits for one if all are busy.
    fn with<T>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T, StorageError> {
        // `open` creates at least two connections, so `n > 0` and every index below is `< n`.
        let n = self.conns.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed) % n;
        for i in 0..n {
            // A poisoned mutex only means a panic elsewhere while this connection was in use;
            // rusqlite resets statements on drop, so the connection itself is still usable.
            let guard = match self.conns[(start + i) % n].try_lock() {
                Ok(g) => g,
                Err(TryLockError::Poisoned(p)) => p.into_inner(),
                Err(TryLockError::WouldBlock) => continue,
            };
            return run(guard.as_ref(), f);
        }
        let guard = self.conns[start]
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        run(guard.as_ref(), f)
    }

    /// Closes every connection, after the reads in progress.
    fn close(&self) {
        for slot in &self.conns {
            slot.lock().unwrap_or_else(PoisonError::into_inner).take();
        }
    }
}

fn run<T>(
    conn: Option<&Connection>,
    f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
) -> Result<T, StorageError> {
    match conn {
        Some(conn) => f(conn).map_err(map_err),
        None => Err(StorageError::Closed),
    }
}

/// Classifies an SQLite error: a file that is not a database, a malformed one, or data of the
/// wrong type (which only a damaged or foreign file holds) is `Corrupt`; the rest is `Io`.
fn map_err(e: rusqlite::Error) -> StorageError {
    if is_corruption(&e) {
        StorageError::Corrupt(e.to_string())
    } else {
        StorageError::Io(Box::new(e))
    }
}

fn is_corruption(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt)
    ) || matches!(
        e,
        rusqlite::Error::InvalidColumnType(..)
            | rusqlite::Error::FromSqlConversionFailure(..)
            | rusqlite::Error::IntegralValueOutOfRange(..)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn temp_db() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("shroud.db");
        (dir, path)
    }

    #[tokio::test]
    async fn kind_is_sqlite() {
        let (_dir, path) = temp_db();
        assert_eq!(SqliteStorage::open(&path).unwrap().kind(), "sqlite");
    }

    #[tokio::test]
    async fn new_files_are_private() {
        let (_dir, path) = temp_db();
        let s = SqliteStorage::open(&path).unwrap();
        s.put("k", b"v").await.unwrap();
        let mut wal = path.clone().into_os_string();
        wal.push("-wal");
        for p in [path.as_os_str(), wal.as_os_str()] {
            let mode = std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{p:?}");
        }
    }

    #[test]
    fn missing_parent_directory_fails() {
        let (dir, _) = temp_db();
        let err = SqliteStorage::open(&dir.path().join("no/such/dir/shroud.db")).unwrap_err();
        assert!(matches!(err, StorageError::Io(_)), "{err:?}");
    }

    #[test]
    fn second_open_of_same_file_is_refused() {
        let (_dir, path) = temp_db();
        let first = SqliteStorage::open(&path).unwrap();
        let err = SqliteStorage::open(&path).unwrap_err();
        assert!(err.to_string().contains("I/O"), "{err}");
        drop(first);
        SqliteStorage::open(&path).expect("the lock is released on drop");
    }

    #[tokio::test]
    async fn requests_after_close_fail_closed() {
        let (_dir, path) = temp_db();
        let s = SqliteStorage::open(&path).unwrap();
        s.put("k", b"v").await.unwrap();
        s.close();
        s.close(); // idempotent
        assert!(matches!(s.put("k", b"w").await, Err(StorageError::Closed)));
        assert!(matches!(
            s.compare_and_swap("k", None, None).await,
            Err(StorageError::Closed)
        ));
        assert!(matches!(
            s.write_batch(vec![]).await,
            Err(StorageError::Closed)
        ));
        assert!(matches!(s.get("k").await, Err(StorageError::Closed)));
        assert!(matches!(s.list("").await, Err(StorageError::Closed)));
        assert!(matches!(s.sequence().await, Err(StorageError::Closed)));
    }

    #[tokio::test]
    async fn empty_batch_does_not_advance_sequence() {
        let (_dir, path) = temp_db();
        let s = SqliteStorage::open(&path).unwrap();
        s.write_batch(vec![]).await.unwrap();
        assert_eq!(s.sequence().await.unwrap(), 0);
    }

    #[tokio::test]
    async fn list_with_impossible_prefix_is_empty() {
        let (_dir, path) = temp_db();
        let s = SqliteStorage::open(&path).unwrap();
        s.put("a", b"1").await.unwrap();
        assert!(s.list("a\0").await.unwrap().is_empty());
        assert!(s
            .list(&"a".repeat(MAX_KEY_LEN + 1))
            .await
            .unwrap()
            .is_empty());
    }

    #[test]
    fn foreign_sqlite_database_is_corrupt() {
        let (_dir, path) = temp_db();
        let c = Connection::open(&path).unwrap();
        c.execute_batch("CREATE TABLE users (name TEXT)").unwrap();
        drop(c);
        let err = SqliteStorage::open(&path).unwrap_err();
        assert!(matches!(err, StorageError::Corrupt(_)), "{err:?}");
    }

    #[test]
    fn newer_schema_version_is_refused() {
        let (_dir, path) = temp_db();
        drop(SqliteStorage::open(&path).unwrap());
        let c = Connection::open(&path).unwrap();
        c.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .unwrap();
        drop(c);
        let err = SqliteStorage::open(&path).unwrap_err();
        assert!(
            matches!(err, StorageError::Corrupt(ref m) if m.contains("newer")),
            "{err:?}"
        );
    }

    #[test]
    fn injected_trigger_is_refused() {
        let (_dir, path) = temp_db();
        drop(SqliteStorage::open(&path).unwrap());
        let c = Connection::open(&path).unwrap();
        c.execute_batch(
            "CREATE TABLE loot (v BLOB);
             CREATE TRIGGER steal AFTER INSERT ON entries BEGIN
                 INSERT INTO loot VALUES (new.value);
             END;",
        )
        .unwrap();
        drop(c);
        let err = SqliteStorage::open(&path).unwrap_err();
        assert!(matches!(err, StorageError::Corrupt(_)), "{err:?}");
    }

    #[tokio::test]
    async fn wrongly_typed_value_is_corrupt() {
        let (_dir, path) = temp_db();
        drop(SqliteStorage::open(&path).unwrap());
        let c = Connection::open(&path).unwrap();
        c.execute("INSERT INTO entries (key, value) VALUES ('k', 42)", [])
            .unwrap();
        drop(c);
        let s = SqliteStorage::open(&path).unwrap();
        assert!(matches!(s.get("k").await, Err(StorageError::Corrupt(_))));
    }
}
