//! The file audit device: one JSON line per request and per response, hash-chained.
//!
//! Chain invariant: every line ends with `"prev_hash":"sha256:<hex>"`, the SHA-256 of the
//! previous line's exact bytes without its newline (SHA-256 of the empty string for the first
//! line of a file). Lines are chained by the writer, at the moment they are written, onto the
//! last line in the file, and each batch goes to the kernel with one `write` on an `O_APPEND`
//! descriptor: the file always holds a whole, unbroken chain.
//!
//! Group commit: recording is split in two. [`FileDevice::append`] encodes the lines and
//! hashes their bodies (outside any lock), then queues them under a lock held only to copy
//! them. [`Pending::commit`] (or [`Pending::try_commit`]) returns once the batch holding them
//! reached the kernel: the first committer takes everything queued, chains it and writes it
//! with one syscall, and every other line in it is then recorded too, so its owner returns at
//! once. A server that appends and lets its other ready requests run before committing pays
//! one write for many requests.
//!
//! Fail closed: a commit returns Ok only after the line reached the kernel (no fsync, as in
//! Vault); any error is returned, and the server must then fail the request. A failed write
//! fails its batch only; the next batch chains onto the last line that is in the file.

use crate::entry::{encode_lines, Entry};
use crate::error::AuditError;
use crate::salt::Salt;
use sha2::{Digest, Sha256};
use shroud_core::SecretBytes;
use std::cell::RefCell;
use std::fmt;
use std::fs::{File, OpenOptions, Permissions};
use std::io::{self, Write};
use std::os::unix::fs::{FileExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, TryLockError};

/// Capacity kept in a reused buffer between uses; one huge entry does not pin its memory
/// forever.
const KEEP_BUFFER: usize = 1024 * 1024;

thread_local! {
    /// Reused per thread so that encoding (the expensive part) runs outside the device lock
    /// without allocating a buffer per entry.
    static LINE: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// How a batch ended, shared by every line in it.
#[derive(Default)]
struct Batch {
    /// `None` if written; the error otherwise. Set once, by the writer that took the batch.
    outcome: OnceLock<Option<(io::ErrorKind, String)>>,
}

impl Batch {
    fn finish(&self, outcome: Option<(io::ErrorKind, String)>) {
        // Set exactly once, by the one writer holding the file: cannot be set already.
        let _ = self.outcome.set(outcome);
    }
}

/// Lines appended and not yet taken by a writer.
#[derive(Default)]
struct Lines {
    /// Line bodies, back to back, each without its `prev_hash` suffix and newline.
    bodies: Vec<u8>,
    /// Per line: where its body ends in `bodies`, and the SHA-256 state over the body.
    ends: Vec<(usize, Sha256)>,
}

impl Lines {
    fn clear(&mut self) {
        self.bodies.clear();
        self.ends.clear();
    }
    fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }
}

/// The queue, under a lock held only to copy lines in or swap them out.
struct Queue {
    lines: Lines,
    /// The batch `lines` belongs to.
    batch: Arc<Batch>,
    /// Buffers of the last batch written, kept so that a busy device does not reallocate.
    spare: Lines,
}

/// The file and the chain's end, under a lock held by the one thread writing a batch.
struct Sink {
    file: File,
    /// A regular file (can be measured and truncated), as opposed to a device or FIFO.
    regular: bool,
    /// SHA-256 of the last line in the file (without its newline).
    prev: [u8; 32],
    /// The chained batch, reused between writes.
    out: Vec<u8>,
}

/// An audit device writing to a file. `Send + Sync`; share it behind an `Arc`.
pub struct FileDevice {
    path: PathBuf,
    salt: Salt,
    /// Lock order: `sink` before `queue`.
    sink: Mutex<Sink>,
    queue: Mutex<Queue>,
    /// A write failed partway and the partial data could not be cut off: the file no longer
    /// ends with a whole line, so nothing more is written until the device is reopened.
    broken: AtomicBool,
    /// Tests: runs between taking a batch and writing it; an error it returns replaces the
    /// write's outcome.
    #[cfg(test)]
    before_write: Mutex<Option<BeforeWrite>>,
}

#[cfg(test)]
type BeforeWrite = Box<dyn FnOnce(&FileDevice) -> Option<io::Error> + Send>;

/// Lines queued on a device, not yet known to be written. Commit before releasing what they
/// record; dropping it uncommitted leaves the lines to the next commit on the device.
#[must_use = "the lines are recorded only once a commit returned Ok"]
pub struct Pending<'a> {
    device: &'a FileDevice,
    batch: Arc<Batch>,
}

impl fmt::Debug for FileDevice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileDevice")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for Pending<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pending")
            .field("path", &self.device.path)
            .field("done", &self.batch.outcome.get().is_some())
            .finish()
    }
}

impl FileDevice {
    /// Opens (creating it with mode 0600, appending) the audit file at `path`. An existing
    /// regular file readable by group or others is narrowed to 0600. If the file already has
    /// lines, the chain continues from its last line; a file whose last line is incomplete is
    /// refused ([`AuditError::Corrupt`]). `salt` is the device's HMAC key (at least
    /// [`crate::MIN_SALT_LEN`] bytes).
    pub fn open(path: &Path, salt: SecretBytes) -> Result<FileDevice, AuditError> {
        let salt = Salt::new(&salt)?;
        let sink = open_sink(path)?;
        Ok(FileDevice {
            path: path.to_owned(),
            salt,
            sink: Mutex::new(sink),
            queue: Mutex::new(Queue {
                lines: Lines::default(),
                batch: Arc::default(),
                spare: Lines::default(),
            }),
            broken: AtomicBool::new(false),
            #[cfg(test)]
            before_write: Mutex::new(None),
        })
    }

    /// Reopens the file at the same path, for log rotation: lines still queued go to the old
    /// file first; then a new file is created (or the existing one continued) and its chain
    /// starts afresh. Also clears a broken device.
    pub fn reopen(&self) -> Result<(), AuditError> {
        let mut sink = self.lock_sink()?;
        let (lines, batch) = {
            let mut queue = self.lock_queue()?;
            let lines = std::mem::take(&mut queue.lines);
            (lines, std::mem::take(&mut queue.batch))
        };
        if !lines.is_empty() {
            let outcome = if self.broken.load(Ordering::Acquire) {
                Err(io::Error::other(
                    "the audit file was broken and is being reopened",
                ))
            } else {
                self.chain_and_write(&mut sink, &lines)
            };
            batch.finish(outcome.err().map(|e| (e.kind(), e.to_string())));
        }
        *sink = open_sink(&self.path)?;
        self.broken.store(false, Ordering::Release);
        Ok(())
    }

    /// `hmac-sha256:<hex>` of `input` under this device's salt: what `sys/audit-hash`
    /// returns, and what the log holds in place of that value.
    pub fn hash(&self, input: &str) -> String {
        self.salt.hash(input).as_str().to_owned()
    }

    /// The audit file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes one entry as one line. An error means the entry was not recorded: fail closed.
    pub fn log(&self, entry: &Entry<'_>) -> Result<(), AuditError> {
        self.append(entry, None)?.commit()
    }

    /// Writes `first` and then `second` (if any) as consecutive lines in the same batch: both
    /// are recorded, or (on error) neither is. The server uses it for a read's request and
    /// response, which halves the work on the hot path without weakening fail-closed: the
    /// response is released only after both lines reached the kernel.
    pub fn log_pair(
        &self,
        first: &Entry<'_>,
        second: Option<&Entry<'_>>,
    ) -> Result<(), AuditError> {
        self.append(first, second)?.commit()
    }

    /// Encodes `first` and `second` (if any) and queues them as consecutive lines. They are
    /// recorded once a commit of the returned [`Pending`] (or of any later one on this device)
    /// returned Ok; both or neither.
    pub fn append(
        &self,
        first: &Entry<'_>,
        second: Option<&Entry<'_>>,
    ) -> Result<Pending<'_>, AuditError> {
        if self.broken.load(Ordering::Acquire) {
            return Err(self.broken_error());
        }
        let now = time::OffsetDateTime::now_utc();
        LINE.with(|cell| {
            // A re-entrant call on the same thread (impossible today) gets a fresh buffer
            // rather than a panic.
            let mut owned;
            let mut borrowed = cell.try_borrow_mut().ok();
            let buf: &mut Vec<u8> = match borrowed.as_deref_mut() {
                Some(b) => b,
                None => {
                    owned = Vec::new();
                    &mut owned
                }
            };
            buf.clear();
            let result = self.encode_and_queue(buf, first, second, now);
            if buf.capacity() > KEEP_BUFFER {
                *buf = Vec::new();
            }
            result
        })
    }

    fn encode_and_queue(
        &self,
        buf: &mut Vec<u8>,
        first: &Entry<'_>,
        second: Option<&Entry<'_>>,
        now: time::OffsetDateTime,
    ) -> Result<Pending<'_>, AuditError> {
        // RFC 3339 with nanoseconds (trailing zeros trimmed, like Go's RFC3339Nano), UTC.
        let mut stamp = [0u8; 64];
        let n = {
            let mut w: &mut [u8] = &mut stamp;
            now.format_into(&mut w, &time::format_description::well_known::Rfc3339)
                .map_err(|e| AuditError::Encode(e.to_string()))?;
            // Measure what was written from the slice itself rather than trusting the
            // returned count, which `time` under-reports for some subsecond widths.
            64 - w.len()
        };
        let stamp = std::str::from_utf8(&stamp[..n])
            .map_err(|_| AuditError::Encode("timestamp is not UTF-8".to_owned()))?;
        // Encode and hash the bodies here, outside any lock; the writer adds and hashes only
        // the short `prev_hash` suffixes.
        let first_end = encode_lines(buf, first, second, &self.salt, stamp)?;
        let first_hash = Sha256::new_with_prefix(&buf[..first_end]);
        let second_hash = second.map(|_| Sha256::new_with_prefix(&buf[first_end..]));

        let mut queue = self.lock_queue()?;
        let queue = &mut *queue;
        let lines = &mut queue.lines;
        let base = lines.bodies.len();
        lines.bodies.extend_from_slice(buf);
        lines.ends.push((base + first_end, first_hash));
        if let Some(h) = second_hash {
            lines.ends.push((base + buf.len(), h));
        }
        Ok(Pending {
            device: self,
            batch: queue.batch.clone(),
        })
    }

    /// Writes the queued batch, if `mine` is still in it. Call with the file locked.
    fn write_batch(&self, sink: &mut Sink, mine: &Batch) -> Result<(), AuditError> {
        if let Some(done) = mine.outcome.get() {
            return self.outcome(done);
        }
        if self.broken.load(Ordering::Acquire) {
            return Err(self.broken_error());
        }
        // Not written, and batches are taken in order by whoever holds the file: `mine` is the
        // queued batch.
        let (mut lines, batch) = {
            let mut queue = self.lock_queue()?;
            let queue = &mut *queue;
            let spare = std::mem::take(&mut queue.spare);
            let lines = std::mem::replace(&mut queue.lines, spare);
            (lines, std::mem::take(&mut queue.batch))
        };
        #[cfg(test)]
        let injected = self
            .before_write
            .lock()
            .ok()
            .and_then(|mut h| h.take())
            .and_then(|h| h(self));
        #[cfg(not(test))]
        let injected: Option<io::Error> = None;
        let result = match injected {
            Some(e) => Err(e),
            None => self.chain_and_write(sink, &lines),
        };
        batch.finish(result.err().map(|e| (e.kind(), e.to_string())));
        // Hand the buffers back for a later batch, unless they grew huge.
        if lines.bodies.capacity() <= KEEP_BUFFER {
            lines.clear();
            if let Ok(mut queue) = self.queue.lock() {
                queue.spare = lines;
            }
        }
        match mine.outcome.get() {
            Some(done) => self.outcome(done),
            // Unreachable: `mine` was the batch just finished. Never report success unseen.
            None => Err(self.broken_error()),
        }
    }

    /// Chains `lines` onto the file's last line and writes them with one `write` (normally).
    /// The chain's end moves only if the write succeeded.
    fn chain_and_write(&self, sink: &mut Sink, lines: &Lines) -> io::Result<()> {
        let mut out = std::mem::take(&mut sink.out);
        let prev = chain_lines(&mut out, lines, sink.prev);
        let result = self.write_all(sink, &out);
        if result.is_ok() {
            sink.prev = prev;
        }
        if out.capacity() <= KEEP_BUFFER {
            sink.out = out;
        }
        result
    }

    /// Writes the whole buffer (normally one syscall). On failure, the part already written is
    /// cut off again (the file is measured only then, so the hot path costs one syscall), so
    /// the file stays a whole chain; if that fails too, the device stops writing.
    fn write_all(&self, sink: &mut Sink, data: &[u8]) -> io::Result<()> {
        let mut written = 0;
        while written < data.len() {
            match sink.file.write(&data[written..]) {
                Ok(0) => {
                    let e = io::Error::new(io::ErrorKind::WriteZero, "the file accepted no bytes");
                    return Err(self.rollback(sink, written, e));
                }
                Ok(n) => written += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.rollback(sink, written, e)),
            }
        }
        Ok(())
    }

    fn rollback(&self, sink: &mut Sink, written: usize, e: io::Error) -> io::Error {
        if written > 0 {
            let cut = sink.regular
                && sink
                    .file
                    .metadata()
                    .and_then(|m| sink.file.set_len(m.len().saturating_sub(written as u64)))
                    .is_ok();
            if !cut {
                self.broken.store(true, Ordering::Release);
            }
        }
        e
    }

    fn outcome(&self, done: &Option<(io::ErrorKind, String)>) -> Result<(), AuditError> {
        match done {
            None => Ok(()),
            Some((kind, msg)) => Err(AuditError::Io {
                path: self.path.clone(),
                op: "write",
                source: io::Error::new(*kind, msg.clone()),
            }),
        }
    }

    fn broken_error(&self) -> AuditError {
        AuditError::Broken {
            path: self.path.clone(),
        }
    }

    fn lock_queue(&self) -> Result<MutexGuard<'_, Queue>, AuditError> {
        // A panic while holding a lock could have left a partial line; refuse to guess.
        self.queue.lock().map_err(|_| self.broken_error())
    }

    fn lock_sink(&self) -> Result<MutexGuard<'_, Sink>, AuditError> {
        self.sink.lock().map_err(|_| self.broken_error())
    }
}

impl Pending<'_> {
    /// Blocks until the lines are written (writing them, and everything queued before and
    /// with them, if no one else is).
    pub fn commit(self) -> Result<(), AuditError> {
        if let Some(done) = self.batch.outcome.get() {
            return self.device.outcome(done);
        }
        let mut sink = self.device.lock_sink()?;
        self.device.write_batch(&mut sink, &self.batch)
    }

    /// Like [`Pending::commit`], but never waits for another writer: `None` means another
    /// thread is writing right now (perhaps these very lines); try again after letting other
    /// work run.
    pub fn try_commit(&self) -> Option<Result<(), AuditError>> {
        if let Some(done) = self.batch.outcome.get() {
            return Some(self.device.outcome(done));
        }
        let mut sink = match self.device.sink.try_lock() {
            Ok(s) => s,
            Err(TryLockError::WouldBlock) => return None,
            Err(TryLockError::Poisoned(_)) => return Some(Err(self.device.broken_error())),
        };
        Some(self.device.write_batch(&mut sink, &self.batch))
    }
}

impl Drop for FileDevice {
    /// Lines appended but never committed still belong in the file.
    fn drop(&mut self) {
        let broken = self.broken.load(Ordering::Acquire);
        if let (Ok(sink), Ok(queue)) = (self.sink.get_mut(), self.queue.get_mut()) {
            if !queue.lines.is_empty() && !broken {
                let mut out = Vec::new();
                chain_lines(&mut out, &queue.lines, sink.prev);
                let _ = sink.file.write_all(&out);
            }
        }
    }
}

/// Replaces `out` with `lines` chained onto `prev`; returns the hash of the last line.
fn chain_lines(out: &mut Vec<u8>, lines: &Lines, mut prev: [u8; 32]) -> [u8; 32] {
    out.clear();
    let mut start = 0;
    for (end, hasher) in &lines.ends {
        out.extend_from_slice(&lines.bodies[start..*end]);
        let body_end = out.len();
        prev = finish_line(out, body_end, hasher.clone(), &prev);
        start = *end;
    }
    prev
}

/// Appends the `prev_hash` suffix and the newline to an encoded body that ends at `body_end`;
/// returns the line's hash (over the line without its newline), the next line's `prev`.
fn finish_line(
    buf: &mut Vec<u8>,
    body_end: usize,
    mut hasher: Sha256,
    prev: &[u8; 32],
) -> [u8; 32] {
    buf.extend_from_slice(b",\"prev_hash\":\"sha256:");
    let mut hex = [0u8; 64];
    // 32 bytes into 64 hex digits: cannot fail.
    let _ = hex::encode_to_slice(prev, &mut hex);
    buf.extend_from_slice(&hex);
    buf.extend_from_slice(b"\"}");
    hasher.update(&buf[body_end..]);
    let hash: [u8; 32] = hasher.finalize().into();
    buf.push(b'\n');
    hash
}

fn open_sink(path: &Path) -> Result<Sink, AuditError> {
    let io = |op: &'static str| {
        move |source: io::Error| AuditError::Io {
            path: path.to_owned(),
            op,
            source,
        }
    };
    let file = OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .mode(0o600)
        .open(path)
        .map_err(io("open"))?;
    let meta = file.metadata().map_err(io("stat"))?;
    let regular = meta.is_file();
    let mut prev: [u8; 32] = Sha256::digest(b"").into();
    if regular {
        if meta.permissions().mode() & 0o077 != 0 {
            file.set_permissions(Permissions::from_mode(0o600))
                .map_err(io("chmod"))?;
        }
        if meta.len() > 0 {
            prev = last_line_hash(&file, meta.len())
                .map_err(io("read"))?
                .ok_or_else(|| AuditError::Corrupt {
                    path: path.to_owned(),
                    reason: "the last line is incomplete (no final newline); verify the file \
                             and move it aside"
                        .to_owned(),
                })?;
        }
    }
    Ok(Sink {
        file,
        regular,
        prev,
        out: Vec::new(),
    })
}

/// SHA-256 of the last line of a non-empty file (without its newline), or `None` if the file
/// does not end with a newline. Reads backwards in chunks, so a long file costs one line.
fn last_line_hash(file: &File, len: u64) -> io::Result<Option<[u8; 32]>> {
    const CHUNK: u64 = 64 * 1024;
    let mut last = [0u8; 1];
    file.read_exact_at(&mut last, len - 1)?;
    if last[0] != b'\n' {
        return Ok(None);
    }
    let end = len - 1;
    let mut start = 0;
    let mut pos = end;
    let mut chunk = vec![0u8; CHUNK as usize];
    while pos > 0 {
        let from = pos.saturating_sub(CHUNK);
        let n = (pos - from) as usize;
        file.read_exact_at(&mut chunk[..n], from)?;
        if let Some(i) = chunk[..n].iter().rposition(|&b| b == b'\n') {
            start = from + i as u64 + 1;
            break;
        }
        pos = from;
    }
    let mut hasher = Sha256::new();
    let mut at = start;
    while at < end {
        let n = (end - at).min(CHUNK) as usize;
        file.read_exact_at(&mut chunk[..n], at)?;
        hasher.update(&chunk[..n]);
        at += n as u64;
    }
    Ok(Some(hasher.finalize().into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::{verify_file, VerifyReport};
    use crate::EntryType;

    fn entry(id: &str) -> Entry<'_> {
        Entry {
            kind: EntryType::Request,
            request_id: id,
            operation: "read",
            path: "secret/data/a",
            client_token: Some("hvs.SECRET"),
            ..Entry::default()
        }
    }

    fn device(path: &Path) -> FileDevice {
        FileDevice::open(path, SecretBytes::from_slice(&[9; 32])).unwrap()
    }

    #[test]
    fn one_commit_writes_every_pending_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let dev = device(&path);
        let a = dev.append(&entry("a"), None).unwrap();
        let b = dev.append(&entry("b"), Some(&entry("b2"))).unwrap();
        let c = dev.append(&entry("c"), None).unwrap();
        c.commit().unwrap();
        // Written by c's commit: the others find their lines recorded without a write.
        assert_eq!(verify_file(&path).unwrap(), VerifyReport::Ok { lines: 4 });
        assert!(matches!(a.try_commit(), Some(Ok(()))));
        b.commit().unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let ids: Vec<_> = ["\"a\"", "\"b\"", "\"b2\"", "\"c\""]
            .iter()
            .map(|id| text.find(id).unwrap())
            .collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "lines in append order");
        assert_eq!(verify_file(&path).unwrap(), VerifyReport::Ok { lines: 4 });
    }

    #[test]
    fn try_commit_does_not_wait_for_another_writer() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let dev = device(&path);
        let p = dev.append(&entry("a"), None).unwrap();
        let held = dev.sink.lock().unwrap();
        assert!(p.try_commit().is_none());
        drop(held);
        assert!(matches!(p.try_commit(), Some(Ok(()))));
        assert_eq!(verify_file(&path).unwrap(), VerifyReport::Ok { lines: 1 });
    }

    #[test]
    fn a_failed_write_fails_its_batch_and_the_chain_resumes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let dev = device(&path);
        dev.log(&entry("before")).unwrap();
        let failing = dev.append(&entry("lost"), None).unwrap();
        let later: Arc<Mutex<Option<Arc<Batch>>>> = Arc::default();
        let keep = later.clone();
        *dev.before_write.lock().unwrap() = Some(Box::new(move |dev: &FileDevice| {
            // Queued while the batch holding "lost" is being written: a later batch.
            let p = dev.append(&entry("after"), None).unwrap();
            *keep.lock().unwrap() = Some(p.batch.clone());
            Some(io::Error::other("disk on fire"))
        }));
        let err = failing.commit().unwrap_err();
        assert!(matches!(err, AuditError::Io { op: "write", .. }), "{err:?}");
        assert!(err.to_string().contains("disk on fire"), "{err}");
        let after = later.lock().unwrap().take().unwrap();
        assert!(
            after.outcome.get().is_none(),
            "the later batch is untouched"
        );
        // The next commit writes the later batch, chained onto the last line in the file.
        dev.log(&entry("next")).unwrap();
        assert!(matches!(after.outcome.get(), Some(None)));
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains("\"lost\""), "{text}");
        assert!(
            text.contains("\"after\"") && text.contains("\"next\""),
            "{text}"
        );
        assert_eq!(verify_file(&path).unwrap(), VerifyReport::Ok { lines: 3 });
    }

    #[test]
    fn uncommitted_lines_are_written_by_the_next_commit_and_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let dev = device(&path);
        drop(dev.append(&entry("a"), None).unwrap());
        dev.log(&entry("b")).unwrap();
        assert_eq!(verify_file(&path).unwrap(), VerifyReport::Ok { lines: 2 });
        drop(dev.append(&entry("c"), None).unwrap());
        drop(dev);
        assert_eq!(verify_file(&path).unwrap(), VerifyReport::Ok { lines: 3 });
    }

    #[test]
    fn pending_lines_go_to_the_old_file_on_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let dev = device(&path);
        dev.log(&entry("a")).unwrap();
        let p = dev.append(&entry("b"), None).unwrap();
        let rotated = dir.path().join("audit.log.1");
        std::fs::rename(&path, &rotated).unwrap();
        dev.reopen().unwrap();
        assert!(matches!(p.try_commit(), Some(Ok(()))));
        dev.log(&entry("c")).unwrap();
        assert_eq!(
            verify_file(&rotated).unwrap(),
            VerifyReport::Ok { lines: 2 }
        );
        assert_eq!(verify_file(&path).unwrap(), VerifyReport::Ok { lines: 1 });
    }

    #[test]
    fn threads_mixing_commit_and_try_commit_keep_one_chain() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let dev = Arc::new(device(&path));
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let dev = dev.clone();
                std::thread::spawn(move || {
                    for i in 0..300 {
                        let id = format!("{t}-{i}");
                        let p = dev.append(&entry(&id), Some(&entry(&id))).unwrap();
                        if i % 2 == 0 {
                            p.commit().unwrap();
                        } else {
                            loop {
                                match p.try_commit() {
                                    Some(r) => break r.unwrap(),
                                    None => std::thread::yield_now(),
                                }
                            }
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(
            verify_file(&path).unwrap(),
            VerifyReport::Ok { lines: 2400 }
        );
    }
}
