//! One module per command group; [`run`] dispatches to them.

pub mod approle;
pub mod audit;
pub mod auth;
pub mod completions;
pub mod login;
pub mod operator;
pub mod policy;
pub mod secret;
pub mod server;
pub mod token;
pub mod transit;
pub mod wrapping;

use std::collections::BTreeMap;
use std::future::Future;
use std::process::ExitCode;

use anyhow::Context;
use serde::Serialize;
use shroud_client::Client;

use crate::cli::{Cli, Command, GlobalArgs};
use crate::connection::{self, TokenSource};
use crate::report::hinted;

/// Longest name of a transit key, AppRole role or mount accepted from the command line.
pub const MAX_NAME_BYTES: usize = 256;

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
        Command::Transit(args) => with_client(&global, |ctx| transit::run(args, ctx)),
        Command::Auth(cmd) => with_client(&global, |ctx| auth::run(cmd, ctx)),
        Command::Approle(args) => with_client(&global, |ctx| approle::run(args, ctx)),
        Command::Unwrap(args) => with_client(&global, |ctx| wrapping::run(args, ctx)),
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

/// Validates a duration with shroud's parser (clap value parser) and passes it on as typed:
/// the server accepts the same syntax.
pub fn parse_duration(s: &str) -> Result<String, String> {
    shroud_core::duration::parse(s)
        .map(|_| s.trim().to_owned())
        .map_err(|e| format!("{e}: use a number of seconds or units like 90s, 30m, 1h"))
}

/// A response-wrapping TTL (clap value parser): a duration above zero, as Vault requires.
pub fn parse_wrap_ttl(s: &str) -> Result<String, String> {
    let d = shroud_core::duration::parse(s)
        .map_err(|e| format!("{e}: use a duration like 60s, 5m or 1h"))?;
    if d.as_secs() == 0 {
        return Err("the wrap TTL must be at least one second".to_owned());
    }
    Ok(s.trim().to_owned())
}

/// Checks the name of a transit key or an AppRole role: one path segment, printable, bounded.
/// `what` names the kind of object in the message ("key", "role").
pub fn check_name(what: &str, name: &str, hint: &str) -> anyhow::Result<()> {
    if name.is_empty()
        || name.len() > MAX_NAME_BYTES
        || name.contains('/')
        || name == "."
        || name == ".."
        || name.chars().any(|c| c.is_control() || c.is_whitespace())
    {
        return Err(hinted(
            format!(
                "invalid {what} name {:?}",
                name.chars().take(64).collect::<String>()
            ),
            hint.to_owned(),
        ));
    }
    Ok(())
}

/// Checks a mount path given with `--mount`/`--path`: non-empty segments, none `.` or `..`.
pub fn check_mount(mount: &str) -> anyhow::Result<()> {
    let m = mount.trim_matches('/');
    if m.is_empty()
        || m.len() > MAX_NAME_BYTES
        || m.chars().any(|c| c.is_control() || c.is_whitespace())
        || m.split('/').any(|s| s.is_empty() || s == "." || s == "..")
    {
        return Err(hinted(
            format!(
                "invalid mount path {:?}",
                mount.chars().take(64).collect::<String>()
            ),
            "mount paths look like 'transit', 'approle' or 'team/approle'",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_single_printable_segments() {
        assert!(check_name("key", "orders-key_1.v2", "").is_ok());
        for bad in ["", "a/b", "..", ".", "a b", "a\nb", &"k".repeat(257)] {
            assert!(check_name("key", bad, "").is_err(), "{bad:?}");
        }
    }

    #[test]
    fn mounts_may_nest_but_not_escape() {
        assert!(check_mount("transit").is_ok());
        assert!(check_mount("team/transit/").is_ok());
        for bad in ["", "/", "a//b", "../sys", "a/./b", "a b"] {
            assert!(check_mount(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn wrap_ttl_must_be_positive() {
        assert_eq!(parse_wrap_ttl("5m").unwrap(), "5m");
        assert_eq!(parse_wrap_ttl("300").unwrap(), "300");
        assert!(parse_wrap_ttl("0").is_err());
        assert!(parse_wrap_ttl("-5s").is_err());
        assert!(parse_wrap_ttl("soon").is_err());
    }
}
