//! HTTP endpoints of the token auth method (`auth/token/*`).

use crate::api::{duration_field, ApiError, ApiResult, Logical, Operation, Reply, Request};
use crate::core::{Active, Caller};
use crate::token::{now_secs, CreateRequest, TokenEntry};
use serde_json::{json, Value};
use std::sync::Arc;

/// An enveloped response carrying a new token.
pub fn auth_reply(entry: &TokenEntry, token: shroud_core::SecretString) -> Reply {
    Reply::Logical(Box::new(Logical {
        auth: Some(entry.auth_block(token, now_secs())),
        mount_type: "token",
        ..Default::default()
    }))
}

fn token_field(req: &Request) -> Result<String, ApiError> {
    match req.field("token") {
        Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
        _ => Err(ApiError::bad_request("missing token")),
    }
}

fn accessor_field(req: &Request) -> Result<String, ApiError> {
    match req.field("accessor") {
        Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
        _ => Err(ApiError::bad_request("missing accessor")),
    }
}

async fn lookup_token(active: &Active, token: &str) -> Result<Arc<TokenEntry>, ApiError> {
    active
        .tokens
        .lookup(token)
        .await?
        .ok_or_else(|| ApiError::bad_request("bad token"))
}

/// Vault refuses to revoke batch tokens: they are not stored, so there is nothing to delete;
/// they end at expiry or with their parent.
fn refuse_batch_revoke(e: &TokenEntry) -> Result<(), ApiError> {
    if e.batch {
        return Err(ApiError::bad_request("batch tokens cannot be revoked"));
    }
    Ok(())
}

/// Dispatches `auth/token/<rest>`.
pub async fn handle(active: &Active, caller: &Caller, req: &Request) -> ApiResult {
    let rest = req
        .path
        .strip_prefix("auth/token")
        .unwrap_or("")
        .trim_start_matches('/')
        .trim_end_matches('/');
    let now = now_secs();
    match (rest, req.op) {
        ("create" | "create-orphan", Operation::Update) => {
            let mut c = CreateRequest::from_body(req.body.as_ref())?;
            if rest == "create-orphan" {
                c.no_parent = true;
            }
            let issuer = crate::token::Issuer::Parent {
                parent: &caller.entry,
                sudo: caller.sudo,
                orphan_endpoint: rest == "create-orphan",
            };
            let (token, entry) = active
                .tokens
                .create(issuer, c, &format!("auth/token/{rest}"))
                .await?;
            Ok(auth_reply(&entry, token))
        }
        ("lookup-self", Operation::Read | Operation::Update) => Ok(Reply::data(
            caller.entry.lookup_data(Some(caller.token.expose()), now),
        )),
        ("lookup", Operation::Update) => {
            let t = token_field(req)?;
            let e = lookup_token(active, &t).await?;
            Ok(Reply::data(e.lookup_data(Some(&t), now)))
        }
        ("lookup", Operation::Read) => Ok(Reply::data(
            caller.entry.lookup_data(Some(caller.token.expose()), now),
        )),
        ("lookup-accessor", Operation::Update) => {
            let a = accessor_field(req)?;
            let e = active
                .tokens
                .lookup_accessor(&a)
                .await?
                .ok_or_else(|| ApiError::bad_request("invalid accessor"))?;
            Ok(Reply::data(e.lookup_data(None, now)))
        }
        ("renew-self", Operation::Update) => {
            let inc = duration_field(req.field("increment"), "increment")?;
            let e = active.tokens.renew(&caller.entry, inc).await?;
            Ok(auth_reply(&e, caller.token.clone()))
        }
        ("renew", Operation::Update) => {
            let t = token_field(req)?;
            let e = lookup_token(active, &t).await?;
            let inc = duration_field(req.field("increment"), "increment")?;
            let e = active.tokens.renew(&e, inc).await?;
            Ok(auth_reply(&e, t.into()))
        }
        ("revoke-self", Operation::Update) => {
            refuse_batch_revoke(&caller.entry)?;
            active.tokens.revoke_tree(&caller.entry.hash).await?;
            Ok(Reply::NoContent)
        }
        ("revoke", Operation::Update) => {
            let t = token_field(req)?;
            if let Some(e) = active.tokens.lookup(&t).await? {
                refuse_batch_revoke(&e)?;
                active.tokens.revoke_tree(&e.hash).await?;
            }
            Ok(Reply::NoContent)
        }
        ("revoke-orphan", Operation::Update) => {
            let t = token_field(req)?;
            if let Some(e) = active.tokens.lookup(&t).await? {
                refuse_batch_revoke(&e)?;
                active.tokens.revoke_orphan(&e.hash).await?;
            }
            Ok(Reply::NoContent)
        }
        ("revoke-accessor", Operation::Update) => {
            let a = accessor_field(req)?;
            if let Some(e) = active.tokens.lookup_accessor(&a).await? {
                active.tokens.revoke_tree(&e.hash).await?;
            }
            Ok(Reply::NoContent)
        }
        ("accessors", Operation::List) => {
            let keys = active.tokens.accessors().await?;
            if keys.is_empty() {
                return Err(ApiError::not_found());
            }
            Ok(Reply::data(json!({ "keys": keys })))
        }
        (
            "create" | "create-orphan" | "lookup-self" | "lookup" | "lookup-accessor"
            | "renew-self" | "renew" | "revoke-self" | "revoke" | "revoke-orphan"
            | "revoke-accessor" | "accessors",
            _,
        ) => Err(ApiError::unsupported_operation()),
        _ => Err(ApiError::no_route(&req.path)),
    }
}
