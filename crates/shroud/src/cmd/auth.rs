//! `shroud auth`: enable, list and disable auth methods (`sys/auth`).

use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};

use super::{check_mount, check_name, print_json, print_text, Ctx};
use crate::cli::Format;
use crate::table;

/// Longest description accepted.
const MAX_DESCRIPTION_BYTES: usize = 1024;

#[derive(Debug, Subcommand)]
pub enum AuthCommand {
    /// Enable an auth method
    #[command(long_about = "\
Enable an auth method of type TYPE at auth/PATH (PATH defaults to TYPE). shroud implements \
approle, jwt and kubernetes (the token method is always enabled); against Vault, any of its \
types works. Needs a token with sudo on sys/auth.

Examples:
  shroud auth enable approle
  shroud auth enable kubernetes --path k8s-prod --description 'prod cluster'")]
    Enable(EnableArgs),
    /// List enabled auth methods
    #[command(
        visible_alias = "ls",
        long_about = "\
List the enabled auth methods: path, type, accessor and description.

Examples:
  shroud auth list
  shroud auth list --format json"
    )]
    List(ListArgs),
    /// Disable an auth method
    #[command(long_about = "\
Disable the auth method at auth/PATH. Every token issued through it is revoked, and its roles \
and configuration are deleted. The token method cannot be disabled.

Example:
  shroud auth disable approle")]
    Disable(DisableArgs),
}

#[derive(Debug, Args)]
pub struct EnableArgs {
    /// Auth method type: approle, jwt, kubernetes
    pub method_type: String,
    /// Path to enable it at, below auth/ [default: TYPE]
    #[arg(long, value_name = "PATH")]
    pub path: Option<String>,
    /// Description shown by 'auth list'
    #[arg(long, value_name = "TEXT")]
    pub description: Option<String>,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Output format
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct DisableArgs {
    /// Path of the method, below auth/
    pub path: String,
}

pub async fn run(cmd: AuthCommand, ctx: Ctx) -> anyhow::Result<ExitCode> {
    match cmd {
        AuthCommand::Enable(a) => {
            check_name(
                "auth method type",
                &a.method_type,
                "types are words like 'approle', 'jwt' or 'kubernetes'",
            )?;
            let path = a.path.as_deref().unwrap_or(&a.method_type);
            check_mount(path)?;
            let description = a.description.as_deref().unwrap_or("");
            if description.len() > MAX_DESCRIPTION_BYTES {
                anyhow::bail!("the description is longer than {MAX_DESCRIPTION_BYTES} bytes");
            }
            ctx.client
                .auth_enable(path, &a.method_type, description)
                .await
                .with_context(|| format!("enabling {} auth at auth/{path}", a.method_type))?;
            eprintln!(
                "{} auth method enabled at auth/{}/",
                a.method_type,
                path.trim_matches('/')
            );
        }
        AuthCommand::List(a) => {
            let mounts = ctx
                .client
                .auth_list()
                .await
                .context("listing auth methods")?;
            match a.format {
                Format::Json => print_json(&mounts)?,
                Format::Table => {
                    let rows: Vec<Vec<String>> = mounts
                        .iter()
                        .map(|(path, m)| {
                            vec![
                                path.clone(),
                                m.method_type.clone(),
                                m.accessor.clone(),
                                m.description.clone(),
                            ]
                        })
                        .collect();
                    print_text(&table::render(
                        &["PATH", "TYPE", "ACCESSOR", "DESCRIPTION"],
                        &rows,
                    ))?;
                }
            }
        }
        AuthCommand::Disable(a) => {
            check_mount(&a.path)?;
            ctx.client
                .auth_disable(&a.path)
                .await
                .with_context(|| format!("disabling auth/{}", a.path.trim_matches('/')))?;
            eprintln!("auth method at auth/{}/ disabled", a.path.trim_matches('/'));
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;

    fn auth(args: &[&str]) -> Result<AuthCommand, clap::Error> {
        match Cli::try_parse_from(["shroud", "auth"].iter().chain(args))?.command {
            Command::Auth(c) => Ok(c),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn enable_parses_type_path_and_description() {
        let AuthCommand::Enable(a) = auth(&[
            "enable",
            "kubernetes",
            "--path",
            "k8s",
            "--description",
            "prod cluster",
        ])
        .unwrap() else {
            panic!()
        };
        assert_eq!(a.method_type, "kubernetes");
        assert_eq!(a.path.as_deref(), Some("k8s"));
        assert_eq!(a.description.as_deref(), Some("prod cluster"));
        let AuthCommand::Enable(a) = auth(&["enable", "approle"]).unwrap() else {
            panic!()
        };
        assert!(a.path.is_none());
        assert!(auth(&["enable"]).is_err());
    }

    #[test]
    fn list_and_disable_parse() {
        let AuthCommand::List(a) = auth(&["list", "--format", "json"]).unwrap() else {
            panic!()
        };
        assert_eq!(a.format, Format::Json);
        assert!(matches!(auth(&["ls"]).unwrap(), AuthCommand::List(_)));
        let AuthCommand::Disable(a) = auth(&["disable", "approle"]).unwrap() else {
            panic!()
        };
        assert_eq!(a.path, "approle");
        assert!(auth(&["disable"]).is_err());
    }
}
