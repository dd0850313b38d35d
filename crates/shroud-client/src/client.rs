//! The HTTP transport: one [`Client`] per server address and token.

use std::path::PathBuf;
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderValue, CONTENT_TYPE};
use reqwest::Url;
use serde::de::DeserializeOwned;
use serde::Serialize;
use shroud_core::SecretString;
use zeroize::Zeroizing;

use crate::error::clean_server_errors;
use crate::tls::{self, pinning::CertFingerprint, TlsTrust};
use crate::{path, ClientError};

/// Time allowed to establish the TCP (and TLS) connection.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Time allowed for a whole request, response body included.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// Largest response body accepted. Vault's own request limit is 32 MiB; no response of the
/// endpoints the client uses comes near it.
pub const MAX_RESPONSE_BYTES: usize = 32 * 1024 * 1024;

/// Where the server is and how to authenticate to it.
#[derive(Debug, Clone, Default)]
pub struct ClientConfig {
    /// Base address, e.g. `http://127.0.0.1:8200` or `https://vault.example:8200`.
    pub addr: String,
    /// Token sent as `X-Vault-Token`. `None` for unauthenticated calls (health, init, unseal).
    pub token: Option<SecretString>,
    /// PEM file of CA certificates to trust (`SHROUD_CACERT` / `VAULT_CACERT`).
    pub ca_cert: Option<PathBuf>,
    /// Pinned server certificate (`SHROUD_TLS_FINGERPRINT`).
    pub tls_fingerprint: Option<CertFingerprint>,
}

/// HTTP verbs the Vault API uses. `List` is Vault's non-standard `LIST` verb, which every
/// Vault server (and shroud) accepts alongside `GET ?list=true`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Method {
    /// Read.
    Get,
    /// List keys under a path.
    List,
    /// Create or update (Vault treats POST and PUT alike).
    Post,
    /// Create or update.
    Put,
    /// Delete.
    Delete,
}

impl Method {
    fn to_reqwest(self) -> reqwest::Method {
        match self {
            Method::Get => reqwest::Method::GET,
            Method::Post => reqwest::Method::POST,
            Method::Put => reqwest::Method::PUT,
            Method::Delete => reqwest::Method::DELETE,
            // Invariant: `from_bytes` fails only on bytes that are not an RFC 9110 token;
            // "LIST" is one, so this cannot panic.
            #[allow(clippy::expect_used)]
            Method::List => reqwest::Method::from_bytes(b"LIST").expect("LIST is a valid token"),
        }
    }
}

/// A successful (2xx) response: the parsed JSON body, or `None` for 204 No Content.
#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    /// HTTP status (200, 204, ...).
    pub status: u16,
    /// The JSON body; `None` when the server sent no body.
    pub body: Option<serde_json::Value>,
}

impl Response {
    /// The envelope's `data` object, if any.
    pub fn data(&self) -> Option<&serde_json::Value> {
        self.body.as_ref()?.get("data").filter(|d| !d.is_null())
    }
}

/// A raw answer of any status. The body buffer is zeroized on drop because it may hold
/// secret values (KV reads, init keys, tokens).
pub(crate) struct RawResponse {
    pub status: u16,
    pub body: Zeroizing<Vec<u8>>,
}

impl RawResponse {
    /// Parses the body into `T`, or reports which call returned something unexpected.
    pub fn json<T: DeserializeOwned>(&self, what: &str) -> Result<T, ClientError> {
        serde_json::from_slice(&self.body).map_err(|e| ClientError::InvalidResponse {
            reason: format!("{what}: {}", describe_json_error(&e)),
        })
    }

    /// Turns a non-2xx answer into [`ClientError::Api`].
    pub fn into_api_error(self) -> ClientError {
        #[derive(serde::Deserialize)]
        struct Errors {
            #[serde(default)]
            errors: Vec<String>,
        }
        let errors = match serde_json::from_slice::<Errors>(&self.body) {
            Ok(e) => clean_server_errors(e.errors),
            // Not Vault's JSON (a proxy's HTML page, say): keep a short printable excerpt.
            Err(_) => {
                let text: String = String::from_utf8_lossy(&self.body)
                    .chars()
                    .filter(|c| !c.is_control())
                    .take(200)
                    .collect();
                if text.trim().is_empty() {
                    vec![]
                } else {
                    vec![text.trim().to_owned()]
                }
            }
        };
        ClientError::Api {
            status: self.status,
            errors,
        }
    }

    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// A client of one server, with one token. Cheap to clone (the connection pool is shared).
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: Url,
    /// `scheme://host:port` for messages; never includes credentials.
    display_addr: String,
    token: Option<SecretString>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("addr", &self.display_addr)
            .field("token", &self.token.as_ref().map(|_| "[REDACTED]"))
            .finish()
    }
}

impl Client {
    /// Builds a client. Fails on a malformed address, an unreadable CA file, or an `https`
    /// address with no CA and no pin (the system trust store is deliberately not used).
    pub fn new(config: ClientConfig) -> Result<Self, ClientError> {
        let base = parse_addr(&config.addr)?;
        let display_addr = base.as_str().trim_end_matches('/').to_owned();
        let mut trust = TlsTrust {
            ca_certs: Vec::new(),
            pin: config.tls_fingerprint,
        };
        if let Some(path) = &config.ca_cert {
            trust.ca_certs = tls::load_ca_file(path)?;
        }
        let https = base.scheme() == "https";
        if https && trust.is_empty() {
            return Err(ClientError::NoTrustAnchor { addr: display_addr });
        }
        if !https && !is_loopback(&base) {
            tracing::warn!(
                addr = %display_addr,
                "plain http to a non-loopback address: the token and secrets travel unencrypted"
            );
        }
        let tls_config = tls::client_config(&trust)?;

        let mut headers = HeaderMap::new();
        // Vault's anti-SSRF marker; Vault Agent/Proxy listeners may require it.
        headers.insert("X-Vault-Request", HeaderValue::from_static("true"));
        let origin = base.origin();
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(tls_config)
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .default_headers(headers)
            .user_agent(concat!("shroud/", env!("CARGO_PKG_VERSION")))
            .https_only(https)
            // X-Vault-Token is a custom header, which reqwest does not strip on a cross-origin
            // redirect; follow redirects (Vault standby -> active) only within the same origin.
            .redirect(reqwest::redirect::Policy::custom(move |attempt| {
                if attempt.previous().len() >= 3 || attempt.url().origin() != origin {
                    attempt.stop()
                } else {
                    attempt.follow()
                }
            }))
            .build()
            .map_err(|e| ClientError::Setup {
                reason: innermost(&e),
            })?;
        Ok(Self {
            http,
            base,
            display_addr,
            token: config.token,
        })
    }

    /// The same server and TLS settings with a different token (used to verify a token before
    /// storing it, and by `token lookup` of another token).
    pub fn with_token(&self, token: Option<SecretString>) -> Self {
        Self {
            http: self.http.clone(),
            base: self.base.clone(),
            display_addr: self.display_addr.clone(),
            token,
        }
    }

    /// The server address, for messages.
    pub fn addr(&self) -> &str {
        &self.display_addr
    }

    /// True if a token is configured.
    pub fn has_token(&self) -> bool {
        self.token.is_some()
    }

    /// Sends `method` to `/v1/<path>` with an optional JSON body. Non-2xx becomes
    /// [`ClientError::Api`]; 204 gives `body: None`.
    ///
    /// The returned JSON is a plain `serde_json::Value`; callers reading secret values should
    /// use the typed helpers, which keep them in [`SecretString`].
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<Response, ClientError> {
        let raw = self.send(method, path, &[], body).await?;
        if !raw.is_success() {
            return Err(raw.into_api_error());
        }
        let body = if raw.body.iter().all(u8::is_ascii_whitespace) {
            None
        } else {
            Some(raw.json("response body")?)
        };
        Ok(Response {
            status: raw.status,
            body,
        })
    }

    /// Sends a request and returns the raw answer whatever its status.
    pub(crate) async fn send<B: Serialize + ?Sized>(
        &self,
        method: Method,
        api_path: &str,
        query: &[(&str, String)],
        body: Option<&B>,
    ) -> Result<RawResponse, ClientError> {
        self.send_inner(method, api_path, query, body, None).await
    }

    /// [`Client::send`] with an optional `X-Vault-Wrap-TTL` header (Vault then answers with a
    /// `wrap_info` envelope instead of the response itself).
    pub(crate) async fn send_inner<B: Serialize + ?Sized>(
        &self,
        method: Method,
        api_path: &str,
        query: &[(&str, String)],
        body: Option<&B>,
        wrap_ttl: Option<&str>,
    ) -> Result<RawResponse, ClientError> {
        let mut url = self.url(api_path)?;
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        let mut req = self.http.request(method.to_reqwest(), url);
        if let Some(token) = &self.token {
            let mut value =
                HeaderValue::from_str(token.expose()).map_err(|_| ClientError::InvalidToken)?;
            // Keeps the value out of reqwest/hyper debug output.
            value.set_sensitive(true);
            req = req.header("X-Vault-Token", value);
        }
        if let Some(ttl) = wrap_ttl {
            let value = HeaderValue::from_str(ttl).map_err(|_| ClientError::InvalidWrapTtl {
                ttl: ttl.chars().take(64).collect(),
            })?;
            req = req.header("X-Vault-Wrap-TTL", value);
        }
        if let Some(body) = body {
            // Known limit: reqwest takes ownership of the buffer as `Bytes`, which is not
            // zeroized when the request completes.
            let bytes = serde_json::to_vec(body).map_err(ClientError::Encode)?;
            req = req
                .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
                .body(bytes);
        }
        let mut resp = req.send().await.map_err(|e| self.transport_error(&e))?;
        let status = resp.status().as_u16();
        if resp.content_length().unwrap_or(0) > MAX_RESPONSE_BYTES as u64 {
            return Err(ClientError::ResponseTooLarge {
                limit: MAX_RESPONSE_BYTES,
            });
        }
        let mut body = Zeroizing::new(Vec::new());
        while let Some(chunk) = resp.chunk().await.map_err(|e| self.transport_error(&e))? {
            if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
                return Err(ClientError::ResponseTooLarge {
                    limit: MAX_RESPONSE_BYTES,
                });
            }
            // Grow explicitly so that reallocation never leaves an unzeroized copy behind:
            // Zeroizing only clears the final buffer.
            if body.capacity() < body.len() + chunk.len() {
                let mut bigger = Zeroizing::new(Vec::with_capacity(
                    (body.len() + chunk.len()).max(body.capacity() * 2),
                ));
                bigger.extend_from_slice(&body);
                body = bigger;
            }
            body.extend_from_slice(&chunk);
        }
        tracing::debug!(method = ?method, path = api_path, status, "vault api call");
        Ok(RawResponse { status, body })
    }

    /// Sends and requires 2xx; returns the raw answer for typed parsing.
    pub(crate) async fn send_ok<B: Serialize + ?Sized>(
        &self,
        method: Method,
        api_path: &str,
        query: &[(&str, String)],
        body: Option<&B>,
    ) -> Result<RawResponse, ClientError> {
        let raw = self.send(method, api_path, query, body).await?;
        if raw.is_success() {
            Ok(raw)
        } else {
            Err(raw.into_api_error())
        }
    }

    fn url(&self, api_path: &str) -> Result<Url, ClientError> {
        let encoded = path::encode(api_path)?;
        self.base
            .join(&format!("v1/{encoded}"))
            .map_err(|_| ClientError::InvalidPath {
                path: api_path.chars().take(200).collect(),
                reason: "cannot be joined to the server address",
            })
    }

    fn transport_error(&self, e: &reqwest::Error) -> ClientError {
        let addr = self.display_addr.clone();
        if let Some(tls_err) = find_source::<rustls::Error>(e) {
            return ClientError::Tls {
                addr,
                reason: tls_err.to_string(),
            };
        }
        if e.is_timeout() {
            return ClientError::Timeout { addr };
        }
        if e.is_connect() {
            return ClientError::Connect {
                addr,
                reason: innermost(e),
            };
        }
        ClientError::Transport {
            addr,
            reason: innermost(e),
        }
    }
}

/// serde_json's "invalid type" and "invalid value" messages quote the offending value, which
/// in a response may be a token or a secret; report only where the problem is for those.
fn describe_json_error(e: &serde_json::Error) -> String {
    let msg = e.to_string();
    if msg.starts_with("invalid type") || msg.starts_with("invalid value") {
        format!(
            "a field has an unexpected type or value at line {} column {}",
            e.line(),
            e.column()
        )
    } else {
        msg
    }
}

/// Parses and normalises the server address: scheme http/https, a host, no credentials, no
/// query; a path prefix is kept (for servers behind a reverse proxy) and always ends in `/`.
pub(crate) fn parse_addr(addr: &str) -> Result<Url, ClientError> {
    let invalid = |reason| ClientError::InvalidAddress {
        addr: addr.chars().take(200).collect(),
        reason,
    };
    let mut url = Url::parse(addr.trim()).map_err(|_| invalid("not a URL"))?;
    match url.scheme() {
        "http" | "https" => {}
        _ => return Err(invalid("the scheme must be http or https")),
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(invalid("no host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid("credentials in the address are not supported"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(invalid("the address may not have a query or fragment"));
    }
    if !url.path().ends_with('/') {
        let p = format!("{}/", url.path());
        url.set_path(&p);
    }
    Ok(url)
}

fn is_loopback(url: &Url) -> bool {
    match url.host_str() {
        Some(h) if h.eq_ignore_ascii_case("localhost") => true,
        Some(h) => h
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback()),
        None => false,
    }
}

fn find_source<'a, T: std::error::Error + 'static>(
    e: &'a (dyn std::error::Error + 'static),
) -> Option<&'a T> {
    // Bounded: error chains are short, but a cyclic `source()` must not hang us.
    let mut stack: Vec<&'a (dyn std::error::Error + 'static)> = vec![e];
    let mut visited = 0;
    while let Some(err) = stack.pop() {
        visited += 1;
        if visited > 32 {
            break;
        }
        if let Some(t) = err.downcast_ref::<T>() {
            return Some(t);
        }
        // rustls errors reach reqwest wrapped in io::Error, whose `source()` skips the wrapped
        // error itself; look inside explicitly.
        if let Some(inner) = err
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            stack.push(inner);
        }
        if let Some(next) = err.source() {
            stack.push(next);
        }
    }
    None
}

/// The message of the deepest error in the chain: `Connection refused (os error 111)`
/// rather than reqwest's `error sending request for url (...)`.
fn innermost(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_normalised() {
        assert_eq!(
            parse_addr("http://127.0.0.1:8200").unwrap().as_str(),
            "http://127.0.0.1:8200/"
        );
        assert_eq!(
            parse_addr("https://vault.example/prefix").unwrap().as_str(),
            "https://vault.example/prefix/"
        );
    }

    #[test]
    fn bad_addresses_are_rejected() {
        for bad in [
            "127.0.0.1:8200",
            "ftp://host",
            "http://user:pw@host:8200",
            "http://host:8200/?x=1",
            "not a url",
            "",
        ] {
            assert!(
                matches!(parse_addr(bad), Err(ClientError::InvalidAddress { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn json_errors_do_not_quote_values() {
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct T {
            n: u64,
        }
        let raw = RawResponse {
            status: 200,
            body: Zeroizing::new(br#"{"n":"hvs.secret-token"}"#.to_vec()),
        };
        let err = raw.json::<T>("test").unwrap_err().to_string();
        assert!(!err.contains("secret-token"), "{err}");
        let raw = RawResponse {
            status: 200,
            body: Zeroizing::new(br#"{}"#.to_vec()),
        };
        let err = raw.json::<T>("test").unwrap_err().to_string();
        assert!(err.contains("missing field"), "{err}");
    }

    #[test]
    fn https_without_trust_anchor_is_refused() {
        let err = Client::new(ClientConfig {
            addr: "https://127.0.0.1:8200".into(),
            ..Default::default()
        })
        .unwrap_err();
        assert!(matches!(err, ClientError::NoTrustAnchor { .. }));
    }

    #[test]
    fn debug_output_does_not_show_the_token() {
        let c = Client::new(ClientConfig {
            addr: "http://127.0.0.1:8200".into(),
            token: Some(SecretString::from("hvs.supersecret")),
            ..Default::default()
        })
        .unwrap();
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("supersecret"), "{dbg}");
        assert!(dbg.contains("127.0.0.1:8200"));
    }

    #[tokio::test]
    async fn token_with_a_newline_is_refused_without_echoing_it() {
        let c = Client::new(ClientConfig {
            addr: "http://127.0.0.1:9".into(),
            token: Some(SecretString::from("hvs.abc\nInjected: x")),
            ..Default::default()
        })
        .unwrap();
        let err = c
            .request(Method::Get, "auth/token/lookup-self", None)
            .await
            .unwrap_err();
        assert!(matches!(err, ClientError::InvalidToken));
        assert!(!err.to_string().contains("hvs.abc"));
    }

    #[tokio::test]
    async fn connection_refused_is_a_connect_error() {
        // Bind then drop a listener to get a port with nothing behind it.
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let c = Client::new(ClientConfig {
            addr: format!("http://127.0.0.1:{port}"),
            token: Some(SecretString::from("hvs.tok")),
            ..Default::default()
        })
        .unwrap();
        let err = c
            .request(Method::Get, "sys/health", None)
            .await
            .unwrap_err();
        assert!(matches!(err, ClientError::Connect { .. }), "{err:?}");
        assert!(!err.to_string().contains("hvs.tok"));
    }
}
