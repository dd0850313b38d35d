//! The logical request and response: what the HTTP layer hands to the core and gets back.
//!
//! Everything Vault-specific about the wire (envelope, `{"errors":[…]}`, 204, raw sys
//! responses) is decided here and in `http.rs`, in one place.

use serde_json::value::RawValue;
use serde_json::{Map, Value};
use shroud_audit::AuditMemo;
use shroud_core::SecretString;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// Vault's logical operations, derived from the HTTP verb.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    /// GET.
    Read,
    /// LIST, or GET with `?list=true`.
    List,
    /// POST or PUT. Becomes `create` or `update` for the ACL through the existence check.
    Update,
    /// DELETE.
    Delete,
    /// PATCH with a merge-patch body.
    Patch,
}

impl Operation {
    /// The name Vault's audit log uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Read => "read",
            Operation::List => "list",
            Operation::Update => "update",
            Operation::Delete => "delete",
            Operation::Patch => "patch",
        }
    }
}

/// One API request after HTTP parsing.
pub struct Request {
    /// Random id, echoed as `request_id` and in the audit log.
    pub id: RequestId,
    /// The logical operation.
    pub op: Operation,
    /// Percent-decoded path after `/v1/`, without leading slash.
    pub path: String,
    /// Decoded query parameters (last one wins).
    pub query: Vec<(String, String)>,
    /// The JSON body, if any (always an object).
    pub body: Option<Map<String, Value>>,
    /// The client token from `X-Vault-Token` or `Authorization: Bearer`.
    pub token: Option<SecretString>,
    /// The peer address.
    pub remote: Option<SocketAddr>,
    /// `X-Vault-Wrap-TTL`, if sent.
    pub wrap_ttl: Option<Duration>,
    /// True for HEAD (only `sys/health` answers it).
    pub head: bool,
}

/// A peer's IP address as text, formatted on the stack (the audit log records it for every
/// request). The longest IPv6 text, with an embedded IPv4 part, is 45 bytes.
pub struct IpText {
    buf: [u8; 48],
    len: usize,
}

impl IpText {
    /// The text of `addr`'s IP.
    pub fn of(addr: SocketAddr) -> IpText {
        use std::io::Write;
        let mut buf = [0u8; 48];
        let len = {
            let mut w: &mut [u8] = &mut buf;
            // Fits: see above. A failure would leave a truncated address, never a panic.
            let _ = write!(w, "{}", addr.ip());
            48 - w.len()
        };
        IpText { buf, len }
    }

    /// The address text.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.buf[..self.len]).unwrap_or("")
    }
}

impl Request {
    /// A query parameter.
    pub fn query(&self, key: &str) -> Option<&str> {
        self.query
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// A body field, `null` counted as absent (hvac sends `null` for unset options).
    pub fn field(&self, key: &str) -> Option<&Value> {
        self.body
            .as_ref()
            .and_then(|b| b.get(key))
            .filter(|v| !v.is_null())
    }
}

/// The `auth` block of a response that minted a token.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AuthBlock {
    /// The new token. Serialized only into the HTTP response, never logged (audit HMACs it).
    #[serde(serialize_with = "ser_secret")]
    pub client_token: SecretString,
    /// Its accessor.
    pub accessor: String,
    /// All policies.
    pub policies: Vec<String>,
    /// Same as `policies` (no identity policies in shroud).
    pub token_policies: Vec<String>,
    /// Token metadata.
    pub metadata: Option<Map<String, Value>>,
    /// TTL in seconds.
    pub lease_duration: u64,
    /// Whether it can be renewed.
    pub renewable: bool,
    /// Always empty (no identity store).
    pub entity_id: String,
    /// `service` or `batch`.
    pub token_type: String,
    /// Whether the token has no parent.
    pub orphan: bool,
    /// Always null.
    pub mfa_requirement: Option<Value>,
    /// Remaining uses, 0 = unlimited.
    pub num_uses: u64,
}

fn ser_secret<S: serde::Serializer>(s: &SecretString, ser: S) -> Result<S::Ok, S::Error> {
    ser.serialize_str(s.expose())
}

/// What a handler returns.
pub enum Reply {
    /// The standard envelope.
    Logical(Box<Logical>),
    /// A bare JSON object with this status (sys/init, sys/health, sys/seal-status, …).
    Raw(u16, Value),
    /// 204 with no body.
    NoContent,
}

/// An enveloped response.
#[derive(Default)]
pub struct Logical {
    /// HTTP status (200 unless a handler says otherwise, e.g. 404 for a deleted KV version).
    pub status: Option<u16>,
    /// `data`.
    pub data: Data,
    /// `auth`.
    pub auth: Option<AuthBlock>,
    /// `warnings`.
    pub warnings: Vec<String>,
    /// Copy every `data` key to the top level, as Vault does for sys/* (`HTTPSysInjector`).
    pub sys_inject: bool,
    /// `mount_type`.
    pub mount_type: &'static str,
    /// `wrap_info`: set only on a response-wrapping envelope, where every other field is empty.
    pub wrap_info: Option<WrapInfo>,
}

/// A response's `data`.
#[derive(Default, Clone)]
pub enum Data {
    /// No data (`"data": null`).
    #[default]
    None,
    /// Built for this response.
    Owned(Value),
    /// An immutable value shared by many responses (a cached secret version), with its JSON
    /// already rendered and room for its audit form.
    Shared(Arc<SharedData>),
}

impl Data {
    /// The value, whichever way it is held.
    pub fn as_value(&self) -> Option<&Value> {
        match self {
            Data::None => None,
            Data::Owned(v) => Some(v),
            Data::Shared(s) => Some(&s.value),
        }
    }

    /// The value, owned (a shared one is cloned).
    pub fn into_value(self) -> Option<Value> {
        match self {
            Data::None => None,
            Data::Owned(v) => Some(v),
            Data::Shared(s) => Some(s.value.clone()),
        }
    }

    /// Where the audit devices may keep this value's encoded form (shared values only).
    pub fn audit_memo(&self) -> Option<&AuditMemo> {
        match self {
            Data::Shared(s) => Some(&s.audit),
            _ => None,
        }
    }
}

impl From<Option<Value>> for Data {
    fn from(v: Option<Value>) -> Data {
        v.map_or(Data::None, Data::Owned)
    }
}

impl serde::Serialize for Data {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Data::None => s.serialize_none(),
            Data::Owned(v) => v.serialize(s),
            Data::Shared(d) => d.json.serialize(s),
        }
    }
}

/// See [`Data::Shared`].
pub struct SharedData {
    value: Value,
    json: Box<RawValue>,
    audit: AuditMemo,
}

impl SharedData {
    /// Length of the rendered JSON.
    pub fn json_len(&self) -> usize {
        self.json.get().len()
    }

    /// Renders `value` once.
    pub fn new(value: Value) -> Result<Arc<SharedData>, ApiError> {
        let json = serde_json::value::to_raw_value(&value).map_err(|e| ApiError::internal(&e))?;
        Ok(Arc::new(SharedData {
            value,
            json,
            audit: AuditMemo::default(),
        }))
    }
}

/// The `wrap_info` object of a wrapped response (Vault's `logical.WrapInfo` as rendered by
/// `http/logical.go`).
#[derive(Debug, Clone, serde::Serialize)]
pub struct WrapInfo {
    /// The single-use wrapping token. Serialized only into the HTTP response; the audit log
    /// HMACs it like any string of response data.
    #[serde(serialize_with = "ser_secret")]
    pub token: SecretString,
    /// The wrapping token's accessor.
    pub accessor: String,
    /// Seconds the wrapping token lives.
    pub ttl: u64,
    /// RFC 3339.
    pub creation_time: String,
    /// The path of the request whose response was wrapped.
    pub creation_path: String,
    /// The accessor of the token the wrapped response minted, if it minted one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wrapped_accessor: Option<String>,
}

impl Reply {
    /// An enveloped response with `data`.
    pub fn data(v: Value) -> Reply {
        Reply::Logical(Box::new(Logical {
            data: Data::Owned(v),
            ..Default::default()
        }))
    }

    /// An enveloped sys/* response (data duplicated at the top level).
    pub fn sys(v: Value) -> Reply {
        Reply::Logical(Box::new(Logical {
            data: Data::Owned(v),
            sys_inject: true,
            mount_type: "system",
            ..Default::default()
        }))
    }
}

/// Key names of a JSON object, never its values: what `Debug` shows of request and response
/// bodies, which carry secrets.
fn shape(v: Option<&Value>) -> String {
    match v {
        None => "None".to_owned(),
        Some(Value::Object(m)) => format!(
            "{{{} [values redacted]}}",
            m.keys().take(16).cloned().collect::<Vec<_>>().join(", ")
        ),
        Some(_) => "[redacted]".to_owned(),
    }
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Request")
            .field("id", &self.id)
            .field("op", &self.op)
            .field("path", &self.path)
            .field(
                "query",
                &self
                    .query
                    .iter()
                    .map(|(k, _)| k.as_str())
                    .collect::<Vec<_>>(),
            )
            .field(
                "body",
                &self
                    .body
                    .as_ref()
                    .map(|b| shape(Some(&Value::Object(b.clone())))),
            )
            .field("token", &self.token)
            .field("remote", &self.remote)
            .field("wrap_ttl", &self.wrap_ttl)
            .finish()
    }
}

impl std::fmt::Debug for Logical {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Logical")
            .field("status", &self.status)
            .field("data", &shape(self.data.as_value()))
            .field("auth", &self.auth)
            .field("wrap_info", &self.wrap_info)
            .field("warnings", &self.warnings)
            .field("mount_type", &self.mount_type)
            .finish()
    }
}

impl std::fmt::Debug for Reply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reply::Logical(l) => f.debug_tuple("Logical").field(l).finish(),
            Reply::Raw(s, v) => f
                .debug_tuple("Raw")
                .field(s)
                .field(&shape(Some(v)))
                .finish(),
            Reply::NoContent => f.write_str("NoContent"),
        }
    }
}

/// An error as the client sees it: Vault's status code and `{"errors":[…]}`.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    /// HTTP status.
    pub status: u16,
    /// The messages.
    pub errors: Vec<String>,
    /// Kept `data` (Vault's `respondErrorAndData`).
    pub data: Option<Value>,
}

impl ApiError {
    /// An error with one message.
    pub fn new(status: u16, msg: impl Into<String>) -> Self {
        Self {
            status,
            errors: vec![msg.into()],
            data: None,
        }
    }
    /// 400.
    pub fn bad_request(msg: impl Into<String>) -> Self {
        Self::new(400, msg)
    }
    /// 403 with Vault's exact text.
    pub fn permission_denied() -> Self {
        Self::new(403, "1 error occurred:\n\t* permission denied\n\n")
    }
    /// 404 with an empty error list (Vault's plain not-found).
    pub fn not_found() -> Self {
        Self {
            status: 404,
            errors: vec![],
            data: None,
        }
    }
    /// 404 for an unknown route.
    pub fn no_route(path: &str) -> Self {
        Self::new(
            404,
            format!("no handler for route \"{path}\". route entry not found."),
        )
    }
    /// 405.
    pub fn unsupported_operation() -> Self {
        Self::new(405, "1 error occurred:\n\t* unsupported operation\n\n")
    }
    /// 429 with Vault's exact text (hvac maps it to `RateLimitExceeded`).
    pub fn rate_limited() -> Self {
        Self::new(429, "rate limit quota exceeded")
    }
    /// 400 with Vault's exact text (`consts.ErrInvalidWrappingToken`).
    pub fn invalid_wrapping_token() -> Self {
        Self::new(400, "wrapping token is not valid or does not exist")
    }
    /// 503.
    pub fn sealed() -> Self {
        Self::new(503, "Vault is sealed")
    }
    /// 500 with a generic message; the detail goes to the log, never to the client.
    pub fn internal(detail: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %detail, "internal error");
        Self::new(500, "internal error")
    }
}

impl From<shroud_crypto::CryptoError> for ApiError {
    fn from(e: shroud_crypto::CryptoError) -> Self {
        match e {
            shroud_crypto::CryptoError::Sealed => ApiError::sealed(),
            e if e.is_client_error() => ApiError::bad_request(e.to_string()),
            other => ApiError::internal(&other),
        }
    }
}

/// Handler result.
pub type ApiResult = Result<Reply, ApiError>;

/// Reads a field as a string list: a JSON array of strings or a comma-joined string (hvac sends
/// both forms).
pub fn string_list(v: Option<&Value>) -> Result<Vec<String>, ApiError> {
    match v {
        None | Some(Value::Null) => Ok(vec![]),
        Some(Value::String(s)) => Ok(s
            .split(',')
            .map(|p| p.trim().to_owned())
            .filter(|p| !p.is_empty())
            .collect()),
        Some(Value::Array(a)) => a
            .iter()
            .map(|x| match x {
                Value::String(s) => Ok(s.trim().to_owned()),
                _ => Err(ApiError::bad_request("expected a list of strings")),
            })
            .collect(),
        Some(_) => Err(ApiError::bad_request("expected a list of strings")),
    }
}

/// Reads a duration field given as seconds or a Go duration string.
pub fn duration_field(v: Option<&Value>, name: &str) -> Result<Option<Duration>, ApiError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => match n.as_u64() {
            Some(s) if s <= shroud_core::duration::MAX_DURATION_SECS => {
                Ok(Some(Duration::from_secs(s)))
            }
            _ => Err(ApiError::bad_request(format!(
                "invalid duration for {name}"
            ))),
        },
        Some(Value::String(s)) => shroud_core::duration::parse(s)
            .map(Some)
            .map_err(|_| ApiError::bad_request(format!("invalid duration for {name}"))),
        Some(_) => Err(ApiError::bad_request(format!(
            "invalid duration for {name}"
        ))),
    }
}

/// Reads a boolean field given as a JSON bool or a string like Go's `ParseBool`.
pub fn bool_field(v: Option<&Value>, name: &str) -> Result<Option<bool>, ApiError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(Value::String(s)) => parse_bool(s)
            .map(Some)
            .ok_or_else(|| ApiError::bad_request(format!("invalid boolean for {name}"))),
        Some(Value::Number(n)) => match n.as_u64() {
            Some(0) => Ok(Some(false)),
            Some(1) => Ok(Some(true)),
            _ => Err(ApiError::bad_request(format!("invalid boolean for {name}"))),
        },
        Some(_) => Err(ApiError::bad_request(format!("invalid boolean for {name}"))),
    }
}

/// Reads an unsigned integer field given as a number or a numeric string.
pub fn uint_field(v: Option<&Value>, name: &str) -> Result<Option<u64>, ApiError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_u64()
            .map(Some)
            .ok_or_else(|| ApiError::bad_request(format!("invalid number for {name}"))),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => s
            .parse()
            .map(Some)
            .map_err(|_| ApiError::bad_request(format!("invalid number for {name}"))),
        Some(_) => Err(ApiError::bad_request(format!("invalid number for {name}"))),
    }
}

/// Go's `strconv.ParseBool`.
pub fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// RFC 3339 with nanoseconds in UTC, as Vault prints timestamps.
pub fn timestamp(t: std::time::SystemTime) -> String {
    let dt = time::OffsetDateTime::from(t);
    dt.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// Random URL-safe identifier of `n` base62 characters from the OS RNG.
pub fn random_id(n: usize) -> Result<String, ApiError> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut out = String::with_capacity(n);
    let mut buf = [0u8; 64];
    while out.len() < n {
        getrandom::fill(&mut buf).map_err(|e| ApiError::internal(&e))?;
        for b in buf {
            // 248 = 4 * 62: rejection sampling keeps the choice uniform.
            if b < 248 && out.len() < n {
                out.push(ALPHABET[(b % 62) as usize] as char);
            }
        }
    }
    Ok(out)
}

/// A v4 UUID string from the OS RNG. Use it for anything that must be unguessable.
pub fn uuid() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// A request id in UUID form: a random per-process prefix and a counter. Unique within the
/// process and cheap (no syscall, no allocation per request); it correlates log lines and is
/// not a secret.
pub fn request_id() -> RequestId {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::OnceLock;
    static PREFIX: OnceLock<u64> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let prefix = *PREFIX.get_or_init(|| {
        let mut b = [0u8; 8];
        let _ = getrandom::fill(&mut b);
        u64::from_le_bytes(b)
    });
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let bytes: u128 = (u128::from(prefix) << 64) | u128::from(n);
    let mut text = [0u8; uuid::fmt::Hyphenated::LENGTH];
    uuid::Builder::from_u128(bytes)
        .with_version(uuid::Version::Random)
        .with_variant(uuid::Variant::RFC4122)
        .into_uuid()
        .hyphenated()
        .encode_lower(&mut text);
    RequestId(text)
}

/// A request id's text (a hyphenated lowercase UUID), by value.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct RequestId([u8; uuid::fmt::Hyphenated::LENGTH]);

impl RequestId {
    /// The id as text.
    pub fn as_str(&self) -> &str {
        // Invariant: lowercase hex digits and hyphens.
        std::str::from_utf8(&self.0).unwrap_or("")
    }
}

impl std::ops::Deref for RequestId {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl std::fmt::Display for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::fmt::Debug for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self.as_str(), f)
    }
}

#[cfg(test)]
mod debug_tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn request_and_reply_debug_hide_values() {
        let mut body = Map::new();
        body.insert("password".into(), json!("hunter2-body"));
        let req = Request {
            id: request_id(),
            op: Operation::Update,
            path: "secret/data/x".into(),
            query: vec![("version".into(), "q-secret".into())],
            body: Some(body),
            token: Some(SecretString::from("hvs.tok-secret")),
            remote: None,
            wrap_ttl: None,
            head: false,
        };
        let d = format!("{req:?}");
        assert!(d.contains("password"), "{d}");
        for secret in ["hunter2-body", "q-secret", "tok-secret"] {
            assert!(!d.contains(secret), "{d}");
        }
        let reply = Reply::data(json!({"data": {"k": "data-secret"}}));
        let raw = Reply::Raw(
            200,
            json!({"root_token": "hvs.root-secret", "keys": ["share-secret"]}),
        );
        let d = format!("{reply:?} {raw:?}");
        for secret in ["data-secret", "root-secret", "share-secret"] {
            assert!(!d.contains(secret), "{d}");
        }
    }
}

#[cfg(test)]
mod ip_text_tests {
    use super::IpText;
    use std::net::SocketAddr;

    #[test]
    fn formats_like_display() {
        for a in [
            "127.0.0.1:8200",
            "[::1]:1",
            "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535",
            "[::ffff:255.255.255.255]:9",
            "[fe80::1:2:3:4]:80",
        ] {
            let addr: SocketAddr = a.parse().unwrap();
            assert_eq!(IpText::of(addr).as_str(), addr.ip().to_string());
        }
    }
}
