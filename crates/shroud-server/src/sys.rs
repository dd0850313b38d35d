//! The system backend (`sys/*`).

use crate::api::{
    parse_bool, string_list, uint_field, ApiError, ApiResult, Operation, Reply, Request,
};
use crate::core::{Active, Caller, Core};
use base64::Engine as _;
use serde_json::{json, Map, Value};
use std::sync::Arc;
use std::time::SystemTime;

/// The version string reported by health and seal-status.
pub const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), "+shroud");

async fn seal_status_json(core: &Core) -> Result<Value, ApiError> {
    let s = core.seal.status().await?;
    Ok(json!({
        "type": s.seal_type,
        "initialized": s.initialized,
        "sealed": s.sealed,
        "t": s.t,
        "n": s.n,
        "progress": s.progress,
        "nonce": s.nonce,
        "version": VERSION,
        "build_date": "",
        "migration": false,
        "cluster_name": "shroud",
        "cluster_id": "",
        "recovery_seal": false,
        "storage_type": core.storage_kind,
    }))
}

/// Endpoints that answer without a token (and, for the status ones, while sealed).
/// Returns None when `req` is not one of them.
pub async fn unauthenticated(core: &Arc<Core>, req: &Request) -> Option<ApiResult> {
    let p = req.path.trim_end_matches('/');
    let r = match (p, req.op) {
        ("sys/health", Operation::Read) => health(core, req).await,
        ("sys/seal-status", Operation::Read) => {
            seal_status_json(core).await.map(|v| Reply::Raw(200, v))
        }
        ("sys/init", Operation::Read) => match core.seal.is_initialized().await {
            Ok(i) => Ok(Reply::Raw(200, json!({ "initialized": i }))),
            Err(e) => Err(e.into()),
        },
        ("sys/init", Operation::Update) => init(core, req).await,
        ("sys/unseal", Operation::Update) => unseal(core, req).await,
        ("sys/leader", Operation::Read) => Ok(Reply::Raw(
            200,
            json!({"ha_enabled": false, "is_self": true, "active_time": "0001-01-01T00:00:00Z",
                   "leader_address": "", "leader_cluster_address": "",
                   "performance_standby": false, "performance_standby_last_remote_wal": 0}),
        )),
        // Vault serves wrapping lookup without a client token: whoever holds a wrapping token
        // may check where it came from before unwrapping it.
        ("sys/wrapping/lookup", _) => crate::wrapping::lookup_unauthenticated(core, req).await,
        ("sys/health" | "sys/seal-status" | "sys/init" | "sys/unseal" | "sys/leader", _) => {
            Err(ApiError::unsupported_operation())
        }
        _ => return None,
    };
    Some(r)
}

async fn health(core: &Core, req: &Request) -> ApiResult {
    let s = core.seal.status().await?;
    let code = |name: &str, default: u16| -> u16 {
        req.query(name)
            .and_then(|v| v.parse::<u16>().ok())
            .filter(|c| (100..600).contains(c))
            .unwrap_or(default)
    };
    let status = if !s.initialized {
        code("uninitcode", 501)
    } else if s.sealed {
        code("sealedcode", 503)
    } else {
        code("activecode", 200)
    };
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    Ok(Reply::Raw(
        status,
        json!({
            "initialized": s.initialized,
            "sealed": s.sealed,
            "standby": false,
            "performance_standby": false,
            "replication_performance_mode": "disabled",
            "replication_dr_mode": "disabled",
            "server_time_utc": now,
            "version": VERSION,
            "cluster_name": "shroud",
            "cluster_id": "",
        }),
    ))
}

async fn init(core: &Core, req: &Request) -> ApiResult {
    let shares = uint_field(req.field("secret_shares"), "secret_shares")?;
    let threshold = uint_field(req.field("secret_threshold"), "secret_threshold")?;
    if req.field("pgp_keys").is_some()
        || req
            .field("root_token_pgp_key")
            .map(|v| v != "")
            .unwrap_or(false)
    {
        return Err(ApiError::bad_request(
            "PGP-encrypted shares are not supported",
        ));
    }
    let (shares, threshold) = match (&core.seal_kind, shares, threshold) {
        (crate::core::SealKind::Static { .. }, _, _) => (1, 1),
        (_, Some(s), Some(t)) => (s, t),
        (_, None, _) | (_, _, None) => {
            return Err(ApiError::bad_request(
                "secret_shares and secret_threshold are required",
            ))
        }
    };
    if shares == 0 || shares > 255 || threshold == 0 || threshold > shares {
        return Err(ApiError::bad_request(
            "invalid seal configuration: need 1 <= secret_threshold <= secret_shares <= 255",
        ));
    }
    let (keys, root) = core.initialize(shares as u8, threshold as u8, None).await?;
    let hex: Vec<String> = keys.iter().map(|k| hex::encode(k.expose())).collect();
    let b64: Vec<String> = keys
        .iter()
        .map(|k| base64::engine::general_purpose::STANDARD.encode(k.expose()))
        .collect();
    Ok(Reply::Raw(
        200,
        json!({"keys": hex, "keys_base64": b64, "root_token": root.expose()}),
    ))
}

/// Decodes an unseal key given as hex or base64 (hvac and the Vault CLI send either).
pub fn decode_key(s: &str) -> Option<Vec<u8>> {
    let s = s.trim();
    if s.is_empty() || s.len() > 1024 {
        return None;
    }
    if s.len().is_multiple_of(2) && s.bytes().all(|b| b.is_ascii_hexdigit()) {
        if let Ok(b) = hex::decode(s) {
            return Some(b);
        }
    }
    base64::engine::general_purpose::STANDARD.decode(s).ok()
}

async fn unseal(core: &Core, req: &Request) -> ApiResult {
    if req
        .field("reset")
        .map(|v| v == &json!(true) || v == "true")
        .unwrap_or(false)
    {
        core.seal.reset_progress();
        return seal_status_json(core).await.map(|v| Reply::Raw(200, v));
    }
    let Some(Value::String(key)) = req.field("key") else {
        return Err(ApiError::bad_request("missing required parameter 'key'"));
    };
    let Some(bytes) = decode_key(key) else {
        return Err(ApiError::bad_request(
            "'key' must be a valid hex or base64 string",
        ));
    };
    if !core.seal.status().await?.sealed {
        return seal_status_json(core).await.map(|v| Reply::Raw(200, v));
    }
    core.submit_share(&bytes).await?;
    seal_status_json(core).await.map(|v| Reply::Raw(200, v))
}

fn body_map(req: &Request) -> Map<String, Value> {
    req.body.clone().unwrap_or_default()
}

fn str_field<'a>(req: &'a Request, k: &str) -> Result<Option<&'a str>, ApiError> {
    match req.field(k) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(ApiError::bad_request(format!("{k} must be a string"))),
    }
}

/// Authenticated sys endpoints (the ACL check already passed).
pub async fn handle(
    core: &Arc<Core>,
    active: &Active,
    caller: &Caller,
    req: &Request,
) -> ApiResult {
    let path = req.path.as_str();
    let (head, rest) = match path.strip_prefix("sys/") {
        Some(r) => match r.find('/') {
            Some(i) => (&r[..i], &r[i + 1..]),
            None => (r, ""),
        },
        None => ("", ""),
    };
    let rest = rest.trim_end_matches('/');
    match (head, rest, req.op) {
        ("seal", "", Operation::Update) => {
            if !caller.sudo {
                return Err(ApiError::permission_denied());
            }
            core.seal_now();
            Ok(Reply::NoContent)
        }
        ("mounts", "", Operation::Read) => {
            let mut m = Map::new();
            for mount in active.mounts.all() {
                m.insert(mount.entry.path.clone(), mount.entry.json());
            }
            m.insert(
                "sys/".into(),
                json!({"type": "system", "description": "system endpoints used for control, policy and debugging",
                       "accessor": "system", "uuid": "", "config": {"default_lease_ttl": 0, "max_lease_ttl": 0, "force_no_cache": false},
                       "options": null, "local": false, "seal_wrap": true, "external_entropy_access": false}),
            );
            Ok(Reply::sys(Value::Object(m)))
        }
        ("mounts", p, Operation::Update) if !p.is_empty() && !p.ends_with("/tune") => {
            let kind = str_field(req, "type")?
                .ok_or_else(|| ApiError::bad_request("missing mount type"))?;
            let desc = str_field(req, "description")?.unwrap_or("");
            let options = match req.field("options") {
                Some(Value::Object(o)) => o.clone(),
                None => Map::new(),
                Some(_) => return Err(ApiError::bad_request("options must be a map")),
            };
            active.mounts.enable(p, kind, desc, options).await?;
            Ok(Reply::NoContent)
        }
        ("mounts", p, Operation::Read) if !p.is_empty() => {
            let p = p.trim_end_matches("/tune");
            let norm = crate::mounts::normalize(p)?;
            let m = active
                .mounts
                .get(&norm)
                .ok_or_else(|| ApiError::bad_request(format!("no mount at {norm}")))?;
            if req.path.trim_end_matches('/').ends_with("/tune") {
                return Ok(Reply::sys(
                    json!({"default_lease_ttl": 2764800, "max_lease_ttl": 2764800,
                    "force_no_cache": false, "description": m.entry.description, "options": m.entry.options}),
                ));
            }
            Ok(Reply::sys(m.entry.json()))
        }
        ("mounts", p, Operation::Delete) if !p.is_empty() => {
            active.mounts.disable(p).await?;
            Ok(Reply::NoContent)
        }
        ("auth", "", Operation::Read) => {
            let mut m = Map::new();
            m.insert(
                "token/".into(),
                json!({"type": "token", "description": "token based credentials",
                "accessor": "auth_token", "uuid": "", "config": {"default_lease_ttl": 0, "max_lease_ttl": 0, "token_type": "default-service"},
                "options": null, "local": false, "seal_wrap": false, "external_entropy_access": false}),
            );
            for mount in active.auth_mounts.all() {
                m.insert(mount.entry.path.clone(), mount.entry.json());
            }
            Ok(Reply::sys(Value::Object(m)))
        }
        ("auth", p, Operation::Update) if !p.is_empty() && !p.ends_with("/tune") => {
            let kind = str_field(req, "type")?
                .ok_or_else(|| ApiError::bad_request("missing auth method type"))?;
            let desc = str_field(req, "description")?.unwrap_or("");
            active.auth_mounts.enable(p, kind, desc, Map::new()).await?;
            Ok(Reply::NoContent)
        }
        ("auth", p, Operation::Read) if !p.is_empty() => {
            let norm = crate::mounts::normalize(p.trim_end_matches("/tune"))?;
            let m = active
                .auth_mounts
                .get(&norm)
                .ok_or_else(|| ApiError::bad_request(format!("no auth method at {norm}")))?;
            Ok(Reply::sys(m.entry.json()))
        }
        ("auth", p, Operation::Delete) if !p.is_empty() => {
            if crate::mounts::normalize(p)? == "token/" {
                return Err(ApiError::bad_request(
                    "cannot disable the token auth method",
                ));
            }
            active.auth_mounts.disable(p).await?;
            Ok(Reply::NoContent)
        }
        ("policy", "", Operation::Read | Operation::List) => {
            let names = active.policies.names();
            Ok(Reply::sys(json!({"policies": names, "keys": names})))
        }
        ("policies", "acl", Operation::List | Operation::Read) => {
            let names = active.policies.names();
            Ok(Reply::sys(json!({"keys": names, "policies": names})))
        }
        ("policy", name, op) | ("policies", name, op) if !name.is_empty() => {
            let (legacy, name) = if head == "policy" {
                (true, name)
            } else {
                match name.strip_prefix("acl/") {
                    Some(n) => (false, n),
                    None => return Err(ApiError::no_route(path)),
                }
            };
            policy_endpoint(active, req, legacy, name, op).await
        }
        ("audit", "", Operation::Read) => {
            let mut m = Map::new();
            for d in active.audit.all() {
                let j = d.json();
                if let Some(p) = j.get("path").and_then(|p| p.as_str()) {
                    m.insert(p.to_owned(), j.clone());
                }
            }
            Ok(Reply::sys(Value::Object(m)))
        }
        ("audit", p, Operation::Update) if !p.is_empty() => {
            let kind = str_field(req, "type")?
                .ok_or_else(|| ApiError::bad_request("missing audit device type"))?;
            let desc = str_field(req, "description")?.unwrap_or("");
            let options = match req.field("options") {
                Some(Value::Object(o)) => o.clone(),
                None => Map::new(),
                Some(_) => return Err(ApiError::bad_request("options must be a map")),
            };
            active.audit.enable(p, kind, desc, &options).await?;
            Ok(Reply::NoContent)
        }
        ("audit", p, Operation::Delete) if !p.is_empty() => {
            active.audit.disable(p).await?;
            Ok(Reply::NoContent)
        }
        ("audit-hash", p, Operation::Update) if !p.is_empty() => {
            let norm = crate::mounts::normalize(p)?;
            let d = active
                .audit
                .get(&norm)
                .ok_or_else(|| ApiError::bad_request(format!("unknown audit device {norm}")))?;
            let input =
                str_field(req, "input")?.ok_or_else(|| ApiError::bad_request("missing input"))?;
            Ok(Reply::sys(json!({ "hash": d.hash(input) })))
        }
        ("internal", p, Operation::Read) if p == "ui/mounts" || p.starts_with("ui/mounts/") => {
            ui_mounts(
                active,
                p.strip_prefix("ui/mounts")
                    .unwrap_or("")
                    .trim_start_matches('/'),
            )
        }
        ("wrapping", rest, _) => crate::wrapping::handle(active, caller, req, rest).await,
        ("rotate", "", Operation::Update) => {
            core.barrier.rotate().await?;
            Ok(Reply::NoContent)
        }
        ("key-status", "", Operation::Read) => {
            let s = core.barrier.key_status().ok_or_else(ApiError::sealed)?;
            Ok(Reply::sys(json!({
                "term": s.term,
                "install_time": crate::api::timestamp(s.install_time),
                "encryptions": s.encryptions,
            })))
        }
        ("capabilities-self", "", Operation::Update) => {
            let paths = string_list(req.field("paths").or_else(|| req.field("path")))?;
            if paths.is_empty() || paths.len() > 256 {
                return Err(ApiError::bad_request("paths: 1 to 256 paths required"));
            }
            let mut out = Map::new();
            for p in &paths {
                out.insert(p.clone(), json!(crate::core::capabilities(&caller.acl, p)));
            }
            if paths.len() == 1 {
                out.insert(
                    "capabilities".into(),
                    json!(crate::core::capabilities(&caller.acl, &paths[0])),
                );
            }
            Ok(Reply::sys(Value::Object(out)))
        }
        (
            "mounts" | "auth" | "policy" | "policies" | "audit" | "audit-hash" | "rotate"
            | "key-status" | "capabilities-self" | "seal",
            _,
            _,
        ) => Err(ApiError::unsupported_operation()),
        _ => Err(ApiError::no_route(path)),
    }
}

async fn policy_endpoint(
    active: &Active,
    req: &Request,
    legacy: bool,
    name: &str,
    op: Operation,
) -> ApiResult {
    let name = name.to_lowercase();
    match op {
        Operation::Read => {
            let text = if name == "root" {
                Some(String::new())
            } else {
                active.policies.get(&name).map(|p| p.raw.clone())
            };
            let Some(text) = text else {
                return Err(ApiError::not_found());
            };
            if legacy {
                Ok(Reply::sys(json!({"name": name, "rules": text})))
            } else {
                Ok(Reply::sys(json!({"name": name, "policy": text})))
            }
        }
        Operation::Update => {
            let text = match req.field("policy").or_else(|| req.field("rules")) {
                Some(Value::String(s)) => s.clone(),
                Some(v @ Value::Object(_)) => v.to_string(),
                _ => {
                    return Err(ApiError::bad_request(
                        "'policy' parameter not supplied or empty",
                    ))
                }
            };
            if text.trim().is_empty() {
                return Err(ApiError::bad_request(
                    "'policy' parameter not supplied or empty",
                ));
            }
            active.policies.put(&name, &text).await?;
            Ok(Reply::NoContent)
        }
        Operation::Delete => {
            active.policies.delete(&name).await?;
            Ok(Reply::NoContent)
        }
        _ => Err(ApiError::unsupported_operation()),
    }
}

fn ui_mounts(active: &Active, p: &str) -> ApiResult {
    if p.is_empty() {
        let mut secret = Map::new();
        for m in active.mounts.all() {
            secret.insert(m.entry.path.clone(), m.entry.json());
        }
        let mut auth = Map::new();
        auth.insert("token/".into(), json!({"type": "token"}));
        for m in active.auth_mounts.all() {
            auth.insert(m.entry.path.clone(), m.entry.json());
        }
        return Ok(Reply::sys(json!({"secret": secret, "auth": auth})));
    }
    let Some((m, _)) = active.mounts.resolve(p) else {
        return Err(ApiError::bad_request(format!(
            "preflight capability check returned 403, please ensure client's policies grant access to path \"{p}/\""
        )));
    };
    let mut j = m.entry.json();
    j["path"] = json!(m.entry.path);
    Ok(Reply::sys(j))
}

/// Parses `?list=` like Go's ParseBool (hvac sends `list=True`).
pub fn list_query(v: &str) -> bool {
    parse_bool(v).unwrap_or(false)
}

/// Request-body helper for tests and handlers.
pub fn body_of(req: &Request) -> Map<String, Value> {
    body_map(req)
}
