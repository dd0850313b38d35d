//! shroud's audit devices: every request and response recorded as one JSON line, sensitive
//! values HMAC-SHA256'd with a per-device salt, each line carrying the SHA-256 of the line
//! before it so tampering is detectable.
//!
//! Start with [`FileDevice::open`], then call [`FileDevice::log`] with an [`Entry`] for each
//! request and each response. An error from `log` means the entry was not recorded and the
//! request must fail (fail closed). [`FileDevice::hash`] is what `sys/audit-hash` returns, so
//! an operator can find a known value in the log. [`verify_file`] checks a file's chain.
//!
//! The line format is Vault's file audit format (`time`, `type`, `auth`, `request`,
//! `response`, `error`) plus `prev_hash`; `docs/audit.md` describes it for users.

mod entry;
mod error;
mod file;
mod salt;
mod verify;

pub use entry::{AuditMemo, AuthInfo, CallerMemo, Entry, EntryType, ResponseAuth, MAX_DEPTH};
pub use error::AuditError;
pub use file::{FileDevice, Pending};
pub use salt::MIN_SALT_LEN;
pub use verify::{verify_file, VerifyReport, MAX_LINE_BYTES};

/// An audit device, as the server holds it: chosen at run time from configuration
/// (`sys/audit/<path>`), shared as `Arc<dyn Device>`.
pub trait Device: Send + Sync + std::fmt::Debug {
    /// The device type as `sys/audit` reports it (`"file"`).
    fn kind(&self) -> &'static str;
    /// Records one entry. An error means it was not recorded.
    fn log(&self, entry: &Entry<'_>) -> Result<(), AuditError>;
    /// `hmac-sha256:<hex>` of `input` under this device's salt.
    fn hash(&self, input: &str) -> String;
    /// Reopens the underlying sink (log rotation).
    fn reopen(&self) -> Result<(), AuditError>;
}

impl Device for FileDevice {
    fn kind(&self) -> &'static str {
        "file"
    }
    fn log(&self, entry: &Entry<'_>) -> Result<(), AuditError> {
        FileDevice::log(self, entry)
    }
    fn hash(&self, input: &str) -> String {
        FileDevice::hash(self, input)
    }
    fn reopen(&self) -> Result<(), AuditError> {
        FileDevice::reopen(self)
    }
}
