//! End-to-end tests of the real `shroud server` binary on loopback ports: durability across
//! `kill -9`, dev-mode restarts, the Shamir flow of a configured server, and no secret in logs.

use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_shroud");

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Minimal HTTP/1.1 client (one request per connection) so these tests depend on nothing but
/// the binary under test.
fn http(
    port: u16,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> std::io::Result<(u16, Value)> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let mut req = format!("{method} /v1/{path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
    if let Some(t) = token {
        req.push_str(&format!("X-Vault-Token: {t}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(&body);
    s.write_all(req.as_bytes())?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw);
    let (head, rest) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    Ok((status, serde_json::from_str(rest).unwrap_or(Value::Null)))
}

struct Server {
    child: Child,
    port: u16,
    output: Arc<Mutex<String>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn start(args: &[&str], envs: &[(&str, &str)], port: u16) -> Server {
        let mut cmd = Command::new(BIN);
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("start shroud");
        let output = Arc::new(Mutex::new(String::new()));
        for pipe in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let out = output.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    let mut o = out.lock().unwrap();
                    o.push_str(&line);
                    o.push('\n');
                }
            });
        }
        let mut s = Server {
            child,
            port,
            output,
        };
        s.wait_up();
        s
    }

    fn dev(dir: &Path, root: &str) -> Server {
        let port = free_port();
        let listen = format!("127.0.0.1:{port}");
        Server::start(
            &[
                "server",
                "--dev",
                "--listen",
                &listen,
                "--data",
                dir.to_str().unwrap(),
            ],
            &[("SHROUD_DEV_ROOT_TOKEN", root), ("SHROUD_LOG", "debug")],
            port,
        )
    }

    fn wait_up(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(st)) = self.child.try_wait() {
                panic!("shroud exited ({st}):\n{}", self.output());
            }
            if let Ok((code, _)) = http(self.port, "GET", "sys/health", None, None) {
                if code != 0 {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "server did not come up:\n{}",
                self.output()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn output(&self) -> String {
        self.output.lock().unwrap().clone()
    }
}

#[test]
fn acknowledged_writes_survive_kill_9_and_dev_restart_keeps_root_token() {
    let dir = tempfile::tempdir().unwrap();
    let root = "hvs.e2e-root-kill9";
    let server = Server::dev(dir.path(), root);
    let port = server.port;
    let acked: Arc<Mutex<Vec<(String, String)>>> = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut writers = Vec::new();
    for w in 0..32 {
        let acked = acked.clone();
        let stop = stop.clone();
        writers.push(std::thread::spawn(move || {
            for i in 0..400 {
                if stop.load(std::sync::atomic::Ordering::SeqCst) {
                    return;
                }
                let key = format!("k{w}-{i}");
                let val = format!("value-{w}-{i}");
                match http(
                    port,
                    "POST",
                    &format!("secret/data/{key}"),
                    Some(root),
                    Some(&json!({"data": {"v": val}})),
                ) {
                    Ok((200, _)) => acked.lock().unwrap().push((key, val)),
                    _ => return, // the server died under us: stop writing
                }
            }
        }));
    }
    // Kill -9 once a few hundred writes are acknowledged, while writers are still running.
    let deadline = Instant::now() + Duration::from_secs(60);
    while acked.lock().unwrap().len() < 300 {
        assert!(
            Instant::now() < deadline,
            "writes too slow:\n{}",
            server.output()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let mut server = server;
    server.child.kill().unwrap(); // SIGKILL
    server.child.wait().unwrap();
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    for w in writers {
        w.join().unwrap();
    }
    drop(server);
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() >= 300);

    let again = Server::dev(dir.path(), root);
    let (code, _) = http(
        again.port,
        "GET",
        "auth/token/lookup-self",
        Some(root),
        None,
    )
    .unwrap();
    assert_eq!(code, 200, "same root token after restart");
    for (key, val) in &acked {
        let (code, body) = http(
            again.port,
            "GET",
            &format!("secret/data/{key}"),
            Some(root),
            None,
        )
        .unwrap();
        assert_eq!(code, 200, "acknowledged write {key} lost after kill -9");
        assert_eq!(body["data"]["data"]["v"], val.as_str());
    }
    let out = again.output();
    assert!(out.contains(root), "dev banner prints the root token again");
}

#[test]
fn no_secret_or_token_in_server_logs() {
    let dir = tempfile::tempdir().unwrap();
    let root = "hvs.e2e-root-logs";
    let server = Server::dev(dir.path(), root);
    let p = server.port;
    let secret_value = "LogLeakCanary-7f3a9c";
    let (c, _) = http(
        p,
        "POST",
        "secret/data/canary",
        Some(root),
        Some(&json!({"data": {"password": secret_value}})),
    )
    .unwrap();
    assert_eq!(c, 200);
    let (c, b) = http(p, "GET", "secret/data/canary", Some(root), None).unwrap();
    assert_eq!(
        (c, b["data"]["data"]["password"].as_str()),
        (200, Some(secret_value))
    );
    let (c, b) = http(
        p,
        "POST",
        "auth/token/create",
        Some(root),
        Some(&json!({"policies": ["default"]})),
    )
    .unwrap();
    assert_eq!(c, 200);
    let child = b["auth"]["client_token"].as_str().unwrap().to_owned();
    let accessor = b["auth"]["accessor"].as_str().unwrap().to_owned();
    http(p, "GET", "auth/token/lookup-self", Some(&child), None).unwrap();
    http(p, "GET", "secret/data/canary", Some(&child), None).unwrap(); // denied: logged?
    http(p, "POST", "secret/data/bad", Some(root), None).unwrap();
    http(
        p,
        "POST",
        "auth/token/revoke",
        Some(root),
        Some(&json!({"token": child})),
    )
    .unwrap();
    http(
        p,
        "GET",
        "secret/data/canary",
        Some("hvs.wrong-token-canary"),
        None,
    )
    .unwrap();
    drop(server);
    std::thread::sleep(Duration::from_millis(200));
    let dir2 = tempfile::tempdir().unwrap();
    let _ = dir2;
    let out = std::fs::read_to_string(dir.path().join("shroud.db")).unwrap_or_default();
    assert!(
        !out.contains(secret_value),
        "plaintext value found in the database file"
    );
    // Server output, with debug logging on: the only place the root token may appear is the
    // dev banner (that is what dev mode is for).
    let server = Server::dev(dir.path(), root);
    let logs = server.output();
    drop(server);
    for needle in [
        secret_value,
        child.as_str(),
        accessor.as_str(),
        "wrong-token-canary",
    ] {
        assert!(
            !logs.contains(needle),
            "server output contains {needle}:\n{logs}"
        );
    }
}

#[test]
fn configured_server_starts_sealed_and_unseals_with_shamir_shares() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let cfg = dir.path().join("shroud.toml");
    std::fs::write(
        &cfg,
        format!(
            "[listener]\naddress = \"127.0.0.1:{port}\"\ntls_disable = true\n[storage]\ntype = \"sqlite\"\npath = \"{}\"\n",
            dir.path().join("data").display()
        ),
    )
    .unwrap();
    let server = Server::start(&["server", "--config", cfg.to_str().unwrap()], &[], port);
    let (c, b) = http(port, "GET", "sys/health", None, None).unwrap();
    assert_eq!((c, b["initialized"].clone()), (501, json!(false)));
    let (c, _) = http(port, "GET", "secret/data/x", Some("anything"), None).unwrap();
    assert_eq!(c, 503, "uninitialized server is sealed");
    let (c, init) = http(
        port,
        "PUT",
        "sys/init",
        None,
        Some(&json!({"secret_shares": 5, "secret_threshold": 3})),
    )
    .unwrap();
    assert_eq!(c, 200, "{init}");
    let keys: Vec<String> = init["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap().to_owned())
        .collect();
    let b64: Vec<String> = init["keys_base64"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap().to_owned())
        .collect();
    let root = init["root_token"].as_str().unwrap().to_owned();
    assert_eq!(keys.len(), 5);
    let (_, st) = http(port, "GET", "sys/seal-status", None, None).unwrap();
    assert_eq!(
        (st["sealed"].clone(), st["t"].clone(), st["n"].clone()),
        (json!(true), json!(3), json!(5))
    );
    // hex and base64 shares both work
    let (_, st) = http(
        port,
        "PUT",
        "sys/unseal",
        None,
        Some(&json!({"key": keys[4]})),
    )
    .unwrap();
    assert_eq!(st["progress"], 1);
    let (_, st) = http(
        port,
        "PUT",
        "sys/unseal",
        None,
        Some(&json!({"key": b64[1]})),
    )
    .unwrap();
    assert_eq!(st["progress"], 2);
    let (c, bad) = http(
        port,
        "PUT",
        "sys/unseal",
        None,
        Some(&json!({"key": "not a key!"})),
    )
    .unwrap();
    assert_eq!(c, 400, "{bad}");
    let (_, st) = http(
        port,
        "PUT",
        "sys/unseal",
        None,
        Some(&json!({"key": keys[2]})),
    )
    .unwrap();
    assert_eq!(st["sealed"], false);
    let (c, _) = http(
        port,
        "POST",
        "secret/data/x",
        Some(&root),
        Some(&json!({"data": {"a": "b"}})),
    )
    .unwrap();
    assert_eq!(c, 200);
    let (c, _) = http(port, "PUT", "sys/seal", Some(&root), None).unwrap();
    assert_eq!(c, 204);
    assert_eq!(
        http(port, "GET", "secret/data/x", Some(&root), None)
            .unwrap()
            .0,
        503
    );
    drop(server);
    // restart: still sealed, and the data comes back after unsealing
    let server = Server::start(&["server", "--config", cfg.to_str().unwrap()], &[], port);
    assert_eq!(http(port, "GET", "sys/health", None, None).unwrap().0, 503);
    for k in &keys[..3] {
        http(port, "PUT", "sys/unseal", None, Some(&json!({"key": k}))).unwrap();
    }
    let (c, b) = http(port, "GET", "secret/data/x", Some(&root), None).unwrap();
    assert_eq!((c, b["data"]["data"]["a"].as_str()), (200, Some("b")));
    drop(server);
}

#[test]
fn plain_http_on_a_public_address_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("shroud.toml");
    std::fs::write(
        &cfg,
        "[listener]\naddress = \"0.0.0.0:0\"\ntls_disable = true\n[storage]\ntype = \"memory\"\n",
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["server", "--config", cfg.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("refusing plain HTTP"), "{err}");
}

#[test]
fn dev_mode_refuses_non_loopback() {
    let out = Command::new(BIN)
        .args(["server", "--dev", "--listen", "0.0.0.0:0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("loopback"));
}
