//! HTTP client of the Vault API as shroud speaks it; the `shroud` CLI is built on it, and it
//! works against a real Vault or OpenBao too.
//!
//! Start with [`Client::new`] and a [`ClientConfig`] (address, token, TLS trust). Then use the
//! typed helpers: [`Client::kv2`] for KV v2 secrets, `Client::{init, unseal, seal,
//! seal_status, rotate, policy_*, audit_*}` for `sys/*`, `Client::token_*` for tokens, or
//! [`Client::request`] for any other endpoint.
//!
//! Security properties:
//! - TLS uses rustls with the ring provider and trusts only what is configured: a CA file or a
//!   pinned certificate fingerprint ([`CertFingerprint`]). There is no way to skip
//!   verification.
//! - Tokens and values read from the server are held in [`shroud_core::SecretString`]; response
//!   buffers are zeroized; no error message contains the token.
//! - Every call has a 10 s connect timeout and a 60 s overall timeout, and responses are capped
//!   at 32 MiB.

mod client;
mod error;
pub mod kv2;
pub mod path;
pub mod sys;
pub mod tls;
pub mod token;

pub use client::{
    Client, ClientConfig, Method, Response, CONNECT_TIMEOUT, MAX_RESPONSE_BYTES, REQUEST_TIMEOUT,
};
pub use error::ClientError;
pub use kv2::{KeyMetadata, Kv2, KvData, KvSecret, KvValue, MetadataUpdate, VersionMetadata};
pub use sys::{Health, InitResponse, KeyStatus, SealStatus};
pub use tls::pinning::{CertFingerprint, PinnedCertVerifier};
pub use token::{TokenAuth, TokenCreateRequest, TokenInfo};
