//! `shroud token`: create, look up and revoke tokens.
//!
//! A token to act on is read from stdin (`--stdin`), never from the command line.

use std::process::ExitCode;

use anyhow::Context;
use clap::{ArgGroup, Args, Subcommand, ValueEnum};
use serde::Serialize;
use shroud_client::{TokenCreateRequest, TokenInfo};
use shroud_core::duration;

use super::wrapping::{not_wrapped_hint, print_wrap_info};
use super::{parse_duration, parse_wrap_ttl, print_json, print_text, Ctx};
use crate::cli::Format;
use crate::{input, table};

const MAX_POLICIES: usize = 64;

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a child token of the current token
    #[command(long_about = "\
Create a token. It is a child of the current token (revoked with it) unless --orphan, and can \
only get policies the current token has, unless the current token is root. The new token is \
printed to standard output.

--type batch creates a batch token: not stored by the server, not renewable, unable to create child tokens, and cheap; for short-lived jobs. With --wrap-ttl the new token is response-wrapped: only a single-use wrapping token is printed, which the consumer turns into the token with 'shroud unwrap'.

Examples:
  shroud token create --policy app --ttl 1h
  shroud token create --policy app --ttl 24h --num-uses 10 --format json | jq -r .auth.client_token
  shroud token create --policy ci --ttl 10m --type batch
  shroud token create --policy app --wrap-ttl 5m")]
    Create(CreateArgs),
    /// Show a token's properties (the current token by default)
    #[command(long_about = "\
Show a token's policies, TTL and other properties: the current token by default, a token read \
from standard input with --stdin, or the token with accessor --accessor.

Examples:
  shroud token lookup
  shroud token lookup --accessor hmac-accessor-id
  printf '%s' \"$OTHER_TOKEN\" | shroud token lookup --stdin")]
    Lookup(LookupArgs),
    /// Revoke a token and its children
    #[command(long_about = "\
Revoke a token and all tokens created from it: the current one (--self), one read from \
standard input (--stdin), or the one with an accessor (--accessor).

Examples:
  shroud token revoke --self
  shroud token revoke --accessor hmac-accessor-id
  printf '%s' \"$OLD_TOKEN\" | shroud token revoke --stdin")]
    Revoke(RevokeArgs),
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Policy to attach (repeatable)
    #[arg(long = "policy", value_name = "POLICY")]
    pub policies: Vec<String>,
    /// Time to live, e.g. 30m, 1h, 24h
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub ttl: Option<String>,
    /// Number of uses before the token is revoked (0 = unlimited)
    #[arg(long, value_name = "N")]
    pub num_uses: Option<u64>,
    /// Whether the token can be renewed
    #[arg(long, value_name = "BOOL")]
    pub renewable: Option<bool>,
    /// Make a periodic token, renewable forever within this period
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub period: Option<String>,
    /// Create an orphan token (not revoked with its parent)
    #[arg(long)]
    pub orphan: bool,
    /// Name shown in lookups and the audit log
    #[arg(long, value_name = "NAME")]
    pub display_name: Option<String>,
    /// Token type
    #[arg(long = "type", value_enum, default_value_t = TokenType::Service)]
    pub token_type: TokenType,
    /// Wrap the response: print a single-use wrapping token valid this long instead
    #[arg(long, value_name = "DURATION", value_parser = parse_wrap_ttl)]
    pub wrap_ttl: Option<String>,
    /// Output format
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

/// Kinds of token `token create` can make.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum TokenType {
    /// Persisted, renewable, can have children (the default)
    #[default]
    Service,
    /// Not persisted, not renewable, no children; for short-lived, high-volume use
    Batch,
}

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("which").args(["accessor", "stdin"])))]
pub struct LookupArgs {
    /// Look up the token with this accessor
    #[arg(long, value_name = "ACCESSOR")]
    pub accessor: Option<String>,
    /// Read the token to look up from standard input
    #[arg(long)]
    pub stdin: bool,
    /// Output format
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("which").required(true).args(["self_", "accessor", "stdin"])))]
pub struct RevokeArgs {
    /// Revoke the current token
    #[arg(long = "self", id = "self_")]
    pub self_: bool,
    /// Revoke the token with this accessor
    #[arg(long, value_name = "ACCESSOR")]
    pub accessor: Option<String>,
    /// Read the token to revoke from standard input
    #[arg(long)]
    pub stdin: bool,
}

pub async fn run(cmd: TokenCommand, ctx: Ctx) -> anyhow::Result<ExitCode> {
    match cmd {
        TokenCommand::Create(a) => create(&ctx, a).await?,
        TokenCommand::Lookup(a) => lookup(&ctx, a).await?,
        TokenCommand::Revoke(a) => revoke(&ctx, a).await?,
    }
    Ok(ExitCode::SUCCESS)
}

/// `--format json` of `token create`: Vault's `auth` block, borrowing the token.
#[derive(Serialize)]
struct CreateJson<'a> {
    auth: AuthJson<'a>,
}

#[derive(Serialize)]
struct AuthJson<'a> {
    client_token: &'a str,
    accessor: &'a str,
    policies: &'a [String],
    token_policies: &'a [String],
    lease_duration: u64,
    renewable: bool,
    orphan: bool,
    token_type: &'a str,
    num_uses: u64,
}

async fn create(ctx: &Ctx, a: CreateArgs) -> anyhow::Result<()> {
    if a.policies.len() > MAX_POLICIES {
        anyhow::bail!("at most {MAX_POLICIES} policies can be attached");
    }
    let req = TokenCreateRequest {
        policies: a.policies,
        ttl: a.ttl,
        num_uses: a.num_uses,
        renewable: a.renewable,
        period: a.period,
        display_name: a.display_name,
        orphan: a.orphan,
        // Only sent when asked for, so servers without batch tokens keep working.
        token_type: (a.token_type == TokenType::Batch).then(|| "batch".to_owned()),
        ..Default::default()
    };
    if let Some(wrap_ttl) = &a.wrap_ttl {
        let w = ctx
            .client
            .token_create_wrapped(&req, wrap_ttl)
            .await
            .map_err(|e| not_wrapped_hint(e, "creating a token"))?;
        return print_wrap_info(&w, a.format);
    }
    let auth = ctx
        .client
        .token_create(&req)
        .await
        .context("creating a token")?;
    match a.format {
        Format::Json => print_json(&CreateJson {
            auth: AuthJson {
                client_token: auth.client_token.expose(),
                accessor: &auth.accessor,
                policies: &auth.policies,
                token_policies: &auth.token_policies,
                lease_duration: auth.lease_duration,
                renewable: auth.renewable,
                orphan: auth.orphan,
                token_type: &auth.token_type,
                num_uses: auth.num_uses,
            },
        }),
        Format::Table => {
            let pairs = vec![
                ("token", auth.client_token.expose().to_owned()),
                ("token_accessor", auth.accessor.clone()),
                ("token_duration", ttl_text(auth.lease_duration)),
                ("token_renewable", auth.renewable.to_string()),
                ("token_policies", auth.token_policies.join(", ")),
                ("policies", auth.policies.join(", ")),
            ];
            // The rendered table holds the token: zeroize it once printed.
            let text = zeroize::Zeroizing::new(table::render_pairs(&pairs));
            for (_, mut v) in pairs {
                zeroize::Zeroize::zeroize(&mut v);
            }
            print_text(&text)
        }
    }
}

fn ttl_text(secs: u64) -> String {
    if secs == 0 {
        "never expires".to_owned()
    } else {
        duration::go_string(secs)
    }
}

async fn lookup(ctx: &Ctx, a: LookupArgs) -> anyhow::Result<()> {
    let info = if let Some(acc) = &a.accessor {
        ctx.client
            .token_lookup_accessor(acc)
            .await
            .context("looking up the token by accessor")?
    } else if a.stdin {
        let token = input::read_secret_line("Token to look up (input is hidden): ")?;
        ctx.client
            .token_lookup(&token)
            .await
            .context("looking up the token")?
    } else {
        ctx.client
            .token_lookup_self()
            .await
            .context("looking up the current token")?
    };
    match a.format {
        Format::Json => print_json(&info),
        Format::Table => print_text(&table::render_pairs(&info_pairs(&info))),
    }
}

fn info_pairs(i: &TokenInfo) -> Vec<(&'static str, String)> {
    vec![
        ("accessor", i.accessor.clone()),
        ("display_name", i.display_name.clone()),
        ("policies", i.policies.join(", ")),
        ("ttl", ttl_text(i.ttl)),
        (
            "expire_time",
            i.expire_time.clone().unwrap_or_else(|| "-".to_owned()),
        ),
        ("creation_ttl", ttl_text(i.creation_ttl)),
        ("explicit_max_ttl", ttl_text(i.explicit_max_ttl)),
        (
            "period",
            i.period
                .map(duration::go_string)
                .unwrap_or_else(|| "-".into()),
        ),
        ("num_uses", i.num_uses.to_string()),
        ("renewable", i.renewable.to_string()),
        ("orphan", i.orphan.to_string()),
        ("path", i.path.clone()),
        ("type", i.token_type.clone()),
    ]
}

async fn revoke(ctx: &Ctx, a: RevokeArgs) -> anyhow::Result<()> {
    if a.self_ {
        ctx.client
            .token_revoke_self()
            .await
            .context("revoking the current token")?;
        eprintln!("current token revoked");
    } else if let Some(acc) = &a.accessor {
        ctx.client
            .token_revoke_accessor(acc)
            .await
            .context("revoking the token by accessor")?;
        eprintln!("token revoked");
    } else {
        let token = input::read_secret_line("Token to revoke (input is hidden): ")?;
        ctx.client
            .token_revoke(&token)
            .await
            .context("revoking the token")?;
        eprintln!("token revoked");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;

    fn token(args: &[&str]) -> Result<TokenCommand, clap::Error> {
        match Cli::try_parse_from(["shroud", "token"].iter().chain(args))?.command {
            Command::Token(c) => Ok(c),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn create_parses_all_options() {
        let TokenCommand::Create(a) = token(&[
            "create",
            "--policy",
            "a",
            "--policy",
            "b",
            "--ttl",
            "1h",
            "--num-uses",
            "3",
            "--renewable",
            "false",
            "--period",
            "24h",
            "--orphan",
            "--display-name",
            "ci",
            "--format",
            "json",
        ])
        .unwrap() else {
            panic!()
        };
        assert_eq!(a.policies, vec!["a", "b"]);
        assert_eq!(a.ttl.as_deref(), Some("1h"));
        assert_eq!(a.num_uses, Some(3));
        assert_eq!(a.renewable, Some(false));
        assert_eq!(a.period.as_deref(), Some("24h"));
        assert!(a.orphan);
        assert_eq!(a.display_name.as_deref(), Some("ci"));
        assert_eq!(a.format, Format::Json);
        assert_eq!(a.token_type, TokenType::Service);
        assert!(a.wrap_ttl.is_none());
    }

    #[test]
    fn create_parses_batch_type_and_wrap_ttl() {
        let TokenCommand::Create(a) = token(&[
            "create",
            "--policy",
            "ci",
            "--type",
            "batch",
            "--wrap-ttl",
            "5m",
        ])
        .unwrap() else {
            panic!()
        };
        assert_eq!(a.token_type, TokenType::Batch);
        assert_eq!(a.wrap_ttl.as_deref(), Some("5m"));
        assert!(token(&["create", "--type", "recovery"]).is_err());
        assert!(token(&["create", "--wrap-ttl", "0s"]).is_err());
        assert!(token(&["create", "--wrap-ttl", "later"]).is_err());
    }

    #[test]
    fn bad_durations_are_usage_errors() {
        let err = token(&["create", "--ttl", "1 hour"]).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert!(token(&["create", "--period", "-5s"]).is_err());
        assert!(token(&["create", "--renewable", "maybe"]).is_err());
    }

    #[test]
    fn revoke_needs_exactly_one_target() {
        assert!(token(&["revoke"]).is_err());
        assert!(token(&["revoke", "--self", "--stdin"]).is_err());
        assert!(token(&["revoke", "--self"]).is_ok());
        assert!(token(&["revoke", "--accessor", "acc"]).is_ok());
        assert!(token(&["revoke", "--stdin"]).is_ok());
    }

    #[test]
    fn tokens_are_not_accepted_as_arguments() {
        assert!(token(&["lookup", "hvs.sometoken"]).is_err());
        assert!(token(&["revoke", "hvs.sometoken"]).is_err());
        assert!(token(&["lookup", "--accessor", "a", "--stdin"]).is_err());
    }
}
