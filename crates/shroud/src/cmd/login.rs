//! `shroud login`: verify a token and remember it in `~/.shroud-token`.

use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, ValueEnum};

use super::Ctx;
use crate::connection::{token_file_path, TokenSource};
use crate::input;
use crate::report::hinted;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum LoginMethod {
    /// An existing token, read from stdin or a hidden prompt
    #[default]
    Token,
}

/// Long help of the command, with examples.
pub const LONG_ABOUT: &str = "\
Read a token (from a prompt without echo on a terminal, else the first line of standard \
input), check it with the server (auth/token/lookup-self), and store it in ~/.shroud-token \
(mode 0600), where later commands find it when SHROUD_TOKEN and VAULT_TOKEN are unset. The \
token is never taken from the command line.

Examples:
  shroud login
  printf '%s' \"$TOKEN\" | shroud login";

#[derive(Debug, Args)]
pub struct LoginArgs {
    /// How to authenticate
    #[arg(long, value_enum, default_value_t = LoginMethod::Token)]
    pub method: LoginMethod,
}

pub async fn run(args: LoginArgs, ctx: Ctx) -> anyhow::Result<ExitCode> {
    let LoginMethod::Token = args.method;
    let path = token_file_path(&ctx.env).ok_or_else(|| {
        hinted(
            "HOME is not set, so there is nowhere to store the token",
            "set HOME, or export SHROUD_TOKEN instead of logging in",
        )
    })?;
    let token = input::read_secret_line("Token (input is hidden): ")?;
    let info = ctx
        .client
        .with_token(Some(token.clone()))
        .token_lookup_self()
        .await
        .map_err(|e| {
            if e.is_permission_denied() {
                hinted(
                    "the token was rejected by the server",
                    "check that it is valid and not expired or revoked",
                )
            } else {
                anyhow::Error::new(e).context("checking the token")
            }
        })?;
    shroud_core::secret_file::write_atomic(&path, token.expose().as_bytes(), 0o600)
        .with_context(|| format!("storing the token in {}", path.display()))?;
    eprintln!(
        "logged in: token stored in {} (policies: {})",
        path.display(),
        info.policies.join(", ")
    );
    if let TokenSource::Env(var) = ctx.token_source {
        eprintln!("warning: {var} is set and takes precedence over the stored token");
    }
    Ok(ExitCode::SUCCESS)
}
