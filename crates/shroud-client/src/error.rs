//! The one error type of the client.
//!
//! Invariant: no variant ever carries the client token or a secret value. Server error strings
//! are kept (they are what the user needs to see) but the server never echoes tokens in them.

use std::path::PathBuf;

/// Everything that can go wrong talking to a shroud (or Vault) server.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The server address is not an `http://` or `https://` URL with a host.
    #[error("invalid server address {addr:?}: {reason}")]
    InvalidAddress {
        /// The address as given.
        addr: String,
        /// Why it was rejected.
        reason: &'static str,
    },

    /// An `https://` address was given with neither a CA certificate nor a pinned fingerprint,
    /// so no server certificate could ever be trusted (system roots are deliberately not used).
    #[error("no way to trust the TLS certificate of {addr}")]
    NoTrustAnchor {
        /// The server address.
        addr: String,
    },

    /// The CA certificate file could not be read or holds no usable certificate.
    #[error("reading CA certificate {}: {reason}", path.display())]
    CaCert {
        /// The file named by `SHROUD_CACERT` / `VAULT_CACERT`.
        path: PathBuf,
        /// What was wrong with it.
        reason: String,
    },

    /// A pinned certificate fingerprint is not of the form `sha256:<64 hex digits>`.
    #[error("invalid certificate fingerprint: {reason}")]
    InvalidFingerprint {
        /// What was wrong with it (never echoes the input, which is harmless but long).
        reason: &'static str,
    },

    /// The token holds bytes that cannot travel in an HTTP header. The token itself is not
    /// part of the message.
    #[error("the token contains characters that cannot be sent in an HTTP header")]
    InvalidToken,

    /// An API path was rejected before sending, e.g. because it holds `.` or `..` segments
    /// that URL normalisation would resolve to a different endpoint.
    #[error("invalid path {path:?}: {reason}")]
    InvalidPath {
        /// The path as given.
        path: String,
        /// Why it was rejected.
        reason: &'static str,
    },

    /// Building the HTTP client or its TLS configuration failed.
    #[error("setting up the HTTP client: {reason}")]
    Setup {
        /// The underlying error, as text.
        reason: String,
    },

    /// The TCP connection could not be established (refused, unreachable, DNS failure).
    #[error("cannot connect to {addr}: {reason}")]
    Connect {
        /// The server address.
        addr: String,
        /// The innermost cause, e.g. `Connection refused (os error 111)`.
        reason: String,
    },

    /// The TLS handshake failed: the certificate is not trusted, does not match the pinned
    /// fingerprint, or the server does not speak TLS.
    #[error("TLS handshake with {addr} failed: {reason}")]
    Tls {
        /// The server address.
        addr: String,
        /// The rustls error, as text.
        reason: String,
    },

    /// Connecting took longer than 10 s or the whole request longer than 60 s.
    #[error("request to {addr} timed out")]
    Timeout {
        /// The server address.
        addr: String,
    },

    /// Any other transport failure (connection reset, malformed HTTP).
    #[error("talking to {addr}: {reason}")]
    Transport {
        /// The server address.
        addr: String,
        /// The innermost cause, as text.
        reason: String,
    },

    /// The server answered with a status outside 2xx. `errors` is Vault's `{"errors":[...]}`
    /// list with multierror decoration (`1 error occurred:\n\t* ...`) removed.
    #[error("{}", api_message(*status, errors))]
    Api {
        /// HTTP status code.
        status: u16,
        /// The server's error messages, possibly empty (a plain 404 has none).
        errors: Vec<String>,
    },

    /// The response body is larger than the client accepts.
    #[error("response from the server is larger than {limit} bytes")]
    ResponseTooLarge {
        /// The limit in bytes.
        limit: usize,
    },

    /// The response does not have the shape the Vault API documents.
    #[error("unexpected response from the server: {reason}")]
    InvalidResponse {
        /// What was missing or malformed.
        reason: String,
    },

    /// A request was refused by the client before sending (e.g. a batch over the size
    /// limit).
    #[error("invalid request: {reason}")]
    InvalidRequest {
        /// What was wrong with it.
        reason: String,
    },

    /// A response-wrapping TTL cannot be sent in the `X-Vault-Wrap-TTL` header.
    #[error("invalid wrap TTL {ttl:?}: use a duration like 60s or 5m")]
    InvalidWrapTtl {
        /// The TTL as given (not secret).
        ttl: String,
    },

    /// A response was asked to be wrapped (`X-Vault-Wrap-TTL`) but the server answered with
    /// the response itself. Its content was discarded unread rather than handed to a caller
    /// that expected only a wrapping token (it may hold a secret).
    #[error("the server did not wrap the response (does it support response wrapping?)")]
    NotWrapped,

    /// The request body could not be serialised.
    #[error("encoding the request body: {0}")]
    Encode(#[source] serde_json::Error),
}

impl ClientError {
    /// HTTP status of an [`ClientError::Api`] error.
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Api { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// True for 403: missing, invalid or expired token, or an ACL denial.
    pub fn is_permission_denied(&self) -> bool {
        self.status() == Some(403)
    }

    /// True for 503, which Vault returns for every request while sealed.
    pub fn is_sealed(&self) -> bool {
        self.status() == Some(503)
    }

    /// True for 404.
    pub fn is_not_found(&self) -> bool {
        self.status() == Some(404)
    }

    /// True for a KV v2 check-and-set mismatch (400 with Vault's message).
    pub fn is_cas_mismatch(&self) -> bool {
        match self {
            ClientError::Api {
                status: 400,
                errors,
            } => errors.iter().any(|e| e.contains("check-and-set")),
            _ => false,
        }
    }
}

fn api_message(status: u16, errors: &[String]) -> String {
    if !errors.is_empty() {
        return errors.join("; ");
    }
    match status {
        400 => "invalid request".to_owned(),
        403 => "permission denied".to_owned(),
        404 => "not found".to_owned(),
        405 => "unsupported operation".to_owned(),
        413 => "request too large".to_owned(),
        429 => "rate limit exceeded".to_owned(),
        501 => "server is not initialized".to_owned(),
        503 => "server is sealed".to_owned(),
        s => format!("server returned status {s}"),
    }
}

/// Most server error messages kept, and the longest kept message in characters: a hostile
/// server must not be able to flood the terminal through an error.
const MAX_ERRORS: usize = 16;
const MAX_ERROR_CHARS: usize = 1024;

/// Removes Go `multierror` decoration: `"1 error occurred:\n\t* permission denied\n\n"` becomes
/// `["permission denied"]`. Plain messages are trimmed and kept. Control characters (terminal
/// escape sequences from a hostile server) become spaces, and count and length are bounded.
pub(crate) fn clean_server_errors(raw: Vec<String>) -> Vec<String> {
    let mut out = Vec::with_capacity(raw.len().min(MAX_ERRORS));
    for msg in raw.into_iter().take(MAX_ERRORS) {
        let bullets: Vec<&str> = msg
            .lines()
            .filter_map(|l| l.trim().strip_prefix("* "))
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        let is_multierror = msg.contains("error occurred") || msg.contains("errors occurred");
        if is_multierror && !bullets.is_empty() {
            out.extend(bullets.into_iter().map(str::to_owned));
            continue;
        }
        let t = msg.trim();
        if !t.is_empty() {
            out.push(t.to_owned());
        }
    }
    out.truncate(MAX_ERRORS);
    for m in &mut out {
        *m = m
            .chars()
            .take(MAX_ERROR_CHARS)
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multierror_text_is_unwrapped() {
        let raw = vec!["1 error occurred:\n\t* permission denied\n\n".to_owned()];
        assert_eq!(clean_server_errors(raw), vec!["permission denied"]);
        let raw = vec![
            "2 errors occurred:\n\t* a\n\t* b\n\n".to_owned(),
            " plain ".to_owned(),
        ];
        assert_eq!(clean_server_errors(raw), vec!["a", "b", "plain"]);
    }

    #[test]
    fn terminal_escapes_from_the_server_are_neutralised() {
        let raw = vec!["bad\x1b[2J\x1b]0;owned\x07 thing".to_owned()];
        let cleaned = clean_server_errors(raw);
        assert!(!cleaned[0].chars().any(char::is_control), "{cleaned:?}");
        let many: Vec<String> = (0..100).map(|i| format!("e{i}")).collect();
        assert_eq!(clean_server_errors(many).len(), MAX_ERRORS);
        let long = vec!["x".repeat(10_000)];
        assert_eq!(clean_server_errors(long)[0].len(), MAX_ERROR_CHARS);
    }

    #[test]
    fn empty_error_list_gets_a_status_message() {
        let e = ClientError::Api {
            status: 503,
            errors: vec![],
        };
        assert_eq!(e.to_string(), "server is sealed");
        assert!(e.is_sealed());
        let e = ClientError::Api {
            status: 404,
            errors: vec![],
        };
        assert_eq!(e.to_string(), "not found");
    }

    #[test]
    fn cas_mismatch_is_recognised() {
        let e = ClientError::Api {
            status: 400,
            errors: vec!["check-and-set parameter did not match the current version".into()],
        };
        assert!(e.is_cas_mismatch());
        let e = ClientError::Api {
            status: 400,
            errors: vec!["no data provided".into()],
        };
        assert!(!e.is_cas_mismatch());
    }
}
