//! shroud's HTTP server: the Vault API router, authentication, ACL policy, the engines
//! (KV v2, token, sys) and audit.
//!
//! Start with [`serve_dev`] (the `shroud server --dev` mode) or [`serve_config`]; tests build a
//! core with [`memory_core`] and drive [`http::router`] in-process.

pub mod api;
pub mod approle;
pub mod audit;
pub mod coarse_timer;
pub mod config;
pub mod core;
pub mod engine;
pub mod http;
pub mod hygiene;
pub mod jwt;
pub mod kv;
pub mod mounts;
pub mod policy_store;
pub mod ratelimit;
pub mod sys;
pub mod tls;
pub mod token;
pub mod token_api;
pub mod transit;
pub mod wrapping;

use crate::core::{Core, SealKind};
use hyper_util::rt::{TokioExecutor, TokioIo};
use shroud_core::{SecretString, Storage};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

/// Options of `shroud server --dev`.
#[derive(Debug, Clone)]
pub struct DevOptions {
    /// Loopback address to listen on (default 127.0.0.1:8200).
    pub listen: SocketAddr,
    /// Root token to use instead of a random one. Only ever used in dev mode.
    pub root_token: Option<SecretString>,
    /// Directory to keep state in; `None` means a fresh temporary directory.
    pub data_dir: Option<PathBuf>,
}

/// Errors that stop the server from starting or running.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// The configuration is invalid.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// Opening or creating storage failed.
    #[error("storage: {0}")]
    Storage(#[from] shroud_core::StorageError),
    /// Binding the listener failed.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A file could not be read or written.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// TLS setup failed.
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    /// Initializing or unsealing failed.
    #[error("{0}")]
    Core(String),
}

impl From<api::ApiError> for ServerError {
    fn from(e: api::ApiError) -> Self {
        ServerError::Core(e.errors.join("; "))
    }
}

impl From<shroud_crypto::CryptoError> for ServerError {
    fn from(e: shroud_crypto::CryptoError) -> Self {
        ServerError::Core(e.to_string())
    }
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> ServerError {
    let what = what.into();
    move |source| ServerError::Io { what, source }
}

/// Read cache size in front of persistent storage.
const CACHE_BYTES: usize = 64 * 1024 * 1024;

fn open_sqlite(dir: &Path) -> Result<Arc<dyn Storage>, ServerError> {
    std::fs::create_dir_all(dir).map_err(io(format!("cannot create {}", dir.display())))?;
    let db = shroud_storage::SqliteStorage::open(&dir.join("shroud.db"))?;
    Ok(Arc::new(shroud_storage::CachedStorage::new(
        Arc::new(db),
        CACHE_BYTES,
    )))
}

/// A dev-mode core on in-memory storage: initialized, unsealed, with a `secret/` mount.
/// Returns the core and its root token. For tests and benchmarks.
pub async fn memory_core(
    root_token: Option<SecretString>,
) -> Result<(Arc<Core>, SecretString), ServerError> {
    let dir = std::env::temp_dir().join(format!("shroud-mem-{}", api::uuid()));
    let core = Core::new(
        Arc::new(shroud_core::MemoryStorage::new()),
        SealKind::Static {
            key_file: dir.join("unseal.key"),
        },
    );
    std::fs::create_dir_all(&dir).map_err(io("cannot create temp dir"))?;
    let (_, token) = core.initialize(1, 1, root_token).await?;
    let _ = std::fs::remove_dir_all(&dir);
    Ok((core, token))
}

/// Runs a dev server until Ctrl-C / SIGTERM. Prints the address, root token and export lines.
pub async fn serve_dev(opts: DevOptions) -> Result<(), ServerError> {
    if !opts.listen.ip().is_loopback() {
        return Err(ServerError::Config(format!(
            "dev mode serves plain HTTP and listens on loopback only, not {} \
             (use a config file with TLS for anything else)",
            opts.listen
        )));
    }
    let notes = hygiene::harden();
    let (dir, _tmp) = match &opts.data_dir {
        Some(d) => (d.clone(), None),
        None => {
            let t = tempfile::Builder::new()
                .prefix("shroud-dev-")
                .tempdir()
                .map_err(io("cannot create a temporary directory"))?;
            (t.path().to_owned(), Some(t))
        }
    };
    std::fs::create_dir_all(&dir).map_err(io(format!("cannot create {}", dir.display())))?;
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))
            .map_err(io(format!("cannot restrict {}", dir.display())))?;
    }
    let storage = open_sqlite(&dir)?;
    let key_file = dir.join("unseal.key");
    let token_file = dir.join("root-token");
    let core = Core::new(
        storage,
        SealKind::Static {
            key_file: key_file.clone(),
        },
    );
    let listener = TcpListener::bind(opts.listen)
        .await
        .map_err(|source| ServerError::Bind {
            addr: opts.listen,
            source,
        })?;
    let root = if core.seal.is_initialized().await? {
        let key = shroud_crypto::read_key_file(&key_file)?;
        core.unseal_with_key(&key).await?;
        let stored = std::fs::read_to_string(&token_file)
            .map(|s| SecretString::new(s.trim().to_owned()))
            .map_err(io(format!("cannot read {}", token_file.display())))?;
        match opts.root_token {
            Some(t) if t != stored => {
                let active = core
                    .active()
                    .ok_or_else(|| ServerError::Core("sealed".into()))?;
                if active.tokens.lookup(t.expose()).await?.is_none() {
                    let req = token::CreateRequest {
                        id: Some(t.clone()),
                        policies: vec!["root".into()],
                        ..Default::default()
                    };
                    active
                        .tokens
                        .create(token::Issuer::Root, req, "auth/token/root")
                        .await?;
                }
                t
            }
            _ => stored,
        }
    } else {
        let (_, t) = core.initialize(1, 1, opts.root_token.clone()).await?;
        shroud_core::secret_file::write_atomic(&token_file, t.expose().as_bytes(), 0o600)
            .map_err(io(format!("cannot write {}", token_file.display())))?;
        t
    };
    let addr = listener
        .local_addr()
        .map_err(io("cannot read listener address"))?;
    for n in &notes {
        eprintln!("warning: {n}");
    }
    println!("shroud dev server listening on http://{addr} (plain HTTP, loopback only)");
    println!(
        "data directory: {}{}",
        dir.display(),
        if _tmp.is_some() {
            " (temporary, deleted on exit)"
        } else {
            ""
        }
    );
    println!("storage: sqlite, seal: static key file (dev mode; never use it in production)");
    println!();
    println!("root token: {}", root.expose());
    println!();
    println!("    export SHROUD_ADDR=http://{addr}");
    println!("    export SHROUD_TOKEN={}", root.expose());
    println!();
    use std::io::Write;
    let _ = std::io::stdout().flush();
    serve(listener, core, None).await
}

/// Runs a server from a TOML configuration file until Ctrl-C / SIGTERM.
pub async fn serve_config(path: PathBuf) -> Result<(), ServerError> {
    let text =
        std::fs::read_to_string(&path).map_err(io(format!("cannot read {}", path.display())))?;
    let cfg = config::Config::parse(&text)
        .map_err(|e| ServerError::Config(format!("{}: {e}", path.display())))?;
    let notes = hygiene::harden();
    let storage: Arc<dyn Storage> = match cfg.storage.kind.as_str() {
        "memory" => Arc::new(shroud_core::MemoryStorage::new()),
        _ => open_sqlite(cfg.storage.path.as_deref().unwrap_or(Path::new(".")))?,
    };
    let seal = match (&cfg.seal.kind, &cfg.seal.key_file) {
        (Some(k), Some(f)) if k == "static" => SealKind::Static {
            key_file: f.clone(),
        },
        _ => SealKind::Shamir,
    };
    let core = Core::new(storage, seal.clone());
    core.rate_limiter.set_config(cfg.rate_limit.to_config());
    let tls = if cfg.listener.tls_disable {
        None
    } else {
        let ident = match (&cfg.listener.tls_cert_file, &cfg.listener.tls_key_file) {
            (Some(c), Some(k)) => tls::load(c, k)?,
            _ => {
                let dir = cfg
                    .storage
                    .path
                    .clone()
                    .unwrap_or_else(std::env::temp_dir)
                    .join("tls");
                let mut names = vec![
                    "localhost".to_owned(),
                    "127.0.0.1".to_owned(),
                    "::1".to_owned(),
                ];
                if !cfg.listener.address.ip().is_unspecified() {
                    names.push(cfg.listener.address.ip().to_string());
                }
                let (ident, created) = tls::self_signed(&dir, names)?;
                println!(
                    "{} self-signed TLS certificate {}",
                    if created { "generated" } else { "using" },
                    dir.join("cert.pem").display()
                );
                ident
            }
        };
        println!("TLS certificate fingerprint: {}", ident.fingerprint);
        println!("    export SHROUD_TLS_FINGERPRINT={}", ident.fingerprint);
        Some(tokio_rustls::TlsAcceptor::from(ident.config))
    };
    let listener = TcpListener::bind(cfg.listener.address)
        .await
        .map_err(|source| ServerError::Bind {
            addr: cfg.listener.address,
            source,
        })?;
    if let SealKind::Static { key_file } = &seal {
        if core.seal.is_initialized().await? {
            let key = shroud_crypto::read_key_file(key_file)?;
            core.unseal_with_key(&key).await?;
            println!("unsealed with the static key file {}", key_file.display());
        }
    }
    for n in &notes {
        eprintln!("warning: {n}");
    }
    let addr = listener
        .local_addr()
        .map_err(io("cannot read listener address"))?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    let status = core.seal.status().await?;
    println!("shroud server listening on {scheme}://{addr}");
    println!(
        "storage: {}, seal: {}, initialized: {}, sealed: {}",
        cfg.storage.kind,
        match seal {
            SealKind::Shamir => "shamir",
            SealKind::Static { .. } => "static",
        },
        status.initialized,
        status.sealed
    );
    if !status.initialized {
        println!("next: shroud operator init   (with SHROUD_ADDR={scheme}://{addr})");
    } else if status.sealed {
        println!("next: shroud operator unseal   (repeat until the threshold is reached)");
    }
    use std::io::Write;
    let _ = std::io::stdout().flush();
    serve(listener, core, tls).await
}

async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
    }
}

/// How long a client may take to send a request head, counted from when the server starts
/// reading it (a new connection, or the end of the previous response on a keep-alive one).
/// Slow-header clients and idle keep-alive connections are closed after it.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Accept loop: HTTP/1.1 keep-alive, optional TLS, the peer address passed to every request.
pub async fn serve(
    listener: TcpListener,
    core: Arc<Core>,
    tls: Option<tokio_rustls::TlsAcceptor>,
) -> Result<(), ServerError> {
    serve_with(listener, core, tls, HEADER_READ_TIMEOUT, coarse_timer::TICK).await
}

/// [`serve`] with another header-read timeout, enforced to within `tick` (tests use short ones).
pub async fn serve_with(
    listener: TcpListener,
    core: Arc<Core>,
    tls: Option<tokio_rustls::TlsAcceptor>,
    header_read_timeout: Duration,
    tick: Duration,
) -> Result<(), ServerError> {
    // SIGHUP reopens audit files, for logrotate's move-then-signal rotation.
    if let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        let core = core.clone();
        tokio::spawn(async move {
            while hup.recv().await.is_some() {
                if let Some(active) = core.active() {
                    active.audit.reopen_all();
                }
            }
        });
    }
    let shutdown = shutdown_signal();
    tokio::pin!(shutdown);
    // One timer for every connection's header-read timeout (see coarse_timer.rs).
    let timer = coarse_timer::CoarseTimer::with_tick(tick);
    loop {
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut shutdown => {
                eprintln!("shutting down");
                return Ok(());
            }
        };
        let _ = stream.set_nodelay(true);
        let core = core.clone();
        let tls = tls.clone();
        let timer = timer.clone();
        tokio::spawn(async move {
            let svc =
                hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let core = core.clone();
                    async move {
                        Ok::<_, std::convert::Infallible>(http::handle(core, req, Some(peer)).await)
                    }
                });
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(timer)
                .header_read_timeout(header_read_timeout)
                .keep_alive(true);
            let _ = TokioExecutor::new();
            let result = match tls {
                Some(acceptor) => {
                    match tokio::time::timeout(Duration::from_secs(30), acceptor.accept(stream))
                        .await
                    {
                        Ok(Ok(s)) => builder.serve_connection(TokioIo::new(s), svc).await,
                        _ => return,
                    }
                }
                None => builder.serve_connection(TokioIo::new(stream), svc).await,
            };
            if let Err(e) = result {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
}
