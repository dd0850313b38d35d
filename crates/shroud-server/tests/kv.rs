//! KV v2 over the in-process router: shapes, versions, CAS, deletes, listing.

mod common;
use common::Harness;
use serde_json::json;

#[tokio::test]
async fn write_read_envelope_and_content_type() {
    let h = Harness::new().await;
    let w = h
        .root(
            "POST",
            "secret/data/app/db",
            Some(json!({"data": {"password": "s3cr3t"}})),
        )
        .await;
    assert_eq!(w.status, 200, "{}", w.text());
    assert_eq!(w.content_type.as_deref(), Some("application/json"));
    let j = w.json();
    assert_eq!(j["data"]["version"], 1);
    assert_eq!(j["data"]["deletion_time"], "");
    assert_eq!(j["data"]["destroyed"], false);
    for k in [
        "request_id",
        "lease_id",
        "renewable",
        "lease_duration",
        "wrap_info",
        "warnings",
        "auth",
    ] {
        assert!(j.get(k).is_some(), "envelope lacks {k}");
    }
    let r = h.root("GET", "secret/data/app/db", None).await;
    assert_eq!(r.status, 200);
    let j = r.json();
    assert_eq!(j["data"]["data"]["password"], "s3cr3t");
    assert_eq!(j["data"]["metadata"]["version"], 1);
    assert!(j["data"]["metadata"]["created_time"]
        .as_str()
        .unwrap()
        .ends_with('Z'));
}

#[tokio::test]
async fn versions_and_version_query() {
    let h = Harness::new().await;
    for i in 1..=3 {
        h.root("POST", "secret/data/k", Some(json!({"data": {"v": i}})))
            .await;
    }
    assert_eq!(
        h.root("GET", "secret/data/k", None).await.json()["data"]["data"]["v"],
        3
    );
    assert_eq!(
        h.root("GET", "secret/data/k?version=1", None).await.json()["data"]["data"]["v"],
        1
    );
    assert_eq!(
        h.root("GET", "secret/data/k?version=9", None).await.status,
        404
    );
    let m = h.root("GET", "secret/metadata/k", None).await.json();
    assert_eq!(m["data"]["current_version"], 3);
    assert_eq!(m["data"]["oldest_version"], 1);
    assert_eq!(m["data"]["versions"].as_object().unwrap().len(), 3);
    assert_eq!(m["data"]["delete_version_after"], "0s");
}

#[tokio::test]
async fn cas_and_cas_required() {
    let h = Harness::new().await;
    let ok = h
        .root(
            "POST",
            "secret/data/c",
            Some(json!({"options": {"cas": 0}, "data": {"a": "1"}})),
        )
        .await;
    assert_eq!(ok.status, 200);
    let again = h
        .root(
            "POST",
            "secret/data/c",
            Some(json!({"options": {"cas": 0}, "data": {"a": "2"}})),
        )
        .await;
    assert_eq!(again.status, 400);
    assert!(again
        .text()
        .contains("check-and-set parameter did not match the current version"));
    let good = h
        .root(
            "POST",
            "secret/data/c",
            Some(json!({"options": {"cas": 1}, "data": {"a": "2"}})),
        )
        .await;
    assert_eq!(good.status, 200);
    // cas_required on the key
    assert_eq!(
        h.root(
            "POST",
            "secret/metadata/c",
            Some(json!({"cas_required": true}))
        )
        .await
        .status,
        204
    );
    let missing = h
        .root("POST", "secret/data/c", Some(json!({"data": {"a": "3"}})))
        .await;
    assert_eq!(missing.status, 400);
    assert!(missing
        .text()
        .contains("check-and-set parameter required for this call"));
    // cas_required on the mount
    assert_eq!(
        h.root("POST", "secret/config", Some(json!({"cas_required": true})))
            .await
            .status,
        204
    );
    assert_eq!(
        h.root("GET", "secret/config", None).await.json()["data"]["cas_required"],
        true
    );
    let other = h
        .root(
            "POST",
            "secret/data/other",
            Some(json!({"data": {"a": "3"}})),
        )
        .await;
    assert_eq!(other.status, 400);
}

#[tokio::test]
async fn max_versions_prunes_oldest() {
    let h = Harness::new().await;
    h.root(
        "POST",
        "secret/metadata/mv",
        Some(json!({"max_versions": 2})),
    )
    .await;
    for i in 1..=4 {
        h.root("POST", "secret/data/mv", Some(json!({"data": {"v": i}})))
            .await;
    }
    let m = h.root("GET", "secret/metadata/mv", None).await.json();
    let versions: Vec<&String> = m["data"]["versions"].as_object().unwrap().keys().collect();
    assert_eq!(versions, vec!["3", "4"]);
    assert_eq!(m["data"]["oldest_version"], 3);
    assert_eq!(
        h.root("GET", "secret/data/mv?version=1", None).await.status,
        404
    );
}

#[tokio::test]
async fn delete_undelete_destroy() {
    let h = Harness::new().await;
    h.root("POST", "secret/data/d", Some(json!({"data": {"v": 1}})))
        .await;
    h.root("POST", "secret/data/d", Some(json!({"data": {"v": 2}})))
        .await;
    assert_eq!(h.root("DELETE", "secret/data/d", None).await.status, 204);
    let r = h.root("GET", "secret/data/d", None).await;
    assert_eq!(r.status, 404, "deleted version reads 404");
    let j = r.json();
    assert_eq!(j["data"]["data"], serde_json::Value::Null);
    assert_ne!(
        j["data"]["metadata"]["deletion_time"], "",
        "404 keeps metadata: {j}"
    );
    assert_eq!(
        h.root("POST", "secret/undelete/d", Some(json!({"versions": [2]})))
            .await
            .status,
        204
    );
    assert_eq!(
        h.root("GET", "secret/data/d", None).await.json()["data"]["data"]["v"],
        2
    );
    assert_eq!(
        h.root("POST", "secret/delete/d", Some(json!({"versions": [1]})))
            .await
            .status,
        204
    );
    assert_eq!(
        h.root("GET", "secret/data/d?version=1", None).await.status,
        404
    );
    assert_eq!(
        h.root("POST", "secret/destroy/d", Some(json!({"versions": [2]})))
            .await
            .status,
        204
    );
    let r = h.root("GET", "secret/data/d", None).await;
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["data"]["metadata"]["destroyed"], true);
    // destroyed cannot be undeleted
    h.root("POST", "secret/undelete/d", Some(json!({"versions": [2]})))
        .await;
    assert_eq!(h.root("GET", "secret/data/d", None).await.status, 404);
    assert_eq!(
        h.root("POST", "secret/delete/d", Some(json!({})))
            .await
            .status,
        400,
        "no versions"
    );
    assert_eq!(
        h.root("DELETE", "secret/metadata/d", None).await.status,
        204
    );
    assert_eq!(h.root("GET", "secret/metadata/d", None).await.status, 404);
    let r = h.root("GET", "secret/data/d", None).await;
    assert_eq!(r.status, 404);
    assert_eq!(r.json(), json!({"errors": []}));
}

#[tokio::test]
async fn list_with_verb_and_query() {
    let h = Harness::new().await;
    assert_eq!(
        h.root("LIST", "secret/metadata/", None).await.status,
        404,
        "empty list is 404"
    );
    for k in ["app/a", "app/b/c", "top"] {
        h.root(
            "POST",
            &format!("secret/data/{k}"),
            Some(json!({"data": {"x": "y"}})),
        )
        .await;
    }
    let l = h.root("LIST", "secret/metadata/", None).await.json();
    assert_eq!(l["data"]["keys"], json!(["app/", "top"]));
    let l = h
        .root("GET", "secret/metadata/app?list=true", None)
        .await
        .json();
    assert_eq!(l["data"]["keys"], json!(["a", "b/"]));
    let l = h
        .root("GET", "secret/metadata/app/?list=True", None)
        .await
        .json();
    assert_eq!(l["data"]["keys"], json!(["a", "b/"]));
}

#[tokio::test]
async fn patch_needs_merge_patch_content_type() {
    let h = Harness::new().await;
    h.root(
        "POST",
        "secret/data/p",
        Some(json!({"data": {"a": "1", "b": "2"}})),
    )
    .await;
    let r = h
        .root(
            "PATCH",
            "secret/data/p",
            Some(json!({"data": {"b": null, "c": "3"}})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["data"]["version"], 2);
    assert_eq!(
        h.root("GET", "secret/data/p", None).await.json()["data"]["data"],
        json!({"a": "1", "c": "3"})
    );
    let req = axum::http::Request::builder()
        .method("PATCH")
        .uri("/v1/secret/data/p")
        .header("X-Vault-Token", h.root.clone())
        .header("Content-Type", "application/json")
        .body(axum::body::Body::from("{\"data\":{}}"))
        .unwrap();
    assert_eq!(h.raw(req).await.status, 415);
    assert_eq!(
        h.root(
            "PATCH",
            "secret/data/absent",
            Some(json!({"data": {"a": 1}}))
        )
        .await
        .status,
        404
    );
}

#[tokio::test]
async fn custom_metadata_round_trip_and_limits() {
    let h = Harness::new().await;
    h.root("POST", "secret/data/cm", Some(json!({"data": {"a": "1"}})))
        .await;
    let r = h
        .root(
            "POST",
            "secret/metadata/cm",
            Some(json!({"custom_metadata": {"team": "db"}})),
        )
        .await;
    assert_eq!(r.status, 204);
    assert_eq!(
        h.root("GET", "secret/metadata/cm", None).await.json()["data"]["custom_metadata"],
        json!({"team": "db"})
    );
    assert_eq!(
        h.root("GET", "secret/data/cm", None).await.json()["data"]["metadata"]["custom_metadata"],
        json!({"team": "db"})
    );
    let big: serde_json::Map<String, serde_json::Value> =
        (0..65).map(|i| (format!("k{i}"), json!("v"))).collect();
    assert_eq!(
        h.root(
            "POST",
            "secret/metadata/cm",
            Some(json!({"custom_metadata": big}))
        )
        .await
        .status,
        400
    );
    let long = "x".repeat(513);
    assert_eq!(
        h.root(
            "POST",
            "secret/metadata/cm",
            Some(json!({"custom_metadata": {"k": long}}))
        )
        .await
        .status,
        400
    );
}

#[tokio::test]
async fn write_errors_are_400() {
    let h = Harness::new().await;
    let r = h
        .root("POST", "secret/data/x", Some(json!({"nodata": 1})))
        .await;
    assert_eq!(r.status, 400);
    assert!(r.text().contains("no data provided"));
    assert_eq!(
        h.root("POST", "secret/data/x", Some(json!({"data": "str"})))
            .await
            .status,
        400
    );
    assert_eq!(
        h.root(
            "POST",
            "secret/data/x",
            Some(json!({"data": {}, "options": {"cas": "abc"}}))
        )
        .await
        .status,
        400
    );
}

#[tokio::test]
async fn keys_with_spaces_and_percent_escapes() {
    let h = Harness::new().await;
    let r = h
        .root(
            "POST",
            "secret/data/with%20space/k%25",
            Some(json!({"data": {"a": "b"}})),
        )
        .await;
    assert_eq!(r.status, 200);
    let l = h
        .root("LIST", "secret/metadata/with%20space", None)
        .await
        .json();
    assert_eq!(l["data"]["keys"], json!(["k%"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn read_cache_never_serves_a_stale_version() {
    let h = std::sync::Arc::new(Harness::new().await);
    h.root("POST", "secret/data/race", Some(json!({"data": {"n": 0}})))
        .await;
    let mut tasks = Vec::new();
    for reader in 0..4 {
        let h = h.clone();
        tasks.push(tokio::spawn(async move {
            let mut last = 0;
            for _ in 0..150 {
                let r = h.root("GET", "secret/data/race", None).await;
                let n = r.json()["data"]["data"]["n"]
                    .as_u64()
                    .unwrap_or_else(|| panic!("reader: {} {}", r.status, r.text()));
                assert!(n >= last, "reader {reader} went back from {last} to {n}");
                last = n;
            }
        }));
    }
    for i in 1..=60u64 {
        let w = h
            .root("POST", "secret/data/race", Some(json!({"data": {"n": i}})))
            .await;
        assert_eq!(w.status, 200);
        // read-your-write: the cache must not hide a completed write
        let n = h.root("GET", "secret/data/race", None).await.json()["data"]["data"]["n"].clone();
        assert_eq!(n, json!(i));
    }
    for t in tasks {
        t.await.unwrap();
    }
}

/// Reads of a live version are served from a cached, pre-rendered reply. Every change that
/// shows in a read (new version, soft delete, undelete, destroy, custom metadata, deletion
/// time) must show in the very next read, and in the one after it (served from the cache).
#[tokio::test]
async fn cached_read_replies_follow_every_change() {
    let h = Harness::new().await;
    let read_twice = |path: &'static str| {
        let h = &h;
        async move {
            let a = h.root("GET", path, None).await;
            let b = h.root("GET", path, None).await;
            assert_eq!(a.status, b.status, "{} / {}", a.text(), b.text());
            let (mut ja, mut jb) = (a.json(), b.json());
            assert_ne!(ja["request_id"], jb["request_id"]);
            ja["request_id"] = json!(null);
            jb["request_id"] = json!(null);
            assert_eq!(ja, jb, "a cached reply differs from a fresh one");
            (a.status, ja)
        }
    };
    h.root("POST", "secret/data/c", Some(json!({"data": {"v": 1}})))
        .await;
    let (s, j) = read_twice("secret/data/c").await;
    assert_eq!((s, j["data"]["data"]["v"].clone()), (200, json!(1)));
    h.root("POST", "secret/data/c", Some(json!({"data": {"v": 2}})))
        .await;
    let (_, j) = read_twice("secret/data/c").await;
    assert_eq!(j["data"]["data"]["v"], 2);
    assert_eq!(j["data"]["metadata"]["version"], 2);

    let m = h
        .root(
            "POST",
            "secret/metadata/c",
            Some(json!({"custom_metadata": {"owner": "ops"}})),
        )
        .await;
    assert_eq!(m.status, 204, "{}", m.text());
    let (_, j) = read_twice("secret/data/c").await;
    assert_eq!(j["data"]["metadata"]["custom_metadata"]["owner"], "ops");

    let d = h.root("DELETE", "secret/data/c", None).await;
    assert_eq!(d.status, 204);
    let (s, j) = read_twice("secret/data/c").await;
    assert_eq!(s, 404);
    assert_eq!(j["data"]["data"], json!(null));
    assert_ne!(j["data"]["metadata"]["deletion_time"], "");

    let u = h
        .root("POST", "secret/undelete/c", Some(json!({"versions": [2]})))
        .await;
    assert_eq!(u.status, 204);
    let (s, j) = read_twice("secret/data/c").await;
    assert_eq!((s, j["data"]["data"]["v"].clone()), (200, json!(2)));
    assert_eq!(j["data"]["metadata"]["deletion_time"], "");

    // An older version asked for explicitly is cached on its own.
    let (_, j) = read_twice("secret/data/c?version=1").await;
    assert_eq!(j["data"]["data"]["v"], 1);

    let x = h
        .root("POST", "secret/destroy/c", Some(json!({"versions": [2]})))
        .await;
    assert_eq!(x.status, 204);
    let (s, j) = read_twice("secret/data/c").await;
    assert_eq!(s, 404);
    assert_eq!(j["data"]["metadata"]["destroyed"], true);

    // A version with a deletion time in the future is live now and deleted later, with no
    // write in between: it must never be answered from a cache.
    h.root(
        "POST",
        "secret/metadata/t",
        Some(json!({"delete_version_after": "1s"})),
    )
    .await;
    h.root("POST", "secret/data/t", Some(json!({"data": {"v": 1}})))
        .await;
    let (s, _) = read_twice("secret/data/t").await;
    assert_eq!(s, 200);
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    let (s, j) = read_twice("secret/data/t").await;
    assert_eq!(s, 404, "{j}");
}
