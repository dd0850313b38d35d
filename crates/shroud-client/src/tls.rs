//! Which server certificates the client trusts.
//!
//! Threat assumption: the network between client and server is hostile, and this machine's
//! system trust store is not ours to rely on (and is not shipped). Trust therefore comes only
//! from what the operator configures: a CA bundle (`SHROUD_CACERT` / `VAULT_CACERT`), a pinned
//! certificate fingerprint (`SHROUD_TLS_FINGERPRINT`), or both (then both must pass). There is
//! deliberately no option to skip verification.

pub mod pinning;

use std::io::Read;
use std::path::Path;
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use rustls::RootCertStore;

use crate::ClientError;
use pinning::{CertFingerprint, PinnedCertVerifier};

/// A CA bundle larger than this is not a CA bundle; refuse it instead of reading it whole.
const MAX_CA_FILE_BYTES: u64 = 4 * 1024 * 1024;

/// Where trust in the server's certificate comes from.
#[derive(Debug, Clone, Default)]
pub struct TlsTrust {
    /// CA certificates (PEM) the server's chain must lead to.
    pub ca_certs: Vec<CertificateDer<'static>>,
    /// The one certificate accepted, by fingerprint.
    pub pin: Option<CertFingerprint>,
}

impl TlsTrust {
    /// True when no certificate could ever be trusted.
    pub fn is_empty(&self) -> bool {
        self.ca_certs.is_empty() && self.pin.is_none()
    }
}

/// Reads every certificate from a PEM file. The file must hold at least one.
pub fn load_ca_file(path: &Path) -> Result<Vec<CertificateDer<'static>>, ClientError> {
    let err = |reason: String| ClientError::CaCert {
        path: path.to_owned(),
        reason,
    };
    let file = std::fs::File::open(path).map_err(|e| err(e.to_string()))?;
    let mut pem = Vec::new();
    file.take(MAX_CA_FILE_BYTES + 1)
        .read_to_end(&mut pem)
        .map_err(|e| err(e.to_string()))?;
    if pem.len() as u64 > MAX_CA_FILE_BYTES {
        return Err(err(format!("larger than {MAX_CA_FILE_BYTES} bytes")));
    }
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| err(format!("invalid PEM: {e}")))?;
    if certs.is_empty() {
        return Err(err("no CERTIFICATE block found".to_owned()));
    }
    Ok(certs)
}

/// Builds the rustls configuration handed to reqwest, on the ring provider.
///
/// With an empty `trust` the result trusts nothing; that is what plain-`http://` clients get
/// (reqwest needs a TLS configuration even when it never uses it).
pub fn client_config(trust: &TlsTrust) -> Result<rustls::ClientConfig, ClientError> {
    let setup = |e: rustls::Error| ClientError::Setup {
        reason: e.to_string(),
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    for cert in &trust.ca_certs {
        roots.add(cert.clone()).map_err(setup)?;
    }
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(setup)?;
    let config = match trust.pin {
        None => builder.with_root_certificates(roots).with_no_client_auth(),
        Some(pin) => {
            let mut verifier = PinnedCertVerifier::new(pin, provider.clone());
            if !roots.is_empty() {
                let chain = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
                    .build()
                    .map_err(|e| ClientError::Setup {
                        reason: e.to_string(),
                    })?;
                verifier = verifier.with_chain_check(chain);
            }
            // rustls names every custom verifier entry point `dangerous()`; this one is not:
            // the pin is a stricter trust decision than a CA (see `pinning`).
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(verifier))
                .with_no_client_auth()
        }
    };
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ca_file_with_certificates_loads() {
        let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.pem");
        std::fs::write(&path, ck.cert.pem()).unwrap();
        let certs = load_ca_file(&path).unwrap();
        assert_eq!(certs.len(), 1);
        assert_eq!(certs[0].as_ref(), ck.cert.der().as_ref());
        let cfg = client_config(&TlsTrust {
            ca_certs: certs,
            pin: None,
        });
        assert!(cfg.is_ok());
    }

    #[test]
    fn ca_file_without_certificates_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("empty.pem");
        std::fs::write(&path, "not a pem file\n").unwrap();
        assert!(matches!(
            load_ca_file(&path),
            Err(ClientError::CaCert { .. })
        ));
        assert!(matches!(
            load_ca_file(&dir.path().join("missing.pem")),
            Err(ClientError::CaCert { .. })
        ));
    }
}
