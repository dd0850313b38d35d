//! The harness shared by the CLI end-to-end tests: a real `shroud server` child process on a
//! loopback port, and runs of the CLI binary against it with a controlled environment.

// Each test binary uses a different subset of the harness.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub const BIN: &str = env!("CARGO_BIN_EXE_shroud");

/// Variables that would make the CLI talk to some other server or use another token.
pub const INHERITED_VARS: &[&str] = &[
    "SHROUD_ADDR",
    "SHROUD_TOKEN",
    "VAULT_ADDR",
    "VAULT_TOKEN",
    "SHROUD_CACERT",
    "VAULT_CACERT",
    "SHROUD_TLS_FINGERPRINT",
    "SHROUD_DEV_ROOT_TOKEN",
    "SHROUD_LOG",
];

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn random_hex(n: usize) -> String {
    let mut b = vec![0u8; n];
    getrandom::fill(&mut b).unwrap();
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// `GET /v1/sys/health` over a raw socket; any HTTP answer means the server is up.
pub fn health_answers(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let req = "GET /v1/sys/health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    if s.write_all(req.as_bytes()).is_err() {
        return false;
    }
    let mut buf = [0u8; 12];
    matches!(s.read(&mut buf), Ok(n) if n >= 12 && buf.starts_with(b"HTTP/1."))
}

/// A server child process, killed on drop (also when a test panics).
pub struct Server {
    pub child: Child,
    pub addr: String,
    /// The root token (dev mode: chosen by the test; configured mode: from `operator init`).
    pub root: String,
    pub output: Arc<Mutex<String>>,
    /// Keeps the data directory and HOME alive for the test's duration.
    pub dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// `shroud server --dev` on a free port with a random root token.
    pub fn start() -> Server {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let root = format!("hvs.e2e-{}", random_hex(16));
        let listen = format!("127.0.0.1:{port}");
        let data = dir.path().join("data");
        let args: Vec<std::ffi::OsString> = vec![
            "server".into(),
            "--dev".into(),
            "--listen".into(),
            listen.clone().into(),
            "--dev-root-token".into(),
            root.clone().into(),
            "--data".into(),
            data.into(),
        ];
        let server = Server::spawn(&args, format!("http://{listen}"), root, dir);
        server.wait_until(|_| health_answers(port))
    }

    /// `shroud server --config` with TLS (a self-signed certificate the server generates);
    /// uninitialised and sealed. Returns once it printed its certificate fingerprint and
    /// accepts connections.
    pub fn start_tls_configured() -> Server {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let cfg = dir.path().join("shroud.toml");
        std::fs::write(
            &cfg,
            format!(
                "[listener]\naddress = \"127.0.0.1:{port}\"\n[storage]\ntype = \"sqlite\"\n\
                 path = \"{}\"\n",
                dir.path().join("data").display()
            ),
        )
        .unwrap();
        let args: Vec<std::ffi::OsString> = vec!["server".into(), "--config".into(), cfg.into()];
        let server = Server::spawn(
            &args,
            format!("https://127.0.0.1:{port}"),
            String::new(),
            dir,
        );
        server.wait_until(|s| {
            s.output().contains("SHROUD_TLS_FINGERPRINT=")
                && TcpStream::connect(("127.0.0.1", port)).is_ok()
        })
    }

    pub fn spawn(
        args: &[std::ffi::OsString],
        addr: String,
        root: String,
        dir: tempfile::TempDir,
    ) -> Server {
        let mut cmd = Command::new(BIN);
        for v in INHERITED_VARS {
            cmd.env_remove(v);
        }
        let mut child = cmd
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start shroud server");
        let output = Arc::new(Mutex::new(String::new()));
        let pipes: [Box<dyn Read + Send>; 2] = [
            Box::new(child.stdout.take().unwrap()),
            Box::new(child.stderr.take().unwrap()),
        ];
        for pipe in pipes {
            let out = output.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    let mut o = out.lock().unwrap();
                    o.push_str(&line);
                    o.push('\n');
                }
            });
        }
        Server {
            child,
            addr,
            root,
            output,
            dir,
        }
    }

    /// Bounded wait: 300 tries, 100 ms apart; fails early if the server exits.
    pub fn wait_until(mut self, ready: impl Fn(&Server) -> bool) -> Server {
        for _ in 0..300 {
            if ready(&self) {
                return self;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("shroud server exited ({status}):\n{}", self.output());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "shroud server at {} is not ready:\n{}",
            self.addr,
            self.output()
        );
    }

    /// The `sha256:<hex>` fingerprint the server printed.
    pub fn fingerprint(&self) -> String {
        let out = self.output();
        let line = out
            .lines()
            .find_map(|l| l.trim().strip_prefix("export SHROUD_TLS_FINGERPRINT="))
            .expect("fingerprint line");
        line.trim().to_owned()
    }

    pub fn output(&self) -> String {
        self.output.lock().unwrap().clone()
    }

    pub fn home(&self) -> PathBuf {
        self.dir.path().to_owned()
    }

    /// Runs the CLI as root against this server.
    pub fn cli(&self, args: &[&str], stdin: &[u8]) -> Run {
        self.cli_as(&self.root, args, stdin)
    }

    /// Runs the CLI against this server with no token variable, so it uses the token file
    /// `shroud login` stored in this server's HOME.
    pub fn cli_stored_token(&self, args: &[&str], stdin: &[u8]) -> Run {
        let mut env = BTreeMap::new();
        env.insert("SHROUD_ADDR", self.addr.clone());
        run_cli(args, stdin, &env, &self.home())
    }

    /// Calls the API as root through the client library, for setup the CLI has no command
    /// for (mounting a secrets engine).
    pub fn api(
        &self,
        method: shroud_client::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> shroud_client::Response {
        let client = shroud_client::Client::new(shroud_client::ClientConfig {
            addr: self.addr.clone(),
            token: Some(shroud_core::SecretString::from(self.root.as_str())),
            ..Default::default()
        })
        .unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(client.request(method, path, body.as_ref()))
            .unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    /// Runs the CLI with `token` against this server.
    pub fn cli_as(&self, token: &str, args: &[&str], stdin: &[u8]) -> Run {
        let mut env = BTreeMap::new();
        env.insert("SHROUD_ADDR", self.addr.clone());
        env.insert("SHROUD_TOKEN", token.to_owned());
        run_cli(args, stdin, &env, &self.home())
    }
}

/// Outcome of one CLI run.
pub struct Run {
    pub code: i32,
    pub stdout: Vec<u8>,
    pub stderr: String,
}

impl Run {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    #[track_caller]
    pub fn ok(self) -> Run {
        assert_eq!(
            self.code,
            0,
            "expected success\nstdout: {}\nstderr: {}",
            self.text(),
            self.stderr
        );
        self
    }

    #[track_caller]
    pub fn fails_with(self, code: i32) -> Run {
        assert_eq!(
            self.code,
            code,
            "unexpected exit code\nstdout: {}\nstderr: {}",
            self.text(),
            self.stderr
        );
        self
    }
}

pub fn run_cli(args: &[&str], stdin: &[u8], env: &BTreeMap<&str, String>, home: &Path) -> Run {
    let mut cmd = Command::new(BIN);
    for v in INHERITED_VARS {
        cmd.env_remove(v);
    }
    cmd.env("HOME", home);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run shroud");
    {
        let mut input = child.stdin.take().unwrap();
        input.write_all(stdin).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: out.stdout,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}
