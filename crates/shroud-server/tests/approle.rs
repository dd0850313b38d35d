//! AppRole over the in-process router, with the requests hvac 2.4.0 sends.

mod common;
use axum::body::Body;
use axum::http::Request;
use common::{Harness, Resp};
use serde_json::{json, Value};
use shroud_server::http::Peer;

const INVALID: &str = "invalid role or secret ID";

async fn enable(h: &Harness) {
    let r = h
        .root("POST", "sys/auth/approle", Some(json!({"type": "approle"})))
        .await;
    assert_eq!(r.status, 204, "{}", r.text());
}

async fn make_role(h: &Harness, name: &str, body: Value) {
    let r = h
        .root("POST", &format!("auth/approle/role/{name}"), Some(body))
        .await;
    assert_eq!(r.status, 204, "role write: {}", r.text());
}

async fn role_id(h: &Harness, name: &str) -> String {
    let r = h
        .root("GET", &format!("auth/approle/role/{name}/role-id"), None)
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["data"]["role_id"].as_str().unwrap().to_owned()
}

/// Generates a secret ID; returns (secret_id, accessor).
async fn secret_id(h: &Harness, name: &str, body: Value) -> (String, String) {
    let r = h
        .root(
            "POST",
            &format!("auth/approle/role/{name}/secret-id"),
            Some(body),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let d = &r.json()["data"];
    (
        d["secret_id"].as_str().unwrap().to_owned(),
        d["secret_id_accessor"].as_str().unwrap().to_owned(),
    )
}

/// A login as hvac sends it, optionally from a given peer address.
async fn login_from(h: &Harness, role_id: &str, secret: Option<&str>, peer: Option<&str>) -> Resp {
    let body = json!({"role_id": role_id, "secret_id": secret});
    let mut b = Request::builder()
        .method("POST")
        .uri("/v1/auth/approle/login");
    if let Some(p) = peer {
        b = b.extension(Peer(p.parse().unwrap()));
    }
    h.raw(
        b.body(Body::from(serde_json::to_vec(&body).unwrap()))
            .unwrap(),
    )
    .await
}

async fn login(h: &Harness, role_id: &str, secret: Option<&str>) -> Resp {
    login_from(h, role_id, secret, Some("127.0.0.1:40000")).await
}

fn assert_invalid(r: &Resp) {
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(
        r.json(),
        json!({"errors": [INVALID]}),
        "no detail beyond the generic message"
    );
}

#[tokio::test]
async fn hvac_flow_login_grants_exactly_the_role_policies() {
    let h = Harness::new().await;
    enable(&h).await;
    let r = h
        .root(
            "PUT",
            "sys/policies/acl/app-read",
            Some(json!({"policy": "path \"secret/data/app/*\" { capabilities = [\"read\"] }"})),
        )
        .await;
    assert_eq!(r.status, 204);
    for (p, v) in [
        ("secret/data/app/db", "s3cr3t"),
        ("secret/data/other/x", "no"),
    ] {
        let r = h.root("POST", p, Some(json!({"data": {"v": v}}))).await;
        assert_eq!(r.status, 200);
    }
    // hvac create_or_update_approle: list fields comma-joined, unset options null.
    make_role(
        &h,
        "web",
        json!({
            "token_policies": "app-read,extra",
            "token_ttl": "1h",
            "token_max_ttl": "4h",
            "bind_secret_id": true,
            "secret_id_num_uses": null,
            "secret_id_ttl": null,
            "token_bound_cidrs": null,
            "token_type": "default",
        }),
    )
    .await;
    let role = h.root("GET", "auth/approle/role/web", None).await.json();
    assert_eq!(role["data"]["token_policies"], json!(["app-read", "extra"]));
    assert_eq!(role["data"]["policies"], json!(["app-read", "extra"]));
    assert_eq!(role["data"]["token_ttl"], 3600);
    assert_eq!(role["data"]["token_max_ttl"], 14400);
    assert_eq!(role["data"]["bind_secret_id"], true);
    assert_eq!(role["mount_type"], "approle");
    let list = h.root("LIST", "auth/approle/role", None).await;
    assert_eq!(list.json()["data"]["keys"], json!(["web"]));

    let rid = role_id(&h, "web").await;
    let r = h
        .root(
            "POST",
            "auth/approle/role/web/secret-id",
            Some(json!({"metadata": "{\"team\": \"payments\"}"})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let d = r.json()["data"].clone();
    assert_eq!(d["secret_id_ttl"], 0);
    assert_eq!(d["secret_id_num_uses"], 0);
    let sid = d["secret_id"].as_str().unwrap().to_owned();

    let r = login(&h, &rid, Some(&sid)).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let auth = r.json()["auth"].clone();
    assert_eq!(auth["metadata"]["role_name"], "web");
    assert_eq!(auth["metadata"]["team"], "payments");
    assert_eq!(auth["policies"], json!(["app-read", "default", "extra"]));
    assert_eq!(auth["lease_duration"], 3600);
    let token = auth["client_token"].as_str().unwrap().to_owned();

    let read = h
        .call("GET", "secret/data/app/db", Some(&token), None)
        .await;
    assert_eq!(read.status, 200, "{}", read.text());
    assert_eq!(read.json()["data"]["data"]["v"], "s3cr3t");
    for (m, p) in [
        ("GET", "secret/data/other/x"),
        ("POST", "secret/data/app/db"),
        ("LIST", "auth/approle/role"),
        ("GET", "auth/approle/role/web/role-id"),
    ] {
        let r = h.call(m, p, Some(&token), None).await;
        assert_eq!(r.status, 403, "{m} {p} must be denied: {}", r.text());
    }
    let me = h
        .call("GET", "auth/token/lookup-self", Some(&token), None)
        .await;
    assert_eq!(me.status, 200);
    assert_eq!(me.json()["data"]["meta"]["role_name"], "web");
}

#[tokio::test]
async fn wrong_credentials_all_answer_the_same_400() {
    let h = Harness::new().await;
    enable(&h).await;
    make_role(&h, "web", json!({"token_policies": "default"})).await;
    let rid = role_id(&h, "web").await;
    let (sid, _) = secret_id(&h, "web", json!({})).await;

    assert_invalid(&login(&h, &rid, Some("not-the-secret")).await);
    assert_invalid(&login(&h, "not-a-role-id", Some(&sid)).await);
    assert_invalid(&login(&h, &rid, None).await);
    assert_invalid(&login(&h, &rid, Some("")).await);
    // Two roles' halves do not combine.
    make_role(&h, "other", json!({})).await;
    let (other_sid, _) = secret_id(&h, "other", json!({})).await;
    assert_invalid(&login(&h, &rid, Some(&other_sid)).await);

    let r = h
        .call(
            "POST",
            "auth/approle/login",
            None,
            Some(json!({"secret_id": sid})),
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["errors"][0], "missing role_id");
    // The good pair still works: failures spent nothing.
    assert_eq!(login(&h, &rid, Some(&sid)).await.status, 200);
}

#[tokio::test]
async fn secret_id_num_uses_are_spent_then_refused() {
    let h = Harness::new().await;
    enable(&h).await;
    make_role(&h, "web", json!({"secret_id_num_uses": 2})).await;
    let rid = role_id(&h, "web").await;
    let (sid, accessor) = secret_id(&h, "web", json!({})).await;

    assert_eq!(login(&h, &rid, Some(&sid)).await.status, 200);
    let look = h
        .root(
            "POST",
            "auth/approle/role/web/secret-id/lookup",
            Some(json!({"secret_id": sid})),
        )
        .await;
    assert_eq!(look.status, 200, "{}", look.text());
    assert_eq!(look.json()["data"]["secret_id_num_uses"], 1);
    assert_eq!(look.json()["data"]["secret_id_accessor"], accessor.as_str());

    assert_eq!(login(&h, &rid, Some(&sid)).await.status, 200);
    assert_invalid(&login(&h, &rid, Some(&sid)).await);
    // Exhausted secret IDs are gone, not just refused.
    let look = h
        .root(
            "POST",
            "auth/approle/role/web/secret-id/lookup",
            Some(json!({"secret_id": sid})),
        )
        .await;
    assert_eq!(look.status, 204);
    assert_eq!(
        h.root("LIST", "auth/approle/role/web/secret-id", None)
            .await
            .status,
        404
    );
}

#[tokio::test]
async fn concurrent_logins_never_exceed_num_uses() {
    let h = std::sync::Arc::new(Harness::new().await);
    enable(&h).await;
    make_role(&h, "web", json!({"secret_id_num_uses": 3})).await;
    let rid = role_id(&h, "web").await;
    let (sid, _) = secret_id(&h, "web", json!({})).await;
    let mut tasks = vec![];
    for _ in 0..10 {
        let (h, rid, sid) = (h.clone(), rid.clone(), sid.clone());
        tasks.push(tokio::spawn(async move {
            login(&h, &rid, Some(&sid)).await.status
        }));
    }
    let mut ok = 0;
    for t in tasks {
        if t.await.unwrap() == 200 {
            ok += 1;
        }
    }
    assert_eq!(ok, 3, "exactly num_uses logins succeed");
}

#[tokio::test]
async fn secret_id_ttl_expiry_is_enforced() {
    let h = Harness::new().await;
    enable(&h).await;
    make_role(&h, "web", json!({"secret_id_ttl": "1h"})).await;
    let rid = role_id(&h, "web").await;
    // A request may shorten the role's TTL but never lengthen it.
    let r = h
        .root(
            "POST",
            "auth/approle/role/web/secret-id",
            Some(json!({"ttl": "2h"})),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
    let (long, _) = secret_id(&h, "web", json!({})).await;
    let r = h
        .root(
            "POST",
            "auth/approle/role/web/secret-id",
            Some(json!({"ttl": 1})),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["data"]["secret_id_ttl"], 1);
    let short = r.json()["data"]["secret_id"].as_str().unwrap().to_owned();

    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    assert_invalid(&login(&h, &rid, Some(&short)).await);
    let look = h
        .root(
            "POST",
            "auth/approle/role/web/secret-id/lookup",
            Some(json!({"secret_id": short})),
        )
        .await;
    assert_eq!(look.status, 204, "expired secret IDs read as absent");
    let r = login(&h, &rid, Some(&long)).await;
    assert_eq!(r.status, 200, "{}", r.text());
}

#[tokio::test]
async fn cidr_bound_secret_id_refused_from_wrong_address() {
    let h = Harness::new().await;
    enable(&h).await;
    make_role(&h, "web", json!({})).await;
    let rid = role_id(&h, "web").await;
    let (sid, _) = secret_id(
        &h,
        "web",
        json!({"cidr_list": "10.0.0.0/8,192.168.7.0/24", "num_uses": 1}),
    )
    .await;

    assert_invalid(&login_from(&h, &rid, Some(&sid), Some("192.168.1.5:1234")).await);
    assert_invalid(&login_from(&h, &rid, Some(&sid), Some("11.0.0.1:1234")).await);
    // No peer address (in-process caller): the binding cannot be checked, so it fails.
    assert_invalid(&login_from(&h, &rid, Some(&sid), None).await);
    // Refused attempts did not spend the single use.
    let r = login_from(&h, &rid, Some(&sid), Some("10.20.30.40:5555")).await;
    assert_eq!(r.status, 200, "{}", r.text());

    let look = h
        .root(
            "POST",
            "auth/approle/role/web/secret-id",
            Some(json!({"cidr_list": "not-a-cidr"})),
        )
        .await;
    assert_eq!(look.status, 400);
}

#[tokio::test]
async fn role_secret_id_bound_cidrs_without_secret() {
    let h = Harness::new().await;
    enable(&h).await;
    // A role must demand something.
    let r = h
        .root(
            "POST",
            "auth/approle/role/open",
            Some(json!({"bind_secret_id": false})),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
    make_role(
        &h,
        "host",
        json!({"bind_secret_id": false, "secret_id_bound_cidrs": ["127.0.0.1/32", "::1"]}),
    )
    .await;
    let rid = role_id(&h, "host").await;
    assert_eq!(
        login_from(&h, &rid, None, Some("127.0.0.1:1")).await.status,
        200
    );
    assert_eq!(
        login_from(&h, &rid, None, Some("[::1]:1")).await.status,
        200
    );
    assert_eq!(
        login_from(&h, &rid, None, Some("[::ffff:127.0.0.1]:1"))
            .await
            .status,
        200,
        "an IPv4-mapped peer is its IPv4 address"
    );
    assert_invalid(&login_from(&h, &rid, None, Some("127.0.0.2:1")).await);
    // Secret IDs of a CIDR-bound role must stay inside the role's blocks.
    make_role(&h, "net", json!({"secret_id_bound_cidrs": "10.0.0.0/8"})).await;
    let r = h
        .root(
            "POST",
            "auth/approle/role/net/secret-id",
            Some(json!({"cidr_list": "10.1.0.0/16"})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = h
        .root(
            "POST",
            "auth/approle/role/net/secret-id",
            Some(json!({"cidr_list": "0.0.0.0/0"})),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
}

#[tokio::test]
async fn destroy_and_lookup_by_accessor() {
    let h = Harness::new().await;
    enable(&h).await;
    make_role(&h, "web", json!({})).await;
    let rid = role_id(&h, "web").await;
    let (a_sid, a_acc) = secret_id(&h, "web", json!({"metadata": "{\"n\":\"a\"}"})).await;
    let (b_sid, b_acc) = secret_id(&h, "web", json!({})).await;

    let list = h
        .root("LIST", "auth/approle/role/web/secret-id", None)
        .await;
    assert_eq!(list.status, 200);
    let mut keys: Vec<String> =
        serde_json::from_value(list.json()["data"]["keys"].clone()).unwrap();
    keys.sort();
    let mut want = vec![a_acc.clone(), b_acc.clone()];
    want.sort();
    assert_eq!(keys, want);

    let look = h
        .root(
            "POST",
            "auth/approle/role/web/secret-id-accessor/lookup",
            Some(json!({"secret_id_accessor": a_acc})),
        )
        .await;
    assert_eq!(look.status, 200, "{}", look.text());
    let d = look.json()["data"].clone();
    assert_eq!(d["secret_id_accessor"], a_acc.as_str());
    assert_eq!(d["metadata"]["n"], "a");
    assert_eq!(d["expiration_time"], "0001-01-01T00:00:00Z");
    assert!(
        d.get("secret_id").is_none(),
        "lookups never return the secret"
    );

    let r = h
        .root(
            "POST",
            "auth/approle/role/web/secret-id-accessor/destroy",
            Some(json!({"secret_id_accessor": a_acc})),
        )
        .await;
    assert_eq!(r.status, 204);
    assert_invalid(&login(&h, &rid, Some(&a_sid)).await);
    let r = h
        .root(
            "POST",
            "auth/approle/role/web/secret-id-accessor/lookup",
            Some(json!({"secret_id_accessor": a_acc})),
        )
        .await;
    assert_eq!(r.status, 404);

    assert_eq!(login(&h, &rid, Some(&b_sid)).await.status, 200);
    let r = h
        .root(
            "POST",
            "auth/approle/role/web/secret-id/destroy",
            Some(json!({"secret_id": b_sid})),
        )
        .await;
    assert_eq!(r.status, 204);
    assert_invalid(&login(&h, &rid, Some(&b_sid)).await);
}

#[tokio::test]
async fn custom_secret_id_and_role_id_update() {
    let h = Harness::new().await;
    enable(&h).await;
    make_role(&h, "web", json!({})).await;
    make_role(&h, "other", json!({})).await;
    let old = role_id(&h, "web").await;
    let r = h
        .root(
            "POST",
            "auth/approle/role/web/role-id",
            Some(json!({"role_id": "web-fixed-id"})),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text());
    assert_eq!(role_id(&h, "web").await, "web-fixed-id");
    let taken = h
        .root(
            "POST",
            "auth/approle/role/other/role-id",
            Some(json!({"role_id": "web-fixed-id"})),
        )
        .await;
    assert_eq!(taken.status, 400, "role IDs are unique");

    let r = h
        .root(
            "POST",
            "auth/approle/role/web/custom-secret-id",
            Some(json!({"secret_id": "my-own-secret"})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["data"]["secret_id"], "my-own-secret");
    let dup = h
        .root(
            "POST",
            "auth/approle/role/web/custom-secret-id",
            Some(json!({"secret_id": "my-own-secret"})),
        )
        .await;
    assert_eq!(dup.status, 400);

    assert_eq!(
        login(&h, "web-fixed-id", Some("my-own-secret"))
            .await
            .status,
        200
    );
    assert_invalid(&login(&h, &old, Some("my-own-secret")).await);
}

#[tokio::test]
async fn deleting_a_role_kills_its_secret_ids() {
    let h = Harness::new().await;
    enable(&h).await;
    make_role(&h, "web", json!({})).await;
    let (sid, _) = secret_id(&h, "web", json!({})).await;
    let r = h.root("DELETE", "auth/approle/role/web", None).await;
    assert_eq!(r.status, 204);
    assert_eq!(
        h.root("GET", "auth/approle/role/web", None).await.status,
        404
    );
    make_role(&h, "web", json!({})).await;
    let rid = role_id(&h, "web").await;
    assert_invalid(&login(&h, &rid, Some(&sid)).await);
}

#[tokio::test]
async fn secrets_never_reach_storage_in_clear() {
    let h = Harness::new().await;
    enable(&h).await;
    make_role(&h, "web", json!({})).await;
    let rid = role_id(&h, "web").await;
    let (sid, _) = secret_id(&h, "web", json!({})).await;
    let storage = h.core.barrier.storage().clone();
    let keys = storage.list("").await.unwrap();
    assert!(
        keys.iter().any(|k| k.contains("/secret_id/")),
        "the secret ID entry is among the scanned keys"
    );
    for key in keys {
        assert!(!key.contains(&sid), "secret ID in a storage key");
        assert!(!key.contains(&rid), "role ID in a storage key");
        let raw = storage.get(&key).await.unwrap().unwrap_or_default();
        assert!(
            !raw.windows(sid.len()).any(|w| w == sid.as_bytes()),
            "secret ID in clear in {key}"
        );
        // Above the barrier: only the HMAC is kept.
        if let Ok(Some(plain)) = h.core.barrier.get(&key).await {
            assert!(
                !plain
                    .expose()
                    .windows(sid.len())
                    .any(|w| w == sid.as_bytes()),
                "secret ID stored (even encrypted) at {key}"
            );
        }
    }
}

#[tokio::test]
async fn role_validation() {
    let h = Harness::new().await;
    enable(&h).await;
    for (name, body) in [
        ("bad%20name", json!({})),
        ("-dash", json!({})),
        ("web", json!({"token_policies": "root"})),
        ("web", json!({"token_type": "batch"})),
        ("web", json!({"token_bound_cidrs": "10.0.0.0/8"})),
        ("web", json!({"secret_id_bound_cidrs": "10.0.0.0/33"})),
        ("web", json!({"token_ttl": "2h", "token_max_ttl": "1h"})),
        ("web", json!({"secret_id_num_uses": "many"})),
    ] {
        let r = h
            .root(
                "POST",
                &format!("auth/approle/role/{name}"),
                Some(body.clone()),
            )
            .await;
        assert_eq!(r.status, 400, "{name} {body}: {}", r.text());
    }
    // Names are case-insensitive, as in Vault.
    make_role(&h, "Web", json!({"token_policies": ["A", "b"]})).await;
    let r = h.root("GET", "auth/approle/role/web", None).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["data"]["token_policies"], json!(["a", "b"]));
    // An update keeps what it does not mention.
    make_role(&h, "web", json!({"token_ttl": 60})).await;
    let d = h.root("GET", "auth/approle/role/web", None).await.json();
    assert_eq!(d["data"]["token_policies"], json!(["a", "b"]));
    assert_eq!(d["data"]["token_ttl"], 60);
    assert_eq!(
        h.root("GET", "auth/approle/role/missing/role-id", None)
            .await
            .status,
        404
    );
    assert_eq!(
        h.root(
            "POST",
            "auth/approle/role/missing/secret-id",
            Some(json!({}))
        )
        .await
        .status,
        400
    );
    assert_eq!(h.root("GET", "auth/approle/nope", None).await.status, 404);
}

#[tokio::test]
async fn creating_a_role_needs_create_capability() {
    let h = Harness::new().await;
    enable(&h).await;
    make_role(&h, "existing", json!({})).await;
    let t = h
        .token_with(
            "approle-update",
            "path \"auth/approle/role/*\" { capabilities = [\"update\"] }",
        )
        .await;
    let r = h
        .call(
            "POST",
            "auth/approle/role/existing",
            Some(&t),
            Some(json!({"token_ttl": 5})),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text());
    let r = h
        .call(
            "POST",
            "auth/approle/role/brand-new",
            Some(&t),
            Some(json!({})),
        )
        .await;
    assert_eq!(r.status, 403, "creating needs `create`: {}", r.text());
}
