//! `shroud policy`: ACL policies (Vault HCL) at `sys/policies/acl`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::{Args, Subcommand};

use super::{print_json, print_text, Ctx};
use crate::cli::Format;
use crate::input;
use crate::report::hinted;

/// A policy document larger than this is a mistake (Vault's are a few KiB).
const MAX_POLICY_BYTES: usize = 1024 * 1024;
const MAX_POLICY_NAME_BYTES: usize = 128;

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Create or replace a policy from a file or stdin
    #[command(long_about = "\
Create or replace the ACL policy NAME from FILE, or from standard input when FILE is '-' or \
absent. Policies use Vault's HCL (or JSON) syntax.

Example:
  cat > app.hcl <<'EOF'
  path \"secret/data/app/*\" { capabilities = [\"read\"] }
  EOF
  shroud policy write app app.hcl")]
    Write(WriteArgs),
    /// Print a policy
    #[command(long_about = "\
Print the text of the ACL policy NAME.

Example:
  shroud policy read app")]
    Read(NameArgs),
    /// List policies
    #[command(
        visible_alias = "list",
        long_about = "\
List the names of all ACL policies.

Example:
  shroud policy ls
  shroud policy ls --format json"
    )]
    Ls(LsArgs),
    /// Delete a policy
    #[command(long_about = "\
Delete the ACL policy NAME. Tokens that have it lose its rights at once. The built-in 'root' \
and 'default' policies cannot be deleted.

Example:
  shroud policy rm app")]
    Rm(NameArgs),
}

#[derive(Debug, Args)]
pub struct WriteArgs {
    /// Policy name
    pub name: String,
    /// File holding the policy; '-' or absent for stdin
    pub file: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct NameArgs {
    /// Policy name
    pub name: String,
}

#[derive(Debug, Args)]
pub struct LsArgs {
    /// Output format
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

/// Policy names are single path segments (Vault lower-cases them server-side).
fn validate_name(name: &str) -> anyhow::Result<()> {
    if name.is_empty()
        || name.len() > MAX_POLICY_NAME_BYTES
        || name.contains('/')
        || name == "."
        || name == ".."
        || name.chars().any(|c| c.is_control() || c.is_whitespace())
    {
        return Err(hinted(
            format!(
                "invalid policy name {:?}",
                name.chars().take(64).collect::<String>()
            ),
            "policy names are single words like 'app-read'",
        ));
    }
    Ok(())
}

pub async fn run(cmd: PolicyCommand, ctx: Ctx) -> anyhow::Result<ExitCode> {
    match cmd {
        PolicyCommand::Write(a) => {
            validate_name(&a.name)?;
            let bytes = input::read_content(a.file.as_deref(), MAX_POLICY_BYTES)?;
            let text = std::str::from_utf8(bytes.expose()).context("the policy is not UTF-8")?;
            if text.trim().is_empty() {
                bail!("the policy is empty");
            }
            ctx.client
                .policy_write(&a.name, text)
                .await
                .with_context(|| format!("writing policy {}", a.name))?;
            eprintln!("policy {} written", a.name);
        }
        PolicyCommand::Read(a) => {
            validate_name(&a.name)?;
            let text = ctx
                .client
                .policy_read(&a.name)
                .await
                .with_context(|| format!("reading policy {}", a.name))?
                .ok_or_else(|| {
                    hinted(
                        format!("policy {} not found", a.name),
                        "list policies with 'shroud policy ls'",
                    )
                })?;
            let mut text = text;
            if !text.ends_with('\n') {
                text.push('\n');
            }
            print_text(&text)?;
        }
        PolicyCommand::Ls(a) => {
            let mut names = ctx.client.policy_list().await.context("listing policies")?;
            names.sort();
            match a.format {
                Format::Json => print_json(&names)?,
                Format::Table => {
                    print_text(&names.iter().map(|n| format!("{n}\n")).collect::<String>())?
                }
            }
        }
        PolicyCommand::Rm(a) => {
            validate_name(&a.name)?;
            ctx.client
                .policy_delete(&a.name)
                .await
                .with_context(|| format!("deleting policy {}", a.name))?;
            eprintln!("policy {} deleted", a.name);
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_names_are_single_segments() {
        assert!(validate_name("app-read").is_ok());
        for bad in ["", "a/b", "..", "a b", "a\tb", &"p".repeat(129)] {
            assert!(validate_name(bad).is_err(), "{bad:?}");
        }
    }
}
