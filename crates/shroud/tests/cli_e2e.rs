//! End-to-end tests of the `shroud` CLI against a real `shroud server --dev` on a loopback port:
//! the README tour (secrets, policies, tokens, operator, audit) driven through the binary, as a
//! user would, with exit codes and stdout/stderr checked.

mod common;

use std::collections::BTreeMap;

use common::*;
use serde_json::Value;

#[test]
fn secret_tour_round_trips_text_and_binary_and_never_leaks_values() {
    let s = Server::start();

    // Text from stdin, with labels.
    let text = "hello wörld\nsecond line\n".as_bytes();
    let r = s
        .cli(
            &[
                "secret",
                "create",
                "app/db-password",
                "-",
                "--label",
                "env=prod",
            ],
            text,
        )
        .ok();
    assert_eq!(r.text(), "app/db-password\n");

    // Binary: NUL bytes and invalid UTF-8 must come back byte for byte.
    let binary: Vec<u8> = vec![0x00, 0xff, 0xfe, b'k', 0x00, 0xc3, 0x28, 0x80, b'\n', 0x00];
    s.cli(&["secret", "create", "tls/key"], &binary).ok();
    assert_eq!(
        s.cli(&["secret", "get", "tls/key"], b"").ok().stdout,
        binary
    );
    assert_eq!(
        s.cli(&["secret", "get", "app/db-password"], b"")
            .ok()
            .stdout,
        text
    );

    // Creating an existing name fails with a hint to use update.
    let r = s
        .cli(&["secret", "create", "app/db-password"], b"other")
        .fails_with(1);
    assert!(r.stderr.contains("already exists"), "{}", r.stderr);
    assert!(
        r.stderr.contains("hint: use 'shroud secret update"),
        "{}",
        r.stderr
    );

    // ls: both secrets (the tree is listed recursively), no values.
    let r = s.cli(&["secret", "ls"], b"").ok();
    let out = r.text();
    assert!(out.starts_with("NAME"), "{out}");
    assert!(
        out.contains("app/db-password") && out.contains("tls/key"),
        "{out}"
    );
    assert!(!out.contains("hello"), "{out}");
    let r = s.cli(&["secret", "ls", "--format", "json"], b"").ok();
    let entries: Value = serde_json::from_slice(&r.stdout).unwrap();
    let names: Vec<&str> = entries
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["Name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["app/db-password", "tls/key"]);

    // inspect: metadata and labels, never the value.
    let r = s.cli(&["secret", "inspect", "app/db-password"], b"").ok();
    let out = r.text();
    assert!(!out.contains("hello") && !out.contains("wörld"), "{out}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v[0]["Name"], "app/db-password");
    assert_eq!(v[0]["Version"], 1);
    assert_eq!(v[0]["Labels"]["env"], "prod");
    assert_eq!(v[0]["Versions"].as_array().unwrap().len(), 1);

    // update, history, rollback.
    s.cli(&["secret", "update", "app/db-password"], b"v2").ok();
    assert_eq!(
        s.cli(&["secret", "get", "app/db-password"], b"")
            .ok()
            .stdout,
        b"v2"
    );
    assert_eq!(
        s.cli(&["secret", "get", "app/db-password", "--version", "1"], b"")
            .ok()
            .stdout,
        text
    );
    s.cli(
        &["secret", "rollback", "app/db-password", "--version", "1"],
        b"",
    )
    .ok();
    assert_eq!(
        s.cli(&["secret", "get", "app/db-password"], b"")
            .ok()
            .stdout,
        text
    );
    let r = s.cli(&["secret", "history", "app/db-password"], b"").ok();
    let out = r.text();
    assert_eq!(out.lines().count(), 4, "header + 3 versions:\n{out}");
    assert!(out.contains("3 (current)"), "{out}");
    let r = s
        .cli(
            &["secret", "history", "app/db-password", "--format", "json"],
            b"",
        )
        .ok();
    let versions: Value = serde_json::from_slice(&r.stdout).unwrap();
    assert_eq!(versions.as_array().unwrap().len(), 3);

    // generate: stored, but the value is not on stdout.
    let r = s
        .cli(&["secret", "generate", "api-key", "--length", "40"], b"")
        .ok();
    assert_eq!(r.text(), "api-key\n");
    let value = s.cli(&["secret", "get", "api-key"], b"").ok().stdout;
    assert_eq!(value.len(), 40);
    assert!(value.iter().all(u8::is_ascii_alphanumeric));
    assert!(!r.text().contains(std::str::from_utf8(&value).unwrap()));
    assert!(!r.stderr.contains(std::str::from_utf8(&value).unwrap()));
    let r = s
        .cli(
            &[
                "secret",
                "generate",
                "pin",
                "--length",
                "6",
                "--charset",
                "numeric",
                "--print",
            ],
            b"",
        )
        .ok();
    let printed = r.text();
    assert_eq!(printed.trim_end().len(), 6);
    assert!(printed.trim_end().bytes().all(|b| b.is_ascii_digit()));
    assert_eq!(
        s.cli(&["secret", "get", "pin"], b"").ok().stdout,
        printed.trim_end().as_bytes()
    );

    // rm: gone afterwards; a missing name is an error.
    let r = s.cli(&["secret", "rm", "tls/key", "pin"], b"").ok();
    assert_eq!(r.text(), "tls/key\npin\n");
    let r = s.cli(&["secret", "get", "tls/key"], b"").fails_with(1);
    assert!(r.stderr.contains("not found"), "{}", r.stderr);
    s.cli(&["secret", "rm", "tls/key"], b"").fails_with(1);

    // The server's own output never shows a secret value.
    assert!(!s.output().contains("wörld"));
}

#[test]
fn policy_and_token_limit_what_a_token_can_read() {
    let s = Server::start();
    let policy = "path \"secret/data/app/*\" {\n  capabilities = [\"read\"]\n}\n";
    s.cli(&["policy", "write", "app-read", "-"], policy.as_bytes())
        .ok();
    let r = s.cli(&["policy", "read", "app-read"], b"").ok();
    assert!(r.text().contains("secret/data/app/*"), "{}", r.text());
    let r = s.cli(&["policy", "ls"], b"").ok();
    assert!(r.text().lines().any(|l| l == "app-read"), "{}", r.text());

    s.cli(&["secret", "create", "app/config"], b"app-visible")
        .ok();
    s.cli(&["secret", "create", "billing/key"], b"not-for-app")
        .ok();

    let r = s
        .cli(
            &[
                "token", "create", "--policy", "app-read", "--ttl", "1h", "--format", "json",
            ],
            b"",
        )
        .ok();
    let v: Value = serde_json::from_slice(&r.stdout).unwrap();
    let child = v["auth"]["client_token"].as_str().unwrap().to_owned();
    assert!(!child.is_empty());
    assert_eq!(v["auth"]["lease_duration"], 3600);
    assert!(v["auth"]["policies"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p == "app-read"));

    // Inside its policy: allowed.
    assert_eq!(
        s.cli_as(&child, &["secret", "get", "app/config"], b"")
            .ok()
            .stdout,
        b"app-visible"
    );
    // Outside: permission denied, exit code 1, a hint, and nothing on stdout.
    let r = s
        .cli_as(&child, &["secret", "get", "billing/key"], b"")
        .fails_with(1);
    assert!(r.stderr.contains("permission denied"), "{}", r.stderr);
    assert!(r.stderr.contains("hint:"), "{}", r.stderr);
    assert!(r.stdout.is_empty());
    assert!(!r.stderr.contains(&child), "the token leaked into an error");

    // lookup of itself shows the policy; the token is not printed.
    let r = s.cli_as(&child, &["token", "lookup"], b"").ok();
    assert!(r.text().contains("app-read"), "{}", r.text());
    assert!(!r.text().contains(&child));
    // The root token can look the child up from stdin, then revoke it.
    s.cli(&["token", "lookup", "--stdin"], child.as_bytes())
        .ok();
    s.cli(&["token", "revoke", "--stdin"], child.as_bytes())
        .ok();
    s.cli_as(&child, &["secret", "get", "app/config"], b"")
        .fails_with(1);

    s.cli(&["policy", "rm", "app-read"], b"").ok();
    s.cli(&["policy", "read", "app-read"], b"").fails_with(1);
}

#[test]
fn operator_status_exit_code_follows_the_seal() {
    let s = Server::start();
    let r = s.cli(&["operator", "status"], b"").ok();
    assert!(r.text().contains("Sealed"), "{}", r.text());
    let r = s.cli(&["operator", "status", "--format", "json"], b"").ok();
    let v: Value = serde_json::from_slice(&r.stdout).unwrap();
    assert_eq!(v["sealed"], false);
    assert_eq!(v["initialized"], true);

    s.cli(&["operator", "rotate"], b"").ok();
    s.cli(&["operator", "seal"], b"").ok();
    let r = s.cli(&["operator", "status"], b"").fails_with(2);
    assert!(r.text().contains("true"), "{}", r.text());
    let r = s.cli(&["secret", "ls"], b"").fails_with(1);
    assert!(
        r.stderr
            .contains("hint: unseal it with 'shroud operator unseal'"),
        "{}",
        r.stderr
    );
}

#[test]
fn audit_verify_accepts_the_servers_log_and_detects_a_removed_line() {
    let s = Server::start();
    let log = s.dir.path().join("audit.log");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let client = shroud_client::Client::new(shroud_client::ClientConfig {
            addr: s.addr.clone(),
            token: Some(shroud_core::SecretString::from(s.root.as_str())),
            ..Default::default()
        })
        .unwrap();
        let mut options = BTreeMap::new();
        options.insert("file_path".to_owned(), log.display().to_string());
        client
            .audit_enable("file", "file", "", &options)
            .await
            .unwrap();
    });
    s.cli(&["secret", "create", "audited"], b"audit-canary-value")
        .ok();
    s.cli(&["secret", "get", "audited"], b"").ok();
    s.cli(&["secret", "ls"], b"").ok();

    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        !text.contains("audit-canary-value"),
        "value in the audit log"
    );
    assert!(!text.contains(&s.root), "root token in the audit log");
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines.len() >= 4, "{text}");

    let r = run_cli(
        &["audit", "verify", log.to_str().unwrap()],
        b"",
        &BTreeMap::new(),
        &s.home(),
    )
    .ok();
    assert!(r.text().starts_with("OK: "), "{}", r.text());
    assert!(r.text().contains("hash chain intact"), "{}", r.text());

    let tampered = s.dir.path().join("tampered.log");
    let mut kept: Vec<&str> = lines.clone();
    kept.remove(1);
    std::fs::write(&tampered, kept.join("\n") + "\n").unwrap();
    let r = run_cli(
        &["audit", "verify", tampered.to_str().unwrap()],
        b"",
        &BTreeMap::new(),
        &s.home(),
    )
    .fails_with(1);
    assert!(r.text().starts_with("BROKEN at line "), "{}", r.text());
}

#[test]
fn login_stores_a_verified_token_with_mode_0600() {
    use std::os::unix::fs::PermissionsExt;
    let s = Server::start();
    let home = s.home();
    let mut env = BTreeMap::new();
    env.insert("SHROUD_ADDR", s.addr.clone());
    // A wrong token is refused and nothing is stored.
    let r = run_cli(&["login"], b"hvs.not-a-real-token\n", &env, &home).fails_with(1);
    assert!(r.stderr.contains("rejected"), "{}", r.stderr);
    assert!(!home.join(".shroud-token").exists());

    let input = format!("{}\n", s.root);
    run_cli(&["login"], input.as_bytes(), &env, &home).ok();
    let path = home.join(".shroud-token");
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    assert_eq!(std::fs::read_to_string(&path).unwrap().trim(), s.root);
    // Later commands use the stored token.
    let r = run_cli(&["token", "lookup", "--format", "json"], b"", &env, &home).ok();
    let v: Value = serde_json::from_slice(&r.stdout).unwrap();
    assert!(v["policies"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p == "root"));
}

#[test]
fn unreachable_server_is_exit_1_with_a_hint() {
    let home = tempfile::tempdir().unwrap();
    let mut env = BTreeMap::new();
    env.insert("SHROUD_ADDR", format!("http://127.0.0.1:{}", free_port()));
    env.insert("SHROUD_TOKEN", "hvs.unused-token-canary".to_owned());
    let r = run_cli(&["secret", "ls"], b"", &env, home.path()).fails_with(1);
    assert!(r.stderr.starts_with("error: "), "{}", r.stderr);
    assert!(
        r.stderr.contains("hint: is the server running?"),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains("unused-token-canary"));
}

#[test]
fn server_without_dev_or_config_is_a_usage_error() {
    let home = tempfile::tempdir().unwrap();
    let r = run_cli(&["server"], b"", &BTreeMap::new(), home.path()).fails_with(2);
    assert!(
        r.stderr.contains("configuration file is required"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("hint: "), "{}", r.stderr);
}

#[test]
fn tls_server_is_trusted_by_pin_or_ca_and_initialised_through_the_cli() {
    let s = Server::start_tls_configured();
    let home = s.home();
    let mut env = BTreeMap::new();
    env.insert("SHROUD_ADDR", s.addr.clone());

    // No trust configured: refused before any request, with a hint naming the fix.
    let r = run_cli(&["operator", "status"], b"", &env, &home).fails_with(1);
    assert!(r.stderr.contains("SHROUD_TLS_FINGERPRINT"), "{}", r.stderr);
    // A wrong pin: the handshake fails.
    env.insert(
        "SHROUD_TLS_FINGERPRINT",
        format!("sha256:{}", "00".repeat(32)),
    );
    let r = run_cli(&["operator", "status"], b"", &env, &home).fails_with(1);
    assert!(r.stderr.contains("TLS handshake"), "{}", r.stderr);

    // The printed pin: an uninitialised server is sealed, so status exits 2.
    env.insert("SHROUD_TLS_FINGERPRINT", s.fingerprint());
    run_cli(&["operator", "status"], b"", &env, &home).fails_with(2);
    let r = run_cli(
        &[
            "operator",
            "init",
            "--key-shares",
            "3",
            "--key-threshold",
            "2",
            "--format",
            "json",
        ],
        b"",
        &env,
        &home,
    )
    .ok();
    assert!(r.stderr.contains("warning"), "{}", r.stderr);
    let init: Value = serde_json::from_slice(&r.stdout).unwrap();
    let keys: Vec<&str> = init["unseal_keys_b64"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap())
        .collect();
    assert_eq!(keys.len(), 3);
    let root = init["root_token"].as_str().unwrap().to_owned();

    // One share is not enough; piping a second one unseals.
    run_cli(
        &["operator", "unseal"],
        format!("{}\n", keys[2]).as_bytes(),
        &env,
        &home,
    )
    .ok();
    run_cli(&["operator", "status"], b"", &env, &home).fails_with(2);
    run_cli(
        &["operator", "unseal"],
        format!("{}\n", keys[0]).as_bytes(),
        &env,
        &home,
    )
    .ok();
    run_cli(&["operator", "status"], b"", &env, &home).ok();

    // The CA file (the server's self-signed certificate) works instead of the pin.
    env.remove("SHROUD_TLS_FINGERPRINT");
    let cert = s.dir.path().join("data").join("tls").join("cert.pem");
    env.insert("SHROUD_CACERT", cert.display().to_string());
    env.insert("SHROUD_TOKEN", root);
    run_cli(&["secret", "create", "over-tls"], b"tls-value", &env, &home).ok();
    let r = run_cli(&["secret", "get", "over-tls"], b"", &env, &home).ok();
    assert_eq!(r.stdout, b"tls-value");
}
