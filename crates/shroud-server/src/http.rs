//! HTTP ⇄ logical translation, in one place: verbs, paths, bodies, the Vault envelope, error
//! bodies, status codes and headers.

use crate::api::{ApiError, Logical, Operation, Reply, Request};
use crate::core::Core;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::Response;
use axum::Router;
use http_body_util::BodyExt;
use serde_json::{Map, Value};
use shroud_core::SecretString;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// Vault's default maximum request size.
pub const MAX_BODY: usize = 32 * 1024 * 1024;

/// The peer address, inserted as a request extension by the connection loop.
#[derive(Clone, Copy, Debug)]
pub struct Peer(pub SocketAddr);

/// The router: everything under `/v1/` goes to one handler.
pub fn router(core: Arc<Core>) -> Router {
    Router::new().fallback(entry).with_state(core)
}

fn json_response(status: u16, body: Vec<u8>) -> Response {
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let h = r.headers_mut();
    // Exactly `application/json`: hvac compares the header string for equality.
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// Renders an error as `{"errors":[…]}` (plus `data` when kept).
pub fn error_response(e: &ApiError) -> Response {
    let mut m = Map::new();
    m.insert("errors".into(), Value::from(e.errors.clone()));
    if let Some(d) = &e.data {
        m.insert("data".into(), d.clone());
    }
    json_response(e.status, serde_json::to_vec(&m).unwrap_or_default())
}

/// The standard envelope of a logical response as a JSON object (Vault's `HTTPResponse`).
/// Response wrapping stores exactly this (minus `request_id`), so an unwrap gives the client
/// the response it would have had.
pub fn envelope(l: Logical, request_id: &str) -> Map<String, Value> {
    let mut m = Map::new();
    if l.sys_inject {
        if let Some(Value::Object(d)) = l.data.as_value() {
            for (k, v) in d {
                m.insert(k.clone(), v.clone());
            }
        }
    }
    m.insert("request_id".into(), Value::from(request_id));
    m.insert("lease_id".into(), Value::from(""));
    m.insert("renewable".into(), Value::from(false));
    m.insert("lease_duration".into(), Value::from(0));
    m.insert("data".into(), l.data.into_value().unwrap_or(Value::Null));
    m.insert(
        "wrap_info".into(),
        match l.wrap_info {
            Some(w) => serde_json::to_value(&w).unwrap_or(Value::Null),
            None => Value::Null,
        },
    );
    m.insert(
        "warnings".into(),
        if l.warnings.is_empty() {
            Value::Null
        } else {
            Value::from(l.warnings)
        },
    );
    m.insert(
        "auth".into(),
        match l.auth {
            Some(a) => serde_json::to_value(&a).unwrap_or(Value::Null),
            None => Value::Null,
        },
    );
    m.insert("mount_type".into(), Value::from(l.mount_type));
    m
}

fn render(reply: Reply, request_id: &str, head: bool) -> Response {
    let (status, body) = match reply {
        Reply::NoContent => {
            let mut r = json_response(204, vec![]);
            *r.status_mut() = StatusCode::NO_CONTENT;
            return r;
        }
        Reply::Raw(status, v) => (status, serde_json::to_vec(&v).unwrap_or_default()),
        Reply::Logical(l) if !l.sys_inject => {
            // The hot path: serialize the envelope straight from the reply, without building
            // (and cloning the data into) a map first. Same keys and values as `envelope`.
            #[derive(serde::Serialize)]
            struct Envelope<'a> {
                request_id: &'a str,
                lease_id: &'static str,
                renewable: bool,
                lease_duration: u64,
                data: &'a crate::api::Data,
                wrap_info: &'a Option<crate::api::WrapInfo>,
                warnings: Option<&'a [String]>,
                auth: &'a Option<crate::api::AuthBlock>,
                mount_type: &'a str,
            }
            let env = Envelope {
                request_id,
                lease_id: "",
                renewable: false,
                lease_duration: 0,
                data: &l.data,
                wrap_info: &l.wrap_info,
                warnings: (!l.warnings.is_empty()).then_some(l.warnings.as_slice()),
                auth: &l.auth,
                mount_type: l.mount_type,
            };
            (
                l.status.unwrap_or(200),
                serde_json::to_vec(&env).unwrap_or_default(),
            )
        }
        Reply::Logical(l) => {
            let status = l.status.unwrap_or(200);
            let m = envelope(*l, request_id);
            (status, serde_json::to_vec(&m).unwrap_or_default())
        }
    };
    json_response(status, if head { vec![] } else { body })
}

/// Parses `X-Vault-Wrap-TTL` like Vault's `parseutil.ParseDurationSecond`: integer seconds or a
/// Go duration string; negative or garbage is an error. Zero means "do not wrap" (Vault wraps
/// only when the TTL is positive).
pub fn parse_wrap_ttl(v: &str) -> Result<Option<Duration>, ApiError> {
    if v.trim().is_empty() {
        return Err(ApiError::bad_request(WRAP_TTL_ERROR));
    }
    let d = shroud_core::duration::parse(v).map_err(|_| ApiError::bad_request(WRAP_TTL_ERROR))?;
    Ok((!d.is_zero()).then_some(d))
}

const WRAP_TTL_ERROR: &str =
    "invalid X-Vault-Wrap-TTL: expected positive seconds or a duration like \"5m\"";

/// Percent-decodes a path; None if the result is not UTF-8 or has a bad escape.
fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn parse_query(q: Option<&str>) -> Vec<(String, String)> {
    let Some(q) = q else { return vec![] };
    q.split('&')
        .filter(|p| !p.is_empty())
        .take(64)
        .filter_map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            let dec = |x: &str| percent_decode(&x.replace('+', " "));
            Some((dec(k)?, dec(v)?))
        })
        .collect()
}

fn token_from(headers: &HeaderMap) -> Option<SecretString> {
    if let Some(v) = headers.get("x-vault-token").and_then(|v| v.to_str().ok()) {
        if !v.is_empty() {
            return Some(SecretString::from(v));
        }
    }
    let auth = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let t = auth
        .strip_prefix("Bearer ")
        .or_else(|| auth.strip_prefix("bearer "))?;
    (!t.is_empty()).then(|| SecretString::from(t.trim()))
}

async fn entry(State(core): State<Arc<Core>>, req: axum::extract::Request) -> Response {
    let peer = req.extensions().get::<Peer>().map(|p| p.0);
    handle(core, req, peer).await
}

/// Handles one HTTP request from `peer`. The connection loop calls this directly with hyper's
/// body (no routing layer is needed: every path goes here); in-process tests go through
/// [`router`], which wraps it and takes the peer from a [`Peer`] extension.
pub async fn handle<B>(
    core: Arc<Core>,
    req: axum::http::Request<B>,
    peer: Option<SocketAddr>,
) -> Response
where
    B: hyper::body::Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let (parts, body) = req.into_parts();
    let request_id = crate::api::request_id();
    let Some(raw_path) = parts.uri.path().strip_prefix("/v1/") else {
        return error_response(&ApiError::not_found());
    };
    let Some(path) = percent_decode(raw_path) else {
        return error_response(&ApiError::bad_request("invalid path encoding"));
    };
    // hvac collapses `//`; do the same so policies see one canonical path.
    let mut path = path;
    while path.contains("//") {
        path = path.replace("//", "/");
    }
    let path = path.trim_start_matches('/').to_owned();
    if path.is_empty() {
        return error_response(&ApiError::not_found());
    }
    if path.len() > 8192 || path.chars().any(|c| c.is_control()) {
        return error_response(&ApiError::bad_request("invalid path"));
    }
    let query = parse_query(parts.uri.query());
    let list_q = query
        .iter()
        .rev()
        .find(|(k, _)| k == "list")
        .map(|(_, v)| crate::sys::list_query(v))
        .unwrap_or(false);
    let head = parts.method == Method::HEAD;
    let op = match parts.method.as_str() {
        "GET" | "HEAD" if list_q => Operation::List,
        "GET" => Operation::Read,
        "HEAD" if path.trim_end_matches('/') == "sys/health" => Operation::Read,
        "LIST" => Operation::List,
        "POST" | "PUT" => Operation::Update,
        "DELETE" => Operation::Delete,
        "PATCH" => Operation::Patch,
        _ => return error_response(&ApiError::new(405, "unsupported operation")),
    };
    if op == Operation::Patch {
        let ct = parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !ct.starts_with("application/merge-patch+json") {
            return error_response(&ApiError::new(
                415,
                "PATCH requires Content-Type of application/merge-patch+json",
            ));
        }
    }
    if let Some(len) = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
    {
        if len > MAX_BODY {
            return error_response(&ApiError::new(413, "request body too large"));
        }
    }
    let bytes: Bytes = match read_body(body).await {
        Ok(b) => b,
        Err(e) => {
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some()
            {
                return error_response(&ApiError::new(413, "request body too large"));
            }
            return error_response(&ApiError::bad_request("failed to read request body"));
        }
    };
    let body = if bytes.iter().all(|b| b.is_ascii_whitespace()) {
        None
    } else {
        match serde_json::from_slice::<Value>(&bytes) {
            Ok(Value::Object(m)) => Some(m),
            Ok(Value::Null) => None,
            Ok(_) => {
                return error_response(&ApiError::bad_request(
                    "failed to parse JSON input: request body must be a JSON object",
                ))
            }
            Err(e) => {
                // serde_json's message names line/column, never the content.
                return error_response(&ApiError::bad_request(format!(
                    "failed to parse JSON input: {e}"
                )));
            }
        }
    };
    let wrap_ttl = match parts.headers.get("x-vault-wrap-ttl") {
        None => None,
        Some(v) => match v.to_str().map(parse_wrap_ttl) {
            Ok(Ok(d)) => d,
            Ok(Err(e)) => return error_response(&e),
            Err(_) => return error_response(&ApiError::bad_request(WRAP_TTL_ERROR)),
        },
    };
    // Only the default (token) format exists here; a client asking for JWT-format wrapping
    // tokens must not silently get something else.
    if let Some(f) = parts.headers.get("x-vault-wrap-format") {
        if !f.as_bytes().is_empty() && f.as_bytes() != b"token" {
            return error_response(&ApiError::bad_request(
                "unsupported X-Vault-Wrap-Format (only \"token\" is supported)",
            ));
        }
    }
    let remote = peer;
    let req = Request {
        id: request_id,
        op,
        path,
        query,
        body,
        token: token_from(&parts.headers),
        remote,
        wrap_ttl,
        head,
    };
    match core.handle(req).await {
        Ok(reply) => render(reply, &request_id, head),
        Err(e) => error_response(&e),
    }
}

/// The whole body, at most [`MAX_BODY`] bytes. A body that arrives in one frame (the usual
/// case) is passed on as is, without copying.
async fn read_body<B>(body: B) -> Result<Bytes, Box<dyn std::error::Error + Send + Sync>>
where
    B: hyper::body::Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let mut body = std::pin::pin!(http_body_util::Limited::new(body, MAX_BODY));
    let mut first: Option<Bytes> = None;
    let mut more: Vec<u8> = Vec::new();
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame?.into_data() else {
            continue; // trailers
        };
        match &first {
            None => first = Some(data),
            Some(f) => {
                if more.is_empty() {
                    more.extend_from_slice(f);
                }
                more.extend_from_slice(&data);
            }
        }
    }
    Ok(if more.is_empty() {
        first.unwrap_or_default()
    } else {
        Bytes::from(more)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%20b/c").as_deref(), Some("a b/c"));
        assert_eq!(percent_decode("%zz"), None);
        assert_eq!(percent_decode("%ff"), None, "invalid UTF-8 is rejected");
        assert_eq!(
            percent_decode("abc%2"),
            None,
            "truncated escape is rejected"
        );
    }

    #[test]
    fn wrap_ttl_parses_like_vault() {
        assert_eq!(
            parse_wrap_ttl("60s").unwrap(),
            Some(Duration::from_secs(60))
        );
        assert_eq!(
            parse_wrap_ttl("300").unwrap(),
            Some(Duration::from_secs(300))
        );
        assert_eq!(
            parse_wrap_ttl("5m").unwrap(),
            Some(Duration::from_secs(300))
        );
        assert_eq!(parse_wrap_ttl("0").unwrap(), None, "zero means do not wrap");
        for bad in ["-5", "-1s", "abc", "", "  ", "1y"] {
            assert_eq!(parse_wrap_ttl(bad).unwrap_err().status, 400, "{bad:?}");
        }
    }

    #[test]
    fn fast_envelope_equals_envelope() {
        let make = || Logical {
            data: crate::api::Data::Owned(serde_json::json!({"k": "v", "n": [1, 2]})),
            auth: Some(crate::api::AuthBlock {
                client_token: SecretString::from("hvs.tok"),
                accessor: "acc".into(),
                policies: vec!["a".into()],
                token_policies: vec!["a".into()],
                metadata: None,
                lease_duration: 60,
                renewable: true,
                entity_id: String::new(),
                token_type: "service".into(),
                orphan: false,
                mfa_requirement: None,
                num_uses: 0,
            }),
            warnings: vec!["w".into()],
            mount_type: "kv",
            ..Default::default()
        };
        for warnings in [true, false] {
            let mut l = make();
            if !warnings {
                l.warnings.clear();
            }
            let mut l2 = make();
            if !warnings {
                l2.warnings.clear();
            }
            let fast = render(Reply::Logical(Box::new(l)), "rid", false);
            let body = futures_body(fast);
            let slow: Value = Value::Object(envelope(l2, "rid"));
            assert_eq!(serde_json::from_slice::<Value>(&body).unwrap(), slow);
        }
    }

    fn futures_body(r: Response) -> Vec<u8> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(async { r.into_body().collect().await.unwrap().to_bytes().to_vec() })
    }

    #[test]
    fn envelope_carries_wrap_info_and_nothing_else() {
        let l = Logical {
            wrap_info: Some(crate::api::WrapInfo {
                token: SecretString::from("hvs.x"),
                accessor: "acc".into(),
                ttl: 60,
                creation_time: "t".into(),
                creation_path: "secret/data/a".into(),
                wrapped_accessor: None,
            }),
            ..Default::default()
        };
        let m = envelope(l, "id");
        assert_eq!(m["wrap_info"]["token"], "hvs.x");
        assert!(m["wrap_info"].get("wrapped_accessor").is_none());
        assert_eq!(m["data"], Value::Null);
        assert_eq!(m["auth"], Value::Null);
        assert_eq!(m["request_id"], "id");
    }

    #[test]
    fn list_query_parses_like_go() {
        let q = parse_query(Some("list=True&x=1"));
        assert_eq!(q[0], ("list".to_owned(), "True".to_owned()));
        assert!(crate::sys::list_query("True"));
        assert!(crate::sys::list_query("1"));
        assert!(!crate::sys::list_query("nope"));
    }
}
