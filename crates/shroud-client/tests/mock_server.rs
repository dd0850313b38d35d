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
