//! Table-driven authorization: for every route, a token holding exactly the capability the
//! route needs is let through, and a token holding every other capability is refused.

mod common;
use common::Harness;
use serde_json::json;

const ALL: &[&str] = &[
    "create", "read", "update", "patch", "delete", "list", "sudo",
];

struct Route {
    method: &'static str,
    path: &'static str,
    body: Option<serde_json::Value>,
    policy_path: &'static str,
    cap: &'static str,
    sudo: bool,
}

fn routes() -> Vec<Route> {
    let r = |method, path, body: Option<serde_json::Value>, policy_path, cap, sudo| Route {
        method,
        path,
        body,
        policy_path,
        cap,
        sudo,
    };
    let data = Some(json!({"data": {"k": "v"}}));
    let versions = Some(json!({"versions": [1]}));
    vec![
        r(
            "GET",
            "secret/data/app/x",
            None,
            "secret/data/app/x",
            "read",
            false,
        ),
        r(
            "POST",
            "secret/data/app/new",
            data.clone(),
            "secret/data/app/new",
            "create",
            false,
        ),
        r(
            "POST",
            "secret/data/app/x",
            data.clone(),
            "secret/data/app/x",
            "update",
            false,
        ),
        r(
            "PUT",
            "secret/data/app/x",
            data.clone(),
            "secret/data/app/x",
            "update",
            false,
        ),
        r(
            "PATCH",
            "secret/data/app/x",
            data.clone(),
            "secret/data/app/x",
            "patch",
            false,
        ),
        r(
            "DELETE",
            "secret/data/app/x",
            None,
            "secret/data/app/x",
            "delete",
            false,
        ),
        r(
            "POST",
            "secret/delete/app/x",
            versions.clone(),
            "secret/delete/app/x",
            "update",
            false,
        ),
        r(
            "POST",
            "secret/undelete/app/x",
            versions.clone(),
            "secret/undelete/app/x",
            "update",
            false,
        ),
        r(
            "POST",
            "secret/destroy/app/x",
            versions.clone(),
            "secret/destroy/app/x",
            "update",
            false,
        ),
        r(
            "LIST",
            "secret/metadata/app/",
            None,
            "secret/metadata/app/",
            "list",
            false,
        ),
        r(
            "GET",
            "secret/metadata/app?list=true",
            None,
            "secret/metadata/app/",
            "list",
            false,
        ),
        r(
            "GET",
            "secret/metadata/app/x",
            None,
            "secret/metadata/app/x",
            "read",
            false,
        ),
        r(
            "POST",
            "secret/metadata/app/x",
            Some(json!({"max_versions": 5})),
            "secret/metadata/app/x",
            "update",
            false,
        ),
        r(
            "POST",
            "secret/metadata/app/fresh",
            Some(json!({"max_versions": 5})),
            "secret/metadata/app/fresh",
            "create",
            false,
        ),
        r(
            "PATCH",
            "secret/metadata/app/x",
            Some(json!({"max_versions": 6})),
            "secret/metadata/app/x",
            "patch",
            false,
        ),
        r(
            "DELETE",
            "secret/metadata/app/y",
            None,
            "secret/metadata/app/y",
            "delete",
            false,
        ),
        r(
            "GET",
            "secret/subkeys/app/x",
            None,
            "secret/subkeys/app/x",
            "read",
            false,
        ),
        r("GET", "secret/config", None, "secret/config", "read", false),
        r(
            "POST",
            "secret/config",
            Some(json!({"max_versions": 10})),
            "secret/config",
            "update",
            false,
        ),
        r("GET", "sys/mounts", None, "sys/mounts", "read", false),
        r(
            "POST",
            "sys/mounts/newkv",
            Some(json!({"type": "kv"})),
            "sys/mounts/newkv",
            "update",
            false,
        ),
        r(
            "DELETE",
            "sys/mounts/newkv2",
            None,
            "sys/mounts/newkv2",
            "delete",
            false,
        ),
        r(
            "GET",
            "sys/policies/acl/default",
            None,
            "sys/policies/acl/default",
            "read",
            false,
        ),
        r(
            "PUT",
            "sys/policies/acl/p2",
            Some(json!({"policy": "path \"x\" { capabilities = [\"read\"] }"})),
            "sys/policies/acl/p2",
            "update",
            false,
        ),
        r(
            "DELETE",
            "sys/policies/acl/p3",
            None,
            "sys/policies/acl/p3",
            "delete",
            false,
        ),
        r(
            "LIST",
            "sys/policies/acl",
            None,
            "sys/policies/acl",
            "list",
            false,
        ),
        r("GET", "sys/policy", None, "sys/policy", "read", false),
        r(
            "GET",
            "sys/policy/default",
            None,
            "sys/policy/default",
            "read",
            false,
        ),
        r(
            "PUT",
            "sys/policy/p4",
            Some(json!({"policy": "path \"x\" { capabilities = [\"read\"] }"})),
            "sys/policy/p4",
            "update",
            false,
        ),
        r("GET", "sys/audit", None, "sys/audit", "read", true),
        r(
            "DELETE",
            "sys/audit/none",
            None,
            "sys/audit/none",
            "delete",
            true,
        ),
        r("PUT", "sys/rotate", None, "sys/rotate", "update", true),
        r(
            "GET",
            "sys/key-status",
            None,
            "sys/key-status",
            "read",
            false,
        ),
        r("GET", "sys/auth", None, "sys/auth", "read", false),
        r(
            "POST",
            "sys/capabilities-self",
            Some(json!({"paths": ["x"]})),
            "sys/capabilities-self",
            "update",
            false,
        ),
        r(
            "POST",
            "auth/token/create",
            Some(json!({"ttl": "1m"})),
            "auth/token/create",
            "update",
            false,
        ),
        r(
            "POST",
            "auth/token/lookup",
            Some(json!({"token": "nope"})),
            "auth/token/lookup",
            "update",
            false,
        ),
        r(
            "GET",
            "auth/token/lookup-self",
            None,
            "auth/token/lookup-self",
            "read",
            false,
        ),
        r(
            "POST",
            "auth/token/lookup-accessor",
            Some(json!({"accessor": "nope"})),
            "auth/token/lookup-accessor",
            "update",
            false,
        ),
        r(
            "POST",
            "auth/token/revoke-accessor",
            Some(json!({"accessor": "nope"})),
            "auth/token/revoke-accessor",
            "update",
            false,
        ),
        r(
            "LIST",
            "auth/token/accessors",
            None,
            "auth/token/accessors",
            "list",
            true,
        ),
    ]
}

async fn setup(h: &Harness) {
    // Keys the create routes make must be absent again, or the next try would be an update.
    for k in ["app/new", "app/fresh"] {
        h.root("DELETE", &format!("secret/metadata/{k}"), None)
            .await;
    }
    for k in ["app/x", "app/y"] {
        let r = h
            .root(
                "POST",
                &format!("secret/data/{k}"),
                Some(json!({"data": {"k": "v"}})),
            )
            .await;
        assert_eq!(r.status, 200);
    }
}

#[tokio::test]
async fn every_route_allows_exactly_its_capability() {
    let h = Harness::new().await;
    setup(&h).await;
    for (i, route) in routes().iter().enumerate() {
        // Allowed: exactly the needed capability (+ sudo on root-protected paths).
        let mut caps = vec![route.cap];
        if route.sudo {
            caps.push("sudo");
        }
        let policy = format!(
            "path \"{}\" {{ capabilities = {} }}",
            route.policy_path,
            serde_json::to_string(&caps).unwrap()
        );
        let t = h.token_with(&format!("allow{i}"), &policy).await;
        let r = h
            .call(route.method, route.path, Some(&t), route.body.clone())
            .await;
        assert_ne!(
            r.status,
            403,
            "{} {} with {:?} was denied: {}",
            route.method,
            route.path,
            caps,
            r.text()
        );
        assert!(
            r.status < 500,
            "{} {}: {}",
            route.method,
            route.path,
            r.text()
        );
        setup(&h).await;

        // Denied: every other capability on the same path.
        let others: Vec<&str> = ALL.iter().copied().filter(|c| *c != route.cap).collect();
        let policy = format!(
            "path \"{}\" {{ capabilities = {} }}",
            route.policy_path,
            serde_json::to_string(&others).unwrap()
        );
        let t = h.token_with(&format!("deny{i}"), &policy).await;
        setup(&h).await;
        let r = h
            .call(route.method, route.path, Some(&t), route.body.clone())
            .await;
        assert_eq!(
            r.status,
            403,
            "{} {} allowed without {}: {}",
            route.method,
            route.path,
            route.cap,
            r.text()
        );

        // Root-protected: the capability without sudo is not enough.
        if route.sudo {
            let policy = format!(
                "path \"{}\" {{ capabilities = [\"{}\"] }}",
                route.policy_path, route.cap
            );
            let t = h.token_with(&format!("nosudo{i}"), &policy).await;
            let r = h
                .call(route.method, route.path, Some(&t), route.body.clone())
                .await;
            assert_eq!(
                r.status, 403,
                "{} {} allowed without sudo",
                route.method, route.path
            );
        }

        // An explicit deny beats a grant from another policy.
        let grant = format!(
            "path \"{}\" {{ capabilities = {} }}",
            route.policy_path,
            serde_json::to_string(&ALL).unwrap()
        );
        let deny = format!(
            "path \"{}\" {{ capabilities = [\"deny\"] }}",
            route.policy_path
        );
        h.root(
            "PUT",
            &format!("sys/policies/acl/g{i}"),
            Some(json!({"policy": grant})),
        )
        .await;
        h.root(
            "PUT",
            &format!("sys/policies/acl/d{i}"),
            Some(json!({"policy": deny})),
        )
        .await;
        let t = h.root("POST", "auth/token/create", Some(json!({"policies": [format!("g{i}"), format!("d{i}")], "no_default_policy": true}))).await.json()["auth"]["client_token"].as_str().unwrap().to_owned();
        let r = h
            .call(route.method, route.path, Some(&t), route.body.clone())
            .await;
        assert_eq!(
            r.status, 403,
            "{} {}: deny must win",
            route.method, route.path
        );
    }
}

#[tokio::test]
async fn app_token_confined_to_its_path() {
    let h = Harness::new().await;
    setup(&h).await;
    h.root(
        "POST",
        "secret/data/other/z",
        Some(json!({"data": {"k": "v"}})),
    )
    .await;
    let t = h
        .token_with(
            "app",
            r#"path "secret/data/app/*" { capabilities = ["read", "create", "update"] }"#,
        )
        .await;
    assert_eq!(
        h.call("GET", "secret/data/app/x", Some(&t), None)
            .await
            .status,
        200
    );
    assert_eq!(
        h.call("GET", "secret/data/other/z", Some(&t), None)
            .await
            .status,
        403
    );
    assert_eq!(
        h.call("GET", "sys/mounts", Some(&t), None).await.status,
        403
    );
    assert_eq!(
        h.call(
            "PUT",
            "sys/policies/acl/app",
            Some(&t),
            Some(json!({"policy": "path \"*\" { capabilities = [\"sudo\"] }"}))
        )
        .await
        .status,
        403
    );
}
