//! The client against a canned HTTP(S) server on a loopback port: what goes on the wire
//! (verbs, paths, headers, bodies), how answers are mapped (204, 404 with data, Vault error
//! bodies), and TLS trust through reqwest + rustls (CA file, pinned fingerprint, wrong pin).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use shroud_client::{CertFingerprint, Client, ClientConfig, ClientError, KvData, Method};
use shroud_core::SecretString;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;

/// One canned answer: status and JSON body ("" for none).
type Canned = (u16, &'static str);

/// A request as the server saw it: head (request line + headers, lower-cased names) and body.
#[derive(Debug, Clone)]
struct Seen {
    line: String,
    headers: BTreeMap<String, String>,
    body: String,
}

struct Mock {
    addr: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

async fn read_request<S: AsyncRead + Unpin>(s: &mut S) -> Option<Seen> {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        if s.read(&mut byte).await.ok()? == 0 || buf.len() > 64 * 1024 {
            return None;
        }
        buf.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&buf).into_owned();
    let mut lines = head.split("\r\n");
    let line = lines.next()?.to_owned();
    let headers: BTreeMap<String, String> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let len: usize = headers
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).await.ok()?;
    Some(Seen {
        line,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

async fn answer<S: AsyncRead + AsyncWrite + Unpin>(
    mut s: S,
    canned: Canned,
    seen: &Mutex<Vec<Seen>>,
) {
    let Some(req) = read_request(&mut s).await else {
        return;
    };
    seen.lock().unwrap().push(req);
    let (status, body) = canned;
    let head = format!(
        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n",
        body.len()
    );
    let _ = s.write_all(head.as_bytes()).await;
    let _ = s.write_all(body.as_bytes()).await;
    let _ = s.shutdown().await;
}

/// Serves `answers` in order, one per connection; with `tls`, over TLS.
async fn mock(answers: Vec<Canned>, tls: Option<Arc<rustls::ServerConfig>>) -> Mock {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let seen2 = seen.clone();
    tokio::spawn(async move {
        let mut answers = answers.into_iter();
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            match &tls {
                None => {
                    let Some(c) = answers.next() else { return };
                    answer(tcp, c, &seen2).await;
                }
                Some(cfg) => {
                    // A failed handshake consumes no canned answer.
                    let acceptor = tokio_rustls::TlsAcceptor::from(cfg.clone());
                    if let Ok(stream) = acceptor.accept(tcp).await {
                        let Some(c) = answers.next() else { return };
                        answer(stream, c, &seen2).await;
                    }
                }
            }
        }
    });
    Mock {
        addr: format!("127.0.0.1:{port}"),
        seen,
    }
}

fn client(addr: &str, token: Option<&str>) -> Client {
    Client::new(ClientConfig {
        addr: format!("http://{addr}"),
        token: token.map(SecretString::from),
        ..Default::default()
    })
    .unwrap()
}

#[tokio::test]
async fn requests_carry_token_and_vault_request_headers() {
    let m = mock(vec![(200, r#"{"data":{"keys":["a","b/"]}}"#)], None).await;
    let c = client(&m.addr, Some("hvs.header-token"));
    let keys = c.kv2("secret").list("app").await.unwrap();
    assert_eq!(keys, vec!["a", "b/"]);
    let seen = m.seen.lock().unwrap()[0].clone();
    assert_eq!(seen.line, "LIST /v1/secret/metadata/app/ HTTP/1.1");
    assert_eq!(seen.headers["x-vault-token"], "hvs.header-token");
    assert_eq!(seen.headers["x-vault-request"], "true");
}

#[tokio::test]
async fn no_content_is_none_and_errors_are_unwrapped() {
    let m = mock(
        vec![
            (204, ""),
            (
                403,
                r#"{"errors":["1 error occurred:\n\t* permission denied\n\n"]}"#,
            ),
            (503, r#"{"errors":["Vault is sealed"]}"#),
        ],
        None,
    )
    .await;
    let c = client(&m.addr, Some("hvs.t"));
    let r = c
        .request(Method::Delete, "secret/data/x", None)
        .await
        .unwrap();
    assert_eq!((r.status, r.body), (204, None));
    let err = c
        .request(Method::Get, "secret/data/x", None)
        .await
        .unwrap_err();
    assert!(err.is_permission_denied());
    match &err {
        ClientError::Api { status, errors } => {
            assert_eq!(*status, 403);
            assert_eq!(errors, &vec!["permission denied".to_owned()]);
        }
        other => panic!("{other:?}"),
    }
    let err = c.seal_status().await.unwrap_err();
    assert!(err.is_sealed());
}

#[tokio::test]
async fn kv_write_sends_cas_and_maps_mismatch() {
    let m = mock(
        vec![
            (
                200,
                r#"{"data":{"created_time":"t","deletion_time":"","destroyed":false,"version":1}}"#,
            ),
            (
                400,
                r#"{"errors":["check-and-set parameter did not match the current version"]}"#,
            ),
        ],
        None,
    )
    .await;
    let c = client(&m.addr, Some("hvs.t"));
    let mut d = KvData::new();
    d.insert_str("value", SecretString::from("v"));
    let meta = c.kv2("secret").write("a b", &d, Some(0)).await.unwrap();
    assert_eq!(meta.version, 1);
    let err = c.kv2("secret").write("a b", &d, Some(0)).await.unwrap_err();
    assert!(err.is_cas_mismatch());
    let seen = m.seen.lock().unwrap()[0].clone();
    assert_eq!(seen.line, "POST /v1/secret/data/a%20b HTTP/1.1");
    let body: serde_json::Value = serde_json::from_str(&seen.body).unwrap();
    assert_eq!(
        body,
        serde_json::json!({"options":{"cas":0},"data":{"value":"v"}})
    );
}

#[tokio::test]
async fn kv_read_distinguishes_missing_and_deleted_versions() {
    let m = mock(
        vec![
            (404, r#"{"errors":[]}"#),
            (
                404,
                r#"{"data":{"data":null,"metadata":{"created_time":"t","deletion_time":"d",
                    "destroyed":false,"version":2}}}"#,
            ),
            (
                200,
                r#"{"data":{"data":{"value":"s3"},"metadata":{"created_time":"t",
                    "deletion_time":"","destroyed":false,"version":3}}}"#,
            ),
        ],
        None,
    )
    .await;
    let c = client(&m.addr, Some("hvs.t"));
    let kv = c.kv2("secret");
    assert!(kv.read("x", None).await.unwrap().is_none());
    let deleted = kv.read("x", Some(2)).await.unwrap().unwrap();
    assert!(deleted.data.is_none());
    assert_eq!(deleted.metadata.deletion_time, "d");
    let live = kv.read("x", None).await.unwrap().unwrap();
    assert_eq!(live.data.unwrap().get_str("value").unwrap().expose(), "s3");
    let seen = m.seen.lock().unwrap().clone();
    assert_eq!(seen[1].line, "GET /v1/secret/data/x?version=2 HTTP/1.1");
}

#[tokio::test]
async fn redirect_to_another_origin_is_not_followed() {
    // The second server would receive the token if the redirect were followed.
    let other = mock(vec![(200, "{}")], None).await;
    let redirect_body: &'static str = "{}";
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let target = format!("http://{}/v1/sys/seal-status", other.addr);
    tokio::spawn(async move {
        if let Ok((mut s, _)) = listener.accept().await {
            let _ = read_request(&mut s).await;
            let head = format!(
                "HTTP/1.1 307 X\r\nLocation: {target}\r\nContent-Length: {}\r\n\
                 Connection: close\r\n\r\n{redirect_body}",
                redirect_body.len()
            );
            let _ = s.write_all(head.as_bytes()).await;
        }
    });
    let c = client(&format!("127.0.0.1:{port}"), Some("hvs.must-not-travel"));
    let err = c.seal_status().await.unwrap_err();
    assert_eq!(err.status(), Some(307));
    assert!(
        other.seen.lock().unwrap().is_empty(),
        "redirect was followed"
    );
}

struct TestCert {
    pem: String,
    der: Vec<u8>,
    server: Arc<rustls::ServerConfig>,
}

fn test_cert() -> TestCert {
    let ck = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(ck.signing_key.serialize_der().into());
    let server = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![ck.cert.der().clone()], key)
    .unwrap();
    TestCert {
        pem: ck.cert.pem(),
        der: ck.cert.der().to_vec(),
        server: Arc::new(server),
    }
}

const SEAL_STATUS: &str = r#"{"type":"shamir","initialized":true,"sealed":false,"t":1,"n":1}"#;

#[tokio::test]
async fn https_with_pinned_fingerprint_connects() {
    let cert = test_cert();
    let m = mock(vec![(200, SEAL_STATUS)], Some(cert.server.clone())).await;
    let c = Client::new(ClientConfig {
        addr: format!("https://{}", m.addr),
        tls_fingerprint: Some(CertFingerprint::of_der(&cert.der)),
        ..Default::default()
    })
    .unwrap();
    assert!(!c.seal_status().await.unwrap().sealed);
}

#[tokio::test]
async fn https_with_wrong_pin_fails_as_tls_error() {
    let cert = test_cert();
    let other = test_cert();
    let m = mock(vec![(200, SEAL_STATUS)], Some(cert.server.clone())).await;
    let c = Client::new(ClientConfig {
        addr: format!("https://{}", m.addr),
        token: Some(SecretString::from("hvs.pin-canary")),
        tls_fingerprint: Some(CertFingerprint::of_der(&other.der)),
        ..Default::default()
    })
    .unwrap();
    let err = c.seal_status().await.unwrap_err();
    assert!(matches!(err, ClientError::Tls { .. }), "{err:?}");
    assert!(!err.to_string().contains("pin-canary"));
    assert!(
        m.seen.lock().unwrap().is_empty(),
        "no request without trust"
    );
}

#[tokio::test]
async fn https_with_ca_file_connects_and_without_it_is_untrusted() {
    let cert = test_cert();
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, &cert.pem).unwrap();
    let m = mock(
        vec![(200, SEAL_STATUS), (200, SEAL_STATUS)],
        Some(cert.server.clone()),
    )
    .await;
    let c = Client::new(ClientConfig {
        addr: format!("https://{}", m.addr),
        ca_cert: Some(ca),
        ..Default::default()
    })
    .unwrap();
    assert!(c.seal_status().await.is_ok());

    // A CA file holding some other certificate does not make this server trusted.
    let other = test_cert();
    let other_ca = dir.path().join("other.pem");
    std::fs::write(&other_ca, &other.pem).unwrap();
    let c = Client::new(ClientConfig {
        addr: format!("https://{}", m.addr),
        ca_cert: Some(other_ca),
        ..Default::default()
    })
    .unwrap();
    assert!(matches!(
        c.seal_status().await.unwrap_err(),
        ClientError::Tls { .. }
    ));
}

#[tokio::test]
async fn wrapped_request_sends_the_header_and_returns_wrap_info() {
    let m = mock(
        vec![(
            200,
            r#"{"request_id":"r","data":null,"auth":null,"wrap_info":{"token":"hvs.wrap-tok",
                "accessor":"wacc","ttl":300,"creation_time":"2026-01-01T00:00:00Z",
                "creation_path":"auth/approle/role/ci/secret-id","wrapped_accessor":"sacc"}}"#,
        )],
        None,
    )
    .await;
    let c = client(&m.addr, Some("hvs.t"));
    let w = c
        .approle("approle")
        .secret_id_wrapped("ci", &shroud_client::SecretIdRequest::default(), "5m")
        .await
        .unwrap();
    assert_eq!(w.token.expose(), "hvs.wrap-tok");
    assert_eq!(w.ttl, 300);
    assert_eq!(w.creation_path, "auth/approle/role/ci/secret-id");
    let seen = m.seen.lock().unwrap()[0].clone();
    assert_eq!(
        seen.line,
        "POST /v1/auth/approle/role/ci/secret-id HTTP/1.1"
    );
    assert_eq!(seen.headers["x-vault-wrap-ttl"], "5m");
}

#[tokio::test]
async fn unwrapped_answer_to_a_wrap_request_is_discarded() {
    // A server that ignores X-Vault-Wrap-TTL sends the secret id itself; the caller expects a
    // wrapping token and must not be handed the secret.
    let m = mock(
        vec![(
            200,
            r#"{"data":{"secret_id":"sid-must-not-surface","secret_id_accessor":"a"},
                "wrap_info":null}"#,
        )],
        None,
    )
    .await;
    let c = client(&m.addr, Some("hvs.t"));
    let err = c
        .approle("approle")
        .secret_id_wrapped("ci", &shroud_client::SecretIdRequest::default(), "5m")
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::NotWrapped), "{err:?}");
    assert!(!format!("{err} {err:?}").contains("sid-must-not-surface"));
}

#[tokio::test]
async fn unwrap_authenticates_with_the_wrapping_token() {
    let m = mock(
        vec![(
            200,
            r#"{"data":{"secret_id":"sid-1","secret_id_accessor":"acc"},"auth":null}"#,
        )],
        None,
    )
    .await;
    let c = client(&m.addr, Some("hvs.caller-token"));
    let u = c
        .unwrap(&SecretString::from("hvs.wrapping-token"))
        .await
        .unwrap();
    assert_eq!(
        u.data.unwrap().get_str("secret_id").unwrap().expose(),
        "sid-1"
    );
    assert!(u.auth.is_none());
    let seen = m.seen.lock().unwrap()[0].clone();
    assert_eq!(seen.line, "POST /v1/sys/wrapping/unwrap HTTP/1.1");
    assert_eq!(seen.headers["x-vault-token"], "hvs.wrapping-token");
}

#[tokio::test]
async fn logins_send_no_client_token() {
    let auth = r#"{"auth":{"client_token":"hvs.new","accessor":"a","policies":["default","ci"],
        "token_policies":["default","ci"],"lease_duration":1200,"renewable":true,
        "token_type":"service","orphan":true,"num_uses":0,"metadata":{"role_name":"ci"}}}"#;
    let m = mock(vec![(200, auth), (200, auth)], None).await;
    let c = client(&m.addr, Some("hvs.old-token"));
    let a = c
        .approle("approle")
        .login("rid", &SecretString::from("sid"))
        .await
        .unwrap();
    assert_eq!(a.client_token.expose(), "hvs.new");
    assert_eq!(a.lease_duration, 1200);
    let a = c
        .login_jwt("kubernetes", Some("web"), &SecretString::from("e.y.j"))
        .await
        .unwrap();
    assert_eq!(a.policies, vec!["default", "ci"]);
    let seen = m.seen.lock().unwrap().clone();
    assert_eq!(seen[0].line, "POST /v1/auth/approle/login HTTP/1.1");
    let body: serde_json::Value = serde_json::from_str(&seen[0].body).unwrap();
    assert_eq!(body, serde_json::json!({"role_id":"rid","secret_id":"sid"}));
    assert_eq!(seen[1].line, "POST /v1/auth/kubernetes/login HTTP/1.1");
    let body: serde_json::Value = serde_json::from_str(&seen[1].body).unwrap();
    assert_eq!(body, serde_json::json!({"role":"web","jwt":"e.y.j"}));
    for s in &seen {
        assert!(!s.headers.contains_key("x-vault-token"), "{s:?}");
    }
}

#[tokio::test]
async fn transit_encrypt_sends_base64_and_decrypt_returns_exact_bytes() {
    let m = mock(
        vec![
            (
                200,
                r#"{"data":{"ciphertext":"vault:v1:Y2lwaGVy","key_version":1}}"#,
            ),
            // base64 of 00 ff fe 0a
            (200, r#"{"data":{"plaintext":"AP/+Cg=="}}"#),
            (400, r#"{"errors":["invalid ciphertext: no prefix"]}"#),
        ],
        None,
    )
    .await;
    let c = client(&m.addr, Some("hvs.t"));
    let t = c.transit("transit");
    let ct = t
        .encrypt(
            "orders",
            &shroud_core::SecretBytes::from_slice(&[0x00, 0xff, 0xfe, b'\n']),
            Some("dGVuYW50"),
        )
        .await
        .unwrap();
    assert_eq!(ct.ciphertext, "vault:v1:Y2lwaGVy");
    assert_eq!(ct.key_version, 1);
    let pt = t.decrypt("orders", &ct.ciphertext, None).await.unwrap();
    assert_eq!(pt.expose(), &[0x00, 0xff, 0xfe, b'\n']);
    let err = t.decrypt("orders", "garbage", None).await.unwrap_err();
    assert_eq!(err.status(), Some(400));
    let seen = m.seen.lock().unwrap().clone();
    assert_eq!(seen[0].line, "POST /v1/transit/encrypt/orders HTTP/1.1");
    let body: serde_json::Value = serde_json::from_str(&seen[0].body).unwrap();
    assert_eq!(
        body,
        serde_json::json!({"plaintext":"AP/+Cg==","context":"dGVuYW50"})
    );
    assert_eq!(seen[1].line, "POST /v1/transit/decrypt/orders HTTP/1.1");
}

#[tokio::test]
async fn transit_batch_rewrap_reports_per_item_failures_from_a_400() {
    let m = mock(
        vec![(
            400,
            r#"{"data":{"batch_results":[{"ciphertext":"vault:v2:bmV3","key_version":2},
                {"error":"invalid ciphertext: no prefix"}]}}"#,
        )],
        None,
    )
    .await;
    let c = client(&m.addr, Some("hvs.t"));
    let r = c
        .transit("transit")
        .rewrap_batch("orders", &["vault:v1:b2xk", "junk"], None)
        .await
        .unwrap();
    assert_eq!(r[0].as_ref().unwrap().ciphertext, "vault:v2:bmV3");
    assert_eq!(r[1].as_ref().unwrap_err(), "invalid ciphertext: no prefix");
    let seen = m.seen.lock().unwrap()[0].clone();
    let body: serde_json::Value = serde_json::from_str(&seen.body).unwrap();
    assert_eq!(
        body,
        serde_json::json!({"batch_input":[{"ciphertext":"vault:v1:b2xk"},{"ciphertext":"junk"}]})
    );
}

#[tokio::test]
async fn transit_batch_with_a_wrong_result_count_is_refused() {
    let m = mock(
        vec![(
            200,
            r#"{"data":{"batch_results":[{"ciphertext":"vault:v2:bmV3"}]}}"#,
        )],
        None,
    )
    .await;
    let c = client(&m.addr, Some("hvs.t"));
    let err = c
        .transit("transit")
        .rewrap_batch("orders", &["vault:v1:a", "vault:v1:b"], None)
        .await
        .unwrap_err();
    assert!(
        matches!(err, ClientError::InvalidResponse { .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn transit_rotate_reads_the_key_back_after_a_204() {
    let m = mock(
        vec![
            (204, ""),
            (
                200,
                r#"{"data":{"name":"orders","type":"aes256-gcm96","latest_version":2,
                    "keys":{"1":1700000000,"2":1700000500}}}"#,
            ),
        ],
        None,
    )
    .await;
    let c = client(&m.addr, Some("hvs.t"));
    let k = c.transit("transit").rotate_key("orders").await.unwrap();
    assert_eq!(k.latest_version, 2);
    let seen = m.seen.lock().unwrap().clone();
    assert_eq!(seen[0].line, "POST /v1/transit/keys/orders/rotate HTTP/1.1");
    assert_eq!(seen[1].line, "GET /v1/transit/keys/orders HTTP/1.1");
}

#[tokio::test]
async fn auth_methods_are_enabled_listed_and_disabled() {
    let m = mock(
        vec![
            (204, ""),
            (
                200,
                r#"{"data":{"approle/":{"type":"approle","accessor":"auth_approle_1",
                    "description":""},"token/":{"type":"token","accessor":"auth_token"}}}"#,
            ),
            (204, ""),
        ],
        None,
    )
    .await;
    let c = client(&m.addr, Some("hvs.t"));
    c.auth_enable("approle", "approle", "ci logins")
        .await
        .unwrap();
    let list = c.auth_list().await.unwrap();
    assert_eq!(list["approle/"].method_type, "approle");
    c.auth_disable("approle").await.unwrap();
    let seen = m.seen.lock().unwrap().clone();
    assert_eq!(seen[0].line, "POST /v1/sys/auth/approle HTTP/1.1");
    let body: serde_json::Value = serde_json::from_str(&seen[0].body).unwrap();
    assert_eq!(
        body,
        serde_json::json!({"type":"approle","description":"ci logins"})
    );
    assert_eq!(seen[1].line, "GET /v1/sys/auth HTTP/1.1");
    assert_eq!(seen[2].line, "DELETE /v1/sys/auth/approle HTTP/1.1");
}
