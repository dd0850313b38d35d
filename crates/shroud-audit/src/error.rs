//! Errors of the audit devices. Any error from [`crate::FileDevice::log`] means the entry was
//! not recorded, and the server must fail the request (fail closed).

use std::io;
use std::path::PathBuf;

/// Why an audit operation failed. Messages carry paths and reasons, never logged values.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuditError {
    /// The HMAC salt is shorter than [`crate::MIN_SALT_LEN`] bytes.
    #[error("the audit salt must be at least {min} bytes")]
    SaltTooShort {
        /// The minimum length.
        min: usize,
    },

    /// A file system operation on the audit file failed.
    #[error("audit file {}: cannot {op}: {source}", path.display())]
    Io {
        /// The audit file.
        path: PathBuf,
        /// What was being done (`"open"`, `"write"`, ...).
        op: &'static str,
        /// The underlying error.
        #[source]
        source: io::Error,
    },

    /// The existing audit file does not end with a complete line, so the hash chain cannot be
    /// continued safely. Check it with `verify_file` and move it aside.
    #[error("audit file {}: {reason}", path.display())]
    Corrupt {
        /// The audit file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },

    /// An earlier write failed partway and the partial line could not be removed; the device
    /// refuses further writes until it is reopened.
    #[error("audit file {}: an earlier write failed partway; the device must be reopened", path.display())]
    Broken {
        /// The audit file.
        path: PathBuf,
    },

    /// A value in the entry nests deeper than [`crate::MAX_DEPTH`] levels.
    #[error("audit entry nests deeper than {max} levels")]
    TooDeep {
        /// The limit.
        max: usize,
    },

    /// The entry could not be encoded (time formatting or JSON encoding failed).
    #[error("audit entry could not be encoded: {0}")]
    Encode(String),
}
