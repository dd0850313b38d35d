//! TLS for the listener (rustls with the ring provider).

use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// Errors setting up TLS.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A certificate or key file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The PEM held no usable certificate or key.
    #[error("{0}")]
    Pem(String),
    /// rustls refused the configuration.
    #[error("invalid TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
    /// Generating a self-signed certificate failed.
    #[error("cannot generate a self-signed certificate: {0}")]
    Generate(String),
}

/// A loaded server identity.
pub struct Identity {
    /// The rustls server configuration.
    pub config: Arc<rustls::ServerConfig>,
    /// `sha256:<hex>` of the leaf certificate, for clients that pin it.
    pub fingerprint: String,
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_owned(),
        source,
    })
}

/// Builds a server config from PEM files.
pub fn load(cert: &Path, key: &Path) -> Result<Identity, TlsError> {
    let certs: Vec<CertificateDer<'static>> = rustls_pemfile::certs(&mut read(cert)?.as_slice())
        .collect::<Result<_, _>>()
        .map_err(|e| TlsError::Pem(format!("{}: {e}", cert.display())))?;
    if certs.is_empty() {
        return Err(TlsError::Pem(format!(
            "{}: no certificate found",
            cert.display()
        )));
    }
    let key: PrivateKeyDer<'static> = rustls_pemfile::private_key(&mut read(key)?.as_slice())
        .map_err(|e| TlsError::Pem(format!("{}: {e}", key.display())))?
        .ok_or_else(|| TlsError::Pem(format!("{}: no private key found", key.display())))?;
    build(certs, key)
}

fn build(
    certs: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<Identity, TlsError> {
    let fingerprint = format!("sha256:{}", hex::encode(Sha256::digest(certs[0].as_ref())));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Identity {
        config: Arc::new(config),
        fingerprint,
    })
}

/// Loads `dir/cert.pem` + `dir/key.pem`, generating a self-signed pair on first use.
pub fn self_signed(dir: &Path, names: Vec<String>) -> Result<(Identity, bool), TlsError> {
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    if cert.exists() && key.exists() {
        return Ok((load(&cert, &key)?, false));
    }
    std::fs::create_dir_all(dir).map_err(|source| TlsError::Read {
        path: dir.to_owned(),
        source,
    })?;
    let ck =
        rcgen::generate_simple_self_signed(names).map_err(|e| TlsError::Generate(e.to_string()))?;
    shroud_core::secret_file::write_atomic(&key, ck.signing_key.serialize_pem().as_bytes(), 0o600)
        .map_err(|source| TlsError::Read {
            path: key.clone(),
            source,
        })?;
    shroud_core::secret_file::write_atomic(&cert, ck.cert.pem().as_bytes(), 0o644).map_err(
        |source| TlsError::Read {
            path: cert.clone(),
            source,
        },
    )?;
    Ok((load(&cert, &key)?, true))
}
