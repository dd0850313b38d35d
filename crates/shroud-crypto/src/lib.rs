//! shroud's barrier, keyring and seals: everything between the engines and untrusted storage.
//!
//! Start with [`Barrier`]: it encrypts every entry written through it (AES-256-GCM under the
//! keyring's active term, the storage path bound in as associated data) and decrypts every entry
//! read. A [`SealManager`] initialises the key hierarchy (`sys/init`) and loads it into the barrier
//! (`sys/unseal`), from Shamir shares or from a static key file ([`read_key_file`]).
//!
//! # Key hierarchy
//!
//! ```text
//! unseal key (32 B, never stored)   — Shamir shares, or a static key file
//!   └─ decrypts core/root-key       — root key (32 B), envelope term 0, AAD = header || path
//!        └─ decrypts core/keyring   — key terms 1, 2, …, envelope term 0, AAD = header || path
//!             └─ decrypt every other entry, envelope term N (the term that wrote it)
//! core/seal-config                  — plaintext JSON {"type","secret_shares","secret_threshold"}
//! ```
//!
//! - **Unseal key**: 32 random bytes. With the Shamir seal it is split into `secret_shares`
//!   shares, `secret_threshold` of which rebuild it; with the static seal it is read from a file.
//! - **Root key**: encrypts the keyring. Stored only encrypted under the unseal key.
//! - **Keyring**: numbered terms, each an AES-256-GCM key and install time. [`Barrier::rotate`]
//!   adds a term online; every older term stays in the keyring so older entries remain readable.
//! - **Entries**: `[version = 1][term: u32 BE][nonce: 12 B][ciphertext || 16-byte tag]`, AAD =
//!   the 5 header bytes followed by the storage path. Moving a ciphertext to another path,
//!   editing its header or flipping any bit gives [`CryptoError::DecryptionFailed`].
//!
//! `docs/key-hierarchy.md` describes the same in prose, with the threat assumptions.
//!
//! # Memory
//!
//! Key material lives in `Zeroizing` buffers and [`shroud_core::SecretBytes`], dropped on
//! [`SealManager::seal`]. No type here prints key bytes in `Debug`, and no error carries them.
//! This crate depends on `aes` and `polyval` directly only to turn on their `zeroize` features,
//! so the AES round keys inside the cached cipher objects are wiped on drop. The GHASH key is
//! not yet: polyval 0.6's runtime-detected (x86/x86_64) backend has no `Drop`, so its wipe never
//! runs there (see "In memory" in `docs/key-hierarchy.md`).

mod barrier;
mod envelope;
mod error;
mod keyfile;
mod keyring;
mod nonce;
mod seal;

pub use barrier::{Barrier, BarrierOp, KeyStatus};
pub use error::CryptoError;
pub use keyfile::{generate_unseal_key, read_key_file, write_key_file};
pub use nonce::{nonce, NONCE_LEN};
pub use seal::{InitResult, SealManager, SealStatus, SHARE_LEN, UNSEAL_KEY_LEN};

/// Storage key of the root key, encrypted under the unseal key.
pub const ROOT_KEY_PATH: &str = "core/root-key";
/// Storage key of the keyring, encrypted under the root key.
pub const KEYRING_PATH: &str = "core/keyring";
/// Storage key of the plaintext seal configuration.
pub const SEAL_CONFIG_PATH: &str = "core/seal-config";
/// Bytes the barrier adds to every entry: 5 header bytes, a 12-byte nonce, a 16-byte tag.
pub const ENTRY_OVERHEAD: usize = envelope::OVERHEAD;
