//! `shroud operator`: initialise, unseal, seal, inspect and rotate the server.

use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use serde::Serialize;
use shroud_client::SealStatus;

use super::{print_json, print_text, Ctx};
use crate::cli::Format;
use crate::report::{hinted, EXIT_SEALED};
use crate::{input, table};

/// Most key shares a pipe may carry to `operator unseal` (Shamir caps shares at 255).
const MAX_UNSEAL_LINES: usize = 255;

#[derive(Debug, Subcommand)]
pub enum OperatorCommand {
    /// Initialize a new server: create the root key, its shares and a root token
    #[command(long_about = "\
Initialize a new server. The root key is split into --key-shares Shamir shares, any \
--key-threshold of which unseal the server, and an initial root token is created.

The shares and the root token are printed once and never stored by the server: keep each \
share with a different person or place, and revoke the root token once other tokens and \
policies are set up.

Example:
  shroud operator init --key-shares 5 --key-threshold 3
  shroud operator init --key-shares 1 --key-threshold 1 --format json > init.json")]
    Init(InitArgs),
    /// Submit an unseal key share (read from stdin or a hidden prompt, never from arguments)
    #[command(long_about = "\
Submit one unseal key share. On a terminal the key is read from a prompt without echo; \
otherwise every non-empty line of standard input is submitted as a share until the server is \
unsealed. Keys are never accepted as arguments, which would expose them to other users (ps) and \
to shell history.

Example:
  shroud operator unseal                      # prompts for a key
  shroud operator unseal < share-1.txt
  jq -r '.unseal_keys_b64[]' init.json | shroud operator unseal
  shroud operator unseal --reset              # discard shares submitted so far")]
    Unseal(UnsealArgs),
    /// Seal the server: forget the root key until it is unsealed again (needs sudo)
    #[command(long_about = "\
Seal the server. It drops its keys from memory and answers every request with 'sealed' until \
enough key shares are submitted again with 'shroud operator unseal'. Needs a token with sudo \
on sys/seal (the root token).

Example:
  shroud operator seal")]
    Seal,
    /// Show whether the server is initialized and sealed (exit code 2 when sealed)
    #[command(long_about = "\
Show the server's seal status. Exit code 0 when unsealed, 2 when sealed, 1 on error (as \
'vault status'), so scripts can wait for an unsealed server.

Example:
  shroud operator status
  until shroud operator status >/dev/null; do sleep 1; done")]
    Status(StatusArgs),
    /// Add a new encryption key term to the keyring (online)
    #[command(long_about = "\
Rotate the keyring: add a new key term used for all new writes. Existing entries stay readable \
with their old term. Needs a token with sudo on sys/rotate.

Example:
  shroud operator rotate")]
    Rotate,
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Number of key shares to split the root key into
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u8).range(1..))]
    pub key_shares: u8,
    /// Number of shares needed to unseal
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u8).range(1..))]
    pub key_threshold: u8,
    /// Output format
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct UnsealArgs {
    /// Discard the key shares submitted so far
    #[arg(long)]
    pub reset: bool,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Output format
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

pub async fn run(cmd: OperatorCommand, ctx: Ctx) -> anyhow::Result<ExitCode> {
    match cmd {
        OperatorCommand::Init(a) => init(&ctx, &a).await,
        OperatorCommand::Unseal(a) => unseal(&ctx, &a).await,
        OperatorCommand::Seal => {
            ctx.client.seal().await.context("sealing the server")?;
            eprintln!("server sealed");
            Ok(ExitCode::SUCCESS)
        }
        OperatorCommand::Status(a) => status(&ctx, &a).await,
        OperatorCommand::Rotate => rotate(&ctx).await,
    }
}

/// The JSON shape of `vault operator init -format=json`, borrowing the secrets so no
/// unzeroized copy is made.
#[derive(Serialize)]
struct InitJson<'a> {
    unseal_keys_hex: Vec<&'a str>,
    unseal_keys_b64: Vec<&'a str>,
    unseal_shares: u8,
    unseal_threshold: u8,
    root_token: &'a str,
}

async fn init(ctx: &Ctx, a: &InitArgs) -> anyhow::Result<ExitCode> {
    if a.key_threshold > a.key_shares {
        return Err(crate::report::usage(
            format!(
                "--key-threshold ({}) cannot be larger than --key-shares ({})",
                a.key_threshold, a.key_shares
            ),
            None,
        ));
    }
    let r = ctx
        .client
        .init(a.key_shares, a.key_threshold)
        .await
        .context("initializing the server")?;
    match a.format {
        Format::Json => print_json(&InitJson {
            unseal_keys_hex: r.keys.iter().map(|k| k.expose()).collect(),
            unseal_keys_b64: r.keys_base64.iter().map(|k| k.expose()).collect(),
            unseal_shares: a.key_shares,
            unseal_threshold: a.key_threshold,
            root_token: r.root_token.expose(),
        })?,
        Format::Table => {
            // Holds the shares and the root token: zeroized on drop.
            let mut out = zeroize::Zeroizing::new(String::new());
            let keys = if r.keys_base64.len() == r.keys.len() {
                &r.keys_base64
            } else {
                &r.keys
            };
            for (i, k) in keys.iter().enumerate() {
                out.push_str(&format!("Unseal Key {}: {}\n", i + 1, k.expose()));
            }
            out.push_str(&format!(
                "\nInitial Root Token: {}\n",
                r.root_token.expose()
            ));
            print_text(&out)?;
        }
    }
    eprintln!(
        "\nwarning: the server was initialized with {} key shares and a threshold of {}.\n\
         These keys and the root token are shown only once and the server does not keep them.\n\
         Store each share separately and safely: {} of them are needed to unseal the server \
         after every restart. Revoke the root token once other tokens and policies exist.",
        a.key_shares, a.key_threshold, a.key_threshold
    );
    Ok(ExitCode::SUCCESS)
}

async fn unseal(ctx: &Ctx, a: &UnsealArgs) -> anyhow::Result<ExitCode> {
    let status = if a.reset {
        ctx.client
            .unseal_reset()
            .await
            .context("resetting the unseal progress")?
    } else if input::stdin_is_terminal() {
        let key = input::read_secret_line("Unseal key share (input is hidden): ")?;
        ctx.client
            .unseal(&key)
            .await
            .context("submitting the unseal key")?
    } else {
        let keys = input::read_secret_lines(MAX_UNSEAL_LINES)?;
        if keys.is_empty() {
            bail!("no unseal key on standard input");
        }
        let mut last = None;
        for key in &keys {
            let s = ctx
                .client
                .unseal(key)
                .await
                .context("submitting the unseal key")?;
            let sealed = s.sealed;
            last = Some(s);
            if !sealed {
                break;
            }
        }
        // Invariant: `keys` is non-empty, so the loop ran at least once.
        last.context("no unseal key submitted")?
    };
    if status.sealed {
        eprintln!(
            "server still sealed: {}/{} key shares submitted",
            status.progress, status.t
        );
    } else {
        eprintln!("server unsealed");
    }
    Ok(ExitCode::SUCCESS)
}

async fn status(ctx: &Ctx, a: &StatusArgs) -> anyhow::Result<ExitCode> {
    let s = ctx
        .client
        .seal_status()
        .await
        .context("reading the seal status")?;
    match a.format {
        Format::Json => print_json(&s)?,
        Format::Table => print_text(&table::render_pairs(&status_pairs(&s)))?,
    }
    Ok(if s.sealed {
        ExitCode::from(EXIT_SEALED)
    } else {
        ExitCode::SUCCESS
    })
}

fn status_pairs(s: &SealStatus) -> Vec<(&'static str, String)> {
    let mut pairs = vec![
        ("Seal Type", s.seal_type.clone()),
        ("Initialized", s.initialized.to_string()),
        ("Sealed", s.sealed.to_string()),
        ("Total Shares", s.n.to_string()),
        ("Threshold", s.t.to_string()),
    ];
    if s.sealed {
        pairs.push(("Unseal Progress", format!("{}/{}", s.progress, s.t)));
    }
    if !s.version.is_empty() {
        pairs.push(("Version", s.version.clone()));
    }
    if !s.storage_type.is_empty() {
        pairs.push(("Storage Type", s.storage_type.clone()));
    }
    pairs
}

async fn rotate(ctx: &Ctx) -> anyhow::Result<ExitCode> {
    ctx.client.rotate().await.map_err(|e| {
        if e.is_permission_denied() {
            hinted(
                format!("rotating the keyring: {e}"),
                "rotation needs a token with sudo on sys/rotate, such as the root token",
            )
        } else {
            anyhow::Error::new(e).context("rotating the keyring")
        }
    })?;
    // The new term is informative only; a server without sys/key-status still rotated.
    match ctx.client.key_status().await {
        Ok(k) => eprintln!("keyring rotated: new key term {}", k.term),
        Err(e) => {
            tracing::debug!(error = %e, "sys/key-status unavailable");
            eprintln!("keyring rotated");
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use crate::cli::{Cli, Command};
    use clap::Parser;

    use super::*;

    fn op(args: &[&str]) -> Result<OperatorCommand, clap::Error> {
        match Cli::try_parse_from(["shroud", "operator"].iter().chain(args))?.command {
            Command::Operator(c) => Ok(c),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn init_defaults_to_five_shares_threshold_three() {
        let OperatorCommand::Init(a) = op(&["init"]).unwrap() else {
            panic!()
        };
        assert_eq!(
            (a.key_shares, a.key_threshold, a.format),
            (5, 3, Format::Table)
        );
        let OperatorCommand::Init(a) = op(&[
            "init",
            "--key-shares",
            "1",
            "--key-threshold",
            "1",
            "--format",
            "json",
        ])
        .unwrap() else {
            panic!()
        };
        assert_eq!(
            (a.key_shares, a.key_threshold, a.format),
            (1, 1, Format::Json)
        );
    }

    #[test]
    fn init_rejects_zero_and_out_of_range_shares() {
        assert!(op(&["init", "--key-shares", "0"]).is_err());
        assert!(op(&["init", "--key-shares", "256"]).is_err());
    }

    #[test]
    fn unseal_does_not_accept_a_key_argument() {
        let err = op(&["unseal", "c2VjcmV0LWtleQ=="]).unwrap_err();
        assert_eq!(err.exit_code(), 2);
    }

    #[test]
    fn status_pairs_show_progress_only_when_sealed() {
        let mut s = SealStatus {
            sealed: true,
            t: 3,
            n: 5,
            progress: 1,
            ..Default::default()
        };
        assert!(status_pairs(&s)
            .iter()
            .any(|(k, v)| *k == "Unseal Progress" && v == "1/3"));
        s.sealed = false;
        assert!(!status_pairs(&s)
            .iter()
            .any(|(k, _)| *k == "Unseal Progress"));
    }
}
