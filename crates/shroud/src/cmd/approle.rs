//! `shroud approle`: AppRole roles, role ids and secret ids (auth method mounted at
//! `auth/approle/` unless `--mount`). Logging in is `shroud login --method approle`.
//!
//! A secret id is printed only by `secret-id` (that is its point), on stdout alone so it can
//! be piped; with `--wrap-ttl` only a single-use wrapping token is printed instead.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};
use serde::Serialize;
use shroud_client::{AppRole, RoleRequest, SecretIdRequest};
use shroud_core::duration;
use zeroize::Zeroizing;

use super::wrapping::{not_wrapped_hint, print_wrap_info, print_wrapping_token};
use super::{check_mount, check_name, parse_duration, parse_wrap_ttl, print_json, print_text, Ctx};
use crate::cli::Format;
use crate::report::hinted;
use crate::table;

const MAX_POLICIES: usize = 64;
const MAX_CIDRS: usize = 64;
const ROLE_NAME_HINT: &str = "role names are single words like 'ci' or 'billing-app'";

/// Flags of the `approle` group; `--mount` is accepted before or after the subcommand.
#[derive(Debug, Args)]
pub struct ApproleArgs {
    /// Mount path of the AppRole auth method, below auth/
    #[arg(long, global = true, default_value = "approle", value_name = "MOUNT")]
    pub mount: String,
    #[command(subcommand)]
    pub command: ApproleCommand,
}

#[derive(Debug, Subcommand)]
pub enum ApproleCommand {
    /// Create, read, list and delete roles
    #[command(subcommand)]
    Role(RoleCommand),
    /// Print a role's role id (the non-secret half of the login)
    #[command(long_about = "\
Print the role id of the role NAME. It identifies the role; it is not secret by itself, but \
together with a secret id it logs in, so hand the two out through different channels.

Example:
  shroud approle role-id ci")]
    RoleId(RoleNameArgs),
    /// Create a secret id for a role and print it (or a wrapping token)
    #[command(long_about = "\
Create a secret id for the role NAME and print it alone on standard output; its accessor, TTL \
and number of uses go to standard error. With --wrap-ttl, the secret id is response-wrapped: \
only a single-use wrapping token is printed (TTL on standard error), which the consumer turns \
into the secret id with 'shroud unwrap'. --num-uses, --ttl and --cidr restrict this secret id \
further than the role does.

Examples:
  shroud approle secret-id ci | shroud login --method approle --role-id \"$ROLE_ID\"
  shroud approle secret-id ci --wrap-ttl 5m --num-uses 1 > wrapped.txt
  shroud approle secret-id ci --format json")]
    SecretId(SecretIdArgs),
}

#[derive(Debug, Subcommand)]
pub enum RoleCommand {
    /// Create or update a role
    #[command(long_about = "\
Create the role NAME, or update the given settings of an existing one. Tokens issued by a \
login with this role get the --policy policies and --token-ttl; its secret ids live \
--secret-id-ttl, allow --secret-id-num-uses logins (0 = unlimited) and are accepted only \
from the --cidr blocks.

Examples:
  shroud approle role write ci --policy deploy --token-ttl 20m --secret-id-ttl 24h
  shroud approle role write batch --policy etl --secret-id-num-uses 1 --cidr 10.0.0.0/8")]
    Write(RoleWriteArgs),
    /// Show a role's settings
    #[command(long_about = "\
Show the settings of the role NAME.

Example:
  shroud approle role read ci --format json")]
    Read(RoleReadArgs),
    /// List roles
    #[command(
        visible_alias = "list",
        long_about = "\
List the names of the roles.

Example:
  shroud approle role ls"
    )]
    Ls(LsArgs),
    /// Delete a role (its secret ids stop working)
    #[command(
        visible_alias = "remove",
        long_about = "\
Delete the role NAME and its secret ids. Tokens already issued stay valid until they expire \
or are revoked.

Example:
  shroud approle role rm ci"
    )]
    Rm(RoleNameArgs),
}

#[derive(Debug, Args)]
pub struct RoleWriteArgs {
    /// Role name
    pub name: String,
    /// Policy of the issued tokens (repeatable)
    #[arg(long = "policy", value_name = "POLICY")]
    pub policies: Vec<String>,
    /// TTL of the issued tokens
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub token_ttl: Option<String>,
    /// Lifetime of secret ids (0 = no expiry)
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub secret_id_ttl: Option<String>,
    /// Logins allowed per secret id (0 = unlimited)
    #[arg(long, value_name = "N")]
    pub secret_id_num_uses: Option<u64>,
    /// Source address block allowed to log in (repeatable), e.g. 10.0.0.0/8
    #[arg(long = "cidr", value_name = "CIDR", value_parser = parse_cidr)]
    pub cidrs: Vec<String>,
}

#[derive(Debug, Args)]
pub struct RoleReadArgs {
    /// Role name
    pub name: String,
    /// Output format
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct RoleNameArgs {
    /// Role name
    pub name: String,
}

#[derive(Debug, Args)]
pub struct LsArgs {
    /// Output format
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct SecretIdArgs {
    /// Role name
    pub name: String,
    /// Wrap the response: print a single-use wrapping token valid this long instead
    #[arg(long, value_name = "DURATION", value_parser = parse_wrap_ttl)]
    pub wrap_ttl: Option<String>,
    /// Logins allowed with this secret id
    #[arg(long, value_name = "N")]
    pub num_uses: Option<u64>,
    /// Lifetime of this secret id
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub ttl: Option<String>,
    /// Source address block allowed to use it (repeatable)
    #[arg(long = "cidr", value_name = "CIDR", value_parser = parse_cidr)]
    pub cidrs: Vec<String>,
    /// Output format: table prints the value alone on stdout; json the whole response
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

/// An address (`10.1.2.3`) or a CIDR block (`10.0.0.0/8`, `fd00::/8`), as Vault accepts.
pub fn parse_cidr(s: &str) -> Result<String, String> {
    let err = || format!("{s:?} is not an address or CIDR block like 10.0.0.0/8");
    let (addr, len) = match s.split_once('/') {
        Some((a, l)) => (a, Some(l)),
        None => (s, None),
    };
    let ip: IpAddr = addr.parse().map_err(|_| err())?;
    if let Some(l) = len {
        let bits: u8 = l.parse().map_err(|_| err())?;
        let max = if ip.is_ipv4() { 32 } else { 128 };
        if bits > max {
            return Err(err());
        }
    }
    Ok(s.to_owned())
}

fn check_role(name: &str) -> anyhow::Result<()> {
    check_name("role", name, ROLE_NAME_HINT)
}

fn role_not_found(name: &str) -> anyhow::Error {
    hinted(
        format!("role {name} not found"),
        "list roles with 'shroud approle role ls'",
    )
}

pub async fn run(args: ApproleArgs, ctx: Ctx) -> anyhow::Result<ExitCode> {
    check_mount(&args.mount)?;
    let approle = ctx.client.approle(&args.mount);
    match args.command {
        ApproleCommand::Role(cmd) => role(&approle, cmd).await?,
        ApproleCommand::RoleId(a) => {
            check_role(&a.name)?;
            let id = approle.role_id(&a.name).await.map_err(|e| {
                if e.is_not_found() {
                    role_not_found(&a.name)
                } else {
                    anyhow::Error::new(e).context(format!("reading the role id of {}", a.name))
                }
            })?;
            print_text(&format!("{id}\n"))?;
        }
        ApproleCommand::SecretId(a) => secret_id(&approle, a).await?,
    }
    Ok(ExitCode::SUCCESS)
}

async fn role(approle: &AppRole<'_>, cmd: RoleCommand) -> anyhow::Result<()> {
    match cmd {
        RoleCommand::Write(a) => {
            check_role(&a.name)?;
            if a.policies.len() > MAX_POLICIES {
                anyhow::bail!("at most {MAX_POLICIES} policies can be attached");
            }
            if a.cidrs.len() > MAX_CIDRS {
                anyhow::bail!("at most {MAX_CIDRS} CIDR blocks can be given");
            }
            let req = RoleRequest {
                token_policies: a.policies,
                token_ttl: a.token_ttl,
                secret_id_ttl: a.secret_id_ttl,
                secret_id_num_uses: a.secret_id_num_uses,
                secret_id_bound_cidrs: a.cidrs,
            };
            approle
                .write_role(&a.name, &req)
                .await
                .with_context(|| format!("writing role {}", a.name))?;
            eprintln!("role {} written", a.name);
        }
        RoleCommand::Read(a) => {
            check_role(&a.name)?;
            let settings = approle
                .read_role(&a.name)
                .await
                .with_context(|| format!("reading role {}", a.name))?
                .ok_or_else(|| role_not_found(&a.name))?;
            match a.format {
                Format::Json => print_json(&settings)?,
                Format::Table => print_text(&table::render_pairs(&setting_pairs(&settings)))?,
            }
        }
        RoleCommand::Ls(a) => {
            let mut names = approle.list_roles().await.context("listing roles")?;
            names.sort();
            match a.format {
                Format::Json => print_json(&names)?,
                Format::Table => print_text(
                    &names
                        .iter()
                        .map(|n| format!("{}\n", table::printable(n)))
                        .collect::<String>(),
                )?,
            }
        }
        RoleCommand::Rm(a) => {
            check_role(&a.name)?;
            approle
                .delete_role(&a.name)
                .await
                .with_context(|| format!("deleting role {}", a.name))?;
            eprintln!("role {} deleted", a.name);
        }
    }
    Ok(())
}

/// Role settings as table rows: strings as they are, lists comma-joined, the rest as JSON.
fn setting_pairs(settings: &BTreeMap<String, serde_json::Value>) -> Vec<(&str, String)> {
    settings
        .iter()
        .map(|(k, v)| {
            let text = match v {
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Null => "-".to_owned(),
                serde_json::Value::Array(items) => items
                    .iter()
                    .map(|i| match i {
                        serde_json::Value::String(s) => s.clone(),
                        other => other.to_string(),
                    })
                    .collect::<Vec<_>>()
                    .join(", "),
                other => other.to_string(),
            };
            (k.as_str(), text)
        })
        .collect()
}

/// `--format json` of an unwrapped `secret-id`.
#[derive(Serialize)]
struct SecretIdJson<'a> {
    secret_id: &'a str,
    secret_id_accessor: &'a str,
    secret_id_ttl: u64,
    secret_id_num_uses: u64,
}

async fn secret_id(approle: &AppRole<'_>, a: SecretIdArgs) -> anyhow::Result<()> {
    check_role(&a.name)?;
    if a.cidrs.len() > MAX_CIDRS {
        anyhow::bail!("at most {MAX_CIDRS} CIDR blocks can be given");
    }
    let req = SecretIdRequest {
        num_uses: a.num_uses,
        ttl: a.ttl,
        cidr_list: a.cidrs,
    };
    let what = format!("creating a secret id for role {}", a.name);
    if let Some(wrap_ttl) = &a.wrap_ttl {
        let w = approle
            .secret_id_wrapped(&a.name, &req, wrap_ttl)
            .await
            .map_err(|e| not_wrapped_hint(e, &what))?;
        return match a.format {
            Format::Json => print_wrap_info(&w, Format::Json),
            Format::Table => print_wrapping_token(&w),
        };
    }
    let s = approle.secret_id(&a.name, &req).await.context(what)?;
    let text = Zeroizing::new(match a.format {
        Format::Json => {
            let mut t = serde_json::to_string_pretty(&SecretIdJson {
                secret_id: s.secret_id.expose(),
                secret_id_accessor: &s.secret_id_accessor,
                secret_id_ttl: s.secret_id_ttl,
                secret_id_num_uses: s.secret_id_num_uses,
            })
            .context("encoding the result")?;
            t.push('\n');
            t
        }
        Format::Table => format!("{}\n", s.secret_id.expose()),
    });
    print_text(&text)?;
    if a.format == Format::Table {
        eprintln!(
            "secret id accessor: {}; ttl: {}; uses: {}",
            table::printable(&s.secret_id_accessor),
            if s.secret_id_ttl == 0 {
                "no expiry".to_owned()
            } else {
                duration::go_string(s.secret_id_ttl)
            },
            if s.secret_id_num_uses == 0 {
                "unlimited".to_owned()
            } else {
                s.secret_id_num_uses.to_string()
            }
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;

    fn approle(args: &[&str]) -> Result<ApproleArgs, clap::Error> {
        match Cli::try_parse_from(["shroud", "approle"].iter().chain(args))?.command {
            Command::Approle(a) => Ok(a),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn role_write_parses_every_option() {
        let a = approle(&[
            "role",
            "write",
            "ci",
            "--policy",
            "deploy",
            "--policy",
            "read",
            "--token-ttl",
            "20m",
            "--secret-id-ttl",
            "24h",
            "--secret-id-num-uses",
            "3",
            "--cidr",
            "10.0.0.0/8",
            "--cidr",
            "fd00::/8",
            "--mount",
            "ar",
        ])
        .unwrap();
        assert_eq!(a.mount, "ar");
        let ApproleCommand::Role(RoleCommand::Write(w)) = a.command else {
            panic!()
        };
        assert_eq!(w.name, "ci");
        assert_eq!(w.policies, vec!["deploy", "read"]);
        assert_eq!(w.token_ttl.as_deref(), Some("20m"));
        assert_eq!(w.secret_id_ttl.as_deref(), Some("24h"));
        assert_eq!(w.secret_id_num_uses, Some(3));
        assert_eq!(w.cidrs, vec!["10.0.0.0/8", "fd00::/8"]);
    }

    #[test]
    fn bad_cidrs_and_durations_are_usage_errors() {
        for bad in [
            "10.0.0.0/33",
            "10.0.0/8",
            "host.example",
            "fd00::/129",
            "10.0.0.0/x",
        ] {
            let err = approle(&["role", "write", "ci", "--cidr", bad]).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{bad}");
        }
        assert!(approle(&["role", "write", "ci", "--cidr", "192.168.1.7"]).is_ok());
        assert!(approle(&["role", "write", "ci", "--token-ttl", "soon"]).is_err());
        assert!(approle(&["secret-id", "ci", "--wrap-ttl", "0"]).is_err());
    }

    #[test]
    fn role_read_ls_rm_and_role_id_parse() {
        let a = approle(&["role", "read", "ci", "--format", "json"]).unwrap();
        assert_eq!(a.mount, "approle");
        assert!(matches!(
            a.command,
            ApproleCommand::Role(RoleCommand::Read(RoleReadArgs {
                format: Format::Json,
                ..
            }))
        ));
        assert!(matches!(
            approle(&["role", "ls"]).unwrap().command,
            ApproleCommand::Role(RoleCommand::Ls(_))
        ));
        assert!(matches!(
            approle(&["role", "rm", "ci"]).unwrap().command,
            ApproleCommand::Role(RoleCommand::Rm(_))
        ));
        let ApproleCommand::RoleId(r) =
            approle(&["--mount", "x", "role-id", "ci"]).unwrap().command
        else {
            panic!()
        };
        assert_eq!(r.name, "ci");
    }

    #[test]
    fn secret_id_parses_wrap_and_restrictions() {
        let ApproleCommand::SecretId(s) = approle(&[
            "secret-id",
            "ci",
            "--wrap-ttl",
            "5m",
            "--num-uses",
            "1",
            "--ttl",
            "10m",
            "--cidr",
            "127.0.0.1/32",
        ])
        .unwrap()
        .command
        else {
            panic!()
        };
        assert_eq!(s.wrap_ttl.as_deref(), Some("5m"));
        assert_eq!(s.num_uses, Some(1));
        assert_eq!(s.ttl.as_deref(), Some("10m"));
        assert_eq!(s.cidrs, vec!["127.0.0.1/32"]);
        assert_eq!(s.format, Format::Table);
    }

    #[test]
    fn secret_ids_are_never_arguments() {
        // No flag takes a secret id (custom secret ids would have to come from stdin).
        assert!(approle(&["secret-id", "ci", "--secret-id", "sid"]).is_err());
        assert!(approle(&["secret-id", "ci", "sid"]).is_err());
        assert!(approle(&["role-id", "ci", "sid"]).is_err());
    }

    #[test]
    fn settings_render_lists_and_scalars() {
        let mut m = BTreeMap::new();
        m.insert("token_policies".to_owned(), serde_json::json!(["a", "b"]));
        m.insert("token_ttl".to_owned(), serde_json::json!(1200));
        m.insert("bind_secret_id".to_owned(), serde_json::json!(true));
        m.insert("token_type".to_owned(), serde_json::json!("default"));
        let p = setting_pairs(&m);
        assert!(p.contains(&("token_policies", "a, b".to_owned())));
        assert!(p.contains(&("token_ttl", "1200".to_owned())));
        assert!(p.contains(&("token_type", "default".to_owned())));
    }
}
