//! `shroud unwrap`, and how wrapped responses (`--wrap-ttl`) are printed.
//!
//! A wrapping token stands for one response and works once: hand it to the consumer, who
//! unwraps it; if the unwrap fails because it was already used, someone else saw the secret.

use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use serde::Serialize;
use shroud_client::WrapInfo;
use shroud_core::duration;
use zeroize::Zeroizing;

use super::{print_text, Ctx};
use crate::cli::Format;
use crate::input;
use crate::report::hinted;
use crate::table;

/// Long help of `unwrap`, with examples.
pub const LONG_ABOUT: &str = "\
Read a wrapping token (from a prompt without echo on a terminal, else the first line of \
standard input), unwrap it (sys/wrapping/unwrap, authenticated by the wrapping token itself) \
and print the wrapped response's data and/or auth block as JSON. A wrapping token works once: \
if unwrapping fails because it was already used, treat the secret as compromised.

Examples:
  shroud approle secret-id app --wrap-ttl 5m > wrapped.txt
  shroud unwrap < wrapped.txt | jq -r .data.secret_id";

#[derive(Debug, Args)]
pub struct UnwrapArgs {}

pub async fn run(_args: UnwrapArgs, ctx: Ctx) -> anyhow::Result<ExitCode> {
    let token = input::read_secret_line("Wrapping token (input is hidden): ")?;
    let unwrapped = ctx.client.unwrap(&token).await.map_err(|e| {
        if matches!(e.status(), Some(400) | Some(403)) {
            hinted(
                format!("unwrapping failed: {e}"),
                "the wrapping token may have expired or already been unwrapped; if you did \
                 not unwrap it yourself, assume the wrapped secret was seen by someone else",
            )
        } else {
            anyhow::Error::new(e).context("unwrapping")
        }
    })?;
    // The text holds the unwrapped secret: zeroized once printed.
    let mut text =
        Zeroizing::new(serde_json::to_string_pretty(&unwrapped).context("encoding the result")?);
    text.push('\n');
    print_text(&text)?;
    Ok(ExitCode::SUCCESS)
}

/// `--format json` of a wrapped response: Vault's `wrap_info` block.
#[derive(Serialize)]
struct WrapJson<'a> {
    wrap_info: WrapInfoJson<'a>,
}

#[derive(Serialize)]
struct WrapInfoJson<'a> {
    token: &'a str,
    accessor: &'a str,
    ttl: u64,
    creation_time: &'a str,
    creation_path: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    wrapped_accessor: Option<&'a str>,
}

/// Prints a wrapped response: the Vault CLI's key/value table, or `{"wrap_info":{...}}`.
pub fn print_wrap_info(w: &WrapInfo, format: Format) -> anyhow::Result<()> {
    let text = Zeroizing::new(match format {
        Format::Json => {
            let mut s = serde_json::to_string_pretty(&WrapJson {
                wrap_info: WrapInfoJson {
                    token: w.token.expose(),
                    accessor: &w.accessor,
                    ttl: w.ttl,
                    creation_time: &w.creation_time,
                    creation_path: &w.creation_path,
                    wrapped_accessor: w.wrapped_accessor.as_deref(),
                },
            })
            .context("encoding the result")?;
            s.push('\n');
            s
        }
        Format::Table => {
            let mut pairs = vec![
                ("wrapping_token", w.token.expose().to_owned()),
                ("wrapping_accessor", w.accessor.clone()),
                ("wrapping_token_ttl", duration::go_string(w.ttl)),
                (
                    "wrapping_token_creation_time",
                    table::short_time(&w.creation_time),
                ),
                ("wrapping_token_creation_path", w.creation_path.clone()),
            ];
            if let Some(acc) = &w.wrapped_accessor {
                pairs.push(("wrapped_accessor", acc.clone()));
            }
            let t = table::render_pairs(&pairs);
            for (_, mut v) in pairs {
                zeroize::Zeroize::zeroize(&mut v);
            }
            t
        }
    });
    print_text(&text)
}

/// Prints only the wrapping token on stdout (so it can be piped or saved) and its TTL on
/// stderr.
pub fn print_wrapping_token(w: &WrapInfo) -> anyhow::Result<()> {
    let mut line = Zeroizing::new(String::with_capacity(w.token.expose().len() + 1));
    line.push_str(w.token.expose());
    line.push('\n');
    print_text(&line)?;
    eprintln!(
        "wrapping token ttl: {} (accessor {}); unwrap it once with 'shroud unwrap'",
        duration::go_string(w.ttl),
        table::printable(&w.accessor)
    );
    Ok(())
}

/// The error for a server that ignored `X-Vault-Wrap-TTL`.
pub fn not_wrapped_hint(e: shroud_client::ClientError, what: &str) -> anyhow::Error {
    if matches!(e, shroud_client::ClientError::NotWrapped) {
        hinted(
            format!("{what}: {e}"),
            "the unwrapped response was discarded; retry without --wrap-ttl if the server \
             cannot wrap responses",
        )
    } else {
        anyhow::Error::new(e).context(what.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use crate::cli::{Cli, Command};
    use clap::Parser;

    #[test]
    fn unwrap_takes_no_token_argument() {
        let cli = Cli::try_parse_from(["shroud", "unwrap"]).unwrap();
        assert!(matches!(cli.command, Command::Unwrap(_)));
        assert!(Cli::try_parse_from(["shroud", "unwrap", "hvs.wrapping"]).is_err());
        assert!(Cli::try_parse_from(["shroud", "unwrap", "--token", "hvs.wrapping"]).is_err());
    }
}
