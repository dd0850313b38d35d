//! The writer thread and its group commit.
//!
//! Durability costs one `fsync` per COMMIT, and an `fsync` costs milliseconds, so committing
//! each request on its own would cap the server at a few hundred writes per second. Instead the
//! writer blocks for the first request, takes every request already queued behind it (bounded
//! by [`MAX_GROUP_REQUESTS`] and [`MAX_GROUP_BYTES`]), applies them in order in ONE
//! transaction and commits once. While it waits for that `fsync`, new requests queue up and
//! form the next group, so the group size adapts to the load by itself.
//!
//! Each request keeps its own meaning inside the group: a compare-and-swap is evaluated against
//! the state inside the transaction (so it sees the requests before it in the group), a failed
//! CAS changes nothing, and a request whose statements fail is rolled back to its savepoint
//! without failing the others. If the COMMIT itself fails, nothing in the group happened and
//! every request gets the error.

use super::map_err;
use rusqlite::{params, Connection, OptionalExtension};
use shroud_core::{Op, StorageError};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use tokio::sync::oneshot;

/// Most requests committed together. Bounds the work (and the latency) of one COMMIT.
const MAX_GROUP_REQUESTS: usize = 512;
/// Approximate most bytes of keys and values in one group; a single larger request still goes
/// through, alone.
const MAX_GROUP_BYTES: usize = 4 * 1024 * 1024;

/// A request to the writer thread.
///
/// The queue is unbounded, but every request is owned by a caller awaiting its reply, so the
/// queue never holds more requests than there are concurrent callers (which the server bounds).
pub(super) enum Request {
    /// `write_batch` (and `put`/`delete`): apply every op, in order, atomically.
    Batch {
        ops: Vec<Op>,
        reply: oneshot::Sender<Result<(), StorageError>>,
    },
    /// `compare_and_swap`.
    Cas {
        key: String,
        expected: Option<Vec<u8>>,
        new: Option<Vec<u8>>,
        reply: oneshot::Sender<Result<bool, StorageError>>,
    },
    /// Finish the requests queued before this one, then exit.
    Shutdown,
}

impl Request {
    fn size(&self) -> usize {
        match self {
            Request::Batch { ops, .. } => ops
                .iter()
                .map(|op| match op {
                    Op::Put(k, v) => k.len() + v.len(),
                    Op::Delete(k) => k.len(),
                })
                .sum(),
            Request::Cas {
                key, expected, new, ..
            } => {
                key.len() + expected.as_ref().map_or(0, Vec::len) + new.as_ref().map_or(0, Vec::len)
            }
            Request::Shutdown => 0,
        }
    }
}

/// Owns the write connection; runs on its own thread.
pub(super) struct Writer {
    conn: Connection,
    rx: mpsc::Receiver<Request>,
    /// The sequence as of the last successful COMMIT.
    seq: u64,
    published: Arc<AtomicU64>,
}

impl Writer {
    pub(super) fn new(
        conn: Connection,
        rx: mpsc::Receiver<Request>,
        seq: u64,
        published: Arc<AtomicU64>,
    ) -> Self {
        Writer {
            conn,
            rx,
            seq,
            published,
        }
    }

    pub(super) fn spawn(self) -> std::io::Result<std::thread::JoinHandle<()>> {
        std::thread::Builder::new()
            .name("shroud-sqlite-writer".into())
            .spawn(move || self.run())
    }

    fn run(mut self) {
        let mut carry: Option<Request> = None;
        loop {
            let first = match carry.take() {
                Some(r) => r,
                None => match self.rx.recv() {
                    Ok(r) => r,
                    // Every sender is gone: the storage was dropped.
                    Err(mpsc::RecvError) => return,
                },
            };
            if matches!(first, Request::Shutdown) {
                return;
            }
            let mut bytes = first.size();
            let mut group = vec![first];
            let mut shutdown = false;
            while group.len() < MAX_GROUP_REQUESTS && bytes < MAX_GROUP_BYTES {
                match self.rx.try_recv() {
                    Ok(Request::Shutdown) => {
                        shutdown = true;
                        break;
                    }
                    Ok(r) => {
                        let size = r.size();
                        if bytes + size > MAX_GROUP_BYTES {
                            carry = Some(r);
                            break;
                        }
                        bytes += size;
                        group.push(r);
                    }
                    Err(_) => break,
                }
            }
            self.commit_group(group);
            if shutdown {
                // Returning drops the receiver: requests still queued lose their reply
                // sender and their callers get `Closed`.
                return;
            }
        }
    }

    /// Applies and commits one group, then answers every request in it.
    fn commit_group(&mut self, group: Vec<Request>) {
        match self.apply_group(&group) {
            Ok((outcomes, seq)) => {
                self.seq = seq;
                // Published before any reply, so an acknowledged writer sees its own write in
                // `sequence()`.
                self.published.store(seq, Ordering::Release);
                for (request, outcome) in group.into_iter().zip(outcomes) {
                    reply(request, outcome);
                }
            }
            Err(e) => {
                tracing::error!(error = %e, requests = group.len(), "sqlite group commit failed");
                if !self.conn.is_autocommit() {
                    // COMMIT can fail and leave the transaction open (e.g. SQLITE_BUSY); end it
                    // so the next group starts clean. Nothing of this group is acknowledged.
                    if let Err(e) = self.conn.execute_batch("ROLLBACK") {
                        tracing::error!(error = %e, "sqlite rollback after failed commit failed");
                    }
                }
                self.reload_sequence();
                let shared = Arc::new(e);
                for request in group {
                    reply(request, Err(shared_error(&shared)));
                }
            }
        }
    }

    /// After an unclear failure (an I/O error during COMMIT may or may not have persisted it),
    /// trust the file: the sequence must never go backwards, also across restarts.
    fn reload_sequence(&mut self) {
        let stored: rusqlite::Result<Option<i64>> = self
            .conn
            .query_row("SELECT seq FROM meta WHERE id = 0", [], |r| r.get(0))
            .optional();
        if let Ok(Some(stored)) = stored {
            if let Ok(stored) = u64::try_from(stored) {
                self.seq = self.seq.max(stored);
                self.published.store(self.seq, Ordering::Release);
            }
        }
    }

    /// Runs the group's transaction. Returns each request's outcome (`Ok(changed)` or its own
    /// error) and the new sequence, or the error that aborted the whole group (then no request
    /// in it took effect).
    #[allow(clippy::type_complexity)]
    fn apply_group(
        &mut self,
        group: &[Request],
    ) -> rusqlite::Result<(Vec<Result<bool, StorageError>>, u64)> {
        let conn = &self.conn;
        exec(conn, "BEGIN IMMEDIATE")?;
        let mut seq = self.seq;
        let mut outcomes = Vec::with_capacity(group.len());
        for request in group {
            let result = match request {
                Request::Batch { ops, .. } => apply_batch(conn, ops).map(|()| true),
                Request::Cas {
                    key, expected, new, ..
                } => apply_cas(conn, key, expected.as_deref(), new.as_deref())
                    .map_err(Failure::Request),
                Request::Shutdown => Ok(false),
            };
            match result {
                Ok(changed) => {
                    // One step per successful mutating request, not per group: watchers count
                    // changes, and a failed CAS is not one.
                    if changed {
                        seq += 1;
                    }
                    outcomes.push(Ok(changed));
                }
                // Some errors (SQLITE_FULL, SQLITE_IOERR, ...) roll back the whole transaction;
                // then the requests before this one are gone too, and continuing would run the
                // rest in autocommit mode.
                Err(Failure::Request(e)) if !conn.is_autocommit() => {
                    outcomes.push(Err(map_err(e)));
                }
                Err(Failure::Request(e) | Failure::Group(e)) => return Err(e),
            }
        }
        if seq != self.seq {
            // Stored in the same transaction as the changes it counts. (`u64` binds fallibly;
            // the sequence cannot realistically pass `i64::MAX`.)
            conn.prepare_cached("UPDATE meta SET seq = ?1 WHERE id = 0")?
                .execute([seq])?;
        }
        exec(conn, "COMMIT")?;
        Ok((outcomes, seq))
    }
}

fn exec(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(|_| ())
}

/// How a request failed.
enum Failure {
    /// Only this request failed and none of it took effect; the transaction goes on.
    Request(rusqlite::Error),
    /// The transaction can no longer be trusted; the whole group must fail.
    Group(rusqlite::Error),
}

/// Applies a batch atomically within the group's transaction. A multi-op batch runs inside a
/// savepoint so a failure part-way leaves none of its ops applied; a single statement is
/// already atomic on its own (SQLite undoes a failed statement).
fn apply_batch(conn: &Connection, ops: &[Op]) -> Result<(), Failure> {
    if let [op] = ops {
        return apply_op(conn, op).map_err(Failure::Request);
    }
    exec(conn, "SAVEPOINT request").map_err(Failure::Group)?;
    match ops.iter().try_for_each(|op| apply_op(conn, op)) {
        // If RELEASE failed, the batch would stay applied while being reported as failed.
        Ok(()) => exec(conn, "RELEASE request").map_err(Failure::Group),
        Err(e) => {
            let undone = !conn.is_autocommit()
                && exec(conn, "ROLLBACK TO request")
                    .and_then(|()| exec(conn, "RELEASE request"))
                    .is_ok();
            // If the batch could not be undone, committing the group would commit half of it.
            Err(if undone {
                Failure::Request(e)
            } else {
                Failure::Group(e)
            })
        }
    }
}

fn apply_op(conn: &Connection, op: &Op) -> rusqlite::Result<()> {
    match op {
        Op::Put(k, v) => put(conn, k, v),
        Op::Delete(k) => delete(conn, k),
    }
}

fn put(conn: &Connection, key: &str, value: &[u8]) -> rusqlite::Result<()> {
    conn.prepare_cached("INSERT OR REPLACE INTO entries (key, value) VALUES (?1, ?2)")?
        .execute(params![key, value])
        .map(|_| ())
}

fn delete(conn: &Connection, key: &str) -> rusqlite::Result<()> {
    conn.prepare_cached("DELETE FROM entries WHERE key = ?1")?
        .execute([key])
        .map(|_| ())
}

/// Evaluated inside the group's transaction, so it sees every earlier request of the group.
fn apply_cas(
    conn: &Connection,
    key: &str,
    expected: Option<&[u8]>,
    new: Option<&[u8]>,
) -> rusqlite::Result<bool> {
    let current: Option<Vec<u8>> = conn
        .prepare_cached("SELECT value FROM entries WHERE key = ?1")?
        .query_row([key], |r| r.get(0))
        .optional()?;
    if current.as_deref() != expected {
        return Ok(false);
    }
    match new {
        Some(v) => put(conn, key, v)?,
        None => delete(conn, key)?,
    }
    Ok(true)
}

/// One group error for many callers (`rusqlite::Error` is not `Clone`).
fn shared_error(e: &Arc<rusqlite::Error>) -> StorageError {
    if super::is_corruption(e) {
        StorageError::Corrupt(e.to_string())
    } else {
        StorageError::Io(Box::new(Arc::clone(e)))
    }
}

fn reply(request: Request, outcome: Result<bool, StorageError>) {
    // A send error means the caller stopped waiting (its future was dropped); the write
    // stands either way.
    match request {
        Request::Batch { reply, .. } => {
            let _ = reply.send(outcome.map(|_| ()));
        }
        Request::Cas { reply, .. } => {
            let _ = reply.send(outcome);
        }
        Request::Shutdown => {}
    }
}
