//! The file audit device: secret safety, line shape, the hash chain, and fail-closed writes.

use serde_json::{json, Map, Value};
use shroud_audit::{
    verify_file, AuditError, AuthInfo, Device, Entry, EntryType, FileDevice, ResponseAuth,
    VerifyReport,
};
use shroud_core::SecretBytes;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;

const SALT: &[u8; 32] = b"SALTSALTSALTSALTSALTSALTSALTSALT";

fn device(path: &Path) -> FileDevice {
    FileDevice::open(path, SecretBytes::from_slice(SALT)).unwrap()
}

fn simple(i: usize) -> (String, Value) {
    (
        format!("req-{i}"),
        json!({"value": format!("secret-{i}"), "i": i}),
    )
}

fn log_n(dev: &FileDevice, from: usize, n: usize) {
    for i in from..from + n {
        let (id, data) = simple(i);
        dev.log(&Entry {
            kind: if i % 2 == 0 {
                EntryType::Request
            } else {
                EntryType::Response
            },
            request_id: &id,
            operation: "update",
            path: "secret/data/app",
            client_token: Some("hvs.SECRETTOKEN"),
            request_data: data.as_object(),
            ..Entry::default()
        })
        .unwrap();
    }
}

fn lines(path: &Path) -> Vec<String> {
    fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn full_entry_never_contains_a_secret() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.log");
    let dev = device(&path);
    let data = json!({"password": "hunter2", "nested": {"k": ["v1"]}, "n": 5});
    let resp = json!({"data": {"password": "hunter2"}, "metadata": {"version": 3}});
    let policies = vec!["default".to_owned(), "app".to_owned()];
    let mut meta = Map::new();
    meta.insert("team".into(), json!("meta-secret-value"));
    let auth = AuthInfo {
        display_name: "token-app",
        policies: &policies,
        token_type: "service",
        metadata: Some(&meta),
        token_ttl: 3600,
    };
    let request = Entry {
        kind: EntryType::Request,
        request_id: "7d1c2f2e-0000-4000-8000-000000000001",
        operation: "update",
        path: "secret/data/app/db",
        mount_type: Some("kv"),
        remote_address: Some("127.0.0.1"),
        client_token: Some("hvs.SECRETTOKEN"),
        client_token_accessor: Some("accessor-SECRET"),
        auth: Some(auth),
        request_data: data.as_object(),
        ..Entry::default()
    };
    dev.log(&request).unwrap();
    dev.log(&Entry {
        kind: EntryType::Response,
        response_data: Some(&resp),
        response_auth: Some(ResponseAuth {
            client_token: "hvs.MINTEDTOKEN",
            accessor: "minted-ACCESSOR",
            policies: &policies,
            metadata: Some(&meta),
            lease_duration: 60,
            renewable: true,
            token_type: "service",
            orphan: false,
        }),
        status: Some(200),
        ..request
    })
    .unwrap();

    let text = fs::read_to_string(&path).unwrap();
    for secret in [
        "hvs.SECRETTOKEN",
        "accessor-SECRET",
        "hunter2",
        "\"v1\"",
        "meta-secret-value",
        "hvs.MINTEDTOKEN",
        "minted-ACCESSOR",
    ] {
        assert!(!text.contains(secret), "{secret} leaked into the audit log");
    }
    assert!(text.contains("hmac-sha256:"));

    let [req, res] = lines(&path).try_into().unwrap();
    let req: Value = serde_json::from_str(&req).unwrap();
    let res: Value = serde_json::from_str(&res).unwrap();
    // An operator can find a known value: hash() is exactly what the log holds.
    assert_eq!(
        req["request"]["data"]["password"],
        json!(dev.hash("hunter2"))
    );
    assert_eq!(
        req["request"]["data"]["nested"]["k"][0],
        json!(dev.hash("v1"))
    );
    assert_eq!(req["request"]["data"]["n"], json!(5), "numbers are kept");
    assert_eq!(
        req["request"]["client_token"],
        json!(dev.hash("hvs.SECRETTOKEN"))
    );
    assert_eq!(
        req["request"]["client_token_accessor"],
        json!(dev.hash("accessor-SECRET"))
    );
    assert_eq!(
        req["auth"]["client_token"],
        json!(dev.hash("hvs.SECRETTOKEN"))
    );
    assert_eq!(req["auth"]["accessor"], json!(dev.hash("accessor-SECRET")));
    assert_eq!(
        req["auth"]["metadata"]["team"],
        json!(dev.hash("meta-secret-value"))
    );
    assert_eq!(req["auth"]["policies"], json!(["default", "app"]));
    assert_eq!(req["auth"]["token_ttl"], json!(3600));
    assert_eq!(
        res["response"]["auth"]["client_token"],
        json!(dev.hash("hvs.MINTEDTOKEN"))
    );
    assert_eq!(
        res["response"]["auth"]["accessor"],
        json!(dev.hash("minted-ACCESSOR"))
    );
    assert_eq!(
        res["response"]["auth"]["policies"],
        json!(["default", "app"])
    );
    assert_eq!(res["response"]["data"]["metadata"]["version"], json!(3));
    assert_eq!(
        res["response"]["data"]["data"]["password"],
        json!(dev.hash("hunter2"))
    );
}

#[test]
fn lines_have_vaults_shape() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.log");
    let dev = device(&path);
    let base = Entry {
        request_id: "id-1",
        operation: "read",
        path: "sys/health",
        ..Entry::default()
    };
    dev.log(&base).unwrap();
    dev.log(&Entry {
        kind: EntryType::Response,
        status: Some(403),
        error: Some("permission denied"),
        ..base
    })
    .unwrap();
    let [req, res] = lines(&path).try_into().unwrap();
    assert!(req.starts_with("{\"time\":\""), "{req}");
    let req: Value = serde_json::from_str(&req).unwrap();
    let res: Value = serde_json::from_str(&res).unwrap();
    let time = req["time"].as_str().unwrap();
    assert!(time.ends_with('Z'), "{time}");
    time::OffsetDateTime::parse(time, &time::format_description::well_known::Rfc3339).unwrap();
    assert_eq!(req["type"], "request");
    assert_eq!(req["request"]["id"], "id-1");
    assert_eq!(req["request"]["operation"], "read");
    assert_eq!(req["request"]["path"], "sys/health");
    assert_eq!(req["request"]["namespace"]["id"], "root");
    assert_eq!(req["error"], "");
    assert!(req.get("response").is_none());
    assert!(
        req.get("auth").is_none(),
        "unauthenticated request has no auth"
    );
    assert_eq!(res["type"], "response");
    assert_eq!(res["response"]["status"], 403);
    assert_eq!(res["error"], "permission denied");
    let empty = format!("sha256:{}", hex::encode(sha2_empty()));
    assert_eq!(
        req["prev_hash"],
        json!(empty),
        "first line links to the empty string"
    );
}

fn sha2_empty() -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(b"").into()
}

#[test]
fn chain_verifies_over_100_lines() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.log");
    log_n(&device(&path), 0, 100);
    assert_eq!(verify_file(&path).unwrap(), VerifyReport::Ok { lines: 100 });
}

#[test]
fn editing_any_byte_of_line_37_breaks_the_chain_at_37_or_38() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.log");
    log_n(&device(&path), 0, 100);
    let original = fs::read(&path).unwrap();
    let starts: Vec<usize> = std::iter::once(0)
        .chain(
            original
                .iter()
                .enumerate()
                .filter(|(_, &b)| b == b'\n')
                .map(|(i, _)| i + 1),
        )
        .collect();
    let (from, to) = (starts[36], starts[37]); // line 37, including its newline
    let tampered_path = dir.path().join("tampered.log");
    for pos in from..to {
        for replacement in [b'x', b'0', b'\n', b'"'] {
            if original[pos] == replacement {
                continue;
            }
            let mut bytes = original.clone();
            bytes[pos] = replacement;
            fs::write(&tampered_path, &bytes).unwrap();
            match verify_file(&tampered_path).unwrap() {
                VerifyReport::Broken { line: 37 | 38, .. } => {}
                other => panic!(
                    "byte {} of line 37 set to {replacement:?}: {other:?}",
                    pos - from
                ),
            }
        }
    }
}

#[test]
fn deleting_a_line_breaks_the_chain() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.log");
    log_n(&device(&path), 0, 50);
    let all = lines(&path);
    for removed in [0, 1, 24, 48] {
        let kept: Vec<&str> = all
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != removed)
            .map(|(_, l)| l.as_str())
            .collect();
        let p = dir.path().join(format!("minus-{removed}.log"));
        fs::write(&p, kept.join("\n") + "\n").unwrap();
        match verify_file(&p).unwrap() {
            VerifyReport::Broken { line, .. } => assert_eq!(line, removed as u64 + 1),
            other => panic!("removing line {}: {other:?}", removed + 1),
        }
    }
}

#[test]
fn swapping_two_lines_breaks_the_chain() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.log");
    log_n(&device(&path), 0, 10);
    let mut all = lines(&path);
    all.swap(4, 5);
    fs::write(&path, all.join("\n") + "\n").unwrap();
    assert!(matches!(
        verify_file(&path).unwrap(),
        VerifyReport::Broken { line: 5, .. }
    ));
}

#[test]
fn reopening_an_existing_file_continues_the_chain() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.log");
    log_n(&device(&path), 0, 10);
    log_n(&device(&path), 10, 10);
    assert_eq!(verify_file(&path).unwrap(), VerifyReport::Ok { lines: 20 });
}

#[test]
fn reopen_after_rotation_starts_a_new_chain() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.log");
    let dev = device(&path);
    log_n(&dev, 0, 5);
    let rotated = dir.path().join("audit.log.1");
    fs::rename(&path, &rotated).unwrap();
    dev.reopen().unwrap();
    log_n(&dev, 5, 3);
    assert_eq!(
        verify_file(&rotated).unwrap(),
        VerifyReport::Ok { lines: 5 }
    );
    assert_eq!(verify_file(&path).unwrap(), VerifyReport::Ok { lines: 3 });
}

#[test]
fn truncated_final_line_is_reported_and_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.log");
    log_n(&device(&path), 0, 3);
    let mut bytes = fs::read(&path).unwrap();
    bytes.truncate(bytes.len() - 10);
    fs::write(&path, &bytes).unwrap();
    assert!(matches!(
        verify_file(&path).unwrap(),
        VerifyReport::Broken { line: 3, .. }
    ));
    let err = FileDevice::open(&path, SecretBytes::from_slice(SALT)).unwrap_err();
    assert!(matches!(err, AuditError::Corrupt { .. }), "{err:?}");
}

#[test]
fn garbage_lines_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("x.log");
    fs::write(&p, "not json\n").unwrap();
    assert!(matches!(
        verify_file(&p).unwrap(),
        VerifyReport::Broken { line: 1, .. }
    ));
    fs::write(&p, "{\"a\":1}\n").unwrap();
    match verify_file(&p).unwrap() {
        VerifyReport::Broken { line: 1, reason } => {
            assert!(reason.contains("prev_hash"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
    fs::write(&p, "").unwrap();
    assert_eq!(verify_file(&p).unwrap(), VerifyReport::Ok { lines: 0 });
    assert!(matches!(
        verify_file(&dir.path().join("missing.log")),
        Err(AuditError::Io { .. })
    ));
}

#[test]
fn unwritable_file_fails_closed() {
    let full = Path::new("/dev/full");
    if !full.exists() {
        return;
    }
    let dev = FileDevice::open(full, SecretBytes::from_slice(SALT)).unwrap();
    let err = dev
        .log(&Entry {
            request_id: "x",
            operation: "read",
            path: "secret/data/a",
            ..Entry::default()
        })
        .unwrap_err();
    assert!(matches!(err, AuditError::Io { op: "write", .. }), "{err:?}");
}

#[test]
fn missing_directory_is_an_error() {
    let err = FileDevice::open(
        Path::new("/nonexistent-shroud-dir/audit.log"),
        SecretBytes::from_slice(SALT),
    )
    .unwrap_err();
    assert!(matches!(err, AuditError::Io { op: "open", .. }), "{err:?}");
}

#[test]
fn short_salt_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let err =
        FileDevice::open(&dir.path().join("a.log"), SecretBytes::from_slice(b"short")).unwrap_err();
    assert!(matches!(err, AuditError::SaltTooShort { .. }));
}

#[test]
fn file_is_created_0600_and_wide_modes_are_narrowed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.log");
    let _dev = device(&path);
    assert_eq!(
        fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let wide = dir.path().join("wide.log");
    fs::write(&wide, "").unwrap();
    fs::set_permissions(&wide, fs::Permissions::from_mode(0o644)).unwrap();
    let _dev = device(&wide);
    assert_eq!(
        fs::metadata(&wide).unwrap().permissions().mode() & 0o777,
        0o600
    );
}

#[test]
fn debug_does_not_show_the_salt() {
    let dir = tempfile::tempdir().unwrap();
    let dev = device(&dir.path().join("audit.log"));
    let dbg = format!("{dev:?} {dev:#?}");
    assert!(!dbg.contains("SALT") && !dbg.contains("53414c54"), "{dbg}");
    assert!(dbg.contains("audit.log"));
}

#[test]
fn concurrent_writers_keep_lines_whole_and_chained() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.log");
    let dev: Arc<dyn Device> = Arc::new(device(&path));
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let dev = Arc::clone(&dev);
            std::thread::spawn(move || {
                let big = json!({"blob": "x".repeat(10_000 * (t % 2))});
                for i in 0..200 {
                    let id = format!("{t}-{i}");
                    dev.log(&Entry {
                        request_id: &id,
                        operation: "update",
                        path: "secret/data/x",
                        request_data: big.as_object(),
                        ..Entry::default()
                    })
                    .unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(
        verify_file(&path).unwrap(),
        VerifyReport::Ok { lines: 1600 }
    );
    assert_eq!(dev.kind(), "file");
}

#[test]
fn too_deep_data_is_refused_not_logged() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.log");
    let dev = device(&path);
    let mut v = json!(1);
    for _ in 0..200 {
        v = json!({ "a": v });
    }
    let err = dev
        .log(&Entry {
            request_data: v.as_object(),
            ..Entry::default()
        })
        .unwrap_err();
    assert!(matches!(err, AuditError::TooDeep { .. }));
    assert_eq!(fs::metadata(&path).unwrap().len(), 0);
}
