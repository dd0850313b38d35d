//! What the server hands to an audit device, and how it becomes one JSON line.
//!
//! The server fills a borrowed [`Entry`]; the device decides what is sensitive and HMACs it,
//! so the server cannot forget to. Sensitive: the client token and its accessor, every string
//! leaf of request and response data, token metadata values, and any token minted by the
//! request. Kept in clear, as in Vault: keys of data maps, numbers and booleans, paths,
//! policies, display names, the remote address and error messages.

use crate::error::AuditError;
use crate::salt::{Hashed, Salt};
use serde_json::{Map, Value};
use std::fmt;

/// Deepest nesting of request or response data accepted (the server's JSON parser stops at
/// 128 as well). Serialization recurses, so the bound keeps it off the end of the stack.
pub const MAX_DEPTH: usize = 128;

/// Whether the entry records a request (before it is handled) or its response.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub enum EntryType {
    /// Written before the request is handled; if it fails, the request must not proceed.
    #[default]
    Request,
    /// Written before the response is sent; if it fails, the response must not be sent.
    Response,
}

impl EntryType {
    fn as_str(self) -> &'static str {
        match self {
            EntryType::Request => "request",
            EntryType::Response => "response",
        }
    }
}

/// The caller's token, as far as the audit log describes it.
#[derive(Clone, Copy, Default)]
pub struct AuthInfo<'a> {
    /// The token's display name (e.g. `token`, `approle`).
    pub display_name: &'a str,
    /// The token's policies.
    pub policies: &'a [String],
    /// `service` or `batch`.
    pub token_type: &'a str,
    /// Token metadata; every string value is HMAC'd.
    pub metadata: Option<&'a Map<String, Value>>,
    /// Remaining TTL of the token, in seconds.
    pub token_ttl: u64,
}

/// The audit encoding of one immutable, shared response value, kept for the first device
/// (salt) that encodes it. It holds only what the log holds (HMACs, keys, numbers), never a
/// value in clear.
#[derive(Default)]
pub struct AuditMemo {
    slot: std::sync::OnceLock<(u64, Box<[u8]>)>,
}

impl fmt::Debug for AuditMemo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuditMemo")
            .field("filled", &self.slot.get().is_some())
            .finish()
    }
}

impl AuditMemo {
    /// Writes `v` HMAC'd: the kept bytes if they were made under `salt`, else encodes it
    /// (keeping the result if nothing is kept yet).
    fn encode(&self, out: &mut Vec<u8>, v: &Value, salt: &Salt) {
        if let Some((id, bytes)) = self.slot.get() {
            if *id == salt.id() {
                out.extend_from_slice(bytes);
                return;
            }
        }
        let start = out.len();
        hvalue(out, v, salt);
        if self.slot.get().is_none() {
            let _ = self.slot.set((salt.id(), out[start..].into()));
        }
    }
}

/// The audit encoding of a caller (a stored token): its token's and accessor's HMACs and the
/// `auth` object up to its last, per-request field (`token_ttl`), kept for the first device
/// (salt) that encodes it. The server keeps one on each cached token entry, so a token that
/// makes many requests is hashed and encoded once rather than on every request.
///
/// It must only be passed with the entry it was filled for: the same client token, accessor,
/// display name, policies, metadata and token type. It holds only what the log holds.
/// Clones start empty (a cloned token entry is usually about to be changed), and it compares
/// equal to any other memo, so it never affects the equality of what holds it.
#[derive(Default)]
pub struct CallerMemo {
    slot: std::sync::OnceLock<CallerCache>,
}

#[derive(Clone)]
struct CallerCache {
    salt_id: u64,
    token: Option<Hashed>,
    accessor: Option<Hashed>,
    /// `,"auth":{…,"token_type":"…"` without `token_ttl` and the closing brace; empty when the
    /// entry has no `auth`.
    auth_head: Box<[u8]>,
}

impl Clone for CallerMemo {
    fn clone(&self) -> Self {
        CallerMemo::default()
    }
}

impl PartialEq for CallerMemo {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl fmt::Debug for CallerMemo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallerMemo")
            .field("filled", &self.slot.get().is_some())
            .finish()
    }
}

/// A token minted by this request (login, token create), as it appears in the response.
#[derive(Clone, Copy, Default)]
pub struct ResponseAuth<'a> {
    /// The new token; HMAC'd.
    pub client_token: &'a str,
    /// Its accessor; HMAC'd.
    pub accessor: &'a str,
    /// Its policies, in clear.
    pub policies: &'a [String],
    /// Its metadata; every string value is HMAC'd.
    pub metadata: Option<&'a Map<String, Value>>,
    /// TTL in seconds.
    pub lease_duration: u64,
    /// Whether it can be renewed.
    pub renewable: bool,
    /// `service` or `batch`.
    pub token_type: &'a str,
    /// Whether it has no parent.
    pub orphan: bool,
}

/// One audit record, borrowed from the server's request and response.
#[derive(Clone, Copy, Default)]
pub struct Entry<'a> {
    /// Request or response.
    pub kind: EntryType,
    /// The request id (`request_id` of the response envelope).
    pub request_id: &'a str,
    /// `read`, `update`, `create`, `delete`, `list` or `patch`.
    pub operation: &'a str,
    /// Request path without leading slash.
    pub path: &'a str,
    /// Type of the mount serving the path (`kv`, `system`, `token`, ...).
    pub mount_type: Option<&'a str>,
    /// The client's address.
    pub remote_address: Option<&'a str>,
    /// The client token; HMAC'd.
    pub client_token: Option<&'a str>,
    /// The client token's accessor; HMAC'd (Vault's default `hmac_accessor=true`).
    pub client_token_accessor: Option<&'a str>,
    /// The caller, if authenticated.
    pub auth: Option<AuthInfo<'a>>,
    /// Request body or query; every string leaf HMAC'd, structure kept.
    pub request_data: Option<&'a Map<String, Value>>,
    /// Response `data`; every string leaf HMAC'd.
    pub response_data: Option<&'a Value>,
    /// Where to keep `response_data`'s encoded form, when that value is shared by many
    /// responses and never changes (a cached secret version): the first device to encode it
    /// keeps its bytes there and reuses them instead of hashing every string again.
    pub response_memo: Option<&'a AuditMemo>,
    /// Where to keep the caller's encoded token, accessor and `auth` (see [`CallerMemo`]).
    pub caller_memo: Option<&'a CallerMemo>,
    /// A token minted by this request.
    pub response_auth: Option<ResponseAuth<'a>>,
    /// HTTP status of the response.
    pub status: Option<u16>,
    /// Error message returned to the client, in clear.
    pub error: Option<&'a str>,
}

// Debug shows only what the log itself shows in clear; tokens and data are redacted.
impl fmt::Debug for Entry<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Entry")
            .field("kind", &self.kind)
            .field("request_id", &self.request_id)
            .field("operation", &self.operation)
            .field("path", &self.path)
            .field("mount_type", &self.mount_type)
            .field("status", &self.status)
            .field("client_token", &self.client_token.map(|_| "[REDACTED]"))
            .field("data", &"[REDACTED]")
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for AuthInfo<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthInfo")
            .field("display_name", &self.display_name)
            .field("policies", &self.policies)
            .field("token_type", &self.token_type)
            .field("token_ttl", &self.token_ttl)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for ResponseAuth<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseAuth")
            .field("client_token", &"[REDACTED]")
            .field("policies", &self.policies)
            .field("token_type", &self.token_type)
            .finish_non_exhaustive()
    }
}

/// Appends the JSON objects of `first` and then `second` (if any) to `out`, each without its
/// closing `}` so the device can add `prev_hash` under its lock; returns where the first ends.
/// `time` is the RFC 3339 timestamp.
///
/// Written by hand rather than through serde: the shape is fixed, most strings are HMACs or
/// constants that need no escaping, and a request's `auth` and `request` objects are encoded
/// once and copied when its response record carries the same ones (a read's pair).
pub(crate) fn encode_lines(
    out: &mut Vec<u8>,
    first: &Entry<'_>,
    second: Option<&Entry<'_>>,
    salt: &Salt,
    time: &str,
) -> Result<usize, AuditError> {
    check_entry(first)?;
    if let Some(s) = second {
        check_entry(s)?;
    }
    head(out, time, first.kind);
    let common = out.len();
    auth_and_request(out, first, salt);
    let common_end = out.len();
    rest(out, first, salt);
    let first_end = out.len();
    if let Some(s) = second {
        head(out, time, s.kind);
        if same_request(first, s) {
            out.extend_from_within(common..common_end);
        } else {
            auth_and_request(out, s, salt);
        }
        rest(out, s, salt);
    }
    Ok(first_end)
}

fn check_entry(entry: &Entry<'_>) -> Result<(), AuditError> {
    // Every map below sits at depth 1, as the request data object does.
    let maps = [
        entry.request_data,
        entry.auth.and_then(|a| a.metadata),
        entry.response_auth.and_then(|a| a.metadata),
    ];
    for m in maps.into_iter().flatten() {
        for v in m.values() {
            check_depth(v, 2)?;
        }
    }
    if let Some(v) = entry.response_data {
        check_depth(v, 1)?;
    }
    Ok(())
}

/// Whether two entries describe the same request and caller (so their `auth` and `request`
/// objects are byte-identical). References are compared by address: the server hands both
/// entries the same request data and token metadata.
fn same_request(a: &Entry<'_>, b: &Entry<'_>) -> bool {
    fn same<T: ?Sized>(x: Option<&T>, y: Option<&T>) -> bool {
        match (x, y) {
            (None, None) => true,
            (Some(x), Some(y)) => std::ptr::eq(x, y),
            _ => false,
        }
    }
    let auth = match (a.auth, b.auth) {
        (None, None) => true,
        (Some(x), Some(y)) => {
            x.display_name == y.display_name
                && x.policies == y.policies
                && x.token_type == y.token_type
                && x.token_ttl == y.token_ttl
                && same(x.metadata, y.metadata)
        }
        _ => false,
    };
    auth && a.request_id == b.request_id
        && a.operation == b.operation
        && a.path == b.path
        && a.mount_type == b.mount_type
        && a.remote_address == b.remote_address
        && a.client_token == b.client_token
        && a.client_token_accessor == b.client_token_accessor
        && same(a.request_data, b.request_data)
}

fn head(out: &mut Vec<u8>, time: &str, kind: EntryType) {
    out.extend_from_slice(b"{\"time\":");
    string(out, time);
    out.extend_from_slice(b",\"type\":\"");
    out.extend_from_slice(kind.as_str().as_bytes());
    out.push(b'"');
}

/// `,"auth":{…}` (if any) and `,"request":{…}`.
fn auth_and_request(out: &mut Vec<u8>, e: &Entry<'_>, salt: &Salt) {
    let kept = e
        .caller_memo
        .and_then(|m| m.slot.get())
        .filter(|c| c.salt_id == salt.id());
    let own;
    let caller = match kept {
        Some(c) => c,
        None => {
            own = encode_caller(e, salt);
            // Kept only if nothing is yet (another device's salt may have filled it first).
            if let Some(m) = e.caller_memo {
                let _ = m.slot.set(own.clone());
            }
            &own
        }
    };
    let (token, accessor) = (&caller.token, &caller.accessor);
    if let Some(a) = &e.auth {
        out.extend_from_slice(&caller.auth_head);
        out.extend_from_slice(b",\"token_ttl\":");
        number(out, a.token_ttl);
        out.push(b'}');
    }
    out.extend_from_slice(b",\"request\":{");
    let mut o = Obj::new(out);
    string(o.key(b"id"), e.request_id);
    string(o.key(b"operation"), e.operation);
    if let Some(m) = e.mount_type {
        string(o.key(b"mount_type"), m);
    }
    if let Some(t) = &token {
        o.key(b"client_token").extend_from_slice(t.quoted());
    }
    if let Some(t) = &accessor {
        o.key(b"client_token_accessor")
            .extend_from_slice(t.quoted());
    }
    o.key(b"namespace").extend_from_slice(b"{\"id\":\"root\"}");
    string(o.key(b"path"), e.path);
    if let Some(d) = e.request_data {
        hmap(o.key(b"data"), d, salt);
    }
    if let Some(r) = e.remote_address {
        string(o.key(b"remote_address"), r);
    }
    out.push(b'}');
}

/// The caller's parts of a record that do not change from request to request.
fn encode_caller(e: &Entry<'_>, salt: &Salt) -> CallerCache {
    // The token and accessor appear twice (auth and request): hash once.
    let token = e.client_token.map(|t| salt.hash(t));
    let accessor = e.client_token_accessor.map(|t| salt.hash(t));
    let mut out = Vec::new();
    if let Some(a) = &e.auth {
        out.extend_from_slice(b",\"auth\":{");
        let mut o = Obj::new(&mut out);
        if let Some(t) = &token {
            o.key(b"client_token").extend_from_slice(t.quoted());
        }
        if let Some(t) = &accessor {
            o.key(b"accessor").extend_from_slice(t.quoted());
        }
        string(o.key(b"display_name"), a.display_name);
        strings(o.key(b"policies"), a.policies);
        strings(o.key(b"token_policies"), a.policies);
        if let Some(m) = a.metadata {
            hmap(o.key(b"metadata"), m, salt);
        }
        o.key(b"entity_id").extend_from_slice(b"\"\"");
        string(o.key(b"token_type"), a.token_type);
    }
    CallerCache {
        salt_id: salt.id(),
        token,
        accessor,
        auth_head: out.into(),
    }
}

/// `,"response":{…}` (response records) and `,"error":…`.
fn rest(out: &mut Vec<u8>, e: &Entry<'_>, salt: &Salt) {
    if e.kind == EntryType::Response {
        out.extend_from_slice(b",\"response\":{");
        let mut o = Obj::new(out);
        if let Some(m) = e.mount_type {
            string(o.key(b"mount_type"), m);
        }
        if let Some(s) = e.status {
            number(o.key(b"status"), u64::from(s));
        }
        if let Some(a) = &e.response_auth {
            let out = o.key(b"auth");
            out.push(b'{');
            let mut a_o = Obj::new(out);
            a_o.key(b"client_token")
                .extend_from_slice(salt.hash(a.client_token).quoted());
            a_o.key(b"accessor")
                .extend_from_slice(salt.hash(a.accessor).quoted());
            strings(a_o.key(b"policies"), a.policies);
            strings(a_o.key(b"token_policies"), a.policies);
            if let Some(m) = a.metadata {
                hmap(a_o.key(b"metadata"), m, salt);
            }
            a_o.key(b"entity_id").extend_from_slice(b"\"\"");
            number(a_o.key(b"lease_duration"), a.lease_duration);
            boolean(a_o.key(b"renewable"), a.renewable);
            string(a_o.key(b"token_type"), a.token_type);
            boolean(a_o.key(b"orphan"), a.orphan);
            out.push(b'}');
        }
        if let Some(d) = e.response_data {
            match e.response_memo {
                Some(memo) => memo.encode(o.key(b"data"), d, salt),
                None => hvalue(o.key(b"data"), d, salt),
            }
        }
        out.push(b'}');
    }
    out.extend_from_slice(b",\"error\":");
    string(out, e.error.unwrap_or(""));
}

/// Writes the members of a JSON object whose `{` is already out: commas between members.
struct Obj<'o> {
    out: &'o mut Vec<u8>,
    first: bool,
}

impl<'o> Obj<'o> {
    fn new(out: &'o mut Vec<u8>) -> Self {
        Obj { out, first: true }
    }
    /// Writes `"key":` (keys here are constants that need no escaping); the value follows.
    fn key(&mut self, key: &[u8]) -> &mut Vec<u8> {
        if !self.first {
            self.out.push(b',');
        }
        self.first = false;
        self.out.push(b'"');
        self.out.extend_from_slice(key);
        self.out.extend_from_slice(b"\":");
        self.out
    }
}

/// A JSON string, escaped exactly as serde_json escapes it.
fn string(out: &mut Vec<u8>, s: &str) {
    if s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    } else {
        // Writing a &str into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *out, s);
    }
}

fn strings(out: &mut Vec<u8>, items: &[String]) {
    out.push(b'[');
    for (i, s) in items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        string(out, s);
    }
    out.push(b']');
}

fn number(out: &mut Vec<u8>, n: u64) {
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

fn boolean(out: &mut Vec<u8>, b: bool) {
    out.extend_from_slice(if b { b"true" } else { b"false" });
}

/// A JSON value with every string leaf written as its HMAC; keys, numbers, booleans and nulls
/// kept. Depth is bounded by `check_depth` before encoding.
fn hvalue(out: &mut Vec<u8>, v: &Value, salt: &Salt) {
    match v {
        Value::String(s) => out.extend_from_slice(salt.hash(s).quoted()),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                hvalue(out, item, salt);
            }
            out.push(b']');
        }
        Value::Object(m) => hmap(out, m, salt),
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(b) => boolean(out, *b),
        // Writing a number into a Vec cannot fail.
        Value::Number(n) => {
            let _ = serde_json::to_writer(&mut *out, n);
        }
    }
}

/// A JSON object with every string leaf HMAC'd; keys in clear.
fn hmap(out: &mut Vec<u8>, m: &Map<String, Value>, salt: &Salt) {
    out.push(b'{');
    for (i, (k, v)) in m.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        string(out, k);
        out.push(b':');
        hvalue(out, v, salt);
    }
    out.push(b'}');
}

/// Depth check without recursion, so hostile nesting cannot overflow the stack here either.
/// Refuses values nested deeper than [`MAX_DEPTH`] (`depth` is `v`'s own level). Recursion is
/// bounded by the limit itself, so it needs no heap stack.
fn check_depth(v: &Value, depth: usize) -> Result<(), AuditError> {
    if depth > MAX_DEPTH {
        return Err(AuditError::TooDeep { max: MAX_DEPTH });
    }
    match v {
        Value::Array(items) => items.iter().try_for_each(|i| check_depth(i, depth + 1)),
        Value::Object(map) => map.values().try_for_each(|i| check_depth(i, depth + 1)),
        _ => Ok(()),
    }
}

/// The serde-based encoder this module's hand-written one replaced, kept as the reference the
/// tests compare it with byte for byte.
#[cfg(test)]
mod reference {
    use super::*;
    use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};

    /// Appends the entry's JSON object to `out`, without the closing `}` so the device can add
    /// `prev_hash` under its lock. `time` is the RFC 3339 timestamp.
    pub(super) fn encode(
        out: &mut Vec<u8>,
        entry: &Entry<'_>,
        salt: &Salt,
        time: &str,
    ) -> Result<(), AuditError> {
        super::check_entry(entry)?;
        // The caller's token and accessor appear twice per line (auth and request): hash once.
        let token_h = entry.client_token.map(|t| salt.hash(t));
        let accessor_h = entry.client_token_accessor.map(|t| salt.hash(t));
        let line = Line {
            time,
            kind: entry.kind.as_str(),
            auth: entry.auth.map(|a| AuthOut {
                client_token: token_h.as_ref().map(|h| h.as_str()),
                accessor: accessor_h.as_ref().map(|h| h.as_str()),
                display_name: a.display_name,
                policies: a.policies,
                token_policies: a.policies,
                metadata: a.metadata.map(|m| HMap(m, salt)),
                entity_id: "",
                token_type: a.token_type,
                token_ttl: a.token_ttl,
            }),
            request: RequestOut {
                id: entry.request_id,
                operation: entry.operation,
                mount_type: entry.mount_type,
                client_token: token_h.as_ref().map(|h| h.as_str()),
                client_token_accessor: accessor_h.as_ref().map(|h| h.as_str()),
                namespace: Namespace { id: "root" },
                path: entry.path,
                data: entry.request_data.map(|m| HMap(m, salt)),
                remote_address: entry.remote_address,
            },
            response: (entry.kind == EntryType::Response).then(|| ResponseOut {
                mount_type: entry.mount_type,
                status: entry.status,
                auth: entry.response_auth.map(|a| ResponseAuthOut {
                    client_token: H(a.client_token, salt),
                    accessor: H(a.accessor, salt),
                    policies: a.policies,
                    token_policies: a.policies,
                    metadata: a.metadata.map(|m| HMap(m, salt)),
                    entity_id: "",
                    lease_duration: a.lease_duration,
                    renewable: a.renewable,
                    token_type: a.token_type,
                    orphan: a.orphan,
                }),
                data: entry.response_data.map(|v| HValue(v, salt)),
            }),
            error: entry.error.unwrap_or(""),
        };
        serde_json::to_writer(&mut *out, &line).map_err(|e| AuditError::Encode(e.to_string()))?;
        // Drop the closing brace; the device appends `,"prev_hash":"…"}`.
        if out.last() == Some(&b'}') {
            out.pop();
            Ok(())
        } else {
            Err(AuditError::Encode("entry is not a JSON object".to_owned()))
        }
    }

    #[derive(serde::Serialize)]
    struct Line<'a> {
        time: &'a str,
        #[serde(rename = "type")]
        kind: &'static str,
        #[serde(skip_serializing_if = "Option::is_none")]
        auth: Option<AuthOut<'a>>,
        request: RequestOut<'a>,
        #[serde(skip_serializing_if = "Option::is_none")]
        response: Option<ResponseOut<'a>>,
        error: &'a str,
    }

    #[derive(serde::Serialize)]
    struct AuthOut<'a> {
        #[serde(skip_serializing_if = "Option::is_none")]
        client_token: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        accessor: Option<&'a str>,
        display_name: &'a str,
        policies: &'a [String],
        token_policies: &'a [String],
        #[serde(skip_serializing_if = "Option::is_none")]
        metadata: Option<HMap<'a>>,
        entity_id: &'static str,
        token_type: &'a str,
        token_ttl: u64,
    }

    #[derive(serde::Serialize)]
    struct Namespace {
        id: &'static str,
    }

    #[derive(serde::Serialize)]
    struct RequestOut<'a> {
        id: &'a str,
        operation: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        mount_type: Option<&'a str>,
        /// Already hashed.
        #[serde(skip_serializing_if = "Option::is_none")]
        client_token: Option<&'a str>,
        /// Already hashed.
        #[serde(skip_serializing_if = "Option::is_none")]
        client_token_accessor: Option<&'a str>,
        namespace: Namespace,
        path: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        data: Option<HMap<'a>>,
        #[serde(skip_serializing_if = "Option::is_none")]
        remote_address: Option<&'a str>,
    }

    #[derive(serde::Serialize)]
    struct ResponseOut<'a> {
        #[serde(skip_serializing_if = "Option::is_none")]
        mount_type: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        status: Option<u16>,
        #[serde(skip_serializing_if = "Option::is_none")]
        auth: Option<ResponseAuthOut<'a>>,
        #[serde(skip_serializing_if = "Option::is_none")]
        data: Option<HValue<'a>>,
    }

    #[derive(serde::Serialize)]
    struct ResponseAuthOut<'a> {
        client_token: H<'a>,
        accessor: H<'a>,
        policies: &'a [String],
        token_policies: &'a [String],
        #[serde(skip_serializing_if = "Option::is_none")]
        metadata: Option<HMap<'a>>,
        entity_id: &'static str,
        lease_duration: u64,
        renewable: bool,
        token_type: &'a str,
        orphan: bool,
    }

    /// A string written as its HMAC.
    struct H<'a>(&'a str, &'a Salt);

    impl Serialize for H<'_> {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.serialize_str(self.1.hash(self.0).as_str())
        }
    }

    /// A JSON value with every string leaf written as its HMAC; keys, numbers, booleans and nulls
    /// kept. Depth is bounded by `check_depth` before serialization.
    struct HValue<'a>(&'a Value, &'a Salt);

    impl Serialize for HValue<'_> {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            let salt = self.1;
            match self.0 {
                Value::String(v) => H(v, salt).serialize(s),
                Value::Array(items) => {
                    let mut seq = s.serialize_seq(Some(items.len()))?;
                    for i in items {
                        seq.serialize_element(&HValue(i, salt))?;
                    }
                    seq.end()
                }
                Value::Object(map) => HMap(map, salt).serialize(s),
                other => other.serialize(s),
            }
        }
    }

    /// A JSON object with every string leaf HMAC'd.
    struct HMap<'a>(&'a Map<String, Value>, &'a Salt);

    impl Serialize for HMap<'_> {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            let mut m = s.serialize_map(Some(self.0.len()))?;
            for (k, v) in self.0 {
                m.serialize_entry(k, &HValue(v, self.1))?;
            }
            m.end()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use shroud_core::SecretBytes;

    fn salt() -> Salt {
        Salt::new(&SecretBytes::from_slice(&[7; 32])).unwrap()
    }

    #[test]
    fn strings_are_hashed_structure_kept() {
        let s = salt();
        let v = json!({"password": "hunter2", "nested": {"k": ["v1", null, true]}, "n": 5});
        let mut buf = Vec::new();
        hvalue(&mut buf, &v, &s);
        let out: Value = serde_json::from_slice(&buf).unwrap();
        assert_eq!(out["password"], json!(s.hash("hunter2").as_str()));
        assert_eq!(out["nested"]["k"][0], json!(s.hash("v1").as_str()));
        assert_eq!(out["nested"]["k"][1], Value::Null);
        assert_eq!(out["nested"]["k"][2], json!(true));
        assert_eq!(out["n"], json!(5));
    }

    #[test]
    fn too_deep_data_is_an_error() {
        let mut v = json!("leaf");
        for _ in 0..MAX_DEPTH {
            v = json!([v]);
        }
        let v = json!({ "a": v });
        let entry = Entry {
            request_data: v.as_object(),
            ..Entry::default()
        };
        let mut out = Vec::new();
        assert!(matches!(
            encode_lines(&mut out, &entry, None, &salt(), "t"),
            Err(AuditError::TooDeep { .. })
        ));
    }

    #[test]
    fn depth_limit_is_exact_for_request_and_response_data() {
        // `levels` nested arrays under the top-level object: the innermost leaf sits at
        // depth levels + 2 (object = 1, its value = 2).
        let nested = |levels: usize| {
            let mut v = json!("leaf");
            for _ in 0..levels {
                v = json!([v]);
            }
            json!({ "a": v })
        };
        let ok = nested(MAX_DEPTH - 2);
        let deep = nested(MAX_DEPTH - 1);
        for (v, fine) in [(&ok, true), (&deep, false)] {
            let as_request = Entry {
                request_data: v.as_object(),
                ..Entry::default()
            };
            let as_response = Entry {
                kind: EntryType::Response,
                response_data: Some(v),
                ..Entry::default()
            };
            for e in [&as_request, &as_response] {
                let r = encode_lines(&mut Vec::new(), e, None, &salt(), "t");
                assert_eq!(r.is_ok(), fine, "{r:?}");
            }
        }
    }

    /// Byte-for-byte what the serde encoder wrote, for single records and pairs, with and
    /// without shared request parts, escapes, unicode, nesting and minted tokens.
    #[test]
    fn hand_encoder_matches_the_serde_reference() {
        let s = salt();
        let data =
            json!({"password": "hun\"ter\\2\n", "ünï": ["cödé", 1.5, -3, null, false], "o": {}});
        let meta = json!({"role": "web\u{1}", "n": 7})
            .as_object()
            .unwrap()
            .clone();
        let policies = vec!["default".to_owned(), "app\"x".to_owned()];
        let resp = json!({"data": {"k": "v"}, "metadata": {"version": 3, "destroyed": false}});
        let base = Entry {
            kind: EntryType::Request,
            request_id: "3f1e-id",
            operation: "update",
            path: "secret/data/päth \"q\"",
            mount_type: Some("kv"),
            remote_address: Some("127.0.0.1"),
            client_token: Some("hvs.SECRETTOKEN"),
            client_token_accessor: Some("acc123"),
            auth: Some(AuthInfo {
                display_name: "token",
                policies: &policies,
                token_type: "service",
                metadata: Some(&meta),
                token_ttl: 3600,
            }),
            request_data: data.as_object(),
            ..Entry::default()
        };
        let response = Entry {
            kind: EntryType::Response,
            response_data: Some(&resp),
            response_auth: Some(ResponseAuth {
                client_token: "hvs.NEW",
                accessor: "newacc",
                policies: &policies,
                metadata: Some(&meta),
                lease_duration: 60,
                renewable: true,
                token_type: "service",
                orphan: false,
            }),
            status: Some(200),
            error: Some("a \"quoted\" error\t"),
            ..base
        };
        let bare = Entry {
            request_id: "x",
            operation: "read",
            path: "sys/health",
            ..Entry::default()
        };
        let memo = AuditMemo::default();
        let memoized = Entry {
            response_memo: Some(&memo),
            ..response
        };
        let other_data = json!({"other": "v"});
        let different = Entry {
            request_data: other_data.as_object(),
            ..response
        };
        // A caller memo, filled by the first record that carries it and reused after, also
        // when only the per-request token_ttl differs.
        let caller = CallerMemo::default();
        let base_cm = Entry {
            caller_memo: Some(&caller),
            ..base
        };
        let response_cm = Entry {
            caller_memo: Some(&caller),
            ..response
        };
        let later_cm = Entry {
            auth: base.auth.map(|a| AuthInfo { token_ttl: 5, ..a }),
            ..base_cm
        };
        let bare_memo = CallerMemo::default();
        let bare_cm = Entry {
            caller_memo: Some(&bare_memo),
            ..bare
        };
        let expect = |e: &Entry<'_>| {
            let mut v = Vec::new();
            reference::encode(&mut v, e, &s, "2026-11-23T10:00:00.5Z").unwrap();
            v
        };
        for (first, second) in [
            (base, None),
            (response, None),
            (bare, None),
            (base, Some(response)),
            (base, Some(different)),
            (bare, Some(base)),
            // Filled by the first, reused by the second (same salt).
            (base, Some(memoized)),
            (base, Some(memoized)),
            (base_cm, None),
            (base_cm, Some(response_cm)),
            (later_cm, Some(response_cm)),
            (response_cm, None),
            (bare_cm, None),
            (bare_cm, Some(bare_cm)),
        ] {
            let mut got = Vec::new();
            let end = encode_lines(
                &mut got,
                &first,
                second.as_ref(),
                &s,
                "2026-11-23T10:00:00.5Z",
            )
            .unwrap();
            let mut want = expect(&first);
            assert_eq!(
                String::from_utf8_lossy(&got[..end]),
                String::from_utf8_lossy(&want)
            );
            if let Some(second) = &second {
                want = expect(second);
                assert_eq!(
                    String::from_utf8_lossy(&got[end..]),
                    String::from_utf8_lossy(&want)
                );
            } else {
                assert_eq!(end, got.len());
            }
        }
    }

    #[test]
    fn a_memo_filled_under_another_salt_is_not_used() {
        let (a, b) = (
            salt(),
            Salt::new(&SecretBytes::from_slice(&[8; 32])).unwrap(),
        );
        let v = json!({"k": "secret"});
        let memo = AuditMemo::default();
        let (mut first, mut second) = (Vec::new(), Vec::new());
        memo.encode(&mut first, &v, &a);
        memo.encode(&mut second, &v, &b);
        let mut direct = Vec::new();
        hvalue(&mut direct, &v, &b);
        assert_eq!(second, direct);
        assert_ne!(first, second);
        assert!(!String::from_utf8_lossy(&first).contains("secret"));
        assert!(format!("{memo:?}").contains("filled: true"));
    }

    #[test]
    fn a_caller_memo_filled_under_another_salt_is_not_used() {
        let (a, b) = (
            salt(),
            Salt::new(&SecretBytes::from_slice(&[8; 32])).unwrap(),
        );
        let policies = vec!["app".to_owned()];
        let plain = Entry {
            request_id: "r",
            operation: "read",
            path: "secret/data/x",
            client_token: Some("hvs.SECRETTOKEN"),
            client_token_accessor: Some("acc"),
            auth: Some(AuthInfo {
                display_name: "token",
                policies: &policies,
                token_type: "service",
                metadata: None,
                token_ttl: 7,
            }),
            ..Entry::default()
        };
        let memo = CallerMemo::default();
        let with_memo = Entry {
            caller_memo: Some(&memo),
            ..plain
        };
        let encode = |e: &Entry<'_>, salt: &Salt| {
            let mut out = Vec::new();
            encode_lines(&mut out, e, None, salt, "t").unwrap();
            out
        };
        let under_a = encode(&with_memo, &a);
        assert!(format!("{memo:?}").contains("filled: true"));
        let under_b = encode(&with_memo, &b);
        assert_eq!(under_b, encode(&plain, &b));
        assert_ne!(under_a, under_b);
        assert_eq!(encode(&with_memo, &a), encode(&plain, &a));
        let text = String::from_utf8_lossy(&under_a);
        assert!(
            !text.contains("SECRETTOKEN") && !text.contains("\"acc\""),
            "{text}"
        );
        // Clones start empty and compare equal (they never change what holds them).
        assert!(format!("{:?}", memo.clone()).contains("filled: false"));
        assert!(memo == CallerMemo::default());
    }

    #[test]
    fn entry_debug_is_redacted() {
        let data = json!({"password": "hunter2"});
        let e = Entry {
            client_token: Some("hvs.SECRETTOKEN"),
            request_data: data.as_object(),
            response_auth: Some(ResponseAuth {
                client_token: "hvs.NEWTOKEN",
                ..ResponseAuth::default()
            }),
            ..Entry::default()
        };
        let dbg = format!("{e:?} {:?}", e.response_auth);
        assert!(
            !dbg.contains("SECRETTOKEN") && !dbg.contains("hunter2") && !dbg.contains("NEWTOKEN"),
            "{dbg}"
        );
    }
}
