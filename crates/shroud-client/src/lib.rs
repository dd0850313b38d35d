//! HTTP client of the Vault API as shroud speaks it; the `shroud` CLI is built on it, and it
//! works against a real Vault or OpenBao too.
//!
//! Start with [`Client::new`] and a [`ClientConfig`] (address, token, TLS trust). Then use the
//! typed helpers: [`Client::kv2`] for KV v2 secrets, [`Client::transit`] for the transit
//! engine, `Client::{init, unseal, seal, seal_status, rotate, policy_*, audit_*, auth_*}` for
//! `sys/*`, `Client::token_*` for tokens, [`Client::approle`] and [`Client::login_jwt`] for the
//! AppRole and JWT/Kubernetes auth methods, [`Client::unwrap`] for response wrapping, or
//! [`Client::request`] / [`Client::request_wrapped`] for any other endpoint.
//!
//! Security properties:
//! - TLS uses rustls with the ring provider and trusts only what is configured: a CA file or a
//!   pinned certificate fingerprint ([`CertFingerprint`]). There is no way to skip
//!   verification.
//! - Tokens and values read from the server are held in [`shroud_core::SecretString`]; response
//!   buffers are zeroized; no error message contains the token.
//! - Every call has a 10 s connect timeout and a 60 s overall timeout, and responses are capped
//!   at 32 MiB.

pub mod approle;
mod client;
mod error;
pub mod jwt;
pub mod kv2;
pub mod path;
pub mod sys;
pub mod tls;
pub mod token;
pub mod transit;
pub mod wrapping;

pub use approle::{AppRole, RoleRequest, SecretId, SecretIdRequest};
pub use client::{
    Client, ClientConfig, Method, Response, CONNECT_TIMEOUT, MAX_RESPONSE_BYTES, REQUEST_TIMEOUT,
};
pub use error::ClientError;
pub use kv2::{KeyMetadata, Kv2, KvData, KvSecret, KvValue, MetadataUpdate, VersionMetadata};
pub use sys::{AuthMount, Health, InitResponse, KeyStatus, SealStatus};
pub use tls::pinning::{CertFingerprint, PinnedCertVerifier};
pub use token::{TokenAuth, TokenCreateRequest, TokenInfo};
pub use transit::{Ciphertext, KeyConfig, KeyCreateRequest, KeyVersion, Transit, TransitKey};
pub use wrapping::{Unwrapped, WrapInfo};
