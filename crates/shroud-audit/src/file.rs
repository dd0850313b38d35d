//! The file audit device: one JSON line per request and per response, hash-chained.
//!
//! Chain invariant: every line ends with `"prev_hash":"sha256:<hex>"`, the SHA-256 of the
//! previous line's exact bytes without its newline (SHA-256 of the empty string for the first
//! line of a file). The running hash and the file sit under one mutex, and each line goes to
//! the kernel in one `write_all` on an `O_APPEND` descriptor, so lines never interleave and
//! the chain always describes the file as written.
//!
//! Fail closed: `log` returns only after the line reached the kernel (no fsync, as in Vault);
//! any error is returned, and the server must then fail the request.

use crate::entry::{encode, Entry};
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
use std::sync::{Mutex, MutexGuard};

/// Capacity kept in a thread's line buffer between entries; one huge entry does not pin its
/// memory forever.
const KEEP_BUFFER: usize = 1024 * 1024;

thread_local! {
    /// Reused per thread so that encoding (the expensive part) runs outside the device lock
    /// without allocating a buffer per entry.
    static LINE: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

struct Chain {
    file: File,
    /// SHA-256 of the last line written (without its newline).
    prev: [u8; 32],
    /// A regular file (can be measured and truncated), as opposed to a device or FIFO.
    regular: bool,
    /// A write failed partway and the partial line could not be cut off.
    broken: bool,
}

/// An audit device writing to a file. `Send + Sync`; share it behind an `Arc`.
pub struct FileDevice {
    path: PathBuf,
    salt: Salt,
    chain: Mutex<Chain>,
}

impl fmt::Debug for FileDevice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileDevice")
            .field("path", &self.path)
            .finish_non_exhaustive()
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
        let chain = open_chain(path)?;
        Ok(FileDevice {
            path: path.to_owned(),
            salt,
            chain: Mutex::new(chain),
        })
    }

    /// Reopens the file at the same path, for log rotation: after the old file was moved
    /// away, a new one is created and its chain starts afresh.
    pub fn reopen(&self) -> Result<(), AuditError> {
        let fresh = open_chain(&self.path)?;
        *self.lock()? = fresh;
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
        self.log_pair(entry, None)
    }

    /// Writes `first` and then `second` (if any) as consecutive lines with one write: both
    /// are recorded, or (on error) neither is. The server uses it for a read's request and
    /// response, which halves the writes on the hot path without weakening fail-closed: the
    /// response is released only after both lines reached the kernel.
    pub fn log_pair(
        &self,
        first: &Entry<'_>,
        second: Option<&Entry<'_>>,
    ) -> Result<(), AuditError> {
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
            let result = self.encode_and_write(buf, first, second, now);
            if buf.capacity() > KEEP_BUFFER {
                *buf = Vec::new();
            }
            result
        })
    }

    fn encode_and_write(
        &self,
        buf: &mut Vec<u8>,
        first: &Entry<'_>,
        second: Option<&Entry<'_>>,
        now: time::OffsetDateTime,
    ) -> Result<(), AuditError> {
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
        encode(buf, first, &self.salt, stamp)?;
        let first_end = buf.len();
        let mut first_hash = Sha256::new();
        first_hash.update(&buf[..first_end]);
        let mut second_body = Vec::new();
        let second_hash = match second {
            Some(e) => {
                encode(&mut second_body, e, &self.salt, stamp)?;
                let mut h = Sha256::new();
                h.update(&second_body);
                Some(h)
            }
            None => None,
        };

        let mut chain = self.lock()?;
        if chain.broken {
            return Err(AuditError::Broken {
                path: self.path.clone(),
            });
        }
        let mut last = finish_line(buf, first_end, first_hash, &chain.prev);
        if let Some(h) = second_hash {
            buf.extend_from_slice(&second_body);
            let end = buf.len();
            last = finish_line(buf, end, h, &last);
        }
        self.write_line(&mut chain, buf)?;
        chain.prev = last;
        Ok(())
    }

    /// Writes the whole buffer (normally one syscall). On failure, the part already written is
    /// cut off again (the file is measured only then, so the hot path costs one syscall), so
    /// the file and the chain stay consistent; if that fails too, the device stops writing.
    fn write_line(&self, chain: &mut Chain, line: &[u8]) -> Result<(), AuditError> {
        let mut written = 0;
        while written < line.len() {
            match chain.file.write(&line[written..]) {
                Ok(0) => {
                    let e = io::Error::new(io::ErrorKind::WriteZero, "the file accepted no bytes");
                    return Err(self.rollback(chain, written, e));
                }
                Ok(n) => written += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.rollback(chain, written, e)),
            }
        }
        Ok(())
    }

    fn rollback(&self, chain: &mut Chain, written: usize, e: io::Error) -> AuditError {
        if written > 0 {
            let cut = chain.regular
                && chain
                    .file
                    .metadata()
                    .and_then(|m| chain.file.set_len(m.len().saturating_sub(written as u64)))
                    .is_ok();
            if !cut {
                chain.broken = true;
            }
        }
        self.io("write", e)
    }

    fn lock(&self) -> Result<MutexGuard<'_, Chain>, AuditError> {
        // A panic while holding the lock could have left a partial line; refuse to guess.
        self.chain.lock().map_err(|_| AuditError::Broken {
            path: self.path.clone(),
        })
    }

    fn io(&self, op: &'static str, source: io::Error) -> AuditError {
        AuditError::Io {
            path: self.path.clone(),
            op,
            source,
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

fn open_chain(path: &Path) -> Result<Chain, AuditError> {
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
    Ok(Chain {
        file,
        prev,
        regular,
        broken: false,
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
