//! One module per command group; [`run`] dispatches to them.

pub mod audit;
pub mod completions;
pub mod login;
pub mod operator;
pub mod policy;
pub mod secret;
pub mod server;
pub mod token;

use std::collections::BTreeMap;
use std::future::Future;
use std::process::ExitCode;

use anyhow::Context;
use serde::Serialize;
use shroud_client::Client;

use crate::cli::{Cli, Command, GlobalArgs};
use crate::connection::{self, TokenSource};

/// What a client command gets: a client for the resolved server and token, and where the token
/// came from (for messages).
pub struct Ctx {
    pub client: Client,
    pub token_source: TokenSource,
    pub env: BTreeMap<String, String>,
}

/// Runs the parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let global = cli.global;
    match cli.command {
        Command::Server(args) => server::run(args),
        Command::Completions(args) => completions::run(&args),
        Command::Audit(cmd) => audit::run(cmd),
        Command::Operator(cmd) => with_client(&global, |ctx| operator::run(cmd, ctx)),
        Command::Secret(cmd) => with_client(&global, |ctx| secret::run(cmd, ctx)),
        Command::Policy(cmd) => with_client(&global, |ctx| policy::run(cmd, ctx)),
        Command::Token(cmd) => with_client(&global, |ctx| token::run(cmd, ctx)),
        Command::Login(args) => with_client(&global, |ctx| login::run(args, ctx)),
    }
}

/// Resolves address and token, builds the client and runs `f` on a single-threaded runtime
/// (a CLI call is a handful of sequential requests).
fn with_client<F, Fut>(global: &GlobalArgs, f: F) -> anyhow::Result<ExitCode>
where
    F: FnOnce(Ctx) -> Fut,
    Fut: Future<Output = anyhow::Result<ExitCode>>,
{
    let env = connection::process_env();
    let settings = connection::resolve(global, &env, connection::read_token_file)?;
    let token_source = settings.token_source.clone();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(async move {
        let client = connection::client(settings)?;
        f(Ctx {
            client,
            token_source,
            env,
        })
        .await
    })
}

/// Pretty JSON of `value` plus a newline, to stdout.
pub fn print_json<T: Serialize + ?Sized>(value: &T) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, value).context("writing JSON")?;
    writeln!(out).context("writing to standard output")?;
    Ok(())
}

/// Text to stdout, failing (instead of panicking like `print!`) on a closed pipe.
pub fn print_text(text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .context("writing to standard output")
}
