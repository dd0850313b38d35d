//! `shroud server`: runs the server in this process.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use shroud_core::SecretString;
use shroud_server::DevOptions;

use crate::report::usage;

/// Default listen address of the dev server, as Vault's: 127.0.0.1:8200.
pub const DEFAULT_LISTEN: SocketAddr = SocketAddr::V4(std::net::SocketAddrV4::new(
    std::net::Ipv4Addr::LOCALHOST,
    8200,
));

/// Long help of the command, with examples.
pub const LONG_ABOUT: &str = "\
Run a shroud server.

With --dev: an in-process development server on a loopback address, plain HTTP, initialized and \
unsealed at start, with a root token printed to the terminal. State is kept in a temporary \
directory unless --data is given. Never use dev mode for real secrets.

Without --dev: a production server from a configuration file (--config): TLS, sealed at start \
until 'shroud operator unseal'.

Examples:
  shroud server --dev
  SHROUD_DEV_ROOT_TOKEN=dev-root shroud server --dev
  shroud server --dev --listen 127.0.0.1:8300 --data ./dev-data
  shroud server --config /etc/shroud/server.toml";

#[derive(Debug, Args)]
pub struct ServerArgs {
    /// Run a development server (loopback, plain HTTP, auto-unsealed, printed root token)
    #[arg(long)]
    pub dev: bool,
    /// Root token of the dev server instead of a random one (dev mode only). Prefer the
    /// environment variable: arguments are visible to other users in `ps`
    #[arg(
        long,
        env = "SHROUD_DEV_ROOT_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    pub dev_root_token: Option<String>,
    /// Address to listen on (dev mode only; loopback) [default: 127.0.0.1:8200]
    #[arg(long, requires = "dev", value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// Directory for the dev server's state [default: a temporary directory]
    #[arg(long, requires = "dev", value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// Server configuration file (required without --dev)
    #[arg(long, conflicts_with = "dev", value_name = "FILE")]
    pub config: Option<PathBuf>,
}

/// The server's runtime and mode, decided from the arguments.
#[derive(Debug)]
pub enum Mode {
    Dev(DevOptions),
    Config(PathBuf),
}

/// Checks the arguments and decides what to run.
pub fn mode(args: ServerArgs) -> anyhow::Result<Mode> {
    if args.dev {
        let listen = args.listen.unwrap_or(DEFAULT_LISTEN);
        if !listen.ip().is_loopback() {
            return Err(usage(
                format!("the dev server only listens on loopback addresses, not {listen}"),
                Some(
                    "dev mode has no TLS and a printed root token; for a server reachable \
                     from other hosts use 'shroud server --config FILE'",
                ),
            ));
        }
        let root_token = match args.dev_root_token {
            Some(t) if t.trim().is_empty() => {
                return Err(usage("--dev-root-token may not be empty", None))
            }
            Some(t) => Some(SecretString::new(t)),
            None => None,
        };
        return Ok(Mode::Dev(DevOptions {
            listen,
            root_token,
            data_dir: args.data,
        }));
    }
    if args.dev_root_token.is_some() {
        // Not a usage error: SHROUD_DEV_ROOT_TOKEN may be exported in a shell that also
        // starts configured servers.
        tracing::warn!("--dev-root-token / SHROUD_DEV_ROOT_TOKEN is ignored without --dev");
    }
    match args.config {
        Some(path) => Ok(Mode::Config(path)),
        None => Err(usage(
            "a configuration file is required without --dev",
            Some("start a development server with 'shroud server --dev', or pass --config FILE"),
        )),
    }
}

pub fn run(args: ServerArgs) -> anyhow::Result<ExitCode> {
    let mode = mode(args)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(async move {
        match mode {
            Mode::Dev(opts) => shroud_server::serve_dev(opts)
                .await
                .context("dev server failed"),
            Mode::Config(path) => {
                let shown = path.display().to_string();
                shroud_server::serve_config(path)
                    .await
                    .with_context(|| format!("server with configuration {shown} failed"))
            }
        }
    })?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;

    fn server_args(args: &[&str]) -> Result<ServerArgs, clap::Error> {
        let cli = Cli::try_parse_from(["shroud", "server"].iter().chain(args))?;
        match cli.command {
            Command::Server(a) => Ok(a),
            other => panic!("parsed as {other:?}"),
        }
    }

    #[test]
    fn dev_mode_defaults_to_loopback_8200() {
        let Mode::Dev(opts) = mode(server_args(&["--dev"]).unwrap()).unwrap() else {
            panic!("not dev mode")
        };
        assert_eq!(opts.listen.to_string(), "127.0.0.1:8200");
        assert!(opts.root_token.is_none());
        assert!(opts.data_dir.is_none());
    }

    #[test]
    fn dev_options_are_passed_through() {
        let a = server_args(&[
            "--dev",
            "--listen",
            "127.0.0.1:9999",
            "--dev-root-token",
            "root",
            "--data",
            "/tmp/d",
        ])
        .unwrap();
        let Mode::Dev(opts) = mode(a).unwrap() else {
            panic!("not dev mode")
        };
        assert_eq!(opts.listen.port(), 9999);
        assert_eq!(opts.root_token.unwrap().expose(), "root");
        assert_eq!(opts.data_dir, Some(PathBuf::from("/tmp/d")));
    }

    #[test]
    fn without_dev_a_config_is_required() {
        let err = mode(server_args(&[]).unwrap()).unwrap_err();
        let (text, code) = crate::report::render(&err);
        assert_eq!(code, 2);
        assert!(text.contains("configuration file is required"), "{text}");
        assert!(text.contains("hint: "), "{text}");
        assert!(matches!(
            mode(server_args(&["--config", "s.toml"]).unwrap()).unwrap(),
            Mode::Config(_)
        ));
    }

    #[test]
    fn dev_only_flags_need_dev() {
        for args in [&["--listen", "127.0.0.1:1"][..], &["--data", "d"][..]] {
            assert!(server_args(args).is_err(), "{args:?}");
        }
        assert!(server_args(&["--dev", "--config", "x"]).is_err());
    }

    #[test]
    fn dev_mode_refuses_non_loopback() {
        let err = mode(server_args(&["--dev", "--listen", "0.0.0.0:8200"]).unwrap()).unwrap_err();
        assert_eq!(crate::report::render(&err).1, 2);
    }
}
