//! Audit: HMAC'd values, hash chain, fail closed.

mod common;
use common::Harness;
use serde_json::json;

#[tokio::test]
async fn audit_log_hides_values_and_chains() {
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
    let listed = h.root("GET", "sys/audit", None).await.json();
    assert_eq!(listed["data"]["file/"]["type"], "file");
    h.root(
        "POST",
        "secret/data/db",
        Some(json!({"data": {"password": "VeryS3cretValue"}})),
    )
    .await;
    let read = h.root("GET", "secret/data/db", None).await;
    assert_eq!(read.json()["data"]["data"]["password"], "VeryS3cretValue");
    let tok = h
        .root(
            "POST",
            "auth/token/create",
            Some(json!({"policies": ["x"]})),
        )
        .await
        .json()["auth"]["client_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.lines().count() >= 6,
        "request and response lines: {text}"
    );
    for secret in ["VeryS3cretValue", "root-test-token", tok.as_str()] {
        assert!(!text.contains(secret), "audit log leaks {secret}");
    }
    assert!(text.contains("hmac-sha256:"));
    let hash = h
        .root(
            "POST",
            "sys/audit-hash/file",
            Some(json!({"input": "VeryS3cretValue"})),
        )
        .await
        .json()["data"]["hash"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(text.contains(&hash), "audit-hash finds the logged value");
    match shroud_audit::verify_file(&log).unwrap() {
        shroud_audit::VerifyReport::Ok { lines } => assert!(lines >= 6),
        other => panic!("chain broken: {other:?}"),
    }
}

#[tokio::test]
async fn failing_audit_device_fails_closed() {
    let h = Harness::new().await;
    h.root(
        "POST",
        "secret/data/db",
        Some(json!({"data": {"password": "VeryS3cretValue"}})),
    )
    .await;
    assert_eq!(
        h.root("POST", "transit/keys/k", Some(json!({})))
            .await
            .status,
        200
    );
    let r = h
        .root(
            "PUT",
            "sys/audit/full",
            Some(json!({"type": "file", "options": {"file_path": "/dev/full"}})),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text());
    let read = h.root("GET", "secret/data/db", None).await;
    assert_eq!(read.status, 500);
    assert!(
        !read.text().contains("VeryS3cretValue"),
        "no secret without an audit record"
    );
    let w = h
        .root("POST", "secret/data/db2", Some(json!({"data": {"a": "b"}})))
        .await;
    assert_eq!(w.status, 500);
    // transit encrypt with an existing key is audited with its response: no ciphertext
    // leaves unaudited either
    let e = h
        .root(
            "POST",
            "transit/encrypt/k",
            Some(json!({"plaintext": "aGVsbG8="})),
        )
        .await;
    assert_eq!(e.status, 500);
    assert!(!e.text().contains("vault:v1:"), "{}", e.text());
}

#[tokio::test]
async fn pure_operations_log_request_and_response_together() {
    let h = Harness::new().await;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.log");
    h.root("POST", "transit/keys/k", Some(json!({}))).await;
    let body = json!({"type": "file", "options": {"file_path": log.to_str().unwrap()}});
    assert_eq!(
        h.root("PUT", "sys/audit/file", Some(body)).await.status,
        204
    );
    let before = std::fs::read_to_string(&log).unwrap().lines().count();
    let e = h
        .root(
            "POST",
            "transit/encrypt/k",
            Some(json!({"plaintext": "aGVsbG8="})),
        )
        .await;
    assert_eq!(e.status, 200);
    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = text.lines().skip(before).collect();
    assert_eq!(lines.len(), 2, "one request and one response record");
    assert!(lines[0].contains("\"type\":\"request\"") && lines[0].contains("transit/encrypt/k"));
    assert!(lines[1].contains("\"type\":\"response\""));
    assert!(!text.contains("aGVsbG8="), "the plaintext is HMAC'd");
    match shroud_audit::verify_file(&log).unwrap() {
        shroud_audit::VerifyReport::Ok { .. } => {}
        other => panic!("chain broken: {other:?}"),
    }
}

#[tokio::test]
async fn one_working_device_is_enough() {
    let h = Harness::new().await;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("a.log");
    h.root(
        "PUT",
        "sys/audit/full",
        Some(json!({"type": "file", "options": {"file_path": "/dev/full"}})),
    )
    .await;
    // enabling a second device is itself a request that must be audited: /dev/full fails,
    // so the enable is refused until the broken device is removed
    let r = h
        .root(
            "PUT",
            "sys/audit/good",
            Some(json!({"type": "file", "options": {"file_path": log.to_str().unwrap()}})),
        )
        .await;
    assert_eq!(r.status, 500);
    // The way out: disabling a device is allowed to a sudo holder even when no device can
    // record it (Vault's top operational complaint is being locked out here).
    assert_eq!(h.root("DELETE", "sys/audit/full", None).await.status, 204);
    assert_eq!(
        h.root(
            "PUT",
            "sys/audit/good",
            Some(json!({"type": "file", "options": {"file_path": log.to_str().unwrap()}}))
        )
        .await
        .status,
        204
    );
    assert_eq!(h.root("GET", "secret/metadata/", None).await.status, 404);
    assert!(std::fs::read_to_string(&log)
        .unwrap()
        .contains("secret/metadata/"));
}

#[tokio::test]
async fn bad_audit_options_are_400() {
    let h = Harness::new().await;
    assert_eq!(
        h.root("PUT", "sys/audit/x", Some(json!({"type": "socket"})))
            .await
            .status,
        400
    );
    assert_eq!(
        h.root("PUT", "sys/audit/x", Some(json!({"type": "file"})))
            .await
            .status,
        400
    );
    assert_eq!(
        h.root(
            "PUT",
            "sys/audit/x",
            Some(json!({"type": "file", "options": {"file_path": "relative.log"}}))
        )
        .await
        .status,
        400
    );
    assert_eq!(
        h.root(
            "PUT",
            "sys/audit/x",
            Some(json!({"type": "file", "options": {"file_path": "/nonexistent/dir/a.log"}}))
        )
        .await
        .status,
        400
    );
}
