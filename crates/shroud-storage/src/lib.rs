//! shroud's persistent storage backends and the read cache behind the
//! [`shroud_core::Storage`] trait.
//!
//! Start with [`SqliteStorage::open`]: the embedded default backend, one SQLite file in WAL mode
//! whose writes are made durable by a single writer thread that commits concurrent requests
//! together (group commit), so many clients share each `fsync`. Wrap it in [`CachedStorage`] to
//! serve the read-heavy hot path (tokens, policies, mount table, secrets) from memory.
//!
//! Like every backend, these only ever see opaque bytes: the barrier above them encrypts every
//! value, so neither the database file nor the cache holds plaintext secrets.

mod cache;
mod sqlite;

pub use cache::CachedStorage;
pub use sqlite::SqliteStorage;
