//! Checking an audit file's hash chain (`shroud audit verify`).
//!
//! What the chain proves: no line was changed, inserted or removed *before* the last line,
//! and lines were not reordered. What it cannot prove: that lines were not cut off at the end
//! (a truncated file is a valid shorter chain) or that a whole file was not replaced. Ship the
//! log off the host, or record the last hash elsewhere, to cover those.

use crate::error::AuditError;
use sha2::{Digest, Sha256};
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

/// Longest line `verify_file` reads before reporting the line as broken.
pub const MAX_LINE_BYTES: u64 = 256 * 1024 * 1024;

/// The result of [`verify_file`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VerifyReport {
    /// Every line is valid JSON and links to the line before it.
    Ok {
        /// Number of lines checked.
        lines: u64,
    },
    /// The first line that breaks the chain.
    Broken {
        /// 1-based line number.
        line: u64,
        /// What is wrong with it.
        reason: String,
    },
}

#[derive(serde::Deserialize)]
struct Link<'a> {
    #[serde(borrow)]
    prev_hash: Option<std::borrow::Cow<'a, str>>,
}

/// Recomputes the hash chain of the audit file at `path` and reports the first line (1-based)
/// whose `prev_hash` does not match the SHA-256 of the line before it, that is not a JSON
/// object, or that is an incomplete final line. I/O errors are errors, not reports.
pub fn verify_file(path: &Path) -> Result<VerifyReport, AuditError> {
    let io = |op: &'static str| {
        move |source| AuditError::Io {
            path: path.to_owned(),
            op,
            source,
        }
    };
    let mut reader = BufReader::with_capacity(64 * 1024, File::open(path).map_err(io("open"))?);
    let mut prev: [u8; 32] = Sha256::digest(b"").into();
    let mut expected = String::with_capacity(71);
    let mut buf = Vec::new();
    let mut line_no: u64 = 0;
    loop {
        buf.clear();
        let n = (&mut reader)
            .take(MAX_LINE_BYTES + 1)
            .read_until(b'\n', &mut buf)
            .map_err(io("read"))?;
        if n == 0 {
            return Ok(VerifyReport::Ok { lines: line_no });
        }
        line_no += 1;
        let broken = |reason: &str| {
            Ok(VerifyReport::Broken {
                line: line_no,
                reason: reason.to_owned(),
            })
        };
        if buf.last() != Some(&b'\n') {
            if buf.len() as u64 > MAX_LINE_BYTES {
                return broken("line is longer than the verifier's limit");
            }
            return broken("incomplete final line (no newline)");
        }
        let line = &buf[..buf.len() - 1];
        if line.first() != Some(&b'{') {
            return broken("not a JSON object");
        }
        let link: Link<'_> = match serde_json::from_slice(line) {
            Ok(l) => l,
            Err(_) => return broken("not valid JSON"),
        };
        let Some(found) = link.prev_hash else {
            return broken("no prev_hash field");
        };
        expected.clear();
        expected.push_str("sha256:");
        expected.push_str(&hex::encode(prev));
        if found != expected {
            return if line_no == 1 {
                broken("prev_hash is not that of an empty file: the file does not start a chain")
            } else {
                broken("prev_hash does not match the previous line: a line was changed, removed or inserted")
            };
        }
        prev = Sha256::digest(line).into();
    }
}
