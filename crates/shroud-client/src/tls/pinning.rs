//! Certificate pinning: trust exactly one server certificate, named by its SHA-256 fingerprint.
//!
//! `shroud server` prints the fingerprint of its self-signed certificate at start
//! (`sha256:<hex>`); giving it to the client as `SHROUD_TLS_FINGERPRINT` authenticates that
//! server without any CA. This is not a "skip verification" switch: the handshake signature is
//! still checked against the pinned certificate's key, so only the holder of that certificate's
//! private key can complete the handshake. The host name is not checked, because the pin already
//! names the one certificate accepted (a self-signed dev certificate rarely carries the name the
//! client dials). Validity dates are not checked either, for the same reason: the pin, not a
//! CA's statement, is the trust decision, and it is revoked by changing the pin.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::ClientError;

/// SHA-256 fingerprint of a DER certificate, written `sha256:<64 hex digits>`.
///
/// Parsing also accepts upper-case hex and colon-separated bytes (`AB:CD:...`, as
/// `openssl x509 -fingerprint -sha256` prints them); `Display` always prints the canonical form.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct CertFingerprint([u8; 32]);

impl CertFingerprint {
    /// The fingerprint of a DER-encoded certificate.
    pub fn of_der(der: &[u8]) -> Self {
        Self(Sha256::digest(der).into())
    }

    /// Constant-time comparison with the fingerprint of `der`. The fingerprint is not a secret,
    /// but comparing in constant time costs nothing and keeps the habit uniform.
    pub fn matches_der(&self, der: &[u8]) -> bool {
        let got: [u8; 32] = Sha256::digest(der).into();
        bool::from(got.ct_eq(&self.0))
    }
}

impl FromStr for CertFingerprint {
    type Err = ClientError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |reason| ClientError::InvalidFingerprint { reason };
        let t = s.trim();
        let (algo, hex_part) = t
            .split_once(':')
            .ok_or(bad("expected the form sha256:<hex>"))?;
        if !algo.eq_ignore_ascii_case("sha256") {
            return Err(bad("only sha256 fingerprints are supported"));
        }
        // Bound before allocating: 32 bytes as colon-separated hex is 95 characters.
        if hex_part.len() > 95 {
            return Err(bad("too long for a sha256 fingerprint"));
        }
        let digits: String = hex_part.chars().filter(|c| *c != ':').collect();
        let mut out = [0u8; 32];
        hex::decode_to_slice(&digits, &mut out)
            .map_err(|_| bad("expected 64 hexadecimal digits after sha256:"))?;
        Ok(Self(out))
    }
}

impl fmt::Display for CertFingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", hex::encode(self.0))
    }
}

impl fmt::Debug for CertFingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CertFingerprint({self})")
    }
}

/// A rustls verifier that accepts exactly the server certificate whose SHA-256 fingerprint
/// is pinned, optionally after a normal CA chain check (when a CA file is also configured,
/// both must pass).
#[derive(Debug)]
pub struct PinnedCertVerifier {
    pin: CertFingerprint,
    provider: Arc<CryptoProvider>,
    chain: Option<Arc<WebPkiServerVerifier>>,
}

impl PinnedCertVerifier {
    /// Trust only the certificate with fingerprint `pin`; handshake signatures are verified
    /// with `provider`'s algorithms.
    pub fn new(pin: CertFingerprint, provider: Arc<CryptoProvider>) -> Self {
        Self {
            pin,
            provider,
            chain: None,
        }
    }

    /// Additionally require the certificate to chain to a trusted CA and match the host name.
    pub fn with_chain_check(mut self, chain: Arc<WebPkiServerVerifier>) -> Self {
        self.chain = Some(chain);
        self
    }
}

impl ServerCertVerifier for PinnedCertVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if let Some(chain) = &self.chain {
            chain.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)?;
        }
        if self.pin.matches_der(end_entity.as_ref()) {
            Ok(ServerCertVerified::assertion())
        } else {
            // ApplicationVerificationFailure maps to the `access_denied` alert; the message the
            // user sees is produced by the CLI from ClientError::Tls.
            Err(rustls::Error::InvalidCertificate(
                CertificateError::ApplicationVerificationFailure,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
    use rustls::{ClientConnection, ServerConnection};

    fn provider() -> Arc<CryptoProvider> {
        Arc::new(rustls::crypto::ring::default_provider())
    }

    struct TestCert {
        der: CertificateDer<'static>,
        key: PrivateKeyDer<'static>,
    }

    fn self_signed(name: &str) -> TestCert {
        let ck = rcgen::generate_simple_self_signed(vec![name.to_owned()]).unwrap();
        TestCert {
            der: ck.cert.der().clone(),
            key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(ck.signing_key.serialize_der())),
        }
    }

    /// Runs a full in-memory TLS handshake between a server presenting `server_cert` and a
    /// client trusting only `pin`. Returns the client-side error, if any.
    fn handshake(server_cert: &TestCert, pin: CertFingerprint) -> Result<(), rustls::Error> {
        let p = provider();
        let server_cfg = rustls::ServerConfig::builder_with_provider(p.clone())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![server_cert.der.clone()], server_cert.key.clone_key())
            .unwrap();
        let client_cfg = rustls::ClientConfig::builder_with_provider(p.clone())
            .with_safe_default_protocol_versions()
            .unwrap()
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(PinnedCertVerifier::new(pin, p)))
            .with_no_client_auth();
        // The name deliberately differs from the certificate's: pinning ignores it.
        let name = ServerName::try_from("other.example").unwrap();
        let mut client = ClientConnection::new(Arc::new(client_cfg), name).unwrap();
        let mut server = ServerConnection::new(Arc::new(server_cfg)).unwrap();
        for _ in 0..20 {
            let mut buf = Vec::new();
            while client.wants_write() {
                client.write_tls(&mut buf).unwrap();
            }
            if !buf.is_empty() {
                server.read_tls(&mut buf.as_slice()).unwrap();
                if server.process_new_packets().is_err() {
                    // The client's alert will tell us why; keep pumping.
                }
            }
            let mut buf = Vec::new();
            while server.wants_write() {
                server.write_tls(&mut buf).unwrap();
            }
            if !buf.is_empty() {
                client.read_tls(&mut buf.as_slice()).unwrap();
                client.process_new_packets()?;
            }
            if !client.is_handshaking() && !server.is_handshaking() {
                return Ok(());
            }
        }
        panic!("handshake did not finish");
    }

    #[test]
    fn pinned_certificate_is_accepted_in_a_real_handshake() {
        let cert = self_signed("localhost");
        let pin = CertFingerprint::of_der(cert.der.as_ref());
        handshake(&cert, pin).expect("the pinned certificate must be accepted");
    }

    #[test]
    fn other_certificate_is_rejected() {
        let pinned = self_signed("localhost");
        let attacker = self_signed("localhost");
        let pin = CertFingerprint::of_der(pinned.der.as_ref());
        let err = handshake(&attacker, pin).unwrap_err();
        assert_eq!(
            err,
            rustls::Error::InvalidCertificate(CertificateError::ApplicationVerificationFailure)
        );
    }

    #[test]
    fn verifier_checks_the_end_entity_only_against_the_pin() {
        let a = self_signed("a.test");
        let b = self_signed("b.test");
        let v = PinnedCertVerifier::new(CertFingerprint::of_der(a.der.as_ref()), provider());
        let name = ServerName::try_from("a.test").unwrap();
        assert!(v
            .verify_server_cert(&a.der, &[], &name, &[], UnixTime::now())
            .is_ok());
        assert!(v
            .verify_server_cert(&b.der, &[], &name, &[], UnixTime::now())
            .is_err());
        // Presenting the pinned certificate as an intermediate does not help the attacker.
        assert!(v
            .verify_server_cert(
                &b.der,
                std::slice::from_ref(&a.der),
                &name,
                &[],
                UnixTime::now()
            )
            .is_err());
    }

    #[test]
    fn fingerprint_parses_canonical_and_openssl_forms() {
        let fp = CertFingerprint::of_der(b"cert");
        let canonical = fp.to_string();
        assert!(canonical.starts_with("sha256:"));
        assert_eq!(canonical.len(), 7 + 64);
        assert_eq!(canonical.parse::<CertFingerprint>().unwrap(), fp);
        let upper_colons = format!(
            "SHA256:{}",
            fp.0.iter()
                .map(|b| format!("{b:02X}"))
                .collect::<Vec<_>>()
                .join(":")
        );
        assert_eq!(upper_colons.parse::<CertFingerprint>().unwrap(), fp);
    }

    #[test]
    fn malformed_fingerprints_are_rejected() {
        for bad in [
            "",
            "abcd",
            "sha1:0000000000000000000000000000000000000000",
            "sha256:",
            "sha256:zz",
            "sha256:00",
            &format!("sha256:{}", "0".repeat(66)),
            &format!("sha256:{}", "0".repeat(500)),
        ] {
            assert!(bad.parse::<CertFingerprint>().is_err(), "{bad:?} accepted");
        }
    }
}
