//! End-to-end tests of the transit, auth-method, AppRole, login and response-wrapping commands:
//! the real `shroud` binary against a real `shroud server --dev` on a loopback port.

mod common;

use common::*;
use serde_json::{json, Value};
use shroud_client::Method;

/// `transit/` is mounted at init; check it is there.
fn mount_transit(s: &Server) {
    let r = s.api(Method::Get, "sys/mounts", None);
    let body = r.body.expect("sys/mounts has a body");
    assert_eq!(body["data"]["transit/"]["type"], "transit");
}

fn line(r: &Run) -> String {
    let t = r.text();
    assert_eq!(t.lines().count(), 1, "expected one line: {t:?}");
    t.trim_end().to_owned()
}

/// Every byte value, NULs and invalid UTF-8 included.
fn binary_payload() -> Vec<u8> {
    let mut b: Vec<u8> = (0..=255u8).collect();
    b.extend_from_slice(&[0x00, 0xc3, 0x28, 0xff, b'\n', 0x00]);
    b
}

#[test]
fn transit_encrypt_decrypt_round_trips_binary_bytes() {
    let s = Server::start();
    mount_transit(&s);
    s.cli(&["transit", "keys", "create", "orders"], b"").ok();
    let keys = s
        .cli(&["transit", "keys", "ls", "--format", "json"], b"")
        .ok();
    let keys: Value = serde_json::from_slice(&keys.stdout).unwrap();
    assert_eq!(keys, json!(["orders"]));

    let plain = binary_payload();
    let r = s.cli(&["transit", "encrypt", "orders"], &plain).ok();
    let ct = line(&r);
    assert!(ct.starts_with("vault:v1:"), "{ct}");
    let out = s
        .cli(
            &["transit", "decrypt", "orders"],
            format!("{ct}\n").as_bytes(),
        )
        .ok();
    assert_eq!(out.stdout, plain, "decrypt must give back the exact bytes");

    // From files, and with `-` for stdin.
    let dir = tempfile::tempdir().unwrap();
    let pfile = dir.path().join("plain.bin");
    std::fs::write(&pfile, &plain).unwrap();
    let ct2 = line(
        &s.cli(
            &["transit", "encrypt", "orders", pfile.to_str().unwrap()],
            b"",
        )
        .ok(),
    );
    assert_ne!(ct, ct2, "a fresh nonce per encryption");
    let cfile = dir.path().join("ct.txt");
    std::fs::write(&cfile, format!("{ct2}\n")).unwrap();
    let out = s
        .cli(
            &["transit", "decrypt", "orders", cfile.to_str().unwrap()],
            b"",
        )
        .ok();
    assert_eq!(out.stdout, plain);
    let out = s
        .cli(&["transit", "decrypt", "orders", "-"], ct2.as_bytes())
        .ok();
    assert_eq!(out.stdout, plain);

    // The empty plaintext round-trips too.
    let ct_empty = line(&s.cli(&["transit", "encrypt", "orders"], b"").ok());
    let out = s
        .cli(&["transit", "decrypt", "orders"], ct_empty.as_bytes())
        .ok();
    assert!(out.stdout.is_empty());

    // A tampered ciphertext fails, and says nothing about the plaintext.
    let mut tampered = ct.clone();
    let last = tampered.pop().unwrap();
    tampered.push(if last == 'A' { 'B' } else { 'A' });
    let r = s
        .cli(&["transit", "decrypt", "orders"], tampered.as_bytes())
        .fails_with(1);
    assert!(r.stdout.is_empty());
    assert!(
        r.stderr.starts_with("error: decrypting with key orders"),
        "{}",
        r.stderr
    );

    // Two ciphertexts on stdin are refused rather than half-decrypted.
    let r = s
        .cli(
            &["transit", "decrypt", "orders"],
            format!("{ct}\n{ct2}\n").as_bytes(),
        )
        .fails_with(1);
    assert!(r.stderr.contains("expected one ciphertext"), "{}", r.stderr);

    // Key settings.
    let r = s
        .cli(
            &["transit", "keys", "read", "orders", "--format", "json"],
            b"",
        )
        .ok();
    let k: Value = serde_json::from_slice(&r.stdout).unwrap();
    assert_eq!(k["name"], "orders");
    assert_eq!(k["type"], "aes256-gcm96");
    assert_eq!(k["latest_version"], 1);
    let r = s.cli(&["transit", "keys", "read", "orders"], b"").ok();
    assert!(r.text().contains("aes256-gcm96"), "{}", r.text());
    s.cli(&["transit", "keys", "read", "nope"], b"")
        .fails_with(1);
}

#[test]
fn transit_derived_key_needs_the_same_context() {
    let s = Server::start();
    mount_transit(&s);
    s.cli(
        &[
            "transit",
            "keys",
            "create",
            "tenants",
            "--type",
            "chacha20-poly1305",
            "--derived",
        ],
        b"",
    )
    .ok();
    let ctx7 = "dGVuYW50LTc="; // "tenant-7"
    let ctx8 = "dGVuYW50LTg="; // "tenant-8"
    let plain = binary_payload();
    s.cli(&["transit", "encrypt", "tenants"], &plain)
        .fails_with(1);
    let ct = line(
        &s.cli(
            &["transit", "encrypt", "tenants", "--context", ctx7],
            &plain,
        )
        .ok(),
    );
    let out = s
        .cli(
            &["transit", "decrypt", "tenants", "--context", ctx7],
            ct.as_bytes(),
        )
        .ok();
    assert_eq!(out.stdout, plain);
    let r = s
        .cli(
            &["transit", "decrypt", "tenants", "--context", ctx8],
            ct.as_bytes(),
        )
        .fails_with(1);
    assert!(r.stdout.is_empty());
}

#[test]
fn transit_rotate_then_rewrap_moves_every_line_to_the_new_version() {
    let s = Server::start();
    mount_transit(&s);
    s.cli(&["transit", "keys", "create", "orders"], b"").ok();
    let plains: Vec<Vec<u8>> = (0..5u8).map(|i| vec![i, 0xff, b'x', i]).collect();
    let cts: Vec<String> = plains
        .iter()
        .map(|p| line(&s.cli(&["transit", "encrypt", "orders"], p).ok()))
        .collect();
    assert!(cts.iter().all(|c| c.starts_with("vault:v1:")));

    let r = s.cli(&["transit", "keys", "rotate", "orders"], b"").ok();
    assert!(r.stderr.contains("version 2"), "{}", r.stderr);

    // A blank line in the middle is passed through; batches of 2 make three requests, so
    // progress goes to stderr and stdout stays one ciphertext per line.
    let input = format!(
        "{}\n{}\n\n{}\n{}\n{}\n",
        cts[0], cts[1], cts[2], cts[3], cts[4]
    );
    let r = s
        .cli(
            &["transit", "rewrap", "orders", "--batch-size", "2"],
            input.as_bytes(),
        )
        .ok();
    let out: Vec<String> = r.text().lines().map(str::to_owned).collect();
    assert_eq!(out.len(), 6, "{:?}", out);
    assert_eq!(out[2], "", "blank line kept in place");
    let rewrapped: Vec<&String> = out.iter().filter(|l| !l.is_empty()).collect();
    assert!(
        rewrapped.iter().all(|c| c.starts_with("vault:v2:")),
        "{out:?}"
    );
    assert!(r.stderr.contains("rewrapped 5 ciphertexts"), "{}", r.stderr);
    for (ct, plain) in rewrapped.iter().zip(&plains) {
        let d = s.cli(&["transit", "decrypt", "orders"], ct.as_bytes()).ok();
        assert_eq!(&d.stdout, plain, "order is preserved");
    }

    // One batch: no progress chatter.
    let r = s
        .cli(&["transit", "rewrap", "orders"], input.as_bytes())
        .ok();
    assert_eq!(r.text().lines().count(), 6);
    assert!(!r.stderr.contains("rewrapped"), "{}", r.stderr);

    // A bad line fails the command and names the line.
    let bad = format!("{}\nvault:v1:not-a-ciphertext\n", cts[0]);
    let r = s
        .cli(&["transit", "rewrap", "orders"], bad.as_bytes())
        .fails_with(1);
    assert!(r.stderr.contains("line 2"), "{}", r.stderr);
    assert!(r.stdout.is_empty(), "nothing of a failed batch is written");

    // After the rewrap, old ciphertext can be retired.
    s.cli(
        &[
            "transit",
            "keys",
            "config",
            "orders",
            "--min-decryption-version",
            "2",
        ],
        b"",
    )
    .ok();
    s.cli(&["transit", "decrypt", "orders"], cts[0].as_bytes())
        .fails_with(1);
    let d = s
        .cli(&["transit", "decrypt", "orders"], rewrapped[0].as_bytes())
        .ok();
    assert_eq!(d.stdout, plains[0]);

    // Deletion must be allowed first.
    let r = s
        .cli(&["transit", "keys", "rm", "orders"], b"")
        .fails_with(1);
    assert!(r.stderr.contains("--deletion-allowed true"), "{}", r.stderr);
    s.cli(
        &[
            "transit",
            "keys",
            "config",
            "orders",
            "--deletion-allowed",
            "true",
        ],
        b"",
    )
    .ok();
    s.cli(&["transit", "keys", "rm", "orders"], b"").ok();
    let keys = s.cli(&["transit", "keys", "ls"], b"").ok();
    assert!(!keys.text().contains("orders"), "{}", keys.text());
}

#[test]
fn auth_list_shows_enabled_methods_until_disabled() {
    let s = Server::start();
    s.cli(&["auth", "enable", "approle"], b"").ok();
    s.cli(
        &[
            "auth",
            "enable",
            "kubernetes",
            "--path",
            "k8s-prod",
            "--description",
            "prod cluster",
        ],
        b"",
    )
    .ok();
    let r = s.cli(&["auth", "list"], b"").ok();
    let t = r.text();
    assert!(t.starts_with("PATH"), "{t}");
    assert!(t.contains("approle/") && t.contains("token/"), "{t}");
    assert!(t.contains("k8s-prod/") && t.contains("prod cluster"), "{t}");

    let r = s.cli(&["auth", "list", "--format", "json"], b"").ok();
    let v: Value = serde_json::from_slice(&r.stdout).unwrap();
    assert_eq!(v["approle/"]["type"], "approle");
    assert_eq!(v["k8s-prod/"]["type"], "kubernetes");

    s.cli(&["auth", "disable", "k8s-prod"], b"").ok();
    let r = s.cli(&["auth", "list", "--format", "json"], b"").ok();
    let v: Value = serde_json::from_slice(&r.stdout).unwrap();
    assert!(v.get("k8s-prod/").is_none(), "{v}");

    // A token without sudo on sys/auth cannot enable methods.
    s.cli(
        &["policy", "write", "none", "-"],
        b"path \"secret/*\" { capabilities = [\"read\"] }",
    )
    .ok();
    let weak = s
        .cli(
            &["token", "create", "--policy", "none", "--format", "json"],
            b"",
        )
        .ok();
    let weak: Value = serde_json::from_slice(&weak.stdout).unwrap();
    let weak = weak["auth"]["client_token"].as_str().unwrap().to_owned();
    s.cli_as(&weak, &["auth", "enable", "jwt"], b"")
        .fails_with(1);
}

/// Sets up `approle/` with a role `ci` whose tokens get the policy `app` (read on
/// secret/data/app/*), and a secret to read. Returns the role id.
fn approle_setup(s: &Server, extra_role_flags: &[&str]) -> String {
    s.cli(&["auth", "enable", "approle"], b"").ok();
    s.cli(
        &["policy", "write", "app", "-"],
        b"path \"secret/data/app/*\" { capabilities = [\"read\"] }",
    )
    .ok();
    let mut args = vec![
        "approle",
        "role",
        "write",
        "ci",
        "--policy",
        "app",
        "--token-ttl",
        "20m",
    ];
    args.extend_from_slice(extra_role_flags);
    s.cli(&args, b"").ok();
    s.cli(&["secret", "create", "app/db"], b"db-pass").ok();
    let role_id = line(&s.cli(&["approle", "role-id", "ci"], b"").ok());
    assert!(!role_id.is_empty());
    role_id
}

#[test]
fn approle_login_end_to_end() {
    let s = Server::start();
    let role_id = approle_setup(&s, &["--secret-id-num-uses", "1"]);

    let r = s
        .cli(&["approle", "role", "read", "ci", "--format", "json"], b"")
        .ok();
    let role: Value = serde_json::from_slice(&r.stdout).unwrap();
    assert_eq!(role["token_policies"], json!(["app"]));
    assert_eq!(role["secret_id_num_uses"], 1);
    let r = s.cli(&["approle", "role", "ls"], b"").ok();
    assert_eq!(r.text(), "ci\n");

    let r = s.cli(&["approle", "secret-id", "ci"], b"").ok();
    let secret_id = line(&r);
    assert!(r.stderr.contains("accessor"), "{}", r.stderr);
    assert!(!r.stderr.contains(&secret_id));

    // Login: the secret id on stdin, the role id as an argument. The token is stored, not
    // printed.
    let r = s
        .cli_stored_token(
            &["login", "--method", "approle", "--role-id", &role_id],
            format!("{secret_id}\n").as_bytes(),
        )
        .ok();
    assert!(r.stdout.is_empty(), "token printed without --print-token");
    assert!(
        r.stderr.contains("policies: ") && r.stderr.contains("app"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("ttl: 20m0s"), "{}", r.stderr);
    let token_file = s.home().join(".shroud-token");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&token_file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let stored = std::fs::read_to_string(&token_file).unwrap();
    assert!(!r.stderr.contains(stored.trim()), "token on stderr");

    // The stored token is the role's: it reads app secrets and nothing else.
    let r = s.cli_stored_token(&["secret", "get", "app/db"], b"").ok();
    assert_eq!(r.stdout, b"db-pass");
    s.cli_stored_token(&["policy", "ls"], b"").fails_with(1);
    let r = s
        .cli_stored_token(&["token", "lookup", "--format", "json"], b"")
        .ok();
    let info: Value = serde_json::from_slice(&r.stdout).unwrap();
    assert!(info["policies"].as_array().unwrap().contains(&json!("app")));

    // The secret id allowed one login.
    let r = s
        .cli_stored_token(
            &["login", "--method", "approle", "--role-id", &role_id],
            format!("{secret_id}\n").as_bytes(),
        )
        .fails_with(1);
    assert!(r.stderr.contains("rejected"), "{}", r.stderr);
    assert!(!r.stderr.contains(&secret_id));

    // From a file, with --print-token.
    let sid2 = line(&s.cli(&["approle", "secret-id", "ci"], b"").ok());
    let dir = tempfile::tempdir().unwrap();
    let sid_file = dir.path().join("secret-id");
    std::fs::write(&sid_file, format!("{sid2}\n")).unwrap();
    let r = s
        .cli_stored_token(
            &[
                "login",
                "--method",
                "approle",
                "--role-id",
                &role_id,
                "--secret-id-file",
                sid_file.to_str().unwrap(),
                "--print-token",
            ],
            b"",
        )
        .ok();
    let printed = line(&r);
    let stored = std::fs::read_to_string(&token_file).unwrap();
    assert_eq!(printed, stored.trim());

    // A wrong role id is rejected.
    let sid3 = line(&s.cli(&["approle", "secret-id", "ci"], b"").ok());
    s.cli_stored_token(
        &[
            "login",
            "--method",
            "approle",
            "--role-id",
            "not-the-role-id",
        ],
        sid3.as_bytes(),
    )
    .fails_with(1);

    s.cli(&["approle", "role", "rm", "ci"], b"").ok();
    s.cli(&["approle", "role-id", "ci"], b"").fails_with(1);
}

#[test]
fn wrapped_secret_id_then_unwrap() {
    let s = Server::start();
    let role_id = approle_setup(&s, &[]);

    let r = s
        .cli(&["approle", "secret-id", "ci", "--wrap-ttl", "5m"], b"")
        .ok();
    let wrapping_token = line(&r);
    assert!(r.stderr.contains("5m0s"), "{}", r.stderr);

    let r = s
        .cli(&["unwrap"], format!("{wrapping_token}\n").as_bytes())
        .ok();
    let v: Value = serde_json::from_slice(&r.stdout).unwrap();
    let secret_id = v["data"]["secret_id"].as_str().unwrap().to_owned();
    assert!(!secret_id.is_empty());

    // A wrapping token works once; the second unwrap is an alarm.
    let r = s.cli(&["unwrap"], wrapping_token.as_bytes()).fails_with(1);
    assert!(r.stdout.is_empty());
    assert!(r.stderr.contains("already been unwrapped"), "{}", r.stderr);

    // The unwrapped secret id logs in.
    s.cli_stored_token(
        &["login", "--method", "approle", "--role-id", &role_id],
        secret_id.as_bytes(),
    )
    .ok();
    let r = s.cli_stored_token(&["secret", "get", "app/db"], b"").ok();
    assert_eq!(r.stdout, b"db-pass");

    // --format json shows the whole wrap_info.
    let r = s
        .cli(
            &[
                "approle",
                "secret-id",
                "ci",
                "--wrap-ttl",
                "60s",
                "--format",
                "json",
            ],
            b"",
        )
        .ok();
    let w: Value = serde_json::from_slice(&r.stdout).unwrap();
    assert_eq!(w["wrap_info"]["ttl"], 60);
    assert_eq!(
        w["wrap_info"]["creation_path"],
        "auth/approle/role/ci/secret-id"
    );
}

#[test]
fn wrapped_token_create_then_unwrap_gives_the_token() {
    let s = Server::start();
    s.cli(
        &["policy", "write", "app", "-"],
        b"path \"secret/data/app/*\" { capabilities = [\"read\"] }",
    )
    .ok();
    let r = s
        .cli(
            &[
                "token",
                "create",
                "--policy",
                "app",
                "--wrap-ttl",
                "2m",
                "--format",
                "json",
            ],
            b"",
        )
        .ok();
    let w: Value = serde_json::from_slice(&r.stdout).unwrap();
    let wrapping = w["wrap_info"]["token"].as_str().unwrap().to_owned();
    assert_eq!(w["wrap_info"]["ttl"], 120);
    let r = s.cli(&["unwrap"], wrapping.as_bytes()).ok();
    let v: Value = serde_json::from_slice(&r.stdout).unwrap();
    let token = v["auth"]["client_token"].as_str().unwrap().to_owned();
    assert!(v["auth"]["policies"]
        .as_array()
        .unwrap()
        .contains(&json!("app")));
    let r = s
        .cli_as(&token, &["token", "lookup", "--format", "json"], b"")
        .ok();
    let info: Value = serde_json::from_slice(&r.stdout).unwrap();
    assert!(info["policies"].as_array().unwrap().contains(&json!("app")));
}

#[test]
fn batch_token_is_created_and_usable() {
    let s = Server::start();
    s.cli(
        &["policy", "write", "app", "-"],
        b"path \"secret/data/app/*\" { capabilities = [\"read\"] }",
    )
    .ok();
    s.cli(&["secret", "create", "app/db"], b"db-pass").ok();
    let r = s
        .cli(
            &[
                "token", "create", "--policy", "app", "--type", "batch", "--ttl", "10m",
                "--format", "json",
            ],
            b"",
        )
        .ok();
    let v: Value = serde_json::from_slice(&r.stdout).unwrap();
    assert_eq!(v["auth"]["token_type"], "batch");
    let token = v["auth"]["client_token"].as_str().unwrap().to_owned();
    let r = s.cli_as(&token, &["secret", "get", "app/db"], b"").ok();
    assert_eq!(r.stdout, b"db-pass");
    let r = s
        .cli_as(&token, &["token", "lookup", "--format", "json"], b"")
        .ok();
    let info: Value = serde_json::from_slice(&r.stdout).unwrap();
    assert_eq!(info["type"], "batch");
}

/// A P-256 key pair: the PEM public key the server verifies with, and a signer of ES256 JWTs.
struct JwtSigner {
    public_pem: String,
    key: jsonwebtoken::EncodingKey,
}

impl JwtSigner {
    fn new() -> Self {
        let kp = rcgen::KeyPair::generate().unwrap();
        JwtSigner {
            public_pem: kp.public_key_pem(),
            key: jsonwebtoken::EncodingKey::from_ec_pem(kp.serialize_pem().as_bytes()).unwrap(),
        }
    }

    fn sign(&self, claims: &Value) -> String {
        jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256),
            claims,
            &self.key,
        )
        .unwrap()
    }
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn app_policy_and_secret(s: &Server) {
    s.cli(
        &["policy", "write", "app", "-"],
        b"path \"secret/data/app/*\" { capabilities = [\"read\"] }",
    )
    .ok();
    s.cli(&["secret", "create", "app/db"], b"db-pass").ok();
}

#[test]
fn kubernetes_login_reads_the_service_account_token_file() {
    let s = Server::start();
    app_policy_and_secret(&s);
    let signer = JwtSigner::new();
    s.cli(&["auth", "enable", "kubernetes"], b"").ok();
    s.api(
        Method::Post,
        "auth/kubernetes/config",
        Some(json!({"kubernetes_host": "https://k8s.invalid", "pem_keys": [signer.public_pem]})),
    );
    s.api(
        Method::Post,
        "auth/kubernetes/role/web",
        Some(json!({"bound_service_account_names": ["web"],
                    "bound_service_account_namespaces": ["prod"],
                    "token_policies": ["app"], "token_ttl": "15m"})),
    );
    let sa_token = |ns: &str| {
        signer.sign(&json!({
            "iss": "https://kubernetes.default.svc", "sub": format!("system:serviceaccount:{ns}:web"),
            "iat": now(), "nbf": now(), "exp": now() + 600,
            "kubernetes.io": {"namespace": ns, "serviceaccount": {"name": "web", "uid": "u-1"}},
        }))
    };
    let dir = tempfile::tempdir().unwrap();
    let jwt_file = dir.path().join("token");
    std::fs::write(&jwt_file, sa_token("prod")).unwrap();
    let r = s
        .cli_stored_token(
            &[
                "login",
                "--method",
                "kubernetes",
                "--role",
                "web",
                "--jwt-file",
                jwt_file.to_str().unwrap(),
            ],
            b"",
        )
        .ok();
    assert!(r.stdout.is_empty());
    assert!(r.stderr.contains("ttl: 15m0s"), "{}", r.stderr);
    let r = s.cli_stored_token(&["secret", "get", "app/db"], b"").ok();
    assert_eq!(r.stdout, b"db-pass");

    // A service account of another namespace is refused.
    std::fs::write(&jwt_file, sa_token("dev")).unwrap();
    let r = s
        .cli_stored_token(
            &[
                "login",
                "--method",
                "kubernetes",
                "--role",
                "web",
                "--jwt-file",
                jwt_file.to_str().unwrap(),
            ],
            b"",
        )
        .fails_with(1);
    assert!(r.stderr.contains("rejected"), "{}", r.stderr);
}

#[test]
fn jwt_login_reads_the_token_from_stdin() {
    let s = Server::start();
    app_policy_and_secret(&s);
    let signer = JwtSigner::new();
    s.cli(&["auth", "enable", "jwt", "--path", "ci-jwt"], b"")
        .ok();
    s.api(
        Method::Post,
        "auth/ci-jwt/config",
        Some(json!({"jwt_validation_pubkeys": [signer.public_pem]})),
    );
    s.api(
        Method::Post,
        "auth/ci-jwt/role/ci",
        Some(
            json!({"role_type": "jwt", "bound_audiences": ["shroud"], "user_claim": "sub",
                    "token_policies": ["app"]}),
        ),
    );
    let jwt = signer.sign(&json!({"sub": "pipeline-42", "aud": "shroud",
                                  "iat": now(), "exp": now() + 600}));
    let r = s
        .cli_stored_token(
            &[
                "login",
                "--method",
                "jwt",
                "--mount",
                "ci-jwt",
                "--role",
                "ci",
                "--print-token",
            ],
            format!("{jwt}\n").as_bytes(),
        )
        .ok();
    let printed = line(&r);
    let stored = std::fs::read_to_string(s.home().join(".shroud-token")).unwrap();
    assert_eq!(printed, stored.trim());
    assert!(!r.stderr.contains(&jwt));
    let r = s.cli_stored_token(&["secret", "get", "app/db"], b"").ok();
    assert_eq!(r.stdout, b"db-pass");

    // Wrong audience: refused, and the JWT is not echoed.
    let bad = signer.sign(&json!({"sub": "pipeline-42", "aud": "other",
                                  "iat": now(), "exp": now() + 600}));
    let r = s
        .cli_stored_token(
            &[
                "login", "--method", "jwt", "--mount", "ci-jwt", "--role", "ci",
            ],
            bad.as_bytes(),
        )
        .fails_with(1);
    assert!(!r.stderr.contains(&bad));
}
