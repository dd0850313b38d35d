//! Core types shared by every shroud crate.
//!
//! Start with [`storage::Storage`], the trait every backend implements (it only ever sees
//! ciphertext), and [`secret::SecretBytes`] / [`secret::SecretString`], the wrapper types that
//! hold key material and secret values in memory (zeroized on drop, redacted `Debug`).
//! [`duration`] parses and prints Vault's duration syntax (`"90s"`, `"1h"`, `3600`).

pub mod conformance;
pub mod duration;
pub mod memory;
pub mod secret;
pub mod secret_file;
pub mod storage;

pub use memory::MemoryStorage;
pub use secret::{SecretBytes, SecretString};
pub use storage::{Op, Storage, StorageError};
