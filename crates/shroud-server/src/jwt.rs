//! The JWT auth method (Vault's `jwt`, without OIDC) and, with `kubernetes = true`, Vault's
//! `kubernetes` auth method: a workload logs in with a signed JWT and a role name.
//!
//! shroud makes no outbound connections, so keys are configured, never fetched: PEM public
//! keys or X.509 certificates whose key is extracted, unvalidated (`jwt_validation_pubkeys`,
//! or Kubernetes' `pem_keys`), an inline JWKS (`jwks`), or a
//! JWKS file read once at config time (`jwks_file`). In particular a Kubernetes service-account
//! token is verified locally against `pem_keys` (the cluster's service-account signing keys)
//! instead of through the TokenReview API: a token is accepted until it expires even if its
//! service account or pod was deleted. See docs/auth.md.
//!
//! Accepted algorithms follow the configured key types only: RSA keys (2048–8192 bits) allow
//! RS256/384/512 and PS256/384/512, EC P-256 keys allow ES256, Ed25519 keys allow EdDSA.
//! `none` and the HMAC algorithms are never accepted (an HS256 token "signed" with a public
//! key is the classic algorithm-confusion attack).
//!
//! Errors follow the plugin each mount imitates: `jwt` answers 400 for every refused token
//! (Vault's `logical.ErrorResponse`), `kubernetes` answers 403 (Vault's kubernetes plugin uses
//! `CodedError(403)` / `ErrPermissionDenied`). Messages name the failed check, never a value
//! from the token or the role, and the token itself is never logged.
//!
//! Storage under `auth/<mount uuid>/`: `config` and `role/<name>` (names lower-cased).

use crate::api::{
    bool_field, duration_field, string_list, ApiError, ApiResult, Logical, Operation, Reply,
    Request,
};
use crate::approle::{str_field, valid_name, TokenParams};
use crate::engine::{Engine, LoginResult};
use base64::Engine as _;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, JwkSet, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use shroud_crypto::Barrier;
use std::collections::BTreeMap;
use std::str::FromStr;
use std::sync::{Arc, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};
use tokio::io::AsyncReadExt;

/// Longest JWT accepted (Kubernetes tokens are 1–2 KiB).
const MAX_JWT_LEN: usize = 64 * 1024;
/// Most verification keys on one mount (each login may try all that match the algorithm).
const MAX_KEYS: usize = 64;
/// Longest PEM entry.
const MAX_PEM_LEN: usize = 64 * 1024;
/// Largest JWKS document (inline or file).
const MAX_JWKS_LEN: usize = 1024 * 1024;
/// Bounds on role lists and maps.
const MAX_LIST: usize = 256;
const MAX_ITEM_LEN: usize = 512;
/// Largest leeway a role may ask for: one day.
const MAX_LEEWAY: i64 = 86_400;
/// Vault's default `clock_skew_leeway`.
const DEFAULT_CLOCK_SKEW: i64 = 60;
/// Kubernetes roles have no leeway fields; this clock skew applies to them.
const KUBERNETES_CLOCK_SKEW: i64 = 60;

const RSA_ALGS: &[Algorithm] = &[
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
];
const P256_ALGS: &[Algorithm] = &[Algorithm::ES256];
const ED_ALGS: &[Algorithm] = &[Algorithm::EdDSA];

/// DER of a P-256 SubjectPublicKeyInfo up to the uncompressed point (DER is canonical, so an
/// uncompressed P-256 key always starts with exactly these bytes and is 91 bytes long).
const P256_SPKI_PREFIX: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];
/// DER of an Ed25519 SubjectPublicKeyInfo up to the 32-byte key (44 bytes in all).
const ED25519_SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];
/// OID 1.2.840.113549.1.1.1 (rsaEncryption), DER-encoded.
const RSA_ENCRYPTION_OID: [u8; 11] = [
    0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01,
];

// ---------------------------------------------------------------------------------------------
// Keys.
// ---------------------------------------------------------------------------------------------

/// One verification key and the algorithms it may verify.
#[derive(Clone)]
struct VerifyKey {
    kid: Option<String>,
    algs: Vec<Algorithm>,
    key: DecodingKey,
}

/// Reads one DER TLV: (tag, contents, rest). Lengths up to 4 bytes; None on truncation.
fn der_tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let (len_bytes, rest) = rest.split_at(n);
        let mut len = 0usize;
        for &b in len_bytes {
            len = len.checked_mul(256)?.checked_add(usize::from(b))?;
        }
        (len, rest)
    };
    if rest.len() < len {
        return None;
    }
    let (content, rest) = rest.split_at(len);
    Some((tag, content, rest))
}

/// Bytes of an RSA modulus without leading zeros; must be 2048–8192 bits (ring's range).
fn rsa_modulus_ok(n: &[u8]) -> bool {
    let first = n.iter().position(|&b| b != 0).unwrap_or(n.len());
    let len = n.len() - first;
    (256..=1024).contains(&len)
}

/// Classifies a SubjectPublicKeyInfo: RSA, EC P-256 or Ed25519; anything else is refused.
fn key_from_spki(der: &[u8]) -> Result<(Vec<Algorithm>, DecodingKey), String> {
    if der.len() == 91 && der.starts_with(&P256_SPKI_PREFIX) && der[26] == 0x04 {
        return Ok((P256_ALGS.to_vec(), DecodingKey::from_ec_der(&der[26..])));
    }
    if der.len() == 44 && der.starts_with(&ED25519_SPKI_PREFIX) {
        return Ok((ED_ALGS.to_vec(), DecodingKey::from_ed_der(&der[12..])));
    }
    let unsupported =
        || "unsupported public key type (supported: RSA, EC P-256, Ed25519)".to_owned();
    let (0x30, spki, _) = der_tlv(der).ok_or_else(unsupported)? else {
        return Err(unsupported());
    };
    let (0x30, alg_id, rest) = der_tlv(spki).ok_or_else(unsupported)? else {
        return Err(unsupported());
    };
    if !alg_id.starts_with(&RSA_ENCRYPTION_OID) {
        return Err(unsupported());
    }
    let (0x03, bits, _) = der_tlv(rest).ok_or_else(unsupported)? else {
        return Err(unsupported());
    };
    let Some((0, pkcs1)) = bits.split_first() else {
        return Err(unsupported());
    };
    // RSAPublicKey ::= SEQUENCE { modulus INTEGER, publicExponent INTEGER }
    let bad_rsa = || "malformed RSA public key".to_owned();
    let (0x30, seq, _) = der_tlv(pkcs1).ok_or_else(bad_rsa)? else {
        return Err(bad_rsa());
    };
    let (0x02, modulus, _) = der_tlv(seq).ok_or_else(bad_rsa)? else {
        return Err(bad_rsa());
    };
    if !rsa_modulus_ok(modulus) {
        return Err("RSA keys must be 2048 to 8192 bits".to_owned());
    }
    Ok((RSA_ALGS.to_vec(), DecodingKey::from_rsa_der(pkcs1)))
}

/// The DER SubjectPublicKeyInfo inside an X.509 certificate, or None if the structure is not
/// a certificate. Only the structure up to the key is walked: the certificate is a carrier for
/// the key (Vault: "if a certificate is given, its public key will be extracted"), so its
/// signature, issuer, validity and extensions are deliberately not checked.
///
/// ```text
/// Certificate    ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signatureValue }
/// TBSCertificate ::= SEQUENCE { version [0] EXPLICIT OPTIONAL, serialNumber INTEGER,
///                               signature SEQUENCE, issuer SEQUENCE, validity SEQUENCE,
///                               subject SEQUENCE, subjectPublicKeyInfo SEQUENCE, ... }
/// ```
///
/// Every read goes through `der_tlv`, which bounds each length by the bytes actually present.
fn spki_from_certificate(der: &[u8]) -> Option<&[u8]> {
    let (0x30, cert, trailing) = der_tlv(der)? else {
        return None;
    };
    if !trailing.is_empty() {
        return None;
    }
    let (0x30, mut tbs, _) = der_tlv(cert)? else {
        return None;
    };
    // version [0] EXPLICIT: absent in v1 certificates.
    if tbs.first() == Some(&0xa0) {
        tbs = der_tlv(tbs)?.2;
    }
    // serialNumber, signature, issuer, validity, subject.
    for expected in [0x02, 0x30, 0x30, 0x30, 0x30] {
        let (tag, _, rest) = der_tlv(tbs)?;
        if tag != expected {
            return None;
        }
        tbs = rest;
    }
    let (0x30, _, after) = der_tlv(tbs)? else {
        return None;
    };
    // `after` is a suffix of `tbs`, so this is the whole SPKI element, header included.
    tbs.get(..tbs.len().checked_sub(after.len())?)
}

/// Parses one PEM entry (which may hold several `PUBLIC KEY` or `CERTIFICATE` blocks).
fn keys_from_pem(pem: &str) -> Result<Vec<VerifyKey>, String> {
    if pem.len() > MAX_PEM_LEN {
        return Err("PEM key too large".to_owned());
    }
    if pem.contains("-----BEGIN RSA PUBLIC KEY-----") {
        return Err("PKCS#1 \"RSA PUBLIC KEY\" blocks are not accepted; convert with `openssl rsa -RSAPublicKey_in -pubout`".to_owned());
    }
    let mut out = vec![];
    let mut rd = pem.as_bytes();
    for item in rustls_pemfile::read_all(&mut rd) {
        match item.map_err(|_| "malformed PEM".to_owned())? {
            rustls_pemfile::Item::SubjectPublicKeyInfo(spki) => {
                let (algs, key) = key_from_spki(spki.as_ref())?;
                out.push(VerifyKey {
                    kid: None,
                    algs,
                    key,
                });
            }
            rustls_pemfile::Item::X509Certificate(cert) => {
                let spki = spki_from_certificate(cert.as_ref())
                    .ok_or_else(|| "malformed certificate".to_owned())?;
                let (algs, key) = key_from_spki(spki).map_err(|e| format!("certificate: {e}"))?;
                out.push(VerifyKey {
                    kid: None,
                    algs,
                    key,
                });
            }
            rustls_pemfile::Item::Pkcs1Key(_)
            | rustls_pemfile::Item::Pkcs8Key(_)
            | rustls_pemfile::Item::Sec1Key(_) => {
                return Err("a private key was given; give only the public key".to_owned())
            }
            _ => return Err("unexpected PEM block; expected PUBLIC KEY or CERTIFICATE".to_owned()),
        }
        if out.len() > MAX_KEYS {
            return Err(format!("too many keys (at most {MAX_KEYS})"));
        }
    }
    if out.is_empty() {
        return Err("no PEM public key found".to_owned());
    }
    Ok(out)
}

fn b64url_len(s: &str) -> Option<Vec<u8>> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s.trim_end_matches('='))
        .ok()
}

/// One JWK → a key, or None for an encryption key (`use: enc`), which is skipped.
fn key_from_jwk(i: usize, jwk: &Jwk) -> Result<Option<VerifyKey>, String> {
    if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)) {
        return Ok(None);
    }
    let bad = |what: &str| format!("JWK #{i}: {what}");
    let (family, key): (&[Algorithm], DecodingKey) = match &jwk.algorithm {
        AlgorithmParameters::RSA(p) => {
            let n = b64url_len(&p.n).ok_or_else(|| bad("malformed modulus"))?;
            if !rsa_modulus_ok(&n) {
                return Err(bad("RSA keys must be 2048 to 8192 bits"));
            }
            let key = DecodingKey::from_rsa_components(&p.n, &p.e)
                .map_err(|_| bad("malformed RSA key"))?;
            (RSA_ALGS, key)
        }
        AlgorithmParameters::EllipticCurve(p) if p.curve == EllipticCurve::P256 => {
            let (x, y) = (b64url_len(&p.x), b64url_len(&p.y));
            if x.map(|v| v.len()) != Some(32) || y.map(|v| v.len()) != Some(32) {
                return Err(bad("malformed P-256 key"));
            }
            let key = DecodingKey::from_ec_components(&p.x, &p.y)
                .map_err(|_| bad("malformed P-256 key"))?;
            (P256_ALGS, key)
        }
        AlgorithmParameters::OctetKeyPair(p) if p.curve == EllipticCurve::Ed25519 => {
            if b64url_len(&p.x).map(|v| v.len()) != Some(32) {
                return Err(bad("malformed Ed25519 key"));
            }
            let key =
                DecodingKey::from_ed_components(&p.x).map_err(|_| bad("malformed Ed25519 key"))?;
            (ED_ALGS, key)
        }
        AlgorithmParameters::OctetKey(_) => {
            return Err(bad("symmetric (oct) keys are not accepted"))
        }
        _ => {
            return Err(bad(
                "unsupported key type (supported: RSA, EC P-256, OKP Ed25519)",
            ))
        }
    };
    // A JWK that names its algorithm is held to it.
    let algs = match jwk.common.key_algorithm {
        None => family.to_vec(),
        Some(a) => match Algorithm::from_str(&a.to_string()) {
            Ok(a) if family.contains(&a) => vec![a],
            _ => return Err(bad("\"alg\" does not match the key type")),
        },
    };
    Ok(Some(VerifyKey {
        kid: jwk.common.key_id.clone(),
        algs,
        key,
    }))
}

/// Parses a JWKS document. Returns the keys and the document re-serialized from the parsed
/// keys, so only public parameters are ever stored or echoed (a stray private `d` is dropped).
fn keys_from_jwks(doc: &Value) -> Result<(Vec<VerifyKey>, Value), String> {
    // serde's message could quote the document (which may be a file the caller cannot read
    // otherwise): keep it out of the answer.
    let set: JwkSet = serde_json::from_value(doc.clone())
        .map_err(|_| "not a valid JWKS document (expected {\"keys\":[…]})".to_owned())?;
    if set.keys.len() > MAX_KEYS {
        return Err(format!("too many keys in JWKS (at most {MAX_KEYS})"));
    }
    let mut out = vec![];
    for (i, jwk) in set.keys.iter().enumerate() {
        if let Some(k) = key_from_jwk(i, jwk)? {
            out.push(k);
        }
    }
    let public = serde_json::to_value(&set).map_err(|_| "cannot store JWKS".to_owned())?;
    Ok((out, public))
}

// ---------------------------------------------------------------------------------------------
// Config and roles.
// ---------------------------------------------------------------------------------------------

/// The stored configuration. Keys are kept as given (PEM) or re-serialized (JWKS) and parsed
/// again after unseal.
#[derive(Serialize, Deserialize, Default, Clone)]
struct Config {
    pubkeys: Vec<String>,
    jwks: Option<Value>,
    jwks_file: String,
    /// `bound_issuer` (jwt) / `issuer` (kubernetes).
    issuer: String,
    supported_algs: Vec<String>,
    default_role: String,
    kubernetes_host: String,
    kubernetes_ca_cert: String,
    disable_iss_validation: bool,
    disable_local_ca_jwt: bool,
}

/// Parsed configuration, cached in memory.
struct Verifier {
    keys: Vec<VerifyKey>,
    /// Algorithms any configured key allows, narrowed by `jwt_supported_algs`.
    algs: Vec<Algorithm>,
    /// Required `iss`, if any.
    issuer: Option<String>,
    default_role: String,
}

impl Verifier {
    fn build(c: &Config, kubernetes: bool) -> Result<Verifier, String> {
        let mut keys = vec![];
        for pem in &c.pubkeys {
            keys.extend(keys_from_pem(pem)?);
        }
        if let Some(doc) = &c.jwks {
            keys.extend(keys_from_jwks(doc)?.0);
        }
        if keys.len() > MAX_KEYS {
            return Err(format!("too many keys (at most {MAX_KEYS})"));
        }
        let mut algs: Vec<Algorithm> = vec![];
        for k in &keys {
            for a in &k.algs {
                if !algs.contains(a) {
                    algs.push(*a);
                }
            }
        }
        if !c.supported_algs.is_empty() {
            let wanted: Vec<Algorithm> = c
                .supported_algs
                .iter()
                .filter_map(|s| Algorithm::from_str(s).ok())
                .collect();
            algs.retain(|a| wanted.contains(a));
        }
        let issuer = if c.issuer.is_empty() || (kubernetes && c.disable_iss_validation) {
            None
        } else {
            Some(c.issuer.clone())
        };
        Ok(Verifier {
            keys,
            algs,
            issuer,
            default_role: c.default_role.clone(),
        })
    }

    /// Verifies the signature and returns the claims. No claim is checked here.
    fn verify(&self, token: &str) -> Result<Map<String, Value>, Refusal> {
        if token.len() > MAX_JWT_LEN {
            return Err(Refusal::Token("token is too large"));
        }
        let header =
            jsonwebtoken::decode_header(token).map_err(|_| Refusal::Token("malformed token"))?;
        // Checked before any key is touched: `none` never parses, and HS* never matches a
        // configured key type.
        if !self.algs.contains(&header.alg) {
            return Err(Refusal::Token("signing algorithm not allowed"));
        }
        let mut validation = Validation::new(header.alg);
        validation.required_spec_claims.clear();
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        validation.leeway = 0;
        let by_alg = self.keys.iter().filter(|k| k.algs.contains(&header.alg));
        let candidates: Vec<&VerifyKey> = match &header.kid {
            Some(kid) if self.keys.iter().any(|k| k.kid.as_deref() == Some(kid)) => by_alg
                .filter(|k| k.kid.as_deref() == Some(kid.as_str()))
                .collect(),
            Some(_) => by_alg.filter(|k| k.kid.is_none()).collect(),
            None => by_alg.collect(),
        };
        for k in candidates {
            match jsonwebtoken::decode::<Map<String, Value>>(token, &k.key, &validation) {
                Ok(data) => return Ok(data.claims),
                Err(e) => {
                    use jsonwebtoken::errors::ErrorKind as K;
                    match e.kind() {
                        K::InvalidSignature
                        | K::InvalidAlgorithm
                        | K::InvalidEcdsaKey
                        | K::InvalidRsaKey(_)
                        | K::InvalidKeyFormat
                        | K::Crypto(_) => continue,
                        _ => return Err(Refusal::Token("malformed token")),
                    }
                }
            }
        }
        Err(Refusal::Signature)
    }
}

/// A role of either flavour; the fields of the other flavour stay at their defaults.
#[derive(Serialize, Deserialize, Clone, Default)]
struct Role {
    role_type: String,
    bound_audiences: Vec<String>,
    bound_subject: String,
    bound_claims: Map<String, Value>,
    bound_claims_type: String,
    user_claim: String,
    claim_mappings: BTreeMap<String, String>,
    clock_skew_leeway: i64,
    expiration_leeway: i64,
    not_before_leeway: i64,
    service_account_names: Vec<String>,
    service_account_namespaces: Vec<String>,
    audience: String,
    alias_name_source: String,
    token: TokenParams,
}

/// A bounded list of bounded strings.
fn bounded_list(v: Option<&Value>, name: &str) -> Result<Vec<String>, ApiError> {
    let l = string_list(v)?;
    if l.len() > MAX_LIST || l.iter().any(|s| s.len() > MAX_ITEM_LEN) {
        return Err(ApiError::bad_request(format!("{name} is too large")));
    }
    Ok(l)
}

/// A leeway in seconds: an integer (`-1` disables) or a duration string.
fn leeway_field(v: Option<&Value>, name: &str) -> Result<Option<i64>, ApiError> {
    let bad = || ApiError::bad_request(format!("invalid {name}"));
    let secs = match v {
        None => return Ok(None),
        Some(Value::Number(n)) => n.as_i64().ok_or_else(bad)?,
        Some(Value::String(s)) if s.trim() == "-1" => -1,
        Some(other) => duration_field(Some(other), name)?
            .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
            .unwrap_or(0),
    };
    if !(-1..=MAX_LEEWAY).contains(&secs) {
        return Err(bad());
    }
    Ok(Some(secs))
}

/// `*` matches any run of characters (possibly empty); everything else is literal.
pub(crate) fn glob_match(pattern: &str, s: &str) -> bool {
    let (p, t) = (pattern.as_bytes(), s.as_bytes());
    let (mut pi, mut ti) = (0usize, 0usize);
    // Where the last `*` was and how much text it has swallowed so far.
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if p.get(pi) == Some(&b'*') {
            star = Some((pi, ti));
            pi += 1;
        } else if pi < p.len() && p.get(pi) == t.get(ti) {
            pi += 1;
            ti += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    while p.get(pi) == Some(&b'*') {
        pi += 1;
    }
    pi == p.len()
}

// ---------------------------------------------------------------------------------------------
// Claims.
// ---------------------------------------------------------------------------------------------

/// Why a token was refused. Rendered differently by `jwt` (400) and `kubernetes` (403).
#[derive(Debug)]
enum Refusal {
    /// The token could not be parsed or uses a refused algorithm.
    Token(&'static str),
    /// No configured key verified the signature.
    Signature,
    /// A claim failed a check.
    Claims(String),
}

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// A NumericDate claim (RFC 7519: may be fractional).
fn numeric_claim(claims: &Map<String, Value>, name: &str) -> Result<Option<i64>, Refusal> {
    match claims.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => match n.as_i64() {
            Some(i) => Ok(Some(i)),
            None => match n.as_f64() {
                // `as` saturates; a NaN cannot come out of JSON.
                Some(f) if f.is_finite() => Ok(Some(f.floor() as i64)),
                _ => Err(Refusal::Claims(format!("invalid {name} claim"))),
            },
        },
        Some(_) => Err(Refusal::Claims(format!("invalid {name} claim"))),
    }
}

/// exp / nbf / iat with leeways (seconds). `exp` is required for JWT roles, optional for
/// Kubernetes (legacy service-account tokens have none, as Vault's plugin allows).
fn check_times(
    claims: &Map<String, Value>,
    now: i64,
    skew: i64,
    exp_leeway: i64,
    nbf_leeway: i64,
    require_exp: bool,
) -> Result<(), Refusal> {
    match numeric_claim(claims, "exp")? {
        None if require_exp => return Err(Refusal::Claims("exp claim is required".into())),
        Some(exp) if now >= exp.saturating_add(skew).saturating_add(exp_leeway) => {
            return Err(Refusal::Claims("token is expired".into()))
        }
        _ => {}
    }
    if let Some(nbf) = numeric_claim(claims, "nbf")? {
        if now.saturating_add(skew).saturating_add(nbf_leeway) < nbf {
            return Err(Refusal::Claims("token is not valid yet (nbf)".into()));
        }
    }
    if let Some(iat) = numeric_claim(claims, "iat")? {
        if now.saturating_add(skew) < iat {
            return Err(Refusal::Claims(
                "token was issued in the future (iat)".into(),
            ));
        }
    }
    Ok(())
}

/// The token's audiences: `aud` as a string or a list of strings.
fn audiences(claims: &Map<String, Value>) -> Result<Vec<&str>, Refusal> {
    match claims.get("aud") {
        None | Some(Value::Null) => Ok(vec![]),
        Some(Value::String(s)) => Ok(vec![s.as_str()]),
        Some(Value::Array(a)) => a
            .iter()
            .map(|v| {
                v.as_str()
                    .ok_or_else(|| Refusal::Claims("invalid aud claim".into()))
            })
            .collect(),
        Some(_) => Err(Refusal::Claims("invalid aud claim".into())),
    }
}

/// A claim by name, or by JSON pointer when the name starts with `/` (Vault's nested claims).
fn claim<'c>(claims: &'c Value, name: &str) -> Option<&'c Value> {
    if name.starts_with('/') {
        claims.pointer(name)
    } else {
        claims.get(name)
    }
    .filter(|v| !v.is_null())
}

/// A scalar as a string (numbers and booleans as JSON prints them).
fn scalar_string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A claim value as strings: a scalar, or every scalar of a list.
fn claim_strings(v: &Value) -> Vec<String> {
    match v {
        Value::Array(a) => a.iter().filter_map(scalar_string).collect(),
        other => scalar_string(other).into_iter().collect(),
    }
}

/// The service account a Kubernetes token names: the projected-token shape
/// (`kubernetes.io: {namespace, serviceaccount: {name, uid}}`) wins over the legacy flat claims,
/// as in Vault's plugin.
struct ServiceAccount {
    name: String,
    namespace: String,
    uid: String,
    secret_name: String,
}

fn service_account(claims: &Map<String, Value>) -> Option<ServiceAccount> {
    let s = |v: Option<&Value>| v.and_then(Value::as_str).unwrap_or("").to_owned();
    let sa = if let Some(Value::Object(k)) = claims.get("kubernetes.io") {
        let acct = k.get("serviceaccount");
        ServiceAccount {
            name: s(acct.and_then(|a| a.get("name"))),
            namespace: s(k.get("namespace")),
            uid: s(acct.and_then(|a| a.get("uid"))),
            secret_name: s(k.get("secret").and_then(|x| x.get("name"))),
        }
    } else {
        ServiceAccount {
            name: s(claims.get("kubernetes.io/serviceaccount/service-account.name")),
            namespace: s(claims.get("kubernetes.io/serviceaccount/namespace")),
            uid: s(claims.get("kubernetes.io/serviceaccount/service-account.uid")),
            secret_name: s(claims.get("kubernetes.io/serviceaccount/secret.name")),
        }
    };
    let fits = |x: &str| x.len() <= 253;
    (!sa.name.is_empty()
        && !sa.namespace.is_empty()
        && !sa.uid.is_empty()
        && [&sa.name, &sa.namespace, &sa.uid, &sa.secret_name]
            .iter()
            .all(|x| fits(x)))
    .then_some(sa)
}

// ---------------------------------------------------------------------------------------------
// The engine.
// ---------------------------------------------------------------------------------------------

/// One mounted JWT (or Kubernetes) auth method.
pub struct JwtAuth {
    prefix: String,
    barrier: Arc<Barrier>,
    kubernetes: bool,
    /// The parsed config; single node, so memory is authoritative once loaded.
    cache: RwLock<Option<Arc<Verifier>>>,
    /// Serialises config writes and the first load, so a stale config never lands in the cache.
    config_lock: tokio::sync::Mutex<()>,
    /// Serialises role read-modify-write.
    role_lock: tokio::sync::Mutex<()>,
}

impl JwtAuth {
    /// A method storing under `auth/<uuid>/`; `kubernetes` selects Vault's Kubernetes login shape.
    pub fn new(barrier: Arc<Barrier>, uuid: &str, kubernetes: bool) -> Self {
        Self {
            prefix: format!("auth/{uuid}/"),
            barrier,
            kubernetes,
            cache: RwLock::new(None),
            config_lock: tokio::sync::Mutex::new(()),
            role_lock: tokio::sync::Mutex::new(()),
        }
    }

    fn mount_type(&self) -> &'static str {
        if self.kubernetes {
            "kubernetes"
        } else {
            "jwt"
        }
    }

    fn reply(&self, data: Value) -> Reply {
        Reply::Logical(Box::new(Logical {
            data: crate::api::Data::Owned(data),
            mount_type: self.mount_type(),
            ..Default::default()
        }))
    }

    async fn load_config(&self) -> Result<Option<Config>, ApiError> {
        match self.barrier.get(&format!("{}config", self.prefix)).await? {
            Some(raw) => serde_json::from_slice(raw.expose())
                .map(Some)
                .map_err(|e| ApiError::internal(&e)),
            None => Ok(None),
        }
    }

    async fn verifier(&self) -> Result<Option<Arc<Verifier>>, ApiError> {
        if let Some(v) = self.cache.read().unwrap_or_else(|e| e.into_inner()).clone() {
            return Ok(Some(v));
        }
        let _l = self.config_lock.lock().await;
        if let Some(v) = self.cache.read().unwrap_or_else(|e| e.into_inner()).clone() {
            return Ok(Some(v));
        }
        let Some(c) = self.load_config().await? else {
            return Ok(None);
        };
        let v = Arc::new(
            Verifier::build(&c, self.kubernetes)
                .map_err(|e| ApiError::internal(&format!("stored auth config: {e}")))?,
        );
        *self.cache.write().unwrap_or_else(|e| e.into_inner()) = Some(v.clone());
        Ok(Some(v))
    }

    async fn load_role(&self, name: &str) -> Result<Option<Role>, ApiError> {
        match self
            .barrier
            .get(&format!("{}role/{name}", self.prefix))
            .await?
        {
            Some(raw) => serde_json::from_slice(raw.expose())
                .map(Some)
                .map_err(|e| ApiError::internal(&e)),
            None => Ok(None),
        }
    }

    async fn route(&self, rel: &str, req: &Request) -> ApiResult {
        use Operation::{Delete, List, Read, Update};
        let rel = rel.trim_end_matches('/');
        let parts: Vec<&str> = rel.split('/').collect();
        let name = |raw: &str| -> Result<String, ApiError> {
            if valid_name(raw) {
                Ok(raw.to_lowercase())
            } else {
                Err(ApiError::bad_request(
                    "invalid role name: use letters, digits, '_', '-' and '.', at most 128 characters",
                ))
            }
        };
        match (parts.as_slice(), req.op) {
            (["config"], Read) => self.read_config().await,
            (["config"], Update) => self.write_config(req).await,
            (["role"], List) => self.list_roles().await,
            (["role", n], Read) => self.read_role(&name(n)?).await,
            (["role", n], Update) => self.write_role(&name(n)?, req).await,
            (["role", n], Delete) => {
                let _g = self.role_lock.lock().await;
                self.barrier
                    .delete(&format!("{}role/{}", self.prefix, name(n)?))
                    .await?;
                Ok(Reply::NoContent)
            }
            (["login" | "config" | "role"], _) | (["role", _], _) => {
                Err(ApiError::unsupported_operation())
            }
            _ => Err(ApiError::no_route(&req.path)),
        }
    }

    async fn read_config(&self) -> ApiResult {
        let Some(c) = self.load_config().await? else {
            return Err(ApiError::not_found());
        };
        let data = if self.kubernetes {
            json!({
                "kubernetes_host": c.kubernetes_host,
                "kubernetes_ca_cert": c.kubernetes_ca_cert,
                "pem_keys": c.pubkeys,
                "issuer": c.issuer,
                "disable_iss_validation": c.disable_iss_validation,
                "disable_local_ca_jwt": c.disable_local_ca_jwt,
                "token_reviewer_jwt_set": false,
                "jwks": c.jwks,
                "jwks_file": c.jwks_file,
            })
        } else {
            json!({
                "jwt_validation_pubkeys": c.pubkeys,
                "jwks": c.jwks,
                "jwks_file": c.jwks_file,
                "jwks_url": "",
                "oidc_discovery_url": "",
                "bound_issuer": c.issuer,
                "jwt_supported_algs": c.supported_algs,
                "default_role": c.default_role,
            })
        };
        Ok(self.reply(data))
    }

    /// Replaces the configuration (Vault's config write is not a merge).
    async fn write_config(&self, req: &Request) -> ApiResult {
        let mut warnings = vec![];
        for f in ["oidc_discovery_url", "jwks_url", "oidc_client_id"] {
            if matches!(str_field(req, f, 4096)?, Some(s) if !s.is_empty()) {
                return Err(ApiError::bad_request(format!(
                    "{f} is not supported: shroud makes no outbound connections; configure jwt_validation_pubkeys, jwks or jwks_file"
                )));
            }
        }
        let mut c = Config::default();
        let keys_field = if self.kubernetes {
            req.field("pem_keys")
                .or_else(|| req.field("jwt_validation_pubkeys"))
        } else {
            req.field("jwt_validation_pubkeys")
        };
        c.pubkeys = match keys_field {
            None => vec![],
            Some(Value::Array(a)) => a
                .iter()
                .map(|v| v.as_str().map(str::to_owned))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| ApiError::bad_request("keys must be a list of PEM strings"))?,
            // A single PEM string: its commas are not separators.
            Some(Value::String(s)) if !s.trim().is_empty() => vec![s.clone()],
            Some(Value::String(_)) => vec![],
            Some(_) => return Err(ApiError::bad_request("keys must be a list of PEM strings")),
        };
        if c.pubkeys.len() > MAX_KEYS {
            return Err(ApiError::bad_request(format!(
                "too many keys (at most {MAX_KEYS})"
            )));
        }
        let jwks_inline = match req.field("jwks") {
            None => None,
            Some(Value::String(s)) if s.trim().is_empty() => None,
            Some(Value::String(s)) => {
                if s.len() > MAX_JWKS_LEN {
                    return Err(ApiError::bad_request("jwks is too large"));
                }
                Some(
                    serde_json::from_str::<Value>(s)
                        .map_err(|_| ApiError::bad_request("jwks: not a valid JWKS document"))?,
                )
            }
            Some(v @ Value::Object(_)) => Some(v.clone()),
            Some(_) => return Err(ApiError::bad_request("jwks must be a JSON object")),
        };
        let jwks_file = str_field(req, "jwks_file", 4096)?.unwrap_or("").trim();
        if jwks_inline.is_some() && !jwks_file.is_empty() {
            return Err(ApiError::bad_request("set only one of jwks and jwks_file"));
        }
        let jwks_doc = if !jwks_file.is_empty() {
            c.jwks_file = jwks_file.to_owned();
            Some(read_jwks_file(jwks_file).await?)
        } else {
            jwks_inline
        };
        if let Some(doc) = jwks_doc {
            let (_, public) = keys_from_jwks(&doc).map_err(ApiError::bad_request)?;
            c.jwks = Some(public);
        }
        let issuer_field = if self.kubernetes {
            "issuer"
        } else {
            "bound_issuer"
        };
        c.issuer = str_field(req, issuer_field, 1024)?
            .unwrap_or("")
            .trim()
            .to_owned();
        let algs = bounded_list(req.field("jwt_supported_algs"), "jwt_supported_algs")?;
        for a in &algs {
            match Algorithm::from_str(a) {
                Ok(alg) if RSA_ALGS.contains(&alg) || alg == Algorithm::ES256 || alg == Algorithm::EdDSA => {}
                _ => {
                    return Err(ApiError::bad_request(format!(
                        "unsupported signing algorithm {a:?} (supported: RS256, RS384, RS512, PS256, PS384, PS512, ES256, EdDSA)"
                    )))
                }
            }
        }
        c.supported_algs = algs;
        if let Some(r) = str_field(req, "default_role", 256)? {
            c.default_role = r.to_lowercase();
        }
        if self.kubernetes {
            c.kubernetes_host = str_field(req, "kubernetes_host", 4096)?
                .unwrap_or("")
                .to_owned();
            c.kubernetes_ca_cert = str_field(req, "kubernetes_ca_cert", MAX_PEM_LEN)?
                .unwrap_or("")
                .to_owned();
            c.disable_iss_validation = bool_field(
                req.field("disable_iss_validation"),
                "disable_iss_validation",
            )?
            .unwrap_or(false);
            c.disable_local_ca_jwt =
                bool_field(req.field("disable_local_ca_jwt"), "disable_local_ca_jwt")?
                    .unwrap_or(false);
            if matches!(str_field(req, "token_reviewer_jwt", MAX_JWT_LEN)?, Some(s) if !s.is_empty())
            {
                // A credential we would never use: not stored.
                warnings.push(
                    "token_reviewer_jwt ignored: shroud verifies tokens locally with pem_keys and never calls the TokenReview API".to_owned(),
                );
            }
        }
        let verifier = Verifier::build(&c, self.kubernetes).map_err(ApiError::bad_request)?;
        if verifier.keys.is_empty() {
            if self.kubernetes {
                warnings.push(
                    "no pem_keys configured: every login will be refused until the cluster's service-account public keys are set".to_owned(),
                );
            } else {
                return Err(ApiError::bad_request(
                    "one of jwt_validation_pubkeys, jwks or jwks_file is required",
                ));
            }
        } else if verifier.algs.is_empty() {
            return Err(ApiError::bad_request(
                "jwt_supported_algs allows no algorithm the configured keys can verify",
            ));
        }

        let _l = self.config_lock.lock().await;
        let raw = serde_json::to_vec(&c).map_err(|e| ApiError::internal(&e))?;
        self.barrier
            .put(&format!("{}config", self.prefix), &raw)
            .await?;
        *self.cache.write().unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(verifier));
        if warnings.is_empty() {
            Ok(Reply::NoContent)
        } else {
            Ok(Reply::Logical(Box::new(Logical {
                warnings,
                mount_type: self.mount_type(),
                ..Default::default()
            })))
        }
    }

    async fn list_roles(&self) -> ApiResult {
        let base = format!("{}role/", self.prefix);
        let keys: Vec<String> = self
            .barrier
            .list(&base)
            .await?
            .into_iter()
            .filter_map(|k| k.strip_prefix(&base).map(str::to_owned))
            .filter(|k| !k.contains('/'))
            .collect();
        if keys.is_empty() {
            return Err(ApiError::not_found());
        }
        Ok(self.reply(json!({ "keys": keys })))
    }

    async fn read_role(&self, name: &str) -> ApiResult {
        let Some(r) = self.load_role(name).await? else {
            return Err(ApiError::not_found());
        };
        let mut m = Map::new();
        if self.kubernetes {
            m.insert(
                "bound_service_account_names".into(),
                json!(r.service_account_names),
            );
            m.insert(
                "bound_service_account_namespaces".into(),
                json!(r.service_account_namespaces),
            );
            m.insert("audience".into(), json!(r.audience));
            m.insert("alias_name_source".into(), json!(r.alias_name_source));
        } else {
            m.insert("role_type".into(), json!(r.role_type));
            m.insert("bound_audiences".into(), json!(r.bound_audiences));
            m.insert("bound_subject".into(), json!(r.bound_subject));
            m.insert(
                "bound_claims".into(),
                if r.bound_claims.is_empty() {
                    Value::Null
                } else {
                    Value::Object(r.bound_claims.clone())
                },
            );
            m.insert("bound_claims_type".into(), json!(r.bound_claims_type));
            m.insert("user_claim".into(), json!(r.user_claim));
            m.insert(
                "claim_mappings".into(),
                if r.claim_mappings.is_empty() {
                    Value::Null
                } else {
                    json!(r.claim_mappings)
                },
            );
            m.insert("clock_skew_leeway".into(), json!(r.clock_skew_leeway));
            m.insert("expiration_leeway".into(), json!(r.expiration_leeway));
            m.insert("not_before_leeway".into(), json!(r.not_before_leeway));
        }
        r.token.json_into(&mut m, true);
        Ok(self.reply(Value::Object(m)))
    }

    /// Create or update: absent fields keep their value, as in Vault.
    async fn write_role(&self, name: &str, req: &Request) -> ApiResult {
        let _g = self.role_lock.lock().await;
        let existing = self.load_role(name).await?;
        let created = existing.is_none();
        let mut r = existing.unwrap_or_default();
        r.token.update(req, true)?;
        if self.kubernetes {
            self.update_kubernetes_role(&mut r, req, created)?;
        } else {
            self.update_jwt_role(&mut r, req)?;
        }
        let raw = serde_json::to_vec(&r).map_err(|e| ApiError::internal(&e))?;
        self.barrier
            .put(&format!("{}role/{name}", self.prefix), &raw)
            .await?;
        Ok(Reply::NoContent)
    }

    fn update_jwt_role(&self, r: &mut Role, req: &Request) -> Result<(), ApiError> {
        match str_field(req, "role_type", 16)? {
            None | Some("") => {
                if r.role_type.is_empty() {
                    r.role_type = "jwt".to_owned();
                }
            }
            Some("jwt") => r.role_type = "jwt".to_owned(),
            Some("oidc") => {
                return Err(ApiError::bad_request(
                    "OIDC roles are not supported (no browser flow, no outbound connections); use role_type \"jwt\"",
                ))
            }
            Some(_) => return Err(ApiError::bad_request("invalid role_type")),
        }
        if let Some(v) = req.field("bound_audiences") {
            r.bound_audiences = bounded_list(Some(v), "bound_audiences")?;
        }
        if let Some(s) = str_field(req, "bound_subject", MAX_ITEM_LEN)? {
            r.bound_subject = s.to_owned();
        }
        if let Some(v) = req.field("bound_claims") {
            let Value::Object(m) = v else {
                return Err(ApiError::bad_request("bound_claims must be a map"));
            };
            if m.len() > MAX_LIST {
                return Err(ApiError::bad_request("bound_claims is too large"));
            }
            for (k, v) in m {
                let ok = match v {
                    Value::Array(a) => {
                        !a.is_empty()
                            && a.len() <= MAX_LIST
                            && a.iter().all(|x| scalar_string(x).is_some())
                    }
                    other => scalar_string(other).is_some(),
                };
                if k.is_empty() || k.len() > MAX_ITEM_LEN || !ok {
                    return Err(ApiError::bad_request(
                        "bound_claims values must be strings, numbers, booleans or non-empty lists of them",
                    ));
                }
            }
            r.bound_claims = m.clone();
        }
        match str_field(req, "bound_claims_type", 16)? {
            None => {}
            Some("" | "string") => r.bound_claims_type = "string".to_owned(),
            Some("glob") => r.bound_claims_type = "glob".to_owned(),
            Some(_) => {
                return Err(ApiError::bad_request(
                    "bound_claims_type must be \"string\" or \"glob\"",
                ))
            }
        }
        if r.bound_claims_type.is_empty() {
            r.bound_claims_type = "string".to_owned();
        }
        if let Some(s) = str_field(req, "user_claim", MAX_ITEM_LEN)? {
            r.user_claim = s.trim().to_owned();
        }
        if r.user_claim.is_empty() {
            r.user_claim = "sub".to_owned();
        }
        if let Some(v) = req.field("claim_mappings") {
            let Value::Object(m) = v else {
                return Err(ApiError::bad_request("claim_mappings must be a map"));
            };
            if m.len() > MAX_LIST {
                return Err(ApiError::bad_request("claim_mappings is too large"));
            }
            let mut out = BTreeMap::new();
            for (claim, target) in m {
                let Some(target) = target.as_str() else {
                    return Err(ApiError::bad_request(
                        "claim_mappings values must be strings",
                    ));
                };
                if target == "role" {
                    return Err(ApiError::bad_request(
                        "metadata key \"role\" is reserved and may not be a claim_mappings target",
                    ));
                }
                if target.is_empty()
                    || target.len() > MAX_ITEM_LEN
                    || claim.len() > MAX_ITEM_LEN
                    || out.values().any(|t: &String| t == target)
                {
                    return Err(ApiError::bad_request(
                        "claim_mappings targets must be unique, non-empty names",
                    ));
                }
                out.insert(claim.clone(), target.to_owned());
            }
            r.claim_mappings = out;
        }
        if let Some(l) = leeway_field(req.field("clock_skew_leeway"), "clock_skew_leeway")? {
            r.clock_skew_leeway = l;
        }
        if let Some(l) = leeway_field(req.field("expiration_leeway"), "expiration_leeway")? {
            r.expiration_leeway = l;
        }
        if let Some(l) = leeway_field(req.field("not_before_leeway"), "not_before_leeway")? {
            r.not_before_leeway = l;
        }
        // Vault's rule: a JWT role must bind something, or any token from the issuer logs in.
        if r.bound_audiences.is_empty() && r.bound_subject.is_empty() && r.bound_claims.is_empty() {
            return Err(ApiError::bad_request(
                "must have at least one bound constraint when creating a role (bound_audiences, bound_subject or bound_claims)",
            ));
        }
        Ok(())
    }

    fn update_kubernetes_role(
        &self,
        r: &mut Role,
        req: &Request,
        created: bool,
    ) -> Result<(), ApiError> {
        if let Some(v) = req.field("bound_service_account_names") {
            r.service_account_names = bounded_list(Some(v), "bound_service_account_names")?;
        }
        if let Some(v) = req.field("bound_service_account_namespaces") {
            r.service_account_namespaces =
                bounded_list(Some(v), "bound_service_account_namespaces")?;
        }
        if r.service_account_names.is_empty() {
            return Err(ApiError::bad_request(
                "\"bound_service_account_names\" can not be empty",
            ));
        }
        if r.service_account_namespaces.is_empty() {
            return Err(ApiError::bad_request(
                "\"bound_service_account_namespaces\" can not be empty",
            ));
        }
        let star = |l: &[String]| l.len() == 1 && l[0] == "*";
        if star(&r.service_account_names) && star(&r.service_account_namespaces) {
            return Err(ApiError::bad_request(
                "service_account_names and service_account_namespaces can not both be \"*\"",
            ));
        }
        if let Some(a) = str_field(req, "audience", MAX_ITEM_LEN)? {
            r.audience = a.trim().to_owned();
        }
        match str_field(req, "alias_name_source", 32)? {
            None if created => r.alias_name_source = "serviceaccount_uid".to_owned(),
            None => {}
            Some("" | "serviceaccount_uid") => {
                r.alias_name_source = "serviceaccount_uid".to_owned()
            }
            Some("serviceaccount_name") => r.alias_name_source = "serviceaccount_name".to_owned(),
            Some(_) => return Err(ApiError::bad_request("invalid alias_name_source")),
        }
        Ok(())
    }

    /// Renders a refusal the way the imitated plugin does.
    fn refusal(&self, r: Refusal) -> ApiError {
        tracing::info!(method = self.mount_type(), reason = ?r, "login refused");
        match (self.kubernetes, r) {
            (true, Refusal::Signature) => ApiError::permission_denied(),
            (true, Refusal::Token(m)) => ApiError::new(403, m),
            (true, Refusal::Claims(m)) => ApiError::new(403, m),
            (false, Refusal::Signature) => {
                ApiError::bad_request("no known key successfully validated the token signature")
            }
            (false, Refusal::Token(m)) => {
                ApiError::bad_request(format!("error validating token: {m}"))
            }
            (false, Refusal::Claims(m)) => {
                ApiError::bad_request(format!("error validating claims: {m}"))
            }
        }
    }

    async fn do_login(&self, req: &Request) -> Result<LoginResult, ApiError> {
        let verifier = self.verifier().await?;
        let role_name = match str_field(req, "role", 256)? {
            Some(r) if !r.trim().is_empty() => r.trim().to_lowercase(),
            _ => match verifier.as_ref().map(|v| v.default_role.as_str()) {
                Some(d) if !self.kubernetes && !d.is_empty() => d.to_owned(),
                _ => return Err(ApiError::bad_request("missing role")),
            },
        };
        let token = match str_field(req, "jwt", MAX_JWT_LEN)? {
            Some(t) if !t.trim().is_empty() => t.trim(),
            _ => return Err(ApiError::bad_request("missing jwt")),
        };
        let found = if valid_name(&role_name) {
            self.load_role(&role_name).await?
        } else {
            None
        };
        let role = match found {
            Some(r) => r,
            _ if self.kubernetes => {
                return Err(ApiError::bad_request(format!(
                    "invalid role name {role_name:?}"
                )))
            }
            _ => {
                return Err(ApiError::bad_request(format!(
                    "role {role_name:?} could not be found"
                )))
            }
        };
        let Some(verifier) = verifier else {
            return Err(ApiError::bad_request("auth method is not configured"));
        };
        if verifier.keys.is_empty() {
            // Vault's kubernetes plugin would fall back to the TokenReview API here; without
            // it there is nothing that could vouch for the token, so refuse.
            return Err(self.refusal(Refusal::Token("no keys are configured to verify tokens")));
        }
        let claims = verifier.verify(token).map_err(|r| self.refusal(r))?;
        let result = if self.kubernetes {
            self.kubernetes_identity(&verifier, &role, &role_name, claims)
        } else {
            self.jwt_identity(&verifier, &role, &role_name, claims)
        };
        result.map_err(|r| self.refusal(r))
    }

    fn check_issuer(v: &Verifier, claims: &Map<String, Value>) -> Result<(), Refusal> {
        if let Some(want) = &v.issuer {
            if claims.get("iss").and_then(Value::as_str) != Some(want.as_str()) {
                return Err(Refusal::Claims(
                    "iss claim does not match the configured issuer".into(),
                ));
            }
        }
        Ok(())
    }

    fn jwt_identity(
        &self,
        v: &Verifier,
        role: &Role,
        role_name: &str,
        claims: Map<String, Value>,
    ) -> Result<LoginResult, Refusal> {
        // Vault's leeway convention: 0 means the default, -1 means none. The extra
        // expiration/not-before leeways default to none (Vault: 150 s; see docs/auth.md).
        let skew = match role.clock_skew_leeway {
            0 => DEFAULT_CLOCK_SKEW,
            l => l.max(0),
        };
        check_times(
            &claims,
            now_secs(),
            skew,
            role.expiration_leeway.max(0),
            role.not_before_leeway.max(0),
            true,
        )?;
        Self::check_issuer(v, &claims)?;
        let aud = audiences(&claims)?;
        if role.bound_audiences.is_empty() {
            if !aud.is_empty() {
                return Err(Refusal::Claims(
                    "audience claim found in JWT but no audiences bound to the role".into(),
                ));
            }
        } else if !aud
            .iter()
            .any(|a| role.bound_audiences.iter().any(|b| b == a))
        {
            return Err(Refusal::Claims(
                "aud claim does not match any bound audience".into(),
            ));
        }
        if !role.bound_subject.is_empty()
            && claims.get("sub").and_then(Value::as_str) != Some(role.bound_subject.as_str())
        {
            return Err(Refusal::Claims(
                "sub claim does not match bound subject".into(),
            ));
        }
        let all = Value::Object(claims);
        let glob = role.bound_claims_type == "glob";
        for (name, expected) in &role.bound_claims {
            let Some(actual) = claim(&all, name) else {
                return Err(Refusal::Claims(format!("claim {name:?} is missing")));
            };
            let want = claim_strings(expected);
            let have = claim_strings(actual);
            let hit = have.iter().any(|h| {
                want.iter()
                    .any(|w| if glob { glob_match(w, h) } else { w == h })
            });
            if !hit {
                return Err(Refusal::Claims(format!(
                    "claim {name:?} does not match any associated bound claim values"
                )));
            }
        }
        let user = claim(&all, &role.user_claim)
            .and_then(scalar_string)
            .filter(|u| !u.is_empty() && u.len() <= 256)
            .ok_or_else(|| {
                Refusal::Claims(format!(
                    "claim {:?} not found in token or not a string",
                    role.user_claim
                ))
            })?;
        let mut metadata = Map::new();
        for (claim_name, target) in &role.claim_mappings {
            if let Some(val) = claim(&all, claim_name) {
                let s = scalar_string(val)
                    .filter(|s| s.len() <= 1024)
                    .ok_or_else(|| {
                        Refusal::Claims(format!("error converting claim {claim_name:?} to string"))
                    })?;
                metadata.insert(target.clone(), Value::String(s));
            }
        }
        metadata.insert("role".into(), Value::String(role_name.to_owned()));
        Ok(role.token.login_result(metadata, format!("jwt-{user}")))
    }

    fn kubernetes_identity(
        &self,
        v: &Verifier,
        role: &Role,
        role_name: &str,
        claims: Map<String, Value>,
    ) -> Result<LoginResult, Refusal> {
        check_times(&claims, now_secs(), KUBERNETES_CLOCK_SKEW, 0, 0, false)?;
        Self::check_issuer(v, &claims)?;
        if !role.audience.is_empty() && !audiences(&claims)?.contains(&role.audience.as_str()) {
            return Err(Refusal::Claims(
                "aud claim does not match the role's audience".into(),
            ));
        }
        let sa = service_account(&claims).ok_or_else(|| {
            Refusal::Claims("could not parse the service account from the token claims".into())
        })?;
        if !role
            .service_account_names
            .iter()
            .any(|p| glob_match(p, &sa.name))
        {
            return Err(Refusal::Claims(
                "service account name not authorized".into(),
            ));
        }
        if !role
            .service_account_namespaces
            .iter()
            .any(|p| glob_match(p, &sa.namespace))
        {
            return Err(Refusal::Claims("namespace not authorized".into()));
        }
        let mut metadata = Map::new();
        metadata.insert("role".into(), json!(role_name));
        metadata.insert("service_account_name".into(), json!(sa.name));
        metadata.insert("service_account_namespace".into(), json!(sa.namespace));
        metadata.insert("service_account_secret_name".into(), json!(sa.secret_name));
        metadata.insert("service_account_uid".into(), json!(sa.uid));
        let display = format!("kubernetes-{}-{}", sa.namespace, sa.name);
        Ok(role.token.login_result(metadata, display))
    }
}

/// Reads a JWKS file once, at config time (bounded size, absolute path).
async fn read_jwks_file(path: &str) -> Result<Value, ApiError> {
    if !std::path::Path::new(path).is_absolute() {
        return Err(ApiError::bad_request("jwks_file must be an absolute path"));
    }
    // One message for every failure: the endpoint must not become a probe of which files
    // exist or what they contain.
    let unusable = || {
        ApiError::bad_request(
            "jwks_file cannot be used: unreadable, too large or not a JWKS document",
        )
    };
    let f = tokio::fs::File::open(path).await.map_err(|_| unusable())?;
    let mut buf = Vec::new();
    f.take(MAX_JWKS_LEN as u64 + 1)
        .read_to_end(&mut buf)
        .await
        .map_err(|_| unusable())?;
    if buf.len() > MAX_JWKS_LEN {
        return Err(unusable());
    }
    let v: Value = serde_json::from_slice(&buf).map_err(|_| unusable())?;
    keys_from_jwks(&v).map_err(|_| unusable())?;
    Ok(v)
}

#[async_trait::async_trait]
impl Engine for JwtAuth {
    async fn exists(&self, rel: &str, _req: &Request) -> Result<bool, ApiError> {
        let rel = rel.trim_end_matches('/');
        if rel == "config" {
            return Ok(self.load_config().await?.is_some());
        }
        match rel.strip_prefix("role/") {
            Some(n) if !n.contains('/') => {
                Ok(valid_name(n) && self.load_role(&n.to_lowercase()).await?.is_some())
            }
            _ => Ok(true),
        }
    }

    async fn handle(&self, rel: &str, req: &Request) -> ApiResult {
        self.route(rel, req).await
    }

    fn prefix(&self) -> &str {
        &self.prefix
    }

    fn is_login(&self, rel: &str, op: Operation) -> bool {
        op == Operation::Update && rel.trim_end_matches('/') == "login"
    }

    async fn login(&self, _rel: &str, req: &Request) -> Result<LoginResult, ApiError> {
        self.do_login(req).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_matching() {
        assert!(glob_match("*", ""));
        assert!(glob_match("*", "anything"));
        assert!(glob_match("app-*", "app-web"));
        assert!(glob_match("*-prod", "web-prod"));
        assert!(glob_match("a*b*c", "aXXbYYc"));
        assert!(glob_match("exact", "exact"));
        assert!(!glob_match("exact", "exactly"));
        assert!(!glob_match("app-*", "ap-web"));
        assert!(!glob_match("a*b", "acbd"));
        assert!(glob_match("a**b", "ab"));
    }

    #[test]
    fn der_tlv_rejects_truncation() {
        assert_eq!(der_tlv(&[0x30, 0x03, 1, 2]), None);
        assert_eq!(der_tlv(&[0x30, 0x82, 0x01]), None);
        assert_eq!(der_tlv(&[0x30, 0x80]), None, "indefinite length refused");
        let (tag, content, rest) = der_tlv(&[0x02, 0x01, 0x05, 0xff]).unwrap();
        assert_eq!((tag, content, rest), (0x02, &[5u8][..], &[0xffu8][..]));
    }

    #[test]
    fn unsupported_spki_refused() {
        // A P-384 key: same shape as P-256 but a different curve OID and size.
        let mut der = vec![
            0x30, 0x76, 0x30, 0x10, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06,
            0x05, 0x2b, 0x81, 0x04, 0x00, 0x22, 0x03, 0x62, 0x00, 0x04,
        ];
        der.extend([7u8; 96]);
        assert!(key_from_spki(&der).is_err());
        assert!(key_from_spki(&[]).is_err());
        assert!(key_from_spki(&[0x30, 0x00]).is_err());
    }

    /// One DER element with a short or long-form length.
    fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        match content.len() {
            n @ 0..=0x7f => out.push(n as u8),
            n @ 0x80..=0xff => out.extend([0x81, n as u8]),
            n => out.extend([0x82, (n >> 8) as u8, n as u8]),
        }
        out.extend_from_slice(content);
        out
    }

    /// A structurally valid certificate around `spki`, with or without the v3 version field.
    fn certificate(spki: &[u8], with_version: bool) -> Vec<u8> {
        let alg = tlv(
            0x30,
            &tlv(0x06, &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02]),
        );
        let name = tlv(0x30, &tlv(0x31, &[]));
        let mut tbs = vec![];
        if with_version {
            tbs.extend(tlv(0xa0, &tlv(0x02, &[2])));
        }
        tbs.extend(tlv(0x02, &[0x01, 0x23]));
        tbs.extend(&alg);
        tbs.extend(&name);
        tbs.extend(tlv(
            0x30,
            &[tlv(0x17, b"000101000000Z"), tlv(0x17, b"010101000000Z")].concat(),
        ));
        tbs.extend(&name);
        tbs.extend_from_slice(spki);
        let mut cert = tlv(0x30, &tbs);
        cert.extend(&alg);
        cert.extend(tlv(0x03, &[0, 1, 2, 3]));
        tlv(0x30, &cert)
    }

    fn ed25519_spki() -> Vec<u8> {
        let mut spki = ED25519_SPKI_PREFIX.to_vec();
        spki.extend([9u8; 32]);
        spki
    }

    #[test]
    fn certificate_spki_extracted_with_and_without_version() {
        let spki = ed25519_spki();
        for with_version in [true, false] {
            let der = certificate(&spki, with_version);
            assert_eq!(spki_from_certificate(&der), Some(&spki[..]));
        }
    }

    #[test]
    fn malformed_certificate_refused_without_panic() {
        let der = certificate(&ed25519_spki(), true);
        for cut in 0..der.len() {
            assert_eq!(
                spki_from_certificate(&der[..cut]),
                None,
                "prefix of {cut} bytes"
            );
        }
        let mut trailing = der.clone();
        trailing.push(0);
        assert_eq!(spki_from_certificate(&trailing), None, "trailing bytes");
        // Every single-byte corruption either still parses or is refused; none panics.
        for i in 0..der.len() {
            for v in [0x00, 0x30, 0x7f, 0x80, 0x84, 0xff] {
                let mut bad = der.clone();
                bad[i] = v;
                let _ = spki_from_certificate(&bad);
            }
        }
        // A public key where the certificate expects the serial number.
        let wrong = tlv(0x30, &tlv(0x30, &ed25519_spki()));
        assert_eq!(spki_from_certificate(&wrong), None);
    }

    #[test]
    fn certificate_pem_with_unsupported_key_refused() {
        let der = certificate(&tlv(0x30, &tlv(0x30, &[])), true);
        let b64 = base64::engine::general_purpose::STANDARD.encode(der);
        let pem = format!("-----BEGIN CERTIFICATE-----\n{b64}\n-----END CERTIFICATE-----\n");
        let err = keys_from_pem(&pem).err().unwrap();
        assert!(
            err.starts_with("certificate: unsupported public key type"),
            "{err}"
        );
    }

    #[test]
    fn private_key_pem_refused() {
        let pem = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIF1tM8Qq3uD8RpDYtCHjLxuSwq8yWHlxjNWwKJtEc3Pq\n-----END PRIVATE KEY-----\n";
        let err = keys_from_pem(pem).err().unwrap();
        assert!(err.contains("private key"), "{err}");
        assert!(!err.contains("MC4CAQ"), "PEM content leaked: {err}");
    }

    #[test]
    fn symmetric_jwk_refused() {
        let doc = json!({"keys": [{"kty": "oct", "k": "c2VjcmV0"}]});
        assert!(keys_from_jwks(&doc).is_err());
    }

    #[test]
    fn times_with_leeway() {
        let mut c = Map::new();
        c.insert("exp".into(), json!(1000));
        assert!(check_times(&c, 999, 0, 0, 0, true).is_ok());
        assert!(check_times(&c, 1000, 0, 0, 0, true).is_err());
        assert!(check_times(&c, 1059, 60, 0, 0, true).is_ok());
        assert!(check_times(&c, 1060, 60, 0, 0, true).is_err());
        c.insert("nbf".into(), json!(2000.5));
        assert!(check_times(&c, 900, 0, 0, 0, true).is_err());
        assert!(
            check_times(&Map::new(), 0, 0, 0, 0, true).is_err(),
            "exp required"
        );
        assert!(check_times(&Map::new(), 0, 0, 0, 0, false).is_ok());
        let mut bad = Map::new();
        bad.insert("exp".into(), json!("soon"));
        assert!(check_times(&bad, 0, 0, 0, 0, false).is_err());
    }

    #[test]
    fn service_account_shapes() {
        let legacy: Map<String, Value> = serde_json::from_value(json!({
            "kubernetes.io/serviceaccount/namespace": "ns",
            "kubernetes.io/serviceaccount/service-account.name": "sa",
            "kubernetes.io/serviceaccount/service-account.uid": "u-1",
            "kubernetes.io/serviceaccount/secret.name": "sa-token",
        }))
        .unwrap();
        let sa = service_account(&legacy).unwrap();
        assert_eq!((sa.namespace.as_str(), sa.name.as_str()), ("ns", "sa"));
        assert_eq!(sa.secret_name, "sa-token");
        let projected: Map<String, Value> = serde_json::from_value(json!({
            "kubernetes.io": {"namespace": "ns2", "serviceaccount": {"name": "sa2", "uid": "u-2"}},
        }))
        .unwrap();
        let sa = service_account(&projected).unwrap();
        assert_eq!((sa.namespace.as_str(), sa.uid.as_str()), ("ns2", "u-2"));
        assert_eq!(sa.secret_name, "");
        assert!(service_account(&Map::new()).is_none());
    }
}
