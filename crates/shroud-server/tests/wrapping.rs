//! Response wrapping: `X-Vault-Wrap-TTL` and `sys/wrapping/*`, as hvac uses them.

mod common;
use axum::body::Body;
use axum::http::Request;
use common::{Harness, Resp};
use serde_json::{json, Value};

/// A call with extra headers (the harness's `call` sends only the token).
async fn call_h(
    h: &Harness,
    method: &str,
    path: &str,
    token: Option<&str>,
    headers: &[(&str, &str)],
    body: Option<Value>,
) -> Resp {
    let mut b = Request::builder().method(method).uri(format!("/v1/{path}"));
    if let Some(t) = token {
        b = b.header("X-Vault-Token", t);
    }
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    let body = match body {
        Some(v) => Body::from(serde_json::to_vec(&v).unwrap()),
        None => Body::empty(),
    };
    h.raw(b.body(body).unwrap()).await
}

async fn wrapped(h: &Harness, method: &str, path: &str, ttl: &str, body: Option<Value>) -> Value {
    let root = h.root.clone();
    let r = call_h(
        h,
        method,
        path,
        Some(&root),
        &[("X-Vault-Wrap-TTL", ttl)],
        body,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()
}

fn wrap_token(env: &Value) -> String {
    env["wrap_info"]["token"].as_str().unwrap().to_owned()
}

async fn put_secret(h: &Harness) {
    let r = h
        .root(
            "POST",
            "secret/data/db",
            Some(json!({"data": {"password": "VeryS3cretValue"}})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
}

/// Wrapped responses still held behind the barrier.
async fn stored_responses(h: &Harness) -> usize {
    h.core
        .barrier
        .list(shroud_server::wrapping::RESPONSE_PREFIX)
        .await
        .unwrap()
        .len()
}

async fn unwrap(h: &Harness, token: &str) -> Resp {
    h.call("POST", "sys/wrapping/unwrap", Some(token), Some(json!({})))
        .await
}

#[tokio::test]
async fn wrapped_kv_read_unwraps_exactly_once() {
    let h = Harness::new().await;
    put_secret(&h).await;
    let direct = h.root("GET", "secret/data/db", None).await.json();
    let env = wrapped(&h, "GET", "secret/data/db", "60s", None).await;
    // Everything but wrap_info is empty: no secret in the wrapped reply.
    assert_eq!(env["data"], Value::Null);
    assert_eq!(env["auth"], Value::Null);
    assert!(!env.to_string().contains("VeryS3cretValue"));
    let info = &env["wrap_info"];
    assert!(info["token"].as_str().unwrap().starts_with("hvs."));
    assert_eq!(info["ttl"], 60);
    assert_eq!(info["creation_path"], "secret/data/db");
    assert!(!info["accessor"].as_str().unwrap().is_empty());
    assert!(info["creation_time"].as_str().unwrap().contains('T'));
    assert!(
        info.get("wrapped_accessor").is_none(),
        "no token was minted"
    );

    let t = wrap_token(&env);
    let u = unwrap(&h, &t).await;
    assert_eq!(u.status, 200, "{}", u.text());
    let u = u.json();
    assert_eq!(
        u["data"], direct["data"],
        "unwrap gives the original response"
    );
    assert_eq!(u["data"]["data"]["password"], "VeryS3cretValue");
    assert_eq!(u["mount_type"], direct["mount_type"]);
    assert_eq!(u["wrap_info"], Value::Null);

    assert_eq!(
        stored_responses(&h).await,
        0,
        "unwrap destroyed the response"
    );

    let again = unwrap(&h, &t).await;
    assert_eq!(again.status, 400);
    assert_eq!(
        again.json()["errors"][0],
        "wrapping token is not valid or does not exist"
    );
}

#[tokio::test]
async fn unwrap_with_token_in_body_by_another_caller() {
    let h = Harness::new().await;
    put_secret(&h).await;
    let t = wrap_token(&wrapped(&h, "GET", "secret/data/db", "300", None).await);
    // Any valid token may unwrap (the default policy grants sys/wrapping/unwrap).
    let other = h
        .token_with("nothing", r#"path "x/*" { capabilities = ["read"] }"#)
        .await;
    let r = h
        .call(
            "POST",
            "sys/wrapping/unwrap",
            Some(&other),
            Some(json!({"token": t})),
        )
        .await;
    assert_eq!(
        r.status,
        403,
        "no default policy on that token: {}",
        r.text()
    );
    let with_default = h
        .root(
            "POST",
            "auth/token/create",
            Some(json!({"policies": ["default"]})),
        )
        .await
        .json()["auth"]["client_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = h
        .call(
            "POST",
            "sys/wrapping/unwrap",
            Some(&with_default),
            Some(json!({"token": t})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["data"]["data"]["password"], "VeryS3cretValue");
    let again = h
        .call(
            "POST",
            "sys/wrapping/unwrap",
            Some(&with_default),
            Some(json!({"token": t})),
        )
        .await;
    assert_eq!(again.status, 400);
    assert_eq!(
        unwrap(&h, &t).await.status,
        400,
        "the wrapping token is gone too"
    );
}

#[tokio::test]
async fn wrapped_token_create_unwraps_to_a_working_token() {
    let h = Harness::new().await;
    let env = wrapped(
        &h,
        "POST",
        "auth/token/create",
        "5m",
        Some(json!({"policies": ["app"], "ttl": "1h"})),
    )
    .await;
    let wrapped_accessor = env["wrap_info"]["wrapped_accessor"]
        .as_str()
        .expect("wrapped_accessor present for a minted token")
        .to_owned();
    assert_eq!(env["wrap_info"]["creation_path"], "auth/token/create");
    // hvac's auth_cubbyhole: set the wrapping token, unwrap, read auth.client_token.
    let u = unwrap(&h, &wrap_token(&env)).await.json();
    assert_eq!(u["auth"]["accessor"], wrapped_accessor.as_str());
    let minted = u["auth"]["client_token"].as_str().unwrap();
    assert!(minted.starts_with("hvs."));
    let me = h
        .call("GET", "auth/token/lookup-self", Some(minted), None)
        .await;
    assert_eq!(me.status, 200, "{}", me.text());
    assert_eq!(me.json()["data"]["policies"], json!(["app", "default"]));
}

#[tokio::test]
async fn lookup_is_unauthenticated_and_does_not_consume() {
    let h = Harness::new().await;
    put_secret(&h).await;
    let t = wrap_token(&wrapped(&h, "GET", "secret/data/db", "90", None).await);
    let r = h
        .call(
            "POST",
            "sys/wrapping/lookup",
            None,
            Some(json!({"token": t})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let d = r.json()["data"].clone();
    assert_eq!(d["creation_path"], "secret/data/db");
    assert_eq!(d["creation_ttl"], 90);
    assert!(d["creation_time"].as_str().unwrap().contains('T'));
    // With the token as X-Vault-Token instead of in the body.
    let r = h.call("POST", "sys/wrapping/lookup", Some(&t), None).await;
    assert_eq!(r.json()["data"]["creation_path"], "secret/data/db");
    assert_eq!(
        unwrap(&h, &t).await.status,
        200,
        "lookup did not use the token"
    );
    let gone = h
        .call(
            "POST",
            "sys/wrapping/lookup",
            None,
            Some(json!({"token": t})),
        )
        .await;
    assert_eq!(gone.status, 400);
    let bogus = h
        .call(
            "POST",
            "sys/wrapping/lookup",
            None,
            Some(json!({"token": "hvs.nope"})),
        )
        .await;
    assert_eq!(bogus.status, 400);
    // A normal token is not a wrapping token.
    let root = h.root.clone();
    let r = h
        .call(
            "POST",
            "sys/wrapping/lookup",
            None,
            Some(json!({"token": root})),
        )
        .await;
    assert_eq!(r.status, 400);
}

#[tokio::test]
async fn rewrap_moves_the_response_to_a_new_token() {
    let h = Harness::new().await;
    put_secret(&h).await;
    let old = wrap_token(&wrapped(&h, "GET", "secret/data/db", "120", None).await);
    let r = h
        .call("POST", "sys/wrapping/rewrap", Some(&old), Some(json!({})))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let env = r.json();
    assert_eq!(env["data"], Value::Null);
    let new = wrap_token(&env);
    assert_ne!(new, old);
    assert_eq!(env["wrap_info"]["creation_path"], "secret/data/db");
    assert_eq!(env["wrap_info"]["ttl"], 120);
    assert_eq!(unwrap(&h, &old).await.status, 400, "old token invalid");
    assert_eq!(
        stored_responses(&h).await,
        1,
        "one copy, under the new token"
    );
    let u = unwrap(&h, &new).await;
    assert_eq!(u.status, 200, "{}", u.text());
    assert_eq!(u.json()["data"]["data"]["password"], "VeryS3cretValue");
}

#[tokio::test]
async fn rewrap_by_a_privileged_caller_with_token_in_body() {
    let h = Harness::new().await;
    put_secret(&h).await;
    let old = wrap_token(&wrapped(&h, "GET", "secret/data/db", "120", None).await);
    let r = h
        .root("POST", "sys/wrapping/rewrap", Some(json!({"token": old})))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let new = wrap_token(&r.json());
    assert_eq!(unwrap(&h, &old).await.status, 400);
    assert_eq!(unwrap(&h, &new).await.status, 200);
}

#[tokio::test]
async fn wrapping_token_cannot_do_anything_else() {
    let h = Harness::new().await;
    put_secret(&h).await;
    // Even an operator policy named like the wrapping policy grants it nothing.
    h.root(
        "PUT",
        "sys/policies/acl/response-wrapping",
        Some(json!({"policy": "path \"*\" { capabilities = [\"read\", \"update\", \"create\", \"sudo\"] }"})),
    )
    .await;
    let t = wrap_token(&wrapped(&h, "GET", "secret/data/db", "60", None).await);
    for (m, p, b) in [
        ("GET", "secret/data/db", None),
        ("GET", "auth/token/lookup-self", None),
        ("POST", "auth/token/create", Some(json!({}))),
        ("POST", "auth/token/renew-self", Some(json!({}))),
        ("POST", "sys/wrapping/wrap", Some(json!({"a": "b"}))),
        ("GET", "sys/mounts", None),
        (
            "POST",
            "sys/capabilities-self",
            Some(json!({"paths": ["secret/data/db"]})),
        ),
    ] {
        let r = h.call(m, p, Some(&t), b).await;
        assert_eq!(r.status, 403, "{m} {p} with a wrapping token: {}", r.text());
    }
    // Denied requests did not spend its single use.
    let u = unwrap(&h, &t).await;
    assert_eq!(u.status, 200, "{}", u.text());
}

#[tokio::test]
async fn response_wrapping_policy_is_reserved() {
    let h = Harness::new().await;
    let r = h
        .root(
            "POST",
            "auth/token/create",
            Some(json!({"policies": ["response-wrapping"], "no_default_policy": true})),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
}

#[tokio::test]
async fn wrap_ttl_expiry_destroys_the_response() {
    let h = Harness::new().await;
    put_secret(&h).await;
    let t = wrap_token(&wrapped(&h, "GET", "secret/data/db", "1s", None).await);
    assert_eq!(stored_responses(&h).await, 1);
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let r = unwrap(&h, &t).await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(!r.text().contains("VeryS3cretValue"));
    assert_eq!(stored_responses(&h).await, 0, "expired response deleted");
}

#[tokio::test]
async fn bad_wrap_ttl_headers_are_400() {
    let h = Harness::new().await;
    put_secret(&h).await;
    let root = h.root.clone();
    for bad in ["-5", "-1m", "abc", "5 parsecs", ""] {
        let r = call_h(
            &h,
            "GET",
            "secret/data/db",
            Some(&root),
            &[("X-Vault-Wrap-TTL", bad)],
            None,
        )
        .await;
        assert_eq!(r.status, 400, "wrap ttl {bad:?}: {}", r.text());
        assert!(!r.text().contains("VeryS3cretValue"));
    }
    // Zero means "do not wrap".
    let r = call_h(
        &h,
        "GET",
        "secret/data/db",
        Some(&root),
        &[("X-Vault-Wrap-TTL", "0")],
        None,
    )
    .await;
    assert_eq!(r.json()["data"]["data"]["password"], "VeryS3cretValue");
    let r = call_h(
        &h,
        "GET",
        "secret/data/db",
        Some(&root),
        &[("X-Vault-Wrap-TTL", "60"), ("X-Vault-Wrap-Format", "jwt")],
        None,
    )
    .await;
    assert_eq!(r.status, 400, "JWT wrapping is not silently downgraded");
}

#[tokio::test]
async fn wrap_ttl_is_capped() {
    let h = Harness::new().await;
    put_secret(&h).await;
    let env = wrapped(&h, "GET", "secret/data/db", "10000h", None).await;
    assert_eq!(env["wrap_info"]["ttl"], 768 * 3600);
}

#[tokio::test]
async fn errors_and_204s_are_not_wrapped() {
    let h = Harness::new().await;
    let root = h.root.clone();
    let r = call_h(
        &h,
        "GET",
        "secret/data/missing",
        Some(&root),
        &[("X-Vault-Wrap-TTL", "60")],
        None,
    )
    .await;
    assert_eq!(r.status, 404);
    let r = call_h(
        &h,
        "PUT",
        "sys/policies/acl/p",
        Some(&root),
        &[("X-Vault-Wrap-TTL", "60")],
        Some(json!({"policy": "path \"a\" { capabilities = [\"read\"] }"})),
    )
    .await;
    assert_eq!(r.status, 204);
}

#[tokio::test]
async fn sys_wrapping_wrap_wraps_the_body() {
    let h = Harness::new().await;
    let env = wrapped(
        &h,
        "POST",
        "sys/wrapping/wrap",
        "60",
        Some(json!({"zip": "zap", "n": 3})),
    )
    .await;
    assert_eq!(env["wrap_info"]["creation_path"], "sys/wrapping/wrap");
    let u = unwrap(&h, &wrap_token(&env)).await.json();
    assert_eq!(u["data"], json!({"zip": "zap", "n": 3}));
    let r = h
        .root("POST", "sys/wrapping/wrap", Some(json!({"a": "b"})))
        .await;
    assert_eq!(r.status, 400, "wrap without X-Vault-Wrap-TTL");
}

#[tokio::test]
async fn unwrap_with_a_normal_token_and_no_body_is_400() {
    let h = Harness::new().await;
    let r = h.root("POST", "sys/wrapping/unwrap", Some(json!({}))).await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.json()["errors"][0],
        "wrapping token is not valid or does not exist"
    );
    let r = h.call("POST", "sys/wrapping/unwrap", None, None).await;
    assert_eq!(r.status, 403, "no token at all");
}

#[tokio::test]
async fn concurrent_unwraps_deliver_once() {
    let h = Harness::new().await;
    put_secret(&h).await;
    for _ in 0..10 {
        let t = wrap_token(&wrapped(&h, "GET", "secret/data/db", "60", None).await);
        let root = h.root.clone();
        let (a, b) = tokio::join!(
            unwrap(&h, &t),
            h.call(
                "POST",
                "sys/wrapping/unwrap",
                Some(&root),
                Some(json!({"token": t}))
            )
        );
        let ok = [a.status, b.status].iter().filter(|s| **s == 200).count();
        assert_eq!(ok, 1, "statuses {} and {}", a.status, b.status);
    }
}

#[tokio::test]
async fn unwrap_can_itself_be_wrapped() {
    let h = Harness::new().await;
    put_secret(&h).await;
    let t = wrap_token(&wrapped(&h, "GET", "secret/data/db", "60", None).await);
    let r = call_h(
        &h,
        "POST",
        "sys/wrapping/unwrap",
        Some(&t),
        &[("X-Vault-Wrap-TTL", "60")],
        Some(json!({})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        !r.text().contains("VeryS3cretValue"),
        "rewrapped, not in clear"
    );
    let t2 = wrap_token(&r.json());
    let u = unwrap(&h, &t2).await.json();
    assert_eq!(u["data"]["data"]["password"], "VeryS3cretValue");
}

#[tokio::test]
async fn audit_log_never_holds_wrapping_tokens_in_clear() {
    let h = Harness::new().await;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.log");
    let r = h
        .root(
            "PUT",
            "sys/audit/file",
            Some(json!({"type": "file", "options": {"file_path": log.to_str().unwrap()}})),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text());
    put_secret(&h).await;
    let kv = wrap_token(&wrapped(&h, "GET", "secret/data/db", "60", None).await);
    let tok_env = wrapped(
        &h,
        "POST",
        "auth/token/create",
        "60",
        Some(json!({"policies": ["x"]})),
    )
    .await;
    let tok_wrap = wrap_token(&tok_env);
    let wrapped_accessor = tok_env["wrap_info"]["wrapped_accessor"]
        .as_str()
        .unwrap()
        .to_owned();
    let lookup = h
        .call(
            "POST",
            "sys/wrapping/lookup",
            None,
            Some(json!({"token": kv})),
        )
        .await;
    assert_eq!(lookup.status, 200);
    assert_eq!(unwrap(&h, &kv).await.status, 200);
    let minted = unwrap(&h, &tok_wrap).await.json()["auth"]["client_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let text = std::fs::read_to_string(&log).unwrap();
    for secret in [
        kv.as_str(),
        tok_wrap.as_str(),
        minted.as_str(),
        wrapped_accessor.as_str(),
        "VeryS3cretValue",
    ] {
        assert!(!text.contains(secret), "audit log leaks {secret}");
    }
    assert!(text.contains("wrap_info"), "wrapped responses are audited");
    assert!(text.contains("sys/wrapping/lookup"), "lookup is audited");
    // The device can still correlate: the wrap token's HMAC is in the log.
    let hash = h
        .root("POST", "sys/audit-hash/file", Some(json!({"input": kv})))
        .await
        .json()["data"]["hash"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(text.contains(&hash));
    match shroud_audit::verify_file(&log).unwrap() {
        shroud_audit::VerifyReport::Ok { .. } => {}
        other => panic!("chain broken: {other:?}"),
    }
}

#[tokio::test]
async fn wrapped_approle_secret_id_then_login() {
    // hvac: generate_secret_id(role, wrap_ttl="60s"), hand the wrapping token to the app,
    // which unwraps it and logs in.
    let h = Harness::new().await;
    let r = h
        .root("POST", "sys/auth/approle", Some(json!({"type": "approle"})))
        .await;
    assert_eq!(r.status, 204, "{}", r.text());
    let r = h
        .root(
            "POST",
            "auth/approle/role/web",
            Some(json!({"token_policies": "app"})),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text());
    let role_id = h
        .root("GET", "auth/approle/role/web/role-id", None)
        .await
        .json()["data"]["role_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let env = wrapped(
        &h,
        "POST",
        "auth/approle/role/web/secret-id",
        "60s",
        Some(json!({})),
    )
    .await;
    assert_eq!(
        env["wrap_info"]["creation_path"],
        "auth/approle/role/web/secret-id"
    );
    let u = unwrap(&h, &wrap_token(&env)).await;
    assert_eq!(u.status, 200, "{}", u.text());
    let secret_id = u.json()["data"]["secret_id"].as_str().unwrap().to_owned();
    // A wrapped login: the minted token comes back only through unwrap.
    let r = call_h(
        &h,
        "POST",
        "auth/approle/login",
        None,
        &[("X-Vault-Wrap-TTL", "60")],
        Some(json!({"role_id": role_id, "secret_id": secret_id})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let env = r.json();
    assert_eq!(env["auth"], Value::Null);
    let accessor = env["wrap_info"]["wrapped_accessor"]
        .as_str()
        .unwrap()
        .to_owned();
    let u = unwrap(&h, &wrap_token(&env)).await.json();
    assert_eq!(u["auth"]["accessor"], accessor.as_str());
    let t = u["auth"]["client_token"].as_str().unwrap();
    assert_eq!(
        h.call("GET", "auth/token/lookup-self", Some(t), None)
            .await
            .status,
        200
    );
}
