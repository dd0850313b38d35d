//! The file audit device: one JSON line per request and per response, hash-chained.
//!
//! Chain invariant: every line ends with `"prev_hash":"sha256:<hex>"`, the SHA-256 of the
//! previous line's exact bytes without its newline (SHA-256 of the empty string for the first
//! line of a file). The file always holds a prefix of the chain: lines are chained in the
//! order they are appended and written in that order, each batch with one `write` on an
//! `O_APPEND` descriptor, so lines never interleave.
//!
//! Group commit: recording is split in two. [`FileDevice::append`] encodes the lines (outside
//! any lock), then chains them onto the pending batch under a short lock. [`Pending::commit`]
//! (or [`Pending::try_commit`]) returns once the batch holding them reached the kernel: the
//! first committer takes the whole pending batch and writes it with one syscall, and every
//! other line in it is then recorded too, so its owner returns at once. A server that appends
//! and lets its other ready requests run before committing pays one write for many requests.
//!
//! Fail closed: a commit returns Ok only after the line reached the kernel (no fsync, as in
//! Vault); any error is returned, and the server must then fail the request. A failed write
//! fails its batch and every line chained after it (they would chain onto lines that are not in
//! the file); the chain then continues from the last line written.

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

/// Capacity kept in a thread's line buffer, and in the pending batch, between uses; one huge
/// entry does not pin its memory forever.
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

/// The chain's in-memory end, under a lock held only to chain and copy lines.
struct Chain {
    /// Lines chained but not yet taken by a writer.
    pending: Vec<u8>,
    /// The batch `pending` belongs to.
    batch: Arc<Batch>,
    /// SHA-256 of the last line chained (without its newline).
    prev: [u8; 32],
    /// SHA-256 of the last line known to be in the file: where the chain resumes after a
    /// failed write.
    written: [u8; 32],
}

/// The file, under a lock held by the one thread writing a batch.
struct Sink {
    file: File,
    /// A regular file (can be measured and truncated), as opposed to a device or FIFO.
    regular: bool,
}

/// An audit device writing to a file. `Send + Sync`; share it behind an `Arc`.
pub struct FileDevice {
    path: PathBuf,
    salt: Salt,
    /// Lock order: `sink` before `chain`.
    sink: Mutex<Sink>,
    chain: Mutex<Chain>,
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

/// Lines chained onto a device, not yet known to be written. Commit before releasing what they
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
        let (sink, prev) = open_sink(path)?;
        Ok(FileDevice {
            path: path.to_owned(),
            salt,
            sink: Mutex::new(sink),
            chain: Mutex::new(Chain {
                pending: Vec::new(),
                batch: Arc::default(),
                prev,
                written: prev,
            }),
            broken: AtomicBool::new(false),
            #[cfg(test)]
            before_write: Mutex::new(None),
        })
    }

    /// Reopens the file at the same path, for log rotation: lines still pending go to the old
    /// file first; then a new file is created (or the existing one continued) and its chain
    /// starts afresh. Also clears a broken device.
    pub fn reopen(&self) -> Result<(), AuditError> {
        let mut sink = self.lock_sink()?;
        let mut chain = self.lock_chain()?;
        if !chain.pending.is_empty() && !self.broken.load(Ordering::Acquire) {
            let pending = std::mem::take(&mut chain.pending);
            let batch = std::mem::take(&mut chain.batch);
            let outcome = self.write_all(&mut sink, &pending).err();
            batch.finish(outcome.map(|e| (e.kind(), e.to_string())));
        } else {
            // Broken: these lines can never be written in order; fail them.
            let batch = std::mem::take(&mut chain.batch);
            chain.pending.clear();
            batch.finish(Some((
                io::ErrorKind::Other,
                "the audit file was reopened".into(),
            )));
        }
        let (fresh, prev) = open_sink(&self.path)?;
        *sink = fresh;
        chain.prev = prev;
        chain.written = prev;
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

    /// Encodes `first` and `second` (if any) and chains them onto the pending batch, as
    /// consecutive lines. They are recorded once a commit of the returned [`Pending`] (or of
    /// any later one on this device) returned Ok; both or neither.
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
            let result = self.encode_and_chain(buf, first, second, now);
            if buf.capacity() > KEEP_BUFFER {
                *buf = Vec::new();
            }
            result
        })
    }

    fn encode_and_chain(
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
        // Encode and hash the bodies outside the lock; only the short `prev_hash` suffixes
        // are added and hashed under it.
        let first_end = encode_lines(buf, first, second, &self.salt, stamp)?;
        let mut first_hash = Sha256::new();
        first_hash.update(&buf[..first_end]);
        let second_hash = second.map(|_| {
            let mut h = Sha256::new();
            h.update(&buf[first_end..]);
            h
        });

        let mut chain = self.lock_chain()?;
        let chain = &mut *chain;
        let out = &mut chain.pending;
        out.extend_from_slice(&buf[..first_end]);
        let end = out.len();
        let mut last = finish_line(out, end, first_hash, &chain.prev);
        if let Some(h) = second_hash {
            out.extend_from_slice(&buf[first_end..]);
            let end = out.len();
            last = finish_line(out, end, h, &last);
        }
        chain.prev = last;
        Ok(Pending {
            device: self,
            batch: chain.batch.clone(),
        })
    }

    /// Writes the pending batch, if `mine` is still in it. Call with the file locked.
    fn write_batch(&self, sink: &mut Sink, mine: &Batch) -> Result<(), AuditError> {
        if let Some(done) = mine.outcome.get() {
            return self.outcome(done);
        }
        if self.broken.load(Ordering::Acquire) {
            return Err(self.broken_error());
        }
        // Not written, and batches are written in order by whoever holds the file: `mine` is
        // the pending batch.
        let (mut lines, batch, last) = {
            let mut chain = self.lock_chain()?;
            let lines = std::mem::take(&mut chain.pending);
            let batch = std::mem::take(&mut chain.batch);
            (lines, batch, chain.prev)
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
            None => self.write_all(sink, &lines),
        };
        let mut chain = self.lock_chain()?;
        match result {
            Ok(()) => {
                chain.written = last;
                batch.finish(None);
            }
            Err(e) => {
                // Lines chained since the batch was taken follow lines that are not in the
                // file: fail them too, and resume the chain at the file's last line.
                let later = std::mem::take(&mut chain.batch);
                chain.pending.clear();
                chain.prev = chain.written;
                let outcome = (e.kind(), e.to_string());
                later.finish(Some(outcome.clone()));
                batch.finish(Some(outcome));
            }
        }
        // Hand the buffer back for the next batch, unless it grew huge.
        if chain.pending.is_empty() && lines.capacity() <= KEEP_BUFFER {
            lines.clear();
            chain.pending = lines;
        }
        drop(chain);
        match mine.outcome.get() {
            Some(done) => self.outcome(done),
            // Unreachable: `mine` was the batch just finished. Never report success unseen.
            None => Err(self.broken_error()),
        }
    }

    /// Writes the whole buffer (normally one syscall). On failure, the part already written is
    /// cut off again (the file is measured only then, so the hot path costs one syscall), so
    /// the file stays a prefix of the chain; if that fails too, the device stops writing.
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

    fn lock_chain(&self) -> Result<MutexGuard<'_, Chain>, AuditError> {
        // A panic while holding a lock could have left a partial line; refuse to guess.
        self.chain.lock().map_err(|_| self.broken_error())
    }

    fn lock_sink(&self) -> Result<MutexGuard<'_, Sink>, AuditError> {
        self.sink.lock().map_err(|_| self.broken_error())
    }
}

impl Pending<'_> {
    /// Blocks until the lines are written (writing them, and everything pending before and
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
        if let (Ok(sink), Ok(chain)) = (self.sink.get_mut(), self.chain.get_mut()) {
            if !chain.pending.is_empty() && !self.broken.load(Ordering::Acquire) {
                let _ = sink.file.write_all(&chain.pending);
            }
        }
    }
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

fn open_sink(path: &Path) -> Result<(Sink, [u8; 32]), AuditError> {
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
    Ok((Sink { file, regular }, prev))
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
    fn a_failed_write_fails_later_lines_and_the_chain_resumes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let dev = device(&path);
        dev.log(&entry("before")).unwrap();
        let failing = dev.append(&entry("lost"), None).unwrap();
        let later: Arc<Mutex<Option<bool>>> = Arc::default();
        let seen = later.clone();
        *dev.before_write.lock().unwrap() = Some(Box::new(move |dev: &FileDevice| {
            // Chained onto the batch being written, which is about to fail.
            let p = dev.append(&entry("after"), None).unwrap();
            *seen.lock().unwrap() = Some(p.batch.outcome.get().is_some());
            drop(p);
            Some(io::Error::other("disk on fire"))
        }));
        let err = failing.commit().unwrap_err();
        assert!(matches!(err, AuditError::Io { op: "write", .. }), "{err:?}");
        assert_eq!(*later.lock().unwrap(), Some(false));
        // Nothing of the failed batch, nor of what chained after it, reaches the file, and
        // the next line chains onto the last line written.
        dev.log(&entry("next")).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            !text.contains("\"lost\"") && !text.contains("\"after\""),
            "{text}"
        );
        assert_eq!(verify_file(&path).unwrap(), VerifyReport::Ok { lines: 2 });
    }

    #[test]
    fn lines_chained_after_a_failed_batch_report_the_failure() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let dev = device(&path);
        let slot: Arc<Mutex<Vec<Arc<Batch>>>> = Arc::default();
        let keep = slot.clone();
        *dev.before_write.lock().unwrap() = Some(Box::new(move |dev: &FileDevice| {
            let p = dev.append(&entry("after"), None).unwrap();
            keep.lock().unwrap().push(p.batch.clone());
            Some(io::Error::other("disk on fire"))
        }));
        assert!(dev.log(&entry("lost")).is_err());
        let later = slot.lock().unwrap().pop().unwrap();
        assert!(
            matches!(later.outcome.get(), Some(Some(_))),
            "the later batch failed too"
        );
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
