//! Transport rules, sys endpoints, tokens, seal behaviour, bad input.

mod common;
use common::Harness;
use serde_json::json;

#[tokio::test]
async fn bad_input_gets_4xx_never_500() {
    let h = Harness::new().await;
    let mk = |method: &str, path: &str, body: &'static [u8]| {
        axum::http::Request::builder()
            .method(method)
            .uri(path)
            .header("X-Vault-Token", "root-test-token")
            .body(axum::body::Body::from(body))
            .unwrap()
    };
    let r = h.raw(mk("POST", "/v1/secret/data/x", b"{not json")).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.content_type.as_deref(), Some("application/json"));
    assert!(r.json()["errors"][0]
        .as_str()
        .unwrap()
        .starts_with("failed to parse JSON"));
    assert_eq!(
        h.raw(mk("POST", "/v1/secret/data/x", b"[1,2]"))
            .await
            .status,
        400
    );
    assert_eq!(
        h.raw(mk("POST", "/v1/secret/data/x", b"\"str\""))
            .await
            .status,
        400
    );
    assert_eq!(
        h.raw(mk("TRACE", "/v1/secret/data/x", b"")).await.status,
        405
    );
    assert_eq!(h.raw(mk("GET", "/v1/", b"")).await.status, 404);
    assert_eq!(h.raw(mk("GET", "/v1/nomount/x", b"")).await.status, 404);
    assert_eq!(
        h.raw(mk("GET", "/v1/secret/data/%zz", b"")).await.status,
        400
    );
    assert_eq!(h.raw(mk("GET", "/notv1", b"")).await.status, 404);
    assert_eq!(h.raw(mk("PUT", "/v1/sys/health", b"")).await.status, 405);
    assert_eq!(
        h.raw(mk("POST", "/v1/secret/bogus/x", b"{}")).await.status,
        404
    );
    assert_eq!(
        h.raw(mk("PATCH", "/v1/secret/delete/x", b"{}"))
            .await
            .status,
        415
    );
}

#[tokio::test]
async fn body_over_32_mib_is_413() {
    let h = Harness::new().await;
    let big = vec![b' '; 32 * 1024 * 1024 + 10];
    let req = axum::http::Request::builder()
        .method("POST")
        .uri("/v1/secret/data/big")
        .header("X-Vault-Token", "root-test-token")
        .body(axum::body::Body::from(big))
        .unwrap();
    assert_eq!(h.raw(req).await.status, 413);
}

#[tokio::test]
async fn missing_and_bad_tokens_are_403() {
    let h = Harness::new().await;
    let r = h.call("GET", "secret/data/x", None, None).await;
    assert_eq!(r.status, 403);
    assert!(r.text().contains("permission denied"));
    assert_eq!(
        h.call("GET", "secret/data/x", Some("hvs.bogus"), None)
            .await
            .status,
        403
    );
    let bearer = axum::http::Request::builder()
        .uri("/v1/auth/token/lookup-self")
        .header("Authorization", "Bearer root-test-token")
        .body(axum::body::Body::empty())
        .unwrap();
    assert_eq!(
        h.raw(bearer).await.status,
        200,
        "Authorization: Bearer is accepted"
    );
}

#[tokio::test]
async fn health_and_seal_status_are_raw_and_unauthenticated() {
    let h = Harness::new().await;
    let r = h.call("GET", "sys/health", None, None).await;
    assert_eq!(r.status, 200);
    let j = r.json();
    assert_eq!(j["initialized"], true);
    assert_eq!(j["sealed"], false);
    assert!(j.get("request_id").is_none(), "no envelope");
    let s = h.call("GET", "sys/seal-status", None, None).await.json();
    assert_eq!(s["sealed"], false);
    assert_eq!(s["type"], "static");
    let head = axum::http::Request::builder()
        .method("HEAD")
        .uri("/v1/sys/health")
        .body(axum::body::Body::empty())
        .unwrap();
    let r = h.raw(head).await;
    assert_eq!(r.status, 200);
    assert!(r.body.is_empty());
    assert_eq!(
        h.call("GET", "sys/init", None, None).await.json(),
        json!({"initialized": true})
    );
}

#[tokio::test]
async fn sealed_server_answers_503_except_status() {
    let h = Harness::new().await;
    h.root("POST", "secret/data/x", Some(json!({"data": {"a": "b"}})))
        .await;
    assert_eq!(h.root("PUT", "sys/seal", None).await.status, 204);
    let r = h.root("GET", "secret/data/x", None).await;
    assert_eq!(r.status, 503);
    assert_eq!(r.json(), json!({"errors": ["Vault is sealed"]}));
    assert_eq!(
        h.root("GET", "auth/token/lookup-self", None).await.status,
        503
    );
    assert_eq!(h.root("GET", "sys/mounts", None).await.status, 503);
    assert_eq!(h.call("GET", "sys/health", None, None).await.status, 503);
    assert_eq!(
        h.call("GET", "sys/health?sealedcode=299", None, None)
            .await
            .status,
        299
    );
    assert_eq!(
        h.call("GET", "sys/seal-status", None, None).await.json()["sealed"],
        true
    );
}

#[tokio::test]
async fn non_root_cannot_seal() {
    let h = Harness::new().await;
    let t = h
        .token_with("sealer", r#"path "sys/seal" { capabilities = ["update"] }"#)
        .await;
    assert_eq!(h.call("PUT", "sys/seal", Some(&t), None).await.status, 403);
    assert_eq!(
        h.call("GET", "sys/seal-status", None, None).await.json()["sealed"],
        false
    );
}

#[tokio::test]
async fn token_lifecycle() {
    let h = Harness::new().await;
    let r = h.root("POST", "auth/token/create", Some(json!({"policies": ["app"], "ttl": "1h", "meta": {"team": "x"}, "display_name": "ci"}))).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let auth = r.json()["auth"].clone();
    let t = auth["client_token"].as_str().unwrap().to_owned();
    assert!(t.starts_with("hvs."));
    assert_eq!(auth["policies"], json!(["app", "default"]));
    assert_eq!(auth["token_policies"], json!(["app", "default"]));
    assert_eq!(auth["lease_duration"], 3600);
    assert_eq!(auth["renewable"], true);
    assert_eq!(auth["token_type"], "service");
    let accessor = auth["accessor"].as_str().unwrap().to_owned();

    let me = h
        .call("GET", "auth/token/lookup-self", Some(&t), None)
        .await;
    assert_eq!(me.status, 200, "default policy allows lookup-self");
    let d = me.json()["data"].clone();
    assert_eq!(d["id"], t.as_str());
    assert_eq!(d["display_name"], "token-ci");
    assert_eq!(d["meta"]["team"], "x");
    assert!(d["ttl"].as_u64().unwrap() <= 3600);

    let l = h
        .root("POST", "auth/token/lookup", Some(json!({"token": t})))
        .await;
    assert_eq!(l.json()["data"]["accessor"], accessor.as_str());
    let la = h
        .root(
            "POST",
            "auth/token/lookup-accessor",
            Some(json!({"accessor": accessor})),
        )
        .await;
    assert_eq!(
        la.json()["data"]["id"],
        "",
        "lookup by accessor never reveals the token"
    );

    let rn = h
        .call(
            "POST",
            "auth/token/renew-self",
            Some(&t),
            Some(json!({"increment": "2h"})),
        )
        .await;
    assert_eq!(rn.status, 200, "{}", rn.text());
    assert_eq!(rn.json()["auth"]["lease_duration"], 7200);
    let rn = h
        .root(
            "POST",
            "auth/token/renew",
            Some(json!({"token": t, "increment": 600})),
        )
        .await;
    assert_eq!(rn.json()["auth"]["lease_duration"], 600);

    assert_eq!(
        h.root(
            "POST",
            "auth/token/revoke-accessor",
            Some(json!({"accessor": accessor}))
        )
        .await
        .status,
        204
    );
    assert_eq!(
        h.call("GET", "auth/token/lookup-self", Some(&t), None)
            .await
            .status,
        403
    );
}

#[tokio::test]
async fn children_are_revoked_with_their_parent_but_orphans_survive() {
    let h = Harness::new().await;
    let parent = h
        .root(
            "POST",
            "auth/token/create",
            Some(json!({"policies": ["p"]})),
        )
        .await
        .json()["auth"]["client_token"]
        .as_str()
        .unwrap()
        .to_owned();
    h.root(
        "PUT",
        "sys/policies/acl/p",
        Some(json!({"policy": "path \"auth/token/create\" { capabilities = [\"update\"] }"})),
    )
    .await;
    let child = h
        .call(
            "POST",
            "auth/token/create",
            Some(&parent),
            Some(json!({"policies": ["p"]})),
        )
        .await;
    assert_eq!(child.status, 200, "{}", child.text());
    let child = child.json()["auth"]["client_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let grandchild = h
        .call("POST", "auth/token/create", Some(&child), Some(json!({})))
        .await
        .json()["auth"]["client_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let orphan = h
        .root(
            "POST",
            "auth/token/create-orphan",
            Some(json!({"policies": ["p"]})),
        )
        .await
        .json()["auth"]["client_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        h.call("POST", "auth/token/revoke-self", Some(&parent), None)
            .await
            .status,
        204
    );
    for t in [&parent, &child, &grandchild] {
        assert_eq!(
            h.call("GET", "auth/token/lookup-self", Some(t), None)
                .await
                .status,
            403
        );
    }
    assert_eq!(
        h.call("GET", "auth/token/lookup-self", Some(&orphan), None)
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn child_policies_must_be_subset() {
    let h = Harness::new().await;
    h.root(
        "PUT",
        "sys/policies/acl/p",
        Some(json!({"policy": "path \"auth/token/create\" { capabilities = [\"update\"] }"})),
    )
    .await;
    let t = h
        .root(
            "POST",
            "auth/token/create",
            Some(json!({"policies": ["p"]})),
        )
        .await
        .json()["auth"]["client_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = h
        .call(
            "POST",
            "auth/token/create",
            Some(&t),
            Some(json!({"policies": ["admin"]})),
        )
        .await;
    assert_eq!(r.status, 400);
    let r = h
        .call(
            "POST",
            "auth/token/create",
            Some(&t),
            Some(json!({"policies": ["root"]})),
        )
        .await;
    assert_eq!(r.status, 400);
    let r = h
        .call(
            "POST",
            "auth/token/create",
            Some(&t),
            Some(json!({"id": "chosen"})),
        )
        .await;
    assert_eq!(r.status, 400, "only root picks token ids");
}

#[tokio::test]
async fn num_uses_is_enforced() {
    let h = Harness::new().await;
    let t = h
        .root("POST", "auth/token/create", Some(json!({"num_uses": 2})))
        .await
        .json()["auth"]["client_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        h.call("GET", "auth/token/lookup-self", Some(&t), None)
            .await
            .status,
        200
    );
    assert_eq!(
        h.call("GET", "auth/token/lookup-self", Some(&t), None)
            .await
            .status,
        200
    );
    assert_eq!(
        h.call("GET", "auth/token/lookup-self", Some(&t), None)
            .await
            .status,
        403,
        "third use refused"
    );
}

#[tokio::test]
async fn expired_token_is_rejected() {
    let h = Harness::new().await;
    let t = h
        .root("POST", "auth/token/create", Some(json!({"ttl": "1s"})))
        .await
        .json()["auth"]["client_token"]
        .as_str()
        .unwrap()
        .to_owned();
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    assert_eq!(
        h.call("GET", "auth/token/lookup-self", Some(&t), None)
            .await
            .status,
        403
    );
}

#[tokio::test]
async fn explicit_max_ttl_caps_renewal() {
    let h = Harness::new().await;
    let t = h
        .root(
            "POST",
            "auth/token/create",
            Some(json!({"ttl": "1h", "explicit_max_ttl": "90m"})),
        )
        .await
        .json()["auth"]["client_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = h
        .call(
            "POST",
            "auth/token/renew-self",
            Some(&t),
            Some(json!({"increment": "10h"})),
        )
        .await;
    assert!(r.json()["auth"]["lease_duration"].as_u64().unwrap() <= 5400);
}

#[tokio::test]
async fn policies_endpoints() {
    let h = Harness::new().await;
    let hcl = "path \"secret/data/app/*\" { capabilities = [\"read\"] }";
    assert_eq!(
        h.root("PUT", "sys/policies/acl/App", Some(json!({"policy": hcl})))
            .await
            .status,
        204
    );
    let r = h.root("GET", "sys/policies/acl/app", None).await.json();
    assert_eq!(r["data"]["name"], "app");
    assert_eq!(r["data"]["policy"], hcl);
    let l = h.root("LIST", "sys/policies/acl", None).await.json();
    assert!(l["data"]["keys"]
        .as_array()
        .unwrap()
        .contains(&json!("app")));
    let legacy = h.root("GET", "sys/policy", None).await.json();
    assert!(
        legacy["policies"]
            .as_array()
            .unwrap()
            .contains(&json!("root")),
        "sys/* data duplicated at top level"
    );
    assert_eq!(
        h.root("GET", "sys/policy/app", None).await.json()["data"]["rules"],
        hcl
    );
    assert_eq!(
        h.root("PUT", "sys/policy/bad", Some(json!({"policy": "path {"})))
            .await
            .status,
        400
    );
    assert_eq!(
        h.root("PUT", "sys/policy/root", Some(json!({"policy": hcl})))
            .await
            .status,
        400
    );
    assert_eq!(
        h.root("DELETE", "sys/policies/acl/default", None)
            .await
            .status,
        400
    );
    assert_eq!(
        h.root("DELETE", "sys/policies/acl/app", None).await.status,
        204
    );
    assert_eq!(
        h.root("GET", "sys/policies/acl/app", None).await.status,
        404
    );
}

#[tokio::test]
async fn mounts_enable_list_disable() {
    let h = Harness::new().await;
    let m = h.root("GET", "sys/mounts", None).await.json();
    assert_eq!(m["data"]["secret/"]["type"], "kv");
    assert_eq!(m["data"]["secret/"]["options"]["version"], "2");
    assert_eq!(m["secret/"]["type"], "kv", "top-level copy for old clients");
    let body = json!({"type": "kv", "description": null, "config": null, "options": {"version": "2"}, "plugin_name": null, "local": false, "seal_wrap": false});
    assert_eq!(
        h.root("POST", "sys/mounts/team/kv", Some(body))
            .await
            .status,
        204
    );
    assert_eq!(
        h.root("POST", "team/kv/data/x", Some(json!({"data": {"a": "1"}})))
            .await
            .status,
        200
    );
    assert_eq!(
        h.root("GET", "team/kv/data/x", None).await.json()["data"]["data"]["a"],
        "1"
    );
    let ui = h
        .root("GET", "sys/internal/ui/mounts/team/kv/x", None)
        .await
        .json();
    assert_eq!(ui["data"]["path"], "team/kv/");
    assert_eq!(ui["data"]["options"]["version"], "2");
    assert_eq!(
        h.root("POST", "sys/mounts/team/kv", Some(json!({"type": "kv"})))
            .await
            .status,
        400,
        "in use"
    );
    assert_eq!(
        h.root("POST", "sys/mounts/sys/x", Some(json!({"type": "kv"})))
            .await
            .status,
        400,
        "reserved"
    );
    assert_eq!(
        h.root(
            "POST",
            "sys/mounts/v1kv",
            Some(json!({"type": "kv", "options": {"version": "1"}}))
        )
        .await
        .status,
        400
    );
    assert_eq!(
        h.root("POST", "sys/mounts/other", Some(json!({"type": "pki"})))
            .await
            .status,
        400
    );
    assert_eq!(
        h.root("DELETE", "sys/mounts/team/kv", None).await.status,
        204
    );
    assert_eq!(h.root("GET", "team/kv/data/x", None).await.status, 404);
    // re-enabling starts empty
    h.root("POST", "sys/mounts/team/kv", Some(json!({"type": "kv-v2"})))
        .await;
    assert_eq!(h.root("GET", "team/kv/data/x", None).await.status, 404);
}

#[tokio::test]
async fn rotate_keeps_old_entries_readable() {
    let h = Harness::new().await;
    h.root(
        "POST",
        "secret/data/before",
        Some(json!({"data": {"a": "1"}})),
    )
    .await;
    assert_eq!(
        h.root("GET", "sys/key-status", None).await.json()["data"]["term"],
        1
    );
    assert_eq!(h.root("PUT", "sys/rotate", None).await.status, 204);
    assert_eq!(
        h.root("GET", "sys/key-status", None).await.json()["data"]["term"],
        2
    );
    h.root(
        "POST",
        "secret/data/after",
        Some(json!({"data": {"a": "2"}})),
    )
    .await;
    assert_eq!(
        h.root("GET", "secret/data/before", None).await.json()["data"]["data"]["a"],
        "1"
    );
    assert_eq!(
        h.root("GET", "secret/data/after", None).await.json()["data"]["data"]["a"],
        "2"
    );
}

#[tokio::test]
async fn capabilities_self() {
    let h = Harness::new().await;
    let t = h
        .token_with(
            "caps",
            r#"path "secret/data/app/*" { capabilities = ["read", "list"] }"#,
        )
        .await;
    let r = h
        .call(
            "POST",
            "sys/capabilities-self",
            Some(&t),
            Some(json!({"paths": ["secret/data/app/x", "secret/data/other"]})),
        )
        .await;
    // caps policy has no sys/capabilities-self rule and the token has no default policy
    assert_eq!(r.status, 403);
    let r = h
        .root(
            "POST",
            "sys/capabilities-self",
            Some(json!({"paths": ["secret/data/x"]})),
        )
        .await
        .json();
    assert_eq!(r["data"]["capabilities"], json!(["root"]));
}
