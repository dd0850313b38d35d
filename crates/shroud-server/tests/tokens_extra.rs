//! Batch tokens, the token lifecycle corners (periodic, explicit max TTL, use limits,
//! non-renewable) and rate limiting of token creation.

mod common;
use axum::body::Body;
use axum::http::Request;
use common::{Harness, Resp};
use serde_json::{json, Value};
use std::net::SocketAddr;

const READER: &str = r#"path "secret/data/*" { capabilities = ["read"] }"#;

async fn create(h: &Harness, token: &str, body: Value) -> Resp {
    h.call("POST", "auth/token/create", Some(token), Some(body))
        .await
}

fn client_token(r: &Resp) -> String {
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["auth"]["client_token"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn setup(h: &Harness) {
    let r = h
        .root(
            "PUT",
            "sys/policies/acl/reader",
            Some(json!({"policy": READER})),
        )
        .await;
    assert_eq!(r.status, 204);
    let r = h
        .root(
            "PUT",
            "sys/policies/acl/minter",
            Some(json!({"policy": "path \"auth/token/create\" { capabilities = [\"create\", \"update\"] }"})),
        )
        .await;
    assert_eq!(r.status, 204);
    let r = h
        .root("POST", "secret/data/app", Some(json!({"data": {"k": "v"}})))
        .await;
    assert_eq!(r.status, 200);
}

async fn batch(h: &Harness, body: Value) -> String {
    let mut b = body;
    b["type"] = json!("batch");
    // A root parent's policies would be inherited, and batch tokens cannot be root.
    if b.get("policies").is_none() {
        b["policies"] = json!(["app"]);
    }
    let root = h.root.clone();
    client_token(&create(h, &root, b).await)
}

// ---------------------------------------------------------------------------------------
// Batch tokens

#[tokio::test]
async fn batch_token_create_use_and_lookup() {
    let h = Harness::new().await;
    setup(&h).await;
    let root = h.root.clone();
    let r = create(
        &h,
        &root,
        json!({"type": "batch", "policies": ["reader"], "ttl": "1h", "meta": {"team": "x"}, "display_name": "ci"}),
    )
    .await;
    let auth = r.json()["auth"].clone();
    let t = client_token(&r);
    assert!(t.starts_with("hvb."), "{t}");
    assert!(t.len() < 1024, "compact: {} bytes", t.len());
    assert_eq!(auth["token_type"], "batch");
    assert_eq!(auth["accessor"], "");
    assert_eq!(auth["renewable"], false);
    assert_eq!(auth["lease_duration"], 3600);
    assert_eq!(auth["policies"], json!(["default", "reader"]));

    let read = h.call("GET", "secret/data/app", Some(&t), None).await;
    assert_eq!(read.status, 200, "{}", read.text());
    assert_eq!(read.json()["data"]["data"]["k"], "v");
    assert_eq!(
        h.call("GET", "secret/metadata/app", Some(&t), None)
            .await
            .status,
        403,
        "policies are enforced"
    );

    let me = h
        .call("GET", "auth/token/lookup-self", Some(&t), None)
        .await;
    assert_eq!(me.status, 200, "{}", me.text());
    let d = me.json()["data"].clone();
    assert_eq!(d["type"], "batch");
    assert_eq!(d["id"], t.as_str());
    assert_eq!(d["accessor"], "");
    assert_eq!(d["display_name"], "token-ci");
    assert_eq!(d["meta"]["team"], "x");
    assert_eq!(d["renewable"], false);
    assert_eq!(d["orphan"], false, "child of the root token");
    assert!(d["ttl"].as_u64().unwrap() <= 3600);

    let l = h
        .root("POST", "auth/token/lookup", Some(json!({"token": t})))
        .await;
    assert_eq!(l.json()["data"]["type"], "batch");
    // Not stored: no accessor to list.
    let accessors = h.root("LIST", "auth/token/accessors", None).await.json();
    assert_eq!(
        accessors["data"]["keys"].as_array().unwrap().len(),
        1,
        "only root's"
    );
}

#[tokio::test]
async fn batch_token_cannot_be_renewed() {
    let h = Harness::new().await;
    let t = batch(&h, json!({"ttl": "1h"})).await;
    let r = h
        .call("POST", "auth/token/renew-self", Some(&t), Some(json!({})))
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
    let r = h
        .root("POST", "auth/token/renew", Some(json!({"token": t})))
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
}

#[tokio::test]
async fn batch_token_cannot_be_revoked() {
    let h = Harness::new().await;
    let t = batch(&h, json!({"ttl": "1h"})).await;
    let r = h
        .call("POST", "auth/token/revoke-self", Some(&t), None)
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
    let r = h
        .root("POST", "auth/token/revoke", Some(json!({"token": t})))
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(
        h.call("GET", "auth/token/lookup-self", Some(&t), None)
            .await
            .status,
        200,
        "still valid"
    );
}

#[tokio::test]
async fn batch_token_expires() {
    let h = Harness::new().await;
    let t = batch(&h, json!({"ttl": "1s"})).await;
    assert_eq!(
        h.call("GET", "auth/token/lookup-self", Some(&t), None)
            .await
            .status,
        200
    );
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    assert_eq!(
        h.call("GET", "auth/token/lookup-self", Some(&t), None)
            .await
            .status,
        403
    );
}

#[tokio::test]
async fn revoking_the_parent_stops_the_batch_child() {
    let h = Harness::new().await;
    setup(&h).await;
    let root = h.root.clone();
    let parent = client_token(
        &create(
            &h,
            &root,
            json!({"policies": ["reader", "minter"], "ttl": "1h"}),
        )
        .await,
    );
    let child = client_token(
        &create(
            &h,
            &parent,
            json!({"type": "batch", "policies": ["reader"]}),
        )
        .await,
    );
    let me = h
        .call("GET", "auth/token/lookup-self", Some(&child), None)
        .await;
    assert_eq!(me.json()["data"]["orphan"], false);
    assert!(
        me.json()["data"]["ttl"].as_u64().unwrap() <= 3600,
        "a child does not outlive its parent"
    );
    assert_eq!(
        h.call("GET", "secret/data/app", Some(&child), None)
            .await
            .status,
        200
    );
    let r = h
        .root("POST", "auth/token/revoke", Some(json!({"token": parent})))
        .await;
    assert_eq!(r.status, 204);
    assert_eq!(
        h.call("GET", "secret/data/app", Some(&child), None)
            .await
            .status,
        403
    );
}

#[tokio::test]
async fn orphan_batch_token_survives_its_creator() {
    let h = Harness::new().await;
    let root = h.root.clone();
    let creator = client_token(&create(&h, &root, json!({"ttl": "1h"})).await);
    let t = batch(&h, json!({"no_parent": true, "ttl": "1h"})).await;
    h.root("POST", "auth/token/revoke", Some(json!({"token": creator})))
        .await;
    let me = h
        .call("GET", "auth/token/lookup-self", Some(&t), None)
        .await;
    assert_eq!(me.status, 200);
    assert_eq!(me.json()["data"]["orphan"], true);
}

#[tokio::test]
async fn tampered_batch_token_is_403() {
    let h = Harness::new().await;
    let t = batch(&h, json!({"ttl": "1h"})).await;
    let mut tampered: Vec<char> = t.chars().collect();
    let mid = tampered.len() / 2;
    tampered[mid] = if tampered[mid] == 'A' { 'B' } else { 'A' };
    let tampered: String = tampered.into_iter().collect();
    let truncated = &t[..t.len() - 4];
    let garbage = "hvb.!!!not-base64!!!";
    let empty = "hvb.";
    // A batch token minted by another server (another key) is just as invalid.
    let other = Harness::new().await;
    let foreign = batch(&other, json!({"ttl": "1h"})).await;
    let huge = format!("hvb.{}", "A".repeat(10_000));
    for bad in [
        tampered.as_str(),
        truncated,
        garbage,
        empty,
        foreign.as_str(),
        huge.as_str(),
    ] {
        let r = h
            .call("GET", "auth/token/lookup-self", Some(bad), None)
            .await;
        assert_eq!(r.status, 403, "{}", r.text());
    }
    assert_eq!(
        h.call("GET", "auth/token/lookup-self", Some(&t), None)
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn batch_tokens_cannot_create_tokens() {
    let h = Harness::new().await;
    setup(&h).await;
    let t = batch(&h, json!({"policies": ["minter"], "ttl": "1h"})).await;
    let r = create(&h, &t, json!({"policies": ["minter"]})).await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("batch tokens cannot create"));
    let r = create(&h, &t, json!({"type": "batch", "policies": ["minter"]})).await;
    assert_eq!(r.status, 400);
}

#[tokio::test]
async fn batch_token_option_conflicts_are_400() {
    let h = Harness::new().await;
    let root = h.root.clone();
    for (body, why) in [
        (json!({"type": "batch", "policies": ["root"]}), "root"),
        (json!({"type": "batch", "period": "1h"}), "periodic"),
        (json!({"type": "batch", "num_uses": 3}), "uses"),
        (json!({"type": "batch", "id": "my-id"}), "custom ID"),
        (json!({"type": "weird"}), "type"),
        (json!({"id": "hvb.forged"}), "invalid token id"),
    ] {
        let r = create(&h, &root, body.clone()).await;
        assert_eq!(r.status, 400, "{body}: {}", r.text());
        assert!(r.text().contains(why), "{body}: {}", r.text());
    }
}

#[tokio::test]
async fn oversized_batch_token_is_refused() {
    let h = Harness::new().await;
    let mut meta = serde_json::Map::new();
    for i in 0..10 {
        meta.insert(format!("k{i}"), json!("x".repeat(1000)));
    }
    let root = h.root.clone();
    let r = create(
        &h,
        &root,
        json!({"type": "batch", "policies": ["app"], "meta": meta}),
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("too long"));
}

#[tokio::test]
async fn wrapped_batch_token_has_no_wrapped_accessor() {
    let h = Harness::new().await;
    let req = Request::builder()
        .method("POST")
        .uri("/v1/auth/token/create")
        .header("X-Vault-Token", h.root.as_str())
        .header("X-Vault-Wrap-TTL", "60")
        .body(Body::from(
            json!({"type": "batch", "policies": ["app"]}).to_string(),
        ))
        .unwrap();
    let env = h.raw(req).await.json();
    assert!(env["wrap_info"].get("wrapped_accessor").is_none());
    let w = env["wrap_info"]["token"].as_str().unwrap().to_owned();
    let u = h
        .call("POST", "sys/wrapping/unwrap", Some(&w), Some(json!({})))
        .await
        .json();
    let t = u["auth"]["client_token"].as_str().unwrap();
    assert!(t.starts_with("hvb."));
    assert_eq!(
        h.call("GET", "auth/token/lookup-self", Some(t), None)
            .await
            .status,
        200
    );
}

// ---------------------------------------------------------------------------------------
// Lifecycle

#[tokio::test]
async fn periodic_token_renews_back_to_its_period_without_max_ttl() {
    let h = Harness::new().await;
    let root = h.root.clone();
    // 800h is beyond the 768h system max TTL: periodic tokens are not bound by it.
    let r = create(&h, &root, json!({"period": "800h", "ttl": "1h"})).await;
    let t = client_token(&r);
    assert_eq!(r.json()["auth"]["lease_duration"], 800 * 3600);
    let me = h
        .call("GET", "auth/token/lookup-self", Some(&t), None)
        .await
        .json();
    assert_eq!(me["data"]["period"], 800 * 3600);
    let r = h
        .call(
            "POST",
            "auth/token/renew-self",
            Some(&t),
            Some(json!({"increment": "1h"})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let ld = r.json()["auth"]["lease_duration"].as_u64().unwrap();
    assert!(
        (800 * 3600 - 5..=800 * 3600).contains(&ld),
        "renewed back to the period, increment ignored: {ld}"
    );
}

#[tokio::test]
async fn periodic_token_is_capped_by_explicit_max_ttl() {
    let h = Harness::new().await;
    let root = h.root.clone();
    let r = create(
        &h,
        &root,
        json!({"period": "2h", "explicit_max_ttl": "90m"}),
    )
    .await;
    let t = client_token(&r);
    assert_eq!(r.json()["auth"]["lease_duration"], 5400);
    let r = h
        .call("POST", "auth/token/renew-self", Some(&t), Some(json!({})))
        .await;
    assert!(r.json()["auth"]["lease_duration"].as_u64().unwrap() <= 5400);
}

#[tokio::test]
async fn periodic_token_needs_root_or_sudo() {
    let h = Harness::new().await;
    setup(&h).await;
    let root = h.root.clone();
    let minter =
        client_token(&create(&h, &root, json!({"policies": ["minter"], "ttl": "1h"})).await);
    let r = create(&h, &minter, json!({"policies": ["minter"], "period": "1h"})).await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("periodic"));
    // create-orphan needs no sudo for the orphan, but that is no licence for a period.
    h.root(
        "PUT",
        "sys/policies/acl/orphaner",
        Some(
            json!({"policy": "path \"auth/token/create-orphan\" { capabilities = [\"update\"] }"}),
        ),
    )
    .await;
    let o = client_token(&create(&h, &root, json!({"policies": ["orphaner"], "ttl": "1h"})).await);
    let r = h
        .call(
            "POST",
            "auth/token/create-orphan",
            Some(&o),
            Some(json!({"policies": ["orphaner"]})),
        )
        .await;
    assert_eq!(r.status, 200, "orphan without sudo: {}", r.text());
    let r = h
        .call(
            "POST",
            "auth/token/create-orphan",
            Some(&o),
            Some(json!({"policies": ["orphaner"], "period": "1h"})),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
}

#[tokio::test]
async fn explicit_max_ttl_caps_creation_and_renewal() {
    let h = Harness::new().await;
    let root = h.root.clone();
    let r = create(&h, &root, json!({"ttl": "2h", "explicit_max_ttl": "1h"})).await;
    let t = client_token(&r);
    assert_eq!(r.json()["auth"]["lease_duration"], 3600);
    let me = h
        .call("GET", "auth/token/lookup-self", Some(&t), None)
        .await
        .json();
    assert_eq!(me["data"]["explicit_max_ttl"], 3600);
    let r = h
        .call(
            "POST",
            "auth/token/renew-self",
            Some(&t),
            Some(json!({"increment": "100h"})),
        )
        .await;
    assert_eq!(r.status, 200);
    assert!(r.json()["auth"]["lease_duration"].as_u64().unwrap() <= 3600);
}

#[tokio::test]
async fn last_use_completes_then_revokes() {
    let h = Harness::new().await;
    setup(&h).await;
    let root = h.root.clone();
    let t = client_token(&create(&h, &root, json!({"policies": ["reader"], "num_uses": 1})).await);
    let r = h.call("GET", "secret/data/app", Some(&t), None).await;
    assert_eq!(r.status, 200, "the last use itself succeeds: {}", r.text());
    assert_eq!(r.json()["data"]["data"]["k"], "v");
    assert_eq!(
        h.call("GET", "secret/data/app", Some(&t), None)
            .await
            .status,
        403
    );
    let l = h
        .root("POST", "auth/token/lookup", Some(json!({"token": t})))
        .await;
    assert_eq!(l.status, 400, "revoked, not just refused: {}", l.text());
}

#[tokio::test]
async fn last_use_cannot_be_spent_twice_concurrently() {
    let h = Harness::new().await;
    let root = h.root.clone();
    for _ in 0..10 {
        let t = client_token(&create(&h, &root, json!({"num_uses": 1})).await);
        let (a, b) = tokio::join!(
            h.call("GET", "auth/token/lookup-self", Some(&t), None),
            h.call("GET", "auth/token/lookup-self", Some(&t), None)
        );
        let ok = [a.status, b.status].iter().filter(|s| **s == 200).count();
        assert_eq!(ok, 1, "statuses {} and {}", a.status, b.status);
    }
}

#[tokio::test]
async fn renew_on_last_use_does_not_resurrect_the_token() {
    let h = Harness::new().await;
    let root = h.root.clone();
    let t = client_token(&create(&h, &root, json!({"num_uses": 1, "ttl": "1h"})).await);
    let r = h
        .call("POST", "auth/token/renew-self", Some(&t), Some(json!({})))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        h.call("GET", "auth/token/lookup-self", Some(&t), None)
            .await
            .status,
        403
    );
}

#[tokio::test]
async fn non_renewable_token_refuses_renewal() {
    let h = Harness::new().await;
    let root = h.root.clone();
    let r = create(&h, &root, json!({"renewable": false, "ttl": "1h"})).await;
    let t = client_token(&r);
    assert_eq!(r.json()["auth"]["renewable"], false);
    let r = h
        .call("POST", "auth/token/renew-self", Some(&t), Some(json!({})))
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
    let r = h
        .root("POST", "auth/token/renew", Some(json!({"token": t})))
        .await;
    assert_eq!(r.status, 400);
}

// ---------------------------------------------------------------------------------------
// Rate limiting

async fn create_from(h: &Harness, peer: &str, token: &str) -> Resp {
    let peer: SocketAddr = peer.parse().unwrap();
    let mut req = Request::builder()
        .method("POST")
        .uri("/v1/auth/token/create")
        .header("X-Vault-Token", token)
        .body(Body::from(
            json!({"policies": ["minter"], "ttl": "1m"}).to_string(),
        ))
        .unwrap();
    req.extensions_mut().insert(shroud_server::http::Peer(peer));
    h.raw(req).await
}

#[tokio::test]
async fn token_creation_is_rate_limited_per_client_ip() {
    let h = Harness::new().await;
    setup(&h).await;
    let root = h.root.clone();
    let minter =
        client_token(&create(&h, &root, json!({"policies": ["minter"], "ttl": "1h"})).await);
    let mut limited = 0;
    for _ in 0..60 {
        let r = create_from(&h, "192.0.2.1:5000", &minter).await;
        match r.status {
            200 => {}
            429 => {
                limited += 1;
                assert_eq!(r.json(), json!({"errors": ["rate limit quota exceeded"]}));
            }
            s => panic!("unexpected {s}: {}", r.text()),
        }
    }
    assert!(
        limited > 0,
        "60 creates from one address must hit the limit"
    );
    // Another address, and another port of a different host, are unaffected.
    assert_eq!(create_from(&h, "192.0.2.2:5000", &minter).await.status, 200);
    assert_eq!(
        create_from(&h, "[2001:db8::1]:5000", &minter).await.status,
        200
    );
    // Requests without a peer address have their own bucket.
    assert_eq!(
        create(&h, &minter, json!({"policies": ["minter"]}))
            .await
            .status,
        200
    );
    // The root token is exempt.
    assert_eq!(create_from(&h, "192.0.2.1:5001", &root).await.status, 200);
    // Other endpoints are not limited.
    let peer: SocketAddr = "192.0.2.1:5000".parse().unwrap();
    let mut req = Request::builder()
        .method("GET")
        .uri("/v1/auth/token/lookup-self")
        .header("X-Vault-Token", minter.as_str())
        .body(Body::empty())
        .unwrap();
    req.extensions_mut().insert(shroud_server::http::Peer(peer));
    assert_eq!(
        h.raw(req).await.status,
        200,
        "lookup-self is not rate limited"
    );
}

#[tokio::test]
async fn rate_limit_can_be_turned_off() {
    let h = Harness::new().await;
    setup(&h).await;
    h.core
        .rate_limiter
        .set_config(shroud_server::ratelimit::RateLimitConfig::disabled());
    let root = h.root.clone();
    let minter =
        client_token(&create(&h, &root, json!({"policies": ["minter"], "ttl": "1h"})).await);
    for _ in 0..40 {
        assert_eq!(create_from(&h, "192.0.2.9:1", &minter).await.status, 200);
    }
}

async fn approle_login(h: &Harness, peer: &str, role_id: &str, secret_id: &str) -> Resp {
    let peer: SocketAddr = peer.parse().unwrap();
    let mut req = Request::builder()
        .method("POST")
        .uri("/v1/auth/approle/login")
        .body(Body::from(
            json!({"role_id": role_id, "secret_id": secret_id}).to_string(),
        ))
        .unwrap();
    req.extensions_mut().insert(shroud_server::http::Peer(peer));
    h.raw(req).await
}

#[tokio::test]
async fn logins_are_rate_limited_per_client_ip() {
    let h = Harness::new().await;
    let r = h
        .root("POST", "sys/auth/approle", Some(json!({"type": "approle"})))
        .await;
    assert_eq!(r.status, 204, "{}", r.text());
    let r = h
        .root(
            "POST",
            "auth/approle/role/web",
            Some(json!({"token_policies": "reader"})),
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
    let secret_id = h
        .root("POST", "auth/approle/role/web/secret-id", Some(json!({})))
        .await
        .json()["data"]["secret_id"]
        .as_str()
        .unwrap()
        .to_owned();
    // Guessing secret IDs from one address runs into the limit...
    let mut limited = 0;
    for i in 0..60 {
        let r = approle_login(&h, "198.51.100.7:1000", &role_id, &format!("guess-{i}")).await;
        match r.status {
            400 => {}
            429 => {
                limited += 1;
                assert_eq!(r.json(), json!({"errors": ["rate limit quota exceeded"]}));
            }
            s => panic!("unexpected {s}: {}", r.text()),
        }
    }
    assert!(limited > 0, "60 logins from one address must hit the limit");
    // ...even with the right secret, while the bucket is empty...
    let r = approle_login(&h, "198.51.100.7:1000", &role_id, &secret_id).await;
    assert_eq!(r.status, 429);
    // ...while another client logs in normally.
    let r = approle_login(&h, "198.51.100.8:1000", &role_id, &secret_id).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.json()["auth"]["client_token"]
        .as_str()
        .unwrap()
        .starts_with("hvs."));
}
